//! Service ranges (as Calico's `serviceClusterIPs` / `serviceExternalIPs`): each range a
//! BGPAdvertisement names, from every node it selects; and the addresses of Local-policy Services
//! in those ranges as host routes from the nodes with a serving endpoint (the longer prefix draws
//! their traffic there).

use std::net::IpAddr;

use ferrolb_crds::address::Family;
use ferrolb_crds::schema::Cidr;
use ferrolb_crds::selector;
use ferrolb_crds::service::key;
use ipnet::IpNet;
use kube::ResourceExt;

use super::bgp::{advertisement, to_peers};
use super::{Inputs, Plan, valid};

/// Advertises the ranges, and the host routes this node serves.
pub(super) fn plan(inputs: &Inputs<'_>, plan: &mut Plan) {
    let (w, me) = (inputs.world, inputs.me);
    let Some(me_node) = inputs.me_usable() else {
        return;
    };
    let nets = |cidrs: &[Cidr]| -> Vec<IpNet> { cidrs.iter().filter_map(Cidr::net).collect() };
    for adv in valid(&w.config.bgp_advertisements, &w.report.bgp_advertisements) {
        let cluster = nets(&adv.spec.service_cluster_ips);
        let external = nets(&adv.spec.service_external_ips);
        if (cluster.is_empty() && external.is_empty())
            || !selector::any_matches(&adv.spec.node_selectors, me_node.labels())
        {
            continue;
        }
        for net in cluster.iter().chain(&external) {
            let route = advertisement(w, adv, net.network(), net.prefix_len());
            to_peers(plan, w, adv, me_node, &route);
        }
        for svc in w.services {
            let Some(spec) = svc.spec.as_ref() else {
                continue;
            };
            // Policy first: the endpoint lookup allocates the Service's key.
            if spec.external_traffic_policy.as_deref() != Some("Local")
                || !inputs
                    .endpoints
                    .get(&key(svc))
                    .is_some_and(|e| e.nodes.contains(me))
            {
                continue;
            }
            // `clusterIPs` holds `clusterIP` first; the latter alone only on old objects.
            let cluster_ips = match &spec.cluster_ips {
                Some(ips) => ips.as_slice(),
                None => spec.cluster_ip.as_slice(),
            };
            let cluster_ips = cluster_ips
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .filter(|ip| cluster.iter().any(|n| n.contains(ip)));
            let external_ips = spec
                .external_ips
                .iter()
                .flatten()
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .filter(|ip| external.iter().any(|n| n.contains(ip)));
            for ip in cluster_ips.chain(external_ips) {
                let len = Family::of(&ip).bits();
                let route = advertisement(w, adv, ip, len);
                to_peers(plan, w, adv, me_node, &route);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ferrolb_crds::schema::CommunityRef;
    use ferrolb_crds::{BGPAdvertisement, BGPAdvertisementSpec};

    use super::super::fixtures::{cluster_svc, config, run, slice, svc, three};

    #[test]
    fn service_ranges_from_every_node_and_local_host_routes_from_serving_nodes() {
        let mut cfg = config(None, true);
        cfg.bgp_advertisements.push(BGPAdvertisement::new(
            "ranges",
            BGPAdvertisementSpec {
                service_cluster_ips: vec!["198.19.0.0/16".into(), "fd00:19::/112".into()],
                service_external_ips: vec!["198.18.120.0/24".into()],
                communities: vec![CommunityRef::from("65000:9")],
                ..Default::default()
            },
        ));
        let svcs = [
            cluster_svc(
                "local",
                &["198.19.0.10", "fd00:19::10"],
                &["198.18.120.5", "198.18.121.5"],
                true,
            ),
            cluster_svc("cluster", &["198.19.0.11"], &["198.18.120.6"], false),
            // A pool address the "adv" advertisement announces; "ranges" must not (it names no
            // pool, and announcing Service ranges turns the every-pool default off).
            svc("lb", &["198.18.100.9"], false),
        ];
        let eps = [
            slice("local", &["n3"]),
            slice("cluster", &["n1"]),
            slice("lb", &["n1"]),
        ];
        let nodes = three();
        let live = ["n1", "n2", "n3"];
        let prefixes = |me: &str| -> BTreeSet<(String, u8, Vec<u32>)> {
            run(&cfg, &svcs, &eps, &nodes, &live, me).bgp["frr"]
                .iter()
                .map(|r| (r.prefix.to_string(), r.prefix_len, r.communities.clone()))
                .collect()
        };
        let ranges = |extra: &[(&str, u8)]| -> BTreeSet<(String, u8, Vec<u32>)> {
            let c = vec![(65000 << 16) | 9];
            [("198.19.0.0", 16), ("fd00:19::", 112), ("198.18.120.0", 24)]
                .iter()
                .chain(extra)
                .map(|(p, l)| (p.to_string(), *l, c.clone()))
                .collect()
        };
        // The pool address (Cluster policy) comes from every node, through "adv" only.
        let lb = ("198.18.100.9".to_string(), 32, vec![(65000 << 16) | 7]);
        let with_lb = |mut set: BTreeSet<(String, u8, Vec<u32>)>| {
            set.insert(lb.clone());
            set
        };
        assert_eq!(prefixes("n1"), with_lb(ranges(&[])), "n1: the ranges");
        assert_eq!(prefixes("n2"), with_lb(ranges(&[])), "n2: the ranges");
        assert_eq!(
            prefixes("n3"),
            with_lb(ranges(&[
                ("198.19.0.10", 32),
                ("fd00:19::10", 128),
                ("198.18.120.5", 32)
            ])),
            "n3 serves the Local Service: its cluster and external IPs in range, as host routes"
        );
        // Without the endpoint on n3, only the ranges (and the pool address).
        let eps = [
            slice("local", &[]),
            slice("cluster", &["n1"]),
            slice("lb", &["n1"]),
        ];
        let p = run(&cfg, &svcs, &eps, &nodes, &live, "n3");
        assert_eq!(p.bgp["frr"].len(), 4);
    }
}
