//! The authenticated datagram format, and the replay window.
//!
//! ```text
//! sealed (version 2): "FLBm" | 2 | key id (4) | seq (u64 BE) | foca payload | HMAC-SHA256 (32)
//! plain  (version 1): "FLBm" | 1 | foca payload          (only with --insecure-membership)
//! ```
//!
//! The tag is HMAC-SHA256, under the key named by the key id, over the
//! sender's and the receiver's socket addresses followed by every byte of
//! the datagram before the tag. Binding the addresses means a captured
//! datagram is only ever accepted by the receiver it was sent to, from the
//! address it was sent from, so a replay to another speaker or with another
//! spoofed source fails the MAC. The tag is checked (constant time, by
//! `hmac`) before anything else in the datagram is looked at.
//!
//! `seq` is the sender's wall clock in microseconds, forced to grow by at
//! least one per datagram; the receiver rejects a seq it has already
//! accepted from that address (see [`ReplayWindow`]), or one too far from
//! its own clock ([`MAX_AGE`], [`MAX_AHEAD`]), so a speaker that restarted
//! with no replay state is only open to replays of datagrams captured in the
//! last [`MAX_AGE`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use hmac::Mac;

use super::keys::{HmacSha256, KeyId, KeyRing};

/// Every datagram starts with this, so stray traffic on the port (an old
/// memberlist speaker also defaults to 7946) is dropped at once.
pub const MAGIC: [u8; 4] = *b"FLBm";
pub const VERSION_PLAIN: u8 = 1;
pub const VERSION_SEALED: u8 = 2;
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KeyId::LEN + 8;
pub const TAG_LEN: usize = 32;
/// Bytes a sealed datagram adds around the foca payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
const PLAIN_HEADER_LEN: usize = MAGIC.len() + 1;

/// A datagram whose seq is older than this (by our clock) is refused.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// A datagram whose seq is further ahead of our clock than this is refused:
/// the sender's clock is wrong (or someone wants to block its later seqs).
pub const MAX_AHEAD: Duration = Duration::from_secs(30);
/// How far behind the newest seq from a sender a datagram may be and still
/// be accepted (reordering), and how many such seqs are remembered.
pub const REORDER_WINDOW: Duration = Duration::from_secs(1);
pub const REORDER_SLOTS: usize = 64;

/// Why a datagram failed to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not ours: wrong magic, unknown version, too short or too long.
    Malformed,
    /// Plain (version 1) while we authenticate.
    Unauthenticated,
    /// Sealed with a key id we do not hold (or sealed while we are insecure).
    UnknownKey,
    /// Wrong tag: tampered, wrong key, or sealed for another address pair.
    BadMac,
}

/// A verified datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub key: KeyId,
    pub seq: u64,
    pub payload: &'a [u8],
}

/// Seals `payload` from `from` to `to` under the ring's signing key.
pub fn seal(
    ring: &KeyRing,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    payload: &[u8],
    out: &mut BytesMut,
) {
    let key = ring.signing();
    out.reserve(OVERHEAD + payload.len());
    let start = out.len();
    out.put_slice(&MAGIC);
    out.put_u8(VERSION_SEALED);
    out.put_slice(&key.id.0);
    out.put_u64(seq);
    out.put_slice(payload);
    let mut mac = key.mac.clone();
    bind_addresses(&mut mac, from, to);
    mac.update(&out[start..]);
    out.put_slice(&mac.finalize().into_bytes());
}

/// Checks a sealed datagram received by `to` from `from`; only its length,
/// magic, version and key id are read before the tag is verified.
pub fn open<'a>(
    ring: &KeyRing,
    from: SocketAddr,
    to: SocketAddr,
    datagram: &'a [u8],
) -> Result<Opened<'a>, OpenError> {
    let version = envelope_version(datagram)?;
    if version == VERSION_PLAIN {
        return Err(OpenError::Unauthenticated);
    }
    if datagram.len() < OVERHEAD {
        return Err(OpenError::Malformed);
    }
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut id = [0; KeyId::LEN];
    id.copy_from_slice(&signed[PLAIN_HEADER_LEN..PLAIN_HEADER_LEN + KeyId::LEN]);
    let key = ring.get(KeyId(id)).ok_or(OpenError::UnknownKey)?;
    let mut mac = key.mac.clone();
    bind_addresses(&mut mac, from, to);
    mac.update(signed);
    mac.verify_slice(tag).map_err(|_| OpenError::BadMac)?;
    let mut seq = [0; 8];
    seq.copy_from_slice(&signed[PLAIN_HEADER_LEN + KeyId::LEN..HEADER_LEN]);
    Ok(Opened {
        key: key.id,
        seq: u64::from_be_bytes(seq),
        payload: &signed[HEADER_LEN..],
    })
}

/// Frames `payload` without authentication (`--insecure-membership`).
pub fn plain(payload: &[u8], out: &mut BytesMut) {
    out.reserve(PLAIN_HEADER_LEN + payload.len());
    out.put_slice(&MAGIC);
    out.put_u8(VERSION_PLAIN);
    out.put_slice(payload);
}

/// The payload of a plain datagram (`--insecure-membership`). A sealed one
/// cannot be checked without a key: [`OpenError::UnknownKey`].
pub fn open_plain(datagram: &[u8]) -> Result<&[u8], OpenError> {
    match envelope_version(datagram)? {
        VERSION_PLAIN => Ok(&datagram[PLAIN_HEADER_LEN..]),
        _ => Err(OpenError::UnknownKey),
    }
}

fn envelope_version(datagram: &[u8]) -> Result<u8, OpenError> {
    if datagram.len() > super::config::MAX_DATAGRAM || datagram.len() < PLAIN_HEADER_LEN {
        return Err(OpenError::Malformed);
    }
    if datagram[..MAGIC.len()] != MAGIC {
        return Err(OpenError::Malformed);
    }
    match datagram[MAGIC.len()] {
        v @ (VERSION_PLAIN | VERSION_SEALED) => Ok(v),
        _ => Err(OpenError::Malformed),
    }
}

fn bind_addresses(mac: &mut HmacSha256, from: SocketAddr, to: SocketAddr) {
    for addr in [from, to] {
        match addr.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => {
                mac.update(&[4]);
                mac.update(&ip.octets());
            }
            std::net::IpAddr::V6(ip) => {
                mac.update(&[6]);
                mac.update(&ip.octets());
            }
        }
        mac.update(&addr.port().to_be_bytes());
    }
}

/// Why a verified datagram's seq was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqError {
    /// Seen before, or older than what the window still remembers.
    Replay,
    /// Older than [`MAX_AGE`] by our clock.
    TooOld { by: Duration },
    /// Further ahead of our clock than [`MAX_AHEAD`]: clock skew.
    FromFuture { by: Duration },
}

/// Checks `seq` (sender's µs clock) against our clock `now_micros`.
pub fn check_time(seq: u64, now_micros: u64) -> Result<(), SeqError> {
    let age = now_micros.saturating_sub(seq);
    let ahead = seq.saturating_sub(now_micros);
    if age > micros(MAX_AGE) {
        return Err(SeqError::TooOld {
            by: Duration::from_micros(age),
        });
    }
    if ahead > micros(MAX_AHEAD) {
        return Err(SeqError::FromFuture {
            by: Duration::from_micros(ahead),
        });
    }
    Ok(())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The seqs accepted from one sender: the newest, plus the last
/// [`REORDER_SLOTS`] accepted within [`REORDER_WINDOW`] of it, so a
/// datagram overtaken by a later one is still taken once. Anything at or
/// below `floor` (the edge of what is remembered) is refused.
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    /// Accepted seqs, ascending; the last is the newest.
    recent: Vec<u64>,
    floor: u64,
}

impl ReplayWindow {
    /// Accepts `seq` once.
    pub fn accept(&mut self, seq: u64) -> Result<(), SeqError> {
        let newest = self.recent.last().copied().unwrap_or(0);
        let floor = self
            .floor
            .max(newest.saturating_sub(micros(REORDER_WINDOW)));
        if seq <= floor {
            return Err(SeqError::Replay);
        }
        match self.recent.binary_search(&seq) {
            Ok(_) => return Err(SeqError::Replay),
            Err(at) => self.recent.insert(at, seq),
        }
        // Forget what fell out of the time window or the slots, raising the
        // floor so it stays refused.
        let newest = self.recent.last().copied().unwrap_or(seq);
        let edge = newest.saturating_sub(micros(REORDER_WINDOW));
        let stale = self.recent.partition_point(|&s| s <= edge);
        let excess = self.recent.len().saturating_sub(REORDER_SLOTS);
        let drop = stale.max(excess);
        if drop > 0 {
            self.floor = self.floor.max(self.recent[drop - 1]).max(edge);
            self.recent.drain(..drop);
        }
        Ok(())
    }
}

/// The seqs we send: our wall clock in µs, strictly increasing even if the
/// clock stalls or steps back.
#[derive(Debug, Default, Clone)]
pub struct SeqCounter {
    last: u64,
}

impl SeqCounter {
    pub fn next(&mut self, now_micros: u64) -> u64 {
        self.last = now_micros.max(self.last.saturating_add(1));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [0xa1; 32];
    const B: [u8; 32] = [0xb2; 32];

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 210, last], 7946))
    }

    fn ring(keys: &[[u8; 32]]) -> KeyRing {
        KeyRing::new(keys).expect("valid keys")
    }

    fn sealed(ring: &KeyRing, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        seal(ring, 42, addr(1), addr(2), payload, &mut out);
        out.to_vec()
    }

    #[test]
    fn round_trip() {
        let r = ring(&[A]);
        let d = sealed(&r, b"hello foca");
        assert_eq!(d.len(), OVERHEAD + 10);
        let opened = open(&r, addr(1), addr(2), &d).expect("opens");
        assert_eq!(opened.payload, b"hello foca");
        assert_eq!(opened.seq, 42);
        assert_eq!(opened.key, r.signing().id);
        // An empty payload is still a valid frame (foca never sends one).
        let empty = sealed(&r, b"");
        assert_eq!(
            open(&r, addr(1), addr(2), &empty).expect("opens").payload,
            b""
        );
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let r = ring(&[A]);
        let d = sealed(&r, b"node-2 is down, trust me");
        for i in 0..d.len() {
            for bit in 0..8 {
                let mut t = d.clone();
                t[i] ^= 1 << bit;
                let got = open(&r, addr(1), addr(2), &t);
                assert!(got.is_err(), "byte {i} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn only_the_intended_address_pair_accepts() {
        let r = ring(&[A]);
        let d = sealed(&r, b"x");
        assert_eq!(open(&r, addr(3), addr(2), &d), Err(OpenError::BadMac));
        assert_eq!(open(&r, addr(1), addr(3), &d), Err(OpenError::BadMac));
        assert_eq!(open(&r, addr(2), addr(1), &d), Err(OpenError::BadMac));
        let other_port = SocketAddr::from(([198, 18, 210, 1], 7947));
        assert_eq!(open(&r, other_port, addr(2), &d), Err(OpenError::BadMac));
    }

    #[test]
    fn keys_decide() {
        let d = sealed(&ring(&[A]), b"x");
        // Receiver without our key.
        assert_eq!(
            open(&ring(&[B]), addr(1), addr(2), &d),
            Err(OpenError::UnknownKey)
        );
        // During a rotation both keys are accepted, whichever signs.
        for receiver in [ring(&[A, B]), ring(&[B, A])] {
            assert!(open(&receiver, addr(1), addr(2), &d).is_ok());
            let d2 = sealed(&ring(&[B]), b"y");
            assert!(open(&receiver, addr(1), addr(2), &d2).is_ok());
        }
        // A forged key id that names our key does not help without the key.
        let mut forged = sealed(&ring(&[B]), b"x");
        forged[5..9].copy_from_slice(&ring(&[A]).signing().id.0);
        assert_eq!(
            open(&ring(&[A]), addr(1), addr(2), &forged),
            Err(OpenError::BadMac)
        );
    }

    #[test]
    fn truncated_foreign_and_plain_datagrams_are_rejected() {
        let r = ring(&[A]);
        let d = sealed(&r, b"payload");
        for len in 0..d.len() {
            assert!(open(&r, addr(1), addr(2), &d[..len]).is_err(), "len {len}");
        }
        assert_eq!(
            open(&r, addr(1), addr(2), b"memberlist"),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            open(&r, addr(1), addr(2), b"FLBm\x03abc"),
            Err(OpenError::Malformed)
        );
        let mut p = BytesMut::new();
        plain(b"node-2 down", &mut p);
        assert_eq!(
            open(&r, addr(1), addr(2), &p),
            Err(OpenError::Unauthenticated)
        );
        let mut big = d.clone();
        big.resize(super::super::config::MAX_DATAGRAM + 1, 0);
        assert_eq!(open(&r, addr(1), addr(2), &big), Err(OpenError::Malformed));
    }

    #[test]
    fn plain_mode_frames() {
        let mut p = BytesMut::new();
        plain(b"abc", &mut p);
        assert_eq!(&p[..], b"FLBm\x01abc");
        assert_eq!(open_plain(&p), Ok(&b"abc"[..]));
        assert_eq!(open_plain(b"FLBm\x02abc"), Err(OpenError::UnknownKey));
        assert_eq!(open_plain(b"FLBm"), Err(OpenError::Malformed));
        assert_eq!(open_plain(b""), Err(OpenError::Malformed));
    }

    #[test]
    fn replays_are_refused_reordering_is_not() {
        let mut w = ReplayWindow::default();
        let t = 1_700_000_000_000_000;
        assert_eq!(w.accept(t), Ok(()));
        assert_eq!(w.accept(t), Err(SeqError::Replay));
        assert_eq!(w.accept(t + 10), Ok(()));
        // Overtaken datagram, within the window: accepted once.
        assert_eq!(w.accept(t + 5), Ok(()));
        assert_eq!(w.accept(t + 5), Err(SeqError::Replay));
        // Beyond the reorder window: refused.
        assert_eq!(w.accept(t + 2_000_000), Ok(()));
        assert_eq!(w.accept(t + 11), Err(SeqError::Replay));
        assert_eq!(w.accept(t + 2_000_000 - 900_000), Ok(()));
    }

    #[test]
    fn replay_state_is_bounded_and_forgets_safely() {
        let mut w = ReplayWindow::default();
        let t = 1_000_000_000;
        for i in 0..1000 {
            assert_eq!(w.accept(t + i * 2), Ok(()));
        }
        assert!(w.recent.len() <= REORDER_SLOTS);
        // Every seq accepted before stays refused, evicted or not.
        for i in 0..1000 {
            assert_eq!(w.accept(t + i * 2), Err(SeqError::Replay), "{i}");
        }
        // A gap never accepted but below the remembered edge: refused too.
        assert_eq!(w.accept(t + 1), Err(SeqError::Replay));
        // Within the remembered slots, an unseen seq is still fine.
        assert_eq!(w.accept(t + 1997), Ok(()));
    }

    #[test]
    fn time_window() {
        let now = 1_700_000_000_000_000;
        assert_eq!(check_time(now, now), Ok(()));
        assert_eq!(check_time(now - 29_000_000, now), Ok(()));
        assert_eq!(check_time(now + 29_000_000, now), Ok(()));
        assert!(matches!(
            check_time(now - 31_000_000, now),
            Err(SeqError::TooOld { .. })
        ));
        assert_eq!(
            check_time(now + 45_000_000, now),
            Err(SeqError::FromFuture {
                by: Duration::from_secs(45)
            })
        );
        assert!(check_time(u64::MAX, now).is_err());
        assert!(check_time(0, now).is_err());
    }

    #[test]
    fn seq_grows_even_if_the_clock_does_not() {
        let mut c = SeqCounter::default();
        assert_eq!(c.next(100), 100);
        assert_eq!(c.next(100), 101);
        assert_eq!(c.next(50), 102);
        assert_eq!(c.next(500), 500);
    }
}
