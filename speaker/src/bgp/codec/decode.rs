//! Decoding: bytes to [`Message`]s. Never panics; see the module docs of [`super`] for how
//! errors are classified. This file reads the header, frames and OPEN; [`update`] reads
//! UPDATEs.

mod update;

use super::reader::Reader;
use super::wire::*;
use super::{
    Capability, CodecOptions, DecodeError, ExtendedNextHop, GracefulRestart, GracefulRestartFamily,
    Message, Notification, Open, RouteRefresh, err,
};
use update::decode_update;

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
            // RFC 8950 §3: a non-empty list of 6-octet tuples.
            CAP_EXTENDED_NEXT_HOP if !v.is_empty() && v.len().is_multiple_of(6) => {
                let mut tuples = Vec::with_capacity(v.len() / 6);
                while !c.is_empty() {
                    tuples.push(ExtendedNextHop {
                        afi: c.u16().ok_or_else(malformed)?,
                        safi: c.u16().ok_or_else(malformed)?,
                        next_hop_afi: c.u16().ok_or_else(malformed)?,
                    });
                }
                Capability::ExtendedNextHop(tuples)
            }
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
            CAP_MULTIPROTOCOL
            | CAP_ROUTE_REFRESH
            | CAP_FOUR_OCTET_AS
            | CAP_GRACEFUL_RESTART
            | CAP_EXTENDED_NEXT_HOP => {
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
