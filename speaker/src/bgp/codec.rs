//! BGP-4 message codec (RFC 4271 §4), hand-written on `bytes`.
//!
//! Decoding never panics: every malformed input maps to a [`DecodeError`] carrying the
//! NOTIFICATION that RFC 4271 §6 prescribes. UPDATE problems that RFC 7606 downgrades to
//! "treat-as-withdraw" or "attribute discard" are not errors; they are recorded in
//! [`Update::errors`] so the caller can ignore the UPDATE while keeping the session.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::route::Prefix;

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
pub const BGP_VERSION: u8 = 4;
/// RFC 6793: placeholder ASN in 2-octet fields when the real ASN does not fit.
pub const AS_TRANS: u16 = 23456;

const MSG_OPEN: u8 = 1;
const MSG_UPDATE: u8 = 2;
const MSG_NOTIFICATION: u8 = 3;
const MSG_KEEPALIVE: u8 = 4;
const MSG_ROUTE_REFRESH: u8 = 5;

const OPEN_MIN_LEN: usize = 29;
const UPDATE_MIN_LEN: usize = 23;
const NOTIFICATION_MIN_LEN: usize = 21;
const ROUTE_REFRESH_LEN: usize = 23;

const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: "Non-Ext OP Type" value signalling extended optional parameters.
const PARAM_EXTENDED: u8 = 255;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_PARTIAL: u8 = 0x20;
const FLAG_EXTENDED_LEN: u8 = 0x10;

const ATTR_ORIGIN: u8 = 1;
const ATTR_AS_PATH: u8 = 2;
const ATTR_NEXT_HOP: u8 = 3;
const ATTR_MED: u8 = 4;
const ATTR_LOCAL_PREF: u8 = 5;
const ATTR_ATOMIC_AGGREGATE: u8 = 6;
const ATTR_AGGREGATOR: u8 = 7;
const ATTR_COMMUNITIES: u8 = 8;
const ATTR_MP_REACH: u8 = 14;
const ATTR_MP_UNREACH: u8 = 15;
const ATTR_AS4_PATH: u8 = 17;
const ATTR_LARGE_COMMUNITIES: u8 = 32;

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608, RFC 7313, RFC 9384).
pub mod err {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    pub const OPEN_MESSAGE: u8 = 2;
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;

    pub const UPDATE_MESSAGE: u8 = 3;
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    pub const HOLD_TIMER_EXPIRED: u8 = 4;

    pub const FSM: u8 = 5;
    pub const FSM_UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const FSM_UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    pub const CEASE: u8 = 6;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const BFD_DOWN: u8 = 10;

    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// Address families this speaker knows (AFI/SAFI pairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (1, 1),
            Family::Ipv6Unicast => (2, 1),
        }
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Self> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    fn max_prefix_len(self) -> u8 {
        match self {
            Family::Ipv4Unicast => 32,
            Family::Ipv6Unicast => 128,
        }
    }
}

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
    /// Anything else, kept verbatim so it can be ignored safely.
    Unknown { code: u8, value: Vec<u8> },
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

    /// Encoded size of the body (everything after the header).
    pub fn body_len(&self, four_octet_as: bool) -> usize {
        let mut b = BytesMut::new();
        match self.encode_body(&mut b, four_octet_as) {
            Ok(()) => b.len(),
            Err(_) => usize::MAX,
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

impl AsPathSegment {
    fn kind_and_asns(&self) -> (u8, &[u32]) {
        match self {
            AsPathSegment::Set(a) => (1, a),
            AsPathSegment::Sequence(a) => (2, a),
            AsPathSegment::ConfedSequence(a) => (3, a),
            AsPathSegment::ConfedSet(a) => (4, a),
        }
    }
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
    fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>, reason: &'static str) -> Self {
        Self {
            notification: Notification::new(code, subcode, data),
            reason,
        }
    }

    fn open(subcode: u8, data: impl Into<Vec<u8>>, reason: &'static str) -> Self {
        Self::new(err::OPEN_MESSAGE, subcode, data, reason)
    }

    fn update(subcode: u8, reason: &'static str) -> Self {
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

// ---------------------------------------------------------------------------------------------
// Decoding

/// A bounds-checked reader: every read returns `None` instead of panicking on short input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.u32().map(Ipv4Addr::from)
    }
    fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Some(Ipv6Addr::from(a))
    }
}

/// Validates the header at the start of `buf`.
///
/// Returns `Ok(None)` while fewer than 19 bytes are available, else the total length of the
/// message (header included). Header errors are detected as soon as the header is complete,
/// before the body arrives.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != MARKER {
        return Err(DecodeError::new(
            err::MESSAGE_HEADER,
            err::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "bad marker",
        ));
    }
    let len_bytes = [buf[16], buf[17]];
    let len = usize::from(u16::from_be_bytes(len_bytes));
    let bad_len = || {
        DecodeError::new(
            err::MESSAGE_HEADER,
            err::BAD_MESSAGE_LENGTH,
            len_bytes.to_vec(),
            "bad message length",
        )
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_len());
    }
    let ok = match buf[18] {
        MSG_OPEN => len >= OPEN_MIN_LEN,
        MSG_UPDATE => len >= UPDATE_MIN_LEN,
        MSG_NOTIFICATION => len >= NOTIFICATION_MIN_LEN,
        MSG_KEEPALIVE => len == HEADER_LEN,
        // RFC 7313 §5: a wrong ROUTE-REFRESH length has its own error code; the data is the
        // message, which may not be complete yet, so the header is what we can echo.
        MSG_ROUTE_REFRESH => {
            if len != ROUTE_REFRESH_LEN {
                return Err(DecodeError::new(
                    err::ROUTE_REFRESH_MESSAGE,
                    err::INVALID_MESSAGE_LENGTH,
                    buf[..HEADER_LEN].to_vec(),
                    "bad ROUTE-REFRESH length",
                ));
            }
            true
        }
        t => {
            return Err(DecodeError::new(
                err::MESSAGE_HEADER,
                err::BAD_MESSAGE_TYPE,
                vec![t],
                "bad message type",
            ));
        }
    };
    if !ok {
        return Err(bad_len());
    }
    Ok(Some(len))
}

/// Decodes the first message in `buf` if it is complete: `Ok(Some((message, consumed)))`.
pub fn decode_frame(
    buf: &[u8],
    opts: &CodecOptions,
) -> Result<Option<(Message, usize)>, DecodeError> {
    match frame_len(buf)? {
        Some(len) if buf.len() >= len => Ok(Some((Message::decode(&buf[..len], opts)?, len))),
        _ => Ok(None),
    }
}

impl Message {
    /// Decodes exactly one message; `buf` must hold the whole message and nothing else.
    pub fn decode(buf: &[u8], opts: &CodecOptions) -> Result<Message, DecodeError> {
        let len = match frame_len(buf)? {
            Some(len) => len,
            None => {
                return Err(DecodeError::new(
                    err::MESSAGE_HEADER,
                    err::BAD_MESSAGE_LENGTH,
                    Vec::new(),
                    "truncated header",
                ));
            }
        };
        if buf.len() != len {
            return Err(DecodeError::new(
                err::MESSAGE_HEADER,
                err::BAD_MESSAGE_LENGTH,
                buf[16..18].to_vec(),
                "length field does not match the message",
            ));
        }
        let body = &buf[HEADER_LEN..];
        match buf[18] {
            MSG_OPEN => decode_open(body).map(Message::Open),
            MSG_UPDATE => decode_update(body, opts).map(Message::Update),
            MSG_NOTIFICATION => Ok(Message::Notification(Notification {
                code: body[0],
                subcode: body[1],
                data: body[2..].to_vec(),
            })),
            MSG_KEEPALIVE => Ok(Message::Keepalive),
            // frame_len guaranteed the exact length.
            _ => Ok(Message::RouteRefresh(RouteRefresh {
                afi: u16::from_be_bytes([body[0], body[1]]),
                subtype: body[2],
                safi: body[3],
            })),
        }
    }
}

fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let malformed = || DecodeError::open(err::UNSPECIFIC, Vec::new(), "malformed OPEN");
    let mut r = Reader::new(body);
    let version = r.u8().ok_or_else(malformed)?;
    if version != BGP_VERSION {
        // RFC 4271 §6.2: data is the largest supported version, as 2 octets.
        return Err(DecodeError::open(
            err::UNSUPPORTED_VERSION,
            vec![0, BGP_VERSION],
            "unsupported BGP version",
        ));
    }
    let my_as = r.u16().ok_or_else(malformed)?;
    let hold_time = r.u16().ok_or_else(malformed)?;
    if hold_time == 1 || hold_time == 2 {
        return Err(DecodeError::open(
            err::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            "hold time 1 or 2 seconds",
        ));
    }
    let bgp_id = r.ipv4().ok_or_else(malformed)?;
    // RFC 6286 §2.2: zero is never a valid identifier.
    if bgp_id.is_unspecified() {
        return Err(DecodeError::open(
            err::BAD_BGP_IDENTIFIER,
            Vec::new(),
            "BGP identifier 0",
        ));
    }
    let opt_len = r.u8().ok_or_else(malformed)?;
    // RFC 9072: 255 followed by type 255 introduces a 2-octet length and 2-octet parameter
    // lengths.
    let extended = opt_len == 255 && r.buf.first() == Some(&PARAM_EXTENDED);
    let params = if extended {
        r.u8().ok_or_else(malformed)?;
        let ext_len = r.u16().ok_or_else(malformed)?;
        r.take(usize::from(ext_len)).ok_or_else(malformed)?
    } else {
        r.take(usize::from(opt_len)).ok_or_else(malformed)?
    };
    if !r.is_empty() {
        return Err(malformed());
    }
    let mut p = Reader::new(params);
    let mut capabilities = Vec::new();
    while !p.is_empty() {
        let ty = p.u8().ok_or_else(malformed)?;
        let len = if extended {
            p.u16().ok_or_else(malformed)?
        } else {
            u16::from(p.u8().ok_or_else(malformed)?)
        };
        let value = p.take(usize::from(len)).ok_or_else(malformed)?;
        if ty != PARAM_CAPABILITIES {
            return Err(DecodeError::open(
                err::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                "unsupported optional parameter",
            ));
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    Ok(Open {
        my_as,
        hold_time,
        bgp_id,
        capabilities,
    })
}

fn decode_capabilities(value: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
    let malformed = || DecodeError::open(err::UNSPECIFIC, Vec::new(), "malformed capability");
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let code = r.u8().ok_or_else(malformed)?;
        let len = r.u8().ok_or_else(malformed)?;
        let v = r.take(usize::from(len)).ok_or_else(malformed)?;
        let mut c = Reader::new(v);
        let cap = match code {
            CAP_MULTIPROTOCOL if v.len() == 4 => {
                let afi = c.u16().ok_or_else(malformed)?;
                c.u8().ok_or_else(malformed)?; // reserved
                let safi = c.u8().ok_or_else(malformed)?;
                Capability::Multiprotocol { afi, safi }
            }
            CAP_ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            CAP_FOUR_OCTET_AS if v.len() == 4 => {
                Capability::FourOctetAs(c.u32().ok_or_else(malformed)?)
            }
            CAP_GRACEFUL_RESTART if v.len() >= 2 && (v.len() - 2).is_multiple_of(4) => {
                let word = c.u16().ok_or_else(malformed)?;
                let mut families = Vec::new();
                while !c.is_empty() {
                    let afi = c.u16().ok_or_else(malformed)?;
                    let safi = c.u8().ok_or_else(malformed)?;
                    let flags = c.u8().ok_or_else(malformed)?;
                    families.push(GracefulRestartFamily {
                        afi,
                        safi,
                        forwarding_state: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: word & 0x8000 != 0,
                    notification: word & 0x4000 != 0,
                    restart_time: word & 0x0fff,
                    families,
                })
            }
            CAP_MULTIPROTOCOL | CAP_ROUTE_REFRESH | CAP_FOUR_OCTET_AS | CAP_GRACEFUL_RESTART => {
                return Err(malformed());
            }
            _ => Capability::Unknown {
                code,
                value: v.to_vec(),
            },
        };
        out.push(cap);
    }
    Ok(())
}

/// Decodes an NLRI field (a sequence of length-prefixed prefixes).
fn decode_prefixes(buf: &[u8], family: Family) -> Option<Vec<Prefix>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r.u8()?;
        if len > family.max_prefix_len() {
            return None;
        }
        let bytes = r.take(usize::from(len).div_ceil(8))?;
        let addr = match family {
            Family::Ipv4Unicast => {
                let mut a = [0u8; 4];
                a[..bytes.len()].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            Family::Ipv6Unicast => {
                let mut a = [0u8; 16];
                a[..bytes.len()].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        };
        out.push(Prefix::new(addr, len).ok()?);
    }
    Some(out)
}

fn decode_update(body: &[u8], opts: &CodecOptions) -> Result<Update, DecodeError> {
    let list = || DecodeError::update(err::MALFORMED_ATTRIBUTE_LIST, "bad UPDATE lengths");
    let mut r = Reader::new(body);
    let wd_len = r.u16().ok_or_else(list)?;
    let wd = r.take(usize::from(wd_len)).ok_or_else(list)?;
    let attr_len = r.u16().ok_or_else(list)?;
    let attrs = r.take(usize::from(attr_len)).ok_or_else(list)?;
    let nlri_buf = r.buf;

    // RFC 7606 §5.3: NLRI syntax errors cannot be contained, so they reset the session.
    let bad_nlri = || DecodeError::update(err::INVALID_NETWORK_FIELD, "malformed NLRI");
    let withdrawn = decode_prefixes(wd, Family::Ipv4Unicast).ok_or_else(bad_nlri)?;
    let nlri = decode_prefixes(nlri_buf, Family::Ipv4Unicast).ok_or_else(bad_nlri)?;

    let mut update = Update {
        withdrawn,
        attributes: Vec::new(),
        nlri,
        errors: Vec::new(),
    };
    decode_attributes(attrs, opts, &mut update)?;

    // RFC 4271 §6.3 / RFC 7606 §3(d): mandatory attributes when announcing.
    let mp_nlri = update
        .attributes
        .iter()
        .any(|a| matches!(a, PathAttribute::MpReach { nlri, .. } if !nlri.is_empty()));
    if !update.nlri.is_empty() || mp_nlri {
        let has = |t: u8| update.attributes.iter().any(|a| attr_type(a) == t);
        let mut missing = vec![ATTR_ORIGIN, ATTR_AS_PATH];
        if !update.nlri.is_empty() {
            missing.push(ATTR_NEXT_HOP);
        }
        for t in missing {
            if !has(t) {
                update.errors.push(UpdateError {
                    action: ErrorAction::TreatAsWithdraw,
                    subcode: err::MISSING_WELL_KNOWN,
                    type_code: Some(t),
                });
            }
        }
    }
    Ok(update)
}

fn attr_type(a: &PathAttribute) -> u8 {
    match a {
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

/// Expected optional/transitive flags of the attributes we recognise.
fn expected_flags(type_code: u8) -> Option<u8> {
    match type_code {
        ATTR_ORIGIN | ATTR_AS_PATH | ATTR_NEXT_HOP | ATTR_LOCAL_PREF | ATTR_ATOMIC_AGGREGATE => {
            Some(FLAG_TRANSITIVE)
        }
        ATTR_MED | ATTR_MP_REACH | ATTR_MP_UNREACH => Some(FLAG_OPTIONAL),
        ATTR_AGGREGATOR | ATTR_COMMUNITIES | ATTR_AS4_PATH | ATTR_LARGE_COMMUNITIES => {
            Some(FLAG_OPTIONAL | FLAG_TRANSITIVE)
        }
        _ => None,
    }
}

fn decode_attributes(
    buf: &[u8],
    opts: &CodecOptions,
    update: &mut Update,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(buf);
    let mut seen = [false; 256];
    let soft = |update: &mut Update, action, subcode, type_code| {
        update.errors.push(UpdateError {
            action,
            subcode,
            type_code,
        });
    };
    while !r.is_empty() {
        let header = (|| {
            let flags = r.u8()?;
            let ty = r.u8()?;
            let len = if flags & FLAG_EXTENDED_LEN != 0 {
                r.u16()?
            } else {
                u16::from(r.u8()?)
            };
            Some((flags, ty, len))
        })();
        let Some((flags, ty, len)) = header else {
            // RFC 7606 §4: an overrunning attribute list is contained by treat-as-withdraw.
            soft(
                update,
                ErrorAction::TreatAsWithdraw,
                err::MALFORMED_ATTRIBUTE_LIST,
                None,
            );
            return Ok(());
        };
        let Some(value) = r.take(usize::from(len)) else {
            if ty == ATTR_MP_REACH || ty == ATTR_MP_UNREACH {
                return Err(DecodeError::update(
                    err::ATTRIBUTE_LENGTH,
                    "MP attribute overruns the attribute list",
                ));
            }
            soft(
                update,
                ErrorAction::TreatAsWithdraw,
                err::ATTRIBUTE_LENGTH,
                Some(ty),
            );
            return Ok(());
        };
        let is_mp = ty == ATTR_MP_REACH || ty == ATTR_MP_UNREACH;
        if seen[usize::from(ty)] {
            // RFC 7606 §3(g): repeated MP attributes reset; others keep only the first.
            if is_mp {
                return Err(DecodeError::update(
                    err::MALFORMED_ATTRIBUTE_LIST,
                    "repeated MP attribute",
                ));
            }
            soft(
                update,
                ErrorAction::AttributeDiscard,
                err::MALFORMED_ATTRIBUTE_LIST,
                Some(ty),
            );
            continue;
        }
        seen[usize::from(ty)] = true;

        let Some(expected) = expected_flags(ty) else {
            if flags & FLAG_OPTIONAL == 0 {
                soft(
                    update,
                    ErrorAction::TreatAsWithdraw,
                    err::UNRECOGNIZED_WELL_KNOWN,
                    Some(ty),
                );
            } else {
                update.attributes.push(PathAttribute::Other {
                    flags: flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL),
                    type_code: ty,
                    value: value.to_vec(),
                });
            }
            continue;
        };
        if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
            if is_mp {
                return Err(DecodeError::update(
                    err::ATTRIBUTE_FLAGS,
                    "bad MP attribute flags",
                ));
            }
            soft(
                update,
                ErrorAction::TreatAsWithdraw,
                err::ATTRIBUTE_FLAGS,
                Some(ty),
            );
            continue;
        }
        match decode_attribute(ty, value, opts) {
            Ok(Some(a)) => update.attributes.push(a),
            Ok(None) => {}
            Err(AttrError::Reset(e)) => return Err(e),
            Err(AttrError::Soft(action, subcode)) => soft(update, action, subcode, Some(ty)),
        }
    }
    Ok(())
}

enum AttrError {
    Reset(DecodeError),
    Soft(ErrorAction, u8),
}

fn decode_as_path(value: &[u8], four: bool) -> Option<Vec<AsPathSegment>> {
    let mut r = Reader::new(value);
    let mut segs = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        let count = r.u8()?;
        // RFC 7606 §7.2: a zero-length segment is malformed.
        if count == 0 {
            return None;
        }
        let mut asns = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            asns.push(if four { r.u32()? } else { u32::from(r.u16()?) });
        }
        segs.push(match kind {
            1 => AsPathSegment::Set(asns),
            2 => AsPathSegment::Sequence(asns),
            3 => AsPathSegment::ConfedSequence(asns),
            4 => AsPathSegment::ConfedSet(asns),
            _ => return None,
        });
    }
    Some(segs)
}

fn decode_attribute(
    ty: u8,
    value: &[u8],
    opts: &CodecOptions,
) -> Result<Option<PathAttribute>, AttrError> {
    use AttrError::{Reset, Soft};
    use ErrorAction::{AttributeDiscard, TreatAsWithdraw};
    let len_err = Soft(TreatAsWithdraw, err::ATTRIBUTE_LENGTH);
    let mut r = Reader::new(value);
    let exact = |n: usize| {
        if value.len() == n {
            Ok(())
        } else {
            Err(Soft(TreatAsWithdraw, err::ATTRIBUTE_LENGTH))
        }
    };
    let attr = match ty {
        ATTR_ORIGIN => {
            exact(1)?;
            PathAttribute::Origin(match value[0] {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => return Err(Soft(TreatAsWithdraw, err::INVALID_ORIGIN)),
            })
        }
        ATTR_AS_PATH => PathAttribute::AsPath(
            decode_as_path(value, opts.four_octet_as)
                .ok_or(Soft(TreatAsWithdraw, err::MALFORMED_AS_PATH))?,
        ),
        ATTR_AS4_PATH => PathAttribute::As4Path(
            // RFC 6793 §6 / RFC 7606 §7.? : a malformed AS4_PATH is discarded.
            match decode_as_path(value, true) {
                Some(p) => p,
                None => return Err(Soft(AttributeDiscard, err::MALFORMED_AS_PATH)),
            },
        ),
        ATTR_NEXT_HOP => {
            exact(4)?;
            PathAttribute::NextHop(r.ipv4().ok_or(len_err)?)
        }
        ATTR_MED => {
            exact(4)?;
            PathAttribute::MultiExitDisc(r.u32().ok_or(len_err)?)
        }
        ATTR_LOCAL_PREF => {
            exact(4)?;
            PathAttribute::LocalPref(r.u32().ok_or(len_err)?)
        }
        ATTR_ATOMIC_AGGREGATE => {
            if !value.is_empty() {
                return Err(Soft(AttributeDiscard, err::ATTRIBUTE_LENGTH));
            }
            PathAttribute::AtomicAggregate
        }
        ATTR_AGGREGATOR => {
            let want = if opts.four_octet_as { 8 } else { 6 };
            if value.len() != want {
                return Err(Soft(AttributeDiscard, err::ATTRIBUTE_LENGTH));
            }
            let asn = if opts.four_octet_as {
                r.u32()
            } else {
                r.u16().map(u32::from)
            }
            .ok_or(Soft(AttributeDiscard, err::ATTRIBUTE_LENGTH))?;
            let address = r
                .ipv4()
                .ok_or(Soft(AttributeDiscard, err::ATTRIBUTE_LENGTH))?;
            PathAttribute::Aggregator { asn, address }
        }
        ATTR_COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(4) {
                return Err(Soft(TreatAsWithdraw, err::OPTIONAL_ATTRIBUTE));
            }
            let mut c = Vec::with_capacity(value.len() / 4);
            while let Some(v) = r.u32() {
                c.push(v);
            }
            PathAttribute::Communities(c)
        }
        ATTR_LARGE_COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(12) {
                return Err(Soft(TreatAsWithdraw, err::OPTIONAL_ATTRIBUTE));
            }
            let mut c = Vec::with_capacity(value.len() / 12);
            while let (Some(a), Some(b), Some(d)) = (r.u32(), r.u32(), r.u32()) {
                c.push((a, b, d));
            }
            PathAttribute::LargeCommunities(c)
        }
        ATTR_MP_REACH | ATTR_MP_UNREACH => {
            // RFC 7606 §5.3: if MP NLRI cannot be parsed the session is reset.
            let reset = || {
                Reset(DecodeError::update(
                    err::OPTIONAL_ATTRIBUTE,
                    "malformed MP_REACH/MP_UNREACH",
                ))
            };
            let afi = r.u16().ok_or_else(reset)?;
            let safi = r.u8().ok_or_else(reset)?;
            let Some(family) = Family::from_afi_safi(afi, safi) else {
                // A family we never negotiated: keep it opaque, it will be ignored.
                return Ok(Some(PathAttribute::Other {
                    flags: FLAG_OPTIONAL,
                    type_code: ty,
                    value: value.to_vec(),
                }));
            };
            if ty == ATTR_MP_UNREACH {
                let withdrawn = decode_prefixes(r.buf, family).ok_or_else(reset)?;
                PathAttribute::MpUnreach { family, withdrawn }
            } else {
                let nh_len = r.u8().ok_or_else(reset)?;
                let nh = r.take(usize::from(nh_len)).ok_or_else(reset)?;
                let mut n = Reader::new(nh);
                let next_hop = match nh_len {
                    4 => vec![IpAddr::V4(n.ipv4().ok_or_else(reset)?)],
                    16 => vec![IpAddr::V6(n.ipv6().ok_or_else(reset)?)],
                    32 => vec![
                        IpAddr::V6(n.ipv6().ok_or_else(reset)?),
                        IpAddr::V6(n.ipv6().ok_or_else(reset)?),
                    ],
                    _ => return Err(reset()),
                };
                r.u8().ok_or_else(reset)?; // reserved
                let nlri = decode_prefixes(r.buf, family).ok_or_else(reset)?;
                PathAttribute::MpReach {
                    family,
                    next_hop,
                    nlri,
                }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(attr))
}

// ---------------------------------------------------------------------------------------------
// Encoding

impl Message {
    pub fn encode(&self, opts: &CodecOptions) -> Result<Bytes, EncodeError> {
        let mut b = BytesMut::with_capacity(64);
        b.put_slice(&MARKER);
        b.put_u16(0); // patched below
        match self {
            Message::Open(o) => {
                b.put_u8(MSG_OPEN);
                encode_open(o, &mut b)?;
            }
            Message::Update(u) => {
                b.put_u8(MSG_UPDATE);
                u.encode_body(&mut b, opts.four_octet_as)?;
            }
            Message::Notification(n) => {
                b.put_u8(MSG_NOTIFICATION);
                b.put_u8(n.code);
                b.put_u8(n.subcode);
                b.put_slice(&n.data);
            }
            Message::Keepalive => b.put_u8(MSG_KEEPALIVE),
            Message::RouteRefresh(rr) => {
                b.put_u8(MSG_ROUTE_REFRESH);
                b.put_u16(rr.afi);
                b.put_u8(rr.subtype);
                b.put_u8(rr.safi);
            }
        }
        let len = b.len();
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong(len));
        }
        b[16..18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(b.freeze())
    }
}

fn encode_capability(c: &Capability, b: &mut BytesMut) -> Result<(), EncodeError> {
    match c {
        Capability::Multiprotocol { afi, safi } => {
            b.put_slice(&[CAP_MULTIPROTOCOL, 4]);
            b.put_u16(*afi);
            b.put_u8(0);
            b.put_u8(*safi);
        }
        Capability::RouteRefresh => b.put_slice(&[CAP_ROUTE_REFRESH, 0]),
        Capability::FourOctetAs(asn) => {
            b.put_slice(&[CAP_FOUR_OCTET_AS, 4]);
            b.put_u32(*asn);
        }
        Capability::GracefulRestart(g) => {
            let len = u8::try_from(2 + 4 * g.families.len())
                .map_err(|_| EncodeError::FieldTooLong("graceful restart capability"))?;
            b.put_slice(&[CAP_GRACEFUL_RESTART, len]);
            let mut word = g.restart_time & 0x0fff;
            if g.restart_state {
                word |= 0x8000;
            }
            if g.notification {
                word |= 0x4000;
            }
            b.put_u16(word);
            for f in &g.families {
                b.put_u16(f.afi);
                b.put_u8(f.safi);
                b.put_u8(if f.forwarding_state { 0x80 } else { 0 });
            }
        }
        Capability::Unknown { code, value } => {
            let len =
                u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong("capability"))?;
            b.put_slice(&[*code, len]);
            b.put_slice(value);
        }
    }
    Ok(())
}

fn encode_open(o: &Open, b: &mut BytesMut) -> Result<(), EncodeError> {
    b.put_u8(BGP_VERSION);
    b.put_u16(o.my_as);
    b.put_u16(o.hold_time);
    b.put_slice(&o.bgp_id.octets());
    let mut caps = BytesMut::new();
    for c in &o.capabilities {
        encode_capability(c, &mut caps)?;
    }
    if caps.is_empty() {
        b.put_u8(0);
    } else if caps.len() + 2 <= 255 {
        // One Capabilities parameter holding all capabilities (RFC 5492 allows either form);
        // RFC 9072 says to use the extended form only when the classic one cannot fit.
        b.put_u8((caps.len() + 2) as u8);
        b.put_u8(PARAM_CAPABILITIES);
        b.put_u8(caps.len() as u8);
        b.put_slice(&caps);
    } else {
        // RFC 9072 extended optional parameters.
        let plen = u16::try_from(caps.len())
            .map_err(|_| EncodeError::FieldTooLong("optional parameters"))?;
        let total = u16::try_from(caps.len() + 3)
            .map_err(|_| EncodeError::FieldTooLong("optional parameters"))?;
        b.put_u8(255);
        b.put_u8(PARAM_EXTENDED);
        b.put_u16(total);
        b.put_u8(PARAM_CAPABILITIES);
        b.put_u16(plen);
        b.put_slice(&caps);
    }
    Ok(())
}

fn encode_prefixes(prefixes: &[Prefix], b: &mut BytesMut) {
    for p in prefixes {
        let n = usize::from(p.prefix_len()).div_ceil(8);
        b.put_u8(p.prefix_len());
        match p.addr() {
            IpAddr::V4(a) => b.put_slice(&a.octets()[..n]),
            IpAddr::V6(a) => b.put_slice(&a.octets()[..n]),
        }
    }
}

fn encode_as_path(segs: &[AsPathSegment], four: bool, b: &mut BytesMut) -> Result<(), EncodeError> {
    for s in segs {
        let (kind, asns) = s.kind_and_asns();
        let count =
            u8::try_from(asns.len()).map_err(|_| EncodeError::FieldTooLong("AS_PATH segment"))?;
        b.put_u8(kind);
        b.put_u8(count);
        for a in asns {
            if four {
                b.put_u32(*a);
            } else {
                b.put_u16(u16::try_from(*a).unwrap_or(AS_TRANS));
            }
        }
    }
    Ok(())
}

fn put_attribute(b: &mut BytesMut, flags: u8, ty: u8, value: &[u8]) -> Result<(), EncodeError> {
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong("attribute"))?;
        b.put_u8(flags | FLAG_EXTENDED_LEN);
        b.put_u8(ty);
        b.put_u16(len);
    } else {
        b.put_u8(flags & !FLAG_EXTENDED_LEN);
        b.put_u8(ty);
        b.put_u8(value.len() as u8);
    }
    b.put_slice(value);
    Ok(())
}

fn put_ip(v: &mut BytesMut, a: &IpAddr) {
    match a {
        IpAddr::V4(a) => v.put_slice(&a.octets()),
        IpAddr::V6(a) => v.put_slice(&a.octets()),
    }
}

fn encode_attribute(a: &PathAttribute, four: bool, b: &mut BytesMut) -> Result<(), EncodeError> {
    let mut v = BytesMut::new();
    match a {
        PathAttribute::Origin(o) => v.put_u8(match o {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }),
        PathAttribute::AsPath(s) => encode_as_path(s, four, &mut v)?,
        PathAttribute::As4Path(s) => encode_as_path(s, true, &mut v)?,
        PathAttribute::NextHop(nh) => v.put_slice(&nh.octets()),
        PathAttribute::MultiExitDisc(x) | PathAttribute::LocalPref(x) => v.put_u32(*x),
        PathAttribute::AtomicAggregate => {}
        PathAttribute::Aggregator { asn, address } => {
            if four {
                v.put_u32(*asn);
            } else {
                v.put_u16(u16::try_from(*asn).unwrap_or(AS_TRANS));
            }
            v.put_slice(&address.octets());
        }
        PathAttribute::Communities(c) => c.iter().for_each(|x| v.put_u32(*x)),
        PathAttribute::LargeCommunities(c) => c.iter().for_each(|(x, y, z)| {
            v.put_u32(*x);
            v.put_u32(*y);
            v.put_u32(*z);
        }),
        PathAttribute::MpReach {
            family,
            next_hop,
            nlri,
        } => {
            let (afi, safi) = family.afi_safi();
            v.put_u16(afi);
            v.put_u8(safi);
            let mut nh = BytesMut::new();
            next_hop.iter().for_each(|a| put_ip(&mut nh, a));
            v.put_u8(u8::try_from(nh.len()).map_err(|_| EncodeError::FieldTooLong("next hop"))?);
            v.put_slice(&nh);
            v.put_u8(0);
            encode_prefixes(nlri, &mut v);
        }
        PathAttribute::MpUnreach { family, withdrawn } => {
            let (afi, safi) = family.afi_safi();
            v.put_u16(afi);
            v.put_u8(safi);
            encode_prefixes(withdrawn, &mut v);
        }
        PathAttribute::Other { value, .. } => v.put_slice(value),
    }
    let ty = attr_type(a);
    let flags = match a {
        PathAttribute::Other { flags, .. } => *flags,
        _ => expected_flags(ty).unwrap_or(FLAG_OPTIONAL),
    };
    put_attribute(b, flags, ty, &v)
}

impl Update {
    fn encode_body(&self, b: &mut BytesMut, four: bool) -> Result<(), EncodeError> {
        let mut wd = BytesMut::new();
        encode_prefixes(&self.withdrawn, &mut wd);
        let mut attrs = BytesMut::new();
        for a in &self.attributes {
            encode_attribute(a, four, &mut attrs)?;
        }
        let too_long = |_| EncodeError::TooLong(HEADER_LEN + 4 + wd.len() + attrs.len());
        b.put_u16(u16::try_from(wd.len()).map_err(too_long)?);
        b.put_slice(&wd);
        b.put_u16(u16::try_from(attrs.len()).map_err(too_long)?);
        b.put_slice(&attrs);
        encode_prefixes(&self.nlri, b);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
