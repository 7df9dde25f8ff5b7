//! Planned restarts against drains (issue 13): with graceful restart negotiated, a speaker that
//! gets SIGTERM on a node that stays in service (a rolling update) closes its sessions without a
//! Cease, so FRR and BIRD keep its routes (stale) until the next speaker re-advertises them and
//! sends End-of-RIB; the same SIGTERM on a cordoned node sends a Cease and the routes go at once.
//!
//! The Service is announced by flb-node1 only (its BGPAdvertisement selects that node), so a
//! withdrawn route is a route gone, and a client probing the address through FRR every 10 ms
//! loses requests for as long as it is gone.

use std::time::{Duration, Instant};

use ferrolb_tests::backend::{Backend, Spec, url, wait_http};
use ferrolb_tests::bgp::{
    FRR, Objects, ROUTERS, RouteWatch, hops, wait_routed, wait_shown_established,
};
use ferrolb_tests::l2::{Hold, signal_speaker, wait_speaker_back};
use ferrolb_tests::probe::Prober;
use ferrolb_tests::restart::{Cordon, RouteKeeper, peers_v4, restart_speaker};
use ferrolb_tests::{lab, serial, unique, wait_for};

const SETTLE: Duration = Duration::from_secs(60);
const NODE: &str = "flb-node1";

/// Peers to both routers with graceful restart, and a Service on NODE announced by NODE alone.
fn setup(o: &mut Objects) -> (Vec<String>, Backend, Vec<String>) {
    let p = unique("restart");
    let peers = peers_v4(o, &p, "enableGracefulRestart: true");
    o.advertised_pool(
        &p,
        &["198.18.100.21"],
        "BGPAdvertisement",
        &format!("nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {NODE}}}}}]"),
    );
    let b = Backend::new(Spec {
        node: Some(NODE.into()),
        pool: Some(p),
        ..Spec::default()
    });
    b.wait_ready();
    let ips = b.ips(SETTLE);
    wait_routed(&ips, &[NODE], SETTLE);
    for peer in &peers {
        wait_shown_established(peer, SETTLE, |_| true);
    }
    wait_http(&url(&ips[0], 80, "/hostname"), SETTLE, |_| true);
    (peers, b, ips)
}

/// FRR holds `ip` from NODE, and (`stale`) marked or not marked stale.
fn frr_path(ip: &str, stale: bool) -> bool {
    let paths = FRR.rib(ip);
    !paths.is_empty() && paths.iter().all(|p| p.stale == stale)
}

#[test]
fn a_rolling_restart_keeps_the_routes_and_a_cordoned_node_withdraws_at_once() {
    let _s = serial();
    let mut o = Objects::new();
    let (peers, _backend, ips) = setup(&mut o);
    let ip = ips[0].clone();

    // Planned restart: SIGTERM on a node in service; the supervisor starts a new speaker.
    let prober = Prober::start(&ip);
    std::thread::sleep(Duration::from_millis(300));
    let keeper = RouteKeeper::start(&ips, &[NODE]);
    let t0 = Instant::now();
    let pid = lab().pid(&format!("speaker-{NODE}")).expect("speaker pid");
    signal_speaker(NODE, "-TERM");
    // While the old speaker is gone the routers keep its route, marked stale (FRR shows it).
    let stale = wait_for(
        "FRR to mark the route stale",
        Duration::from_secs(5),
        || frr_path(&ip, true).then_some(t0.elapsed()),
    );
    wait_speaker_back(NODE, pid);
    for peer in &peers {
        wait_shown_established(peer, SETTLE, |_| true);
    }
    // The new speaker re-advertised and sent End-of-RIB: FRR clears the stale mark.
    let refreshed = wait_for("FRR to refresh the route", SETTLE, || {
        frr_path(&ip, false).then_some(t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (polls, lost) = keeper.finish();
    let probes: Vec<_> = prober.finish().into_iter().filter(|p| p.at >= t0).collect();
    let failed = probes.iter().filter(|p| p.answer.is_none()).count();
    println!(
        "rolling restart of {NODE}: stale at FRR after {stale:?}, refreshed after {refreshed:?}; \
         {polls} route polls, {} deviations; {failed} of {} probes failed",
        lost.len(),
        probes.len()
    );
    stale.expect("FRR kept the route as stale while the speaker restarted");
    refreshed.expect("FRR refreshed the route from the new speaker");
    assert!(polls > 20, "the route watch ran ({polls} polls)");
    assert!(lost.is_empty(), "the route left a router: {lost:?}");
    assert_eq!(failed, 0, "probes failed during the restart");

    // Drain: the node is cordoned, then its speaker gets SIGTERM: Cease, withdrawn at once.
    let cordon = Cordon::node(NODE);
    // The speaker's Node cache follows the API server within milliseconds; leave it a moment.
    std::thread::sleep(Duration::from_secs(1));
    let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
    let hold = Hold::speaker(NODE);
    let pid = lab().pid(&format!("speaker-{NODE}")).expect("speaker pid");
    let t0 = Instant::now();
    signal_speaker(NODE, "-TERM");
    for w in &watches {
        let took = w
            .wait(&ip, t0, Duration::from_secs(5), |h| h.is_empty())
            .unwrap_or_else(|| panic!("{} kept {ip} from a cordoned node", w.router.name));
        println!(
            "cordoned {NODE}, SIGTERM → {} withdraws {ip}: {took:?}",
            w.router.name
        );
        assert!(took < Duration::from_secs(1), "{}: {took:?}", w.router.name);
    }
    drop(hold);
    drop(cordon);
    wait_speaker_back(NODE, pid);
    wait_routed(&ips, &[NODE], SETTLE);

    // And a restart after the drain keeps the routes again (the rule reads the Node afresh).
    let keeper = RouteKeeper::start(&ips, &[NODE]);
    std::thread::sleep(Duration::from_millis(500));
    restart_speaker(NODE);
    for peer in &peers {
        wait_shown_established(peer, SETTLE, |_| true);
    }
    let (_, lost) = keeper.finish();
    assert!(lost.is_empty(), "the route left a router: {lost:?}");
    assert_eq!(
        ROUTERS.map(|r| r.kernel_nexthops(&ip)),
        ROUTERS.map(|_| hops(&[NODE], &ip))
    );
}
