//! Node lifecycle as Kubernetes' service controller treats it for cloud load balancers (issue 13
//! §3): a node labelled `node.kubernetes.io/exclude-from-external-load-balancers` or tainted
//! `ToBeDeletedByClusterAutoscaler` stops announcing while it still forwards, so a client probing
//! the address every 10 ms loses nothing but the hand-over: in L2 mode another node takes the
//! address (gratuitous ARP), in BGP mode the node's route goes while the others' remain. And
//! `L2Advertisement.spec.sticky`: off (the default) an address goes back to its elected node when
//! that node returns; on, it stays where it moved until the operator turns stickiness off.
//!
//! The Services have an agnhost pod on every node (Cluster policy), so whichever node receives a
//! connection, kube-proxy delivers it.

use std::time::{Duration, Instant};

use ferrolb_crds::serving::{EXCLUDE_LABEL, TO_BE_DELETED_TAINT};
use ferrolb_tests::backend::{Backend, Spec, url, wait_http};
use ferrolb_tests::bgp::{FRR, Objects, hops, wait_nexthops, wait_routed};
use ferrolb_tests::l2::answering_macs;
use ferrolb_tests::probe::{PROBE_EVERY, Prober};
use ferrolb_tests::{NODES, lab, node_mac, repo, serial, unique, wait_for};

const SETTLE: Duration = Duration::from_secs(60);
/// How long a node may take to hand over once the API server has its new label or taint.
const HAND_OVER: Duration = Duration::from_secs(10);
/// Failed probes a hand-over may cost (10 ms apart): the time the new announcer's gratuitous ARP
/// or the router's withdrawal takes, with a margin for a loaded lab.
const LOSS_ALLOWED: usize = 5;

/// A node rule applied to a node, undone when dropped (a node left excluded would stay silent
/// for every other test).
struct Mark {
    node: String,
    /// `label` or `taint`.
    verb: &'static str,
    key: &'static str,
}

impl Mark {
    /// `kubectl VERB node NODE SET --overwrite`, undone with `kubectl VERB node NODE KEY-`.
    fn new(verb: &'static str, node: &str, key: &'static str, set: &str) -> Mark {
        let r = lab().kubectl(&[verb, "node", node, set, "--overwrite"]);
        assert!(r.ok, "kubectl {verb} node {node} {set}: {}", r.stderr);
        Mark {
            node: node.to_string(),
            verb,
            key,
        }
    }

    /// The label Kubernetes' service controller reads.
    fn excluded(node: &str) -> Mark {
        Mark::new(
            "label",
            node,
            EXCLUDE_LABEL,
            &format!("{EXCLUDE_LABEL}=true"),
        )
    }

    /// The taint the cluster autoscaler puts on a node it is about to delete (its value is the
    /// time it decided, in seconds).
    fn to_be_deleted(node: &str) -> Mark {
        let set = format!("{TO_BE_DELETED_TAINT}=1764475200:NoSchedule");
        Mark::new("taint", node, TO_BE_DELETED_TAINT, &set)
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        let unset = format!("{}-", self.key);
        let r = lab().kubectl(&[self.verb, "node", &self.node, &unset]);
        if !r.ok {
            eprintln!(
                "kubectl {} node {} {unset}: {}",
                self.verb, self.node, r.stderr
            );
        }
    }
}

/// The CRDs of this tree (the lab applied them when it came up; `sticky` may be newer).
fn apply_crds() {
    let r = lab().kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &repo().join("crds/ferrolb-crds.yaml").to_string_lossy(),
    ]);
    assert!(r.ok, "applying the CRDs: {}", r.stderr);
}

/// Failed probes among `probes` started after `from`, and the longest run of them in time.
fn loss(probes: &[ferrolb_tests::probe::Probe], from: Instant) -> (usize, Duration) {
    let mut failed = 0;
    let (mut run_len, mut longest) = (0u32, 0u32);
    for p in probes.iter().filter(|p| p.at >= from) {
        if p.answer.is_none() {
            failed += 1;
            run_len += 1;
            longest = longest.max(run_len);
        } else {
            run_len = 0;
        }
    }
    (failed, PROBE_EVERY * longest)
}

/// An L2 Service with a pod on every node: its address and the backend.
fn l2_service(o: &mut Objects, address: &str) -> (String, Backend, String) {
    let p = unique("life");
    o.advertised_pool(&p, &[address], "L2Advertisement", "");
    let b = Backend::new(Spec::one_per_node(&p));
    b.wait_ready();
    let ip = b.ips(SETTLE).remove(0);
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |_| true);
    (p, b, ip)
}

/// Waits until the Service's condition names a node for which `ok` holds and only that node's
/// MAC answers ARP for `ip`; returns the node and how long it took.
fn wait_announcer(
    b: &Backend,
    ip: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> (String, Duration) {
    let t = Instant::now();
    let node = wait_for(what, HAND_OVER, || {
        let n = b.l2_announcer(ip).filter(|n| ok(n))?;
        let macs = answering_macs("flb-client", ip);
        (macs.len() == 1 && macs.contains(&node_mac(&n, 0))).then_some(n)
    })
    .unwrap_or_else(|e| panic!("{e}: condition {:?}", b.l2_condition("message")));
    (node, t.elapsed())
}

/// Marks the announcer with `mark`, checks another node takes over without loss beyond the
/// hand-over, undoes the mark, and returns the node that took over.
fn hand_over(
    b: &Backend,
    ip: &str,
    holder: &str,
    how: &str,
    mark: fn(&str) -> Mark,
) -> (String, Mark) {
    let prober = Prober::start(ip);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let m = mark(holder);
    let (next, took) = wait_announcer(b, ip, &format!("another node than {holder} ({how})"), |n| {
        n != holder
    });
    std::thread::sleep(Duration::from_millis(500));
    let probes = prober.finish();
    let (failed, gap) = loss(&probes, t0);
    eprintln!(
        "L2 {how}: {holder} -> {next}, condition and ARP after {took:?}; {failed} of {} probes \
         failed, longest gap {gap:?}",
        probes.iter().filter(|p| p.at >= t0).count()
    );
    assert!(
        failed <= LOSS_ALLOWED,
        "{how}: {failed} probes failed during the hand-over from {holder} to {next}"
    );
    (next, m)
}

#[test]
fn l2_an_excluded_or_tainted_node_hands_over_and_stickiness_keeps_the_address_away() {
    let _s = serial();
    apply_crds();
    let mut o = Objects::new();
    let (pool, b, ip) = l2_service(&mut o, "198.18.0.236");
    let (elected, _) = wait_announcer(&b, &ip, "an announcer", |_| true);

    for (how, mark) in [
        ("exclude label", Mark::excluded as fn(&str) -> Mark),
        ("autoscaler taint", Mark::to_be_deleted),
    ] {
        let (_, m) = hand_over(&b, &ip, &elected, how, mark);
        // Not sticky (the default): back to the elected node when it is usable again.
        drop(m);
        wait_announcer(&b, &ip, &format!("{elected} back after the {how}"), |n| {
            n == elected
        });
    }

    // Sticky: the node that took over keeps the address when the elected node returns...
    o.patch_spec("L2Advertisement", &pool, r#"{"sticky": true}"#);
    let (next, m) = hand_over(&b, &ip, &elected, "exclude label, sticky", Mark::excluded);
    wait_for("the condition to name the new holder", HAND_OVER, || {
        (b.l2_announcer(&ip)? == next).then_some(())
    })
    .unwrap();
    drop(m);
    std::thread::sleep(Duration::from_secs(3));
    let (still, _) = wait_announcer(&b, &ip, "the holder", |_| true);
    assert_eq!(
        still, next,
        "sticky: the address stays on {next} after {elected} returned"
    );
    // ...until the operator turns stickiness off: the election decides again.
    o.patch_spec("L2Advertisement", &pool, r#"{"sticky": false}"#);
    wait_announcer(&b, &ip, &format!("{elected} after rebalancing"), |n| {
        n == elected
    });
}

#[test]
fn bgp_an_excluded_or_tainted_node_withdraws_while_the_others_keep_the_route() {
    let _s = serial();
    let mut o = Objects::new();
    let p = unique("life");
    o.peers_everywhere(&p, "");
    o.advertised_pool(&p, &["198.18.100.36"], "BGPAdvertisement", "");
    let b = Backend::new(Spec::one_per_node(&p));
    b.wait_ready();
    let ips = b.ips(SETTLE);
    let ip = ips[0].clone();
    wait_routed(&ips, &NODES, SETTLE);
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |_| true);
    let node = NODES[1];
    let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != node).collect();

    for (how, mark) in [
        ("exclude label", Mark::excluded as fn(&str) -> Mark),
        ("autoscaler taint", Mark::to_be_deleted),
    ] {
        let prober = Prober::start(&ip);
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let m = mark(node);
        wait_nexthops(FRR, &ip, &hops(&others, &ip), HAND_OVER);
        let took = t0.elapsed();
        wait_routed(&ips, &others, HAND_OVER);
        std::thread::sleep(Duration::from_millis(500));
        let probes = prober.finish();
        let (failed, gap) = loss(&probes, t0);
        eprintln!(
            "BGP {how}: {node}'s route gone from FRR after {took:?}; {failed} of {} probes \
             failed, longest gap {gap:?}",
            probes.iter().filter(|p| p.at >= t0).count()
        );
        assert!(failed <= LOSS_ALLOWED, "{how}: {failed} probes failed");
        drop(m);
        wait_routed(&ips, &NODES, HAND_OVER);
    }
}
