use super::*;
use crate::bgp::codec::{CodecOptions, Notification, Open, PathAttribute, Update};
use crate::bgp::fsm::PeerAsn;
use crate::bgp::prefix::{Family, NextHop, Prefix};
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::TcpListener;

mod lab;

/// A scripted fake router speaking our own codec over loopback.
struct FakePeer {
    stream: TcpStream,
    buf: BytesMut,
}

impl FakePeer {
    async fn recv(&mut self) -> Message {
        loop {
            if let Some((m, n)) = codec::decode_frame(&self.buf, &CodecOptions::default()).unwrap()
            {
                self.buf.advance(n);
                return m;
            }
            let n =
                tokio::time::timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("peer timed out waiting for a message")
                    .unwrap();
            assert!(n > 0, "speaker closed the connection");
        }
    }

    /// Skips KEEPALIVEs until a NOTIFICATION arrives; anything else fails the test.
    async fn notification(&mut self) -> Notification {
        loop {
            match self.recv().await {
                Message::Notification(n) => return n,
                Message::Keepalive => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn send(&mut self, m: Message) {
        let b = m.encode(&CodecOptions::default()).unwrap();
        self.stream.write_all(&b).await.unwrap();
    }

    /// Reads UPDATEs until both End-of-RIB markers arrived; returns the announced prefixes.
    async fn initial_table(&mut self) -> Vec<Prefix> {
        let mut announced = Vec::new();
        let mut eor = 0;
        while eor < 2 {
            match self.recv().await {
                Message::Update(u) => {
                    if u.end_of_rib().is_some() {
                        eor += 1;
                    }
                    announced.extend(announced_in(&u));
                }
                Message::Keepalive => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        announced
    }
}

fn announced_in(u: &Update) -> Vec<Prefix> {
    let mut v = u.nlri.clone();
    for a in &u.attributes {
        if let PathAttribute::MpReach { nlri, .. } = a {
            v.extend(nlri.iter().copied());
        }
    }
    v
}

fn withdrawn_in(u: &Update) -> Vec<Prefix> {
    let mut v = u.withdrawn.clone();
    for a in &u.attributes {
        if let PathAttribute::MpUnreach { withdrawn, .. } = a {
            v.extend(withdrawn.iter().copied());
        }
    }
    v
}

fn route(s: &str) -> Route {
    let prefix: Prefix = s.parse().unwrap();
    let nh = match prefix.family() {
        Family::Ipv4Unicast => NextHop::V4(Ipv4Addr::LOCALHOST),
        Family::Ipv6Unicast => NextHop::v6("fd00::1".parse().unwrap()),
    };
    Route::new(prefix, nh)
}

async fn setup(hold: u16) -> (TcpListener, SessionConfig) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut peer = PeerConfig::new(64512, PeerAsn::Fixed(64513), Ipv4Addr::new(198, 18, 0, 1));
    peer.hold_time = hold;
    peer.connect_time = Duration::from_millis(100);
    let mut transport = TransportConfig::new(listener.local_addr().unwrap());
    transport.source = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    (listener, SessionConfig { peer, transport })
}

async fn handshake(listener: &TcpListener, hold: u16) -> FakePeer {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut p = FakePeer {
        stream,
        buf: BytesMut::new(),
    };
    let Message::Open(open) = p.recv().await else {
        panic!("expected OPEN")
    };
    assert_eq!(open.asn(), 64512);
    let caps = vec![
        codec::Capability::Multiprotocol { afi: 1, safi: 1 },
        codec::Capability::Multiprotocol { afi: 2, safi: 1 },
        codec::Capability::FourOctetAs(64513),
    ];
    p.send(Message::Open(Open::new(
        64513,
        hold,
        Ipv4Addr::new(198, 18, 0, 2),
        caps,
    )))
    .await;
    p.send(Message::Keepalive).await;
    assert_eq!(p.recv().await, Message::Keepalive);
    p
}

async fn wait_state(status: &mut watch::Receiver<SessionStatus>, want: State) -> SessionStatus {
    let s = tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| s.state == want))
        .await
        .expect("state not reached")
        .unwrap();
    s.clone()
}

#[tokio::test]
async fn session_against_fake_peer() {
    let (listener, cfg) = setup(30).await;
    let (routes_tx, routes_rx) = watch::channel(
        [route("198.18.0.10"), route("fd00::10")]
            .into_iter()
            .collect(),
    );
    let handle = spawn(cfg, routes_rx, None);
    let mut status = handle.status();
    let mut peer = handshake(&listener, 30).await;
    let mut table = peer.initial_table().await;
    table.sort();
    assert_eq!(
        table,
        vec!["198.18.0.10".parse().unwrap(), "fd00::10".parse().unwrap()]
    );
    let s = wait_state(&mut status, State::Established).await;
    assert_eq!(s.prefixes_sent, 2);
    assert_eq!(s.established_count, 1);

    // Diff: withdraw the IPv4 route, add another.
    routes_tx.send_replace(
        [route("198.18.0.11"), route("fd00::10")]
            .into_iter()
            .collect(),
    );
    let mut wd = Vec::new();
    let mut an = Vec::new();
    while wd.is_empty() || an.is_empty() {
        if let Message::Update(u) = peer.recv().await {
            wd.extend(withdrawn_in(&u));
            an.extend(announced_in(&u));
        }
    }
    assert_eq!(wd, vec!["198.18.0.10".parse().unwrap()]);
    assert_eq!(an, vec!["198.18.0.11".parse().unwrap()]);

    // Shutdown sends Cease / Administrative Shutdown, then closes.
    let stop = tokio::spawn(handle.shutdown(StopReason::Shutdown));
    assert_eq!(
        peer.notification().await,
        Notification::cease(codec::err::ADMINISTRATIVE_SHUTDOWN)
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), peer.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "connection closed after the Cease");
    stop.await.unwrap();
    assert_eq!(status.borrow().state, State::Idle);
}

#[tokio::test]
async fn cease_flag_stops_the_session_without_the_handle() {
    let (listener, cfg) = setup(30).await;
    let (_routes_tx, routes_rx) = watch::channel([route("198.18.0.10")].into_iter().collect());
    let (cease, cease_rx) = watch::channel(None);
    let handle = spawn_with_cease(cfg.clone(), routes_rx.clone(), None, Some(cease_rx.clone()));
    let mut status = handle.status();
    let mut peer = handshake(&listener, 30).await;
    peer.initial_table().await;
    wait_state(&mut status, State::Established).await;
    // The handle stays with its owner (a busy main loop); the flag alone stops the session.
    let t = Instant::now();
    cease.send_replace(Some(StopReason::Shutdown));
    assert_eq!(
        peer.notification().await,
        Notification::cease(codec::err::ADMINISTRATIVE_SHUTDOWN)
    );
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    wait_state(&mut status, State::Idle).await;
    handle.shutdown(StopReason::Shutdown).await;
    // A session started afterwards never connects.
    let late = spawn_with_cease(cfg, routes_rx, None, Some(cease_rx));
    let accepted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "a session started after the Cease connected"
    );
    assert_eq!(late.status().borrow().state, State::Idle);
    late.shutdown(StopReason::Shutdown).await;
}

/// A planned restart (SIGTERM on a node in service) towards a peer that negotiated graceful
/// restart: the connection closes with no NOTIFICATION, so the router keeps our routes.
#[tokio::test]
async fn planned_restart_closes_without_notification_when_graceful_restart_was_negotiated() {
    let (listener, mut cfg) = setup(30).await;
    cfg.peer.graceful_restart = Some(crate::bgp::fsm::GracefulRestartConfig {
        restart_time: 120,
        forwarding_state: true,
        restarting: true,
    });
    let (_routes_tx, routes_rx) = watch::channel([route("198.18.0.10")].into_iter().collect());
    let (cease, cease_rx) = watch::channel(None);
    let handle = spawn_with_cease(cfg, routes_rx, None, Some(cease_rx));
    let mut status = handle.status();
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut peer = FakePeer {
        stream,
        buf: BytesMut::new(),
    };
    let Message::Open(open) = peer.recv().await else {
        panic!("expected OPEN")
    };
    let gr = open
        .graceful_restart()
        .expect("graceful restart capability");
    assert!(gr.restart_state, "a new process sets the Restart State bit");
    let caps = vec![
        codec::Capability::Multiprotocol { afi: 1, safi: 1 },
        codec::Capability::FourOctetAs(64513),
        codec::Capability::GracefulRestart(codec::GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 120,
            families: vec![],
        }),
    ];
    let open = Open::new(64513, 30, Ipv4Addr::new(198, 18, 0, 2), caps);
    peer.send(Message::Open(open)).await;
    peer.send(Message::Keepalive).await;
    assert_eq!(peer.recv().await, Message::Keepalive);
    wait_state(&mut status, State::Established).await;
    while let Message::Update(u) = peer.recv().await {
        if u.end_of_rib().is_some() {
            break;
        }
    }
    cease.send_replace(Some(StopReason::Restart));
    // Everything up to the close is keepalives at most: no NOTIFICATION.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), peer.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    peer.buf.extend_from_slice(&rest);
    while let Some((m, n)) = codec::decode_frame(&peer.buf, &CodecOptions::default()).unwrap() {
        peer.buf.advance(n);
        assert_eq!(m, Message::Keepalive, "sent before closing");
    }
    wait_state(&mut status, State::Idle).await;
    handle.shutdown(StopReason::Restart).await;
}

#[tokio::test]
async fn keepalives_flow_and_hold_timer_expires() {
    let (listener, cfg) = setup(3).await;
    let (_routes_tx, routes_rx) = watch::channel(BTreeSet::new());
    let handle = spawn(cfg, routes_rx, None);
    let mut status = handle.status();
    let mut peer = handshake(&listener, 3).await;
    peer.initial_table().await;
    // With hold 3 s, keepalives come every second.
    let start = Instant::now();
    for _ in 0..2 {
        assert_eq!(peer.recv().await, Message::Keepalive);
    }
    assert!(start.elapsed() < Duration::from_millis(2900));
    // We stay silent: the speaker's hold timer expires and it tells us so.
    assert_eq!(
        peer.notification().await,
        Notification::hold_timer_expired()
    );
    let s = wait_state(&mut status, State::Idle).await;
    assert!(s.last_error.unwrap().contains("Hold Timer Expired"));
    // And it reconnects by itself.
    let _again = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    handle.shutdown(StopReason::Shutdown).await;
}

#[tokio::test]
async fn malformed_input_gets_the_right_notification() {
    let (listener, cfg) = setup(30).await;
    let (_routes_tx, routes_rx) = watch::channel(BTreeSet::new());
    let handle = spawn(cfg, routes_rx, None);
    let mut peer = handshake(&listener, 30).await;
    peer.initial_table().await;
    // A KEEPALIVE with a bad marker.
    let mut bad = Message::Keepalive
        .encode(&CodecOptions::default())
        .unwrap()
        .to_vec();
    bad[0] = 0;
    peer.stream.write_all(&bad).await.unwrap();
    let n = peer.notification().await;
    assert_eq!((n.code, n.subcode), (1, 1));
    handle.shutdown(StopReason::Shutdown).await;
}

#[tokio::test]
async fn bfd_down_resets_the_session() {
    let (listener, cfg) = setup(30).await;
    let (_routes_tx, routes_rx) = watch::channel(BTreeSet::new());
    let (bfd_tx, bfd_rx) = watch::channel(true);
    let handle = spawn(cfg, routes_rx, Some(bfd_rx));
    let mut status = handle.status();
    let mut peer = handshake(&listener, 30).await;
    peer.initial_table().await;
    wait_state(&mut status, State::Established).await;
    bfd_tx.send_replace(false);
    assert_eq!(
        peer.notification().await,
        Notification::cease(codec::err::BFD_DOWN)
    );
    let s = wait_state(&mut status, State::Idle).await;
    assert!(s.last_error.unwrap().contains("BFD"));
    handle.shutdown(StopReason::Shutdown).await;
}

#[tokio::test]
async fn unreachable_peer_backs_off() {
    // A port nobody listens on: connection refused, retried with backoff.
    let (listener, cfg) = setup(30).await;
    drop(listener);
    let (_routes_tx, routes_rx) = watch::channel(BTreeSet::new());
    let handle = spawn(cfg, routes_rx, None);
    let mut status = handle.status();
    let s = tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("connect"))
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert!(matches!(s.state, State::Active | State::Connect));
    handle.shutdown(StopReason::Shutdown).await;
}

/// BFD with 50 ms timers, so tests see it come up and fail quickly.
fn fast_bfd(local_discriminator: u32) -> crate::bgp::bfd::BfdConfig {
    let mut c = crate::bgp::bfd::BfdConfig::new(local_discriminator);
    c.desired_min_tx = Duration::from_millis(50);
    c.required_min_rx = Duration::from_millis(50);
    c
}

async fn wait_bfd_up<const N: usize>(ups: [&mut watch::Receiver<bool>; N]) {
    for up in ups {
        tokio::time::timeout(Duration::from_secs(5), up.wait_for(|u| *u))
            .await
            .expect("BFD up")
            .unwrap();
    }
}

#[tokio::test]
async fn bfd_sessions_come_up_and_signal_down() {
    use crate::bgp::bfd::BfdState;
    let a_ip: IpAddr = "127.0.0.1".parse().unwrap();
    let b_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let ca = fast_bfd(0x1111);
    let mut cb = fast_bfd(0x2222);
    cb.passive = true;
    let (Ok(a), Ok(b)) = (spawn_bfd(a_ip, b_ip, ca), spawn_bfd(b_ip, a_ip, cb)) else {
        // Port 3784 may be in use on a shared machine; the lab test covers BFD too.
        return;
    };
    let (mut up_a, mut up_b) = (a.up(), b.up());
    wait_bfd_up([&mut up_a, &mut up_b]).await;
    assert_eq!(b.status().borrow().remote_discriminator, 0x1111);
    // Stopping A sends AdminDown: B goes Down with "neighbor signaled session down", but that
    // is not a path failure, so BGP is not told (RFC 5882 §3.2).
    a.shutdown().await;
    let mut st = b.status();
    let s = *tokio::time::timeout(
        Duration::from_secs(5),
        st.wait_for(|s| s.state == BfdState::Down),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(s.diag, crate::bgp::bfd::diag::NEIGHBOR_SIGNALED_DOWN);
    assert!(*up_b.borrow_and_update());
    b.shutdown().await;
}

#[tokio::test]
async fn bfd_detects_a_silent_peer() {
    use crate::bgp::bfd::BfdState;
    let a_ip: IpAddr = "127.0.0.4".parse().unwrap();
    let b_ip: IpAddr = "127.0.0.5".parse().unwrap();
    let (Ok(a), Ok(b)) = (
        spawn_bfd(a_ip, b_ip, fast_bfd(7)),
        spawn_bfd(b_ip, a_ip, fast_bfd(8)),
    ) else {
        return;
    };
    let (mut up_a, mut up_b) = (a.up(), b.up());
    wait_bfd_up([&mut up_a, &mut up_b]).await;
    // Let the Poll sequences that end slow start complete (a few 50 ms packets).
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A vanishes without a word (crash, cable cut): B's detection timer fires.
    a.abort();
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), up_b.wait_for(|u| !*u))
        .await
        .expect("failure detected")
        .unwrap();
    let s = *b.status().borrow();
    assert_eq!(
        (s.state, s.diag),
        (
            BfdState::Down,
            crate::bgp::bfd::diag::CONTROL_DETECTION_TIME_EXPIRED
        )
    );
    // 3 × 50 ms (plus the Poll sequence settling), far below any BGP hold time.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    b.shutdown().await;
}
