//! Who a speaker is on the membership wire.

use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A speaker's cluster identity: the Kubernetes node it runs on, the UDP
/// address peers reach it at, and a `bump` that tells apart successive lives
/// of the same address.
///
/// SWIM's `Down` is terminal for an identity, so a speaker that restarts, or
/// that the cluster wrongly declared down, must come back under a *new*
/// identity that beats the old one. `bump` starts at the wall clock in
/// microseconds (so a restarted process outranks its predecessor without any
/// stored state) and [`foca::Identity::renew`] increments it. Only the
/// address ([`foca::Identity::Addr`]) says "same member": foca keeps one
/// entry per address and lets the higher `bump` replace the lower one.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberId {
    node: String,
    addr: SocketAddr,
    bump: u64,
}

impl MemberId {
    pub fn new(node: impl Into<String>, addr: SocketAddr, bump: u64) -> Self {
        Self {
            node: node.into(),
            addr,
            bump,
        }
    }

    /// A fresh identity for a process starting now.
    pub fn starting_now(node: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(node, addr, now_micros())
    }

    /// The destination used to announce ourselves to a seed we only know by
    /// address: foca accepts an `Announce` whose destination has the
    /// receiver's address, whatever the rest of the identity says.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        Self::new(String::new(), addr, 0)
    }

    /// The Kubernetes node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Where peers send datagrams for this member.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which life of this address this identity is; higher wins.
    pub fn bump(&self) -> u64 {
        self.bump
    }
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        // Jump to the clock when it is ahead so that a renewed identity also
        // outranks anything a previous process (started later by the clock)
        // may have left behind; +1 is the floor so renew always wins.
        let bump = self.bump.checked_add(1)?.max(now_micros());
        Some(Self::new(self.node.clone(), self.addr, bump))
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Node name breaks the (practically impossible) tie so that every
        // member picks the same winner.
        (self.bump, &self.node) > (adversary.bump, &adversary.node)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.node, self.addr, self.bump)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The wall clock in µs since the epoch.
pub(crate) fn now_micros() -> u64 {
    // A clock before 1970 only costs the restart-outranks-predecessor
    // property, so fall back to 0 rather than fail.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 210, last], 7946))
    }

    #[test]
    fn renew_keeps_address_and_wins() {
        let id = MemberId::new("node-a", addr(1), 5);
        let renewed = id.renew().expect("renewable");
        assert_eq!(renewed.addr(), id.addr());
        assert_eq!(renewed.node(), "node-a");
        assert!(renewed.bump() > id.bump());
        assert!(renewed.win_addr_conflict(&id));
        assert!(!id.win_addr_conflict(&renewed));
    }

    #[test]
    fn renew_gives_up_at_the_end_of_the_range() {
        // Returning the same identity would make foca loop; None makes it go
        // Defunct, which the driver handles by starting afresh.
        assert_eq!(MemberId::new("n", addr(1), u64::MAX).renew(), None);
    }

    #[test]
    fn restart_outranks_previous_life() {
        let old = MemberId::starting_now("node-a", addr(1));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let new = MemberId::starting_now("node-a", addr(1));
        assert!(new.win_addr_conflict(&old));
    }

    #[test]
    fn conflict_is_decided_the_same_way_everywhere() {
        let a = MemberId::new("a", addr(1), 7);
        let b = MemberId::new("b", addr(1), 7);
        assert_ne!(a.win_addr_conflict(&b), b.win_addr_conflict(&a));
    }

    #[test]
    fn postcard_round_trip_is_compact() {
        use foca::{Codec, Member, PostcardCodec};
        let id = MemberId::new("worker-17.example", addr(3), 1_750_000_000_000_000);
        let mut buf = Vec::new();
        PostcardCodec
            .encode_member(&Member::alive(id.clone()), &mut buf)
            .expect("encode");
        let back: Member<MemberId> = PostcardCodec.decode_member(&buf[..]).expect("decode");
        assert_eq!(back.id(), &id);
        // name + length, v4 addr (tag + 4 + port varint), varint bump,
        // incarnation and state.
        assert!(buf.len() <= id.node().len() + 24, "{} bytes", buf.len());
    }
}
