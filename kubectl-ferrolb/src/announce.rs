//! Who announces a Service's addresses: in layer 2, what the announcing speaker wrote in the
//! Service's `ferrolb.io/L2Announced` condition; over BGP, which BGPAdvertisements select the
//! Service's pool, to which peers, and which nodes have an Established session with them
//! (`BGPPeer.status.sessions`).

use std::collections::BTreeMap;

use ferrolb_crds::selector::{any_matches, matches};
use ferrolb_crds::service::announced_from;
use ferrolb_crds::status::ConditionsStatus;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use crate::serving;
use crate::snapshot::{L2_ANNOUNCED, Snapshot, service_condition, valid};

/// How a Service's addresses reach the network.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    /// Layer 2, when an L2Advertisement selects the Service's pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer2: Option<Layer2>,
    /// BGP, when a BGPAdvertisement selects the Service's pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<Bgp>,
}

/// The layer-2 announcement, as the announcing speaker reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer2 {
    /// L2Advertisements selecting the pool.
    pub advertisements: Vec<String>,
    /// The condition says the addresses are announced.
    pub announced: bool,
    /// Nodes announcing the addresses, as the condition says (an elected node unable to
    /// announce is named by the message only).
    pub nodes: Vec<String>,
    /// Interfaces the addresses are announced on.
    pub interfaces: Vec<String>,
    /// Condition reason (Announced, PartlyAnnounced, NoMatchingInterface, NotAnnounced); None
    /// while no speaker has written the condition.
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// The BGP announcement: per peer the advertisement reaches, the nodes that advertise.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bgp {
    /// BGPAdvertisements selecting the pool.
    pub advertisements: Vec<String>,
    /// Some endpoint serves the Service (without one, no node advertises it).
    pub serving_endpoint: bool,
    /// `externalTrafficPolicy: Local`: only nodes with a serving endpoint advertise.
    pub local_policy: bool,
    /// Nodes with a serving endpoint (Local policy with a shared address: of every Local
    /// Service on it).
    pub serving_nodes: Vec<String>,
    /// Other Services on the same address: their endpoints and policy count too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    pub peers: Vec<BgpPeerNodes>,
}

/// One peer the Service's pool is advertised to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerNodes {
    pub peer: String,
    pub peer_address: String,
    /// Nodes with an Established session to the peer, selected by the advertisement.
    pub established: Vec<String>,
    /// Those of them that advertise the Service's addresses (endpoints and node state allowing).
    pub advertising: Vec<String>,
    /// Nodes selected whose session is not Established, with its state.
    pub down: Vec<NodeState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    pub node: String,
    pub state: String,
}

impl Announcement {
    /// Whether any node announces the Service (layer 2 or BGP).
    pub fn announced(&self) -> bool {
        self.layer2.as_ref().is_some_and(|l| l.announced)
            || self
                .bgp
                .as_ref()
                .is_some_and(|b| b.peers.iter().any(|p| !p.advertising.is_empty()))
    }

    /// One line for a table cell: `L2 node (ifaces)`, `BGP peer: nodes`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l2) = &self.layer2 {
            parts.push(match (&l2.reason, l2.announced) {
                (None, _) => "L2 not yet reported".to_string(),
                (Some(_), true) => {
                    format!("L2 {} ({})", l2.nodes.join(","), l2.interfaces.join(","))
                }
                (Some(reason), false) => format!("L2 not announced: {reason}"),
            });
        }
        if let Some(bgp) = &self.bgp {
            if !bgp.serving_endpoint {
                parts.push("BGP none: no serving endpoint".to_string());
            } else if bgp.peers.is_empty() {
                parts.push("BGP no peer".to_string());
            }
            for p in bgp.peers.iter().filter(|_| bgp.serving_endpoint) {
                let nodes = match (p.advertising.is_empty(), p.established.is_empty()) {
                    (false, _) => p.advertising.join(","),
                    (true, true) => "no Established session".to_string(),
                    (true, false) => "no Established node may advertise".to_string(),
                };
                parts.push(format!("BGP {}: {nodes}", p.peer));
            }
        }
        if parts.is_empty() {
            "nobody (no advertisement selects the pool)".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// Whether an advertisement (not judged invalid) naming `pools` and selecting `selectors` covers
/// pool `pool` (MetalLB's rule: neither set means every pool, unless `all_by_default` is false).
fn selects_pool(
    snap: &Snapshot,
    status: &Option<ConditionsStatus>,
    (pools, selectors): (&[String], &[LabelSelector]),
    all_by_default: bool,
    pool: &str,
) -> bool {
    let conditions = status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
    if valid(conditions) == Some(false) {
        return false;
    }
    if pools.is_empty() && selectors.is_empty() {
        return all_by_default;
    }
    let labels = snap
        .pool(pool)
        .and_then(|p| p.metadata.labels.clone())
        .unwrap_or_default();
    pools.iter().any(|p| p == pool) || selectors.iter().any(|s| matches(s, &labels))
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// How the Service's addresses from `pool` are announced.
pub fn of_service(snap: &Snapshot, svc: &Service, pool: &str) -> Announcement {
    Announcement {
        layer2: layer2(snap, svc, pool),
        bgp: bgp(snap, svc, pool),
    }
}

fn layer2(snap: &Snapshot, svc: &Service, pool: &str) -> Option<Layer2> {
    let advertisements: Vec<String> = snap
        .config
        .l2_advertisements
        .iter()
        .filter(|a| {
            let s = &a.spec;
            let sel = (&s.ip_address_pools[..], &s.ip_address_pool_selectors[..]);
            selects_pool(snap, &a.status, sel, true, pool)
        })
        .map(|a| name(&a.metadata))
        .collect();
    let cond = service_condition(svc, L2_ANNOUNCED);
    if advertisements.is_empty() && cond.is_none() {
        return None;
    }
    // Where each address is announced, read back with the speakers' own parser.
    let mut nodes: Vec<String> = Vec::new();
    let mut interfaces: Vec<String> = Vec::new();
    for from in announced_from(svc) {
        if !nodes.contains(&from.node) {
            nodes.push(from.node);
        }
        for i in from.interfaces {
            if !interfaces.contains(&i) {
                interfaces.push(i);
            }
        }
    }
    Some(Layer2 {
        advertisements,
        announced: cond.is_some_and(|c| c.status == "True"),
        nodes,
        interfaces,
        reason: cond.map(|c| c.reason.clone()),
        message: cond.map(|c| c.message.clone()),
    })
}

fn bgp(snap: &Snapshot, svc: &Service, pool: &str) -> Option<Bgp> {
    let advs: Vec<_> = snap
        .config
        .bgp_advertisements
        .iter()
        .filter(|a| {
            let s = &a.spec;
            let sel = (&s.ip_address_pools[..], &s.ip_address_pool_selectors[..]);
            selects_pool(snap, &a.status, sel, s.all_pools_by_default(), pool)
        })
        .collect();
    if advs.is_empty() {
        return None;
    }
    // Per peer, the nodes any selecting advertisement lets advertise.
    let mut per_peer: BTreeMap<String, BgpPeerNodes> = BTreeMap::new();
    for adv in &advs {
        for peer in &snap.config.bgp_peers {
            let peer_name = name(&peer.metadata);
            if !adv.spec.peers.is_empty() && !adv.spec.peers.contains(&peer_name) {
                continue;
            }
            let status = peer.status.as_ref();
            if status.is_some_and(|s| valid(&s.conditions) == Some(false)) {
                continue;
            }
            let entry = per_peer
                .entry(peer_name.clone())
                .or_insert_with(|| BgpPeerNodes {
                    peer: peer_name,
                    peer_address: peer.spec.address_label(),
                    ..Default::default()
                });
            for s in status.map(|s| s.sessions.as_slice()).unwrap_or_default() {
                let selected = !snap.knows_node(&s.node)
                    || any_matches(&adv.spec.node_selectors, &snap.node_labels(&s.node));
                if !selected {
                    continue;
                }
                if s.state == "Established" {
                    if !entry.established.contains(&s.node) {
                        entry.established.push(s.node.clone());
                    }
                } else if !entry.down.iter().any(|d| d.node == s.node) {
                    entry.down.push(NodeState {
                        node: s.node.clone(),
                        state: s.state.clone(),
                    });
                }
            }
        }
    }
    let serving = serving::of_service(snap, svc);
    let mut peers: Vec<BgpPeerNodes> = per_peer.into_values().collect();
    for p in &mut peers {
        p.established.sort();
        p.down.retain(|d| !p.established.contains(&d.node));
        p.down.sort_by(|a, b| a.node.cmp(&b.node));
        p.advertising = p
            .established
            .iter()
            .filter(|n| serving.allows(snap, n))
            .cloned()
            .collect();
    }
    Some(Bgp {
        advertisements: advs.iter().map(|a| name(&a.metadata)).collect(),
        serving_endpoint: serving.any,
        local_policy: serving.local,
        serving_nodes: serving.nodes.into_iter().collect(),
        shared_with: serving.shared_with,
        peers,
    })
}

#[cfg(test)]
mod tests;
