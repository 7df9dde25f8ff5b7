//! What the plugin reads from the API, in one place: FerroLB's configuration (from its
//! namespace, as [`ferrolb_crds::validate::Snapshot`] holds it for validation), the Services, the
//! nodes and, for `explain`, the Service's events. Everything the views show is computed from a
//! snapshot (pure), so fixtures can stand in for a cluster.

use std::collections::BTreeMap;

use ferrolb_crds::IPAddressPool;
use k8s_openapi::api::core::v1::{Event, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The objects one command looks at.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// FerroLB's configuration namespace the pools, advertisements and peers were read from.
    pub namespace: String,
    /// Pools, advertisements and peers (the kinds the plugin reads; the others stay empty).
    pub config: ferrolb_crds::validate::Snapshot,
    /// The `loadBalancerClass` FerroLB handles (`--lb-class` of the controller and speakers;
    /// None: Services without a class).
    pub lb_class: Option<String>,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    /// Every EndpointSlice: which nodes serve a Service (BGP with `externalTrafficPolicy: Local`).
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Events about the Service `explain` looks at (empty for the other commands).
    pub events: Vec<Event>,
}

/// The Service condition types the controller and the announcing speaker write.
pub use ferrolb_crds::service::{IP_ALLOCATED, L2_ANNOUNCED};

/// The condition of `type_` among `conditions`.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The Service's condition of `type_`.
pub fn service_condition<'a>(svc: &'a Service, type_: &str) -> Option<&'a Condition> {
    let conditions = svc.status.as_ref()?.conditions.as_deref()?;
    condition(conditions, type_)
}

/// Whether an object's `Valid` condition says it is in use: Some(true/false), or None while the
/// controller has not judged it yet.
pub fn valid(conditions: &[Condition]) -> Option<bool> {
    condition(conditions, ferrolb_crds::status::VALID).map(|c| c.status == "True")
}

impl Snapshot {
    pub fn pool(&self, name: &str) -> Option<&IPAddressPool> {
        self.config
            .pools
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
    }

    /// A node's labels (empty when the node is unknown).
    pub fn node_labels(&self, name: &str) -> BTreeMap<String, String> {
        self.nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default()
    }

    /// Whether a node exists in the snapshot (nodes not listed are not filtered by selectors).
    pub fn knows_node(&self, name: &str) -> bool {
        self.nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(name))
    }
}
