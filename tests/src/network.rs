//! The lab network: commands in a host's network namespace, `ip monitor` events as they arrive,
//! and a node's link cut at the lab switch.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::run;

/// Lines received so far with their arrival, and a signal for each new one.
pub(crate) type Events = Arc<(Mutex<Vec<(Instant, String)>>, Condvar)>;

/// Events of `ip monitor OBJECTS` in a lab namespace, each with the instant it arrived.
pub struct Monitor {
    child: Child,
    pub(crate) events: Events,
}

/// Starts `ip -n NS monitor OBJECTS`; `on_line` gets each line it prints with the instant the
/// line arrived, on a thread of its own, until it returns false or the monitor ends. Returns
/// once the monitor has subscribed.
pub fn ip_monitor(
    ns: &str,
    objects: &[&str],
    mut on_line: impl FnMut(Instant, String) -> bool + Send + 'static,
) -> Child {
    let mut child = Command::new("ip")
        .args(["-n", ns, "monitor"])
        .args(objects)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ip monitor starts");
    let out = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if !on_line(Instant::now(), line) {
                break;
            }
        }
    });
    // `ip monitor` subscribes right after it starts.
    std::thread::sleep(Duration::from_millis(50));
    child
}

impl Monitor {
    pub fn start(ns: &str, objects: &[&str]) -> Monitor {
        let events: Events = Arc::default();
        let ev = events.clone();
        let child = ip_monitor(ns, objects, move |at, line| {
            let (m, cv) = &*ev;
            m.lock().unwrap_or_else(|e| e.into_inner()).push((at, line));
            cv.notify_all();
            true
        });
        Monitor { child, events }
    }

    /// When the first event line after `since` for which `matches` holds arrived.
    pub fn first_event(
        &self,
        since: Instant,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let (m, cv) = &*self.events;
        let mut ev = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((t, _)) = ev.iter().find(|(t, l)| *t >= since && matches(l)) {
                return Some(*t);
            }
            let left = timeout.checked_sub(since.elapsed())?;
            ev = cv
                .wait_timeout(ev, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ip ARGS` in a lab namespace, asserting success.
pub fn ip_in(ns: &str, args: &[&str]) {
    let r = run(Command::new("ip").arg("-n").arg(ns).args(args));
    assert!(r.ok, "ip -n {ns} {args:?}: {}", r.stderr);
}

/// `sysctl -w KEY=VALUE` in a lab namespace; returns the previous value.
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> String {
    let old = run(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-n", key]));
    let r = run(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]));
    assert!(r.ok, "{ns}: sysctl {key}={value}: {}", r.stderr);
    old.stdout.trim().to_string()
}

/// Cuts a node's link at the lab switch until dropped.
pub struct LinkCut {
    port: String,
    /// When the switch reported the port down (`ip monitor link`).
    pub at: Instant,
}

impl LinkCut {
    pub fn node(node: &str) -> LinkCut {
        let port = format!("{}-e0", node.trim_start_matches("flb-"));
        let links = Monitor::start("flb-sw", &["link"]);
        let before = Instant::now();
        ip_in("flb-sw", &["link", "set", &port, "down"]);
        let at = links
            .first_event(before, Duration::from_secs(2), |l| {
                l.contains(&format!(" {port}@")) || l.contains(&format!(" {port}:"))
            })
            .unwrap_or(before);
        LinkCut { port, at }
    }
}

impl Drop for LinkCut {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["-n", "flb-sw", "link", "set", &self.port, "up"]));
    }
}
