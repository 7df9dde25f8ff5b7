//! BGP benchmark in the lab (prints figures; asserts nothing).
//!
//! `cargo bench -p ferrolb-tests --bench bgp` with the lab up. Everything is measured at the
//! routers (FRR and BIRD): route changes in their namespaces' kernel tables are timed with
//! `ip monitor` (arrival of the netlink event), sessions by polling their CLIs. Over
//! FERROLB_BENCH_TRIALS trials (default 10) each:
//!
//! - session up: BGPPeers (one per router, IPv4) created → every node's session Established at
//!   the router, and → the Service route installed with all three next hops;
//! - SIGTERM of a speaker → its Cease captured at the router (tcpdump), and → its route gone
//!   from the router's forwarding table (what the router makes of the Cease: FRR batches route
//!   processing, BIRD acts at once);
//! - link cut of a node → its next hop gone at the router, with a 300 ms × 3 BFDProfile;
//! - endpoint change (EndpointSlice written) → the router's next hops updated (Local policy).
//!
//! The speakers measured are those the lab runs (`hack/lab restart-ferrolb`; the binary is
//! printed). FERROLB_BENCH_RELEASE=1 builds release binaries and restarts FerroLB with them
//! first, and restarts it with the debug ones at the end (this disturbs other lab users).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrolb_crds::BGPPeer;
use ferrolb_tests::bgp::{
    BgpService, LinkCut, Objects, ROUTERS, RouteWatch, Router, RouterConfig, hops, node_addr,
    percentile, wait_nexthops, wait_router_sessions,
};
use ferrolb_tests::l2::{Hold, wait_speaker_back};
use ferrolb_tests::{NODES, lab, unique};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

const SETTLE: Duration = Duration::from_secs(60);

unsafe extern "C" {
    /// kill(2): the signal leaves at a known instant (no `kill` process to spawn first).
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGTERM: i32 = 15;

fn trials() -> usize {
    std::env::var("FERROLB_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Samples of one figure, in milliseconds.
#[derive(Default)]
struct Figure {
    name: String,
    ms: Vec<f64>,
    missed: usize,
}

impl Figure {
    fn new(name: &str) -> Figure {
        Figure {
            name: name.to_string(),
            ..Figure::default()
        }
    }

    fn add(&mut self, d: Option<Duration>) {
        match d {
            Some(d) => self.ms.push(d.as_secs_f64() * 1000.0),
            None => self.missed += 1,
        }
    }

    fn print(&self, target: Option<f64>) {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        let over = target.map(|t| v.iter().filter(|x| **x >= t).count());
        println!(
            "{:<52} n={:<3} median {:>7.1} ms  p99 {:>7.1} ms  min {:>7.1}  max {:>7.1}{}{}",
            self.name,
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
            match (target, over) {
                (Some(t), Some(o)) => format!("  (target < {t} ms: {o} over)"),
                _ => String::new(),
            },
            if self.missed > 0 {
                format!("  ({} timed out)", self.missed)
            } else {
                String::new()
            },
        );
    }
}

fn main() {
    let n = trials();
    let lab = lab();
    let release = std::env::var("FERROLB_BENCH_RELEASE").is_ok_and(|v| v == "1");
    if release {
        assert!(
            ferrolb_tests::restart_ferrolb_release(),
            "release build or restart failed"
        );
        settle_after_restart();
    }
    describe_conditions();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(lab.client()).expect("kube client");

    let mut figures = Vec::new();
    figures.extend(session_up(n, &rt, &client));
    figures.extend(sigterm(n));
    figures.extend(endpoint_change(n, &rt, &client));
    figures.extend(bfd_link_cut(n));

    println!("\n== BGP figures ({n} trials each; measured at the routers)");
    for (f, target) in &figures {
        f.print(*target);
    }
    if release {
        assert!(ferrolb_tests::restart_ferrolb(None), "restart-ferrolb");
        settle_after_restart();
    }
}

/// Freshly started speakers are busy for a moment (caches, sessions) before they are measured.
fn settle_after_restart() {
    std::thread::sleep(Duration::from_secs(3));
}

/// What the figures depend on: which speaker binary runs, how much the cluster holds (the
/// speaker recomputes its plan over every Service on each change), and the machine's load.
fn describe_conditions() {
    let exe = lab()
        .pid("speaker-flb-node1")
        .ok()
        .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "?".into());
    let services = lab()
        .kubectl(&["get", "svc", "-A", "--no-headers"])
        .stdout
        .lines()
        .count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "speaker binary: {exe}\nServices in the cluster: {services}\nload average: {}cores: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
            + " ",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}

/// BGPPeers created (API server acknowledged) → every node's session Established at each
/// router (both CLIs polled back to back, ~20-50 ms a round), and → the Service route installed
/// with all three next hops (kernel event).
fn session_up(
    n: usize,
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
) -> Vec<(Figure, Option<f64>)> {
    let svc = BgpService::new(&["198.18.101.1"], "", "Cluster", &["flb-node1"]);
    let ip = svc.ips().remove(0);
    let all = hops(&NODES, &ip);
    let api: Api<BGPPeer> = Api::namespaced(client.clone(), ferrolb_crds::DEFAULT_NAMESPACE);
    let mut established = [
        Figure::new("session up: peer created → Established (frr)"),
        Figure::new("session up: peer created → Established (bird)"),
    ];
    let mut routed = [
        Figure::new("session up: peer created → route installed (frr)"),
        Figure::new("session up: peer created → route installed (bird)"),
    ];
    let node_addrs: BTreeSet<String> = NODES.iter().map(|nd| node_addr(nd, false)).collect();
    for t in 0..n {
        let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
        let mut o = Objects::new();
        let base = unique("bench-up");
        let mut t0 = Vec::new();
        for r in ROUTERS {
            let name = format!("{base}-{}", r.name);
            let peer: BGPPeer = serde_json::from_value(serde_json::json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                "metadata": {"name": name},
                "spec": {"myASN": 64600, "peerASN": r.asn, "peerAddress": r.v4,
                         "holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s"},
            }))
            .expect("BGPPeer");
            o.adopt("BGPPeer", &name);
            t0.push(Instant::now());
            rt.block_on(api.create(&PostParams::default(), &peer))
                .expect("BGPPeer created");
        }
        let mut up: [Option<Duration>; 2] = [None, None];
        while up.iter().any(Option::is_none) && t0[0].elapsed() < SETTLE {
            for (i, r) in ROUTERS.iter().enumerate() {
                if up[i].is_none() && node_addrs.is_subset(&r.established_neighbors()) {
                    up[i] = Some(t0[i].elapsed());
                }
            }
        }
        let mut got = Vec::new();
        for (i, w) in watches.iter().enumerate() {
            established[i].add(up[i]);
            let d = w.wait(&ip, t0[i], SETTLE, |h| *h == all);
            got.push(d);
            routed[i].add(d);
        }
        drop(o);
        // Sessions down and routes gone before the next trial.
        for r in ROUTERS {
            wait_nexthops(r, &ip, &BTreeSet::new(), SETTLE);
            let t = Instant::now();
            while !r.established_neighbors().is_disjoint(&node_addrs) && t.elapsed() < SETTLE {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        eprintln!(
            "session up trial {}/{n}: Established {up:?}, routed {got:?}",
            t + 1
        );
    }
    let [e0, e1] = established;
    let [r0, r1] = routed;
    vec![
        (e0, Some(1000.0)),
        (e1, Some(1000.0)),
        (r0, None),
        (r1, None),
    ]
}

/// A BGP NOTIFICATION from `from` captured on a router's interface (tcpdump, kernel
/// timestamps): when the Cease reached the router, as opposed to when it acted on it.
struct CeaseCapture {
    child: std::process::Child,
}

impl CeaseCapture {
    fn start(router: Router, from: &str) -> CeaseCapture {
        // BGP type (octet 18 of the TCP payload) 3 = NOTIFICATION.
        let filter = format!("tcp port 179 and src host {from} and tcp[((tcp[12]>>4)*4)+18] == 3");
        let child = Command::new("ip")
            .args([
                "netns", "exec", router.ns, "tcpdump", "-l", "-n", "-tt", "-c", "1", "-i", "eth0",
            ])
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts");
        CeaseCapture { child }
    }

    /// Seconds after `since` (wall clock) the NOTIFICATION was captured.
    fn after(self, since: SystemTime, timeout: Duration) -> Option<Duration> {
        let mut child = self.child;
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().ok()?;
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .to_string();
        let ts: f64 = line.split_whitespace().next()?.parse().ok()?;
        let since = since.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        Some(Duration::from_secs_f64((ts - since).max(0.0)))
    }
}

/// SIGTERM of node1's speaker → the Cease captured at each router, and → its (only) route gone
/// from each router's forwarding table.
fn sigterm(n: usize) -> Vec<(Figure, Option<f64>)> {
    let mut o = Objects::new();
    let base = unique("bench-term");
    for r in ROUTERS {
        o.peer(&format!("{base}-{}", r.name), r, false, "");
    }
    let svc = BgpService::new(&["198.18.101.2"], "", "Local", &["flb-node1"]);
    let ip = svc.ips().remove(0);
    let one = hops(&["flb-node1"], &ip);
    let from = node_addr("flb-node1", false);
    let mut wire = [
        Figure::new("SIGTERM → Cease received (frr)"),
        Figure::new("SIGTERM → Cease received (bird)"),
    ];
    let mut figs = [
        Figure::new("SIGTERM → route withdrawn (frr)"),
        Figure::new("SIGTERM → route withdrawn (bird)"),
    ];
    for t in 0..n {
        for r in ROUTERS {
            wait_nexthops(r, &ip, &one, SETTLE);
        }
        // Let the sessions settle (a fresh speaker is still busy starting up).
        std::thread::sleep(Duration::from_secs(2));
        let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
        let captures: Vec<CeaseCapture> = ROUTERS
            .iter()
            .map(|r| CeaseCapture::start(*r, &from))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let hold = Hold::speaker("flb-node1");
        let pid = lab().pid("speaker-flb-node1").expect("speaker pid");
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        // SAFETY: plain kill(2) on a pid we read from the lab's pid file.
        let rc = unsafe { kill(pid, SIGTERM) };
        assert_eq!(rc, 0, "kill {pid}");
        let mut got = Vec::new();
        for (i, w) in watches.iter().enumerate() {
            let d = w.wait(&ip, t0, Duration::from_secs(10), |h| h.is_empty());
            got.push(d);
            figs[i].add(d);
        }
        for (i, c) in captures.into_iter().enumerate() {
            let d = c.after(wall0, Duration::from_secs(2));
            got.push(d);
            wire[i].add(d);
        }
        drop(hold);
        wait_speaker_back("flb-node1", pid);
        eprintln!(
            "SIGTERM trial {}/{n} (route frr, bird; Cease frr, bird): {got:?}",
            t + 1
        );
    }
    drop(svc);
    let [a, b] = figs;
    let [c, d] = wire;
    vec![
        (c, Some(50.0)),
        (d, Some(50.0)),
        (a, Some(50.0)),
        (b, Some(50.0)),
    ]
}

/// EndpointSlice written (API server acknowledged) → router next hops updated (Local policy).
fn endpoint_change(
    n: usize,
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
) -> Vec<(Figure, Option<f64>)> {
    let mut o = Objects::new();
    let base = unique("bench-ep");
    for r in ROUTERS {
        o.peer(&format!("{base}-{}", r.name), r, false, "");
    }
    let svc = BgpService::new(&["198.18.101.3"], "", "Local", &["flb-node1"]);
    let ip = svc.ips().remove(0);
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &svc.ns.name);
    let mut figs = [
        Figure::new("endpoint moved → next hops updated (frr)"),
        Figure::new("endpoint moved → next hops updated (bird)"),
    ];
    let mut at = "flb-node1";
    for r in ROUTERS {
        wait_nexthops(r, &ip, &hops(&[at], &ip), SETTLE);
    }
    for t in 0..n {
        let to = if at == "flb-node1" {
            "flb-node2"
        } else {
            "flb-node1"
        };
        let want = hops(&[to], &ip);
        let slice = slice_json(to);
        let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
        let t0 = Instant::now();
        rt.block_on(api.patch(
            "web-1",
            &PatchParams::apply("ferrolb-bench").force(),
            &Patch::Apply(&slice),
        ))
        .expect("EndpointSlice written");
        let mut got = Vec::new();
        for (i, w) in watches.iter().enumerate() {
            let d = w.wait(&ip, t0, Duration::from_secs(15), |h| *h == want);
            got.push(d);
            figs[i].add(d);
        }
        eprintln!("endpoint trial {}/{n} ({at} → {to}): {got:?}", t + 1);
        at = to;
        std::thread::sleep(Duration::from_millis(500));
    }
    let [a, b] = figs;
    vec![(a, None), (b, None)]
}

/// EndpointSlice `web-1` with one ready endpoint on `node`, for server-side apply.
fn slice_json(node: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [node_addr(node, false)],
            "nodeName": node,
            "conditions": {"ready": true},
        }],
        "ports": [{"port": 80, "protocol": "TCP"}],
    })
}

/// Link cut of node1 → its next hop gone at each router (IPv4 and IPv6), BFD 300 ms × 3.
fn bfd_link_cut(n: usize) -> Vec<(Figure, Option<f64>)> {
    let _routers = RouterConfig::set(&[("LAB_BFD", "1")]);
    let mut o = Objects::new();
    let base = unique("bench-bfd");
    o.apply(
        "BFDProfile",
        &base,
        "{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}",
    );
    for r in ROUTERS {
        for v6 in [false, true] {
            o.peer(
                &format!("{base}-{}{}", r.name, if v6 { 6 } else { 4 }),
                r,
                v6,
                &format!("bfdProfile: {base}"),
            );
        }
    }
    let svc = BgpService::new(
        &["198.18.101.4", "fd00:101::4"],
        "",
        "Cluster",
        &["flb-node2"],
    );
    let ips = svc.ips();
    let mut figs: Vec<Figure> = Vec::new();
    for r in ROUTERS {
        for ip in &ips {
            figs.push(Figure::new(&format!(
                "link cut → next hop gone, BFD ({} {})",
                r.name,
                if ip.contains(':') { "IPv6" } else { "IPv4" }
            )));
        }
    }
    wait_router_sessions(&ROUTERS, &NODES, false, SETTLE);
    for t in 0..n {
        for r in ROUTERS {
            for ip in &ips {
                wait_nexthops(r, ip, &hops(&NODES, ip), SETTLE);
            }
            for nd in NODES {
                for v6 in [false, true] {
                    let a = node_addr(nd, v6);
                    let t = Instant::now();
                    while !r.bfd_up(&a) && t.elapsed() < SETTLE {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
        // Past the Poll sequences that end BFD's slow start.
        std::thread::sleep(Duration::from_secs(2));
        let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
        let cut = LinkCut::node("flb-node1");
        let mut got = Vec::new();
        let mut i = 0;
        for w in &watches {
            for ip in &ips {
                let gone = node_addr("flb-node1", ip.contains(':'));
                let d = w.wait(ip, cut.at, Duration::from_secs(10), |h| {
                    !h.contains(&gone) && !h.is_empty()
                });
                got.push(d);
                figs[i].add(d);
                i += 1;
            }
        }
        drop(cut);
        eprintln!("link cut trial {}/{n}: {got:?}", t + 1);
    }
    drop(svc);
    figs.into_iter().map(|f| (f, Some(1000.0))).collect()
}
