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

mod cease;
mod figures;
mod route_log;
mod slice_watch;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use cease::CeaseCapture;
use figures::{Figure, Figures, failures, per_router, signed_ms, untargeted};
use route_log::RouteLog;
use slice_watch::SliceWatch;

use ferrolb_crds::BGPPeer;
use ferrolb_tests::backend::{Backend, Spec};
use ferrolb_tests::bench::{settle, stamp, started, trials};
use ferrolb_tests::bgp::{
    NODE_AS, Objects, ROUTERS, RouterConfig, hops, node_addr, wait_router_sessions,
};
use ferrolb_tests::network::LinkCut;
use ferrolb_tests::probe::Prober;
use ferrolb_tests::speakers::{
    image_profile, kill_speaker, speaker_pid, speaker_pods, speakers_ready,
};
use ferrolb_tests::{NODES, lab, unique, want_pods};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

const SETTLE: Duration = Duration::from_secs(60);
/// Longest wait for a whole cluster between trials (pods restarted, sessions and routes back).
const WHOLE: Duration = Duration::from_secs(120);
/// The node whose speaker, pod or link the faults hit.
const VICTIM: &str = "flb-node1";

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
    let mut out: Figures = established.map(|f| (f, Some(1000.0))).into();
    out.extend(untargeted(routed_fig));
    out
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
                 {f}; frr {:?}",
                stamp(),
                t + 1,
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
    untargeted(
        del_cease
            .into_iter()
            .chain(del_gone)
            .chain([del_back, del_failed])
            .chain(crash_gone)
            .chain([crash_back, crash_failed]),
    )
}

// ---- endpoint change -----------------------------------------------------------------------

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
             {f}; frr {:?}",
            stamp(),
            t + 1,
            logs[0].history(t0),
        );
        at = to;
    }
    drop(slices);
    drop(b);
    untargeted(added.into_iter().chain(removed).chain([moved, failed]))
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
    o.peers_everywhere(&base, &format!("bfdProfile: {base}"));
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
            "{} link cut trial {}/{n}: next hop gone (frr v4, v6, bird v4, v6) {got:?}; {f}",
            stamp(),
            t + 1,
        );
    }
    drop(b);
    let mut out: Figures = figs.into_iter().map(|f| (f, Some(1000.0))).collect();
    out.push((failed, None));
    out.push((last, Some(1000.0)));
    out
}
