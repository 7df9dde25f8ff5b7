use super::*;
use proptest::prelude::*;

/// Mandatory section of the vectors: Up, A bit, Detect Mult 3, My Discriminator 0x11223344,
/// Your Discriminator 0x55667788, 300 ms intervals. Length is set by `seal`.
fn header() -> [u8; PACKET_LEN] {
    let mut b = [0u8; PACKET_LEN];
    b[0] = 0x20;
    b[1] = 0xc0;
    b[2] = 3;
    b[3] = 24;
    b[4..8].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    b[8..12].copy_from_slice(&0x5566_7788u32.to_be_bytes());
    b[12..16].copy_from_slice(&300_000u32.to_be_bytes());
    b[16..20].copy_from_slice(&300_000u32.to_be_bytes());
    b
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Independent vectors: the packets above with key "secret", key ID 1, sequence 0x01020304,
/// built and hashed with Python's hashlib (RFC 5880 §6.7.3/§6.7.4: digest over the whole
/// packet with the zero-padded key in the digest field):
///
/// ```python
/// b = bytearray([0x20, 0xc4, 3, 24 + sect]) + struct.pack(">IIIII", 0x11223344, 0x55667788,
///     300000, 300000, 0) + bytes([t, sect, 1, 0]) + struct.pack(">I", 0x01020304)
///     + b"secret".ljust(dl, b"\0")
/// b[32:] = (hashlib.md5 if dl == 16 else hashlib.sha1)(bytes(b)).digest()
/// ```
const VECTORS: [(AuthType, &str); 4] = [
    (
        AuthType::KeyedMd5,
        "20c403301122334455667788000493e0000493e0000000000218010001020304d0a9d6710933839a6954603438b7e1ae",
    ),
    (
        AuthType::MeticulousKeyedMd5,
        "20c403301122334455667788000493e0000493e00000000003180100010203042ec3cd7908d0b35fbf674df99f0f6301",
    ),
    (
        AuthType::KeyedSha1,
        "20c403341122334455667788000493e0000493e000000000041c010001020304f60f81bc988ceac0585fcd4887d74bdb0d665d64",
    ),
    (
        AuthType::MeticulousKeyedSha1,
        "20c403341122334455667788000493e0000493e000000000051c0100010203045326c094a36263651f2a3331fae97f5931b6ea12",
    ),
];

fn key(kind: AuthType) -> AuthKey {
    AuthKey::new(kind, 1, b"secret").unwrap()
}

#[test]
fn seal_matches_independent_vectors() {
    for (kind, hex) in VECTORS {
        let mut a = AuthState::new(key(kind), 0x0102_0304);
        let w = a.seal(header());
        assert_eq!(w.as_bytes(), unhex(hex).as_slice(), "{kind:?}");
        assert_eq!(w.as_bytes().len(), PACKET_LEN + kind.section_len());
        // The next packet carries the next number, in every mode.
        let next = a.seal(header());
        assert_eq!(&next.as_bytes()[28..32], &0x0102_0305u32.to_be_bytes());
    }
}

#[test]
fn verify_accepts_independent_vectors() {
    for (kind, hex) in VECTORS {
        let mut a = AuthState::new(key(kind), 7);
        assert!(!a.seq_known());
        assert_eq!(a.verify(&unhex(hex), 3), Ok(()), "{kind:?}");
        assert!(a.seq_known());
    }
}

#[test]
fn any_changed_byte_is_rejected_and_changes_nothing() {
    for (kind, hex) in VECTORS {
        let good = unhex(hex);
        let mut a = AuthState::new(key(kind), 7);
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let before = a.clone();
                assert!(
                    a.verify(&b, 3).is_err(),
                    "{kind:?}: byte {i} bit {bit} flipped was accepted"
                );
                assert_eq!(a, before);
            }
        }
        // And the untouched packet still passes: nothing above moved the state.
        assert_eq!(a.verify(&good, 3), Ok(()));
    }
}

#[test]
fn wrong_key_key_id_type_or_missing_section() {
    let good = unhex(VECTORS[2].1);
    let mut other = AuthState::new(AuthKey::new(AuthType::KeyedSha1, 1, b"secreT").unwrap(), 0);
    assert_eq!(other.verify(&good, 3), Err(AuthError::BadDigest));
    let mut id2 = AuthState::new(AuthKey::new(AuthType::KeyedSha1, 2, b"secret").unwrap(), 0);
    assert_eq!(id2.verify(&good, 3), Err(AuthError::WrongKeyId(1)));
    let mut meticulous = AuthState::new(key(AuthType::MeticulousKeyedSha1), 0);
    assert_eq!(meticulous.verify(&good, 3), Err(AuthError::WrongType(4)));
    let mut md5 = AuthState::new(key(AuthType::KeyedMd5), 0);
    assert_eq!(md5.verify(&good, 3), Err(AuthError::WrongType(4)));
    // No A bit: the unauthenticated packet a spoofer would send.
    let mut plain = header();
    plain[1] = 0x40; // Down, no A bit
    let mut a = AuthState::new(key(AuthType::KeyedSha1), 0);
    assert_eq!(a.verify(&plain, 3), Err(AuthError::Missing));
    // A bit but the section cut short.
    assert!(matches!(
        a.verify(&good[..40], 3),
        Err(AuthError::BadLength { .. })
    ));
    assert!(matches!(
        a.verify(&good[..25], 3),
        Err(AuthError::BadLength { .. })
    ));
    assert!(!a.seq_known());
}

/// A packet signed by `from` with sequence number `seq` and state bits `flags`.
fn signed(k: AuthKey, seq: u32, state: u8) -> Vec<u8> {
    let mut h = header();
    h[1] = state << 6;
    AuthState::new(k, seq).seal(h).as_bytes().to_vec()
}

#[test]
fn keyed_sequence_window() {
    let k = key(AuthType::KeyedSha1);
    let mut a = AuthState::new(k, 0);
    assert_eq!(a.verify(&signed(k, 100, 3), 3), Ok(()));
    // Keyed: the same number again is fine (the sender may advance it only occasionally).
    assert_eq!(a.verify(&signed(k, 100, 3), 3), Ok(()));
    // Older: a replay.
    assert_eq!(
        a.verify(&signed(k, 99, 1), 3),
        Err(AuthError::Sequence { seq: 99, last: 100 })
    );
    // Up to 3 × Detect Mult ahead.
    assert_eq!(
        a.verify(&signed(k, 110, 3), 3),
        Err(AuthError::Sequence {
            seq: 110,
            last: 100
        })
    );
    assert_eq!(a.verify(&signed(k, 109, 3), 3), Ok(()));
    // A larger Detect Mult widens the window.
    assert_eq!(a.verify(&signed(k, 109 + 15, 3), 5), Ok(()));
    // The window moved: the old numbers are now replays.
    assert!(a.verify(&signed(k, 109, 1), 3).is_err());
}

#[test]
fn meticulous_sequence_must_advance() {
    let k = key(AuthType::MeticulousKeyedSha1);
    let mut a = AuthState::new(k, 0);
    let captured_down = signed(k, 5, 1);
    assert_eq!(a.verify(&captured_down, 3), Ok(()));
    // Replaying the very packet just accepted: refused.
    assert_eq!(
        a.verify(&captured_down, 3),
        Err(AuthError::Sequence { seq: 5, last: 5 })
    );
    assert_eq!(a.verify(&signed(k, 6, 3), 3), Ok(()));
    assert!(a.verify(&captured_down, 3).is_err());
    assert_eq!(a.verify(&signed(k, 15, 3), 3), Ok(()));
    assert!(a.verify(&signed(k, 25, 3), 3).is_err());
}

#[test]
fn sequence_wraps_around() {
    let k = key(AuthType::MeticulousKeyedMd5);
    let mut a = AuthState::new(k, 0);
    assert_eq!(a.verify(&signed(k, u32::MAX - 1, 3), 3), Ok(()));
    assert_eq!(a.verify(&signed(k, 2, 3), 3), Ok(()));
    assert!(a.verify(&signed(k, u32::MAX, 3), 3).is_err());
    // Our own counter wraps too.
    let mut tx = AuthState::new(k, u32::MAX);
    tx.seal(header());
    assert_eq!(&tx.seal(header()).as_bytes()[28..32], &[0, 0, 0, 0]);
}

#[test]
fn forgetting_the_sequence_accepts_a_restarted_peer() {
    let k = key(AuthType::MeticulousKeyedSha1);
    let mut a = AuthState::new(k, 0);
    assert_eq!(a.verify(&signed(k, 1_000_000, 3), 3), Ok(()));
    let restarted = signed(k, 42, 1);
    assert!(a.verify(&restarted, 3).is_err());
    a.forget_seq();
    assert_eq!(a.verify(&restarted, 3), Ok(()));
}

#[test]
fn key_lengths() {
    assert_eq!(
        AuthKey::new(AuthType::KeyedSha1, 0, b""),
        Err(KeyError::Empty)
    );
    assert!(AuthKey::new(AuthType::KeyedSha1, 0, &[7; 20]).is_ok());
    assert!(matches!(
        AuthKey::new(AuthType::MeticulousKeyedSha1, 0, &[7; 21]),
        Err(KeyError::TooLong {
            len: 21,
            max: 20,
            ..
        })
    ));
    assert!(AuthKey::new(AuthType::KeyedMd5, 0, &[7; 16]).is_ok());
    assert!(matches!(
        AuthKey::new(AuthType::KeyedMd5, 0, &[7; 17]),
        Err(KeyError::TooLong {
            len: 17,
            max: 16,
            ..
        })
    ));
    // A full-length key fills the digest field exactly and still round-trips.
    let k = AuthKey::new(AuthType::KeyedSha1, 9, &[0xff; 20]).unwrap();
    let mut a = AuthState::new(k, 0);
    assert_eq!(a.verify(&signed(k, 3, 3), 3), Ok(()));
}

#[test]
fn debug_does_not_show_the_key() {
    let k = AuthKey::new(AuthType::KeyedSha1, 1, b"hunter2").unwrap();
    let shown = format!("{k:?} {:?}", AuthState::new(k, 0));
    assert!(
        !shown.contains("hunter2") && !shown.contains("104, 117"),
        "{shown}"
    );
    assert!(shown.contains("redacted"));
}

fn kinds() -> impl Strategy<Value = AuthType> {
    prop_oneof![
        Just(AuthType::KeyedMd5),
        Just(AuthType::MeticulousKeyedMd5),
        Just(AuthType::KeyedSha1),
        Just(AuthType::MeticulousKeyedSha1),
    ]
}

proptest! {
    #[test]
    fn signed_packets_verify(kind in kinds(), id: u8, key in prop::collection::vec(any::<u8>(), 1..=16), seq: u32) {
        let k = AuthKey::new(kind, id, &key).unwrap();
        let mut tx = AuthState::new(k, seq);
        let mut rx = AuthState::new(k, 0);
        for _ in 0..5 {
            let w = tx.seal(header());
            prop_assert_eq!(rx.verify(w.as_bytes(), 3), Ok(()));
        }
    }

    #[test]
    fn garbage_never_panics_nor_passes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let mut a = AuthState::new(key(AuthType::KeyedSha1), 0);
        prop_assert!(a.verify(&bytes, 3).is_err());
        prop_assert!(!a.seq_known());
    }
}
