use super::*;
use crate::fixtures::snapshot;

#[test]
fn pools_services_and_pending_with_their_reasons() {
    let s = build(&snapshot());
    let names: Vec<_> = s.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bgppool", "broken", "l2pool"]);
    assert_eq!(s.pools[0].ipv4, Usage { used: 1, free: 3 });
    assert_eq!(s.pools[0].ipv6, Usage { used: 0, free: 4 });
    assert_eq!(s.pools[1].valid, Some(false));
    assert_eq!(
        s.pools[1].invalid_reason.as_deref(),
        Some("Overlap: overlaps pool l2pool")
    );
    let svcs: Vec<_> = s.services.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(svcs, ["api", "web"], "the ClusterIP Service is not ours");
    assert_eq!(s.pending.len(), 1);
    assert_eq!(s.pending[0].name, "stuck");
    assert_eq!(s.pending[0].reason, "PoolNotUsable");
    let out = human(&s);
    println!("{out}");
    assert!(out.contains("app        web   198.18.0.230  l2pool   L2 flb-node3 (eth0)\n"));
    assert!(out.contains("broken   False  true         0          0          0          0          Overlap: overlaps pool l2pool\n"));
    assert!(out.contains("app        stuck  PoolNotUsable  pool \"gone\""));
}

#[test]
fn json_field_names_are_stable() {
    let v = serde_json::to_value(build(&snapshot())).unwrap();
    assert_eq!(v["pools"][0]["ipv4"]["free"], 3);
    assert_eq!(v["pools"][2]["autoAssign"], false);
    assert_eq!(v["services"][1]["addresses"][0], "198.18.0.230");
    assert_eq!(v["services"][1]["pool"], "l2pool");
    let l2 = &v["services"][1]["announcement"]["layer2"];
    assert_eq!(l2["nodes"][0], "flb-node3");
    assert_eq!(l2["interfaces"][0], "eth0");
    assert_eq!(l2["announced"], true);
    let bgp = &v["services"][0]["announcement"]["bgp"];
    assert_eq!(bgp["peers"][0]["established"][0], "flb-node1");
    assert_eq!(bgp["peers"][0]["peerAddress"], "198.18.0.2");
    assert_eq!(v["pending"][0]["reason"], "PoolNotUsable");
}

#[test]
fn a_service_without_a_condition_is_pending_until_the_controller_writes_one() {
    let mut snap = snapshot();
    snap.services = vec![
        serde_json::from_value(crate::fixtures::service("app", "new", &[], None, vec![])).unwrap(),
    ];
    let s = build(&snap);
    assert_eq!(s.pending[0].reason, "NotProcessed");
    assert!(s.services.is_empty());
    assert!(human(&s).contains("no Service has an address from FerroLB\n"));
}

#[test]
fn with_class_only_services_of_that_class_are_listed() {
    let mut snap = crate::fixtures::snapshot();
    // Without a condition from FerroLB, a Service of another class is not listed.
    for s in &mut snap.services {
        if let Some(st) = s.status.as_mut() {
            st.conditions = None;
        }
    }
    let names = |snap: &Snapshot| -> Vec<String> {
        let st = build(snap);
        let mut n: Vec<String> = st.services.iter().map(|s| s.name.clone()).collect();
        n.extend(st.pending.iter().map(|p| p.name.clone()));
        n.sort();
        n.dedup();
        n
    };
    assert_eq!(names(&snap), ["api", "stuck", "web"]);
    snap.services[0].spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
    assert_eq!(names(&snap), ["api", "stuck"]);
    snap.lb_class = Some("example.com/lb".into());
    assert_eq!(names(&snap), ["web"]);
}
