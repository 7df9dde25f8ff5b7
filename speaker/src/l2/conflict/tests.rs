use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x07]);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 50);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 0x50);
const MS: Duration = Duration::from_millis(1);

fn wanted(ip: IpAddr, ifaces: &[&str]) -> DesiredAnnouncements {
    DesiredAnnouncements::from([(ip, ifaces.iter().map(|s| s.to_string()).collect())])
}

fn probe(iface: &str, ip: IpAddr) -> Action {
    Action::Probe {
        iface: iface.into(),
        ip,
    }
}

/// An ARP reply from `mac` saying it has `ip`.
fn reply4(mac: MacAddr) -> Inbound {
    Inbound::ArpReply {
        sender_mac: mac,
        sender_ip: VIP4,
    }
}

fn advert6(mac: MacAddr) -> Inbound {
    Inbound::NeighborAdvertisement {
        src_mac: mac,
        target: VIP6,
        target_lladdr: Some(mac),
    }
}

/// Runs ticks every millisecond up to `until`, collecting actions and whether `cleared` changed.
fn run_until(g: &mut Guard, from: Instant, until: Instant) -> (Vec<Action>, bool) {
    let mut all = Vec::new();
    let mut changed = false;
    let mut now = from;
    while now <= until {
        let (actions, c) = g.on_tick(now);
        all.extend(actions);
        changed |= c;
        now += MS;
    }
    (all, changed)
}

#[test]
fn a_quiet_probe_round_clears_the_address_after_probe_wait_on_every_interface() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    let first = g.set_wanted(&wanted(ip, &["eth0", "eth1"]), &BTreeSet::new(), t0);
    assert_eq!(first, vec![probe("eth0", ip), probe("eth1", ip)]);
    assert!(g.cleared().is_empty(), "not announced while probing");
    let (probes, changed) = run_until(&mut g, t0 + MS, t0 + PROBE_WAIT - MS);
    assert_eq!(probes.len(), 4, "two more probes per interface: {probes:?}");
    assert!(!changed && g.cleared().is_empty());
    let (none, changed) = g.on_tick(t0 + PROBE_WAIT);
    assert!(none.is_empty() && changed);
    assert_eq!(g.cleared(), wanted(ip, &["eth0", "eth1"]));
    assert_eq!(g.next_deadline(), None, "nothing more to do");
    assert!(g.conflicts().is_empty() && g.counts().is_empty());
}

#[test]
fn an_answered_probe_holds_the_address_back_reports_once_and_reprobes_with_backoff() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::new(), t0);
    assert_eq!(g.on_inbound("eth0", &reply4(OTHER_MAC), t0 + 2 * MS), None);
    // Never announced, even after the round would have ended.
    let (_, changed) = run_until(&mut g, t0, t0 + 2 * PROBE_WAIT);
    assert!(!changed && g.cleared().is_empty());
    assert_eq!(
        g.conflicts(),
        Conflicts::from([(ip, BTreeMap::from([("eth0".to_string(), OTHER_MAC)]))])
    );
    assert_eq!(g.counts().get(&("eth0".to_string(), "ipv4")), Some(&1));
    let detected = g.take_detected();
    assert_eq!(detected.len(), 1);
    assert!(!detected[0].while_announcing);
    // Re-probe after REPROBE_FIRST; still answered: no second report, next one in 2x.
    assert_eq!(g.next_deadline(), Some(t0 + 2 * MS + REPROBE_FIRST));
    let t1 = t0 + 2 * MS + REPROBE_FIRST;
    assert_eq!(g.on_tick(t1).0, vec![probe("eth0", ip)]);
    g.on_inbound("eth0", &reply4(OTHER_MAC), t1 + MS);
    assert_eq!(g.counts().get(&("eth0".to_string(), "ipv4")), Some(&1));
    assert!(g.take_detected().is_empty());
    assert_eq!(g.next_deadline(), Some(t1 + MS + 2 * REPROBE_FIRST));
    // The other host went away: the next round is quiet and the address is announced.
    let t2 = t1 + MS + 2 * REPROBE_FIRST;
    assert_eq!(g.on_tick(t2).0, vec![probe("eth0", ip)]);
    let (_, changed) = run_until(&mut g, t2 + MS, t2 + PROBE_WAIT);
    assert!(changed);
    assert_eq!(g.cleared(), wanted(ip, &["eth0"]));
    assert!(g.conflicts().is_empty());
}

#[test]
fn rival_probes_and_dad_count_while_probing_only() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V6(VIP6);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::new(), t0);
    // An ordinary solicitation is no claim.
    let ns = Inbound::NeighborSolicitation {
        src_mac: OTHER_MAC,
        src_ip: "fd00:200::2".parse().unwrap(),
        target: VIP6,
        source_lladdr: Some(OTHER_MAC),
    };
    g.on_inbound("eth0", &ns, t0 + MS);
    assert!(g.conflicts().is_empty());
    let dad = Inbound::NeighborSolicitation {
        src_mac: OTHER_MAC,
        src_ip: Ipv6Addr::UNSPECIFIED,
        target: VIP6,
        source_lladdr: None,
    };
    g.on_inbound("eth0", &dad, t0 + 2 * MS);
    assert_eq!(g.counts().get(&("eth0".to_string(), "ipv6")), Some(&1));

    // Announced (handed over, grace over): another host's DAD probe is answered by the
    // announcer, not a conflict.
    let mut g = Guard::new();
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::from([ip]), t0);
    assert_eq!(g.on_inbound("eth0", &dad, t0 + HANDOVER_GRACE), None);
    assert!(g.conflicts().is_empty());
}

#[test]
fn a_hand_over_is_announced_at_once_and_claims_in_the_grace_are_not_counted() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    let probes = g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::from([ip]), t0);
    assert!(probes.is_empty(), "no probe on failover");
    assert_eq!(g.cleared(), wanted(ip, &["eth0"]));
    // The former holder's gratuitous schedule.
    for ms in [0u64, 100, 500, 1000, 2000] {
        let now = t0 + Duration::from_millis(ms);
        assert_eq!(g.on_inbound("eth0", &reply4(OTHER_MAC), now), None);
    }
    assert!(g.conflicts().is_empty() && g.counts().is_empty());
}

#[test]
fn while_announcing_defend_once_then_report_and_keep_the_address() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V6(VIP6);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::from([ip]), t0);
    let t1 = t0 + HANDOVER_GRACE;
    assert_eq!(
        g.on_inbound("eth0", &advert6(OTHER_MAC), t1),
        Some(Action::SendGratuitous {
            iface: "eth0".into(),
            ip
        }),
        "first claim: defend"
    );
    assert!(g.conflicts().is_empty());
    assert_eq!(
        g.on_inbound("eth0", &advert6(OTHER_MAC), t1 + DEFEND_INTERVAL - MS),
        None,
        "second within the interval: report, do not fight"
    );
    assert_eq!(g.conflicts()[&ip]["eth0"], OTHER_MAC);
    let detected = g.take_detected();
    assert_eq!(detected.len(), 1);
    assert!(detected[0].while_announcing);
    assert_eq!(
        g.cleared(),
        wanted(ip, &["eth0"]),
        "still announced while reported"
    );
    // Re-probed later: the other host answers the DAD probe, the conflict stays, no recount.
    let t2 = t1 + DEFEND_INTERVAL - MS + REPROBE_FIRST;
    assert_eq!(g.on_tick(t2).0, vec![probe("eth0", ip)]);
    g.on_inbound("eth0", &advert6(OTHER_MAC), t2 + MS);
    assert_eq!(g.counts().values().sum::<u64>(), 1);
    assert_eq!(g.conflicts()[&ip]["eth0"], OTHER_MAC);
}

#[test]
fn claims_further_apart_than_the_defend_interval_are_defended_each_time() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::from([ip]), t0);
    for i in 1..5u32 {
        let now = t0 + HANDOVER_GRACE + (DEFEND_INTERVAL + MS) * i;
        assert!(g.on_inbound("eth0", &reply4(OTHER_MAC), now).is_some());
    }
    assert!(g.conflicts().is_empty());
}

#[test]
fn our_own_macs_other_interfaces_and_unwanted_addresses_are_no_conflict() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    g.set_own_macs(BTreeSet::from([OUR_MAC]));
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::new(), t0);
    g.on_inbound("eth0", &reply4(OUR_MAC), t0 + MS);
    g.on_inbound("eth1", &reply4(OTHER_MAC), t0 + MS);
    let other = Inbound::ArpReply {
        sender_mac: OTHER_MAC,
        sender_ip: Ipv4Addr::new(198, 18, 200, 51),
    };
    g.on_inbound("eth0", &other, t0 + MS);
    assert!(g.conflicts().is_empty());
    // No longer wanted: forgotten, a claim then finds nothing.
    g.set_wanted(&DesiredAnnouncements::new(), &BTreeSet::new(), t0 + 2 * MS);
    g.on_inbound("eth0", &reply4(OTHER_MAC), t0 + 3 * MS);
    assert!(g.conflicts().is_empty() && g.next_deadline().is_none());
}

#[test]
fn a_flood_of_claims_gives_one_defence_and_one_report() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::from([ip]), t0);
    let t1 = t0 + HANDOVER_GRACE;
    let defences = (0..100_000u32)
        .filter_map(|i| g.on_inbound("eth0", &reply4(OTHER_MAC), t1 + MS * (i % 50)))
        .count();
    assert_eq!(defences, 1);
    assert_eq!(g.take_detected().len(), 1);
    assert_eq!(g.counts().values().sum::<u64>(), 1);
}

#[test]
fn a_late_tick_sends_one_probe_and_the_round_still_ends_at_probe_wait() {
    let t0 = Instant::now();
    let mut g = Guard::new();
    let ip = IpAddr::V4(VIP4);
    g.set_wanted(&wanted(ip, &["eth0"]), &BTreeSet::new(), t0);
    assert_eq!(g.next_deadline(), Some(t0 + PROBE_SCHEDULE[1]));
    let (probes, changed) = g.on_tick(t0 + Duration::from_millis(250));
    assert_eq!(probes.len(), 1);
    assert!(!changed);
    assert_eq!(g.next_deadline(), Some(t0 + PROBE_WAIT));
    assert!(g.on_tick(t0 + PROBE_WAIT).1);
}

#[test]
fn probe_frames_are_rfc_5227_and_dad_probes() {
    let v4 = probe("eth0", IpAddr::V4(VIP4)).frames(OUR_MAC);
    assert_eq!(
        crate::l2::frame::parse(&v4[0]),
        Ok(Inbound::ArpRequest {
            sender_mac: OUR_MAC,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_ip: VIP4
        })
    );
    let v6 = probe("eth0", IpAddr::V6(VIP6)).frames(OUR_MAC);
    assert_eq!(
        crate::l2::frame::parse(&v6[0]),
        Ok(Inbound::NeighborSolicitation {
            src_mac: OUR_MAC,
            src_ip: Ipv6Addr::UNSPECIFIED,
            target: VIP6,
            source_lladdr: None
        })
    );
}
