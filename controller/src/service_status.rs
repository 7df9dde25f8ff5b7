//! What FerroLB shows on a Service: its status (addresses and the `ferrolb.io/IPAllocated`
//! condition), the pool annotation, and the event that says what changed (pure).

use ferrolb_crds::annotations;
use ferrolb_crds::service::ingress_ips;
use ferrolb_shell::events::EventType;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::decide::Decision;

/// Condition type FerroLB writes on Services (one home, in the API crate).
pub use ferrolb_crds::service::IP_ALLOCATED as SERVICE_CONDITION;

pub(crate) fn our_condition(svc: &Service) -> Option<&Condition> {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == SERVICE_CONDITION))
}

/// Whether `manager` owns fields of the Service's status (so there is something of ours to clear).
pub(crate) fn wrote_status(svc: &Service, manager: &str) -> bool {
    svc.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(manager)
            && m.subresource.as_deref() == Some("status")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.as_object().is_some_and(|o| !o.is_empty()))
    })
}

/// Whether the Service already shows `d` (addresses, pool annotation, condition).
pub(crate) fn up_to_date(svc: &Service, d: &Decision) -> bool {
    let pool = svc.annotations().get(annotations::IP_ALLOCATED_FROM_POOL);
    let cond_same = our_condition(svc).is_some_and(|c| {
        c.status == if d.ok { "True" } else { "False" }
            && c.reason == d.reason
            && c.message == d.message
    });
    ingress_ips(svc) == d.ips && pool == d.pool.as_ref() && cond_same
}

/// The server-side apply body of the Service's status: what `decision` says, or nothing of
/// ours (None: the Service is no longer ours). Its resourceVersion is the precondition (409 if
/// the Service changed since it was decided from).
pub(crate) fn status_apply(svc: &Service, decision: Option<&Decision>) -> Value {
    let status = match decision {
        Some(d) => {
            let ingress: Vec<_> = d
                .ips
                .iter()
                .map(|ip| json!({ "ip": ip.to_string(), "ipMode": "VIP" }))
                .collect();
            let mut lb = json!({});
            if !ingress.is_empty() {
                lb = json!({ "ingress": ingress });
            }
            let old = our_condition(svc);
            let status_str = if d.ok { "True" } else { "False" };
            let transition = match old {
                Some(c) if c.status == status_str => c.last_transition_time.clone(),
                _ => Time(k8s_openapi::jiff::Timestamp::now()),
            };
            let cond = Condition {
                type_: SERVICE_CONDITION.into(),
                status: status_str.into(),
                reason: d.reason.into(),
                message: d.message.clone(),
                observed_generation: svc.metadata.generation,
                last_transition_time: transition,
            };
            json!({ "loadBalancer": lb, "conditions": [cond] })
        }
        None => json!({}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": svc.name_any(),
            "namespace": svc.namespace().unwrap_or_default(),
            "resourceVersion": svc.metadata.resource_version,
        },
        "status": status,
    })
}

/// The merge patch of the pool annotation, when it must change; conditional on
/// `resource_version` (the version the status write produced).
pub(crate) fn pool_patch(
    svc: &Service,
    decision: Option<&Decision>,
    resource_version: Option<String>,
) -> Option<Value> {
    let pool = decision.and_then(|d| d.pool.clone());
    (svc.annotations().get(annotations::IP_ALLOCATED_FROM_POOL) != pool.as_ref()).then(|| {
        json!({ "metadata": {
            "resourceVersion": resource_version,
            "annotations": { annotations::IP_ALLOCATED_FROM_POOL: pool },
        } })
    })
}

/// The event to publish when what the Service shows changes meaningfully (not on every retry):
/// its type, reason and note.
pub(crate) fn event(
    svc: &Service,
    decision: Option<&Decision>,
) -> Option<(EventType, &'static str, String)> {
    let changed = match (decision, our_condition(svc)) {
        (Some(d), Some(c)) => c.reason != d.reason || c.message != d.message,
        (Some(_), None) => true,
        (None, _) => true,
    };
    changed.then(|| match decision {
        Some(d) if d.ok && d.reason == "IPAllocated" => {
            (EventType::Normal, d.reason, d.message.clone())
        }
        Some(d) => (EventType::Warning, d.reason, d.message.clone()),
        None => (
            EventType::Normal,
            "ClearAssignment",
            "no longer a FerroLB LoadBalancer Service; addresses released".to_string(),
        ),
    })
}
