//! How FerroLB reads a Service, shared by controller and speaker so they always agree.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

/// Condition type the controller writes on every Service it handles (addresses, or why not).
pub const IP_ALLOCATED: &str = "ferrolb.io/IPAllocated";
/// Condition type the announcing speaker writes on a Service in L2 mode (which node, which
/// interfaces).
pub const L2_ANNOUNCED: &str = "ferrolb.io/L2Announced";

/// Whether FerroLB handles this Service: `type: LoadBalancer`, with no class or with ours, and
/// not being deleted.
pub fn is_ours(svc: &Service, our_class: Option<&str>) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec.load_balancer_class.as_deref() == our_class
        && svc.metadata.deletion_timestamp.is_none()
}

/// Addresses the Service's status shows (`status.loadBalancer.ingress[].ip`).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
        .collect()
}

/// `namespace/name`.
pub fn key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}
