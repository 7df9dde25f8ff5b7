//! `kubectl ferrolb status`: the pools (used and free addresses per family, validity), the
//! Services with addresses and who announces them, and the Services still waiting, with why.

use ferrolb_crds::annotations::IP_ALLOCATED_FROM_POOL;
use ferrolb_crds::service::{ingress_ips, is_ours, key};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::announce::{self, Announcement};
use crate::snapshot::{IP_ALLOCATED, Snapshot, condition, service_condition};
use crate::table::{or_dash, render};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// FerroLB's configuration namespace.
    pub namespace: String,
    pub pools: Vec<PoolRow>,
    /// Services with addresses.
    pub services: Vec<ServiceRow>,
    /// Services whose request is not met (no address, or not the one asked for).
    pub pending: Vec<PendingRow>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRow {
    pub name: String,
    /// The `Valid` condition: None until the controller judged the pool.
    pub valid: Option<bool>,
    /// Why the pool is not valid (the condition's message), when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    pub auto_assign: bool,
    pub ipv4: Usage,
    pub ipv6: Usage,
}

/// Addresses of one family: allocated to Services, and still free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    pub used: i64,
    pub free: i64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub namespace: String,
    pub name: String,
    pub addresses: Vec<String>,
    pub pool: Option<String>,
    pub announcement: Announcement,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRow {
    pub namespace: String,
    pub name: String,
    /// The `ferrolb.io/IPAllocated` reason (PoolExhausted, PoolNotUsable, ...), or
    /// `NotProcessed` while the controller has written no condition.
    pub reason: String,
    pub message: String,
}

/// The Services FerroLB handles, or has written its condition on, sorted by key.
pub fn our_services(snap: &Snapshot) -> Vec<&Service> {
    let mut svcs: Vec<&Service> = snap
        .services
        .iter()
        .filter(|s| {
            is_ours(s, snap.lb_class.as_deref()) || service_condition(s, IP_ALLOCATED).is_some()
        })
        .collect();
    svcs.sort_by_key(|s| key(s));
    svcs
}

/// The pool the controller says the Service's addresses came from.
pub fn pool_of(svc: &Service) -> Option<String> {
    svc.metadata
        .annotations
        .as_ref()?
        .get(IP_ALLOCATED_FROM_POOL)
        .cloned()
}

/// Why the Service's request is not met, or None when it is.
pub fn pending(svc: &Service) -> Option<(String, String)> {
    match service_condition(svc, IP_ALLOCATED) {
        Some(c) if c.status == "True" => None,
        Some(c) => Some((c.reason.clone(), c.message.clone())),
        None => Some((
            "NotProcessed".to_string(),
            "the controller has written no ferrolb.io/IPAllocated condition yet (is it running?)"
                .to_string(),
        )),
    }
}

pub fn build(snap: &Snapshot) -> Status {
    let mut pools: Vec<PoolRow> = snap
        .config
        .pools
        .iter()
        .map(|p| {
            let st = p.status.clone().unwrap_or_default();
            let valid = condition(&st.conditions, ferrolb_crds::status::VALID);
            PoolRow {
                name: p.metadata.name.clone().unwrap_or_default(),
                valid: valid.map(|c| c.status == "True"),
                invalid_reason: valid
                    .filter(|c| c.status != "True")
                    .map(|c| format!("{}: {}", c.reason, c.message)),
                auto_assign: p.spec.auto_assign,
                ipv4: Usage {
                    used: st.assigned_ipv4,
                    free: st.available_ipv4,
                },
                ipv6: Usage {
                    used: st.assigned_ipv6,
                    free: st.available_ipv6,
                },
            }
        })
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let mut services = Vec::new();
    let mut waiting = Vec::new();
    for svc in our_services(snap) {
        let namespace = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let addresses: Vec<String> = ingress_ips(svc).iter().map(ToString::to_string).collect();
        if !addresses.is_empty() {
            let pool = pool_of(svc);
            let announcement = pool
                .as_deref()
                .map(|p| announce::of_service(snap, svc, p))
                .unwrap_or_default();
            services.push(ServiceRow {
                namespace: namespace.clone(),
                name: name.clone(),
                addresses,
                pool,
                announcement,
            });
        }
        if let Some((reason, message)) = pending(svc) {
            waiting.push(PendingRow {
                namespace,
                name,
                reason,
                message,
            });
        }
    }
    Status {
        namespace: snap.namespace.clone(),
        pools,
        services,
        pending: waiting,
    }
}

fn valid_cell(v: Option<bool>) -> String {
    match v {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "Unknown".into(),
    }
}

pub fn human(s: &Status) -> String {
    let mut out = format!("POOLS (namespace {})\n", s.namespace);
    let rows: Vec<Vec<String>> = s
        .pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                valid_cell(p.valid),
                p.auto_assign.to_string(),
                p.ipv4.used.to_string(),
                p.ipv4.free.to_string(),
                p.ipv6.used.to_string(),
                p.ipv6.free.to_string(),
                or_dash(p.invalid_reason.as_ref()),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no IPAddressPools\n");
    } else {
        out.push_str(&render(
            &[
                "NAME",
                "VALID",
                "AUTO-ASSIGN",
                "IPV4-USED",
                "IPV4-FREE",
                "IPV6-USED",
                "IPV6-FREE",
                "PROBLEM",
            ],
            &rows,
        ));
    }
    out.push_str("\nSERVICES\n");
    let rows: Vec<Vec<String>> = s
        .services
        .iter()
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.name.clone(),
                r.addresses.join(","),
                or_dash(r.pool.as_ref()),
                r.announcement.summary(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("no Service has an address from FerroLB\n");
    } else {
        out.push_str(&render(
            &["NAMESPACE", "NAME", "ADDRESSES", "POOL", "ANNOUNCED-BY"],
            &rows,
        ));
    }
    out.push_str("\nPENDING\n");
    let rows: Vec<Vec<String>> = s
        .pending
        .iter()
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.name.clone(),
                r.reason.clone(),
                r.message.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("nothing pending\n");
    } else {
        out.push_str(&render(&["NAMESPACE", "NAME", "REASON", "MESSAGE"], &rows));
    }
    out
}

#[cfg(test)]
mod tests;
