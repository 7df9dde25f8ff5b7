use std::net::Ipv6Addr;

use super::*;
use crate::bgp::codec::ExtendedNextHop;

fn passive() -> PeerConfig {
    PeerConfig {
        passive: true,
        ..cfg()
    }
}

fn connects(a: &[Action]) -> bool {
    a.contains(&Action::Connect)
}

#[test]
fn a_passive_session_never_connects() {
    let mut s = Session::new(passive());
    let a = s.handle(Event::Start);
    assert_eq!(s.state(), Active);
    assert!(!connects(&a), "{a:?}");
    // Timers firing while it waits do not make it connect either.
    for _ in 0..5 {
        let a = s.handle(Event::TimerFired(ConnectRetry));
        assert!(!connects(&a), "{a:?}");
        assert_eq!(s.state(), Active);
    }
    // The peer's connection (handed in by the listener) runs the usual OPEN exchange.
    let a = s.handle(Event::TcpConnected);
    assert_eq!(s.state(), OpenSent);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Send(Message::Open(_))))
    );
    s.handle(Event::Message(Message::Open(peer_open(
        PEER,
        9,
        &Family::ALL,
    ))));
    s.handle(Event::Message(Message::Keepalive));
    assert_eq!(s.state(), Established);
    // Losing it, and the restart that follows, waits again without connecting.
    let mut all = s.handle(Event::TcpClosed);
    all.extend(s.handle(Event::TimerFired(ConnectRetry)));
    assert!(!connects(&all), "{all:?}");
    assert_eq!(s.state(), Active);
}

fn unnumbered() -> PeerConfig {
    PeerConfig {
        unnumbered: true,
        ..cfg()
    }
}

const OWN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x18, 0, 0x11);

/// An Established unnumbered session whose peer did (or did not) announce RFC 8950 for IPv4.
fn unnumbered_established(peer_enh: bool) -> (Session, Vec<Action>) {
    let mut s = Session::new(unnumbered());
    s.handle(Event::RoutesChanged(routes(&[
        "198.18.100.1",
        "fd00:100::1",
    ])));
    s.handle(Event::Start);
    s.set_local_address(IpAddr::V6(OWN_LL));
    let a = s.handle(Event::TcpConnected);
    let our_open = a
        .iter()
        .find_map(|x| match x {
            Action::Send(Message::Open(o)) => Some(o.clone()),
            _ => None,
        })
        .expect("OPEN sent");
    // We announce the capability on unnumbered sessions.
    assert!(our_open.extended_next_hop(ExtendedNextHop::IPV4_OVER_IPV6));
    let mut open = peer_open(PEER, 9, &Family::ALL);
    if peer_enh {
        open.capabilities.push(Capability::ExtendedNextHop(vec![
            ExtendedNextHop::IPV4_OVER_IPV6,
        ]));
    }
    s.handle(Event::Message(Message::Open(open)));
    let a = s.handle(Event::Message(Message::Keepalive));
    assert_eq!(s.state(), Established);
    (s, a)
}

fn mp_reach(u: &Update) -> Option<(Family, Vec<IpAddr>)> {
    u.attributes.iter().find_map(|a| match a {
        PathAttribute::MpReach {
            family, next_hop, ..
        } => Some((*family, next_hop.clone())),
        _ => None,
    })
}

#[test]
fn unnumbered_routes_go_out_with_our_link_local_next_hop() {
    let (s, a) = unnumbered_established(true);
    let sent: Vec<(Family, Vec<IpAddr>)> = sent_updates(&a).iter().filter_map(mp_reach).collect();
    let ll = vec![IpAddr::V6(OWN_LL)];
    assert!(
        sent.contains(&(Family::Ipv4Unicast, ll.clone())),
        "{sent:?}"
    );
    assert!(sent.contains(&(Family::Ipv6Unicast, ll)), "{sent:?}");
    // No classic IPv4 NLRI / NEXT_HOP: IPv4 goes in MP_REACH (RFC 8950 §4).
    assert!(sent_updates(&a).iter().all(|u| u.nlri.is_empty()));
    assert_eq!(s.advertised().count(), 2);
    assert_eq!(s.withheld(), None);
}

#[test]
fn without_the_peers_capability_ipv4_is_withheld_and_the_reason_shown() {
    let (mut s, a) = unnumbered_established(false);
    let sent: Vec<(Family, Vec<IpAddr>)> = sent_updates(&a).iter().filter_map(mp_reach).collect();
    assert_eq!(sent, vec![(Family::Ipv6Unicast, vec![IpAddr::V6(OWN_LL)])]);
    assert!(sent_updates(&a).iter().all(|u| u.nlri.is_empty()));
    let why = s.withheld().expect("a reason");
    assert!(
        why.contains("extended next hop") && why.contains("1 IPv4"),
        "{why}"
    );
    // Later changes hold to the same rule.
    let a = s.handle(Event::RoutesChanged(routes(&[
        "198.18.100.2",
        "fd00:100::1",
    ])));
    assert!(sent_updates(&a).is_empty(), "{a:?}");
}

#[test]
fn numbered_sessions_neither_announce_nor_use_extended_next_hop() {
    let mut s = Session::new(cfg());
    s.handle(Event::Start);
    let a = s.handle(Event::TcpConnected);
    let ours = a.iter().find_map(|x| match x {
        Action::Send(Message::Open(o)) => Some(o.clone()),
        _ => None,
    });
    assert!(
        !ours
            .unwrap()
            .extended_next_hop(ExtendedNextHop::IPV4_OVER_IPV6)
    );
    // An IPv4 route with an IPv6 next hop (only unnumbered sessions make those) is not sent
    // to a peer that did not agree to it.
    let mut open = peer_open(PEER, 9, &Family::ALL);
    open.capabilities.clear();
    open.capabilities.push(Capability::FourOctetAs(PEER));
    s.handle(Event::Message(Message::Open(open)));
    s.handle(Event::Message(Message::Keepalive));
    let odd = Route::new("198.18.100.9".parse().unwrap(), NextHop::v6(OWN_LL));
    let a = s.handle(Event::RoutesChanged([odd].into()));
    assert!(sent_updates(&a).is_empty(), "{a:?}");
    assert_eq!(s.withheld(), None);
}
