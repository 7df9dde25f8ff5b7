//! What an authenticated datagram may say: every identity in it must be a
//! Node at that Node's address, with a believable identity counter.
//!
//! The MAC says a datagram comes from a key holder; this says what it may
//! claim, so that even a bug or a stale gossip cannot put into the live set a
//! member that is not a Node (a real node's name at another address, a fake
//! name) or an identity counter (`bump`) the real node could never outrank.
//! It also stops reflection: a probe request whose target is not a known
//! node address is refused, so we only ever send to known nodes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Member, Message, PostcardCodec};

use super::identity::MemberId;
use super::reject::Reason;

/// An identity counter may be at most this far ahead of our wall clock.
/// Counters start at the wall clock in µs and renewals add one, so honest
/// ones are never ahead by more than clock skew; a forged `u64::MAX` would
/// beat every identity the real node can ever take.
pub const MAX_BUMP_AHEAD: Duration = Duration::from_secs(60);

/// A Node and the address its speaker uses (the Node's InternalIP of our
/// address family, and the membership port).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed {
    pub node: String,
    pub addr: SocketAddr,
}

impl Seed {
    pub fn new(node: impl Into<String>, addr: SocketAddr) -> Seed {
        Seed {
            node: node.into(),
            addr,
        }
    }
}

/// The Nodes we may talk to, by membership address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster(BTreeMap<SocketAddr, String>);

impl Roster {
    pub fn new<'a>(seeds: impl IntoIterator<Item = &'a Seed>) -> Roster {
        Roster(
            seeds
                .into_iter()
                .map(|s| (s.addr, s.node.clone()))
                .collect(),
        )
    }

    pub fn knows(&self, addr: &SocketAddr) -> bool {
        self.0.contains_key(addr)
    }

    /// Whether `id` is a Node at its address, with a believable counter.
    pub fn check(&self, id: &MemberId, wall_micros: u64) -> Result<(), Refusal> {
        match self.0.get(&id.socket_addr()) {
            Some(node) if node == id.node() => {}
            Some(node) => {
                return Err(Refusal::new(
                    Reason::IdentityMismatch,
                    format!("{id} claims the address of node {node}"),
                ));
            }
            None => {
                return Err(Refusal::new(
                    Reason::UnknownMember,
                    format!("{id} is not a node's membership address"),
                ));
            }
        }
        let ceiling = wall_micros.saturating_add(micros(MAX_BUMP_AHEAD));
        if id.bump() > ceiling {
            return Err(Refusal::new(
                Reason::BumpAhead,
                format!(
                    "{id}: identity counter {}s ahead of our clock (limit {}s)",
                    (id.bump() - wall_micros) / 1_000_000,
                    MAX_BUMP_AHEAD.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Why a datagram (or a part of it) was refused, for the counter and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

impl Refusal {
    fn new(reason: Reason, detail: String) -> Refusal {
        Refusal { reason, detail }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The outcome of vetting a foca payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Vetted {
    /// Everything checks out: hand the payload to foca as is.
    AsIs,
    /// Some member updates were dropped (first refusal given); hand this
    /// re-encoded payload to foca instead.
    Trimmed(Vec<u8>, Refusal),
}

/// Checks a foca payload received from `from` against the roster: the
/// sender must be the Node at `from`, probe targets and origins must be
/// known Nodes (else the whole datagram is refused), and member updates that
/// are not are dropped from it.
pub fn vet(
    payload: &[u8],
    from: SocketAddr,
    roster: &Roster,
    wall_micros: u64,
) -> Result<Vetted, Refusal> {
    let mut codec = PostcardCodec;
    let mut buf = payload;
    let header: Header<MemberId> = codec
        .decode_header(&mut buf)
        .map_err(|e| Refusal::new(Reason::Malformed, format!("undecodable header: {e}")))?;
    if header.src.socket_addr() != from {
        return Err(Refusal::new(
            Reason::IdentityMismatch,
            format!("sender {} sent from {from}", header.src),
        ));
    }
    roster
        .check(&header.src, wall_micros)
        .map_err(|r| Refusal {
            // Whatever is wrong with the sender's own identity is its mismatch.
            reason: match r.reason {
                Reason::BumpAhead => Reason::BumpAhead,
                _ => Reason::IdentityMismatch,
            },
            detail: format!("sender: {}", r.detail),
        })?;
    match &header.message {
        Message::PingReq { target: id, .. }
        | Message::IndirectPing { origin: id, .. }
        | Message::IndirectAck { target: id, .. }
        | Message::ForwardedAck { origin: id, .. } => {
            roster.check(id, wall_micros).map_err(|r| Refusal {
                reason: r.reason,
                detail: format!("probe names {}", r.detail),
            })?;
        }
        // We never send custom broadcasts.
        Message::Broadcast => {
            return Err(Refusal::new(
                Reason::Malformed,
                "custom broadcast".to_owned(),
            ));
        }
        _ => {}
    }
    // The rest is what foca reads: nothing, or a u16 count and that many
    // members. We send nothing after them.
    let mut members = Vec::new();
    match buf.remaining() {
        0 => return Ok(Vetted::AsIs),
        1 => return Err(Refusal::new(Reason::Malformed, "trailing byte".to_owned())),
        _ => {}
    }
    let count = buf.get_u16();
    for _ in 0..count {
        let member: Member<MemberId> = codec
            .decode_member(&mut buf)
            .map_err(|e| Refusal::new(Reason::Malformed, format!("undecodable member: {e}")))?;
        members.push(member);
    }
    if buf.has_remaining() {
        return Err(Refusal::new(
            Reason::Malformed,
            format!("{} bytes after the members", buf.remaining()),
        ));
    }
    let mut first_refusal = None;
    let before = members.len();
    members.retain(|m| match roster.check(m.id(), wall_micros) {
        Ok(()) => true,
        Err(r) => {
            first_refusal.get_or_insert(Refusal {
                reason: r.reason,
                detail: format!("member update dropped: {}", r.detail),
            });
            false
        }
    });
    let Some(refusal) = first_refusal else {
        return Ok(Vetted::AsIs);
    };
    let mut out = Vec::with_capacity(payload.len());
    codec
        .encode_header(&header, &mut out)
        .map_err(|e| Refusal::new(Reason::Malformed, format!("re-encoding: {e}")))?;
    // Fewer members than before, so the count fits.
    out.put_u16(u16::try_from(members.len()).unwrap_or(u16::MAX));
    for m in &members {
        codec
            .encode_member(m, &mut out)
            .map_err(|e| Refusal::new(Reason::Malformed, format!("re-encoding: {e}")))?;
    }
    debug_assert!(members.len() < before);
    Ok(Vetted::Trimmed(out, refusal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::{Incarnation, State};

    const NOW: u64 = 1_700_000_000_000_000;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 210, last], 7946))
    }

    fn id(last: u8) -> MemberId {
        MemberId::new(format!("node-{last}"), addr(last), NOW - 5_000_000)
    }

    fn roster() -> Roster {
        Roster::new(&[
            Seed::new("node-1", addr(1)),
            Seed::new("node-2", addr(2)),
            Seed::new("node-3", addr(3)),
        ])
    }

    fn encode(src: MemberId, message: Message<MemberId>, members: &[Member<MemberId>]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = Header {
            src,
            src_incarnation: 0,
            dst: id(1),
            message,
        };
        PostcardCodec
            .encode_header(&header, &mut out)
            .expect("encode");
        if !members.is_empty() {
            out.put_u16(members.len() as u16);
            for m in members {
                PostcardCodec.encode_member(m, &mut out).expect("encode");
            }
        }
        out
    }

    fn down(id: MemberId) -> Member<MemberId> {
        Member::new(id, Incarnation::default(), State::Down)
    }

    #[test]
    fn honest_messages_pass_untouched() {
        let p = encode(id(2), Message::Gossip, &[down(id(3)), Member::alive(id(1))]);
        assert_eq!(vet(&p, addr(2), &roster(), NOW), Ok(Vetted::AsIs));
        let p = encode(
            id(2),
            Message::PingReq {
                target: id(3),
                probe_number: 1,
            },
            &[],
        );
        assert_eq!(vet(&p, addr(2), &roster(), NOW), Ok(Vetted::AsIs));
    }

    #[test]
    fn sender_must_be_the_node_at_the_source_address() {
        let p = encode(id(2), Message::Ping(1), &[]);
        assert_eq!(
            vet(&p, addr(3), &roster(), NOW).unwrap_err().reason,
            Reason::IdentityMismatch
        );
        // node-2's name at node-3's address.
        let fake = MemberId::new("node-2", addr(3), NOW);
        let p = encode(fake, Message::Ping(1), &[]);
        assert_eq!(
            vet(&p, addr(3), &roster(), NOW).unwrap_err().reason,
            Reason::IdentityMismatch
        );
        let huge = MemberId::new("node-2", addr(2), u64::MAX);
        let p = encode(huge, Message::Ping(1), &[]);
        assert_eq!(
            vet(&p, addr(2), &roster(), NOW).unwrap_err().reason,
            Reason::BumpAhead
        );
        // 50 s ahead is clock skew we tolerate.
        let ahead = MemberId::new("node-2", addr(2), NOW + 50_000_000);
        let p = encode(ahead, Message::Ping(1), &[]);
        assert_eq!(vet(&p, addr(2), &roster(), NOW), Ok(Vetted::AsIs));
    }

    #[test]
    fn probe_requests_only_for_known_nodes() {
        // Reflection: "please ping 198.51.100.7:53 for me".
        let victim = MemberId::new("node-3", SocketAddr::from(([198, 51, 100, 7], 53)), NOW);
        for message in [
            Message::PingReq {
                target: victim.clone(),
                probe_number: 1,
            },
            Message::IndirectPing {
                origin: victim.clone(),
                probe_number: 1,
            },
            Message::IndirectAck {
                target: victim.clone(),
                probe_number: 1,
            },
            Message::ForwardedAck {
                origin: victim.clone(),
                probe_number: 1,
            },
        ] {
            let p = encode(id(2), message, &[]);
            assert_eq!(
                vet(&p, addr(2), &roster(), NOW).unwrap_err().reason,
                Reason::UnknownMember
            );
        }
    }

    #[test]
    fn forged_members_are_dropped_the_rest_kept() {
        let impostor = MemberId::new("node-3", addr(9), NOW);
        let fake = MemberId::new("fake-1", addr(10), NOW);
        let huge = MemberId::new("node-3", addr(3), u64::MAX);
        let p = encode(
            id(2),
            Message::Gossip,
            &[
                down(impostor),
                Member::alive(fake),
                down(huge),
                Member::alive(id(3)),
            ],
        );
        let Ok(Vetted::Trimmed(trimmed, refusal)) = vet(&p, addr(2), &roster(), NOW) else {
            panic!("not trimmed");
        };
        assert_eq!(refusal.reason, Reason::UnknownMember);
        assert_eq!(
            trimmed,
            encode(id(2), Message::Gossip, &[Member::alive(id(3))])
        );
        assert_eq!(vet(&trimmed, addr(2), &roster(), NOW), Ok(Vetted::AsIs));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let p = encode(id(2), Message::Gossip, &[Member::alive(id(3))]);
        for len in 0..p.len() {
            if let Ok(v) = vet(&p[..len], addr(2), &roster(), NOW) {
                // Only the header alone is a complete message.
                assert_eq!(v, Vetted::AsIs, "len {len}");
            }
        }
        let mut extra = p.clone();
        extra.push(0);
        assert_eq!(
            vet(&extra, addr(2), &roster(), NOW).unwrap_err().reason,
            Reason::Malformed
        );
        let p = encode(id(2), Message::Broadcast, &[]);
        assert_eq!(
            vet(&p, addr(2), &roster(), NOW).unwrap_err().reason,
            Reason::Malformed
        );
    }
}
