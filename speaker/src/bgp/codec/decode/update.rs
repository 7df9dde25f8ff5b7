//! Decoding UPDATE messages: withdrawn routes, path attributes and NLRI, with RFC 7606's
//! choice between resetting the session and containing the error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bgp::codec::reader::Reader;
use crate::bgp::codec::wire::*;
use crate::bgp::codec::{
    AsPathSegment, CodecOptions, DecodeError, ErrorAction, Origin, PathAttribute, Update,
    UpdateError, err,
};
use crate::bgp::prefix::{Family, Prefix};

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

pub(super) fn decode_update(body: &[u8], opts: &CodecOptions) -> Result<Update, DecodeError> {
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
        let has = |t: u8| update.attributes.iter().any(|a| a.type_code() == t);
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
