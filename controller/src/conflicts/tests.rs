use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn conflict(ip: &str) -> AddressConflict {
    AddressConflict {
        address: ip.parse().unwrap(),
        mac: "02:00:c6:12:00:09".into(),
        node: "flb-node1".into(),
        interface: "eth0".into(),
    }
}

fn svcs(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_report_is_recorded_once_and_refreshed_at_most_every_minute() {
    let mut m = Conflicts::default();
    let c = conflict("198.18.0.201");
    assert_eq!(m.report("p", &c, &svcs(&["ns/a"]), at(0)), Seen::New);
    assert_eq!(m.report("p", &c, &svcs(&["ns/a"]), at(59)), Seen::Known);
    assert_eq!(m.report("p", &c, &svcs(&["ns/a"]), at(60)), Seen::Refreshed);
    // Another holder of the shared address is named too.
    assert_eq!(
        m.report("p", &c, &svcs(&["ns/a", "ns/b"]), at(61)),
        Seen::Refreshed
    );
    let list = m.of_pool("p");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].address, "198.18.0.201");
    assert_eq!(list[0].first_seen, Time(at(0)));
    assert_eq!(list[0].last_seen, Time(at(60)));
    assert_eq!(list[0].services, ["ns/a", "ns/b"]);
    assert_eq!(m.of_service("ns/b"), [c]);
    assert!(m.of_service("ns/c").is_empty());
    assert_eq!(
        m.addresses().collect::<Vec<_>>(),
        ["198.18.0.201".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn a_lying_node_fills_a_pool_no_further_than_the_cap() {
    let mut m = Conflicts::default();
    for i in 0..MAX_PER_POOL {
        let c = conflict(&format!("198.18.0.{i}"));
        assert_eq!(m.report("p", &c, &svcs(&["ns/a"]), at(0)), Seen::New);
    }
    let extra = conflict("198.18.0.200");
    assert_eq!(m.report("p", &extra, &svcs(&["ns/a"]), at(0)), Seen::Full);
    assert_eq!(m.of_pool("p").len(), MAX_PER_POOL);
    // Another pool has its own budget.
    assert_eq!(m.report("q", &extra, &svcs(&["ns/a"]), at(0)), Seen::New);
    // Long texts are cut, Services named are capped.
    let mut long = conflict("198.18.1.1");
    long.mac = "x".repeat(10_000);
    let many: Vec<String> = (0..100).map(|i| format!("ns/s{i}")).collect();
    m.report("q", &long, &many, at(0));
    let e = &m.of_pool("q")[1];
    assert_eq!(e.mac.len(), MAX_TEXT);
    assert_eq!(e.services.len(), MAX_SERVICES);
}

#[test]
fn conflicts_expire_an_hour_after_last_seen() {
    let mut m = Conflicts::default();
    m.report("p", &conflict("198.18.0.1"), &svcs(&["ns/a"]), at(0));
    m.report("p", &conflict("198.18.0.2"), &svcs(&["ns/b"]), at(0));
    m.report("p", &conflict("198.18.0.2"), &svcs(&["ns/b"]), at(600));
    assert!(!m.expire(at(3599)));
    assert!(m.expire(at(3600)));
    assert_eq!(
        m.addresses().collect::<Vec<_>>(),
        ["198.18.0.2".parse::<IpAddr>().unwrap()]
    );
    assert!(m.expire(at(4200)));
    assert!(m.of_pool("p").is_empty());
}

#[test]
fn the_status_reads_back_and_turning_the_option_off_forgets() {
    let mut m = Conflicts::default();
    m.report("p", &conflict("198.18.0.1"), &svcs(&["ns/a"]), at(0));
    m.report("q", &conflict("fd00:18::1"), &svcs(&["ns/b"]), at(0));
    let mut shown = m.of_pool("p");
    // An edited status: garbage is dropped, addresses are normalised.
    shown.push(PoolConflict {
        address: "not an address".into(),
        ..shown[0].clone()
    });
    let mut back = Conflicts::default();
    back.seed("p", &shown);
    back.seed("q", &m.of_pool("q"));
    assert_eq!(back, m);
    assert!(back.retain_pools(&BTreeSet::from(["q".to_string()])));
    assert!(!back.retain_pools(&BTreeSet::from(["q".to_string()])));
    assert!(back.of_pool("p").is_empty());
    assert_eq!(back.of_pool("q").len(), 1);
}
