//! NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608, RFC 7313, RFC 9384).

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
