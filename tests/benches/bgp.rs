//! BGP benchmark in the lab, as a user sees it (prints figures; asserts nothing).
//!
//! FerroLB runs as pods (`want_pods()`: installed from deploy/, speaker DaemonSet) in front of real
//! backends (agnhost Deployments behind LoadBalancer Services with selectors). Route changes are
//! timed in the routers' kernel tables (FRR and BIRD namespaces: `ip monitor` events, each
//! followed by a read of the route), sessions by polling the routers' CLIs, and the client's view
//! by an HTTP GET of `/hostname` from flb-client every 10 ms (new connection each: a new source
//! port, so FRR's ECMP spreads them over the next hops; 200 ms timeout) through its router, FRR.
//! Over FERROLB_BENCH_TRIALS trials (default 10; a run takes about 6 minutes on an idle lab) each:
//!
//! - session up: BGPPeers (one per router, IPv4) created → every node's session Established at
//!   the router, and → the Service's route installed with all three next hops (Cluster policy);
//! - speaker pod deleted (what a rollout or a drain does; graceful: the kubelet sends SIGTERM):
//!   → its Cease captured at each router (tcpdump), → its next hop gone, → back with the new pod,
//!   and the client's failed requests meanwhile (Local policy, one backend pod per node);
//! - speaker crash (SIGKILL of the speaker container's process; the kubelet restarts it; no
//!   graceful restart configured): → its next hop gone (the kernel closes the session), → back,
//!   and the client's failed requests;
//! - a backend pod moved to another node (Local policy, one replica re-pinned: the Deployment
//!   rolls it): the EndpointSlice serving the new node → next hop added, the old node's endpoint
//!   no longer serving → its next hop removed (at both routers; the slice changes are timed by the
//!   bench's own watch, which may deliver them after the speaker's: a negative figure means the
//!   router changed before the bench saw the slice), pin changed → routed to the new node only
//!   (includes the pod's start), and the client's failed requests during the move;
//! - link cut of a node (its switch port down) with a 300 ms × 3 BFDProfile → its next hop gone
//!   at each router (IPv4 and IPv6), and the client's failed requests until then (Local policy,
//!   a pod per node).
//!
//! Run (build outside the lab lock; the lock keeps other test runs out while it measures):
//!
//! ```sh
//! cargo bench -p ferrolb-tests --bench bgp --no-run
//! flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench bgp
//! ```
//!
//! That measures the images the lab runs; the header says which build they hold (the speaker's
//! binary compared with the static builds in target/: dev or release). Images of the release
//! build, what ships (the static build takes minutes: outside the lock, once):
//!
//! ```sh
//! hack/build-static release
//! flock /tmp/ferrolb-lab.lock env LAB_IMAGE_PROFILE=release LAB_BUILD=0 hack/lab install-ferrolb
//! LAB_IMAGE_PROFILE=release flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench bgp
//! ```
//!
//! (`LAB_IMAGE_PROFILE=release` on the bench too: a lab found in processes mode is switched to
//! pods with release images.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrolb_crds::BGPPeer;
use ferrolb_tests::backend::{Backend, Spec};
use ferrolb_tests::bench::{Summary, settle, stamp, started, trials};
use ferrolb_tests::bgp::{
    NODE_AS, Objects, ROUTERS, Router, RouterConfig, hops, node_addr, wait_router_sessions,
};
use ferrolb_tests::network::LinkCut;
use ferrolb_tests::probe::{Probe, Prober};
use ferrolb_tests::speakers::{
    image_profile, kill_speaker, speaker_pid, speaker_pods, speakers_ready,
};
use ferrolb_tests::{NODES, lab, unique, want_pods};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

const SETTLE: Duration = Duration::from_secs(60);
/// Longest wait for a whole cluster between trials (pods restarted, sessions and routes back).
const WHOLE: Duration = Duration::from_secs(120);
/// The node whose speaker, pod or link the faults hit.
const VICTIM: &str = "flb-node1";

/// Samples of one figure.
#[derive(Default)]
struct Figure {
    name: String,
    /// "ms", or "" for counts.
    unit: &'static str,
    v: Vec<f64>,
    missed: usize,
}

impl Figure {
    fn new(name: &str) -> Figure {
        Figure {
            name: name.to_string(),
            unit: "ms",
            ..Figure::default()
        }
    }

    fn count(name: &str) -> Figure {
        Figure {
            name: name.to_string(),
            unit: "",
            ..Figure::default()
        }
    }

    fn add(&mut self, d: Option<Duration>) {
        match d {
            Some(d) => self.v.push(d.as_secs_f64() * 1000.0),
            None => self.missed += 1,
        }
    }

    /// Milliseconds, possibly negative (None: timed out).
    fn add_ms(&mut self, ms: Option<f64>) {
        match ms {
            Some(ms) => self.v.push(ms),
            None => self.missed += 1,
        }
    }

    fn add_n(&mut self, n: usize) {
        self.v.push(n as f64);
    }

    fn print(&self, target: Option<f64>) {
        let s = Summary::of(&self.v);
        let over = target.map(|t| self.v.iter().filter(|x| **x >= t).count());
        let u = self.unit;
        println!(
            "{:<64} n={:<3} median {:>7.1} {u:<2}  p99 {:>7.1} {u:<2}  min {:>7.1}  max {:>7.1}{}{}",
            self.name,
            s.n,
            s.median,
            s.p99,
            s.min,
            s.max,
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

type Figures = Vec<(Figure, Option<f64>)>;

/// A figure for each router, in ROUTERS' order: `WHAT (frr)`, `WHAT (bird)`.
fn per_router(what: &str) -> [Figure; 2] {
    ROUTERS.map(|r| Figure::new(&format!("{what} ({})", r.name)))
}

/// `later - earlier` in milliseconds, negative when `later` came first.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1000.0
    } else {
        -(earlier - later).as_secs_f64() * 1000.0
    }
}

/// Sets of nodes or next hops over time: each change with its instant.
type Timeline = Arc<Mutex<Vec<(Instant, BTreeSet<String>)>>>;

fn main() {
    want_pods();
    let n = trials();
    let started = started();
    let lab = lab();
    describe_conditions(n);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(lab.client()).expect("kube client");

    let figures: Vec<(&str, Figures)> = vec![
        ("session up", session_up(n, &rt, &client)),
        (
            "speaker pod deleted / crashed (Local policy, a pod per node)",
            speaker_faults(n, &rt, &client),
        ),
        (
            "backend pod moved to another node (Local policy)",
            endpoint_move(n, &rt, &client),
        ),
        (
            "link cut, BFD 300 ms × 3 (Local policy, a pod per node)",
            bfd_link_cut(n),
        ),
    ];

    println!(
        "\n== BGP figures ({n} trials each; routes measured at the routers, requests from flb-client through FRR)"
    );
    for (section, figs) in &figures {
        println!("{section}:");
        for (f, target) in figs {
            f.print(*target);
        }
    }
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
}

/// What the figures depend on: which speaker build the image holds, how much the cluster holds
/// (the speaker recomputes its plan over every Service on each change), and the machine's load.
fn describe_conditions(n: usize) {
    let services = lab()
        .kubectl(&["get", "svc", "-A", "--no-headers"])
        .stdout
        .lines()
        .count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "== BGP, FerroLB as pods; speaker image: {}\n{n} trials per figure; Services in the \
         cluster: {services}; load average: {}; cores: {}",
        image_profile(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}

/// Polls `check` until it holds (true) or WHOLE has passed (false, saying why).
fn wait_until(what: &str, check: impl FnMut() -> Result<(), String>) -> bool {
    settle(what, WHOLE, check).is_some()
}

/// Both routers forward `ip` via exactly `nodes`.
fn routed(ip: &str, nodes: &[&str]) -> Result<(), String> {
    let want = hops(nodes, ip);
    for r in ROUTERS {
        let h = r.kernel_nexthops(ip);
        if h != want {
            return Err(format!("{} routes {ip} via {h:?}, not {want:?}", r.name));
        }
    }
    Ok(())
}

/// Objects named after `unique(prefix)`, BASE: an IPv4 BGPPeer to each router (BASE-ROUTER)
/// and a pool of `address` with its BGPAdvertisement (BASE). Returns them (deleted when
/// dropped) and BASE.
fn peered_pool(prefix: &str, address: &str) -> (Objects, String) {
    let mut o = Objects::new();
    let base = unique(prefix);
    for r in ROUTERS {
        o.peer(&format!("{base}-{}", r.name), r, false, "");
    }
    o.advertised_pool(&base, &[address], "BGPAdvertisement", "");
    (o, base)
}

/// Failed requests among those started after `t0`: how many of how many, runs of them (ms after
/// `t0`, count), and when the last one started.
struct Failures {
    failed: usize,
    sent: usize,
    runs: Vec<(u128, usize)>,
    last: Option<Duration>,
}

fn failures(probes: &[Probe], t0: Instant) -> Failures {
    let after: Vec<&Probe> = probes.iter().filter(|p| p.at >= t0).collect();
    let mut runs: Vec<(u128, usize)> = Vec::new();
    let mut in_run = false;
    for p in &after {
        match (&p.answer, in_run) {
            (None, false) => {
                runs.push(((p.at - t0).as_millis(), 1));
                in_run = true;
            }
            (None, true) => {
                if let Some(r) = runs.last_mut() {
                    r.1 += 1;
                }
            }
            (Some(_), _) => in_run = false,
        }
    }
    Failures {
        failed: after.iter().filter(|p| p.answer.is_none()).count(),
        sent: after.len(),
        runs,
        last: after
            .iter()
            .rev()
            .find(|p| p.answer.is_none())
            .map(|p| p.at - t0),
    }
}

// ---- the routers' view ---------------------------------------------------------------------

/// Next hops of a route in a router's kernel table over time: `ip monitor route nexthop` runs in
/// the background, each event (and every 100 ms, in case one was missed) is followed by a read
/// of the route, and each change is logged at the arrival of the last event that mentions the
/// address before the read (or of the last event, or the read).
struct RouteLog {
    monitor: Child,
    changes: Timeline,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl RouteLog {
    fn start(router: Router, ip: &str) -> RouteLog {
        let mut monitor = Command::new("ip")
            .args(["-n", router.ns, "monitor", "route", "nexthop"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor starts");
        let out = monitor.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel::<(Instant, bool)>();
        let addr = ip.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mentions = line.split_whitespace().any(|w| {
                    w == addr
                        || w.strip_prefix(addr.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                });
                if tx.send((Instant::now(), mentions)).is_err() {
                    break;
                }
            }
        });
        // `ip monitor` subscribes right after it starts.
        std::thread::sleep(Duration::from_millis(50));
        let changes = Arc::new(Mutex::new(vec![(
            Instant::now(),
            router.kernel_nexthops(ip),
        )]));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, ip) = (changes.clone(), stop.clone(), ip.to_string());
        let worker = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let at = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok((t, m)) => {
                        let (mut at, mut mentioned) = (t, m);
                        while let Ok((t, m)) = rx.try_recv() {
                            if m || !mentioned {
                                at = t;
                            }
                            mentioned |= m;
                        }
                        at
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => Instant::now(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let h = router.kernel_nexthops(&ip);
                let mut log = c.lock().unwrap_or_else(|e| e.into_inner());
                if log.last().is_none_or(|(_, last)| *last != h) {
                    log.push((at, h));
                }
            }
        });
        RouteLog {
            monitor,
            changes,
            stop,
            worker: Some(worker),
        }
    }

    /// When the next hops first changed to a set `ok` accepts at or after `since` (waits up to
    /// `timeout` from `since`).
    fn first(
        &self,
        since: Instant,
        timeout: Duration,
        ok: impl Fn(&BTreeSet<String>) -> bool,
    ) -> Option<Instant> {
        loop {
            {
                let log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((t, _)) = log.iter().find(|(t, h)| *t >= since && ok(h)) {
                    return Some(*t);
                }
            }
            if since.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn history(&self, since: Instant) -> Vec<(u128, BTreeSet<String>)> {
        let log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .filter(|(t, _)| *t >= since)
            .map(|(t, h)| ((*t - since).as_millis(), h.clone()))
            .collect()
    }
}

impl Drop for RouteLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// A BGP NOTIFICATION from `from` captured on a router's interface (tcpdump, kernel
/// timestamps): when the Cease reached the router, as opposed to when it acted on it.
struct CeaseCapture {
    child: Child,
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

    /// How long after `since` (wall clock) the NOTIFICATION was captured.
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

// ---- session up ----------------------------------------------------------------------------

/// BGPPeers created (API server acknowledged) → every node's session Established at each
/// router (both CLIs polled back to back, ~20-50 ms a round), and → the Service route installed
/// with all three next hops (Cluster policy, one backend pod).
fn session_up(n: usize, rt: &tokio::runtime::Runtime, client: &kube::Client) -> Figures {
    eprintln!("{} == session up", stamp());
    let mut objects = Objects::new();
    let pool = unique("bench-up");
    objects.advertised_pool(&pool, &["198.18.101.1"], "BGPAdvertisement", "");
    let b = Backend::new(Spec {
        pool: Some(pool),
        ..Spec::default()
    });
    b.wait_ready();
    let ip = b.ips(SETTLE).remove(0);
    let all = hops(&NODES, &ip);
    let api: Api<BGPPeer> = Api::namespaced(client.clone(), ferrolb_crds::DEFAULT_NAMESPACE);
    let mut established = per_router("peer created → Established");
    let mut routed_fig = per_router("peer created → route installed, 3 next hops");
    let node_addrs: BTreeSet<String> = NODES.iter().map(|nd| node_addr(nd, false)).collect();
    for t in 0..n {
        let logs: Vec<RouteLog> = ROUTERS.iter().map(|r| RouteLog::start(*r, &ip)).collect();
        let mut o = Objects::new();
        let base = unique("bench-up");
        let mut t0 = Vec::new();
        for r in ROUTERS {
            let name = format!("{base}-{}", r.name);
            let peer: BGPPeer = serde_json::from_value(serde_json::json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                "metadata": {"name": name},
                "spec": {"myASN": NODE_AS, "peerASN": r.asn, "peerAddress": r.v4,
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
        for (i, l) in logs.iter().enumerate() {
            established[i].add(up[i]);
            let d = l.first(t0[i], SETTLE, |h| *h == all).map(|at| at - t0[i]);
            got.push(d);
            routed_fig[i].add(d);
        }
        drop(o);
        // Sessions down and routes gone before the next trial.
        wait_until("routes withdrawn", || routed(&ip, &[]));
        for r in ROUTERS {
            let t = Instant::now();
            while !r.established_neighbors().is_disjoint(&node_addrs) && t.elapsed() < SETTLE {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        eprintln!(
            "{} session up trial {}/{n}: Established {up:?}, routed {got:?}",
            stamp(),
            t + 1
        );
    }
    drop(b);
    let [e0, e1] = established;
    let [r0, r1] = routed_fig;
    vec![
        (e0, Some(1000.0)),
        (e1, Some(1000.0)),
        (r0, None),
        (r1, None),
    ]
}

// ---- speaker pod deleted, speaker crash ----------------------------------------------------

/// Local policy with a backend pod per node: every node is a next hop. VICTIM's speaker pod is
/// deleted (graceful) or its process killed (crash), alternately; the crash always hits a
/// container that never crashed (the deletion before it made a new pod), so the kubelet restarts
/// it at once rather than after a crash-loop back-off.
fn speaker_faults(n: usize, rt: &tokio::runtime::Runtime, client: &kube::Client) -> Figures {
    eprintln!("{} == speaker pod deleted / crash", stamp());
    let (_o, base) = peered_pool("bench-sp", "198.18.101.2");
    let b = Backend::new(Spec {
        policy: "Local",
        ..Spec::one_per_node(&base)
    });
    b.wait_ready();
    let ip = b.ips(SETTLE).remove(0);
    let victim = node_addr(VICTIM, false);
    let all = hops(&NODES, &ip);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ferrolb_crds::DEFAULT_NAMESPACE);

    let mut del_cease = per_router("pod deleted → Cease received");
    let mut del_gone = per_router("pod deleted → next hop gone");
    let mut del_back = Figure::new("pod deleted → next hop back, new pod (frr)");
    let mut del_failed = Figure::count("pod deleted: failed requests (one every 10 ms)");
    let mut crash_gone = per_router("crash → next hop gone");
    let mut crash_back = Figure::new("crash → next hop back, container restarted (frr)");
    let mut crash_failed = Figure::count("crash: failed requests (one every 10 ms)");

    let whole = || {
        speakers_ready()?;
        b.spread_ready(NODES.len())?;
        routed(&ip, &NODES)
    };
    for t in 0..n {
        for crash in [false, true] {
            let what = if crash { "crash" } else { "pod deleted" };
            if !wait_until("whole cluster", whole) {
                continue;
            }
            let sp = speaker_pods().into_iter().find(|p| p.node == VICTIM);
            let Some(sp) = sp else { continue };
            if crash && sp.restarts > 0 {
                // Not the first crash of this container: start from a new pod.
                let _ = rt.block_on(pods_api.delete(&sp.name, &DeleteParams::default()));
                std::thread::sleep(Duration::from_secs(1));
                if !wait_until("whole cluster", whole) {
                    continue;
                }
            }
            // Let the sessions settle (a fresh speaker is still busy starting up).
            std::thread::sleep(Duration::from_secs(1));
            let logs: Vec<RouteLog> = ROUTERS.iter().map(|r| RouteLog::start(*r, &ip)).collect();
            let captures: Vec<CeaseCapture> = if crash {
                Vec::new()
            } else {
                ROUTERS
                    .iter()
                    .map(|r| CeaseCapture::start(*r, &victim))
                    .collect()
            };
            let prober = Prober::start(&ip);
            std::thread::sleep(Duration::from_millis(400));
            let (t0, wall0) = if crash {
                let Some(pid) = speaker_pid(VICTIM) else {
                    eprintln!("no speaker process on {VICTIM}");
                    continue;
                };
                let t0 = (Instant::now(), SystemTime::now());
                kill_speaker(pid);
                t0
            } else {
                let t0 = (Instant::now(), SystemTime::now());
                rt.block_on(pods_api.delete(&sp.name, &DeleteParams::default()))
                    .expect("speaker pod deleted");
                t0
            };
            let gone: Vec<Option<Duration>> = logs
                .iter()
                .map(|l| {
                    l.first(t0, Duration::from_secs(15), |h| !h.contains(&victim))
                        .map(|at| at - t0)
                })
                .collect();
            let cease: Vec<Option<Duration>> = captures
                .into_iter()
                .map(|c| c.after(wall0, Duration::from_secs(2)))
                .collect();
            let back = logs[0].first(t0, WHOLE, |h| *h == all).map(|at| at - t0);
            wait_until("whole cluster", whole);
            std::thread::sleep(Duration::from_millis(300));
            let f = failures(&prober.finish(), t0);
            eprintln!(
                "{} {what} trial {}/{n}: next hop gone (frr, bird) {gone:?}, Cease {cease:?}, back {back:?}, \
                 failed {}/{} (runs at ms: count {:?}); frr {:?}",
                stamp(),
                t + 1,
                f.failed,
                f.sent,
                f.runs,
                logs[0].history(t0),
            );
            if crash {
                for (i, d) in gone.iter().enumerate() {
                    crash_gone[i].add(*d);
                }
                crash_back.add(back);
                crash_failed.add_n(f.failed);
            } else {
                for (i, d) in gone.iter().enumerate() {
                    del_gone[i].add(*d);
                }
                for (i, d) in cease.iter().enumerate() {
                    del_cease[i].add(*d);
                }
                del_back.add(back);
                del_failed.add_n(f.failed);
            }
        }
    }
    drop(b);
    let [c0, c1] = del_cease;
    let [g0, g1] = del_gone;
    let [k0, k1] = crash_gone;
    vec![
        (c0, None),
        (c1, None),
        (g0, None),
        (g1, None),
        (del_back, None),
        (del_failed, None),
        (k0, None),
        (k1, None),
        (crash_back, None),
        (crash_failed, None),
    ]
}

// ---- endpoint change -----------------------------------------------------------------------

/// Nodes with a serving endpoint of the Service `web` in a namespace over time (FerroLB's rule:
/// serving, or ready for producers without `serving`; ready or terminating), each change with
/// the instant the watch delivered it.
struct SliceWatch {
    changes: Timeline,
    task: tokio::task::JoinHandle<()>,
}

fn serving_nodes(s: &EndpointSlice) -> BTreeSet<String> {
    s.endpoints
        .iter()
        .flatten()
        .filter(|e| {
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            serving && (ready || terminating)
        })
        .filter_map(|e| e.node_name.clone())
        .collect()
}

impl SliceWatch {
    fn start(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str) -> SliceWatch {
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        let changes: Timeline = Arc::default();
        let c = changes.clone();
        let task = rt.spawn(async move {
            let cfg = watcher::Config::default().labels("kubernetes.io/service-name=web");
            let mut stream = watcher(api, cfg).boxed();
            // Serving nodes by slice; a (re)list is collected apart and takes over when done.
            let mut slices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut listing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                match ev {
                    watcher::Event::Apply(s) => {
                        slices.insert(s.name_any(), serving_nodes(&s));
                    }
                    watcher::Event::Delete(s) => {
                        slices.remove(&s.name_any());
                    }
                    watcher::Event::Init => {
                        listing.clear();
                        continue;
                    }
                    watcher::Event::InitApply(s) => {
                        listing.insert(s.name_any(), serving_nodes(&s));
                        continue;
                    }
                    watcher::Event::InitDone => slices = std::mem::take(&mut listing),
                }
                let now: BTreeSet<String> = slices.values().flatten().cloned().collect();
                let mut log = c.lock().unwrap_or_else(|e| e.into_inner());
                if log.last().is_none_or(|(_, last)| *last != now) {
                    log.push((Instant::now(), now));
                }
            }
        });
        SliceWatch { changes, task }
    }

    /// The first change at or after `since` to a set `ok` accepts.
    fn first(&self, since: Instant, ok: impl Fn(&BTreeSet<String>) -> bool) -> Option<Instant> {
        let log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .find(|(t, s)| *t >= since && ok(s))
            .map(|(t, _)| *t)
    }
}

impl Drop for SliceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One backend pod (Local policy) re-pinned from one node to another: the Deployment starts a
/// pod on the new node, then stops the old one. Timed from the EndpointSlice changes (watched)
/// to the routers' next hops, and from the pin change to the route on the new node only.
fn endpoint_move(n: usize, rt: &tokio::runtime::Runtime, client: &kube::Client) -> Figures {
    eprintln!("{} == backend pod moved", stamp());
    let (_o, base) = peered_pool("bench-ep", "198.18.101.3");
    let mut b = Backend::new(Spec {
        node: Some("flb-node1".into()),
        policy: "Local",
        pool: Some(base.clone()),
        ..Spec::default()
    });
    b.wait_ready();
    let ip = b.ips(SETTLE).remove(0);
    let slices = SliceWatch::start(rt, client, &b.ns.name);
    let mut added = per_router("slice: new node serving (watched) → next hop added");
    let mut removed = per_router("slice: old node not serving (watched) → next hop gone");
    let mut moved = Figure::new("pin changed → routed to the new node only (frr)");
    let mut failed = Figure::count("failed requests during the move (one every 10 ms)");
    let mut at = "flb-node1";
    for t in 0..n {
        let to = if at == "flb-node1" {
            "flb-node2"
        } else {
            "flb-node1"
        };
        let ok = wait_until("one pod, routed to it", || {
            let pods = b.spread_ready(1)?;
            if pods.values().any(|nd| nd != at) {
                return Err(format!("pods {pods:?}"));
            }
            routed(&ip, &[at])
        });
        if !ok {
            continue;
        }
        let (from_addr, to_addr) = (node_addr(at, false), node_addr(to, false));
        let only_to = hops(&[to], &ip);
        let logs: Vec<RouteLog> = ROUTERS.iter().map(|r| RouteLog::start(*r, &ip)).collect();
        let prober = Prober::start(&ip);
        std::thread::sleep(Duration::from_millis(400));
        let t0 = Instant::now();
        b.pin(Some(to));
        let done: Vec<Option<Instant>> = logs
            .iter()
            .map(|l| l.first(t0, WHOLE, |h| *h == only_to))
            .collect();
        let slice_add = slices.first(t0, |s| s.contains(to));
        let slice_del = slice_add.and_then(|a| slices.first(a, |s| !s.contains(at)));
        let mut got = Vec::new();
        for (i, l) in logs.iter().enumerate() {
            let add = slice_add.and_then(|s| {
                l.first(t0, Duration::ZERO, |h| h.contains(&to_addr))
                    .map(|r| signed_ms(r, s))
            });
            let del = slice_del.and_then(|s| {
                l.first(t0, Duration::ZERO, |h| {
                    !h.contains(&from_addr) && !h.is_empty()
                })
                .map(|r| signed_ms(r, s))
            });
            added[i].add_ms(add);
            removed[i].add_ms(del);
            got.push((add, del));
        }
        let whole = done[0].map(|d| d - t0);
        moved.add(whole);
        wait_until("the new pod alone", || b.spread_ready(1).map(|_| ()));
        std::thread::sleep(Duration::from_millis(300));
        let f = failures(&prober.finish(), t0);
        failed.add_n(f.failed);
        eprintln!(
            "{} move trial {}/{n} ({at} → {to}): (added, removed) frr, bird {got:?}, routed to {to} only after {whole:?}, \
             failed {}/{} (runs at ms: count {:?}); frr {:?}",
            stamp(),
            t + 1,
            f.failed,
            f.sent,
            f.runs,
            logs[0].history(t0),
        );
        at = to;
    }
    drop(slices);
    drop(b);
    let [a0, a1] = added;
    let [r0, r1] = removed;
    vec![
        (a0, None),
        (a1, None),
        (r0, None),
        (r1, None),
        (moved, None),
        (failed, None),
    ]
}

// ---- link cut with BFD ---------------------------------------------------------------------

/// Link cut of VICTIM → its next hop gone at each router (IPv4 and IPv6), BFD 300 ms × 3, and
/// the client's failed requests (IPv4) until then.
fn bfd_link_cut(n: usize) -> Figures {
    eprintln!("{} == link cut with BFD", stamp());
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
    o.advertised_pool(
        &base,
        &["198.18.101.4", "fd00:101::4"],
        "BGPAdvertisement",
        "",
    );
    let b = Backend::new(Spec {
        policy: "Local",
        dual_stack: true,
        ..Spec::one_per_node(&base)
    });
    b.wait_ready();
    let ips = b.ips(SETTLE);
    let mut figs: Vec<Figure> = Vec::new();
    for r in ROUTERS {
        for ip in &ips {
            figs.push(Figure::new(&format!(
                "link cut → next hop gone ({} {})",
                r.name,
                if ip.contains(':') { "IPv6" } else { "IPv4" }
            )));
        }
    }
    let mut failed = Figure::count("link cut: failed requests, IPv4 (one every 10 ms)");
    let mut last = Figure::new("link cut → last failed request, IPv4");
    wait_router_sessions(&ROUTERS, &NODES, false, SETTLE);
    for t in 0..n {
        let ok = wait_until("whole cluster", || {
            speakers_ready()?;
            b.spread_ready(NODES.len())?;
            for ip in &ips {
                routed(ip, &NODES)?;
            }
            for r in ROUTERS {
                for nd in NODES {
                    for v6 in [false, true] {
                        let a = node_addr(nd, v6);
                        if !r.bfd_up(&a) {
                            return Err(format!("{}: BFD with {a} not up", r.name));
                        }
                    }
                }
            }
            Ok(())
        });
        if !ok {
            continue;
        }
        // Past the Poll sequences that end BFD's slow start.
        std::thread::sleep(Duration::from_secs(2));
        let logs: Vec<(RouteLog, &String)> = ROUTERS
            .iter()
            .flat_map(|r| ips.iter().map(|ip| (RouteLog::start(*r, ip), ip)))
            .collect();
        let prober = Prober::start(&ips[0]);
        std::thread::sleep(Duration::from_millis(400));
        let cut = LinkCut::node(VICTIM);
        let mut got = Vec::new();
        for (i, (l, ip)) in logs.iter().enumerate() {
            let gone = node_addr(VICTIM, ip.contains(':'));
            let d = l
                .first(cut.at, Duration::from_secs(10), |h| {
                    !h.contains(&gone) && !h.is_empty()
                })
                .map(|at| at - cut.at);
            got.push(d);
            figs[i].add(d);
        }
        std::thread::sleep(Duration::from_millis(500));
        let probes = prober.finish();
        let t0 = cut.at;
        drop(cut);
        let f = failures(&probes, t0);
        failed.add_n(f.failed);
        last.add(Some(f.last.unwrap_or_default()));
        eprintln!(
            "{} link cut trial {}/{n}: next hop gone (frr v4, v6, bird v4, v6) {got:?}; failed {}/{} (runs at ms: count {:?})",
            stamp(),
            t + 1,
            f.failed,
            f.sent,
            f.runs,
        );
    }
    drop(b);
    let mut out: Figures = figs.into_iter().map(|f| (f, Some(1000.0))).collect();
    out.push((failed, None));
    out.push((last, Some(1000.0)));
    out
}
