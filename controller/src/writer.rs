//! The controller's API writes: fenced by leadership, conditional on what was decided from, and
//! retried only when retrying can help.
//!
//! - Fenced: every request (first try and each retry; Service status, annotation, events, pool
//!   and verdict status) is sent only while [`Fence::leading`] holds, checked right before it.
//! - Conditional: a Service's status is applied with the `resourceVersion` of the Service the
//!   decision was made from, so it lands only if the Service has not changed since; the pool
//!   annotation carries the version that status write produced. A stale decision, or a deposed
//!   leader's write delayed in the network, gets 409 Conflict instead of overwriting a newer
//!   value, and the Service is decided again from the fresh object (never the old write again).
//! - Classified ([`classify`]): transient errors (5xx, 429, timeouts, connection) back off with
//!   jitter up to a cap and a bounded number of attempts; permanent ones (other 4xx) stop at
//!   once, free the write slot, and are logged, counted and shown as a Warning event.

use std::sync::Arc;
use std::time::Duration;

use ferrolb_shell::backoff::Backoff;
use ferrolb_shell::events::{EventType, EventWriter};
use ferrolb_shell::watch::Kind;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Semaphore;

use crate::decide::Decision;
use crate::leader::Fence;
use crate::metrics::{Metrics, ReasonLabels};
use crate::service_status::{event, pool_patch, status_apply};

/// Field manager of every controller write (with `-<class>` appended for a non-default class,
/// so two FerroLB controllers serving different classes never clear each other's fields).
pub const MANAGER: &str = "ferrolb-controller";

/// The field manager for `class`.
pub fn manager_for(class: Option<&str>) -> String {
    match class {
        None => MANAGER.to_string(),
        Some(c) => format!("{MANAGER}-{}", c.replace('/', "-"))
            .chars()
            .take(128)
            .collect(),
    }
}

/// Attempts of one write before a transient error is given up on (about 30 s of backoff);
/// the Service is decided again later ([`RETRY_LATER`]).
const MAX_ATTEMPTS: u32 = 8;
/// When a Service whose write kept failing transiently is decided again.
pub const RETRY_LATER: Duration = Duration::from_secs(30);

/// What a failed request means for the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 404: the object is gone; nothing to write.
    Gone,
    /// 409: the object changed since the decision (or the write already landed): decide again
    /// from the fresh object.
    Conflict,
    /// Worth retrying: the API server is overloaded, restarting or unreachable.
    Transient,
    /// Retrying cannot help: refused by RBAC, admission or validation.
    Permanent,
}

/// Classifies an API error.
pub fn classify(e: &kube::Error) -> Class {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => Class::Gone,
            409 => Class::Conflict,
            408 | 429 => Class::Transient,
            c if c >= 500 => Class::Transient,
            // Other 4xx: the request itself is refused. (0: a status without a code, as a
            // proxy may return: treat as transient.)
            c if (400..500).contains(&c) => Class::Permanent,
            _ => Class::Transient,
        },
        // The request never got a verdict (connection refused or reset, timeout, TLS): retry.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Class::Transient
        }
        // Our request could not even be built or sent: retrying sends the same thing.
        kube::Error::BuildRequest(_) | kube::Error::HttpError(_) => Class::Permanent,
        _ => Class::Transient,
    }
}

/// How a Service write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Gone,
    /// 409: decide again once the store holds a Service newer than `resource_version`.
    Conflict,
    /// Not leading (any more): nothing was sent.
    Fenced,
    /// Refused for good; decided again when the Service or the configuration changes.
    Refused,
    /// Transient errors until the attempts ran out; decided again after [`RETRY_LATER`].
    GaveUp,
}

/// A Service write: the Service as decided from (its resourceVersion is the precondition).
pub enum WriteJob {
    Apply(Arc<Service>, Decision),
    Clear(Arc<Service>),
}

impl WriteJob {
    pub fn service(&self) -> &Arc<Service> {
        match self {
            WriteJob::Apply(s, _) | WriteJob::Clear(s) => s,
        }
    }
}

/// Why a request was not sent or failed.
enum Failure {
    Fenced,
    Api(kube::Error),
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Failure {
        Failure::Api(e)
    }
}

/// Performs API writes off the decision loop, bounded by `permits`.
#[derive(Clone)]
pub(crate) struct Writer {
    pub manager: String,
    pub client: Client,
    pub events: EventWriter,
    pub metrics: Metrics,
    pub permits: Arc<Semaphore>,
    pub fence: Fence,
}

impl Writer {
    fn count(&self, reason: &str) {
        self.metrics.api_write_errors.inc();
        self.metrics
            .write_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Writes a Service once a write slot is free; says how it ended.
    pub(crate) async fn write(&self, key: &str, job: &WriteJob) -> Outcome {
        let _permit = self.permits.acquire().await;
        self.write_with_retries(key, job).await
    }

    async fn write_with_retries(&self, key: &str, job: &WriteJob) -> Outcome {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        for attempt in 1..=MAX_ATTEMPTS {
            let e = match self.write_service(job).await {
                Ok(()) => return Outcome::Done,
                Err(Failure::Fenced) => {
                    tracing::info!(service = key, "not leading: write dropped");
                    return Outcome::Fenced;
                }
                Err(Failure::Api(e)) => e,
            };
            match classify(&e) {
                Class::Gone => return Outcome::Gone,
                Class::Conflict => {
                    self.count("conflict");
                    tracing::debug!(service = key, error = %e, "Service changed since the decision; deciding again");
                    return Outcome::Conflict;
                }
                Class::Permanent => {
                    self.count("permanent");
                    tracing::warn!(service = key, error = %e, "status write refused; not retrying until the Service or the configuration changes");
                    self.explain_refusal(job.service(), &e).await;
                    return Outcome::Refused;
                }
                Class::Transient => {
                    self.count("transient");
                    if attempt == 1 || attempt == MAX_ATTEMPTS {
                        tracing::warn!(service = key, attempt, error = %e, "write failed; retrying");
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
        tracing::warn!(
            service = key,
            attempts = MAX_ATTEMPTS,
            retry_in_s = RETRY_LATER.as_secs(),
            "write kept failing; deciding again later"
        );
        Outcome::GaveUp
    }

    /// A Warning event says why the Service shows nothing new (its status cannot be written, so
    /// a condition could not be either).
    async fn explain_refusal(&self, svc: &Service, e: &kube::Error) {
        if !self.fence.leading() {
            return;
        }
        let msg: String = match e {
            kube::Error::Api(s) => s.message.clone(),
            other => other.to_string(),
        };
        let note = format!(
            "FerroLB cannot write this Service's status (not retried until the Service or FerroLB's configuration changes): {}",
            msg.chars().take(800).collect::<String>()
        );
        self.publish(svc, EventType::Warning, "StatusWriteRefused", note)
            .await;
    }

    /// An event about `svc`; failing to publish one is not worth more than a debug line.
    async fn publish(&self, svc: &Service, type_: EventType, reason: &str, note: String) {
        if let Err(e) = self
            .events
            .publish(type_, reason, "Allocate", note, svc.object_ref(&()))
            .await
        {
            tracing::debug!(error = %e, "event not published");
        }
    }

    /// Fails with `Fenced` unless this replica may write now.
    fn fence(&self) -> Result<(), Failure> {
        if self.fence.leading() {
            Ok(())
        } else {
            Err(Failure::Fenced)
        }
    }

    async fn write_service(&self, job: &WriteJob) -> Result<(), Failure> {
        let (svc, decision) = match job {
            WriteJob::Apply(s, d) => (s, Some(d)),
            WriteJob::Clear(s) => (s, None),
        };
        let api: Api<Service> =
            Api::namespaced(self.client.clone(), &svc.namespace().unwrap_or_default());
        let name = svc.name_any();
        // `force` only settles field ownership (a Service once written by another manager, e.g.
        // before a migration); it does not bypass the resourceVersion precondition.
        let body = status_apply(svc, decision);
        self.fence()?;
        let written = api
            .patch_status(
                &name,
                &PatchParams::apply(&self.manager).force(),
                &Patch::Apply(&body),
            )
            .await?;
        self.metrics.api_writes.inc();
        // The pool annotation after the status: the address is what clients wait for.
        if let Some(patch) = pool_patch(svc, decision, written.metadata.resource_version) {
            self.fence()?;
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            self.metrics.api_writes.inc();
        }
        if let Some((type_, reason, note)) = event(svc, decision) {
            self.fence()?;
            self.publish(svc, type_, reason, note).await;
        }
        Ok(())
    }

    /// Merge-patches a status subresource in the background: fenced, transient errors retried
    /// a few times, permanent ones logged and counted. (Pools and verdicts are written again
    /// whenever they differ from what the store shows, so giving up loses nothing for good.)
    pub fn patch_status<K: Kind>(&self, api: Api<K>, name: String, body: serde_json::Value) {
        let w = self.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            for _ in 0..4 {
                if !w.fence.leading() {
                    return;
                }
                match api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                {
                    Ok(_) => {
                        w.metrics.api_writes.inc();
                        return;
                    }
                    Err(e) => match classify(&e) {
                        Class::Gone => return,
                        Class::Transient | Class::Conflict => {
                            w.count("transient");
                            tracing::debug!(object = name, error = %e, "status write failed; retrying");
                        }
                        Class::Permanent => {
                            w.count("permanent");
                            tracing::warn!(object = name, error = %e, "status write refused");
                            return;
                        }
                    },
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            tracing::warn!(
                object = name,
                "status write kept failing; written again on the next change"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(
                json!({ "code": code, "message": "m", "reason": "r", "status": "Failure" }),
            )
            .unwrap(),
        ))
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&api(404)), Class::Gone);
        assert_eq!(classify(&api(409)), Class::Conflict);
        for c in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify(&api(c)), Class::Transient, "{c}");
        }
        for c in [400, 401, 403, 405, 413, 415, 422] {
            assert_eq!(classify(&api(c)), Class::Permanent, "{c}");
        }
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&kube::Error::ReadEvents(io)), Class::Transient);
    }
}
