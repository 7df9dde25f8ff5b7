//! Watches that come back quickly after an API-server outage, and say so while they cannot.
//!
//! Shared by the controller and the speaker (the speaker includes this file by `#[path]`).
//!
//! kube-runtime's default watch backoff (0.8 s doubling to 30 s, reset only after 120 s of
//! quiet) left allocation stalled 40-70 s after a 20 s outage, with nothing logged. Here each
//! watch retries on a short jittered backoff (100 ms doubling to 1 s), restarts from a fresh
//! list after an error (so a successful list proves the API server answers again), and reports
//! its state to an [`ApiHealth`]: one log line when watches start failing, one when they
//! recover, and a `watch::Receiver<bool>` for readiness and a gauge.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// Exponential backoff with full jitter in the upper half: `[d/2, d]`, `d` doubling from
/// `first` up to `max`. Jitter keeps many watches (and many replicas) from reconnecting in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The watch backoff: 100 ms doubling to 1 s, so a watch is back within ~1 s of the API
    /// server answering again.
    pub fn watch() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        half + half.mul_f64(unit_random())
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in [0, 1) that differs between calls (std's per-`RandomState` keys; jitter needs
/// no cryptographic quality and no extra dependency).
fn unit_random() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How long watches must have been failing before the API server is reported unreachable (a
/// single expired watch that relists at once is not an outage).
const REPORT_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
struct HealthState {
    /// Failing watches: kind -> (since, last error).
    failing: BTreeMap<String, (Instant, String)>,
    /// When the current outage was reported (None: not reported).
    reported: Option<Instant>,
}

/// Whether the watches reach the API server. Cheap to clone.
#[derive(Clone)]
pub struct ApiHealth {
    state: Arc<Mutex<HealthState>>,
    changed: Arc<tokio::sync::Notify>,
    reachable: watch::Sender<bool>,
}

impl ApiHealth {
    /// Starts the task that turns watch failures into one log line per outage edge and the
    /// `reachable` signal. `program` names the process in the log.
    pub fn start(program: &'static str) -> ApiHealth {
        let (reachable, _) = watch::channel(true);
        let h = ApiHealth {
            state: Arc::default(),
            changed: Arc::default(),
            reachable,
        };
        let t = h.clone();
        tokio::spawn(async move { t.follow(program).await });
        h
    }

    /// True while every watch reaches the API server.
    pub fn reachable(&self) -> watch::Receiver<bool> {
        self.reachable.subscribe()
    }

    fn failed(&self, kind: &str, error: String) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let e = s
            .failing
            .entry(kind.to_string())
            .or_insert((now, String::new()));
        e.1 = error;
        drop(s);
        self.changed.notify_one();
    }

    fn ok(&self, kind: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.failing.remove(kind).is_some() {
            drop(s);
            self.changed.notify_one();
        }
    }

    async fn follow(&self, program: &'static str) {
        loop {
            // Wake on every change, and once more when a failure is old enough to report.
            let wait = {
                let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let oldest = s.failing.values().map(|(t, _)| *t).min();
                match (oldest, s.reported) {
                    (Some(t), None) => Some(REPORT_AFTER.saturating_sub(t.elapsed())),
                    _ => None,
                }
            };
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, self.changed.notified()).await;
                }
                None => self.changed.notified().await,
            }
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let oldest = s.failing.values().map(|(t, _)| *t).min();
            match (oldest, s.reported) {
                (Some(since), None) if since.elapsed() >= REPORT_AFTER => {
                    let (kind, error) = s
                        .failing
                        .iter()
                        .next()
                        .map(|(k, v)| (k.clone(), v.1.clone()))
                        .unwrap_or_default();
                    tracing::warn!(
                        program,
                        failing = s.failing.len(),
                        kind,
                        error,
                        "API server unreachable: watches failing, retrying every <= 1 s"
                    );
                    s.reported = Some(since);
                    self.reachable.send_replace(false);
                }
                (None, Some(since)) => {
                    tracing::info!(
                        program,
                        outage_s = since.elapsed().as_secs_f64(),
                        "API server reachable again: watches resumed"
                    );
                    s.reported = None;
                    self.reachable.send_replace(true);
                }
                _ => {}
            }
        }
    }
}

/// Runs a reflector for `api` until the process ends. `slim` trims each object before it is
/// cached; `on_event` sees every event after the store has it, and returns false to stop.
///
/// After any error the watch starts over with a fresh list (the store swaps in the new list
/// atomically at `InitDone`), after a [`Backoff::watch`] delay; the list answering is what marks
/// the watch healthy again.
pub fn reflect<K>(
    api: Api<K>,
    cfg: watcher::Config,
    health: ApiHealth,
    slim: impl Fn(&mut K) + Send + Sync + 'static,
    mut on_event: impl FnMut(&watcher::Event<K>) -> bool + Send + 'static,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, mut writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let slim = Arc::new(slim);
    tokio::spawn(async move {
        let mut backoff = Backoff::watch();
        loop {
            let s = slim.clone();
            let stream = watcher(api.clone(), cfg.clone()).modify(move |o| s(o));
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        // `Init` comes before the list request: it proves nothing.
                        if !matches!(ev, watcher::Event::Init) {
                            health.ok(&kind);
                            backoff.reset();
                        }
                        writer.apply_watcher_event(&ev);
                        if !on_event(&ev) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, kind, "watch error; starting over");
                        health.failed(&kind, e.to_string());
                        break;
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    });
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        let mut b = Backoff::watch();
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(1)));
        assert!(d[7] >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        let spread: std::collections::BTreeSet<_> = (0..20)
            .map(|_| Backoff::watch().next_delay().as_nanos())
            .collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
