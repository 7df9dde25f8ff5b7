//! The OPEN exchange (RFC 4271 §4.2, §6.2): the OPEN we send, with its capabilities, and
//! what we agree on from the peer's.

use std::net::Ipv4Addr;

use super::config::{PeerAsn, PeerConfig};
use crate::bgp::codec::{
    Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, Notification, Open, err,
};
use crate::bgp::prefix::Family;

/// What both sides agreed on in the OPEN exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_asn: u32,
    pub peer_id: Ipv4Addr,
    /// Seconds; 0 = no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: u16,
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub ibgp: bool,
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer accepts IPv4 unicast routes with IPv6 next hops (RFC 8950).
    pub extended_next_hop: bool,
}

/// The OPEN we send.
pub(super) fn open_message(c: &PeerConfig) -> Open {
    let mut caps: Vec<Capability> = c
        .families
        .iter()
        .map(|f| {
            let (afi, safi) = f.afi_safi();
            Capability::Multiprotocol { afi, safi }
        })
        .collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::FourOctetAs(c.local_asn));
    if c.unnumbered {
        caps.push(Capability::ExtendedNextHop(vec![
            ExtendedNextHop::IPV4_OVER_IPV6,
        ]));
    }
    if let Some(gr) = c.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_state: gr.restarting,
            notification: false,
            restart_time: gr.restart_time.min(0x0fff),
            families: c
                .families
                .iter()
                .map(|f| {
                    let (afi, safi) = f.afi_safi();
                    GracefulRestartFamily {
                        afi,
                        safi,
                        forwarding_state: gr.forwarding_state,
                    }
                })
                .collect(),
        }));
    }
    Open::new(c.local_asn, c.hold_time, c.router_id, caps)
}

/// Checks the peer's OPEN against our configuration and settles the session parameters;
/// `Err` carries the NOTIFICATION that refuses it.
pub(super) fn negotiate(c: &PeerConfig, open: &Open) -> Result<Negotiated, Notification> {
    let peer_asn = open.asn();
    let asn_ok = match c.peer_asn {
        PeerAsn::Fixed(a) => peer_asn == a,
        PeerAsn::Internal => peer_asn == c.local_asn,
        PeerAsn::External => peer_asn != c.local_asn,
    };
    if !asn_ok {
        return Err(Notification::new(
            err::OPEN_MESSAGE,
            err::BAD_PEER_AS,
            Vec::new(),
        ));
    }
    let ibgp = peer_asn == c.local_asn;
    // RFC 6286 §2.2: within an AS the identifiers must differ.
    if ibgp && open.bgp_id == c.router_id {
        return Err(Notification::new(
            err::OPEN_MESSAGE,
            err::BAD_BGP_IDENTIFIER,
            Vec::new(),
        ));
    }
    let hold_time = c.hold_time.min(open.hold_time);
    let keepalive = match (hold_time, c.keepalive) {
        (0, _) => 0,
        (h, Some(k)) if k > 0 && k < h => k,
        (h, _) => h / 3,
    };
    let peer_families = open.families();
    Ok(Negotiated {
        peer_asn,
        peer_id: open.bgp_id,
        hold_time,
        keepalive,
        families: c
            .families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect(),
        four_octet_as: open.four_octet_as().is_some(),
        ibgp,
        peer_graceful_restart: open.graceful_restart().cloned(),
        extended_next_hop: open.extended_next_hop(ExtendedNextHop::IPV4_OVER_IPV6),
    })
}
