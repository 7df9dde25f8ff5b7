//! Which nodes may advertise a Service over BGP, decided by the speakers' own rules
//! (`ferrolb_crds::serving`): some endpoint must serve it; with `externalTrafficPolicy: Local`
//! only nodes with a serving endpoint may; a node excluded from load balancers or whose network
//! is unavailable never does.

use std::collections::BTreeSet;

use ferrolb_crds::serving::{endpoints_by_service, local_policy, node_usable};
use k8s_openapi::api::core::v1::Service;

use crate::snapshot::Snapshot;

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
    let (ns, name) = (
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default(),
    );
    // Only this Service's slices (the rest of the cluster is not this Service's business).
    let slices = snap.endpoint_slices.iter().filter(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .is_some_and(|n| n == name)
    });
    let eps = endpoints_by_service(slices)
        .into_values()
        .next()
        .unwrap_or_default();
    Serving {
        any: eps.any,
        local: local_policy(svc),
        nodes: eps.nodes,
    }
}

/// Whether a node may announce at all (an unknown node is given the benefit of the doubt).
fn usable(snap: &Snapshot, node: &str) -> bool {
    snap.nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .is_none_or(node_usable)
}
