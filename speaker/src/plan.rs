//! What this node should announce, computed from the cluster's state (pure).
//!
//! Every speaker runs the same function on the same inputs, so they agree on one L2 announcer per
//! address without talking to the API server; BGP needs no agreement (every eligible node
//! advertises itself as a next hop, and the router does ECMP).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::BGPAdvertisement;
use ferrolb_crds::address::{AddressRange, Family};
use ferrolb_crds::schema::Community;
use ferrolb_crds::selector;
use ferrolb_crds::service::{ingress_ips, is_ours, key};
use ferrolb_crds::validate::{Report, Snapshot, ValidPool, bgp_selected_pools, selected_pools};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// Nodes carrying this label never announce (Kubernetes' own convention).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

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

fn endpoints_of(slices: &[Arc<EndpointSlice>]) -> BTreeMap<String, Endpoints> {
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
            let sel = bgp_selected_pools(&adv.spec, &w.report.valid_pools);
            if !sel.iter().any(|p| p.name == pool.name)
                || !selector::any_matches(&adv.spec.node_selectors, me_node.labels())
            {
                continue;
            }
            let len = aggregate_len(&ip, &adv.spec, pool);
            let route = advertisement(w, adv, mask(ip, len), len);
            to_peers(&mut plan, w, adv, me_node, &route);
        }
    }

    // Service ranges (as Calico's serviceClusterIPs / serviceExternalIPs): each range from every
    // selected node; Local-policy Services' addresses in them as host routes from the nodes with
    // a serving endpoint (the longer prefix draws their traffic there).
    if let Some(me_node) = me_node.filter(|n| node_usable(n)) {
        for adv in &valid_bgp {
            let cluster: Vec<IpNet> = adv
                .spec
                .service_cluster_ips
                .iter()
                .filter_map(|c| c.net())
                .collect();
            let external: Vec<IpNet> = adv
                .spec
                .service_external_ips
                .iter()
                .filter_map(|c| c.net())
                .collect();
            if (cluster.is_empty() && external.is_empty())
                || !selector::any_matches(&adv.spec.node_selectors, me_node.labels())
            {
                continue;
            }
            for net in cluster.iter().chain(&external) {
                let route = advertisement(w, adv, net.network(), net.prefix_len());
                to_peers(&mut plan, w, adv, me_node, &route);
            }
            for svc in w.services {
                let Some(spec) = svc.spec.as_ref() else {
                    continue;
                };
                // Policy first: the endpoint lookup allocates the Service's key.
                if spec.external_traffic_policy.as_deref() != Some("Local")
                    || !endpoints
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
                    to_peers(&mut plan, w, adv, me_node, &route);
                }
            }
        }
    }
    plan
}

/// Prefix length to advertise `ip` of `pool` with: the advertisement's aggregation length, or the
/// host route if that aggregate would cover an address outside the pool. Validation refuses such
/// advertisements (ranges are split into CIDRs); this makes sure a route never attracts traffic
/// for addresses FerroLB does not own even if an invalid one slipped through.
fn aggregate_len(ip: &IpAddr, spec: &ferrolb_crds::BGPAdvertisementSpec, pool: &ValidPool) -> u8 {
    let family = Family::of(ip);
    let len = match family {
        Family::V4 => spec.aggregation_v4(),
        Family::V6 => spec.aggregation_v6(),
    };
    let aggregate = AddressRange::of_prefix(*ip, len);
    if pool.ranges.iter().any(|r| r.covers(&aggregate)) {
        len
    } else {
        family.bits()
    }
}

/// The route for `prefix/len` with the advertisement's attributes.
fn advertisement(w: &World<'_>, adv: &BGPAdvertisement, prefix: IpAddr, len: u8) -> Advertisement {
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
    Advertisement {
        prefix,
        prefix_len: len,
        local_pref: adv.spec.local_pref,
        communities,
        large_communities: large,
    }
}

/// Adds `route` for each valid peer the advertisement names (or every peer) that peers with
/// this node.
fn to_peers(
    plan: &mut Plan,
    w: &World<'_>,
    adv: &BGPAdvertisement,
    me_node: &Node,
    route: &Advertisement,
) {
    for peer in &w.config.bgp_peers {
        let name = peer.name_any();
        let peer_ok = w.report.bgp_peers.get(&name).is_some_and(|v| v.ok);
        let wanted = adv.spec.peers.is_empty() || adv.spec.peers.contains(&name);
        if peer_ok && wanted && selector::any_matches(&peer.spec.node_selectors, me_node.labels()) {
            plan.bgp.entry(name).or_default().insert(route.clone());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::schema::{AddressBlock, CommunityRef};
    use ferrolb_crds::validate::validate;
    use ferrolb_crds::{
        BGPAdvertisement, BGPAdvertisementSpec, BGPPeer, BGPPeerSpec, IPAddressPool,
        IPAddressPoolSpec, L2Advertisement, L2AdvertisementSpec,
    };
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeCondition, NodeStatus, ServiceSpec,
        ServiceStatus,
    };
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn node(name: &str, labels: &[(&str, &str)], net_down: bool) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        if net_down {
            n.status = Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "NetworkUnavailable".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        n
    }

    fn svc(name: &str, ips: &[&str], local: bool) -> Service {
        let mut s = Service {
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                external_traffic_policy: Some(if local { "Local" } else { "Cluster" }.into()),
                ..Default::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        ips.iter()
                            .map(|ip| LoadBalancerIngress {
                                ip: Some(ip.to_string()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        s.metadata.namespace = Some("ns".into());
        s.metadata.name = Some(name.into());
        s
    }

    fn slice(svc: &str, nodes: &[&str]) -> EndpointSlice {
        let mut e = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: Some(
                nodes
                    .iter()
                    .map(|n| Endpoint {
                        addresses: vec!["198.18.0.50".into()],
                        node_name: Some(n.to_string()),
                        conditions: Some(EndpointConditions {
                            ready: Some(true),
                            serving: Some(true),
                            terminating: Some(false),
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        e.metadata.namespace = Some("ns".into());
        e.metadata.name = Some(format!("{svc}-1"));
        e.metadata.labels =
            Some([("kubernetes.io/service-name".to_string(), svc.to_string())].into());
        e
    }

    fn config(l2_nodes: Option<&str>, bgp: bool) -> Snapshot {
        let pool = IPAddressPool::new(
            "p",
            IPAddressPoolSpec {
                addresses: vec![
                    AddressBlock::from("198.18.0.200/29"),
                    AddressBlock::from("198.18.100.0/24"),
                ],
                auto_assign: true,
                avoid_buggy_ips: false,
                service_allocation: None,
            },
        );
        let mut s = Snapshot {
            pools: vec![pool],
            ..Default::default()
        };
        if let Some(host) = l2_nodes {
            let mut spec = L2AdvertisementSpec::default();
            if !host.is_empty() {
                spec.node_selectors = vec![LabelSelector {
                    match_labels: Some(
                        [("kubernetes.io/hostname".to_string(), host.to_string())].into(),
                    ),
                    match_expressions: None,
                }];
                spec.interfaces = vec!["eth1".into()];
            }
            s.l2_advertisements.push(L2Advertisement::new("l2", spec));
        }
        if bgp {
            s.bgp_advertisements.push(BGPAdvertisement::new(
                "adv",
                BGPAdvertisementSpec {
                    aggregation_length: Some(32),
                    local_pref: Some(150),
                    communities: vec![
                        CommunityRef::from("65000:7"),
                        CommunityRef::from("large:1:2:3"),
                    ],
                    ..Default::default()
                },
            ));
            s.bgp_peers.push(BGPPeer::new(
                "frr",
                BGPPeerSpec::new(64600, 64512, "198.18.0.2"),
            ));
        }
        s
    }

    fn run(
        config: &Snapshot,
        services: &[Service],
        slices: &[EndpointSlice],
        nodes: &[Node],
        live: &[&str],
        me: &str,
    ) -> Plan {
        let report = validate(config);
        let live: BTreeSet<String> = live.iter().map(|s| s.to_string()).collect();
        let services: Vec<Arc<Service>> = services.iter().cloned().map(Arc::new).collect();
        let slices: Vec<Arc<EndpointSlice>> = slices.iter().cloned().map(Arc::new).collect();
        plan(
            &World {
                services: &services,
                slices: &slices,
                nodes,
                config,
                report: &report,
                live: &live,
                lb_class: None,
            },
            me,
        )
    }

    fn three() -> Vec<Node> {
        ["n1", "n2", "n3"]
            .iter()
            .map(|n| node(n, &[("kubernetes.io/hostname", n)], false))
            .collect()
    }

    /// A ClusterIP Service (not ours) with cluster IPs and external IPs.
    fn cluster_svc(name: &str, cluster_ips: &[&str], external: &[&str], local: bool) -> Service {
        let mut s = Service {
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                cluster_ip: cluster_ips.first().map(|s| s.to_string()),
                cluster_ips: Some(cluster_ips.iter().map(|s| s.to_string()).collect()),
                external_ips: Some(external.iter().map(|s| s.to_string()).collect()),
                external_traffic_policy: Some(if local { "Local" } else { "Cluster" }.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        s.metadata.namespace = Some("ns".into());
        s.metadata.name = Some(name.into());
        s
    }

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

    #[test]
    fn no_aggregate_covers_addresses_outside_the_pool() {
        let mut cfg = config(None, true);
        cfg.pools[0].spec.addresses = vec![
            AddressBlock::from("198.18.10.5-198.18.10.9"),
            AddressBlock::from("198.18.11.0/24"),
        ];
        let svcs = [svc("a", &["198.18.10.6", "198.18.11.7"], false)];
        let eps = [slice("a", &["n1"])];
        let routes = |cfg: &Snapshot, report: &Report| -> BTreeSet<(String, u8)> {
            let live: BTreeSet<String> = ["n1".to_string()].into();
            let services: Vec<Arc<Service>> = svcs.iter().cloned().map(Arc::new).collect();
            let slices: Vec<Arc<EndpointSlice>> = eps.iter().cloned().map(Arc::new).collect();
            let nodes = three();
            let p = plan(
                &World {
                    services: &services,
                    slices: &slices,
                    nodes: &nodes,
                    config: cfg,
                    report,
                    live: &live,
                    lb_class: None,
                },
                "n1",
            );
            p.bgp
                .get("frr")
                .into_iter()
                .flatten()
                .map(|r| (r.prefix.to_string(), r.prefix_len))
                .collect()
        };
        // /28 over a range of five addresses: validation refuses it...
        cfg.bgp_advertisements[0].spec.aggregation_length = Some(28);
        let report = validate(&cfg);
        assert_eq!(
            report.bgp_advertisements["adv"].reason,
            "AggregationTooShort"
        );
        assert!(routes(&cfg, &report).is_empty());
        // ...and should a verdict say otherwise, the plan still never advertises 198.18.10.0/28,
        // while the /24 block aggregates as asked.
        let mut forced = report.clone();
        forced.bgp_advertisements.get_mut("adv").unwrap().ok = true;
        cfg.bgp_advertisements[0].spec.aggregation_length = Some(24);
        assert_eq!(
            routes(&cfg, &forced),
            [("198.18.10.6".into(), 32), ("198.18.11.0".into(), 24)].into()
        );
    }

    #[test]
    fn bgp_routes_carry_attributes_and_aggregate() {
        let cfg = config(None, true);
        let svcs = [svc("a", &["198.18.100.7"], false)];
        let p = run(&cfg, &svcs, &[slice("a", &["n1"])], &three(), &["n1"], "n2");
        let routes = &p.bgp["frr"];
        let r = routes.iter().next().unwrap();
        assert_eq!(
            (r.prefix, r.prefix_len),
            ("198.18.100.7".parse().unwrap(), 32)
        );
        assert_eq!(r.local_pref, Some(150));
        assert_eq!(r.communities, [65000 << 16 | 7]);
        assert_eq!(r.large_communities, [(1, 2, 3)]);
        assert_eq!(
            mask("198.18.100.7".parse().unwrap(), 24),
            "198.18.100.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask("fd00::7".parse().unwrap(), 0),
            "::".parse::<IpAddr>().unwrap()
        );
    }
}
