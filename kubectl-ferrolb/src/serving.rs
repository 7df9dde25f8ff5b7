//! Which nodes may advertise a Service over BGP, decided by the speakers' own rules
//! (`ferrolb_crds::serving`): some endpoint must serve it (and every Service sharing its
//! address); with `externalTrafficPolicy: Local` only nodes with a serving endpoint may (of every
//! Local Service sharing the address); a node excluded from load balancers or whose network is
//! unavailable never does.

use std::collections::BTreeSet;

use ferrolb_crds::service::{ingress_ips, is_ours, key};
use ferrolb_crds::serving::{address_serving, endpoints_by_service, node_usable};
use k8s_openapi::api::core::v1::Service;

use crate::snapshot::Snapshot;

/// The Service's endpoints as the speakers see them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Serving {
    /// Some endpoint serves the Service and every Service sharing its address (without one,
    /// nobody announces it).
    pub any: bool,
    /// `externalTrafficPolicy: Local` (of the Service or one sharing its address): only `nodes`
    /// may advertise.
    pub local: bool,
    /// Local: the nodes with a serving endpoint of every Local Service on the address; Cluster:
    /// the nodes with a serving endpoint of the Service.
    pub nodes: BTreeSet<String>,
    /// Other Services showing one of the Service's addresses (`namespace/name`).
    pub shared_with: Vec<String>,
}

impl Serving {
    /// Whether `node` may advertise the Service.
    pub fn allows(&self, snap: &Snapshot, node: &str) -> bool {
        self.any && (!self.local || self.nodes.contains(node)) && usable(snap, node)
    }
}

pub fn of_service(snap: &Snapshot, svc: &Service) -> Serving {
    let ips = ingress_ips(svc);
    let me = key(svc);
    // The Services sharing an address with this one (the speakers plan per address).
    let sharing: Vec<&Service> = snap
        .services
        .iter()
        .filter(|s| is_ours(s, snap.lb_class.as_deref()) && key(s) != me)
        .filter(|s| ingress_ips(s).iter().any(|ip| ips.contains(ip)))
        .collect();
    let endpoints = endpoints_by_service(&snap.endpoint_slices);
    let shared = address_serving(
        std::iter::once(svc).chain(sharing.iter().copied()),
        &endpoints,
    );
    let own = endpoints
        .get(&me)
        .map(|e| e.nodes.clone())
        .unwrap_or_default();
    Serving {
        any: shared.any,
        local: shared.local_nodes.is_some(),
        nodes: shared.local_nodes.unwrap_or(own),
        shared_with: sharing.iter().map(|s| key(s)).collect(),
    }
}

/// Whether a node may announce at all (an unknown node is given the benefit of the doubt).
fn usable(snap: &Snapshot, node: &str) -> bool {
    snap.nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))
        .is_none_or(node_usable)
}
