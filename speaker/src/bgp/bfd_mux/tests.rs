use super::demux::recipient;
use super::drops::DROP_LOG_INTERVAL;
use super::*;
use std::time::Duration;

use crate::bgp::bfd::{ControlPacket, PACKET_LEN};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fast(disc: u32) -> BfdConfig {
    let mut c = BfdConfig::new(disc);
    c.desired_min_tx = Duration::from_millis(50);
    c.required_min_rx = Duration::from_millis(50);
    c
}

fn packet(my: u32, your: u32) -> [u8; PACKET_LEN] {
    ControlPacket {
        state: if your == 0 {
            BfdState::Down
        } else {
            BfdState::Up
        },
        my_discriminator: my,
        your_discriminator: your,
        desired_min_tx: 300_000,
        ..crate::bgp::bfd::tests::packet()
    }
    .encode()
}

/// Spawns `(local, peer, config)` sessions in `mux`; `None` (and the test skips) when the
/// sockets cannot be had.
fn spawn_all<const N: usize>(
    mux: &BfdMux,
    sessions: [(IpAddr, IpAddr, BfdConfig); N],
) -> Option<[BfdHandle; N]> {
    let spawned: Vec<_> = sessions
        .into_iter()
        .map(|(local, peer, config)| mux.spawn(local, peer, config))
        .collect();
    match spawned.into_iter().collect::<io::Result<Vec<_>>>() {
        Ok(handles) => handles.try_into().ok(),
        Err(_) => {
            eprintln!("skipped: UDP 3784 is taken on these loopback addresses");
            None
        }
    }
}

/// A Down packet as `h`'s peer would send it: right discriminators, no authentication.
fn spoofed_down(h: &BfdHandle) -> ControlPacket {
    let st = *h.status().borrow();
    let mut down =
        ControlPacket::decode(&packet(st.remote_discriminator, st.local_discriminator)).unwrap();
    down.state = BfdState::Down;
    down
}

/// Sessions the mux holds.
fn session_count(mux: &BfdMux) -> usize {
    lock(&mux.inner).sessions.len()
}

async fn wait_up(h: &BfdHandle) {
    let mut up = h.up();
    tokio::time::timeout(Duration::from_secs(5), up.wait_for(|u| *u))
        .await
        .expect("BFD up in time")
        .unwrap();
}

#[test]
fn packets_are_routed_by_discriminator_then_by_source() {
    let (a, b) = (ip("198.18.0.2"), ip("198.18.0.3"));
    let (tx_a, _rx_a) = mpsc::channel(1);
    let (tx_b, _rx_b) = mpsc::channel(1);
    let mut t = Table::default();
    t.by_discriminator.insert(10, Inbox { peer: a, tx: tx_a });
    t.by_discriminator.insert(20, Inbox { peer: b, tx: tx_b });
    t.by_peer.insert(a, 10);
    t.by_peer.insert(b, 20);
    let to = |bytes: &[u8], from| {
        recipient(&t, bytes, from).map(|s| s.same_channel(&t.by_discriminator[&10].tx))
    };
    // Your Discriminator selects the session.
    assert_eq!(to(&packet(7, 10), a), Some(true));
    assert_eq!(to(&packet(7, 20), b), Some(false));
    // Zero: the source address does.
    assert_eq!(to(&packet(7, 0), a), Some(true));
    assert_eq!(to(&packet(7, 0), b), Some(false));
    // A discriminator of another peer's session, an unknown one, an unknown source, a runt.
    assert_eq!(to(&packet(7, 20), a), None);
    assert_eq!(to(&packet(7, 99), a), None);
    assert_eq!(to(&packet(7, 0), ip("198.18.0.4")), None);
    assert_eq!(to(&packet(7, 10)[..20], a), None);
}

/// The known gap this module closes: one node address, two routers. Each binding 3784 on its
/// own would fail (or steal the other's packets).
#[tokio::test]
async fn one_local_address_serves_several_peers() {
    let node = ip("127.0.1.1");
    let (r1, r2) = (ip("127.0.1.2"), ip("127.0.1.3"));
    let mux = BfdMux::default();
    let Some([a1, a2, b1, b2]) = spawn_all(
        &mux,
        [
            (node, r1, fast(1)),
            (node, r2, fast(1)),
            (r1, node, fast(100)),
            (r2, node, fast(200)),
        ],
    ) else {
        return;
    };
    for h in [&a1, &a2, &b1, &b2] {
        wait_up(h).await;
    }
    // Both of the node's sessions asked for discriminator 1; they got distinct ones, and each
    // router sees its own.
    let (d1, d2) = (
        a1.status().borrow().local_discriminator,
        a2.status().borrow().local_discriminator,
    );
    assert_ne!(d1, d2);
    assert_eq!(b1.status().borrow().remote_discriminator, d1);
    assert_eq!(b2.status().borrow().remote_discriminator, d2);
    assert_eq!(
        a1.status().borrow().remote_discriminator,
        b1.status().borrow().local_discriminator
    );
    assert_eq!(
        a2.status().borrow().remote_discriminator,
        b2.status().borrow().local_discriminator
    );

    // One router dies silently: only its session goes down.
    b1.abort();
    let mut up1 = a1.up();
    tokio::time::timeout(Duration::from_secs(2), up1.wait_for(|u| !*u))
        .await
        .expect("failure detected")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(*a2.up().borrow(), "the other router's session stays up");
    assert!(a2.status().borrow().packets_dropped == 0);
    for h in [a1, a2, b2] {
        h.shutdown().await;
    }
    drop(b1);
    assert_eq!(session_count(&mux), 0);
}

#[tokio::test]
async fn handles_to_one_peer_share_a_session() {
    let (node, router) = (ip("127.0.1.11"), ip("127.0.1.12"));
    let mux = BfdMux::default();
    let Some([a, b, r]) = spawn_all(
        &mux,
        [
            (node, router, fast(5)),
            (node, router, fast(5)),
            (router, node, fast(6)),
        ],
    ) else {
        return;
    };
    assert_eq!(session_count(&mux), 2);
    wait_up(&a).await;
    assert!(*b.up().borrow());
    assert_eq!(
        a.status().borrow().local_discriminator,
        b.status().borrow().local_discriminator
    );
    // Releasing one reference keeps the session; the router sees nothing.
    a.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.status().borrow().state, BfdState::Up);
    // A new reference with other timers reconfigures the shared session.
    let mut slower = fast(5);
    slower.desired_min_tx = Duration::from_millis(80);
    let c = mux.spawn(node, router, slower).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r.status().borrow().state, BfdState::Up);
    // The last reference going sends AdminDown: the router goes Down at once.
    b.shutdown().await;
    c.shutdown().await;
    let mut st = r.status();
    tokio::time::timeout(
        Duration::from_millis(200),
        st.wait_for(|s| s.state == BfdState::Down),
    )
    .await
    .expect("AdminDown seen")
    .unwrap();
    r.shutdown().await;
    assert_eq!(session_count(&mux), 0);
}

#[tokio::test]
async fn a_dropped_handle_stops_its_session() {
    let (node, router) = (ip("127.0.1.21"), ip("127.0.1.22"));
    let mux = BfdMux::default();
    let Some([a, r]) = spawn_all(&mux, [(node, router, fast(9)), (router, node, fast(9))]) else {
        return;
    };
    wait_up(&a).await;
    // Both asked for 9; within one mux (one node) discriminators are unique.
    assert_ne!(
        a.status().borrow().local_discriminator,
        r.status().borrow().local_discriminator
    );
    drop(a);
    let mut st = r.status();
    tokio::time::timeout(
        Duration::from_secs(1),
        st.wait_for(|s| s.state == BfdState::Down),
    )
    .await
    .expect("AdminDown seen")
    .unwrap();
    assert_eq!(session_count(&mux), 1);
    r.shutdown().await;
}

#[test]
fn drop_log_is_bounded() {
    let mut log = DropLog::default();
    let t0 = Instant::now();
    assert_eq!(log.allow(t0), Some(0));
    for i in 1..=1000u64 {
        assert_eq!(log.allow(t0 + Duration::from_millis(i)), None);
    }
    assert_eq!(log.allow(t0 + DROP_LOG_INTERVAL), Some(1000));
    assert_eq!(log.allow(t0 + DROP_LOG_INTERVAL), None);
}

fn dropped(peer: IpAddr, reason: &'static str) -> u64 {
    dropped_packets()
        .get_or_create(&DropLabels {
            peer: peer.to_string(),
            reason,
        })
        .get()
}

/// Sends `bytes` to `to`:3784 from `from` with TTL 255, as a host on the link can.
async fn spoof(from: IpAddr, to: IpAddr, bytes: &[u8]) {
    let s = UdpSocket::bind((from, 0)).await.unwrap();
    s.set_ttl(255).unwrap();
    s.send_to(bytes, (to, 3784)).await.unwrap();
}

fn with_key(mut c: BfdConfig, key: &[u8]) -> BfdConfig {
    use crate::bgp::bfd::{AuthKey, AuthType};
    c.auth = Some(AuthKey::new(AuthType::MeticulousKeyedSha1, 1, key).unwrap());
    c
}

/// End to end over real sockets: authenticated sessions come up, and a spoofed Down (right
/// source address, TTL 255, right discriminators) without authentication or with a guessed key
/// is dropped, counted, and leaves the session Up.
#[tokio::test]
async fn authenticated_session_ignores_spoofed_down() {
    let (node, router) = (ip("127.0.1.31"), ip("127.0.1.32"));
    let mux = BfdMux::default();
    let Some([a, r]) = spawn_all(
        &mux,
        [
            (node, router, with_key(fast(31), b"s3cret")),
            (router, node, with_key(fast(32), b"s3cret")),
        ],
    ) else {
        return;
    };
    wait_up(&a).await;
    let before_missing = dropped(router, "auth_missing");
    let before_digest = dropped(router, "auth_digest");
    let mut down = spoofed_down(&a);
    down.diag = 3;
    let theirs = down.my_discriminator;
    for _ in 0..5 {
        spoof(router, node, &down.encode()).await;
    }
    let mut forger = BfdSession::new(with_key(BfdConfig::new(theirs), b"guess"));
    forger.set_xmit_auth_seq(u32::MAX / 2);
    for _ in 0..5 {
        let w = forger.seal(&ControlPacket {
            auth_present: true,
            ..down
        });
        spoof(router, node, w.as_bytes()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.status().borrow().state, BfdState::Up);
    assert!(*a.up().borrow());
    assert_eq!(dropped(router, "auth_missing") - before_missing, 5);
    assert_eq!(dropped(router, "auth_digest") - before_digest, 5);
    assert!(a.status().borrow().packets_dropped >= 10);
    a.shutdown().await;
    r.shutdown().await;
}

/// Without authentication the same spoofed Down takes the session down: the threat is real.
#[tokio::test]
async fn unauthenticated_session_falls_to_spoofed_down() {
    let (node, router) = (ip("127.0.1.41"), ip("127.0.1.42"));
    let mux = BfdMux::default();
    let Some([a, r]) = spawn_all(&mux, [(node, router, fast(41)), (router, node, fast(42))]) else {
        return;
    };
    wait_up(&a).await;
    spoof(router, node, &spoofed_down(&a).encode()).await;
    let mut up = a.up();
    tokio::time::timeout(Duration::from_secs(1), up.wait_for(|u| !*u))
        .await
        .expect("spoofed Down accepted")
        .unwrap();
    a.shutdown().await;
    r.shutdown().await;
}

/// Keys that differ: the session never comes up, and every packet is counted.
#[tokio::test]
async fn mismatched_keys_never_come_up() {
    let (node, router) = (ip("127.0.1.51"), ip("127.0.1.52"));
    let mux = BfdMux::default();
    let Some([a, r]) = spawn_all(
        &mux,
        [
            (node, router, with_key(fast(51), b"one")),
            (router, node, with_key(fast(52), b"two")),
        ],
    ) else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(a.status().borrow().state, BfdState::Down);
    assert_eq!(r.status().borrow().state, BfdState::Down);
    assert!(a.status().borrow().packets_dropped >= 2);
    assert!(dropped(router, "auth_digest") >= 2);
    a.shutdown().await;
    r.shutdown().await;
}
