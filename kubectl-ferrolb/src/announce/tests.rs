use super::*;
use crate::fixtures::snapshot;

#[test]
fn layer2_nodes_and_interfaces_come_from_the_l2announced_condition() {
    let mut snap = snapshot();
    let mut svc = snap.services[0].clone();
    let conds = svc.status.as_mut().unwrap().conditions.as_mut().unwrap();
    conds[1].message =
        "layer2: 198.18.0.230 from node flb-node3 on eth0, eth1; fd00:18::230 from node flb-node3 on eth0"
            .into();
    snap.services[0] = svc.clone();
    let l2 = of_service(&snap, &svc, "l2pool").layer2.unwrap();
    assert!(l2.announced);
    assert_eq!(l2.nodes, ["flb-node3"]);
    assert_eq!(l2.interfaces, ["eth0", "eth1"]);
    // A node elected but unable to announce is not an announcer.
    let conds = svc.status.as_mut().unwrap().conditions.as_mut().unwrap();
    conds[1].status = "False".into();
    conds[1].reason = "NoMatchingInterface".into();
    conds[1].message =
        "layer2: 198.18.0.230 elected to node flb-node2, which cannot announce it: flbnone0 (no such interface)".into();
    let l2 = of_service(&snap, &svc, "l2pool").layer2.unwrap();
    assert!(!l2.announced);
    assert!(l2.nodes.is_empty(), "{:?}", l2.nodes);
    assert_eq!(l2.reason.as_deref(), Some("NoMatchingInterface"));
}

#[test]
fn bgp_announcers_are_the_nodes_with_established_sessions() {
    let snap = snapshot();
    let svc = &snap.services[1];
    let a = of_service(&snap, svc, "bgppool");
    assert!(a.layer2.is_none());
    let bgp = a.bgp.clone().unwrap();
    assert_eq!(bgp.advertisements, ["bgpadv"]);
    let frr = &bgp.peers[0];
    assert_eq!(frr.peer, "frr4");
    assert_eq!(frr.established, ["flb-node1"]);
    assert_eq!(frr.down[0].node, "flb-node2");
    assert_eq!(bgp.peers[1].peer, "nobody");
    assert!(bgp.peers[1].established.is_empty());
    assert!(a.announced());
    assert_eq!(
        a.summary(),
        "BGP frr4: flb-node1; BGP nobody: no Established session"
    );
}

#[test]
fn an_advertisement_naming_another_pool_does_not_announce() {
    let mut snap = snapshot();
    snap.config.bgp_advertisements[0].spec.ip_address_pools = vec!["other".into()];
    let svc = snap.services[1].clone();
    let a = of_service(&snap, &svc, "bgppool");
    assert_eq!(a, Announcement::default());
    assert!(!a.announced());
    assert_eq!(a.summary(), "nobody (no advertisement selects the pool)");
}

#[test]
fn local_policy_and_missing_endpoints_limit_who_advertises() {
    let mut snap = snapshot();
    let mut svc = snap.services[1].clone();
    svc.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    // The only endpoint is on flb-node2, whose session is down: nobody advertises.
    snap.endpoint_slices = vec![crate::fixtures::slice("app", "api", &["flb-node2"])];
    let a = of_service(&snap, &svc, "bgppool");
    let bgp = a.bgp.clone().unwrap();
    assert!(bgp.local_policy && bgp.serving_endpoint);
    assert_eq!(bgp.serving_nodes, ["flb-node2"]);
    assert_eq!(bgp.peers[0].established, ["flb-node1"]);
    assert!(bgp.peers[0].advertising.is_empty());
    assert!(!a.announced());
    assert_eq!(
        a.summary(),
        "BGP frr4: no Established node may advertise; BGP nobody: no Established session"
    );
    // No endpoint at all: no node advertises, whatever the policy.
    snap.endpoint_slices.clear();
    let a = of_service(&snap, &svc, "bgppool");
    assert!(!a.bgp.as_ref().unwrap().serving_endpoint);
    assert_eq!(a.summary(), "BGP none: no serving endpoint");
}

#[test]
fn a_shared_address_with_local_policy_is_advertised_where_every_local_service_is_served() {
    let mut snap = snapshot();
    let local = |svc: &mut Service| {
        svc.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    };
    local(&mut snap.services[1]);
    // app/api alone, served on flb-node1 and flb-node2: flb-node1 (Established) advertises.
    snap.endpoint_slices = vec![crate::fixtures::slice(
        "app",
        "api",
        &["flb-node1", "flb-node2"],
    )];
    let svc = snap.services[1].clone();
    let bgp = of_service(&snap, &svc, "bgppool").bgp.unwrap();
    assert_eq!(bgp.peers[0].advertising, ["flb-node1"]);
    assert!(bgp.shared_with.is_empty());
    // app/api2 shares 198.18.61.1, Local, served on flb-node2 only: the intersection is
    // flb-node2, whose session is down, so nobody advertises the address.
    let mut api2: Service = serde_json::from_value(crate::fixtures::service(
        "app",
        "api2",
        &["198.18.61.1"],
        Some("bgppool"),
        vec![crate::fixtures::allocated("bgppool")],
    ))
    .unwrap();
    local(&mut api2);
    snap.services.push(api2);
    snap.endpoint_slices
        .push(crate::fixtures::slice("app", "api2", &["flb-node2"]));
    let a = of_service(&snap, &svc, "bgppool");
    let bgp = a.bgp.clone().unwrap();
    assert_eq!(bgp.shared_with, ["app/api2"]);
    assert_eq!(bgp.serving_nodes, ["flb-node2"]);
    assert!(bgp.peers[0].advertising.is_empty());
    assert!(!a.announced());
    // api2 served on flb-node1 as well: flb-node1 serves both and advertises again.
    snap.endpoint_slices[1] = crate::fixtures::slice("app", "api2", &["flb-node1", "flb-node2"]);
    let bgp = of_service(&snap, &svc, "bgppool").bgp.unwrap();
    assert_eq!(bgp.serving_nodes, ["flb-node1", "flb-node2"]);
    assert_eq!(bgp.peers[0].advertising, ["flb-node1"]);
}
