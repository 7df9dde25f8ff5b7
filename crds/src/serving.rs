//! Who may announce a Service, from the Kubernetes objects alone: which nodes have a serving
//! endpoint (EndpointSlices), and which nodes may announce at all (the node rules of
//! Kubernetes' own service controller). One home for the speaker's plan and the kubectl plugin,
//! so what the plugin says is what the speakers do.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

/// Node label that keeps a node out of every announcement (as in Kubernetes' own controllers).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// EndpointSlice label naming the Service the slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service's endpoints as announcements need them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Nodes with at least one serving endpoint.
    pub nodes: BTreeSet<String>,
    /// Some endpoint serves the Service (without one, nobody announces it).
    pub any: bool,
}

/// Whether an endpoint takes traffic: `serving` is the truth while terminating, `ready` for
/// older producers; a terminating endpoint still serving keeps its node announcing.
pub fn serves(ep: &Endpoint) -> bool {
    let c = ep.conditions.as_ref();
    let serving = c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true);
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    serving && (ready || terminating)
}

/// Endpoints per Service (`namespace/name`), from all slices.
pub fn endpoints_by_service<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeMap<String, Endpoints> {
    let mut out: BTreeMap<String, Endpoints> = BTreeMap::new();
    for s in slices {
        let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let ns = s.metadata.namespace.as_deref().unwrap_or_default();
        let e = out.entry(format!("{ns}/{svc}")).or_default();
        for ep in s.endpoints.iter().flatten().filter(|ep| serves(ep)) {
            e.any = true;
            if let Some(n) = &ep.node_name {
                e.nodes.insert(n.clone());
            }
        }
    }
    out
}

/// `externalTrafficPolicy: Local`: only nodes with a serving endpoint may announce.
pub fn local_policy(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local")
}

/// Who may serve one address, given every Service that shows it (several share an address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressServing {
    /// Every sharing Service has a serving endpoint (otherwise nobody announces the address).
    pub any: bool,
    /// Some sharing Service has `externalTrafficPolicy: Local`: only the nodes with a serving
    /// endpoint of every such Service may announce (the intersection). None: every node may.
    pub local_nodes: Option<BTreeSet<String>>,
}

/// [`AddressServing`] of an address shown by `services`, from [`endpoints_by_service`].
pub fn address_serving<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    endpoints: &BTreeMap<String, Endpoints>,
) -> AddressServing {
    let mut out = AddressServing {
        any: true,
        local_nodes: None,
    };
    for s in services {
        let eps = endpoints.get(&crate::service::key(s));
        out.any &= eps.is_some_and(|e| e.any);
        if local_policy(s) {
            let set = eps.map(|e| e.nodes.clone()).unwrap_or_default();
            out.local_nodes = Some(match out.local_nodes {
                Some(prev) => prev.intersection(&set).cloned().collect(),
                None => set,
            });
        }
    }
    out
}

/// Taint the cluster autoscaler puts on a node it is about to delete.
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Whether a node may announce at all. The node rules of Kubernetes' own service controller for
/// cloud load balancers (`stableNodeSetPredicates` in k8s.io/cloud-provider): not being deleted,
/// not excluded by [`EXCLUDE_LABEL`] (its value read as Go's `strconv.ParseBool`: `false` keeps
/// the node in, anything unparsable excludes it, as there), not tainted
/// [`TO_BE_DELETED_TAINT`]. Like that controller, readiness is not a rule: a NotReady node whose
/// speaker is alive keeps announcing (liveness comes from the speakers' membership, as cloud
/// load balancers rely on their health checks). Plus FerroLB's own: `NetworkUnavailable=True`.
pub fn node_usable(n: &Node) -> bool {
    let deleting = n.metadata.deletion_timestamp.is_some();
    let excluded = n
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(EXCLUDE_LABEL))
        .is_some_and(|v| !parses_false(v));
    let to_be_deleted = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    let net_down = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    !deleting && !excluded && !to_be_deleted && !net_down
}

/// Whether Go's `strconv.ParseBool` reads `v` as false (the only way an exclude label keeps a
/// node in).
fn parses_false(v: &str) -> bool {
    matches!(v, "0" | "f" | "F" | "false" | "FALSE" | "False")
}

#[cfg(test)]
mod tests;
