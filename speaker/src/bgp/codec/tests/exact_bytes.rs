//! Encoding: exact bytes for known messages, and what cannot be encoded.

use super::*;

#[test]
fn open_exact_bytes() {
    let open = Open::new(
        64512,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(64512),
        ],
    );
    let bytes = Message::Open(open).encode(&V4).unwrap();
    let mut want = header(19 + 10 + 2 + 14, 1);
    want.extend_from_slice(&[4, 0xfc, 0x00, 0, 90, 198, 18, 0, 1, 16, 2, 14]);
    want.extend_from_slice(&[1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfc, 0]);
    assert_eq!(bytes.as_ref(), want.as_slice());
}

#[test]
fn open_uses_as_trans_for_four_octet_asn() {
    let o = sample_open();
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_001);
    let small = Open::new(65000, 0, Ipv4Addr::new(1, 1, 1, 1), vec![]);
    assert_eq!(small.my_as, 65000);
    assert_eq!(small.asn(), 65000);
    assert_eq!(small.families(), vec![Family::Ipv4Unicast]);
    assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert!(o.supports_route_refresh());
    let gr = o.graceful_restart().unwrap();
    assert!(gr.restart_state);
    assert_eq!(gr.restart_time, 120);
}

#[test]
fn graceful_restart_capability_bytes() {
    let bytes = Message::Open(sample_open()).encode(&V4).unwrap();
    // code 64, len 10, R bit + 120 s, IPv4/unicast with F, IPv6/unicast without.
    let gr = [64, 10, 0x80, 120, 0, 1, 1, 0x80, 0, 2, 1, 0];
    assert!(bytes.windows(gr.len()).any(|w| w == gr));
}

#[test]
fn keepalive_and_notification_bytes() {
    assert_eq!(
        Message::Keepalive.encode(&V4).unwrap().as_ref(),
        header(19, 4).as_slice()
    );
    let n = Message::Notification(Notification::new(6, 2, vec![1, 2]))
        .encode(&V4)
        .unwrap();
    assert_eq!(n.as_ref(), msg(3, &[6, 2, 1, 2]).as_slice());
    assert_eq!(
        Notification::cease(err::ADMINISTRATIVE_RESET).to_string(),
        "Cease (6/4)"
    );
}

#[test]
fn ipv4_update_exact_bytes() {
    let mut r = Route::new(
        pfx("198.18.0.10"),
        NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
    );
    r.communities = vec![0x0001_0002];
    r.large_communities = vec![(1, 2, 3)];
    let ctx = UpdateContext {
        local_asn: 65001,
        ibgp: false,
        four_octet_as: true,
    };
    let ups = route::announce_updates([&r], &ctx);
    let bytes = Message::Update(ups[0].clone()).encode(&V4).unwrap();
    let attrs: Vec<u8> = [
        &ORIGIN_IGP[..],
        &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9],
        &NEXT_HOP,
        &[0xc0, 8, 4, 0, 1, 0, 2],
        &[0xc0, 32, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
    ]
    .concat();
    assert_eq!(
        bytes.as_ref(),
        msg(2, &update_body(&[], &attrs, &NLRI_ONE)).as_slice()
    );
}

#[test]
fn ipv6_update_exact_bytes() {
    let r = Route::new(
        pfx("fd00::10"),
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        },
    );
    let ctx = UpdateContext {
        local_asn: 65001,
        ibgp: true,
        four_octet_as: true,
    };
    let ups = route::announce_updates([&r], &ctx);
    let bytes = Message::Update(ups[0].clone()).encode(&V4).unwrap();
    let mut mp = vec![0x80, 14, 0, 0, 2, 1, 32];
    mp.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    mp.push(0);
    mp.push(128);
    mp.extend_from_slice(&"fd00::10".parse::<Ipv6Addr>().unwrap().octets());
    mp[2] = (mp.len() - 3) as u8;
    let attrs: Vec<u8> = [
        &ORIGIN_IGP[..],
        &AS_PATH_EMPTY,
        &[0x40, 5, 4, 0, 0, 0, 100],
        &mp,
    ]
    .concat();
    assert_eq!(
        bytes.as_ref(),
        msg(2, &update_body(&[], &attrs, &[])).as_slice()
    );
}

#[test]
fn too_long_update_is_an_encode_error() {
    let u = Update {
        nlri: (0..1100u32)
            .map(|i| Prefix::host(IpAddr::V4(Ipv4Addr::from(i))))
            .collect(),
        ..Update::default()
    };
    assert!(matches!(
        Message::Update(u).encode(&V4),
        Err(EncodeError::TooLong(_))
    ));
}
