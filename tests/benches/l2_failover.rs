//! L2 failover benchmark in the lab (prints figures; asserts nothing).
//!
//! `cargo bench -p ferrolb-tests --bench l2_failover` with the lab up. For each of SIGKILL of the
//! announcing speaker, cutting its node's link, and SIGTERM, over FERROLB_BENCH_TRIALS trials
//! (default 20): the time from the fault to the client's first TCP answer from another node
//! (probing every 10 ms from the client host), and for SIGTERM the probes lost meanwhile.
//! Every trial starts from a whole cluster (each speaker sees every other, the client reaches
//! the elected node), and the time from the repair (link up, speaker restarted) until that holds
//! again is a figure too: it shows whether the elected node wins the client back after a
//! partition heals. FERROLB_BENCH_FAULTS=kill,linkcut,term picks faults.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrolb_tests::l2::{Hold, L2Case, members_seen, signal_speaker, wait_speaker_back};
use ferrolb_tests::{NODES, Responders, binary, lab, who_answers};

const PROBE_MS: u64 = 10;

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    LinkCut,
    Term,
}

/// Waits until every speaker sees the whole cluster and the client's traffic reaches the
/// elected node; returns how long that took, or None (with what was seen) after `timeout`.
fn whole_again(vip: &str, elected: &str, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    // What was seen, when it changed (printed when recovery is slow).
    let mut seen: Vec<(Duration, Vec<Option<u64>>, Option<String>)> = Vec::new();
    while t.elapsed() < timeout {
        let m = members_seen();
        let who = who_answers(vip);
        if m.iter().all(|c| *c == Some(NODES.len() as u64)) && who.as_deref() == Some(elected) {
            if t.elapsed() > Duration::from_secs(3) {
                eprintln!("slow recovery, what was seen: {seen:?}");
            }
            return Some(t.elapsed());
        }
        if seen.last().is_none_or(|(_, m0, w0)| *m0 != m || *w0 != who) {
            seen.push((t.elapsed(), m, who));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "not whole after {timeout:?}: members {:?}, client reaches {:?}",
        members_seen(),
        who_answers(vip)
    );
    None
}

/// One trial, from a whole cluster with the client on `elected`: returns (failover ms, probes
/// lost after the fault) and the time from the repair (link up / speaker restarted) until the
/// cluster is whole and the client is back on the elected node.
fn trial(vip: &str, elected: &str, fault: Fault) -> (Option<(f64, usize)>, Option<Duration>) {
    if whole_again(vip, elected, Duration::from_secs(60)).is_none() {
        return (None, None);
    }
    let first = elected.to_string();
    let probe = binary("l2-probe");
    let child = Command::new("ip")
        .args(["netns", "exec", "flb-client"])
        .arg(&probe)
        .args([vip, "3000", &PROBE_MS.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("l2-probe starts");
    std::thread::sleep(Duration::from_millis(400));
    let pid = lab().pid(&format!("speaker-{first}")).expect("speaker pid");
    let port = format!("{}-e0", first.trim_start_matches("flb-"));
    let hold = Hold::speaker(&first);
    let t0 = now_us();
    match fault {
        Fault::Kill => signal_speaker(&first, "-KILL"),
        Fault::Term => signal_speaker(&first, "-TERM"),
        Fault::LinkCut => {
            lab().exec("flb-sw", &["ip", "link", "set", &port, "down"]);
        }
    }
    let out = child.wait_with_output().expect("l2-probe output");
    // Repair: link up / let the speaker restart; measure until whole again.
    let repaired = Instant::now();
    eprintln!(
        "{fault:?}: fault at {t0} µs, repair at {} µs (unix)",
        now_us()
    );
    if let Fault::LinkCut = fault {
        lab().exec("flb-sw", &["ip", "link", "set", &port, "up"]);
    }
    drop(hold);
    if !matches!(fault, Fault::LinkCut) {
        wait_speaker_back(&first, pid);
    }
    let back = whole_again(vip, elected, Duration::from_secs(60)).map(|_| repaired.elapsed());
    (failover(&out.stdout, t0, &first, fault), back)
}

/// The first answer from another node after `t0` in the probe's output, and the probes lost
/// before it.
fn failover(stdout: &[u8], t0: u128, first: &str, fault: Fault) -> Option<(f64, usize)> {
    let text = String::from_utf8_lossy(stdout);
    let mut lost = 0;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(t), Some(who)) = (it.next().and_then(|t| t.parse::<u128>().ok()), it.next())
        else {
            continue;
        };
        if t < t0 {
            continue;
        }
        if who != "-" && who != first {
            return Some(((t - t0) as f64 / 1000.0, lost));
        }
        if who == "-" {
            lost += 1;
        }
    }
    // No failover: say what the client saw (who answered, in runs), for the record.
    let mut runs: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(t), Some(who)) = (it.next().and_then(|t| t.parse::<u128>().ok()), it.next())
        else {
            continue;
        };
        if t < t0 {
            continue;
        }
        match runs.last_mut() {
            Some((w, n)) if w == who => *n += 1,
            _ => runs.push((who.to_string(), 1)),
        }
    }
    eprintln!("{fault:?}: no failover from {first}; the client saw {runs:?}");
    None
}

fn main() {
    let trials: usize = std::env::var("FERROLB_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let _ = lab();
    let case = L2Case::new(&["198.18.0.230"], Some("{}"), "", &["flb-node1"]);
    let vip = case.ips().remove(0);
    let _r = Responders::start(&vip);
    println!(
        "== L2 failover: {trials} trials per fault, probe every {PROBE_MS} ms from flb-client to {vip}:80"
    );
    // FERROLB_BENCH_FAULTS=kill,linkcut,term (default: all three).
    let wanted = std::env::var("FERROLB_BENCH_FAULTS")
        .unwrap_or_default()
        .to_lowercase();
    let faults = [Fault::Kill, Fault::LinkCut, Fault::Term]
        .into_iter()
        .filter(|f| {
            wanted.is_empty()
                || wanted
                    .split(',')
                    .any(|w| w == format!("{f:?}").to_lowercase())
        });
    let elected = case.announcer();
    println!("elected node with all speakers up: {elected}");
    for fault in faults {
        let mut times = Vec::new();
        let mut losses = Vec::new();
        let mut backs = Vec::new();
        let mut failed = 0;
        let mut not_back = 0;
        for _ in 0..trials {
            let (got, back) = trial(&vip, &elected, fault);
            eprintln!("{fault:?} trial: failover {got:?}, whole again after {back:?}");
            match back {
                Some(d) => backs.push(d.as_secs_f64() * 1000.0),
                None => not_back += 1,
            }
            match got {
                Some((ms, lost)) => {
                    times.push(ms);
                    losses.push(lost);
                }
                None => failed += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        losses.sort();
        println!(
            "{fault:?}: failover p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (n={}, no failover within 3 s: {failed}); probes lost p50 {} max {}",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(f64::NAN),
            times.len(),
            losses.get(losses.len() / 2).copied().unwrap_or(0),
            losses.last().copied().unwrap_or(0),
        );
        backs.sort_by(f64::total_cmp);
        let repair = match fault {
            Fault::LinkCut => "link up",
            _ => "speaker restart",
        };
        println!(
            "{fault:?}: {repair} → all speakers see each other and the client is back on {elected}: p50 {:.0} ms, p99 {:.0} ms (n={}, not within 60 s: {not_back})",
            percentile(&backs, 0.5),
            percentile(&backs, 0.99),
            backs.len(),
        );
    }
}
