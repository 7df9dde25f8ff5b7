use super::*;
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(disc: u32) -> BfdConfig {
    BfdConfig {
        local_discriminator: disc,
        desired_min_tx: ms(300),
        required_min_rx: ms(300),
        detect_mult: 3,
        passive: false,
        seed: u64::from(disc),
        min_ttl: REQUIRED_TTL,
        auth: None,
    }
}

/// A valid Down packet from discriminator 7 (shared with the mux tests).
pub(crate) fn packet() -> ControlPacket {
    ControlPacket {
        diag: 0,
        state: BfdState::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: 7,
        your_discriminator: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
}

fn sent(actions: &[BfdAction]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            BfdAction::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn changes(actions: &[BfdAction]) -> Vec<(BfdState, u8)> {
    actions
        .iter()
        .filter_map(|a| match a {
            BfdAction::StateChanged { to, diag, .. } => Some((*to, *diag)),
            _ => None,
        })
        .collect()
}

/// Delivers a packet through the wire format, as the network would.
fn deliver(to: &mut BfdSession, p: ControlPacket) -> Vec<BfdAction> {
    to.receive(&p.encode(), Some(255)).expect("valid packet")
}

#[test]
fn exact_bytes() {
    let mut p = packet();
    p.state = BfdState::Up;
    p.poll = true;
    p.your_discriminator = 9;
    p.diag = diag::NEIGHBOR_SIGNALED_DOWN;
    let b = p.encode();
    assert_eq!(
        b,
        [
            0x23, 0xe0, 3, 24, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0x0f, 0x42, 0x40, 0, 0x04, 0x93, 0xe0, 0,
            0, 0, 0
        ]
    );
    assert_eq!(ControlPacket::decode(&b), Ok(p));
}

#[test]
fn validation() {
    let good = packet().encode();
    assert_eq!(
        ControlPacket::decode(&good[..23]),
        Err(PacketError::Truncated)
    );
    let mut b = good;
    b[0] = 2 << 5;
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::BadVersion(2)));
    let mut b = good;
    b[3] = 23;
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::BadLength(23)));
    let mut b = good;
    b[3] = 30; // longer than the datagram
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::BadLength(30)));
    let mut b = good;
    b[2] = 0;
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::ZeroDetectMult));
    let mut b = good;
    b[1] |= 0x01;
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::Multipoint));
    let mut p = packet();
    p.my_discriminator = 0;
    assert_eq!(
        ControlPacket::decode(&p.encode()),
        Err(PacketError::ZeroMyDiscriminator)
    );
    for st in [BfdState::Init, BfdState::Up] {
        let mut p = packet();
        p.state = st;
        assert_eq!(
            ControlPacket::decode(&p.encode()),
            Err(PacketError::ZeroYourDiscriminator(st))
        );
    }
    let mut p = packet();
    p.state = BfdState::AdminDown;
    assert!(ControlPacket::decode(&p.encode()).is_ok());
    // A bit: the mandatory section decodes; whether it is acceptable is the session's call
    // (`session_level_checks`).
    let mut b = good.to_vec();
    b[1] |= 0x04;
    b[3] = 27;
    b.extend_from_slice(&[1, 3, 1]);
    assert!(ControlPacket::decode(&b).is_ok_and(|p| p.auth_present));
    let mut b = good;
    b[1] |= 0x04;
    assert_eq!(ControlPacket::decode(&b), Err(PacketError::BadLength(24)));
}

#[test]
fn session_level_checks() {
    let mut s = BfdSession::new(cfg(1));
    let p = packet();
    assert_eq!(
        s.receive(&p.encode(), Some(254)),
        Err(PacketError::BadTtl {
            ttl: Some(254),
            min: 255
        })
    );
    assert_eq!(
        s.receive(&p.encode(), None),
        Err(PacketError::BadTtl {
            ttl: None,
            min: 255
        })
    );
    // A bit while no authentication is configured: we cannot verify it, so discard.
    let mut b = p.encode().to_vec();
    b[1] |= 0x04;
    b[3] = 27;
    b.extend_from_slice(&[1, 3, 1]);
    assert_eq!(
        s.receive(&b, Some(255)),
        Err(PacketError::Auth(AuthError::NotConfigured))
    );
    let mut wrong = packet();
    wrong.your_discriminator = 99;
    assert_eq!(
        s.receive(&wrong.encode(), Some(255)),
        Err(PacketError::WrongDiscriminator(99))
    );
    assert!(s.receive(&p.encode(), Some(255)).is_ok());
}

#[test]
fn three_way_handshake_between_two_sessions() {
    let mut a = BfdSession::new(cfg(1));
    let mut b = BfdSession::new(cfg(2));
    let a0 = sent(&a.start());
    let b0 = sent(&b.start());
    assert_eq!(a0[0].state, BfdState::Down);
    // A hears B's Down → Init; B hears A's Down → Init.
    let r = deliver(&mut a, b0[0]);
    assert_eq!(changes(&r), vec![(BfdState::Init, 0)]);
    let r = deliver(&mut b, a0[0]);
    assert_eq!(changes(&r), vec![(BfdState::Init, 0)]);
    // Next periodic packets carry Init and the learnt discriminators → Up.
    let pa = sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert_eq!((pa.state, pa.your_discriminator), (BfdState::Init, 2));
    let r = deliver(&mut b, pa);
    assert_eq!(changes(&r), vec![(BfdState::Up, 0)]);
    let pb = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))
        .into_iter()
        .next_back()
        .unwrap();
    let r = deliver(&mut a, pb);
    assert_eq!(changes(&r), vec![(BfdState::Up, 0)]);
    assert_eq!((a.state(), b.state()), (BfdState::Up, BfdState::Up));
}

#[test]
fn one_sided_handshake_via_init() {
    // Down hearing Init goes straight to Up.
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.state = BfdState::Init;
    p.your_discriminator = 1;
    assert_eq!(changes(&deliver(&mut s, p)), vec![(BfdState::Up, 0)]);
}

fn up_pair() -> (BfdSession, BfdSession) {
    let mut a = BfdSession::new(cfg(1));
    let mut b = BfdSession::new(cfg(2));
    let pa = sent(&a.start())[0];
    let pb = sent(&b.start())[0];
    deliver(&mut a, pb);
    deliver(&mut b, pa);
    for _ in 0..4 {
        for p in sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit))) {
            for q in sent(&deliver(&mut b, p)) {
                deliver(&mut a, q);
            }
        }
        for p in sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit))) {
            for q in sent(&deliver(&mut a, p)) {
                deliver(&mut b, q);
            }
        }
    }
    assert_eq!((a.state(), b.state()), (BfdState::Up, BfdState::Up));
    (a, b)
}

#[test]
fn slow_start_then_poll_final_to_fast_intervals() {
    let mut a = BfdSession::new(cfg(1));
    let first = sent(&a.start())[0];
    // Not Up: at least 1 s advertised and used.
    assert_eq!(first.desired_min_tx, 1_000_000);
    assert_eq!(a.tx_interval(), ms(1000));
    let (a, _b) = up_pair();
    // After the Poll sequence completed, 300 ms is both advertised and used.
    assert!(!a.poll_active());
    assert_eq!(a.tx_interval(), ms(300));
    assert_eq!(a.detection_time(), ms(900));
}

#[test]
fn becoming_up_starts_a_poll_sequence() {
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.state = BfdState::Init;
    p.your_discriminator = 1;
    let r = deliver(&mut s, p);
    let polls = sent(&r);
    assert_eq!(polls.len(), 1);
    assert!(polls[0].poll && polls[0].state == BfdState::Up);
    assert_eq!(polls[0].desired_min_tx, 300_000);
    // Decreasing the transmit interval takes effect at once, including the packet already
    // scheduled at the slow-start rate.
    assert_eq!(s.tx_interval(), ms(300));
    let rescheduled = r.iter().find_map(|a| match a {
        BfdAction::SetTimer(BfdTimer::Transmit, d) => Some(*d),
        _ => None,
    });
    assert!(rescheduled.is_some_and(|d| d <= ms(300)), "{r:?}");
    // Periodic packets keep the P bit until the Final arrives.
    let periodic = sent(&s.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert!(periodic.poll);
    let mut f = packet();
    f.state = BfdState::Up;
    f.your_discriminator = 1;
    f.final_ = true;
    deliver(&mut s, f);
    assert!(!s.poll_active());
    assert!(!sent(&s.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0].poll);
}

#[test]
fn parameter_change_while_up_waits_for_final() {
    let (mut a, mut b) = up_pair();
    // Slower transmission and faster detection must wait for the Final.
    let r = a.handle(BfdEvent::SetIntervals {
        desired_min_tx: ms(500),
        required_min_rx: ms(100),
    });
    let poll = sent(&r)[0];
    assert!(poll.poll);
    assert_eq!(poll.desired_min_tx, 500_000);
    assert_eq!(poll.required_min_rx, 100_000);
    assert_eq!(a.tx_interval(), ms(300), "old rate until Final");
    assert_eq!(a.detection_time(), ms(900), "old detection until Final");
    // B answers the Poll with a Final.
    let fin = sent(&deliver(&mut b, poll));
    assert!(fin.iter().any(|p| p.final_ && !p.poll));
    for p in fin {
        deliver(&mut a, p);
    }
    assert!(!a.poll_active());
    assert_eq!(a.tx_interval(), ms(500));
    // Detection uses max(our required rx, B's desired tx) × B's mult.
    assert_eq!(a.detection_time(), ms(900));
    // B must now transmit no faster than A can receive: max(B desired 300, A rx 100).
    assert_eq!(b.tx_interval(), ms(300));
}

#[test]
fn interval_negotiation() {
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.required_min_rx = 2_000_000; // peer can only receive every 2 s
    p.desired_min_tx = 50_000;
    p.detect_mult = 5;
    deliver(&mut s, p);
    assert_eq!(s.tx_interval(), ms(2000));
    // Detection: peer mult × max(our required rx 300 ms, peer desired 50 ms).
    assert_eq!(s.detection_time(), ms(1500));
}

#[test]
fn jitter_bounds() {
    for (mult, max_pct) in [(3u8, 100u128), (1, 90)] {
        let mut c = cfg(1);
        c.detect_mult = mult;
        let mut s = BfdSession::new(c);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..2000 {
            let r = s.handle(BfdEvent::TimerFired(BfdTimer::Transmit));
            let Some(BfdAction::SetTimer(BfdTimer::Transmit, d)) = r.last() else {
                panic!("{r:?}")
            };
            let pct = d.as_micros() * 100 / 1_000_000;
            assert!((75..=max_pct).contains(&pct), "{pct}% with mult {mult}");
            seen_low |= pct <= 77;
            seen_high |= pct >= max_pct - 2;
        }
        assert!(seen_low && seen_high, "jitter covers the range");
    }
}

#[test]
fn detection_timeout_brings_the_session_down() {
    let (mut a, _b) = up_pair();
    let r = a.handle(BfdEvent::TimerFired(BfdTimer::Detect));
    assert_eq!(
        changes(&r),
        vec![(BfdState::Down, diag::CONTROL_DETECTION_TIME_EXPIRED)]
    );
    assert_eq!(a.remote_discriminator(), 0);
    // Back to slow start.
    assert_eq!(a.tx_interval(), ms(1000));
    let p = sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert_eq!(
        (p.state, p.diag, p.your_discriminator),
        (BfdState::Down, 1, 0)
    );
    // In Down, a detection timeout changes nothing.
    assert!(changes(&a.handle(BfdEvent::TimerFired(BfdTimer::Detect))).is_empty());
}

#[test]
fn received_packet_rearms_detection() {
    let (mut a, mut b) = up_pair();
    let p = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let r = deliver(&mut a, p);
    assert_eq!(
        r.last(),
        Some(&BfdAction::SetTimer(BfdTimer::Detect, ms(900)))
    );
}

#[test]
fn neighbor_signals_down() {
    for remote in [BfdState::Down, BfdState::AdminDown] {
        let (mut a, _b) = up_pair();
        let mut p = packet();
        p.state = remote;
        p.your_discriminator = 1;
        let r = deliver(&mut a, p);
        assert_eq!(
            changes(&r),
            vec![(BfdState::Down, diag::NEIGHBOR_SIGNALED_DOWN)]
        );
    }
    // AdminDown from the peer while we are Down: stay Down, no Init.
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.state = BfdState::AdminDown;
    assert!(changes(&deliver(&mut s, p)).is_empty());
    assert_eq!(s.state(), BfdState::Down);
}

#[test]
fn local_admin_down_and_up() {
    let (mut a, mut b) = up_pair();
    let r = a.handle(BfdEvent::AdminDown);
    assert_eq!(
        changes(&r),
        vec![(BfdState::AdminDown, diag::ADMINISTRATIVELY_DOWN)]
    );
    let p = sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert_eq!((p.state, p.diag), (BfdState::AdminDown, 7));
    // The peer goes Down with "neighbor signaled down" (RFC 5882: not a path failure).
    assert_eq!(
        changes(&deliver(&mut b, p)),
        vec![(BfdState::Down, diag::NEIGHBOR_SIGNALED_DOWN)]
    );
    // Packets are ignored while AdminDown.
    let q = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert!(changes(&deliver(&mut a, q)).is_empty());
    assert_eq!(a.state(), BfdState::AdminDown);
    let r = a.handle(BfdEvent::AdminUp);
    assert_eq!(changes(&r), vec![(BfdState::Down, 0)]);
}

#[test]
fn poll_is_answered_with_final() {
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.poll = true;
    let r = deliver(&mut s, p);
    let f = sent(&r);
    assert!(f.iter().any(|x| x.final_ && !x.poll));
}

#[test]
fn passive_waits_for_the_peer() {
    let mut c = cfg(1);
    c.passive = true;
    let mut s = BfdSession::new(c);
    assert!(s.start().is_empty());
    assert!(
        s.handle(BfdEvent::TimerFired(BfdTimer::Transmit))
            .is_empty()
    );
    let r = deliver(&mut s, packet());
    assert!(
        r.iter()
            .any(|a| matches!(a, BfdAction::SetTimer(BfdTimer::Transmit, _)))
    );
    let p = sent(&s.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    assert_eq!((p.state, p.your_discriminator), (BfdState::Init, 7));
}

#[test]
fn zero_remote_min_rx_stops_periodic_transmission() {
    let mut s = BfdSession::new(cfg(1));
    let mut p = packet();
    p.required_min_rx = 0;
    deliver(&mut s, p);
    assert!(
        s.handle(BfdEvent::TimerFired(BfdTimer::Transmit))
            .is_empty()
    );
}

fn arb_packet() -> impl Strategy<Value = ControlPacket> {
    (
        0u8..32,
        0u8..4,
        any::<(bool, bool, bool, bool)>(),
        1u8..,
        1u32..,
        any::<u32>(),
        any::<(u32, u32, u32)>(),
    )
        .prop_map(|(diag, st, (p, f, c, d), mult, my, your, (tx, rx, echo))| {
            let state = BfdState::from_bits(st);
            ControlPacket {
                diag,
                state,
                poll: p,
                final_: f,
                control_plane_independent: c,
                auth_present: false,
                demand: d,
                multipoint: false,
                detect_mult: mult,
                my_discriminator: my,
                your_discriminator: if matches!(state, BfdState::Down | BfdState::AdminDown) {
                    your
                } else {
                    your.max(1)
                },
                desired_min_tx: tx,
                required_min_rx: rx,
                required_min_echo_rx: echo,
            }
        })
}

proptest! {
    #[test]
    fn roundtrip(p in arb_packet()) {
        prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), ttl: Option<u8>) {
        let _ = ControlPacket::decode(&bytes);
        let mut s = BfdSession::new(cfg(1));
        let _ = s.receive(&bytes, ttl);
    }

    #[test]
    fn random_packets_keep_the_session_sane(ps in proptest::collection::vec(arb_packet(), 0..40), timers in proptest::collection::vec(any::<bool>(), 0..40)) {
        let mut s = BfdSession::new(cfg(1));
        s.start();
        for (p, t) in ps.into_iter().zip(timers.into_iter().chain(std::iter::repeat(false))) {
            for a in s.handle(BfdEvent::Received(p)) {
                if let BfdAction::Send(q) = a {
                    prop_assert!(!(q.poll && q.final_));
                    prop_assert!(ControlPacket::decode(&q.encode()).is_ok() || q.your_discriminator == 0);
                }
            }
            if t {
                s.handle(BfdEvent::TimerFired(BfdTimer::Detect));
            }
            if s.state() != BfdState::Up {
                prop_assert!(s.tx_interval() >= SLOW_START_TX);
            }
        }
    }
}

/// Seen against FRR: it answers our Down with Init advertising Required Min RX 1 s (slow
/// start), then polls down to 300 ms once Up. Our next packet was still scheduled at the 1 s
/// rate, ~850 ms after FRR had already shrunk its detection time to 900 ms: the session flapped
/// whenever the speaker was a little late.
#[test]
fn peer_leaving_slow_start_reschedules_our_next_packet() {
    let mut s = BfdSession::new(cfg(1));
    s.start();
    let mut init = packet();
    init.state = BfdState::Init;
    init.your_discriminator = 1;
    init.desired_min_tx = 1_000_000;
    init.required_min_rx = 1_000_000;
    let r = deliver(&mut s, init);
    assert_eq!(changes(&r), vec![(BfdState::Up, 0)]);
    assert_eq!(s.tx_interval(), ms(1000), "the peer still asks for 1 s");
    let mut poll = init;
    poll.state = BfdState::Up;
    poll.poll = true;
    poll.desired_min_tx = 300_000;
    poll.required_min_rx = 300_000;
    let r = deliver(&mut s, poll);
    assert_eq!(s.tx_interval(), ms(300));
    let next = r.iter().find_map(|a| match a {
        BfdAction::SetTimer(BfdTimer::Transmit, d) => Some(*d),
        _ => None,
    });
    assert!(next.is_some_and(|d| d <= ms(300)), "{r:?}");
    // An unchanged interval leaves the schedule alone.
    let mut steady = poll;
    steady.poll = false;
    let r = deliver(&mut s, steady);
    assert!(
        !r.iter()
            .any(|a| matches!(a, BfdAction::SetTimer(BfdTimer::Transmit, _))),
        "{r:?}"
    );
}

#[test]
fn minimum_ttl_is_enforced() {
    // Default (minimumTtl unset): 255 only, as RFC 5881 requires.
    assert_eq!(BfdConfig::new(1).min_ttl, 255);
    let mut c = cfg(1);
    c.min_ttl = 250;
    let mut s = BfdSession::new(c);
    let p = packet();
    for ttl in [250, 251, 255] {
        assert!(s.receive(&p.encode(), Some(ttl)).is_ok(), "TTL {ttl}");
    }
    for ttl in [Some(249), Some(1), Some(0), None] {
        assert_eq!(
            s.receive(&p.encode(), ttl),
            Err(PacketError::BadTtl { ttl, min: 250 })
        );
    }
    // Changed at run time (a BFDProfile edit): the next packet is judged by the new value.
    s.set_min_ttl(255);
    assert!(s.receive(&p.encode(), Some(254)).is_err());
    assert!(s.receive(&p.encode(), Some(255)).is_ok());
}

fn auth_cfg(disc: u32, kind: AuthType, key: &[u8]) -> BfdConfig {
    BfdConfig {
        auth: Some(AuthKey::new(kind, 1, key).unwrap()),
        ..cfg(disc)
    }
}

/// Delivers every packet `from` sends in `actions` to `to`, sealed as the runtime does.
fn relay(from: &mut BfdSession, actions: &[BfdAction], to: &mut BfdSession) -> Vec<BfdAction> {
    let mut out = Vec::new();
    for p in sent(actions) {
        let w = from.seal(&p);
        out.extend(
            to.receive(w.as_bytes(), Some(255))
                .expect("authentic packet"),
        );
    }
    out
}

/// Two authenticated sessions brought Up by exchanging sealed packets.
fn authenticated_up_pair(kind: AuthType) -> (BfdSession, BfdSession) {
    let mut a = BfdSession::new(auth_cfg(1, kind, b"key"));
    let mut b = BfdSession::new(auth_cfg(2, kind, b"key"));
    a.set_xmit_auth_seq(1000);
    b.set_xmit_auth_seq(u32::MAX - 3); // wraps during the test
    let sa = a.start();
    let sb = b.start();
    relay(&mut a, &sa, &mut b);
    relay(&mut b, &sb, &mut a);
    for _ in 0..4 {
        let r = a.handle(BfdEvent::TimerFired(BfdTimer::Transmit));
        let back = relay(&mut a, &r, &mut b);
        relay(&mut b, &back, &mut a);
        let r = b.handle(BfdEvent::TimerFired(BfdTimer::Transmit));
        let back = relay(&mut b, &r, &mut a);
        relay(&mut a, &back, &mut b);
    }
    assert_eq!((a.state(), b.state()), (BfdState::Up, BfdState::Up));
    (a, b)
}

#[test]
fn authenticated_sessions_come_up_in_every_mode() {
    for kind in [
        AuthType::KeyedMd5,
        AuthType::MeticulousKeyedMd5,
        AuthType::KeyedSha1,
        AuthType::MeticulousKeyedSha1,
    ] {
        let (mut a, _) = authenticated_up_pair(kind);
        let p = sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
        assert!(p.auth_present);
        let w = a.seal(&p);
        assert_eq!(w.as_bytes().len(), PACKET_LEN + kind.section_len());
        assert_eq!(usize::from(w.as_bytes()[3]), w.as_bytes().len());
    }
}

/// The lab attack (issue 9): a Down with the router's address and TTL 255 tore the session
/// down. With authentication it is dropped and changes nothing, however it is dressed.
#[test]
fn spoofed_down_is_ignored_with_authentication() {
    let (mut a, mut b) = authenticated_up_pair(AuthType::MeticulousKeyedSha1);
    let mut down = packet();
    down.state = BfdState::Down;
    down.my_discriminator = 2;
    down.your_discriminator = 1;
    let before = a.clone();
    // No authentication at all.
    assert_eq!(
        a.receive(&down.encode(), Some(255)),
        Err(PacketError::Auth(AuthError::Missing))
    );
    // Signed with the wrong key.
    let mut forger = BfdSession::new(auth_cfg(2, AuthType::MeticulousKeyedSha1, b"guess"));
    let forged = forger.seal(&ControlPacket {
        auth_present: true,
        ..down
    });
    assert_eq!(
        a.receive(forged.as_bytes(), Some(255)),
        Err(PacketError::Auth(AuthError::BadDigest))
    );
    // A real packet of the peer, replayed.
    let real = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&real);
    assert!(a.receive(w.as_bytes(), Some(255)).is_ok());
    let after_real = a.clone();
    assert!(matches!(
        a.receive(w.as_bytes(), Some(255)),
        Err(PacketError::Auth(AuthError::Sequence { .. }))
    ));
    assert_eq!(a.state(), BfdState::Up);
    assert_eq!(format!("{a:?}"), format!("{after_real:?}"));
    assert_eq!(before.state(), BfdState::Up);
    // The peer's genuine Down still counts.
    let _ = b.handle(BfdEvent::AdminDown);
    let genuine = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&genuine);
    let r = a.receive(w.as_bytes(), Some(255)).unwrap();
    assert_eq!(
        changes(&r),
        vec![(BfdState::Down, diag::NEIGHBOR_SIGNALED_DOWN)]
    );
}

#[test]
fn auth_sequence_is_forgotten_after_twice_the_detection_time() {
    let (mut a, _) = authenticated_up_pair(AuthType::MeticulousKeyedSha1);
    // One silent detection time: Down, and the reset is scheduled one detection time later.
    let r = a.handle(BfdEvent::TimerFired(BfdTimer::Detect));
    assert!(
        r.contains(&BfdAction::SetTimer(BfdTimer::AuthSeqReset, ms(900))),
        "{r:?}"
    );
    // The peer restarted with a new random sequence number: refused until the reset...
    let mut restarted = BfdSession::new(auth_cfg(2, AuthType::MeticulousKeyedSha1, b"key"));
    restarted.set_xmit_auth_seq(1_000_000);
    let p = sent(&restarted.start())[0];
    let w = restarted.seal(&p);
    assert!(a.receive(w.as_bytes(), Some(255)).is_err());
    a.handle(BfdEvent::TimerFired(BfdTimer::AuthSeqReset));
    // ...then accepted.
    let w = restarted.seal(&p);
    assert!(a.receive(w.as_bytes(), Some(255)).is_ok());

    // A packet before the reset fires cancels it.
    let (mut a, mut b) = authenticated_up_pair(AuthType::KeyedSha1);
    a.handle(BfdEvent::TimerFired(BfdTimer::Detect));
    let p = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&p);
    let r = a.receive(w.as_bytes(), Some(255)).unwrap();
    assert_eq!(
        r.first(),
        Some(&BfdAction::CancelTimer(BfdTimer::AuthSeqReset))
    );
    // Without authentication no such timer exists.
    let (mut plain, _) = up_pair();
    let r = plain.handle(BfdEvent::TimerFired(BfdTimer::Detect));
    assert!(
        !r.iter()
            .any(|x| matches!(x, BfdAction::SetTimer(BfdTimer::AuthSeqReset, _)))
    );
}

#[test]
fn key_change_applies_to_the_next_packet() {
    let (mut a, mut b) = authenticated_up_pair(AuthType::KeyedSha1);
    let new = AuthKey::new(AuthType::KeyedSha1, 2, b"rotated").unwrap();
    a.set_auth(Some(new), 0);
    let p = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&p);
    assert_eq!(
        a.receive(w.as_bytes(), Some(255)),
        Err(PacketError::Auth(AuthError::WrongKeyId(1)))
    );
    b.set_auth(Some(new), 0);
    let p = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&p);
    assert!(a.receive(w.as_bytes(), Some(255)).is_ok());
    // Turned off on one side only: the other drops its packets.
    a.set_auth(None, 0);
    let p = sent(&b.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0];
    let w = b.seal(&p);
    assert_eq!(
        a.receive(w.as_bytes(), Some(255)),
        Err(PacketError::Auth(AuthError::NotConfigured))
    );
    assert!(!sent(&a.handle(BfdEvent::TimerFired(BfdTimer::Transmit)))[0].auth_present);
}

#[test]
fn drop_reasons_are_a_small_fixed_set() {
    let errors = [
        PacketError::Truncated,
        PacketError::BadTtl {
            ttl: None,
            min: 255,
        },
        PacketError::WrongDiscriminator(3),
        PacketError::Auth(AuthError::Missing),
        PacketError::Auth(AuthError::BadDigest),
        PacketError::Auth(AuthError::Sequence { seq: 1, last: 2 }),
    ];
    let reasons: Vec<&str> = errors.iter().map(PacketError::reason).collect();
    assert_eq!(
        reasons,
        [
            "malformed",
            "ttl",
            "discriminator",
            "auth_missing",
            "auth_digest",
            "auth_sequence"
        ]
    );
}
