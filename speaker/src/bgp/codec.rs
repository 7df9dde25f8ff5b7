//! BGP-4 message codec (RFC 4271 §4), hand-written on `bytes`.
//!
//! Decoding never panics: every malformed input maps to a [`DecodeError`] carrying the
//! NOTIFICATION that RFC 4271 §6 prescribes. UPDATE problems that RFC 7606 downgrades to
//! "treat-as-withdraw" or "attribute discard" are not errors; they are recorded in
//! [`Update::errors`] so the caller can ignore the UPDATE while keeping the session.
//!
//! Layout: `message` (the types), `wire` (the numbers of the wire format), `decode` (with
//! `reader`) and `encode` (the two directions), [`err`] (NOTIFICATION codes).

mod decode;
mod encode;
pub mod err;
mod message;
mod reader;
mod wire;

pub use decode::{decode_frame, frame_len};
pub use message::{
    AsPathSegment, Capability, CodecOptions, DecodeError, EncodeError, ErrorAction,
    ExtendedNextHop, GracefulRestart, GracefulRestartFamily, Message, Notification, Open, Origin,
    PathAttribute, RouteRefresh, Update, UpdateError,
};
pub use wire::{AS_TRANS, BGP_VERSION, HEADER_LEN, MARKER, MAX_MESSAGE_LEN};

#[cfg(test)]
mod tests;
