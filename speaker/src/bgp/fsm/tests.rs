use std::net::Ipv4Addr;

use super::*;
use crate::bgp::codec::{Capability, GracefulRestart, PathAttribute, RouteRefresh, Update};
use crate::bgp::prefix::NextHop;
use State::*;
use TimerKind::*;
use proptest::prelude::*;

const LOCAL: u32 = 64512;
const PEER: u32 = 64513;

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, n)
}

fn cfg() -> PeerConfig {
    PeerConfig {
        hold_time: 9,
        connect_time: Duration::from_secs(1),
        connect_time_max: Duration::from_secs(8),
        ..PeerConfig::new(LOCAL, PeerAsn::Fixed(PEER), id(1))
    }
}

fn peer_open(asn: u32, hold: u16, families: &[Family]) -> Open {
    let mut caps: Vec<Capability> = families
        .iter()
        .map(|f| {
            let (afi, safi) = f.afi_safi();
            Capability::Multiprotocol { afi, safi }
        })
        .collect();
    caps.push(Capability::FourOctetAs(asn));
    Open::new(asn, hold, id(2), caps)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn route(s: &str) -> Route {
    let prefix: Prefix = s.parse().unwrap();
    let nh = match prefix.family() {
        Family::Ipv4Unicast => NextHop::V4(id(1)),
        Family::Ipv6Unicast => NextHop::v6("fd00::1".parse().unwrap()),
    };
    Route::new(prefix, nh)
}

fn routes(list: &[&str]) -> BTreeSet<Route> {
    list.iter().map(|s| route(s)).collect()
}

/// Drives a fresh session into `state` through real events.
fn session_in(state: State, config: PeerConfig) -> Session {
    let mut s = Session::new(config);
    let path: &[Event] = match state {
        Idle => &[],
        Connect => &[Event::Start],
        Active => &[Event::Start, Event::TcpFailed],
        OpenSent => &[Event::Start, Event::TcpConnected],
        OpenConfirm | Established => &[Event::Start, Event::TcpConnected],
    };
    for e in path {
        s.handle(e.clone());
    }
    if matches!(state, OpenConfirm | Established) {
        let open = peer_open(PEER, 9, &Family::ALL);
        s.handle(Event::Message(Message::Open(open)));
    }
    if state == Established {
        s.handle(Event::Message(Message::Keepalive));
    }
    assert_eq!(s.state(), state);
    s
}

fn all_events() -> Vec<(&'static str, Event)> {
    vec![
        ("Start", Event::Start),
        ("Stop", Event::Stop(StopReason::Shutdown)),
        ("TcpConnected", Event::TcpConnected),
        ("TcpFailed", Event::TcpFailed),
        ("TcpClosed", Event::TcpClosed),
        (
            "Open",
            Event::Message(Message::Open(peer_open(PEER, 9, &Family::ALL))),
        ),
        ("Keepalive", Event::Message(Message::Keepalive)),
        ("Update", Event::Message(Message::Update(Update::default()))),
        (
            "Notification",
            Event::Message(Message::Notification(Notification::cease(2))),
        ),
        (
            "RouteRefresh",
            Event::Message(Message::RouteRefresh(RouteRefresh {
                afi: 1,
                subtype: 0,
                safi: 1,
            })),
        ),
        (
            "Malformed",
            Event::Malformed(DecodeError {
                notification: Notification::new(1, 1, Vec::new()),
                reason: "test",
            }),
        ),
        ("ConnectRetry", Event::TimerFired(ConnectRetry)),
        ("Hold", Event::TimerFired(Hold)),
        ("KeepaliveTimer", Event::TimerFired(Keepalive)),
        ("BfdDown", Event::BfdDown),
        (
            "RoutesChanged",
            Event::RoutesChanged(routes(&["198.18.5.1"])),
        ),
    ]
}

/// Expected next state for every (state, event), in `all_events` order.
#[test]
fn transition_table_is_exhaustive() {
    #[rustfmt::skip]
    let table: [(State, [State; 16]); 6] = [
        //            Start        Stop  TcpConn     TcpFail  TcpClose Open         Keepalive    Update       Notif RR           Malformed CR           Hold         KA           Bfd          Routes
        (Idle,        [Connect,    Idle, Idle,       Idle,    Idle,    Idle,        Idle,        Idle,        Idle, Idle,        Idle,     Idle,        Idle,        Idle,        Idle,        Idle]),
        (Connect,     [Connect,    Idle, OpenSent,   Active,  Active,  Connect,     Connect,     Connect,     Connect, Connect,  Connect,  Connect,     Connect,     Connect,     Connect,     Connect]),
        (Active,      [Active,     Idle, OpenSent,   Active,  Active,  Active,      Active,      Active,      Active, Active,    Active,   Connect,     Active,      Active,      Active,      Active]),
        (OpenSent,    [OpenSent,   Idle, OpenSent,   Active,  Active,  OpenConfirm, Idle,        Idle,        Idle, Idle,        Idle,     OpenSent,    Idle,        OpenSent,    Idle,        OpenSent]),
        (OpenConfirm, [OpenConfirm,Idle, OpenConfirm,Idle,    Idle,    Idle,        Established, Idle,        Idle, Idle,        Idle,     OpenConfirm, Idle,        OpenConfirm, Idle,        OpenConfirm]),
        (Established, [Established,Idle, Established,Idle,    Idle,    Idle,        Established, Established, Idle, Established, Idle,     Established, Idle,        Established, Idle,        Established]),
    ];
    let events = all_events();
    assert_eq!(events.len(), 16);
    for (from, expected) in table {
        for ((name, ev), want) in events.iter().zip(expected) {
            let mut s = session_in(from, cfg());
            let actions = s.handle(ev.clone());
            assert_eq!(s.state(), want, "{from:?} + {name} → {actions:?}");
            check_invariants(from, &actions);
        }
    }
}

/// Properties every action list must have.
fn check_invariants(from: State, actions: &[Action]) {
    for (i, a) in actions.iter().enumerate() {
        if let Action::Send(Message::Notification(_)) = a {
            assert_eq!(
                actions.get(i + 1),
                Some(&Action::CloseTcp),
                "{from:?}: NOTIFICATION must be followed by close: {actions:?}"
            );
        }
    }
    let sends = actions.iter().any(|a| matches!(a, Action::Send(_)));
    if sends {
        assert!(
            matches!(
                from,
                OpenSent | OpenConfirm | Established | Connect | Active
            ),
            "sent from {from:?}: {actions:?}"
        );
    }
}

#[test]
fn start_connects_and_arms_retry() {
    let mut s = Session::new(cfg());
    assert_eq!(
        s.handle(Event::Start),
        vec![Action::Connect, Action::SetTimer(ConnectRetry, secs(1))]
    );
    assert_eq!(s.handle(Event::Start), vec![], "Start is idempotent");
}

#[test]
fn tcp_connected_sends_open() {
    let mut s = session_in(Connect, cfg());
    let open = s.open_message();
    assert_eq!(
        s.handle(Event::TcpConnected),
        vec![
            Action::CancelTimer(ConnectRetry),
            Action::Send(Message::Open(open)),
            Action::SetTimer(Hold, LARGE_HOLD_TIME),
        ]
    );
}

#[test]
fn connect_retry_backoff_doubles_and_caps() {
    let mut s = session_in(Connect, cfg());
    let mut delays = Vec::new();
    for _ in 0..6 {
        let a = s.handle(Event::TcpFailed);
        assert_eq!(s.state(), Active);
        let [Action::SetTimer(ConnectRetry, d)] = a.as_slice() else {
            panic!("{a:?}")
        };
        delays.push(d.as_secs());
        let a = s.handle(Event::TimerFired(ConnectRetry));
        assert_eq!(a[0], Action::Connect);
        assert_eq!(s.state(), Connect);
    }
    assert_eq!(delays, vec![2, 4, 8, 8, 8, 8]);
    // Timing out a connect attempt also backs off and abandons the attempt.
    let a = s.handle(Event::TimerFired(ConnectRetry));
    assert_eq!(
        a,
        vec![
            Action::CloseTcp,
            Action::Connect,
            Action::SetTimer(ConnectRetry, secs(8))
        ]
    );
}

#[test]
fn backoff_resets_after_established() {
    let mut s = session_in(Connect, cfg());
    s.handle(Event::TcpFailed);
    s.handle(Event::TimerFired(ConnectRetry));
    s.handle(Event::TcpConnected);
    s.handle(Event::Message(Message::Open(peer_open(
        PEER,
        9,
        &Family::ALL,
    ))));
    s.handle(Event::Message(Message::Keepalive));
    assert_eq!(s.state(), Established);
    let a = s.handle(Event::TcpClosed);
    assert!(
        a.contains(&Action::SetTimer(ConnectRetry, secs(1))),
        "{a:?}"
    );
    assert_eq!(
        s.handle(Event::TimerFired(ConnectRetry))[0],
        Action::Connect
    );
}

#[test]
fn open_exchange_negotiates_timers() {
    let mut s = session_in(OpenSent, cfg());
    let a = s.handle(Event::Message(Message::Open(peer_open(
        PEER,
        30,
        &Family::ALL,
    ))));
    assert_eq!(
        a,
        vec![
            Action::Send(Message::Keepalive),
            Action::SetTimer(Hold, secs(9)),
            Action::SetTimer(Keepalive, secs(3)),
        ]
    );
    let n = s.negotiated().unwrap();
    assert_eq!((n.hold_time, n.keepalive, n.ibgp), (9, 3, false));
    assert!(n.four_octet_as);
    assert_eq!(n.families, Family::ALL.to_vec());
}

#[test]
fn hold_time_negotiation_table() {
    // (ours, theirs, configured keepalive) → (hold, keepalive)
    let table = [
        (90, 180, None, 90, 30),
        (90, 30, None, 30, 10),
        (90, 0, None, 0, 0),
        (0, 90, None, 0, 0),
        (90, 3, None, 3, 1),
        (90, 90, Some(10), 90, 10),
        (90, 9, Some(10), 9, 3),
        (90, 90, Some(0), 90, 30),
        (1, 90, None, 3, 1),
    ];
    for (ours, theirs, ka, hold, keepalive) in table {
        let mut c = cfg();
        c.hold_time = ours;
        c.keepalive = ka;
        let mut s = session_in(OpenSent, c);
        let a = s.handle(Event::Message(Message::Open(peer_open(
            PEER,
            theirs,
            &Family::ALL,
        ))));
        let n = s.negotiated().unwrap();
        assert_eq!(
            (n.hold_time, n.keepalive),
            (hold, keepalive),
            "{ours} {theirs} {ka:?}"
        );
        if hold == 0 {
            assert_eq!(
                a,
                vec![Action::Send(Message::Keepalive), Action::CancelTimer(Hold)]
            );
            s.handle(Event::Message(Message::Keepalive));
            assert_eq!(s.state(), Established);
            // No hold or keepalive timer is ever armed.
            let a = s.handle(Event::Message(Message::Keepalive));
            assert!(a.is_empty(), "{a:?}");
        }
    }
}

#[test]
fn established_sends_routes_then_end_of_rib() {
    let mut s = session_in(OpenConfirm, cfg());
    s.handle(Event::RoutesChanged(routes(&["198.18.5.1", "fd00::5"])));
    let a = s.handle(Event::Message(Message::Keepalive));
    assert_eq!(a[0], Action::Established);
    assert_eq!(a[1], Action::SetTimer(Hold, secs(9)));
    let updates = sent_updates(&a);
    assert_eq!(updates.len(), 4);
    assert_eq!(updates[0].nlri, vec!["198.18.5.1".parse().unwrap()]);
    assert!(matches!(
        updates[1].attributes.last(),
        Some(PathAttribute::MpReach { .. })
    ));
    assert_eq!(updates[2].end_of_rib(), Some(Family::Ipv4Unicast));
    assert_eq!(updates[3].end_of_rib(), Some(Family::Ipv6Unicast));
    assert_eq!(a.last(), Some(&Action::SetTimer(Keepalive, secs(3))));
    assert_eq!(s.advertised().count(), 2);
}

#[test]
fn only_negotiated_families_are_sent() {
    let mut s = session_in(OpenSent, cfg());
    s.handle(Event::RoutesChanged(routes(&["198.18.5.1", "fd00::5"])));
    // Peer without MP capabilities: IPv4 unicast only.
    let open = Open::new(PEER, 9, id(2), vec![]);
    s.handle(Event::Message(Message::Open(open)));
    let a = s.handle(Event::Message(Message::Keepalive));
    let updates = sent_updates(&a);
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[1].end_of_rib(), Some(Family::Ipv4Unicast));
    assert!(!s.codec_options().four_octet_as);
    // A later IPv6 route is not sent either.
    let a = s.handle(Event::RoutesChanged(routes(&["198.18.5.1", "fd00::6"])));
    assert!(a.is_empty(), "{a:?}");
}

fn sent_updates(a: &[Action]) -> Vec<Update> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send(Message::Update(u)) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn routes_changed_sends_only_the_diff() {
    let mut s = session_in(Established, cfg());
    let a = s.handle(Event::RoutesChanged(routes(&[
        "198.18.5.1",
        "198.18.5.2",
        "fd00::1:1",
    ])));
    let u = sent_updates(&a);
    assert_eq!(u.len(), 2, "one IPv4 group and one IPv6 group");
    assert_eq!(a.last(), Some(&Action::SetTimer(Keepalive, secs(3))));

    // Same set again: nothing to do.
    assert!(
        s.handle(Event::RoutesChanged(routes(&[
            "198.18.5.1",
            "198.18.5.2",
            "fd00::1:1"
        ])))
        .is_empty()
    );

    // Remove .1, change .2's attributes, add .3, remove the IPv6 route.
    let mut next = routes(&["198.18.5.3"]);
    let mut changed = route("198.18.5.2");
    changed.communities = vec![0xfde8_0001];
    next.insert(changed.clone());
    let u = sent_updates(&s.handle(Event::RoutesChanged(next)));
    assert_eq!(u.len(), 4, "{u:?}");
    assert_eq!(u[0].withdrawn, vec!["198.18.5.1".parse().unwrap()]);
    assert!(
        matches!(&u[1].attributes[..], [PathAttribute::MpUnreach { withdrawn, .. }] if withdrawn.len() == 1)
    );
    let announced: Vec<Prefix> = u[2..].iter().flat_map(|x| x.nlri.clone()).collect();
    assert_eq!(announced.len(), 2);
    assert!(announced.contains(&"198.18.5.2".parse().unwrap()));
    assert!(announced.contains(&"198.18.5.3".parse().unwrap()));
    assert!(u[2..].iter().any(|x| {
        x.attributes
            .contains(&PathAttribute::Communities(vec![0xfde8_0001]))
    }));
    // Nothing announced was also withdrawn (that would remove the changed route).
    assert!(!u[0].withdrawn.contains(&"198.18.5.2".parse().unwrap()));

    let u = sent_updates(&s.handle(Event::RoutesChanged(BTreeSet::new())));
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].withdrawn.len(), 2);
    assert_eq!(s.advertised().count(), 0);
}

#[test]
fn duplicate_prefixes_keep_one_route() {
    let mut s = session_in(Established, cfg());
    let mut a = route("198.18.5.1");
    let mut b = route("198.18.5.1");
    a.local_pref = Some(1);
    b.local_pref = Some(2);
    let u = sent_updates(&s.handle(Event::RoutesChanged([a, b].into_iter().collect())));
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].nlri.len(), 1);
}

#[test]
fn route_refresh_resends_the_family() {
    let mut s = session_in(Established, cfg());
    s.handle(Event::RoutesChanged(routes(&["198.18.5.1", "fd00::5"])));
    let rr = |afi| {
        Event::Message(Message::RouteRefresh(RouteRefresh {
            afi,
            subtype: 0,
            safi: 1,
        }))
    };
    let u = sent_updates(&s.handle(rr(2)));
    assert_eq!(u.len(), 1);
    assert!(matches!(
        u[0].attributes.last(),
        Some(PathAttribute::MpReach { .. })
    ));
    let u = sent_updates(&s.handle(rr(1)));
    assert_eq!(u[0].nlri.len(), 1);
    // Unknown family: just restarts the hold timer.
    assert_eq!(s.handle(rr(25)), vec![Action::SetTimer(Hold, secs(9))]);
}

#[test]
fn received_updates_are_ignored_even_when_soft_malformed() {
    let mut s = session_in(Established, cfg());
    let bad = Update {
        errors: vec![crate::bgp::codec::UpdateError {
            action: crate::bgp::codec::ErrorAction::TreatAsWithdraw,
            subcode: 6,
            type_code: Some(1),
        }],
        ..Update::default()
    };
    assert_eq!(
        s.handle(Event::Message(Message::Update(bad))),
        vec![Action::SetTimer(Hold, secs(9))]
    );
    assert_eq!(s.state(), Established);
}

#[test]
fn keepalive_timer_sends_keepalive() {
    for st in [OpenConfirm, Established] {
        let mut s = session_in(st, cfg());
        assert_eq!(
            s.handle(Event::TimerFired(Keepalive)),
            vec![
                Action::Send(Message::Keepalive),
                Action::SetTimer(Keepalive, secs(3))
            ]
        );
    }
}

#[test]
fn hold_timer_expiry_notifies_and_restarts() {
    let mut s = session_in(Established, cfg());
    assert_eq!(
        s.handle(Event::TimerFired(Hold)),
        vec![
            Action::Send(Message::Notification(Notification::new(4, 0, vec![]))),
            Action::CloseTcp,
            Action::CancelTimer(Hold),
            Action::CancelTimer(Keepalive),
            Action::SetTimer(ConnectRetry, secs(1)),
            Action::Down(DownReason::NotificationSent(Notification::new(
                4,
                0,
                vec![]
            ))),
        ]
    );
    assert_eq!(s.state(), Idle);
    assert_eq!(s.advertised().count(), 0);
    // Automatic restart.
    assert_eq!(
        s.handle(Event::TimerFired(ConnectRetry)),
        vec![Action::Connect, Action::SetTimer(ConnectRetry, secs(1))]
    );
}

#[test]
fn admin_stop_sends_cease() {
    for (reason, sub) in [(StopReason::Shutdown, 2), (StopReason::Reset, 4)] {
        for st in [OpenSent, OpenConfirm, Established] {
            let mut s = session_in(st, cfg());
            assert_eq!(
                s.handle(Event::Stop(reason)),
                vec![
                    Action::Send(Message::Notification(Notification::new(6, sub, vec![]))),
                    Action::CloseTcp,
                    Action::CancelTimer(ConnectRetry),
                    Action::CancelTimer(Hold),
                    Action::CancelTimer(Keepalive),
                    Action::Down(DownReason::AdminStop(reason)),
                ]
            );
            // No automatic restart after an administrative stop.
            assert!(s.handle(Event::TimerFired(ConnectRetry)).is_empty());
            assert_eq!(s.state(), Idle);
        }
    }
    let mut s = session_in(Connect, cfg());
    assert_eq!(
        s.handle(Event::Stop(StopReason::Shutdown)),
        vec![
            Action::CloseTcp,
            Action::CancelTimer(ConnectRetry),
            Action::CancelTimer(Hold),
            Action::CancelTimer(Keepalive),
        ]
    );
}

#[test]
fn notification_received_goes_idle() {
    let mut s = session_in(Established, cfg());
    let n = Notification::cease(2);
    let a = s.handle(Event::Message(Message::Notification(n.clone())));
    assert_eq!(a[0], Action::CloseTcp);
    assert_eq!(
        a.last(),
        Some(&Action::Down(DownReason::NotificationReceived(n)))
    );
    assert!(
        !a.iter().any(|x| matches!(x, Action::Send(_))),
        "never answer a NOTIFICATION"
    );
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let cases = [
        (OpenSent, Message::Keepalive, 1),
        (OpenSent, Message::Update(Update::default()), 1),
        (OpenConfirm, Message::Update(Update::default()), 2),
        (
            OpenConfirm,
            Message::Open(peer_open(PEER, 9, &Family::ALL)),
            2,
        ),
        (
            Established,
            Message::Open(peer_open(PEER, 9, &Family::ALL)),
            3,
        ),
    ];
    for (st, m, sub) in cases {
        let mut s = session_in(st, cfg());
        let a = s.handle(Event::Message(m));
        assert_eq!(
            a[0],
            Action::Send(Message::Notification(Notification::new(5, sub, vec![])))
        );
    }
}

#[test]
fn malformed_input_sends_the_codec_notification() {
    let mut s = session_in(Established, cfg());
    let e = DecodeError {
        notification: Notification::new(1, 2, vec![0, 5]),
        reason: "bad length",
    };
    let a = s.handle(Event::Malformed(e));
    assert_eq!(
        a[0],
        Action::Send(Message::Notification(Notification::new(1, 2, vec![0, 5])))
    );
    assert_eq!(a[1], Action::CloseTcp);
}

#[test]
fn peer_asn_checks() {
    // (configured peer ASN, ASN in the peer's OPEN, accepted?)
    let table = [
        (PeerAsn::Fixed(PEER), PEER, true),
        (PeerAsn::Fixed(PEER), PEER + 1, false),
        (PeerAsn::Internal, LOCAL, true),
        (PeerAsn::Internal, PEER, false),
        (PeerAsn::External, PEER, true),
        (PeerAsn::External, LOCAL, false),
        (PeerAsn::Fixed(4_200_000_000), 4_200_000_000, true),
    ];
    for (cfg_asn, open_asn, ok) in table {
        let mut c = cfg();
        c.peer_asn = cfg_asn;
        let mut s = session_in(OpenSent, c);
        let a = s.handle(Event::Message(Message::Open(peer_open(
            open_asn,
            9,
            &Family::ALL,
        ))));
        if ok {
            assert_eq!(s.state(), OpenConfirm, "{cfg_asn:?} {open_asn}");
            assert_eq!(s.negotiated().unwrap().peer_asn, open_asn);
        } else {
            assert_eq!(s.state(), Idle, "{cfg_asn:?} {open_asn}");
            assert_eq!(
                a[0],
                Action::Send(Message::Notification(Notification::new(2, 2, vec![])))
            );
        }
    }
    // A 2-octet-only peer whose ASN comes from the My AS field.
    let mut s = session_in(OpenSent, cfg());
    s.handle(Event::Message(Message::Open(Open::new(
        PEER,
        9,
        id(2),
        vec![],
    ))));
    assert_eq!(s.state(), OpenConfirm);
}

#[test]
fn ibgp_identifier_must_differ() {
    let mut c = cfg();
    c.peer_asn = PeerAsn::Internal;
    let mut s = session_in(OpenSent, c);
    let mut open = peer_open(LOCAL, 9, &Family::ALL);
    open.bgp_id = id(1);
    let a = s.handle(Event::Message(Message::Open(open)));
    assert_eq!(
        a[0],
        Action::Send(Message::Notification(Notification::new(2, 3, vec![])))
    );
}

#[test]
fn ibgp_updates_carry_local_pref_and_empty_path() {
    let mut c = cfg();
    c.peer_asn = PeerAsn::Internal;
    let mut s = session_in(OpenSent, c);
    s.handle(Event::Message(Message::Open(peer_open(
        LOCAL,
        9,
        &Family::ALL,
    ))));
    s.handle(Event::Message(Message::Keepalive));
    let u = sent_updates(&s.handle(Event::RoutesChanged(routes(&["198.18.5.1"]))));
    assert!(u[0].attributes.contains(&PathAttribute::LocalPref(100)));
    assert!(u[0].attributes.contains(&PathAttribute::AsPath(vec![])));
}

#[test]
fn open_carries_capabilities() {
    let mut c = cfg();
    c.local_asn = 4_200_000_000;
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        forwarding_state: true,
        restarting: true,
    });
    let s = Session::new(c);
    let o = s.open_message();
    assert_eq!(o.my_as, crate::bgp::codec::AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_000);
    assert_eq!(o.hold_time, 9);
    assert_eq!(o.bgp_id, id(1));
    assert_eq!(o.families(), Family::ALL.to_vec());
    assert!(o.supports_route_refresh());
    let gr = o.graceful_restart().expect("graceful restart capability");
    assert!(gr.restart_state);
    assert_eq!(gr.restart_time, 120);
    assert_eq!(gr.families.len(), 2);
    assert!(gr.families.iter().all(|f| f.forwarding_state));
    // Without graceful restart configured, no capability.
    assert!(
        Session::new(cfg())
            .open_message()
            .graceful_restart()
            .is_none()
    );
}

#[test]
fn restart_reestablishes_and_sends_end_of_rib() {
    // A new process (R bit set) simply goes through the normal FSM and ends with EoR.
    let mut c = cfg();
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        forwarding_state: false,
        restarting: true,
    });
    let mut s = session_in(OpenConfirm, c);
    let u = sent_updates(&s.handle(Event::Message(Message::Keepalive)));
    assert_eq!(
        u.iter().filter_map(|x| x.end_of_rib()).collect::<Vec<_>>(),
        Family::ALL.to_vec()
    );
}

fn gr_cfg() -> PeerConfig {
    PeerConfig {
        graceful_restart: Some(GracefulRestartConfig {
            restart_time: 120,
            forwarding_state: true,
            restarting: true,
        }),
        ..cfg()
    }
}

/// An Established session whose peer did (or did not) announce graceful restart.
fn established_with(config: PeerConfig, peer_gr: bool) -> Session {
    let mut s = session_in(OpenSent, config);
    let mut open = peer_open(PEER, 9, &Family::ALL);
    if peer_gr {
        open.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![],
            }));
    }
    s.handle(Event::Message(Message::Open(open)));
    s.handle(Event::Message(Message::Keepalive));
    assert_eq!(s.state(), Established);
    s
}

fn notifications(actions: &[Action]) -> Vec<Notification> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(Message::Notification(n)) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn planned_restart_with_graceful_restart_closes_without_notification() {
    let mut s = established_with(gr_cfg(), true);
    assert!(s.graceful_restart_negotiated());
    let a = s.handle(Event::Stop(StopReason::Restart));
    // No NOTIFICATION: the peer sees the connection close and keeps our routes as stale.
    assert_eq!(notifications(&a), vec![]);
    assert!(a.contains(&Action::CloseTcp));
    assert_eq!(
        a.last(),
        Some(&Action::Down(DownReason::AdminStop(StopReason::Restart)))
    );
    assert_eq!(s.state(), Idle);
    assert!(s.handle(Event::TimerFired(ConnectRetry)).is_empty());
}

#[test]
fn withdrawing_or_restarting_without_graceful_restart_sends_cease() {
    // Withdraw: always a Cease, graceful restart or not (the peer must drop our routes).
    for peer_gr in [true, false] {
        let mut s = established_with(gr_cfg(), peer_gr);
        let a = s.handle(Event::Stop(StopReason::Shutdown));
        assert_eq!(notifications(&a), vec![Notification::cease(2)]);
    }
    // A restart towards a peer that did not announce graceful restart, or with it off on our
    // side: the routes go anyway, so say so with a Cease.
    for (config, peer_gr) in [(gr_cfg(), false), (cfg(), true)] {
        let mut s = established_with(config, peer_gr);
        assert!(!s.graceful_restart_negotiated());
        let a = s.handle(Event::Stop(StopReason::Restart));
        assert_eq!(notifications(&a), vec![Notification::cease(4)]);
    }
}

#[test]
fn the_restart_bit_is_set_in_the_first_open_only() {
    let mut s = Session::new(gr_cfg());
    s.handle(Event::Start);
    let first = s.handle(Event::TcpConnected);
    let restart_bit = |a: &[Action]| {
        a.iter().find_map(|x| match x {
            Action::Send(Message::Open(o)) => o.graceful_restart().map(|g| g.restart_state),
            _ => None,
        })
    };
    assert_eq!(restart_bit(&first), Some(true));
    s.handle(Event::Message(Message::Open(peer_open(
        PEER,
        9,
        &Family::ALL,
    ))));
    s.handle(Event::Message(Message::Keepalive));
    assert_eq!(s.state(), Established);
    // The session drops and comes back within the same process: not a restart any more.
    s.handle(Event::TcpClosed);
    s.handle(Event::TimerFired(ConnectRetry));
    let again = s.handle(Event::TcpConnected);
    assert_eq!(restart_bit(&again), Some(false));
}

#[test]
fn bfd_down_tears_the_session_down() {
    let mut s = session_in(Established, cfg());
    let a = s.handle(Event::BfdDown);
    assert_eq!(
        a[0],
        Action::Send(Message::Notification(Notification::cease(10)))
    );
    assert_eq!(a.last(), Some(&Action::Down(DownReason::BfdDown)));
    assert_eq!(s.state(), Idle);
}

#[test]
fn tcp_closed_in_open_sent_goes_active() {
    let mut s = session_in(OpenSent, cfg());
    let a = s.handle(Event::TcpClosed);
    assert_eq!(s.state(), Active);
    assert!(a.contains(&Action::SetTimer(ConnectRetry, secs(2))));
    assert_eq!(
        s.handle(Event::TimerFired(ConnectRetry))[0],
        Action::Connect
    );
}

fn arb_event() -> impl Strategy<Value = Event> {
    let events = all_events();
    (0..events.len()).prop_map(move |i| events[i].1.clone())
}

proptest! {
    #[test]
    fn random_event_sequences_keep_invariants(events in proptest::collection::vec(arb_event(), 0..60)) {
        let mut s = Session::new(cfg());
        for e in events {
            let from = s.state();
            let actions = s.handle(e);
            check_invariants(from, &actions);
            if actions.contains(&Action::Established) {
                prop_assert_eq!(s.state(), Established);
            }
            if s.state() != Established {
                prop_assert_eq!(s.advertised().count(), 0);
            }
            if matches!(s.state(), Idle | Connect | Active) {
                prop_assert!(s.negotiated().is_none());
            }
        }
    }
}

/// Passive sessions and unnumbered (RFC 8950) sessions.
mod peering;
