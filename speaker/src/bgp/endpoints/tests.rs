//! A passive session end to end on loopback: the listener hands the router's connection to the
//! session, which runs the OPEN exchange and sends its routes, and never connects itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::*;
use crate::bgp::codec::{self, Capability, CodecOptions, Message, Open};
use crate::bgp::fsm::{PeerAsn, PeerConfig, State};
use crate::bgp::net::TransportConfig;
use crate::bgp::prefix::{NextHop, Prefix};

async fn recv(stream: &mut TcpStream, buf: &mut BytesMut) -> Message {
    loop {
        if let Some((m, n)) = codec::decode_frame(buf, &CodecOptions::default()).unwrap() {
            buf.advance(n);
            return m;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buf))
            .await
            .expect("no message from the speaker")
            .unwrap();
        assert!(n > 0, "speaker closed the connection");
    }
}

async fn send(stream: &mut TcpStream, m: Message) {
    let b = m.encode(&CodecOptions::default()).unwrap();
    stream.write_all(&b).await.unwrap();
}

/// Connects from `source` to the listener.
async fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    s.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_passive_session_takes_the_routers_connection_and_never_connects() {
    // Where an active session would connect: it must see nothing.
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut peer = PeerConfig::new(64512, PeerAsn::Fixed(64513), Ipv4Addr::new(198, 18, 0, 1));
    peer.passive = true;
    peer.hold_time = 30;
    peer.connect_time = Duration::from_millis(100);
    let mut transport = TransportConfig::new(trap.local_addr().unwrap());
    transport.listen_port = Some(port);
    let config = SessionConfig { peer, transport };
    let route = Route::new(
        "198.18.100.1".parse::<Prefix>().unwrap(),
        NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
    );
    let (_routes_tx, routes) = watch::channel([route].into_iter().collect());
    let (_cease_tx, cease) = watch::channel(None);
    let (handle, reg) = start_session(&config, routes, None, cease);
    let mut endpoints = NodeEndpoints::default();
    endpoints.sync([(&config, reg.as_ref())]);
    let mut status = handle.status();

    // Someone else (127.0.0.2) is closed at once; the session stays Active.
    let mut stranger = connect_from(Ipv4Addr::new(127, 0, 0, 2), port).await;
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(2), stranger.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "{r:?}");
    assert_eq!(status.borrow().state, State::Active);

    // The router (127.0.0.1) connects: OPEN, KEEPALIVE, then our routes.
    let mut router = connect_from(Ipv4Addr::LOCALHOST, port).await;
    let mut buf = BytesMut::new();
    let Message::Open(open) = recv(&mut router, &mut buf).await else {
        panic!("expected the speaker's OPEN");
    };
    assert_eq!(open.asn(), 64512);
    let caps = vec![
        Capability::Multiprotocol { afi: 1, safi: 1 },
        Capability::FourOctetAs(64513),
    ];
    let ours = Open::new(64513, 30, Ipv4Addr::new(198, 18, 0, 3), caps);
    send(&mut router, Message::Open(ours)).await;
    send(&mut router, Message::Keepalive).await;
    assert_eq!(recv(&mut router, &mut buf).await, Message::Keepalive);
    let announced = loop {
        match recv(&mut router, &mut buf).await {
            Message::Update(u) if !u.nlri.is_empty() => break u.nlri,
            _ => {}
        }
    };
    assert_eq!(announced, ["198.18.100.1".parse::<Prefix>().unwrap()]);
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.state == State::Established),
    )
    .await
    .unwrap()
    .unwrap();

    // In all this, the session never connected.
    let r = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await;
    assert!(r.is_err(), "the passive session connected out: {r:?}");
    handle.shutdown(StopReason::Shutdown).await;
}
