//! Which nodes may advertise a Service over BGP, decided as the speakers decide it
//! (speaker/src/plan/mod.rs): some endpoint must serve it; with `externalTrafficPolicy: Local`
//! only nodes with a serving endpoint may; a node excluded from load balancers or whose network
//! is unavailable never does.

use std::collections::BTreeSet;

use ferrolb_crds::service::key;
use k8s_openapi::api::core::v1::Service;

use crate::snapshot::Snapshot;

/// Node label that keeps a node out of every announcement (as in Kubernetes' own controllers).
const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The Service's endpoints as the speakers see them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Serving {
    /// Some endpoint serves the Service (without one, nobody announces it).
    pub any: bool,
    /// `externalTrafficPolicy: Local`: only `nodes` may advertise.
    pub local: bool,
    /// Nodes with a serving endpoint.
    pub nodes: BTreeSet<String>,
}

impl Serving {
    /// Whether `node` may advertise the Service.
    pub fn allows(&self, snap: &Snapshot, node: &str) -> bool {
        self.any && (!self.local || self.nodes.contains(node)) && usable(snap, node)
    }
}

pub fn of_service(snap: &Snapshot, svc: &Service) -> Serving {
    let k = key(svc);
    let mut out = Serving {
        local: svc
            .spec
            .as_ref()
            .and_then(|s| s.external_traffic_policy.as_deref())
            == Some("Local"),
        ..Default::default()
    };
    let slices = snap.endpoint_slices.iter().filter(|s| {
        let name = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"));
        name.is_some_and(|n| {
            format!(
                "{}/{n}",
                s.metadata.namespace.as_deref().unwrap_or_default()
            ) == k
        })
    });
    for ep in slices.flat_map(|s| s.endpoints.iter().flatten()) {
        let c = ep.conditions.as_ref();
        // `serving` is the truth while terminating; `ready` for older producers.
        let serving = c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true);
        let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
        let ready = c.and_then(|c| c.ready).unwrap_or(true);
        if serving && (ready || terminating) {
            out.any = true;
            if let Some(n) = &ep.node_name {
                out.nodes.insert(n.clone());
            }
        }
    }
    out
}

/// Whether a node may announce at all (an unknown node is given the benefit of the doubt).
fn usable(snap: &Snapshot, node: &str) -> bool {
    let Some(n) = snap
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
    else {
        return true;
    };
    let excluded = n
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(EXCLUDE_LABEL));
    let net_down = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    !excluded && !net_down
}
