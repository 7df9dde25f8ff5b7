//! Whether the watches reach the API server, and saying so: one log line when they start
//! failing, one when they recover, and a `watch::Receiver<bool>` for readiness and a gauge.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

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

    /// Calls `f` with whether the API server is reachable now and on every change (to set
    /// readiness and the `api_reachable` gauge).
    pub fn on_change(&self, mut f: impl FnMut(bool) + Send + 'static) {
        let mut rx = self.reachable();
        tokio::spawn(async move {
            loop {
                f(*rx.borrow_and_update());
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    pub(crate) fn failed(&self, kind: &str, error: String) {
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

    pub(crate) fn ok(&self, kind: &str) {
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
