//! What a session is configured with: the peer's acceptable ASNs, our identity and timers,
//! the families to offer, graceful restart.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::bgp::prefix::Family;

/// Which peer ASNs are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsn {
    Fixed(u32),
    /// Dynamic iBGP: the peer must be in our AS.
    Internal,
    /// Dynamic eBGP: the peer must be in another AS.
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Seconds the peer should keep our routes while we restart (12 bits).
    pub restart_time: u16,
    /// F bit: our forwarding state survives a restart.
    pub forwarding_state: bool,
    /// R bit: this process is a restart of a previous one.
    pub restarting: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub local_asn: u32,
    pub peer_asn: PeerAsn,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds; 0 disables keepalives. 1 and 2 are raised to 3.
    pub hold_time: u16,
    /// Keepalive interval in seconds; `None` means a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// First connect-retry delay; doubled after each failure up to `connect_time_max`.
    pub connect_time: Duration,
    pub connect_time_max: Duration,
    pub families: Vec<Family>,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Never connect: wait in Active for the peer's connection (handed in by a listener).
    pub passive: bool,
    /// Unnumbered peering over IPv6 link-local: every route's next hop becomes the connection's
    /// local address, and IPv4 routes go out with it where the peer accepts IPv6 next hops
    /// for IPv4 unicast (RFC 8950 extended next hop, which we announce too).
    pub unnumbered: bool,
}

impl PeerConfig {
    /// Defaults close to MetalLB/FRR: hold 90 s, connect retry from 1 s to 60 s, IPv4+IPv6.
    pub fn new(local_asn: u32, peer_asn: PeerAsn, router_id: Ipv4Addr) -> Self {
        Self {
            local_asn,
            peer_asn,
            router_id,
            hold_time: 90,
            keepalive: None,
            connect_time: Duration::from_secs(1),
            connect_time_max: Duration::from_secs(60),
            families: Family::ALL.to_vec(),
            graceful_restart: None,
            passive: false,
            unnumbered: false,
        }
    }
}
