//! Cluster objects for the plan's tests, shared by every mode's tests.

use std::collections::BTreeSet;
use std::sync::Arc;

use ferrolb_crds::schema::{AddressBlock, CommunityRef};
use ferrolb_crds::validate::{Snapshot, validate};
use ferrolb_crds::{
    BGPAdvertisement, BGPAdvertisementSpec, BGPPeer, BGPPeerSpec, IPAddressPool, IPAddressPoolSpec,
    L2Advertisement, L2AdvertisementSpec,
};
use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Node, NodeCondition, NodeStatus, Service, ServiceSpec,
    ServiceStatus,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Plan, World, plan};

pub(super) fn node(name: &str, labels: &[(&str, &str)], net_down: bool) -> Node {
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

pub(super) fn svc(name: &str, ips: &[&str], local: bool) -> Service {
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

pub(super) fn slice(svc: &str, nodes: &[&str]) -> EndpointSlice {
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
    e.metadata.labels = Some([("kubernetes.io/service-name".to_string(), svc.to_string())].into());
    e
}

pub(super) fn config(l2_nodes: Option<&str>, bgp: bool) -> Snapshot {
    let pool = IPAddressPool::new(
        "p",
        IPAddressPoolSpec {
            addresses: vec![
                AddressBlock::from("198.18.0.200/29"),
                AddressBlock::from("198.18.100.0/24"),
            ],
            auto_assign: true,
            avoid_buggy_ips: false,
            avoid_conflicting_ips: false,
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

pub(super) fn run(
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

pub(super) fn three() -> Vec<Node> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|n| node(n, &[("kubernetes.io/hostname", n)], false))
        .collect()
}

/// A ClusterIP Service (not ours) with cluster IPs and external IPs.
pub(super) fn cluster_svc(
    name: &str,
    cluster_ips: &[&str],
    external: &[&str],
    local: bool,
) -> Service {
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
