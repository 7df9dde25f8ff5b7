//! `kubectl ferrolb sessions`: each node's BGP session with each peer, as the speakers report it
//! in `BGPPeer.status.sessions` (state, BFD state, prefixes sent, last error).

use serde::Serialize;

use crate::snapshot::{Snapshot, valid};
use crate::table::{or_dash, render};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sessions {
    pub namespace: String,
    pub sessions: Vec<SessionRow>,
}

/// One node's session with one peer; a peer no node reports has one row with no node.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub peer: String,
    pub peer_address: String,
    #[serde(rename = "peerASN")]
    pub peer_asn: Option<u32>,
    /// The peer's `Valid` condition (None until judged).
    pub peer_valid: Option<bool>,
    pub node: Option<String>,
    /// BGP FSM state; None when no node reports a session.
    pub state: Option<String>,
    pub bfd_state: Option<String>,
    pub prefixes_sent: i64,
    pub last_error: Option<String>,
}

pub fn build(snap: &Snapshot) -> Sessions {
    let mut rows = Vec::new();
    let mut peers: Vec<_> = snap.config.bgp_peers.iter().collect();
    peers.sort_by_key(|p| p.metadata.name.clone());
    for p in peers {
        let status = p.status.clone().unwrap_or_default();
        let base = SessionRow {
            peer: p.metadata.name.clone().unwrap_or_default(),
            peer_address: p.spec.address_label(),
            peer_asn: p.spec.peer_asn,
            peer_valid: valid(&status.conditions),
            node: None,
            state: None,
            bfd_state: None,
            prefixes_sent: 0,
            last_error: None,
        };
        let mut sessions = status.sessions.clone();
        sessions.sort_by(|a, b| a.node.cmp(&b.node));
        if sessions.is_empty() {
            rows.push(base);
            continue;
        }
        for s in sessions {
            rows.push(SessionRow {
                node: Some(s.node),
                state: Some(s.state),
                bfd_state: s.bfd_state,
                prefixes_sent: s.prefixes_sent,
                last_error: s.last_error,
                ..base.clone()
            });
        }
    }
    Sessions {
        namespace: snap.namespace.clone(),
        sessions: rows,
    }
}

pub fn human(s: &Sessions) -> String {
    if s.sessions.is_empty() {
        return format!("no BGPPeers in namespace {}\n", s.namespace);
    }
    let rows: Vec<Vec<String>> = s
        .sessions
        .iter()
        .map(|r| {
            let state = match (&r.state, r.peer_valid) {
                (Some(st), _) => st.clone(),
                (None, Some(false)) => "(peer not Valid)".to_string(),
                (None, _) => "(no node reports a session)".to_string(),
            };
            vec![
                r.peer.clone(),
                r.peer_address.clone(),
                or_dash(r.peer_asn),
                or_dash(r.node.as_ref()),
                state,
                or_dash(r.bfd_state.as_ref()),
                r.prefixes_sent.to_string(),
                or_dash(r.last_error.as_ref()),
            ]
        })
        .collect();
    render(
        &[
            "PEER",
            "ADDRESS",
            "ASN",
            "NODE",
            "STATE",
            "BFD",
            "PREFIXES",
            "LAST-ERROR",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests;
