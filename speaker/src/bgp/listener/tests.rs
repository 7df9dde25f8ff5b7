use std::net::SocketAddrV6;
use std::time::Duration;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn connections_belong_only_to_configured_peers() {
    let expected = [
        Expected::Address(ip("198.18.0.3")),
        Expected::Address(ip("fd00:18::3")),
        Expected::Interface("unn-frr".into()),
    ];
    let index = |name: &str| (name == "unn-frr").then_some(11);
    let from = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let ll = |scope: u32| {
        SocketAddr::V6(SocketAddrV6::new(
            "fe80::2".parse().unwrap(),
            40000,
            0,
            scope,
        ))
    };
    assert_eq!(
        belongs_to(&expected, from("198.18.0.3:40000"), index),
        Some(&expected[0])
    );
    // An IPv4 peer seen through an IPv4-mapped address is the same peer.
    assert_eq!(
        belongs_to(&expected, from("[::ffff:198.18.0.3]:40000"), index),
        Some(&expected[0])
    );
    assert_eq!(
        belongs_to(&expected, from("[fd00:18::3]:179"), index),
        Some(&expected[1])
    );
    assert_eq!(belongs_to(&expected, ll(11), index), Some(&expected[2]));
    // Anyone else: another address, a link-local on another interface, a global address on
    // the interface.
    for other in [
        from("198.18.0.4:40000"),
        from("[fd00:18::4]:179"),
        ll(12),
        ll(0),
        from("[fd00:18::2]:40000"),
    ] {
        assert_eq!(belongs_to(&expected, other, index), None, "{other}");
    }
}

#[tokio::test]
async fn a_listener_hands_connections_to_their_session_and_closes_the_rest() {
    // A port of our own on loopback (a test must not take 179).
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let (tx, mut rx) = mpsc::channel(2);
    let mut l = Listeners::default();
    let errors = l.sync(vec![Registration {
        port,
        expected: Expected::Address(ip("127.0.0.1")),
        md5_password: None,
        inbound: tx,
    }]);
    assert!(errors.is_empty(), "{errors:?}");
    let _c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.peer_addr().unwrap().ip(), ip("127.0.0.1"));

    // From ::1, which is no peer: closed at once and counted.
    let before = rejected_connections().get();
    let mut other = TcpStream::connect(("::1", port)).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read(&mut other, &mut buf),
    )
    .await
    .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(rejected_connections().get() > before);
    assert!(rx.try_recv().is_err());

    // No session left on the port: it closes.
    assert!(l.sync(Vec::new()).is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}
