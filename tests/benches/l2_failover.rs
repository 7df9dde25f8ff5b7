//! L2 failover benchmark in the lab, as a user sees it (prints figures; asserts nothing).
//!
//! FerroLB runs as pods (`want_pods()`: installed from deploy/, speaker DaemonSet), in front of
//! real backends: three agnhost pods, one per node, behind a LoadBalancer Service with
//! `externalTrafficPolicy: Local` (so the pod that answers names the node that carried the
//! request). From flb-client an HTTP GET of `/hostname` on the EXTERNAL-IP starts every 10 ms
//! (new connection each, 200 ms timeout) while a fault hits the node that announces the address:
//!
//! - `crash`: SIGKILL of the speaker container's process (found in the node's namespace by its
//!   name); the kubelet restarts the container. Each crash hits a container that never crashed
//!   (one that did is replaced first: the kubelet's crash-loop back-off would stretch the trial);
//! - `delete`: the speaker pod deleted through the API (graceful: the kubelet sends SIGTERM; the
//!   DaemonSet makes a new pod);
//! - `backends`: the announcing node's agnhost pod deleted (Local policy: the announcement must
//!   move to a node that still has a pod; the Deployment makes a new one);
//! - `linkcut`: the node's port on the lab switch set down (carrier lost at the node: the node's own
//!   addresses and routes stay; `ip link set eth0 down` inside the node would flush its IPv6 address
//!   and the lab's routes through eth0) until the client is served elsewhere, then up again.
//!
//! Figures per fault, over FERROLB_BENCH_TRIALS trials (default 10, about 4 minutes on an idle
//! lab; FERROLB_BENCH_FAULTS picks faults, e.g. `crash,linkcut`): time from the fault to the
//! client's first answer from a pod on another node and the requests that failed until then; the
//! time until the client is served by the elected node again (from the fault; for `linkcut` from
//! the link coming back: once whole, the elected node takes the address back) and the requests
//! that failed after the first move (the way back included); the longest run of failed requests
//! (the outage). Every trial starts from a whole cluster: every speaker pod ready and seeing every
//! other, the three backend pods ready in the endpoints, the client served by the node the
//! `ferrolb.io/L2Announced` condition names.
//!
//! Run (build outside the lab lock; the lock keeps other test runs out while it measures):
//!
//! ```sh
//! cargo bench -p ferrolb-tests --bench l2_failover --no-run
//! flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench l2_failover
//! ```
//!
//! That measures the images the lab runs; the header says which build they hold (the speaker's
//! binary compared with the static builds in target/: dev or release). Images of the release
//! build, what ships (the static build takes minutes: outside the lock, once):
//!
//! ```sh
//! hack/build-static release
//! flock /tmp/ferrolb-lab.lock env LAB_IMAGE_PROFILE=release LAB_BUILD=0 hack/lab install-ferrolb
//! LAB_IMAGE_PROFILE=release flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench l2_failover
//! ```
//!
//! (`LAB_IMAGE_PROFILE=release` on the bench too: a lab found in processes mode is switched to
//! pods with release images.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrolb_tests::backend::{Backend, Spec, curl_from_client, url};
use ferrolb_tests::bench::{Summary, settle, stamp, started, trials};
use ferrolb_tests::bgp::Objects;
use ferrolb_tests::l2::members_seen;
use ferrolb_tests::network::LinkCut;
use ferrolb_tests::probe::{PROBE_EVERY, PROBE_TIMEOUT, Probe, Prober};
use ferrolb_tests::speakers::{
    image_profile, kill_speaker, speaker_pid, speaker_pods, speakers_ready,
};
use ferrolb_tests::{NODES, lab, unique, want_pods};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;

/// The Service's address (a pool of its own).
const VIP: &str = "198.18.0.230";
/// Longest wait for a whole cluster before (and after) a trial.
const WHOLE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Crash,
    Delete,
    Backends,
    LinkCut,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash",
            Fault::Delete => "delete",
            Fault::Backends => "backends",
            Fault::LinkCut => "linkcut",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Fault::Crash => "speaker crash (SIGKILL, kubelet restarts it)",
            Fault::Delete => "speaker pod deleted (SIGTERM, DaemonSet replaces it)",
            Fault::Backends => "announcing node's backend pod deleted (Local policy)",
            Fault::LinkCut => "announcing node's link cut",
        }
    }
}

/// What the client saw after a fault at `t0`.
#[derive(Debug, Default)]
struct Seen {
    /// Fault → first answer from a pod on another node than `old`.
    moved: Option<Duration>,
    /// Requests started after the fault that failed.
    failed: usize,
    /// Of those, the ones started before the first answer from another node (all of them if
    /// none came).
    failed_until_moved: usize,
    /// Requests started after the fault.
    sent: usize,
    /// Failed requests in the 300 ms before the fault (should be 0).
    failed_before: usize,
    /// The longest run of failed requests: from the first one's start to the start of the next
    /// request that succeeded.
    outage: Duration,
    /// When the client was served by the elected node again for good: the first answer from it
    /// after the last answer from another node (None: it never left it).
    back: Option<Instant>,
    /// Runs of failed requests: ms after the fault, how many (for the record).
    runs: Vec<(u128, usize)>,
}

fn seen(probes: &[Probe], t0: Instant, old: &str, node_of: &BTreeMap<String, String>) -> Seen {
    let node = |p: &Probe| p.answer.as_ref().and_then(|a| node_of.get(a)).cloned();
    let mut s = Seen {
        failed_before: probes
            .iter()
            .filter(|p| p.at < t0 && p.at + Duration::from_millis(300) >= t0)
            .filter(|p| p.answer.is_none())
            .count(),
        ..Seen::default()
    };
    let after: Vec<&Probe> = probes.iter().filter(|p| p.at >= t0).collect();
    s.sent = after.len();
    s.failed = after.iter().filter(|p| p.answer.is_none()).count();
    s.moved = after
        .iter()
        .find(|p| p.answer.is_some() && node(p).as_deref() != Some(old))
        .map(|p| p.at - t0);
    s.failed_until_moved = after
        .iter()
        .filter(|p| p.answer.is_none() && s.moved.is_none_or(|m| p.at < t0 + m))
        .count();
    let mut run_start: Option<Instant> = None;
    for p in &after {
        match (&p.answer, run_start) {
            (None, None) => {
                run_start = Some(p.at);
                s.runs.push(((p.at - t0).as_millis(), 1));
            }
            (None, Some(_)) => {
                if let Some(r) = s.runs.last_mut() {
                    r.1 += 1;
                }
            }
            (Some(_), Some(start)) => {
                s.outage = s.outage.max(p.at - start);
                run_start = None;
            }
            (Some(_), None) => {}
        }
    }
    if let (Some(start), Some(last)) = (run_start, after.last()) {
        s.outage = s.outage.max(last.at + PROBE_EVERY - start);
    }
    let last_elsewhere = after
        .iter()
        .rposition(|p| p.answer.is_some() && node(p).as_deref() != Some(old));
    s.back = last_elsewhere.and_then(|i| {
        after[i..]
            .iter()
            .find(|p| p.answer.is_some() && node(p).as_deref() == Some(old))
            .map(|p| p.at)
    });
    s
}

// ---- the cluster -------------------------------------------------------------------------

/// Whether the cluster is whole: every speaker pod ready (none terminating) and seeing every
/// other, the backends whole, and the client served by the node the L2 condition names (`want`
/// if given). Returns that node and pod → node.
fn whole(b: &Backend, want: Option<&str>) -> Result<(String, BTreeMap<String, String>), String> {
    speakers_ready()?;
    let m = members_seen();
    if m.iter().any(|c| *c != Some(NODES.len() as u64)) {
        return Err(format!("members seen {m:?}"));
    }
    let pods = b.spread_ready(NODES.len())?;
    let Some(elected) = b.l2_announcer(VIP).filter(|n| NODES.contains(&n.as_str())) else {
        return Err(format!("L2 condition {:?}", b.l2_condition("message")));
    };
    if want.is_some_and(|w| w != elected) {
        return Err(format!("announced from {elected}, not {want:?}"));
    }
    let answer = curl_from_client(&url(VIP, 80, "/hostname"));
    let via = answer.as_ref().and_then(|a| pods.get(a));
    if via != Some(&elected) {
        return Err(format!(
            "client answered by {answer:?} ({via:?}), elected {elected}"
        ));
    }
    Ok((elected, pods))
}

fn wait_whole(b: &Backend, want: Option<&str>) -> Option<(String, BTreeMap<String, String>)> {
    settle("whole cluster", WHOLE, || whole(b, want))
}

// ---- figures -------------------------------------------------------------------------------

/// Samples of one figure.
#[derive(Default)]
struct Figure {
    name: String,
    unit: &'static str,
    v: Vec<f64>,
    none: usize,
    none_means: &'static str,
}

impl Figure {
    fn new(name: String, unit: &'static str, none_means: &'static str) -> Figure {
        Figure {
            name,
            unit,
            none_means,
            ..Figure::default()
        }
    }

    fn add(&mut self, x: Option<f64>) {
        match x {
            Some(x) => self.v.push(x),
            None => self.none += 1,
        }
    }

    fn print(&self) {
        println!(
            "{}{}",
            Summary::of(&self.v).row(&self.name, self.unit, (62, 2, 6), 0),
            if self.none > 0 {
                format!("  ({} {})", self.none, self.none_means)
            } else {
                String::new()
            },
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Results {
    moved: Figure,
    failed_until_moved: Figure,
    failed_after_moved: Figure,
    outage: Figure,
    back: Figure,
    skipped: usize,
}

impl Results {
    fn new(f: Fault) -> Results {
        let n = f.name();
        let back_from = if f == Fault::LinkCut {
            "link up"
        } else {
            "fault"
        };
        Results {
            moved: Figure::new(
                format!("{n}: fault → first answer from another node"),
                "ms",
                "never moved",
            ),
            failed_until_moved: Figure::new(
                format!("{n}: failed requests until then (one every 10 ms)"),
                "  ",
                "",
            ),
            failed_after_moved: Figure::new(
                format!("{n}: failed requests after (moving back included)"),
                "  ",
                "",
            ),
            outage: Figure::new(
                format!("{n}: longest outage (failed requests in a row)"),
                "ms",
                "",
            ),
            back: Figure::new(
                format!("{n}: {back_from} → served by the elected node again"),
                "ms",
                "never left it",
            ),
            skipped: 0,
        }
    }
}

// ---- one trial -----------------------------------------------------------------------------

/// One trial of `fault`, from a whole cluster whose elected node is `elected`.
fn trial(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    b: &Backend,
    elected: &str,
    fault: Fault,
    res: &mut Results,
) {
    let Some((_, mut pods)) = wait_whole(b, Some(elected)) else {
        res.skipped += 1;
        return;
    };
    let speaker = speaker_pods().into_iter().find(|p| p.node == elected);
    let speaker_api: Api<Pod> = Api::namespaced(client.clone(), ferrolb_crds::DEFAULT_NAMESPACE);
    if fault == Fault::Crash && speaker.as_ref().is_some_and(|p| p.restarts > 0) {
        // A container that crashed before restarts after a back-off: start from a fresh pod.
        let name = speaker.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        let _ = rt.block_on(speaker_api.delete(&name, &DeleteParams::default()));
        if wait_whole(b, Some(elected)).is_none() {
            res.skipped += 1;
            return;
        }
    }
    eprintln!("{} whole; probing", stamp());
    let prober = Prober::start(VIP);
    std::thread::sleep(Duration::from_millis(400));
    let mut repaired: Option<Instant> = None;
    let t0 = match fault {
        Fault::Crash => {
            let Some(pid) = speaker_pid(elected) else {
                eprintln!("crash: no speaker process on {elected}");
                res.skipped += 1;
                return;
            };
            let t0 = Instant::now();
            kill_speaker(pid);
            t0
        }
        Fault::Delete => {
            let name = speaker_pods()
                .into_iter()
                .find(|p| p.node == elected)
                .map(|p| p.name)
                .expect("the elected node's speaker pod");
            let t0 = Instant::now();
            rt.block_on(speaker_api.delete(&name, &DeleteParams::default()))
                .expect("speaker pod deleted");
            t0
        }
        Fault::Backends => {
            let name = pods
                .iter()
                .find(|(_, n)| *n == elected)
                .map(|(p, _)| p.clone())
                .expect("a backend pod on the elected node");
            let api: Api<Pod> = Api::namespaced(client.clone(), &b.ns.name);
            let t0 = Instant::now();
            rt.block_on(api.delete(&name, &DeleteParams::default()))
                .expect("backend pod deleted");
            t0
        }
        Fault::LinkCut => {
            let cut = LinkCut::node(elected);
            let t0 = cut.at;
            // Down until the client is served elsewhere (or 10 s), and a little longer.
            while t0.elapsed() < Duration::from_secs(10)
                && !prober.snapshot().iter().any(|p| {
                    p.at >= t0
                        && p.answer
                            .as_ref()
                            .and_then(|a| pods.get(a))
                            .is_some_and(|n| n != elected)
                })
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(500));
            drop(cut);
            repaired = Some(Instant::now());
            t0
        }
    };
    // Probe until the cluster is whole again (new pods included), and a little longer.
    eprintln!("{} fault injected; waiting for a whole cluster", stamp());
    let whole_again = wait_whole(b, Some(elected));
    std::thread::sleep(Duration::from_millis(300));
    let probes = prober.finish();
    if let Some((_, now)) = &whole_again {
        pods.extend(now.clone());
    }
    let s = seen(&probes, t0, elected, &pods);
    eprintln!(
        "{} {}: moved {:?}, failed {}/{} (before the fault {}; runs at ms: count {:?}), outage {:?}, back {:?}{}",
        stamp(),
        fault.name(),
        s.moved,
        s.failed,
        s.sent,
        s.failed_before,
        s.runs,
        s.outage,
        s.back.map(|b| b - repaired.unwrap_or(t0)),
        if whole_again.is_none() {
            " (not whole again)"
        } else {
            ""
        }
    );
    res.moved.add(s.moved.map(ms));
    res.failed_until_moved
        .add(Some(s.failed_until_moved as f64));
    res.failed_after_moved
        .add(Some((s.failed - s.failed_until_moved) as f64));
    res.outage.add(Some(ms(s.outage)));
    res.back.add(
        s.back
            .map(|b| ms(b.saturating_duration_since(repaired.unwrap_or(t0)))),
    );
}

fn main() {
    want_pods();
    let trials = trials();
    let wanted = std::env::var("FERROLB_BENCH_FAULTS")
        .unwrap_or_default()
        .to_lowercase();
    let faults: Vec<Fault> = [Fault::Crash, Fault::Delete, Fault::Backends, Fault::LinkCut]
        .into_iter()
        .filter(|f| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == f.name()))
        .collect();
    let started = started();
    let lab = lab();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = rt.block_on(lab.client()).expect("kube client");

    let pool = unique("bench-l2");
    let mut objects = Objects::new();
    objects.advertised_pool(&pool, &[VIP], "L2Advertisement", "");
    let b = Backend::new(Spec {
        policy: "Local",
        ..Spec::one_per_node(&pool)
    });
    b.wait_ready();
    let ip = b.ips(Duration::from_secs(40)).remove(0);
    assert_eq!(ip, VIP, "the Service's address");
    let Some((elected, _)) = wait_whole(&b, None) else {
        panic!("the cluster never became whole: {}", b.describe_service());
    };
    eprintln!("{} set up: announced by {elected}", stamp());

    println!(
        "== L2 failover, FerroLB as pods; speaker image: {}\n\
         {trials} trials per fault; GET /hostname from flb-client to {VIP}:80 every {} ms \
         (new connection, {} ms timeout), served by 3 agnhost pods (one per node, \
         externalTrafficPolicy Local); announced by {elected}",
        image_profile(),
        PROBE_EVERY.as_millis(),
        PROBE_TIMEOUT.as_millis(),
    );
    let mut results: Vec<(Fault, Results)> =
        faults.iter().map(|f| (*f, Results::new(*f))).collect();
    // Faults interleaved: a crash is followed by a deletion of the same (restarted) pod.
    for t in 0..trials {
        for (f, res) in results.iter_mut() {
            eprintln!("{} trial {}/{trials}: {}", stamp(), t + 1, f.describe());
            trial(&rt, &client, &b, &elected, *f, res);
        }
    }
    println!();
    for (f, res) in &results {
        println!("{}:", f.describe());
        res.moved.print();
        res.failed_until_moved.print();
        res.back.print();
        res.failed_after_moved.print();
        res.outage.print();
        if res.skipped > 0 {
            println!(
                "  ({} trials skipped: the cluster was not whole)",
                res.skipped
            );
        }
    }
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
    drop(b);
    drop(objects);
}
