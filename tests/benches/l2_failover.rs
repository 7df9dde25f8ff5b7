//! L2 failover benchmark in the lab (prints figures; asserts nothing).
//!
//! `cargo bench -p ferrolb-tests --bench l2_failover` with the lab up. For each of SIGKILL of the
//! announcing speaker, cutting its node's link, and SIGTERM, over FERROLB_BENCH_TRIALS trials
//! (default 20): the time from the fault to the client's first TCP answer from another node
//! (probing every 10 ms from the client host), and for SIGTERM the probes lost meanwhile.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrolb_tests::l2::{Hold, L2Case, signal_speaker, wait_answer, wait_speaker_back};
use ferrolb_tests::{Responders, binary, lab};

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

/// One trial: returns (failover ms, probes lost after the fault).
fn trial(vip: &str, fault: Fault) -> Option<(f64, usize)> {
    let first = wait_answer(vip, "a stable announcer", Duration::from_secs(10), |_| true);
    let probe = binary("l2-probe");
    let child = Command::new("ip")
        .args(["netns", "exec", "flb-client"])
        .arg(&probe)
        .args([vip, "3000", &PROBE_MS.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(400));
    let pid = lab().pid(&format!("speaker-{first}")).ok()?;
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
    let out = child.wait_with_output().ok()?;
    // Restore: link up / let the speaker restart, then wait until things settle.
    if let Fault::LinkCut = fault {
        lab().exec("flb-sw", &["ip", "link", "set", &port, "up"]);
    }
    drop(hold);
    if !matches!(fault, Fault::LinkCut) {
        wait_speaker_back(&first, pid);
    } else {
        std::thread::sleep(Duration::from_secs(2));
    }
    let text = String::from_utf8_lossy(&out.stdout);
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
    for fault in [Fault::Kill, Fault::LinkCut, Fault::Term] {
        let mut times = Vec::new();
        let mut losses = Vec::new();
        let mut failed = 0;
        for _ in 0..trials {
            match trial(&vip, fault) {
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
    }
}
