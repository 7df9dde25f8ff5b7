//! BFD authentication (RFC 5880 §4.3, §4.4, §6.7.3, §6.7.4): keyed MD5 and keyed SHA1, plain
//! and meticulous. Pure: [`AuthState::seal`] signs an encoded packet, [`AuthState::verify`]
//! checks a received one and keeps the sequence state (bfd.XmitAuthSeq, bfd.RcvAuthSeq,
//! bfd.AuthSeqKnown).
//!
//! The digest is MD5 or SHA1 over the whole packet with the key, zero-padded, in the digest
//! field (RustCrypto `md-5`/`sha1`). We advance our sequence number on every packet in all
//! four modes: RFC 5880 lets the keyed (non-meticulous) modes advance it only "occasionally",
//! which exists for implementations that cannot keep per-packet state; doing it always costs
//! nothing and narrows what a captured packet can be replayed as. The modes differ on receipt:
//! a meticulous peer must present a strictly greater number each time.

use md5::Md5;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::PACKET_LEN;

/// Longest key/digest (SHA1).
const MAX_DIGEST: usize = 20;
/// Auth Type, Auth Len, Auth Key ID, Reserved, Sequence Number.
const SECTION_HEADER: usize = 8;
/// Longest authenticated packet we send or accept: mandatory section + SHA1 section.
pub const MAX_AUTH_PACKET_LEN: usize = PACKET_LEN + SECTION_HEADER + MAX_DIGEST;

/// The authentication types of RFC 5880 §4.1 that we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    KeyedMd5,
    MeticulousKeyedMd5,
    KeyedSha1,
    MeticulousKeyedSha1,
}

impl AuthType {
    /// The Auth Type field.
    pub fn code(self) -> u8 {
        match self {
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
        }
    }

    fn digest_len(self) -> usize {
        match self {
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => 16,
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => 20,
        }
    }

    /// The Auth Len field: 24 for MD5, 28 for SHA1.
    pub fn section_len(self) -> usize {
        SECTION_HEADER + self.digest_len()
    }

    /// Longest key (it is carried zero-padded in the digest field).
    pub fn max_key_len(self) -> usize {
        self.digest_len()
    }

    fn meticulous(self) -> bool {
        matches!(
            self,
            AuthType::MeticulousKeyedMd5 | AuthType::MeticulousKeyedSha1
        )
    }

    fn digest(self, data: &[u8]) -> [u8; MAX_DIGEST] {
        let mut out = [0u8; MAX_DIGEST];
        match self {
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => {
                out[..16].copy_from_slice(&Md5::digest(data))
            }
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => {
                out.copy_from_slice(&Sha1::digest(data))
            }
        }
        out
    }
}

/// A configured key. `Debug` does not show the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthKey {
    kind: AuthType,
    key_id: u8,
    /// The key, zero-padded to the digest length (as it goes into the digest field).
    padded: [u8; MAX_DIGEST],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is {len} bytes; {kind:?} takes at most {max}")]
    TooLong {
        kind: AuthType,
        len: usize,
        max: usize,
    },
}

impl AuthKey {
    pub fn new(kind: AuthType, key_id: u8, key: &[u8]) -> Result<AuthKey, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > kind.max_key_len() {
            return Err(KeyError::TooLong {
                kind,
                len: key.len(),
                max: kind.max_key_len(),
            });
        }
        let mut padded = [0u8; MAX_DIGEST];
        padded[..key.len()].copy_from_slice(key);
        Ok(AuthKey {
            kind,
            key_id,
            padded,
        })
    }

    pub fn kind(&self) -> AuthType {
        self.kind
    }

    pub fn key_id(&self) -> u8 {
        self.key_id
    }
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKey")
            .field("kind", &self.kind)
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a received packet failed authentication (RFC 5880 §6.7, §6.8.6). The packet is then
/// discarded and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication present but not configured")]
    NotConfigured,
    #[error("authentication configured but the packet has none")]
    Missing,
    #[error("auth type {0}, not the configured one")]
    WrongType(u8),
    #[error("bad auth length {auth_len} (packet length {packet_len})")]
    BadLength { auth_len: u8, packet_len: u8 },
    #[error("key ID {0}, not the configured one")]
    WrongKeyId(u8),
    #[error("digest does not match")]
    BadDigest,
    #[error("sequence number {seq} outside the window after {last}")]
    Sequence { seq: u32, last: u32 },
}

impl AuthError {
    /// Short label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::NotConfigured => "auth_unexpected",
            AuthError::Missing => "auth_missing",
            AuthError::WrongType(_) | AuthError::BadLength { .. } => "auth_type",
            AuthError::WrongKeyId(_) => "auth_key_id",
            AuthError::BadDigest => "auth_digest",
            AuthError::Sequence { .. } => "auth_sequence",
        }
    }
}

/// A signed packet ready to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    buf: [u8; MAX_AUTH_PACKET_LEN],
    len: usize,
}

impl Wire {
    pub fn unsigned(packet: [u8; PACKET_LEN]) -> Wire {
        let mut buf = [0u8; MAX_AUTH_PACKET_LEN];
        buf[..PACKET_LEN].copy_from_slice(&packet);
        Wire {
            buf,
            len: PACKET_LEN,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Authentication state of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthState {
    key: AuthKey,
    /// bfd.XmitAuthSeq: the number the next packet carries.
    xmit_seq: u32,
    /// bfd.RcvAuthSeq while bfd.AuthSeqKnown is 1.
    rcv_seq: Option<u32>,
}

impl AuthState {
    /// `xmit_seq` should be random (RFC 5880 §6.8.1), so that a restarted speaker does not
    /// reuse numbers a listener may have recorded.
    pub fn new(key: AuthKey, xmit_seq: u32) -> AuthState {
        AuthState {
            key,
            xmit_seq,
            rcv_seq: None,
        }
    }

    pub fn key(&self) -> &AuthKey {
        &self.key
    }

    /// A new key takes effect with the next packet; what was learnt of the peer's sequence
    /// stays (the peer's numbering does not restart with a key change).
    pub fn set_key(&mut self, key: AuthKey) {
        self.key = key;
    }

    /// bfd.AuthSeqKnown.
    pub fn seq_known(&self) -> bool {
        self.rcv_seq.is_some()
    }

    /// Sets bfd.AuthSeqKnown to 0: after twice the detection time without packets (RFC 5880
    /// §6.8.1) the peer may have restarted with a new random number.
    pub fn forget_seq(&mut self) {
        self.rcv_seq = None;
    }

    /// Signs an encoded mandatory section (RFC 5880 §6.7.3/§6.7.4): sets the A bit and the
    /// length, appends the authentication section and advances bfd.XmitAuthSeq.
    pub fn seal(&mut self, packet: [u8; PACKET_LEN]) -> Wire {
        let kind = self.key.kind;
        let section = kind.section_len();
        let len = PACKET_LEN + section;
        let mut w = Wire::unsigned(packet);
        w.len = len;
        let b = &mut w.buf;
        b[1] |= 0x04;
        b[3] = len as u8;
        b[24] = kind.code();
        b[25] = section as u8;
        b[26] = self.key.key_id;
        b[27] = 0;
        b[28..32].copy_from_slice(&self.xmit_seq.to_be_bytes());
        let dl = kind.digest_len();
        b[32..32 + dl].copy_from_slice(&self.key.padded[..dl]);
        let digest = kind.digest(&b[..len]);
        b[32..32 + dl].copy_from_slice(&digest[..dl]);
        self.xmit_seq = self.xmit_seq.wrapping_add(1);
        w
    }

    /// Checks a received packet: `packet` is exactly its Length bytes (validated by the
    /// caller), `detect_mult` the peer's Detect Mult that sizes the sequence window (3 × it).
    /// On success bfd.RcvAuthSeq takes the packet's number; on failure nothing changes, so a
    /// forged packet cannot move the window.
    pub fn verify(&mut self, packet: &[u8], detect_mult: u8) -> Result<(), AuthError> {
        if packet.len() < PACKET_LEN || packet[1] & 0x04 == 0 {
            return Err(AuthError::Missing);
        }
        let kind = self.key.kind;
        let packet_len = packet[3];
        if packet.len() < PACKET_LEN + 2 {
            return Err(AuthError::BadLength {
                auth_len: 0,
                packet_len,
            });
        }
        let (auth_type, auth_len) = (packet[24], packet[25]);
        if auth_type != kind.code() {
            return Err(AuthError::WrongType(auth_type));
        }
        let section = kind.section_len();
        if usize::from(auth_len) != section || packet.len() != PACKET_LEN + section {
            return Err(AuthError::BadLength {
                auth_len,
                packet_len,
            });
        }
        if packet[26] != self.key.key_id {
            return Err(AuthError::WrongKeyId(packet[26]));
        }
        let seq = u32::from_be_bytes([packet[28], packet[29], packet[30], packet[31]]);
        let dl = kind.digest_len();
        let mut buf = [0u8; MAX_AUTH_PACKET_LEN];
        buf[..packet.len()].copy_from_slice(packet);
        buf[32..32 + dl].copy_from_slice(&self.key.padded[..dl]);
        let expect = kind.digest(&buf[..packet.len()]);
        if !bool::from(expect[..dl].ct_eq(&packet[32..32 + dl])) {
            return Err(AuthError::BadDigest);
        }
        if let Some(last) = self.rcv_seq {
            // Circular 32-bit space: the packet's distance past bfd.RcvAuthSeq.
            let ahead = seq.wrapping_sub(last);
            let window = 3 * u32::from(detect_mult.max(1));
            let min = u32::from(kind.meticulous());
            if ahead < min || ahead > window {
                return Err(AuthError::Sequence { seq, last });
            }
        }
        self.rcv_seq = Some(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
