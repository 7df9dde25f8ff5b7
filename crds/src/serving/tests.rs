use super::*;
use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn node() -> Node {
    Node::default()
}

#[test]
fn node_rules_follow_the_cloud_service_controller() {
    assert!(node_usable(&node()));

    // Exclude label: any value but a Go "false" excludes.
    for (value, usable) in [
        ("", false),
        ("true", false),
        ("yes", false),
        ("1", false),
        ("false", true),
        ("0", true),
        ("False", true),
    ] {
        let mut n = node();
        n.metadata
            .labels
            .get_or_insert_default()
            .insert(EXCLUDE_LABEL.into(), value.into());
        assert_eq!(node_usable(&n), usable, "label value {value:?}");
    }

    let mut tainted = node();
    tainted.spec = Some(NodeSpec {
        taints: Some(vec![Taint {
            key: TO_BE_DELETED_TAINT.into(),
            value: Some("1764475200".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]),
        ..Default::default()
    });
    assert!(!node_usable(&tainted), "autoscaler taint");
    let mut other_taint = tainted.clone();
    other_taint.spec.as_mut().unwrap().taints.as_mut().unwrap()[0].key =
        "node.kubernetes.io/unschedulable".into();
    assert!(
        node_usable(&other_taint),
        "only the autoscaler's taint counts"
    );

    let mut deleting = node();
    deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
    assert!(!node_usable(&deleting), "being deleted");

    let cond = |type_: &str, status: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        ..Default::default()
    };
    let mut not_ready = node();
    not_ready.status = Some(NodeStatus {
        conditions: Some(vec![cond("Ready", "False")]),
        ..Default::default()
    });
    assert!(node_usable(&not_ready), "NotReady is not a node rule");
    let mut net_down = node();
    net_down.status = Some(NodeStatus {
        conditions: Some(vec![cond("NetworkUnavailable", "True")]),
        ..Default::default()
    });
    assert!(!node_usable(&net_down));
}

#[test]
fn a_shared_address_needs_endpoints_of_every_service_and_local_nodes_of_every_local_one() {
    use k8s_openapi::api::core::v1::ServiceSpec;
    let svc = |name: &str, local: bool| Service {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("app".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            external_traffic_policy: Some(if local { "Local" } else { "Cluster" }.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let eps = |nodes: &[&str]| Endpoints {
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        any: !nodes.is_empty(),
    };
    let endpoints = BTreeMap::from([
        ("app/a".to_string(), eps(&["n1", "n2"])),
        ("app/b".to_string(), eps(&["n2", "n3"])),
        ("app/c".to_string(), eps(&["n3"])),
        ("app/none".to_string(), eps(&[])),
    ]);
    let (a, b, c) = (svc("a", true), svc("b", true), svc("c", false));
    let shared = address_serving([&a, &b], &endpoints);
    assert!(shared.any);
    assert_eq!(shared.local_nodes, Some(BTreeSet::from(["n2".to_string()])));
    // A Cluster Service sharing the address does not widen or narrow the Local set.
    let shared = address_serving([&a, &c], &endpoints);
    assert_eq!(
        shared.local_nodes,
        Some(BTreeSet::from(["n1".to_string(), "n2".to_string()]))
    );
    assert_eq!(address_serving([&c], &endpoints).local_nodes, None);
    // One sharing Service without a serving endpoint silences the address.
    assert!(!address_serving([&a, &svc("none", false)], &endpoints).any);
}
