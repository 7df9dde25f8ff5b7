use super::*;
use crate::fixtures::snapshot;

#[test]
fn the_speakers_messages_name_nodes_and_interfaces() {
    assert_eq!(
        parse_l2_message(
            "layer2: 198.18.0.5 from node n1 on eth0, eth1; fd00::5 from node n1 on eth0"
        ),
        (
            vec!["n1".to_string()],
            vec!["eth0".to_string(), "eth1".to_string()]
        )
    );
    assert_eq!(
        parse_l2_message(
            "layer2: 198.18.0.5 elected to node n2, which cannot announce it: flbnone0 (no such interface)"
        ),
        (vec!["n2".to_string()], vec![])
    );
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
    snap.bgp_advertisements[0].spec.ip_address_pools = vec!["other".into()];
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
