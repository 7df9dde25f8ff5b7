//! Address conflict detection benchmark in the lab (prints figures; asserts nothing).
//!
//! FerroLB runs as supervised processes (target/debug unless FERROLB_BIN_DIR says otherwise, see
//! tests/src/lib.rs). Timestamps come from the wire (tcpdump on flb-client's eth0, which sees the
//! node's ARP on segment 0) and from the speaker's log line `address conflict`; both use this
//! machine's clock.
//!
//! - `probe delay`: a Service with a fresh address (never announced): the time from the elected
//!   node's first ARP probe (sender 0.0.0.0) to its first gratuitous ARP for the address, i.e.
//!   the delay the probe adds to the first announcement.
//! - `conflict while announcing`: a Service announced, then flb-client claims its address with
//!   unsolicited ARP, three 100 ms apart (`arping -U`): the time from the client's first claim
//!   to the speaker's report (its log line; the condition and metric are written from it), and
//!   from the claim that triggers the report (the second: the first is defended) to the report.
//!
//! Run (build outside the lab lock):
//!
//! ```sh
//! cargo bench -p ferrolb-tests --bench conflict --no-run
//! flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench conflict
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_tests::bench::{Summary, settle, stamp, trials};
use ferrolb_tests::l2::{L2Case, client_mac};
use ferrolb_tests::{lab, node_mac, repo};

/// Lines tcpdump printed on flb-client's eth0 (ARP only, with MACs and epoch timestamps),
/// collected until dropped.
struct Capture {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    fn start() -> Capture {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                "flb-client",
                "tcpdump",
                "-l",
                "-nn",
                "-e",
                "-tt",
                "-i",
                "eth0",
                "arp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        // tcpdump needs a moment before it captures.
        std::thread::sleep(Duration::from_millis(500));
        Capture { child, lines }
    }

    /// Epoch seconds of the first line from `mac` about `ip` for which `what` holds.
    fn first(&self, mac: &str, ip: &str, what: impl Fn(&str) -> bool) -> Option<f64> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.contains(&format!(" {mac} >")) && l.contains(ip) && what(l))
            .find_map(|l| l.split_whitespace().next()?.parse().ok())
    }

    /// Epoch seconds of the `n`th (from 0) line from `mac` about `ip`.
    fn nth(&self, mac: &str, ip: &str, n: usize) -> Option<f64> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.contains(&format!(" {mac} >")) && l.contains(ip))
            .nth(n)
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A probe: "who-has IP tell 0.0.0.0".
fn is_probe(line: &str) -> bool {
    line.contains("tell 0.0.0.0")
}

/// Epoch seconds of the speaker's `address conflict` log line for `ip`, on `node`.
fn reported_at(node: &str, ip: &str) -> Option<f64> {
    let log = std::fs::read_to_string(repo().join(format!(".lab/logs/speaker-{node}.log"))).ok()?;
    log.lines()
        .filter(|l| l.contains("address conflict") && l.contains(&format!("ip={ip} ")))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_microsecond() as f64 / 1e6)
        .next_back()
}

/// The node announcing the case's address, once the condition says Announced.
fn announced_by(case: &L2Case) -> Option<String> {
    settle("announced", Duration::from_secs(20), || {
        if case.condition("reason") == "Announced" {
            Ok(case.announcer())
        } else {
            Err(case.condition("message"))
        }
    })
}

fn probe_delay(addr: &str) -> Option<f64> {
    let capture = Capture::start();
    let case = L2Case::new(&[addr], Some("{}"), "", &["flb-node1"]);
    let node = announced_by(&case)?;
    std::thread::sleep(Duration::from_millis(500));
    let mac = node_mac(&node, 0);
    let probe = capture.first(&mac, addr, is_probe)?;
    let announced = capture.first(&mac, addr, |l| !is_probe(l))?;
    Some((announced - probe) * 1e3)
}

fn conflict_report(addr: &str) -> Option<(f64, f64)> {
    let case = L2Case::new(&[addr], Some("{}"), "", &["flb-node1"]);
    let node = announced_by(&case)?;
    let capture = Capture::start();
    let claim = lab().exec(
        "flb-client",
        &[
            "arping", "-U", "-S", addr, "-i", "eth0", "-c", "3", "-W", "0.1", addr,
        ],
    );
    if !claim.stdout.contains("ARPING") {
        eprintln!("arping: {}", claim.stderr);
        return None;
    }
    settle("AddressConflict", Duration::from_secs(10), || {
        (case.condition("reason") == "AddressConflict")
            .then_some(())
            .ok_or_else(|| case.condition("message"))
    })?;
    let client = client_mac("eth0");
    let first = capture.nth(&client, addr, 0)?;
    let second = capture.nth(&client, addr, 1)?;
    let report = reported_at(&node, addr)?;
    Some(((report - first) * 1e3, (report - second) * 1e3))
}

fn main() {
    let _ = lab();
    let n = trials();
    let widths = (44, 3, 8);
    println!("{} conflict bench: {n} trials per figure", stamp());
    let mut probe = Vec::new();
    for i in 0..n {
        // A fresh address per trial: a pool being deleted still holds its address for a moment.
        let addr = format!("198.18.0.{}", 150 + i % 50);
        match probe_delay(&addr) {
            Some(ms) => {
                println!("{} probe delay {addr}: {ms:.1} ms", stamp());
                probe.push(ms);
            }
            None => eprintln!("{} probe delay {addr}: trial skipped", stamp()),
        }
    }
    let (mut from_first, mut from_trigger) = (Vec::new(), Vec::new());
    for i in 0..n {
        let addr = format!("198.18.0.{}", 110 + i % 40);
        match conflict_report(&addr) {
            Some((a, b)) => {
                println!(
                    "{} conflict {addr}: first claim to report {a:.1} ms, second claim to report {b:.1} ms",
                    stamp()
                );
                from_first.push(a);
                from_trigger.push(b);
            }
            None => eprintln!("{} conflict {addr}: trial skipped", stamp()),
        }
    }
    println!();
    for (name, samples) in [
        ("probe: first probe -> first announcement", &probe),
        ("announcing: first claim -> report", &from_first),
        ("announcing: reporting claim -> report", &from_trigger),
    ] {
        println!("{}", Summary::of(samples).row(name, "ms", widths, 1));
    }
}
