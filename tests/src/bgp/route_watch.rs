//! Kernel route changes in a router namespace, timed to the millisecond.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::router::Router;
use crate::network::Monitor;

/// Times kernel route changes in a router namespace: `ip monitor route nexthop` runs in the
/// background; [`RouteWatch::wait`] re-reads the route on every event and reports when the
/// awaited change happened, to the millisecond.
pub struct RouteWatch {
    pub router: Router,
    monitor: Monitor,
}

impl RouteWatch {
    pub fn start(router: Router) -> RouteWatch {
        RouteWatch {
            router,
            monitor: Monitor::start(router.ns, &["route", "nexthop"]),
        }
    }

    /// Waits until the kernel's next hops for `ip` satisfy `ok`; returns how long after `since`
    /// the change happened: the arrival of the last route event that mentions `ip` up to the
    /// satisfying read (or the read itself if there was none). `None` on timeout.
    pub fn wait(
        &self,
        ip: &str,
        since: Instant,
        timeout: Duration,
        ok: impl Fn(&BTreeSet<String>) -> bool,
    ) -> Option<Duration> {
        let (m, cv) = &*self.monitor.events;
        let mut seen = 0;
        loop {
            let hops = self.router.kernel_nexthops(ip);
            let read_at = Instant::now();
            if ok(&hops) {
                // The change was visible to the read, so its event was sent before the read
                // ended; give the monitor a moment to pass it on.
                std::thread::sleep(Duration::from_millis(20));
                let slack = read_at + Duration::from_millis(20);
                let ev = m.lock().unwrap_or_else(|e| e.into_inner());
                let at = ev
                    .iter()
                    .filter(|(t, line)| {
                        *t >= since && *t <= slack && line.split_whitespace().any(|w| w == ip)
                    })
                    .map(|(t, _)| *t)
                    .next_back()
                    .unwrap_or(read_at);
                return Some(at.saturating_duration_since(since));
            }
            if since.elapsed() > timeout {
                return None;
            }
            // Until the next event (or a slow poll, in case one was missed).
            let ev = m.lock().unwrap_or_else(|e| e.into_inner());
            let n = ev.len();
            if n == seen {
                let _ = cv.wait_timeout(ev, Duration::from_millis(100));
            }
            seen = n;
        }
    }
}
