//! What the speaker does with its BGP routes when it is told to stop (SIGTERM): keep them at the
//! routers through a planned restart (a rolling update, `kubectl rollout restart`, a pod deleted
//! while the node stays), or withdraw them at once because this node stops serving (cordoned,
//! drained, being deleted, excluded from load balancers, marked for removal by the autoscaler).
//!
//! The speaker cannot ask the kubelet why it is being stopped, so it judges from its Node as last
//! seen (its cache of the API server, read at the moment of SIGTERM: no request to wait for).
//! Pure: the caller hands in the Node and whether the API server was reachable.

use ferrolb_crds::serving::node_usable;
use k8s_openapi::api::core::v1::Node;

use crate::bgp::StopReason;

/// What to do with BGP routes on SIGTERM (`--on-shutdown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnShutdown {
    /// Keep them through a planned restart, withdraw them when the node stops serving.
    #[default]
    Auto,
    /// Always keep them (graceful restart), e.g. for an upgrade while nodes are cordoned.
    KeepRoutes,
    /// Always withdraw them at once (the behaviour without graceful restart).
    Withdraw,
}

/// Taint of a node that is shut down for good (non-graceful node shutdown, KEP-2268).
const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

/// The decision and why, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    pub reason: StopReason,
    pub why: String,
}

impl Departure {
    fn withdraw(why: &str) -> Departure {
        Departure {
            reason: StopReason::Shutdown,
            why: why.into(),
        }
    }
}

/// Restart (keep routes) or Shutdown (withdraw) for a speaker stopping on `node`.
///
/// With `Auto` the routes are kept only when everything says the node stays in service: the API
/// server reachable (else the cache may be stale: withdrawing is the safe side, since the other
/// nodes keep announcing and only this node's share of the traffic moves, whereas kept routes
/// to a node that is going away would draw traffic into it for the whole restart time), the Node
/// known, allowed to announce (`node_usable`), not cordoned and not out of service.
pub fn decide(mode: OnShutdown, node: Option<&Node>, api_reachable: bool) -> Departure {
    match mode {
        OnShutdown::KeepRoutes => {
            return Departure {
                reason: StopReason::Restart,
                why: "--on-shutdown=keep-routes".into(),
            };
        }
        OnShutdown::Withdraw => return Departure::withdraw("--on-shutdown=withdraw"),
        OnShutdown::Auto => {}
    }
    if !api_reachable {
        return Departure::withdraw(
            "the API server is unreachable: a restart cannot be told from a drain",
        );
    }
    let Some(node) = node else {
        return Departure::withdraw("this node's Node object is gone");
    };
    if !node_usable(node) {
        return Departure::withdraw(
            "this node may no longer announce (being deleted, excluded from load balancers, \
             ToBeDeletedByClusterAutoscaler, or NetworkUnavailable)",
        );
    }
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        return Departure::withdraw("this node is cordoned (drained or being drained)");
    }
    let out_of_service = spec
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT));
    if out_of_service {
        return Departure::withdraw("this node is tainted out-of-service");
    }
    Departure {
        reason: StopReason::Restart,
        why: "this node stays in service: a planned restart (the DaemonSet starts a new speaker \
              here)"
            .into(),
    }
}

#[cfg(test)]
mod tests;
