//! The routers' view: next hops of a route in a router's kernel table over time.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_tests::bgp::Router;
use ferrolb_tests::network::ip_monitor;

/// Sets of nodes or next hops over time: each change with its instant.
pub type Timeline = Arc<Mutex<Vec<(Instant, BTreeSet<String>)>>>;

/// Next hops of a route in a router's kernel table over time: `ip monitor route nexthop` runs in
/// the background, each event (and every 100 ms, in case one was missed) is followed by a read
/// of the route, and each change is logged at the arrival of the last event that mentions the
/// address before the read (or of the last event, or the read).
pub struct RouteLog {
    monitor: Child,
    changes: Timeline,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl RouteLog {
    pub fn start(router: Router, ip: &str) -> RouteLog {
        let (tx, rx) = mpsc::channel::<(Instant, bool)>();
        let addr = ip.to_string();
        let monitor = ip_monitor(router.ns, &["route", "nexthop"], move |at, line| {
            let mentions = line.split_whitespace().any(|w| {
                w == addr
                    || w.strip_prefix(addr.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            });
            tx.send((at, mentions)).is_ok()
        });
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
    pub fn first(
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

    pub fn history(&self, since: Instant) -> Vec<(u128, BTreeSet<String>)> {
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
