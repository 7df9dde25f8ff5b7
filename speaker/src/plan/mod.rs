//! What this node should announce, computed from the cluster's state (pure).
//!
//! Every speaker runs the same function on the same inputs, so they agree on one L2 announcer per
//! address without talking to the API server; BGP needs no agreement (every eligible node
//! advertises itself as a next hop, and the router does ECMP).
//!
//! Each announcement mode is a module that adds its share of the [`Plan`] from the same `Inputs`
//! (listed in `MODES`): `l2` elects the announcer of each address, `bgp` advertises the addresses
//! this node may serve, `service_ranges` the Service CIDRs (as Calico does).

mod bgp;
#[cfg(test)]
mod fixtures;
mod l2;
mod service_ranges;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::service::{announced_from, ingress_ips, is_ours, key};
use ferrolb_crds::serving::node_usable;
use ferrolb_crds::serving::{Endpoints, address_serving, endpoints_by_service};
use ferrolb_crds::validate::{Report, Snapshot, ValidPool, Verdict};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

pub use bgp::Advertisement;
pub use l2::L2Announcement;

/// Everything the plan reads.
pub struct World<'a> {
    /// Shared with the watch caches (no deep copies: planning runs on every change).
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<EndpointSlice>],
    pub nodes: &'a [Node],
    pub config: &'a Snapshot,
    pub report: &'a Report,
    /// Nodes whose speaker is alive (membership), including ourselves.
    pub live: &'a BTreeSet<String>,
    pub lb_class: Option<&'a str>,
}

/// The plan: every L2 announcement in the cluster (so any speaker can tell who announces what),
/// and this node's BGP advertisements per peer name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub l2: BTreeMap<IpAddr, L2Announcement>,
    pub bgp: BTreeMap<String, BTreeSet<Advertisement>>,
}

impl Plan {
    /// Addresses this node announces in L2 mode, with their interfaces.
    pub fn l2_for(&self, node: &str) -> BTreeMap<IpAddr, Vec<String>> {
        self.l2
            .values()
            .filter(|a| a.node == node)
            .map(|a| (a.ip, a.interfaces.clone()))
            .collect()
    }
}

/// An announcement mode: adds its share of the plan. Modes read the same inputs and write
/// disjoint or set-valued parts of the plan, so their order does not matter.
type Mode = fn(&Inputs<'_>, &mut Plan);

/// Every announcement mode.
const MODES: [Mode; 3] = [l2::plan, bgp::plan, service_ranges::plan];

/// Computes the plan for `me`.
pub fn plan(w: &World<'_>, me: &str) -> Plan {
    let inputs = Inputs::new(w, me);
    let mut plan = Plan::default();
    for mode in MODES {
        mode(&inputs, &mut plan);
    }
    plan
}

/// What every mode plans from: the world, and what is derived from it once per plan.
struct Inputs<'a> {
    world: &'a World<'a>,
    me: &'a str,
    nodes: BTreeMap<String, &'a Node>,
    /// By Service key.
    endpoints: BTreeMap<String, Endpoints>,
    /// Pool addresses of our Services that some endpoint serves, in address order.
    addresses: Vec<Address<'a>>,
}

impl<'a> Inputs<'a> {
    fn new(world: &'a World<'a>, me: &'a str) -> Inputs<'a> {
        let endpoints = endpoints_by_service(world.slices.iter().map(|s| s.as_ref()));
        let addresses = addresses(world, &endpoints);
        Inputs {
            world,
            me,
            nodes: world.nodes.iter().map(|n| (n.name_any(), n)).collect(),
            endpoints,
            addresses,
        }
    }

    /// This node's Node, if it may announce at all.
    fn me_usable(&self) -> Option<&'a Node> {
        self.nodes.get(self.me).copied().filter(|n| node_usable(n))
    }
}

/// A pool address our Services use, and which nodes may serve it.
struct Address<'a> {
    ip: IpAddr,
    pool: &'a ValidPool,
    /// Services using the address (`namespace/name`).
    services: Vec<String>,
    /// Local policy: the nodes with a serving endpoint of every sharing Service; None (Cluster
    /// policy only): every node.
    serving: Option<BTreeSet<String>>,
    /// Nodes the sharing Services' `L2Announced` conditions say announce the address (for
    /// sticky L2Advertisements; more than one only after a partition healed).
    claimed: BTreeSet<String>,
}

impl Address<'_> {
    fn may_serve(&self, node: &str) -> bool {
        self.serving.as_ref().is_none_or(|s| s.contains(node))
    }
}

/// The addresses worth announcing: in a valid pool, with some serving endpoint.
fn addresses<'a>(w: &World<'a>, endpoints: &BTreeMap<String, Endpoints>) -> Vec<Address<'a>> {
    // Address → services sharing it (one address may serve several Services).
    let mut by_ip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for s in w.services.iter().filter(|s| is_ours(s, w.lb_class)) {
        for ip in ingress_ips(s) {
            by_ip.entry(ip).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (ip, svcs) in by_ip {
        let Some(pool) = pool_of(&ip, &w.report.valid_pools) else {
            continue;
        };
        // Nodes that may serve this address: Local → nodes with a serving endpoint of every
        // sharing Service; Cluster → all nodes, provided some endpoint serves.
        let shared = address_serving(svcs.iter().copied(), endpoints);
        let mut claimed = BTreeSet::new();
        for s in &svcs {
            claimed.extend(
                announced_from(s)
                    .into_iter()
                    .filter(|a| a.address == ip)
                    .map(|a| a.node),
            );
        }
        if shared.any {
            out.push(Address {
                ip,
                pool,
                services: svcs.iter().map(|s| key(s)).collect(),
                serving: shared.local_nodes,
                claimed,
            });
        }
    }
    out
}

fn pool_of<'a>(ip: &IpAddr, pools: &'a [ValidPool]) -> Option<&'a ValidPool> {
    pools
        .iter()
        .find(|p| p.ranges.iter().any(|r| r.contains(ip)))
}

/// The objects whose verdict is ok.
fn valid<'a, K: ResourceExt>(objects: &'a [K], verdicts: &BTreeMap<String, Verdict>) -> Vec<&'a K> {
    objects
        .iter()
        .filter(|o| verdicts.get(&o.name_any()).is_some_and(|v| v.ok))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::fixtures::{config, run, slice, svc, three};

    #[test]
    fn local_policy_needs_a_local_endpoint_and_no_endpoint_means_silence() {
        let cfg = config(Some(""), true);
        let nodes = three();
        let live = ["n1", "n2", "n3"];
        let local = [svc("a", &["198.18.0.201"], true)];
        let p = run(&cfg, &local, &[slice("a", &["n3"])], &nodes, &live, "n1");
        let ip: IpAddr = "198.18.0.201".parse().unwrap();
        assert_eq!(p.l2[&ip].node, "n3");
        assert!(p.bgp.is_empty(), "n1 has no local endpoint: no BGP route");
        let p3 = run(&cfg, &local, &[slice("a", &["n3"])], &nodes, &live, "n3");
        assert_eq!(p3.bgp["frr"].len(), 1);
        let none = run(&cfg, &local, &[slice("a", &[])], &nodes, &live, "n3");
        assert!(
            none.l2.is_empty() && none.bgp.is_empty(),
            "no serving endpoint: nobody announces"
        );
        let cluster = [svc("b", &["198.18.0.202"], false)];
        let c = run(&cfg, &cluster, &[slice("b", &["n3"])], &nodes, &live, "n1");
        assert_eq!(
            c.bgp["frr"].len(),
            1,
            "Cluster: every node advertises while an endpoint serves"
        );
    }
}
