//! The BGP-4 messages as values: what decoding produces and encoding consumes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::err;
use super::wire::*;
use crate::bgp::prefix::{Family, Prefix};

/// Per-session codec settings negotiated in OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecOptions {
    /// 4-octet AS numbers in AS_PATH/AGGREGATOR (RFC 6793): only when both sides advertise it.
    pub four_octet_as: bool,
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            four_octet_as: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field (AS_TRANS when the real ASN is 4-octet).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol { afi: u16, safi: u8 },
    /// RFC 2918.
    RouteRefresh,
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793.
    FourOctetAs(u32),
    /// RFC 8950: NLRI of these families may carry a next hop of another address family.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// Anything else, kept verbatim so it can be ignored safely.
    Unknown { code: u8, value: Vec<u8> },
}

/// One tuple of the extended next hop capability (RFC 8950 §3): NLRI of `afi`/`safi` may have
/// a next hop of `next_hop_afi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedNextHop {
    pub afi: u16,
    pub safi: u16,
    pub next_hop_afi: u16,
}

impl ExtendedNextHop {
    /// IPv4 unicast NLRI with IPv6 next hops: what unnumbered peering needs.
    pub const IPV4_OVER_IPV6: ExtendedNextHop = ExtendedNextHop {
        afi: 1,
        safi: 1,
        next_hop_afi: 2,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538).
    pub notification: bool,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub afi: u16,
    pub safi: u8,
    /// F bit: forwarding state preserved across the restart.
    pub forwarding_state: bool,
}

impl Open {
    /// Builds an OPEN for `asn`, putting AS_TRANS in the 2-octet field when it does not fit.
    /// Callers include [`Capability::FourOctetAs`] themselves.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Self {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The peer's real ASN: the 4-octet capability wins over the 2-octet field (RFC 6793).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Families the sender supports; IPv4 unicast is implied without any MP capability
    /// (RFC 4760 §8).
    pub fn families(&self) -> Vec<Family> {
        let mut mp: Vec<(u16, u8)> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .collect();
        if mp.is_empty() {
            return vec![Family::Ipv4Unicast];
        }
        mp.sort_unstable();
        mp.dedup();
        mp.into_iter()
            .filter_map(|(a, s)| Family::from_afi_safi(a, s))
            .collect()
    }

    pub fn supports_route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// Whether the sender accepts `tuple`'s NLRI with next hops of the other family (RFC 8950).
    pub fn extended_next_hop(&self, tuple: ExtendedNextHop) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::ExtendedNextHop(t) if t.contains(&tuple)))
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Prefix>,
    pub attributes: Vec<PathAttribute>,
    pub nlri: Vec<Prefix>,
    /// Recoverable problems found while decoding (RFC 7606); ignored when encoding.
    pub errors: Vec<UpdateError>,
}

impl Update {
    /// `Some(family)` when this UPDATE is an End-of-RIB marker (RFC 4724 §2).
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::Ipv4Unicast),
            [PathAttribute::MpUnreach { family, withdrawn }] if withdrawn.is_empty() => {
                Some(*family)
            }
            _ => None,
        }
    }

    /// Whether the peer must ignore this UPDATE's announcements (RFC 7606 treat-as-withdraw).
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }
}

/// What RFC 7606 says to do about a recoverable UPDATE error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorAction {
    TreatAsWithdraw,
    AttributeDiscard,
}

/// A recoverable UPDATE error; `subcode` is the UPDATE Message Error subcode RFC 4271 would
/// have sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateError {
    pub action: ErrorAction,
    pub subcode: u8,
    pub type_code: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsPathSegment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
    ConfedSequence(Vec<u32>),
    ConfedSet(Vec<u32>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathAttribute {
    Origin(Origin),
    AsPath(Vec<AsPathSegment>),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator {
        asn: u32,
        address: Ipv4Addr,
    },
    Communities(Vec<u32>),
    /// RFC 4760. `next_hop` is one address, or IPv6 global + link-local.
    MpReach {
        family: Family,
        next_hop: Vec<IpAddr>,
        nlri: Vec<Prefix>,
    },
    MpUnreach {
        family: Family,
        withdrawn: Vec<Prefix>,
    },
    As4Path(Vec<AsPathSegment>),
    /// RFC 8092.
    LargeCommunities(Vec<(u32, u32, u32)>),
    /// Unrecognised optional attribute (or MP for a family we do not speak), kept verbatim.
    /// `flags` holds only the optional/transitive/partial bits.
    Other {
        flags: u8,
        type_code: u8,
        value: Vec<u8>,
    },
}

impl PathAttribute {
    /// The type code the attribute is sent with.
    pub fn type_code(&self) -> u8 {
        match self {
            PathAttribute::Origin(_) => ATTR_ORIGIN,
            PathAttribute::AsPath(_) => ATTR_AS_PATH,
            PathAttribute::NextHop(_) => ATTR_NEXT_HOP,
            PathAttribute::MultiExitDisc(_) => ATTR_MED,
            PathAttribute::LocalPref(_) => ATTR_LOCAL_PREF,
            PathAttribute::AtomicAggregate => ATTR_ATOMIC_AGGREGATE,
            PathAttribute::Aggregator { .. } => ATTR_AGGREGATOR,
            PathAttribute::Communities(_) => ATTR_COMMUNITIES,
            PathAttribute::MpReach { .. } => ATTR_MP_REACH,
            PathAttribute::MpUnreach { .. } => ATTR_MP_UNREACH,
            PathAttribute::As4Path(_) => ATTR_AS4_PATH,
            PathAttribute::LargeCommunities(_) => ATTR_LARGE_COMMUNITIES,
            PathAttribute::Other { type_code, .. } => *type_code,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            subcode,
            data: data.into(),
        }
    }

    pub fn cease(subcode: u8) -> Self {
        Self::new(err::CEASE, subcode, Vec::new())
    }

    pub fn hold_timer_expired() -> Self {
        Self::new(err::HOLD_TIMER_EXPIRED, 0, Vec::new())
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            err::MESSAGE_HEADER => "Message Header Error",
            err::OPEN_MESSAGE => "OPEN Message Error",
            err::UPDATE_MESSAGE => "UPDATE Message Error",
            err::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            err::FSM => "Finite State Machine Error",
            err::CEASE => "Cease",
            err::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
            _ => "Unknown error",
        };
        write!(f, "{code} ({}/{})", self.code, self.subcode)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    /// RFC 7313 message subtype (0 = normal request).
    pub subtype: u8,
    pub safi: u8,
}

/// A message that must be answered with `notification` and a closed session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {notification}")]
pub struct DecodeError {
    pub notification: Notification,
    pub reason: &'static str,
}

impl DecodeError {
    pub(super) fn new(
        code: u8,
        subcode: u8,
        data: impl Into<Vec<u8>>,
        reason: &'static str,
    ) -> Self {
        Self {
            notification: Notification::new(code, subcode, data),
            reason,
        }
    }

    pub(super) fn open(subcode: u8, data: impl Into<Vec<u8>>, reason: &'static str) -> Self {
        Self::new(err::OPEN_MESSAGE, subcode, data, reason)
    }

    pub(super) fn update(subcode: u8, reason: &'static str) -> Self {
        Self::new(err::UPDATE_MESSAGE, subcode, Vec::new(), reason)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {0} bytes exceeds the 4096-byte BGP limit")]
    TooLong(usize),
    #[error("{0} does not fit its length field")]
    FieldTooLong(&'static str),
}
