//! Leader election on a `coordination.k8s.io` Lease, with a fence: only the holder writes, and
//! a holder that cannot renew stops writing before anyone else can take over.
//!
//! Not kube-lease-manager: it reports leadership only when the Lease says otherwise, so a leader
//! cut off from the API server kept "leading" (and writing once reconnected) for as long as its
//! renewals failed, and a standby judged expiry by comparing the leader's `renewTime` with its
//! own clock. Here, as in client-go:
//! - the leader is leading only until `sent + DURATION - MARGIN`, where `sent` is when it sent
//!   its last renewal that succeeded (its own monotonic clock; the server's commit is later);
//! - a standby takes over only after it has seen the same Lease record (resourceVersion) for a
//!   whole `DURATION` of its own monotonic clock, with a resourceVersion precondition, so of two
//!   standbys only one wins, and no wall clocks are compared.
//!
//! The leader's renewal is committed after `sent`, so a standby sees it at or after `sent` and
//! cannot take over before `sent + DURATION`: the old leader has stopped `MARGIN` earlier
//! (room for clock-rate differences and for a write sent just before its deadline).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

/// How long a Lease lasts without renewal: a dead leader is replaced after this.
pub const DURATION: Duration = Duration::from_secs(10);
/// A leader stops writing this long before its lease could expire.
pub const MARGIN: Duration = Duration::from_secs(2);
/// How often the holder renews, and a standby looks.
pub const RETRY: Duration = Duration::from_secs(2);
/// How often a replica whose last attempt failed tries again.
const RETRY_FAILING: Duration = Duration::from_millis(500);

/// Whether this replica may write now. Checked right before every API write.
#[derive(Clone, Debug)]
pub struct Fence(Arc<Mutex<FenceState>>);

#[derive(Debug)]
enum FenceState {
    /// Leader election off (single replica): always leading.
    Always,
    /// Leading until this instant (None: not leading).
    Until(Option<Instant>),
}

impl Fence {
    /// A fence that is always open (no election).
    pub fn always() -> Fence {
        Fence(Arc::new(Mutex::new(FenceState::Always)))
    }

    fn closed() -> Fence {
        Fence(Arc::new(Mutex::new(FenceState::Until(None))))
    }

    fn set(&self, until: Option<Instant>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = FenceState::Until(until);
    }

    /// The instant leadership ends (None: not leading; far future: no election).
    fn deadline(&self) -> Option<Instant> {
        match *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            FenceState::Always => Some(Instant::now() + Duration::from_secs(3600)),
            FenceState::Until(u) => u,
        }
    }

    /// True while this replica holds a lease that cannot have expired.
    pub fn leading(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() < d)
    }
}

/// An election in progress.
pub struct Election {
    /// Reads true while this replica leads (flips to false at the fence deadline at the latest).
    pub leading: watch::Receiver<bool>,
    /// Checked before every write.
    pub fence: Fence,
    task: Option<(tokio::task::JoinHandle<()>, Api<Lease>, String, String)>,
    _always: Option<watch::Sender<bool>>,
}

impl Election {
    /// Gives the lease up (on shutdown) so a standby takes over at once instead of waiting for
    /// the lease to expire.
    pub async fn resign(self) {
        let Some((task, api, name, identity)) = self.task else {
            return;
        };
        task.abort();
        let _ = task.await;
        self.fence.set(None);
        let release = async {
            let lease = api.get(&name).await?;
            let spec = lease.spec.unwrap_or_default();
            if spec.holder_identity.as_deref() == Some(identity.as_str()) {
                let patch = json!({
                    "metadata": { "resourceVersion": lease.metadata.resource_version },
                    "spec": { "holderIdentity": null },
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            Ok::<_, kube::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), release).await {
            Ok(Ok(())) => tracing::info!("lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "lease not released"),
            Err(_) => tracing::warn!("lease not released (timeout)"),
        }
    }
}

/// Starts election. With `enabled == false` (single replica) this replica always leads.
pub async fn elect(
    client: kube::Client,
    namespace: &str,
    lease: &str,
    identity: &str,
    enabled: bool,
) -> anyhow::Result<Election> {
    if !enabled {
        let (tx, rx) = watch::channel(true);
        return Ok(Election {
            leading: rx,
            fence: Fence::always(),
            task: None,
            _always: Some(tx),
        });
    }
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let fence = Fence::closed();
    let (tx, rx) = watch::channel(false);
    let mut e = Elector {
        api: api.clone(),
        name: lease.to_string(),
        identity: identity.to_string(),
        observed: None,
    };
    let f = fence.clone();
    let task = tokio::spawn(async move { e.run(f, tx).await });
    Ok(Election {
        leading: rx,
        fence,
        task: Some((task, api, lease.to_string(), identity.to_string())),
        _always: None,
    })
}

struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The Lease record last seen, and when this replica first saw it.
    observed: Option<(String, Instant)>,
}

impl Elector {
    async fn run(&mut self, fence: Fence, tx: watch::Sender<bool>) {
        let mut failing = false;
        loop {
            let sent = Instant::now();
            let attempt = tokio::time::timeout(RETRY, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => {
                    fence.set(Some(sent + DURATION - MARGIN));
                    if failing {
                        tracing::info!("lease renewed again");
                    }
                    failing = false;
                }
                Ok(Ok(false)) => {
                    fence.set(None);
                    failing = false;
                }
                Ok(Err(e)) => {
                    if !failing {
                        tracing::warn!(error = %e, "lease not renewed; retrying every 0.5 s");
                    }
                    failing = true;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!("lease not renewed (timeout); retrying every 0.5 s");
                    }
                    failing = true;
                }
            }
            // Sleep until the next attempt, waking at the fence deadline to say we stopped.
            // While the API server does not answer, look more often, so leadership resumes
            // within ~0.5 s of it answering again.
            let next = sent + if failing { RETRY_FAILING } else { RETRY };
            loop {
                let leading = fence.leading();
                tx.send_if_modified(|l| std::mem::replace(l, leading) != leading);
                let wake = match fence.deadline() {
                    Some(d) if d > Instant::now() && d < next => d,
                    _ => next,
                };
                tokio::time::sleep_until(wake.into()).await;
                if Instant::now() >= next {
                    break;
                }
            }
        }
    }

    /// One round: Ok(true) when this replica holds the Lease after it.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = serde_json::to_value(MicroTime(k8s_openapi::jiff::Timestamp::now()))
            .unwrap_or_default();
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": { "name": self.name },
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": DURATION.as_secs(),
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                }
            }))
            .map_err(kube::Error::SerdeError)?;
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!("lease created: leading");
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        let seen_at = match &self.observed {
            Some((r, at)) if *r == rv => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((rv.clone(), at));
                at
            }
        };
        let their_duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.clamp(1, 3600) as u64))
            .unwrap_or(DURATION);
        if holder.is_some() && !mine && seen_at.elapsed() < their_duration {
            return Ok(false);
        }
        let mut spec_patch = json!({
            "holderIdentity": self.identity,
            "leaseDurationSeconds": DURATION.as_secs(),
            "renewTime": now,
        });
        if !mine {
            spec_patch["acquireTime"] = now.clone();
            spec_patch["leaseTransitions"] = json!(spec.lease_transitions.unwrap_or(0) + 1);
        }
        // The precondition: of two replicas acting on the same record, one wins.
        let patch = json!({ "metadata": { "resourceVersion": rv }, "spec": spec_patch });
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(l) => {
                if !mine {
                    tracing::info!(previous = holder, "lease acquired: leading");
                }
                self.observed = l.metadata.resource_version.map(|r| (r, Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_closes_at_deadline() {
        let f = Fence::closed();
        assert!(!f.leading());
        f.set(Some(Instant::now() + Duration::from_secs(5)));
        assert!(f.leading());
        f.set(Some(Instant::now() - Duration::from_millis(1)));
        assert!(!f.leading());
        assert!(Fence::always().leading());
    }

    #[test]
    fn leader_stops_before_a_standby_can_start() {
        // A standby starts DURATION after it first saw the renewal, which is after it was sent.
        const { assert!(MARGIN.as_secs() > 0 && MARGIN.as_secs() < DURATION.as_secs()) };
        const { assert!(RETRY.as_secs() * 2 < DURATION.as_secs() - MARGIN.as_secs()) };
    }
}
