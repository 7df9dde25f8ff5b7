use super::*;
use ferrolb_crds::serving::EXCLUDE_LABEL;
use k8s_openapi::api::core::v1::{NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn node(tweak: impl FnOnce(&mut Node)) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some("flb-node1".into());
    n.spec = Some(NodeSpec::default());
    tweak(&mut n);
    n
}

fn taint(key: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    }
}

fn auto(n: &Node) -> StopReason {
    decide(OnShutdown::Auto, Some(n), true).reason
}

#[test]
fn a_node_in_service_restarts_keeping_its_routes() {
    assert_eq!(auto(&node(|_| {})), StopReason::Restart);
    // Taints that do not take the node out of service change nothing.
    let n = node(|n| {
        n.spec.as_mut().unwrap().taints = Some(vec![taint("example.com/gpu")]);
    });
    assert_eq!(auto(&n), StopReason::Restart);
}

#[test]
fn a_node_leaving_service_withdraws() {
    let cases: Vec<(&str, Node)> = vec![
        (
            "cordoned",
            node(|n| n.spec.as_mut().unwrap().unschedulable = Some(true)),
        ),
        (
            "being deleted",
            node(|n| n.metadata.deletion_timestamp = Some(Time(Default::default()))),
        ),
        (
            "excluded",
            node(|n| {
                n.metadata.labels = Some([(EXCLUDE_LABEL.to_string(), "true".into())].into());
            }),
        ),
        (
            "autoscaler",
            node(|n| {
                n.spec.as_mut().unwrap().taints =
                    Some(vec![taint("ToBeDeletedByClusterAutoscaler")]);
            }),
        ),
        (
            "out of service",
            node(|n| n.spec.as_mut().unwrap().taints = Some(vec![taint(OUT_OF_SERVICE_TAINT)])),
        ),
    ];
    for (what, n) in cases {
        assert_eq!(auto(&n), StopReason::Shutdown, "{what}");
    }
    // A Node the cache no longer holds, or a cache that cannot be trusted.
    assert_eq!(
        decide(OnShutdown::Auto, None, true).reason,
        StopReason::Shutdown
    );
    let d = decide(OnShutdown::Auto, Some(&node(|_| {})), false);
    assert_eq!(d.reason, StopReason::Shutdown);
    assert!(d.why.contains("unreachable"), "{}", d.why);
}

#[test]
fn the_flag_overrides_the_node() {
    let cordoned = node(|n| n.spec.as_mut().unwrap().unschedulable = Some(true));
    assert_eq!(
        decide(OnShutdown::KeepRoutes, Some(&cordoned), false).reason,
        StopReason::Restart
    );
    assert_eq!(
        decide(OnShutdown::Withdraw, Some(&node(|_| {})), true).reason,
        StopReason::Shutdown
    );
}
