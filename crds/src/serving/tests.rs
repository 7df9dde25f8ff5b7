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
