//! Encoding: [`Message`]s to bytes.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::*;
use super::{
    AsPathSegment, Capability, CodecOptions, EncodeError, Message, Open, Origin, PathAttribute,
    Update,
};
use crate::bgp::prefix::Prefix;

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
        Capability::ExtendedNextHop(tuples) => {
            let len = u8::try_from(6 * tuples.len())
                .map_err(|_| EncodeError::FieldTooLong("extended next hop capability"))?;
            b.put_slice(&[CAP_EXTENDED_NEXT_HOP, len]);
            for t in tuples {
                b.put_u16(t.afi);
                b.put_u16(t.safi);
                b.put_u16(t.next_hop_afi);
            }
        }
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
    let ty = a.type_code();
    let flags = match a {
        PathAttribute::Other { flags, .. } => *flags,
        _ => expected_flags(ty).unwrap_or(FLAG_OPTIONAL),
    };
    put_attribute(b, flags, ty, &v)
}

impl Update {
    /// Encoded size of the body (everything after the header).
    pub fn body_len(&self, four_octet_as: bool) -> usize {
        let mut b = BytesMut::new();
        match self.encode_body(&mut b, four_octet_as) {
            Ok(()) => b.len(),
            Err(_) => usize::MAX,
        }
    }

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
