use super::*;
use crate::fixtures::snapshot;

fn explain(name: &str) -> Explanation {
    let snap = snapshot();
    let svc = snap
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap()
        .clone();
    build(&snap, &svc)
}

#[test]
fn an_announced_l2_service_names_pool_node_and_interface() {
    let e = explain("web");
    assert_eq!(
        e.explanation,
        [
            "Service app/web has address 198.18.0.230 from IPAddressPool l2pool (valid).",
            "Layer 2 (L2Advertisement l2adv): node flb-node3 answers ARP/NDP for it on eth0.",
        ]
    );
    assert!(e.announced && e.allocated);
}

#[test]
fn a_bgp_service_names_the_advertising_nodes_and_the_down_ones() {
    let e = explain("api");
    assert_eq!(
        e.explanation[1],
        "BGP (BGPAdvertisement bgpadv): advertised to peer frr4 (198.18.0.2) by node flb-node1; not Established on flb-node2 (Active)."
    );
    assert_eq!(
        e.explanation[2],
        "BGP (BGPAdvertisement bgpadv): peer nobody (198.18.0.96) has no Established session, so it does not learn it."
    );
}

#[test]
fn a_pending_service_says_why() {
    let e = explain("stuck");
    assert_eq!(
        e.explanation,
        [
            "Service app/stuck has no address: PoolNotUsable: pool \"gone\" named by ferrolb.io/address-pool does not exist"
        ]
    );
    assert!(!e.allocated);
    assert_eq!(e.reason.as_deref(), Some("PoolNotUsable"));
}

#[test]
fn a_service_that_is_not_a_load_balancer_is_not_ours() {
    let e = explain("kubernetes");
    assert_eq!(
        e.explanation,
        [
            "Service default/kubernetes is not handled by FerroLB: it is of type ClusterIP, not LoadBalancer."
        ]
    );
}

#[test]
fn a_bgp_service_without_endpoints_is_advertised_by_nobody() {
    let mut snap = snapshot();
    snap.endpoint_slices.clear();
    let svc = snap.services[1].clone();
    let e = build(&snap, &svc);
    assert_eq!(
        e.explanation[1],
        "BGP (BGPAdvertisement bgpadv): no ready endpoint serves it, so no node advertises it."
    );
    assert_eq!(e.explanation.len(), 2);
    assert!(!e.announced);
}

#[test]
fn a_service_of_another_class_is_not_ours_and_with_class_only_that_class_is() {
    let mut snap = snapshot();
    let mut svc = snap.services[1].clone();
    svc.spec.as_mut().unwrap().load_balancer_class = Some("example.com/other".into());
    let e = build(&snap, &svc);
    assert!(!e.handled);
    assert_eq!(
        e.explanation,
        [
            "Service app/api is not handled by FerroLB: its loadBalancerClass is example.com/other, which FerroLB leaves to another implementation."
        ]
    );
    // `--class example.com/other`: that class is FerroLB's, a Service without a class is not.
    snap.lb_class = Some("example.com/other".into());
    assert!(build(&snap, &svc).handled);
    let e = build(&snap, &snap.services[1].clone());
    assert!(!e.handled);
    assert_eq!(
        e.explanation,
        [
            "Service app/api is not handled by FerroLB: it has no loadBalancerClass, and FerroLB handles only class example.com/other."
        ]
    );
    snap.lb_class = Some("example.com/third".into());
    assert!(build(&snap, &svc).explanation[0].ends_with(
        "which FerroLB leaves to another implementation (FerroLB handles class example.com/third)."
    ));
}
