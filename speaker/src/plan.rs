//! What this node should announce, computed from the cluster's state (pure).
//!
//! Every speaker runs the same function on the same inputs, so they agree on one L2 announcer per
//! address without talking to the API server; BGP needs no agreement (every eligible node
//! advertises itself as a next hop, and the router does ECMP).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::address::Family;
use ferrolb_crds::schema::Community;
use ferrolb_crds::selector;
use ferrolb_crds::service::{ingress_ips, is_ours, key};
use ferrolb_crds::validate::{Report, Snapshot, ValidPool, selected_pools};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// Nodes carrying this label never announce (Kubernetes' own convention).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Everything the plan reads.
pub struct World<'a> {
    pub services: &'a [Service],
    pub slices: &'a [EndpointSlice],
    pub nodes: &'a [Node],
    pub config: &'a Snapshot,
    pub report: &'a Report,
    /// Nodes whose speaker is alive (membership), including ourselves.
    pub live: &'a BTreeSet<String>,
    pub lb_class: Option<&'a str>,
}

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

/// A route this node advertises to one peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Advertisement {
    pub prefix: IpAddr,
    pub prefix_len: u8,
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
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

/// Endpoint facts for one Service.
#[derive(Default)]
struct Endpoints {
    /// Nodes with at least one serving endpoint.
    nodes: BTreeSet<String>,
    any: bool,
}

fn endpoints_of(slices: &[EndpointSlice]) -> BTreeMap<String, Endpoints> {
    let mut out: BTreeMap<String, Endpoints> = BTreeMap::new();
    for s in slices {
        let Some(svc) = s.labels().get("kubernetes.io/service-name") else {
            continue;
        };
        let k = format!("{}/{}", s.namespace().unwrap_or_default(), svc);
        let e = out.entry(k).or_default();
        for ep in s.endpoints.iter().flatten() {
            let c = ep.conditions.as_ref();
            // `serving` is the truth while terminating; `ready` for older producers.
            let serving = c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            if serving && (ready || terminating) {
                e.any = true;
                if let Some(n) = &ep.node_name {
                    e.nodes.insert(n.clone());
                }
            }
        }
    }
    out
}

/// Whether a node may announce at all.
fn node_usable(n: &Node) -> bool {
    let excluded = n.labels().contains_key(EXCLUDE_LABEL);
    let net_down = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    !excluded && !net_down
}

fn pool_of<'a>(ip: &IpAddr, pools: &'a [ValidPool]) -> Option<&'a ValidPool> {
    pools
        .iter()
        .find(|p| p.ranges.iter().any(|r| r.contains(ip)))
}

/// Computes the plan for `me`.
pub fn plan(w: &World<'_>, me: &str) -> Plan {
    let endpoints = endpoints_of(w.slices);
    let nodes: BTreeMap<String, &Node> = w.nodes.iter().map(|n| (n.name_any(), n)).collect();
    let valid_l2: Vec<_> = w
        .config
        .l2_advertisements
        .iter()
        .filter(|a| {
            w.report
                .l2_advertisements
                .get(&a.name_any())
                .is_some_and(|v| v.ok)
        })
        .collect();
    let valid_bgp: Vec<_> = w
        .config
        .bgp_advertisements
        .iter()
        .filter(|a| {
            w.report
                .bgp_advertisements
                .get(&a.name_any())
                .is_some_and(|v| v.ok)
        })
        .collect();
    let me_node = nodes.get(me);

    // Address → services sharing it (one address may serve several Services).
    let mut by_ip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for s in w.services.iter().filter(|s| is_ours(s, w.lb_class)) {
        for ip in ingress_ips(s) {
            by_ip.entry(ip).or_default().push(s);
        }
    }

    let mut plan = Plan::default();
    for (ip, svcs) in by_ip {
        let Some(pool) = pool_of(&ip, &w.report.valid_pools) else {
            continue;
        };
        // Nodes that may serve this address: Local → nodes with a serving endpoint of every
        // sharing Service; Cluster → all nodes, provided some endpoint serves.
        let mut serving_nodes: Option<BTreeSet<String>> = None;
        let mut any_endpoint = true;
        for s in &svcs {
            let eps = endpoints.get(&key(s));
            any_endpoint &= eps.is_some_and(|e| e.any);
            let local = s
                .spec
                .as_ref()
                .and_then(|x| x.external_traffic_policy.as_deref())
                == Some("Local");
            if local {
                let set = eps.map(|e| e.nodes.clone()).unwrap_or_default();
                serving_nodes = Some(match serving_nodes {
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                    None => set,
                });
            }
        }
        if !any_endpoint {
            continue;
        }
        let may_serve = |n: &str| serving_nodes.as_ref().is_none_or(|s| s.contains(n));
        let services: Vec<String> = svcs.iter().map(|s| key(s)).collect();

        // L2: candidates from every advertisement covering the pool.
        let mut candidates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut all_ifaces: BTreeSet<String> = BTreeSet::new();
        for adv in &valid_l2 {
            let sel = selected_pools(
                &adv.spec.ip_address_pools,
                &adv.spec.ip_address_pool_selectors,
                &w.report.valid_pools,
            );
            if !sel.iter().any(|p| p.name == pool.name) {
                continue;
            }
            for (name, node) in &nodes {
                if node_usable(node)
                    && w.live.contains(name)
                    && may_serve(name)
                    && selector::any_matches(&adv.spec.node_selectors, node.labels())
                {
                    let e = candidates.entry(name.clone()).or_default();
                    if adv.spec.interfaces.is_empty() {
                        // One advertisement without interfaces means "all" for this node.
                        e.push(String::new());
                    } else {
                        e.extend(adv.spec.interfaces.iter().cloned());
                    }
                    all_ifaces.extend(adv.spec.interfaces.iter().cloned());
                }
            }
        }
        let names: Vec<&str> = candidates.keys().map(String::as_str).collect();
        if let Some(winner) = crate::l2::election::elect(ip, names.iter().copied()) {
            let mut ifaces = candidates.get(winner).cloned().unwrap_or_default();
            ifaces.sort();
            ifaces.dedup();
            if ifaces.iter().any(String::is_empty) {
                ifaces.clear();
            }
            plan.l2.insert(
                ip,
                L2Announcement {
                    ip,
                    services: services.clone(),
                    node: winner.to_string(),
                    interfaces: ifaces,
                },
            );
        }

        // BGP: this node advertises itself if eligible.
        let Some(me_node) = me_node else { continue };
        if !node_usable(me_node) || !may_serve(me) {
            continue;
        }
        for adv in &valid_bgp {
            let sel = selected_pools(
                &adv.spec.ip_address_pools,
                &adv.spec.ip_address_pool_selectors,
                &w.report.valid_pools,
            );
            if !sel.iter().any(|p| p.name == pool.name)
                || !selector::any_matches(&adv.spec.node_selectors, me_node.labels())
            {
                continue;
            }
            let len = match Family::of(&ip) {
                Family::V4 => adv.spec.aggregation_v4(),
                Family::V6 => adv.spec.aggregation_v6(),
            };
            let mut communities = Vec::new();
            let mut large = Vec::new();
            for c in &adv.spec.communities {
                let v = Community::parse(c.as_str())
                    .or_else(|| w.report.community_aliases.get(c.as_str()).copied());
                match v {
                    Some(Community::Standard(x)) => communities.push(x),
                    Some(Community::Large(a, b, c)) => large.push((a, b, c)),
                    None => {}
                }
            }
            communities.sort();
            communities.dedup();
            large.sort();
            large.dedup();
            let route = Advertisement {
                prefix: mask(ip, len),
                prefix_len: len,
                local_pref: adv.spec.local_pref,
                communities,
                large_communities: large,
            };
            for peer in &w.config.bgp_peers {
                let name = peer.name_any();
                let peer_ok = w.report.bgp_peers.get(&name).is_some_and(|v| v.ok);
                let wanted = adv.spec.peers.is_empty() || adv.spec.peers.contains(&name);
                if peer_ok
                    && wanted
                    && selector::any_matches(&peer.spec.node_selectors, me_node.labels())
                {
                    plan.bgp.entry(name).or_default().insert(route.clone());
                }
            }
        }
    }
    plan
}

/// `ip` with host bits beyond `len` cleared.
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}
