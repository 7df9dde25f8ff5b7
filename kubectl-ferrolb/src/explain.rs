//! `kubectl ferrolb explain SERVICE`: in plain words, why a Service has or lacks an address,
//! which pool it came from, and who announces it (or why nobody does).

use ferrolb_crds::service::{ingress_ips, is_ours};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::announce::{self, Announcement, BgpPeerNodes};
use crate::snapshot::{IP_ALLOCATED, Snapshot, service_condition, valid};
use crate::status::{pending, pool_of};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub namespace: String,
    pub name: String,
    /// Whether FerroLB handles the Service (type LoadBalancer, FerroLB's class: see `--class`).
    pub handled: bool,
    pub addresses: Vec<String>,
    pub pool: Option<String>,
    /// The `ferrolb.io/IPAllocated` condition: status True.
    pub allocated: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub announcement: Announcement,
    pub announced: bool,
    /// FerroLB's recent events about the Service: `reason (by): note`, oldest first.
    pub events: Vec<String>,
    /// The explanation, one sentence a line.
    pub explanation: Vec<String>,
}

pub fn build(snap: &Snapshot, svc: &Service) -> Explanation {
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let spec = svc.spec.clone().unwrap_or_default();
    let ours = snap.lb_class.as_deref();
    let handled = is_ours(svc, ours);
    let addresses: Vec<String> = ingress_ips(svc).iter().map(ToString::to_string).collect();
    let pool = pool_of(svc);
    let cond = service_condition(svc, IP_ALLOCATED);
    let announcement = pool
        .as_deref()
        .filter(|_| !addresses.is_empty())
        .map(|p| announce::of_service(snap, svc, p))
        .unwrap_or_default();
    let mut lines = Vec::new();
    let who = format!("Service {namespace}/{name}");
    if !handled {
        let class = spec.load_balancer_class.as_deref();
        let why = match (spec.type_.as_deref(), class) {
            (t, _) if t != Some("LoadBalancer") => {
                format!(
                    "it is of type {}, not LoadBalancer",
                    t.unwrap_or("ClusterIP")
                )
            }
            (_, Some(class)) if Some(class) != ours => format!(
                "its loadBalancerClass is {class}, which FerroLB leaves to another implementation{}",
                ours.map(|o| format!(" (FerroLB handles class {o})"))
                    .unwrap_or_default()
            ),
            (_, None) if ours.is_some() => format!(
                "it has no loadBalancerClass, and FerroLB handles only class {}",
                ours.unwrap_or_default()
            ),
            _ => "it is being deleted".to_string(),
        };
        lines.push(format!("{who} is not handled by FerroLB: {why}."));
    }
    if handled {
        explain_address(snap, svc, &who, &addresses, pool.as_deref(), &mut lines);
        if !addresses.is_empty() {
            explain_announcement(&announcement, pool.as_deref(), &mut lines);
        }
    }
    let events = snap
        .events
        .iter()
        .filter(|e| {
            let by = e.reporting_component.as_deref().unwrap_or_default();
            by.starts_with("ferrolb") || e.reason.as_deref().is_some_and(is_ferrolb_reason)
        })
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.reason.as_deref().unwrap_or_default(),
                e.reporting_instance
                    .as_deref()
                    .or(e.reporting_component.as_deref())
                    .unwrap_or("?"),
                e.message.as_deref().unwrap_or_default()
            )
        })
        .collect();
    Explanation {
        namespace,
        name,
        handled,
        addresses,
        pool,
        allocated: cond.is_some_and(|c| c.status == "True"),
        reason: cond.map(|c| c.reason.clone()),
        message: cond.map(|c| c.message.clone()),
        announced: announcement.announced(),
        announcement,
        events,
        explanation: lines,
    }
}

/// Event reasons FerroLB writes (when the reporting component is not set).
fn is_ferrolb_reason(r: &str) -> bool {
    matches!(r, "IPAllocated" | "NodeAssigned" | "ClearAssignment")
}

fn explain_address(
    snap: &Snapshot,
    svc: &Service,
    who: &str,
    addresses: &[String],
    pool: Option<&str>,
    lines: &mut Vec<String>,
) {
    if !addresses.is_empty() {
        let pool_state = match pool.and_then(|p| snap.pool(p)) {
            Some(p) => match valid(p.status.as_ref().map_or(&[], |s| &s.conditions)) {
                Some(true) => "valid".to_string(),
                Some(false) => "no longer valid".to_string(),
                None => "not yet validated".to_string(),
            },
            None => format!("not found in namespace {}", snap.namespace),
        };
        lines.push(match pool {
            Some(p) => format!(
                "{who} has {} from IPAddressPool {p} ({pool_state}).",
                plural_addresses(addresses)
            ),
            None => format!(
                "{who} has {}, but no pool annotation (ferrolb.io/ip-allocated-from-pool): FerroLB did not allocate it.",
                plural_addresses(addresses)
            ),
        });
    }
    match pending(svc) {
        None => {}
        Some((reason, message)) if addresses.is_empty() => {
            lines.push(format!("{who} has no address: {reason}: {message}"));
        }
        Some((reason, message)) => {
            lines.push(format!("Its request is not fully met: {reason}: {message}"))
        }
    }
}

fn plural_addresses(a: &[String]) -> String {
    if a.len() == 1 {
        format!("address {}", a[0])
    } else {
        format!("addresses {}", a.join(", "))
    }
}

fn explain_announcement(a: &Announcement, pool: Option<&str>, lines: &mut Vec<String>) {
    if let Some(l2) = &a.layer2 {
        let via = if l2.advertisements.is_empty() {
            String::new()
        } else {
            format!(" (L2Advertisement {})", l2.advertisements.join(", "))
        };
        lines.push(match (&l2.reason, l2.announced) {
            (Some(_), true) => format!(
                "Layer 2{via}: node {} answers ARP/NDP for it on {}.",
                l2.nodes.join(", "),
                l2.interfaces.join(", ")
            ),
            (Some(reason), false) => format!(
                "Layer 2{via}: not announced ({reason}): {}",
                l2.message.as_deref().unwrap_or_default()
            ),
            (None, _) => format!(
                "Layer 2{via}: no speaker reports announcing it yet (no ferrolb.io/L2Announced condition): is there a live speaker on a node with a ready endpoint?"
            ),
        });
    }
    if let Some(bgp) = &a.bgp {
        let via = format!("BGP (BGPAdvertisement {})", bgp.advertisements.join(", "));
        let shared = bgp.shared_with.join(", ");
        if !bgp.serving_endpoint && shared.is_empty() {
            lines.push(format!(
                "{via}: no ready endpoint serves it, so no node advertises it."
            ));
        } else if !bgp.serving_endpoint {
            lines.push(format!(
                "{via}: its address is shared with {shared}, and not every one of them has a ready endpoint, so no node advertises it."
            ));
        } else if bgp.local_policy && shared.is_empty() {
            lines.push(format!(
                "{via}: externalTrafficPolicy is Local, so only nodes with a serving endpoint advertise it ({}).",
                bgp.serving_nodes.join(", ")
            ));
        } else if bgp.local_policy {
            lines.push(format!(
                "{via}: its address is shared with {shared} and externalTrafficPolicy is Local, so only nodes with a serving endpoint of every Local Service on it advertise it ({}).",
                or_none(&bgp.serving_nodes)
            ));
        }
        if bgp.serving_endpoint && bgp.peers.is_empty() {
            lines.push(format!(
                "{via}: no valid BGPPeer is selected, so no router learns it."
            ));
        }
        for p in bgp.peers.iter().filter(|_| bgp.serving_endpoint) {
            lines.push(explain_peer(&via, p));
        }
    }
    if a.layer2.is_none() && a.bgp.is_none() {
        lines.push(format!(
            "Nobody announces it: no L2Advertisement or BGPAdvertisement selects pool {}.",
            pool.unwrap_or("(unknown)")
        ));
    }
}

fn explain_peer(via: &str, p: &BgpPeerNodes) -> String {
    let down = p
        .down
        .iter()
        .map(|d| format!("{} ({})", d.node, d.state))
        .collect::<Vec<_>>()
        .join(", ");
    let down = if down.is_empty() {
        String::new()
    } else {
        format!("; not Established on {down}")
    };
    if p.established.is_empty() {
        format!(
            "{via}: peer {} ({}) has no Established session, so it does not learn it{down}.",
            p.peer, p.peer_address
        )
    } else if p.advertising.is_empty() {
        format!(
            "{via}: peer {} ({}) is Established with node {}, none of which may advertise it{down}.",
            p.peer,
            p.peer_address,
            p.established.join(", ")
        )
    } else {
        format!(
            "{via}: advertised to peer {} ({}) by node {}{down}.",
            p.peer,
            p.peer_address,
            p.advertising.join(", ")
        )
    }
}

pub fn human(e: &Explanation) -> String {
    let mut out: String = e.explanation.iter().map(|l| format!("{l}\n")).collect();
    if !e.events.is_empty() {
        out.push_str("Recent events:\n");
        for ev in &e.events {
            out.push_str(&format!("  {ev}\n"));
        }
    }
    out
}

fn or_none(nodes: &[String]) -> String {
    if nodes.is_empty() {
        "none".to_string()
    } else {
        nodes.join(", ")
    }
}

#[cfg(test)]
mod tests;
