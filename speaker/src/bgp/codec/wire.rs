//! Numbers and sizes of the BGP-4 wire format: header, message types, OPEN parameters,
//! capability codes, path attribute type codes and flags.

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
pub const BGP_VERSION: u8 = 4;
/// RFC 6793: placeholder ASN in 2-octet fields when the real ASN does not fit.
pub const AS_TRANS: u16 = 23456;

pub(super) const MSG_OPEN: u8 = 1;
pub(super) const MSG_UPDATE: u8 = 2;
pub(super) const MSG_NOTIFICATION: u8 = 3;
pub(super) const MSG_KEEPALIVE: u8 = 4;
pub(super) const MSG_ROUTE_REFRESH: u8 = 5;

pub(super) const OPEN_MIN_LEN: usize = 29;
pub(super) const UPDATE_MIN_LEN: usize = 23;
pub(super) const NOTIFICATION_MIN_LEN: usize = 21;
pub(super) const ROUTE_REFRESH_LEN: usize = 23;

pub(super) const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: "Non-Ext OP Type" value signalling extended optional parameters.
pub(super) const PARAM_EXTENDED: u8 = 255;

pub(super) const CAP_MULTIPROTOCOL: u8 = 1;
pub(super) const CAP_ROUTE_REFRESH: u8 = 2;
pub(super) const CAP_EXTENDED_NEXT_HOP: u8 = 5;
pub(super) const CAP_GRACEFUL_RESTART: u8 = 64;
pub(super) const CAP_FOUR_OCTET_AS: u8 = 65;

pub(super) const FLAG_OPTIONAL: u8 = 0x80;
pub(super) const FLAG_TRANSITIVE: u8 = 0x40;
pub(super) const FLAG_PARTIAL: u8 = 0x20;
pub(super) const FLAG_EXTENDED_LEN: u8 = 0x10;

pub(super) const ATTR_ORIGIN: u8 = 1;
pub(super) const ATTR_AS_PATH: u8 = 2;
pub(super) const ATTR_NEXT_HOP: u8 = 3;
pub(super) const ATTR_MED: u8 = 4;
pub(super) const ATTR_LOCAL_PREF: u8 = 5;
pub(super) const ATTR_ATOMIC_AGGREGATE: u8 = 6;
pub(super) const ATTR_AGGREGATOR: u8 = 7;
pub(super) const ATTR_COMMUNITIES: u8 = 8;
pub(super) const ATTR_MP_REACH: u8 = 14;
pub(super) const ATTR_MP_UNREACH: u8 = 15;
pub(super) const ATTR_AS4_PATH: u8 = 17;
pub(super) const ATTR_LARGE_COMMUNITIES: u8 = 32;

/// Expected optional/transitive flags of the attributes we recognise.
pub(super) fn expected_flags(type_code: u8) -> Option<u8> {
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
