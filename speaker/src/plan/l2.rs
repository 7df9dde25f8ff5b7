//! L2 mode: one node answers ARP/NDP for each address, elected among the live, usable nodes that
//! an L2Advertisement covering the address's pool selects and that may serve the address. Every
//! speaker plans every address, so each can tell who announces what.
//!
//! Sticky addresses (an L2Advertisement covering the pool says `sticky: true`) stay with the node
//! their Service's `L2Announced` condition names while it is still a candidate: a node that
//! returns does not take them back. The condition is the speakers' shared memory (only speakers
//! and administrators may write Service status), so they agree without a new write; a forged or
//! stale one can only choose among the candidates. Should it name several candidates (two
//! sides of a healed partition both wrote), the election among them decides, the same
//! everywhere.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_crds::selector;
use ferrolb_crds::validate::selected_pools;
use kube::ResourceExt;

use super::{Inputs, Plan, node_usable, valid};

/// One address announced in L2 mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Announcement {
    pub ip: IpAddr,
    /// Services using the address (`namespace/name`).
    pub services: Vec<String>,
    /// The elected node.
    pub node: String,
    /// Interfaces to announce on; empty means every suitable interface.
    pub interfaces: Vec<String>,
}

/// Elects the announcer of every address.
pub(super) fn plan(inputs: &Inputs<'_>, plan: &mut Plan) {
    let w = inputs.world;
    let advertisements = valid(&w.config.l2_advertisements, &w.report.l2_advertisements);
    for address in &inputs.addresses {
        // Candidates from every advertisement covering the pool.
        let mut candidates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut sticky = false;
        for adv in &advertisements {
            let sel = selected_pools(
                &adv.spec.ip_address_pools,
                &adv.spec.ip_address_pool_selectors,
                &w.report.valid_pools,
            );
            if !sel.iter().any(|p| p.name == address.pool.name) {
                continue;
            }
            sticky |= adv.spec.sticky;
            for (name, node) in &inputs.nodes {
                if node_usable(node)
                    && w.live.contains(name)
                    && address.may_serve(name)
                    && selector::any_matches(&adv.spec.node_selectors, node.labels())
                {
                    let e = candidates.entry(name.clone()).or_default();
                    if adv.spec.interfaces.is_empty() {
                        // One advertisement without interfaces means "all" for this node.
                        e.push(String::new());
                    } else {
                        e.extend(adv.spec.interfaces.iter().cloned());
                    }
                }
            }
        }
        let names: Vec<&str> = candidates.keys().map(String::as_str).collect();
        let holders: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| sticky && address.claimed.contains(*n))
            .collect();
        let pool = if holders.is_empty() { &names } else { &holders };
        if let Some(winner) = crate::l2::election::elect(address.ip, pool.iter().copied()) {
            let mut ifaces = candidates.get(winner).cloned().unwrap_or_default();
            ifaces.sort();
            ifaces.dedup();
            if ifaces.iter().any(String::is_empty) {
                ifaces.clear();
            }
            plan.l2.insert(
                address.ip,
                L2Announcement {
                    ip: address.ip,
                    services: address.services.clone(),
                    node: winner.to_string(),
                    interfaces: ifaces,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::Plan;
    use super::super::fixtures::{config, node, run, slice, svc, three};
    use ferrolb_crds::serving::EXCLUDE_LABEL;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn every_speaker_agrees_on_one_live_announcer() {
        let cfg = config(Some(""), false);
        let svcs = [svc("a", &["198.18.0.200"], false)];
        let eps = [slice("a", &["n1"])];
        let nodes = three();
        let live = ["n1", "n2", "n3"];
        let plans: Vec<Plan> = live
            .iter()
            .map(|me| run(&cfg, &svcs, &eps, &nodes, &live, me))
            .collect();
        let ip: IpAddr = "198.18.0.200".parse().unwrap();
        let winner = plans[0].l2[&ip].node.clone();
        assert!(
            plans.iter().all(|p| p.l2[&ip].node == winner),
            "same answer everywhere"
        );
        assert_eq!(
            plans
                .iter()
                .filter(|p| !p.l2_for(&winner).is_empty())
                .count(),
            3
        );
        // The winner dies: the others agree on someone else.
        let rest: Vec<&str> = live.iter().copied().filter(|n| *n != winner).collect();
        let after = run(&cfg, &svcs, &eps, &nodes, &rest, rest[0]);
        assert_ne!(after.l2[&ip].node, winner);
        assert!(rest.contains(&after.l2[&ip].node.as_str()));
    }

    #[test]
    fn selectors_exclusions_and_interfaces() {
        let cfg = config(Some("n2"), false);
        let mut nodes = three();
        let svcs = [svc("a", &["198.18.0.203"], false)];
        let eps = [slice("a", &["n1"])];
        let live = ["n1", "n2", "n3"];
        let ip: IpAddr = "198.18.0.203".parse().unwrap();
        let p = run(&cfg, &svcs, &eps, &nodes, &live, "n1");
        assert_eq!(p.l2[&ip].node, "n2");
        assert_eq!(p.l2[&ip].interfaces, ["eth1"]);
        nodes[1]
            .metadata
            .labels
            .get_or_insert_default()
            .insert(EXCLUDE_LABEL.into(), String::new());
        assert!(
            run(&cfg, &svcs, &eps, &nodes, &live, "n1").l2.is_empty(),
            "excluded node"
        );
        nodes[1] = node("n2", &[("kubernetes.io/hostname", "n2")], true);
        assert!(
            run(&cfg, &svcs, &eps, &nodes, &live, "n1").l2.is_empty(),
            "NetworkUnavailable"
        );
        let no_adv = config(None, false);
        assert!(
            run(&no_adv, &svcs, &eps, &three(), &live, "n1")
                .l2
                .is_empty(),
            "no L2Advertisement"
        );
    }

    /// `svc` with an `L2Announced` condition saying `node` announces `ip`.
    fn claimed_by(mut svc: Service, ip: IpAddr, node: &str) -> Service {
        use ferrolb_crds::service::{AnnouncedFrom, L2_ANNOUNCED, L2_WHERE_PREFIX};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
        let said = AnnouncedFrom {
            address: ip,
            node: node.into(),
            interfaces: vec!["eth0".into()],
        };
        svc.status.get_or_insert_default().conditions = Some(vec![Condition {
            type_: L2_ANNOUNCED.into(),
            status: "True".into(),
            reason: "Announced".into(),
            message: format!("{L2_WHERE_PREFIX}{}", said.describe()),
            last_transition_time: Time(Default::default()),
            observed_generation: None,
        }]);
        svc
    }

    #[test]
    fn sticky_addresses_stay_with_the_node_that_announces_them() {
        let mut cfg = config(Some(""), false);
        let ip: IpAddr = "198.18.0.200".parse().unwrap();
        let eps = [slice("a", &["n1"]), slice("b", &["n1"])];
        let nodes = three();
        let live = ["n1", "n2", "n3"];
        let plain = [svc("a", &["198.18.0.200"], false)];
        let elected = run(&cfg, &plain, &eps, &nodes, &live, "n1").l2[&ip]
            .node
            .clone();
        let other = live.iter().copied().find(|n| *n != elected).unwrap();
        let held = [claimed_by(svc("a", &["198.18.0.200"], false), ip, other)];
        let holder = |cfg: &ferrolb_crds::validate::Snapshot, svcs: &[Service], live: &[&str]| {
            run(cfg, svcs, &eps, &nodes, live, "n1").l2[&ip]
                .node
                .clone()
        };

        // Not sticky (the default): the election decides, whoever the condition names.
        assert_eq!(holder(&cfg, &held, &live), elected);
        cfg.l2_advertisements[0].spec.sticky = true;
        // Sticky: the node the condition names keeps it, on every speaker.
        for me in live {
            assert_eq!(
                run(&cfg, &held, &eps, &nodes, &live, me).l2[&ip].node,
                other
            );
        }
        // ...while it is a candidate: gone, or named but not a node, the election decides.
        let without: Vec<&str> = live.iter().copied().filter(|n| *n != other).collect();
        assert_eq!(holder(&cfg, &held, &without), elected);
        let forged = [claimed_by(svc("a", &["198.18.0.200"], false), ip, "n9")];
        assert_eq!(holder(&cfg, &forged, &live), elected);
        // No condition yet: the election.
        assert_eq!(holder(&cfg, &plain, &live), elected);
        // Two Services sharing the address name two nodes (both sides of a healed partition
        // wrote): the election among the two decides, the same everywhere.
        let third = live
            .iter()
            .copied()
            .find(|n| *n != elected && *n != other)
            .unwrap();
        let split = [
            claimed_by(svc("a", &["198.18.0.200"], false), ip, other),
            claimed_by(svc("b", &["198.18.0.200"], false), ip, third),
        ];
        let among = crate::l2::election::elect(ip, [other, third]).unwrap();
        for me in live {
            assert_eq!(
                run(&cfg, &split, &eps, &nodes, &live, me).l2[&ip].node,
                among
            );
        }
    }
}
