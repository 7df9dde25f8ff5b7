//! Objects as the API returns them, for the views' tests: a snapshot with an L2 pool, a BGP pool,
//! a peer with one Established and one down session, an announced Service of each mode and a
//! pending one.

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use crate::snapshot::Snapshot;

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture deserializes")
}

fn cond(type_: &str, ok: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if ok {"True"} else {"False"}, "reason": reason,
           "message": message, "lastTransitionTime": "2026-11-30T00:00:00Z"})
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "ferrolb-system"})
}

pub fn service(ns: &str, name: &str, ips: &[&str], pool: Option<&str>, conds: Vec<Value>) -> Value {
    let mut annotations = json!({});
    if let Some(p) = pool {
        annotations = json!({"ferrolb.io/ip-allocated-from-pool": p});
    }
    let ingress: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": ingress}, "conditions": conds}
    })
}

/// An EndpointSlice of Service `ns/svc` with one ready endpoint on each of `nodes`.
pub fn slice(
    ns: &str,
    svc: &str,
    nodes: &[&str],
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"addresses": ["10.0.0.1"], "nodeName": n, "conditions": {"ready": true}}))
        .collect();
    obj(
        json!({"metadata": {"name": format!("{svc}-1"), "namespace": ns,
                            "labels": {"kubernetes.io/service-name": svc}},
               "addressType": "IPv4", "endpoints": eps}),
    )
}

pub fn allocated(pool: &str) -> Value {
    cond(
        "ferrolb.io/IPAllocated",
        true,
        "IPAllocated",
        &format!("allocated from pool {pool}"),
    )
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        namespace: "ferrolb-system".into(),
        lb_class: None,
        config: config(),
        services: services(),
        nodes: vec![],
        endpoint_slices: vec![slice("app", "api", &["flb-node1"])],
        events: vec![],
    }
}

fn config() -> ferrolb_crds::validate::Snapshot {
    ferrolb_crds::validate::Snapshot {
        pools: vec![
            obj(json!({"metadata": meta("l2pool"),
                "spec": {"addresses": ["198.18.0.230/32"], "autoAssign": false},
                "status": {"assignedIPv4": 1, "availableIPv4": 0, "assignedIPv6": 0, "availableIPv6": 0,
                           "conditions": [cond("Valid", true, "Valid", "in use")]}})),
            obj(json!({"metadata": meta("bgppool"),
                "spec": {"addresses": ["198.18.61.0/30", "fd00:18:61::/126"]},
                "status": {"assignedIPv4": 1, "availableIPv4": 3, "assignedIPv6": 0, "availableIPv6": 4,
                           "conditions": [cond("Valid", true, "Valid", "in use")]}})),
            obj(json!({"metadata": meta("broken"),
                "spec": {"addresses": ["198.18.0.0/24"]},
                "status": {"conditions": [cond("Valid", false, "Overlap", "overlaps pool l2pool")]}})),
        ],
        l2_advertisements: vec![obj(json!({"metadata": meta("l2adv"),
            "spec": {"ipAddressPools": ["l2pool"]}}))],
        bgp_advertisements: vec![obj(json!({"metadata": meta("bgpadv"),
            "spec": {"ipAddressPools": ["bgppool"]}}))],
        bgp_peers: vec![
            obj(json!({"metadata": meta("frr4"),
            "spec": {"myASN": 64600, "peerASN": 64512, "peerAddress": "198.18.0.2"},
            "status": {"conditions": [cond("Valid", true, "Valid", "in use")],
                "sessions": [
                    {"node": "flb-node2", "state": "Active", "prefixesSent": 0,
                     "lastError": "connect: connection refused"},
                    {"node": "flb-node1", "state": "Established", "prefixesSent": 2}
                ]}})),
            obj(json!({"metadata": meta("nobody"),
                "spec": {"myASN": 64600, "peerASN": 64512, "peerAddress": "198.18.0.96"}})),
        ],
        ..Default::default()
    }
}

fn services() -> Vec<Service> {
    vec![
        obj(service(
            "app",
            "web",
            &["198.18.0.230"],
            Some("l2pool"),
            vec![
                allocated("l2pool"),
                cond(
                    "ferrolb.io/L2Announced",
                    true,
                    "Announced",
                    "layer2: 198.18.0.230 from node flb-node3 on eth0",
                ),
            ],
        )),
        obj(service(
            "app",
            "api",
            &["198.18.61.1"],
            Some("bgppool"),
            vec![allocated("bgppool")],
        )),
        obj(service(
            "app",
            "stuck",
            &[],
            None,
            vec![cond(
                "ferrolb.io/IPAllocated",
                false,
                "PoolNotUsable",
                "pool \"gone\" named by ferrolb.io/address-pool does not exist",
            )],
        )),
        obj(
            json!({"metadata": {"name": "kubernetes", "namespace": "default"},
                       "spec": {"type": "ClusterIP"}}),
        ),
    ]
}
