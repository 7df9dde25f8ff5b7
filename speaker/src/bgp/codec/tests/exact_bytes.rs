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

/// RFC 8950 §3: capability code 5, one tuple (NLRI AFI 1, NLRI SAFI 1, next hop AFI 2), each
/// field 2 octets.
#[test]
fn extended_next_hop_capability_bytes_both_ways() {
    let open = Open::new(
        64512,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        vec![Capability::ExtendedNextHop(vec![
            ExtendedNextHop::IPV4_OVER_IPV6,
        ])],
    );
    let bytes = Message::Open(open.clone()).encode(&V4).unwrap();
    let cap = [5, 6, 0, 1, 0, 1, 0, 2];
    let mut want = header(19 + 10 + 2 + cap.len() as u16, 1);
    want.extend_from_slice(&[4, 0xfc, 0x00, 0, 90, 198, 18, 0, 1, 10, 2, 8]);
    want.extend_from_slice(&cap);
    assert_eq!(bytes.as_ref(), want.as_slice());
    match Message::decode(&bytes, &V4) {
        Ok(Message::Open(o)) => {
            assert_eq!(o, open);
            assert!(o.extended_next_hop(ExtendedNextHop::IPV4_OVER_IPV6));
            // IPv6 NLRI over IPv4 next hops is another tuple, not announced here.
            assert!(!o.extended_next_hop(ExtendedNextHop {
                afi: 2,
                safi: 1,
                next_hop_afi: 1
            }));
        }
        other => panic!("expected OPEN, got {other:?}"),
    }
    // A length that is not a multiple of 6 (or zero) is a malformed OPEN.
    for bad in [&[5u8, 0][..], &[5, 4, 0, 1, 0, 1]] {
        let mut body = vec![4, 0xfc, 0x00, 0, 90, 198, 18, 0, 1, bad.len() as u8 + 2, 2];
        body.push(bad.len() as u8);
        body.extend_from_slice(bad);
        assert_eq!(decode_err(&msg(1, &body)).0, err::OPEN_MESSAGE, "{bad:?}");
    }
}

/// RFC 8950 §4: an IPv4 route with an IPv6 next hop is carried in MP_REACH_NLRI with AFI 1 /
/// SAFI 1 and a 16-octet (or, with a link-local address, 32-octet) next hop; no NEXT_HOP
/// attribute, no classic NLRI.
#[test]
fn ipv4_route_with_ipv6_next_hop_exact_bytes() {
    let ll: Ipv6Addr = "fe80::18:11".parse().unwrap();
    let global: Ipv6Addr = "fd00:18::11".parse().unwrap();
    let ctx = UpdateContext {
        local_asn: 65001,
        ibgp: false,
        four_octet_as: true,
    };
    let as_path = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
    for (next_hop, nh_bytes) in [
        (NextHop::v6(ll), ll.octets().to_vec()),
        (
            NextHop::V6 {
                global,
                link_local: Some(ll),
            },
            [global.octets(), ll.octets()].concat(),
        ),
    ] {
        let r = Route::new(pfx("198.18.100.1"), next_hop);
        assert!(r.needs_extended_next_hop() && !r.is_consistent());
        let ups = route::announce_updates([&r], &ctx);
        assert_eq!(ups.len(), 1);
        let bytes = Message::Update(ups[0].clone()).encode(&V4).unwrap();
        let mut mp = vec![0x80, 14, 0, 0, 1, 1, nh_bytes.len() as u8];
        mp.extend_from_slice(&nh_bytes);
        mp.extend_from_slice(&[0, 32, 198, 18, 100, 1]);
        mp[2] = (mp.len() - 3) as u8;
        let attrs: Vec<u8> = [&ORIGIN_IGP[..], &as_path, &mp].concat();
        assert_eq!(
            bytes.as_ref(),
            msg(2, &update_body(&[], &attrs, &[])).as_slice(),
            "{next_hop:?}"
        );
        // And back: the same route, IPv4 NLRI with the IPv6 next hop(s).
        let u = decode_update(&bytes);
        assert!(u.errors.is_empty(), "{:?}", u.errors);
        match u.attributes.last() {
            Some(PathAttribute::MpReach {
                family,
                next_hop,
                nlri,
            }) => {
                assert_eq!(*family, Family::Ipv4Unicast);
                assert_eq!(next_hop.len(), nh_bytes.len() / 16);
                assert_eq!(next_hop.last(), Some(&IpAddr::V6(ll)));
                assert_eq!(nlri, &[pfx("198.18.100.1")]);
            }
            other => panic!("expected MP_REACH, got {other:?}"),
        }
    }
}
