use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::*;
use super::*;
use crate::bgp::prefix::{Family, NextHop, Prefix};
use crate::bgp::route::{self, Route, UpdateContext};
use proptest::prelude::*;

const V4: CodecOptions = CodecOptions {
    four_octet_as: true,
};
const V2: CodecOptions = CodecOptions {
    four_octet_as: false,
};

fn pfx(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn header(len: u16, ty: u8) -> Vec<u8> {
    let mut v = MARKER.to_vec();
    v.extend_from_slice(&len.to_be_bytes());
    v.push(ty);
    v
}

/// Wraps a body in a header with the right length.
fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = header((HEADER_LEN + body.len()) as u16, ty);
    v.extend_from_slice(body);
    v
}

fn decode_err(bytes: &[u8]) -> (u8, u8, Vec<u8>) {
    let e = Message::decode(bytes, &V4).expect_err("must be rejected");
    (
        e.notification.code,
        e.notification.subcode,
        e.notification.data,
    )
}

fn decode_update(bytes: &[u8]) -> Update {
    match Message::decode(bytes, &V4) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected UPDATE, got {other:?}"),
    }
}

/// UPDATE body from raw withdrawn, attributes and NLRI.
fn update_body(wd: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = (wd.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(wd);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    b
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH_EMPTY: [u8; 3] = [0x40, 2, 0];
const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 198, 18, 0, 1];
const NLRI_ONE: [u8; 5] = [32, 198, 18, 0, 10];

fn sample_open() -> Open {
    Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_001),
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        afi: 1,
                        safi: 1,
                        forwarding_state: true,
                    },
                    GracefulRestartFamily {
                        afi: 2,
                        safi: 1,
                        forwarding_state: false,
                    },
                ],
            }),
        ],
    )
}

fn sample_routes() -> Vec<Route> {
    let mut a = Route::new(
        pfx("198.18.0.10"),
        NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
    );
    a.communities = vec![0xfde8_0064];
    a.large_communities = vec![(64512, 1, 2)];
    let b = Route::new(
        pfx("198.18.1.0/24"),
        NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
    );
    let mut c = Route::new(
        pfx("fd00::10"),
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        },
    );
    c.communities = vec![1, 2];
    let d = Route::new(pfx("fd00:1::/64"), NextHop::v6("fd00::1".parse().unwrap()));
    vec![a, b, c, d]
}

fn sample_messages() -> Vec<Message> {
    let ctx = UpdateContext {
        local_asn: 64512,
        ibgp: false,
        four_octet_as: true,
    };
    let routes = sample_routes();
    let mut out = vec![
        Message::Open(sample_open()),
        Message::Keepalive,
        Message::Notification(Notification::cease(err::ADMINISTRATIVE_SHUTDOWN)),
        Message::RouteRefresh(RouteRefresh {
            afi: 2,
            subtype: 0,
            safi: 1,
        }),
        Message::Update(route::end_of_rib(Family::Ipv4Unicast)),
        Message::Update(route::end_of_rib(Family::Ipv6Unicast)),
    ];
    out.extend(
        route::announce_updates(&routes, &ctx)
            .into_iter()
            .map(Message::Update),
    );
    let ibgp = UpdateContext { ibgp: true, ..ctx };
    out.extend(
        route::announce_updates(&routes, &ibgp)
            .into_iter()
            .map(Message::Update),
    );
    let prefixes: Vec<Prefix> = routes.iter().map(|r| r.prefix).collect();
    out.extend(
        route::withdraw_updates(&prefixes)
            .into_iter()
            .map(Message::Update),
    );
    out
}

// ---- exact vectors ----------------------------------------------------------------------------

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

// ---- header errors ----------------------------------------------------------------------------

#[test]
fn header_errors() {
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    assert_eq!(decode_err(&bad_marker), (1, 1, vec![]));
    assert_eq!(decode_err(&header(18, 4)), (1, 2, vec![0, 18]));
    assert_eq!(decode_err(&header(4097, 2)), (1, 2, vec![0x10, 0x01]));
    assert_eq!(decode_err(&msg(9, &[])), (1, 3, vec![9]));
    assert_eq!(decode_err(&msg(0, &[])), (1, 3, vec![0]));
    assert_eq!(decode_err(&msg(4, &[0])), (1, 2, vec![0, 20]));
    assert_eq!(decode_err(&msg(1, &[4; 9])), (1, 2, vec![0, 28]));
    assert_eq!(decode_err(&msg(2, &[0; 3])), (1, 2, vec![0, 22]));
    assert_eq!(decode_err(&msg(3, &[6])), (1, 2, vec![0, 20]));
    let rr = msg(5, &[0, 1, 0]);
    let (code, sub, _) = decode_err(&rr);
    assert_eq!((code, sub), (7, 1));
    // Body longer than the length field says.
    let mut long = msg(4, &[]);
    long.push(0);
    assert_eq!(decode_err(&long).1, 2);
}

#[test]
fn frame_len_waits_for_header_then_validates() {
    let k = header(19, 4);
    for n in 0..19 {
        assert_eq!(frame_len(&k[..n]), Ok(None));
    }
    assert_eq!(frame_len(&k), Ok(Some(19)));
    let mut two = Message::Keepalive.encode(&V4).unwrap().to_vec();
    two.extend_from_slice(&Message::Keepalive.encode(&V4).unwrap());
    let (m, used) = decode_frame(&two, &V4).unwrap().unwrap();
    assert_eq!((m, used), (Message::Keepalive, 19));
    let open = Message::Open(sample_open()).encode(&V4).unwrap();
    assert_eq!(decode_frame(&open[..25], &V4), Ok(None));
    // A bad header is reported before the body arrives.
    let mut bad = header(19, 4);
    bad[0] = 0;
    assert!(decode_frame(&bad, &V4).is_err());
}

// ---- OPEN errors ------------------------------------------------------------------------------

fn open_body(version: u8, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0xfd, 0xe8];
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

#[test]
fn open_errors() {
    let id = [198, 18, 0, 2];
    assert_eq!(
        decode_err(&msg(1, &open_body(3, 90, id, &[]))),
        (2, 1, vec![0, 4])
    );
    assert_eq!(decode_err(&msg(1, &open_body(4, 1, id, &[]))).1, 6);
    assert_eq!(decode_err(&msg(1, &open_body(4, 2, id, &[]))).1, 6);
    assert_eq!(decode_err(&msg(1, &open_body(4, 90, [0; 4], &[]))).1, 3);
    // Authentication parameter (type 1) is not supported.
    assert_eq!(
        decode_err(&msg(1, &open_body(4, 90, id, &[1, 1, 0]))).1,
        err::UNSUPPORTED_OPTIONAL_PARAMETER
    );
    // Parameter length overruns the parameters.
    assert_eq!(
        decode_err(&msg(1, &open_body(4, 90, id, &[2, 9, 1, 4]))),
        (2, 0, vec![])
    );
    // Optional parameters length says more than the message holds.
    let mut b = open_body(4, 90, id, &[]);
    b[9] = 4;
    assert_eq!(decode_err(&msg(1, &b)).0, 2);
    // Known capability with a wrong length.
    assert_eq!(
        decode_err(&msg(1, &open_body(4, 90, id, &[2, 4, 65, 2, 0, 1]))),
        (2, 0, vec![])
    );
    assert_eq!(
        decode_err(&msg(1, &open_body(4, 90, id, &[2, 3, 2, 1, 0]))),
        (2, 0, vec![])
    );
    // Hold time 0 and 3 are fine.
    for hold in [0, 3] {
        assert!(Message::decode(&msg(1, &open_body(4, hold, id, &[])), &V4).is_ok());
    }
}

#[test]
fn open_unknown_capabilities_and_multiple_parameters() {
    let id = [198, 18, 0, 2];
    // Two capability parameters; an unknown capability (73 = FQDN) is kept verbatim.
    let params = [2, 6, 1, 4, 0, 2, 0, 1, 2, 5, 73, 3, 1, 2, 3];
    let Message::Open(o) = Message::decode(&msg(1, &open_body(4, 90, id, &params)), &V4).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::Unknown {
                code: 73,
                value: vec![1, 2, 3]
            }
        ]
    );
    assert_eq!(o.families(), vec![Family::Ipv6Unicast]);
    assert_eq!(o.asn(), 65000);
    // An empty capabilities parameter is legal.
    assert!(Message::decode(&msg(1, &open_body(4, 90, id, &[2, 0])), &V4).is_ok());
}

#[test]
fn open_rfc9072_extended_parameters() {
    let id = [198, 18, 0, 2];
    let mut b = vec![4, 0xfd, 0xe8, 0, 90];
    b.extend_from_slice(&id);
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Ext length 9, then type 2 / len(2) 6 / MP cap.
    b.extend_from_slice(&[255, 255, 0, 9, 2, 0, 6, 1, 4, 0, 1, 0, 1]);
    let Message::Open(o) = Message::decode(&msg(1, &b), &V4).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![Capability::Multiprotocol { afi: 1, safi: 1 }]
    );
    // And we emit the extended form ourselves when the capabilities do not fit in 255 bytes.
    let big = Open::new(
        65000,
        90,
        Ipv4Addr::new(198, 18, 0, 1),
        (0..10)
            .map(|i| Capability::Unknown {
                code: 200 + i,
                value: vec![i; 40],
            })
            .collect(),
    );
    let bytes = Message::Open(big.clone()).encode(&V4).unwrap();
    assert_eq!(&bytes[28..30], &[255, 255]);
    assert_eq!(Message::decode(&bytes, &V4).unwrap(), Message::Open(big));
}

// ---- UPDATE errors ----------------------------------------------------------------------------

#[test]
fn update_length_errors_reset_the_session() {
    // Withdrawn length overruns the message.
    assert_eq!(decode_err(&msg(2, &[0, 9, 0, 0])), (3, 1, vec![]));
    // Attribute length overruns the message.
    assert_eq!(decode_err(&msg(2, &[0, 0, 0, 9])), (3, 1, vec![]));
    // Bad NLRI: prefix length 33, or truncated prefix.
    let base = [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &base, &[33, 1, 2, 3, 4, 5]))).1,
        err::INVALID_NETWORK_FIELD
    );
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &base, &[24, 1, 2]))).1,
        err::INVALID_NETWORK_FIELD
    );
    assert_eq!(
        decode_err(&msg(2, &update_body(&[40, 1], &[], &[]))).1,
        err::INVALID_NETWORK_FIELD
    );
}

#[test]
fn update_well_formed_has_no_errors() {
    let base = [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    let u = decode_update(&msg(2, &update_body(&[], &base, &NLRI_ONE)));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(u.nlri, vec![pfx("198.18.0.10")]);
    // Withdrawal-only UPDATE needs no attributes.
    let u = decode_update(&msg(2, &update_body(&[24, 198, 18, 7], &[], &[])));
    assert_eq!(u.withdrawn, vec![pfx("198.18.7.0/24")]);
    assert!(u.errors.is_empty());
}

fn soft_errors(attrs: &[u8], nlri: &[u8]) -> Vec<(ErrorAction, u8)> {
    decode_update(&msg(2, &update_body(&[], attrs, nlri)))
        .errors
        .into_iter()
        .map(|e| (e.action, e.subcode))
        .collect()
}

#[test]
fn update_recoverable_errors_follow_rfc7606() {
    use ErrorAction::*;
    let with = |extra: &[u8]| [&ORIGIN_IGP[..], &AS_PATH_EMPTY, &NEXT_HOP, extra].concat();
    // Invalid ORIGIN value.
    let attrs = [&[0x40, 1, 1, 7][..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    assert!(soft_errors(&attrs, &NLRI_ONE).contains(&(TreatAsWithdraw, err::INVALID_ORIGIN)));
    // Missing NEXT_HOP with NLRI present.
    let attrs = [&ORIGIN_IGP[..], &AS_PATH_EMPTY].concat();
    assert_eq!(
        soft_errors(&attrs, &NLRI_ONE),
        vec![(TreatAsWithdraw, err::MISSING_WELL_KNOWN)]
    );
    // Wrong flags on ORIGIN (marked optional).
    let attrs = [&[0xc0, 1, 1, 0][..], &AS_PATH_EMPTY, &NEXT_HOP].concat();
    assert!(soft_errors(&attrs, &NLRI_ONE).contains(&(TreatAsWithdraw, err::ATTRIBUTE_FLAGS)));
    // Wrong length on NEXT_HOP / LOCAL_PREF / MED.
    assert_eq!(
        soft_errors(&with(&[0x40, 5, 3, 0, 0, 1]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::ATTRIBUTE_LENGTH)]
    );
    assert_eq!(
        soft_errors(&with(&[0x80, 4, 2, 0, 1]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::ATTRIBUTE_LENGTH)]
    );
    // Malformed AS_PATH: zero-length segment, bad segment type, overrun.
    for bad in [
        &[0x40, 2, 2, 2, 0][..],
        &[0x40, 2, 6, 9, 1, 0, 0, 0, 1],
        &[0x40, 2, 4, 2, 2, 0, 0],
    ] {
        let attrs = [&ORIGIN_IGP[..], bad, &NEXT_HOP].concat();
        assert!(
            soft_errors(&attrs, &NLRI_ONE).contains(&(TreatAsWithdraw, err::MALFORMED_AS_PATH))
        );
    }
    // COMMUNITIES and LARGE_COMMUNITIES of the wrong size.
    assert_eq!(
        soft_errors(&with(&[0xc0, 8, 3, 1, 2, 3]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::OPTIONAL_ATTRIBUTE)]
    );
    assert_eq!(
        soft_errors(&with(&[0xc0, 32, 4, 1, 2, 3, 4]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::OPTIONAL_ATTRIBUTE)]
    );
    // ATOMIC_AGGREGATE / AGGREGATOR of the wrong size are discarded.
    assert_eq!(
        soft_errors(&with(&[0x40, 6, 1, 0]), &NLRI_ONE),
        vec![(AttributeDiscard, err::ATTRIBUTE_LENGTH)]
    );
    assert_eq!(
        soft_errors(&with(&[0xc0, 7, 2, 0, 0]), &NLRI_ONE),
        vec![(AttributeDiscard, err::ATTRIBUTE_LENGTH)]
    );
    // Duplicate ORIGIN: keep the first.
    let u = decode_update(&msg(
        2,
        &update_body(&[], &with(&[0x40, 1, 1, 2]), &NLRI_ONE),
    ));
    assert_eq!(u.errors[0].action, AttributeDiscard);
    assert_eq!(u.attributes[0], PathAttribute::Origin(Origin::Igp));
    assert!(!u.treat_as_withdraw());
    // Unrecognised well-known attribute.
    assert_eq!(
        soft_errors(&with(&[0x40, 99, 0]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::UNRECOGNIZED_WELL_KNOWN)]
    );
    // Attribute overruns the attribute list: contained.
    assert_eq!(
        soft_errors(&with(&[0xc0, 8, 8, 0, 0]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::ATTRIBUTE_LENGTH)]
    );
    assert_eq!(
        soft_errors(&with(&[0xd0, 8]), &NLRI_ONE),
        vec![(TreatAsWithdraw, err::MALFORMED_ATTRIBUTE_LIST)]
    );
    // An unknown optional attribute is kept, not an error.
    let u = decode_update(&msg(
        2,
        &update_body(&[], &with(&[0xe0, 99, 2, 7, 7]), &NLRI_ONE),
    ));
    assert!(u.errors.is_empty());
    assert!(u.attributes.contains(&PathAttribute::Other {
        flags: 0xe0,
        type_code: 99,
        value: vec![7, 7]
    }));
}

#[test]
fn update_mp_errors_reset_the_session() {
    let base = [&ORIGIN_IGP[..], &AS_PATH_EMPTY].concat();
    // MP_REACH with a 5-byte next hop.
    let mp = [0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &[&base[..], &mp].concat(), &[]))).1,
        err::OPTIONAL_ATTRIBUTE
    );
    // MP_UNREACH with a bad prefix.
    let mp = [0x80, 15, 5, 0, 2, 1, 129, 0];
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &mp, &[]))).1,
        err::OPTIONAL_ATTRIBUTE
    );
    // Repeated MP_UNREACH.
    let mp = [0x80, 15, 3, 0, 2, 1];
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &[mp, mp].concat(), &[]))).1,
        err::MALFORMED_ATTRIBUTE_LIST
    );
    // MP attribute overrunning the list.
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &[0x80, 15, 9, 0, 2], &[]))).1,
        err::ATTRIBUTE_LENGTH
    );
    // MP attribute with wrong flags.
    assert_eq!(
        decode_err(&msg(2, &update_body(&[], &[0x40, 15, 3, 0, 2, 1], &[]))).1,
        err::ATTRIBUTE_FLAGS
    );
    // MP for a family we do not speak (VPNv4) is opaque and harmless.
    let u = decode_update(&msg(2, &update_body(&[], &[0x80, 15, 3, 0, 1, 128], &[])));
    assert!(matches!(
        u.attributes[0],
        PathAttribute::Other { type_code: 15, .. }
    ));
    // MP_REACH without ORIGIN / AS_PATH: treat-as-withdraw.
    let mut mp = vec![0x80, 14, 0, 0, 2, 1, 16];
    mp.extend_from_slice(&[0xfd; 16]);
    mp.extend_from_slice(&[0, 8, 0xfd]);
    mp[2] = (mp.len() - 3) as u8;
    let u = decode_update(&msg(2, &update_body(&[], &mp, &[])));
    assert!(u.treat_as_withdraw());
}

// ---- truncation / garbage ---------------------------------------------------------------------

#[test]
fn truncation_at_every_length_is_an_error() {
    for opts in [V4, V2] {
        for m in sample_messages() {
            let bytes = m.encode(&opts).unwrap();
            assert_eq!(Message::decode(&bytes, &opts).unwrap(), m);
            for n in 0..bytes.len() {
                assert!(Message::decode(&bytes[..n], &opts).is_err(), "{m:?} at {n}");
                assert_eq!(decode_frame(&bytes[..n], &opts), Ok(None));
            }
        }
    }
}

#[test]
fn truncated_body_with_fixed_length_field_never_panics() {
    // Shrink the body but also the length field, so the decoder sees a short, "valid" frame.
    for m in sample_messages() {
        let bytes = m.encode(&V4).unwrap();
        for n in HEADER_LEN..bytes.len() {
            let mut b = bytes[..n].to_vec();
            b[16..18].copy_from_slice(&(n as u16).to_be_bytes());
            let _ = Message::decode(&b, &V4);
        }
    }
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

// ---- independent decoder oracle (netgauze-bgp-pkt) --------------------------------------------

mod oracle {
    use super::*;
    use netgauze_bgp_pkt::BgpMessage;
    use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
    use netgauze_parse_utils::WritablePdu;
    use netgauze_parse_utils::reader::SliceReader;
    use netgauze_parse_utils::traits::ParseFromWithOneInput;

    /// Parses with netgauze, checks it reported nothing, and re-serialises: our bytes must be
    /// exactly what an independent implementation would write for the same message.
    fn check(bytes: &[u8], asn4: bool) -> String {
        let mut ctx = BgpParsingContext::default();
        ctx.set_asn4(asn4);
        let parsed = BgpMessage::parse(&mut SliceReader::new(bytes), &mut ctx)
            .unwrap_or_else(|e| panic!("netgauze rejected {bytes:02x?}: {e:?}"));
        let ignored = format!("{:?}", ctx.reset_parsing_errors());
        let clean = format!(
            "{:?}",
            netgauze_bgp_pkt::wire::deserializer::BgpParsingIgnoredErrors::default()
        );
        assert_eq!(ignored, clean, "netgauze ignored errors in {parsed:?}");
        let mut out: Vec<u8> = Vec::new();
        parsed
            .write(&mut std::io::Cursor::new(&mut out))
            .expect("netgauze re-encode");
        assert_eq!(out, bytes, "netgauze re-encoding differs for {parsed:?}");
        format!("{parsed:?}")
    }

    #[test]
    fn our_open_is_understood() {
        let dbg = check(&Message::Open(sample_open()).encode(&V4).unwrap(), true);
        assert!(dbg.contains("my_as: 23456"), "{dbg}");
        assert!(dbg.contains("4200000001"), "{dbg}");
        assert!(dbg.contains("hold_time: 90"), "{dbg}");
        assert!(dbg.contains("Ipv6Unicast"), "{dbg}");
        assert!(dbg.contains("RouteRefresh"), "{dbg}");
        assert!(dbg.contains("GracefulRestartCapability"), "{dbg}");
        assert!(dbg.contains("restart: true"), "{dbg}");
        assert!(dbg.contains("time: 120"), "{dbg}");
        assert!(dbg.contains("forwarding_state: true"), "{dbg}");
    }

    #[test]
    fn our_updates_are_understood() {
        for m in sample_messages() {
            if !matches!(m, Message::Update(_)) {
                continue;
            }
            let dbg = check(&m.encode(&V4).unwrap(), true);
            let Message::Update(u) = &m else {
                unreachable!()
            };
            for p in u.nlri.iter().chain(&u.withdrawn) {
                assert!(dbg.contains(&p.to_string()), "{p} missing in {dbg}");
            }
            for a in &u.attributes {
                match a {
                    PathAttribute::MpReach { nlri, next_hop, .. } => {
                        for p in nlri {
                            assert!(dbg.contains(&p.to_string()), "{dbg}");
                        }
                        for nh in next_hop {
                            assert!(dbg.contains(&nh.to_string()), "{dbg}");
                        }
                    }
                    PathAttribute::MpUnreach { withdrawn, .. } => {
                        for p in withdrawn {
                            assert!(dbg.contains(&p.to_string()), "{dbg}");
                        }
                    }
                    PathAttribute::LocalPref(lp) => assert!(dbg.contains(&lp.to_string())),
                    _ => {}
                }
            }
            if let Some(f) = u.end_of_rib() {
                assert!(dbg.contains("MpUnreach") || f == Family::Ipv4Unicast);
            }
        }
    }

    #[test]
    fn two_octet_session_updates_are_understood() {
        let ctx = UpdateContext {
            local_asn: 4_200_000_001,
            ibgp: false,
            four_octet_as: false,
        };
        for u in route::announce_updates(&sample_routes(), &ctx) {
            let dbg = check(&Message::Update(u).encode(&V2).unwrap(), false);
            assert!(dbg.contains("23456") && dbg.contains("4200000001"), "{dbg}");
        }
    }

    #[test]
    fn other_messages_are_understood() {
        for m in sample_messages() {
            if !matches!(m, Message::Update(_) | Message::Open(_)) {
                check(&m.encode(&V4).unwrap(), true);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn generated_updates_are_understood(routes in proptest::collection::vec(arb_route(), 1..40), ibgp: bool) {
            let ctx = UpdateContext { local_asn: 65001, ibgp, four_octet_as: true };
            for u in route::announce_updates(&routes, &ctx) {
                check(&Message::Update(u).encode(&V4).unwrap(), true);
            }
            let prefixes: Vec<Prefix> = routes.iter().map(|r| r.prefix).collect();
            for u in route::withdraw_updates(&prefixes) {
                check(&Message::Update(u).encode(&V4).unwrap(), true);
            }
        }
    }
}

// ---- property tests ---------------------------------------------------------------------------

fn arb_prefix_v4() -> impl Strategy<Value = Prefix> {
    // Unicast space only: the oracle refuses multicast NLRI in the unicast family.
    (1u32..0xe000_0000, 0u8..=32)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), l.max(1)).unwrap())
}

fn arb_prefix_v6() -> impl Strategy<Value = Prefix> {
    (any::<u128>(), 1u8..=128).prop_map(|(a, l)| {
        // Keep it out of ff00::/8 (multicast) for the oracle's unicast check.
        let a = a & !(0xffu128 << 120) | (0x20u128 << 120);
        Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), l).unwrap()
    })
}

fn arb_route() -> impl Strategy<Value = Route> {
    let nh = prop_oneof![
        any::<u32>().prop_map(|a| NextHop::V4(Ipv4Addr::from(a))),
        (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, l)| NextHop::V6 {
            global: Ipv6Addr::from(g),
            link_local: l.map(Ipv6Addr::from),
        }),
    ];
    (
        prop_oneof![arb_prefix_v4(), arb_prefix_v6()],
        nh,
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(any::<u32>(), 0..4),
        proptest::collection::vec(any::<(u32, u32, u32)>(), 0..3),
    )
        .prop_map(|(prefix, nh, lp, c, lc)| {
            // Pair the next hop with the prefix family.
            let next_hop = match (prefix.addr(), nh) {
                (IpAddr::V4(_), NextHop::V4(_)) | (IpAddr::V6(_), NextHop::V6 { .. }) => nh,
                (IpAddr::V4(_), _) => NextHop::V4(Ipv4Addr::new(198, 18, 0, 1)),
                (IpAddr::V6(_), _) => NextHop::v6("fd00::1".parse().unwrap()),
            };
            Route {
                prefix,
                next_hop,
                local_pref: lp,
                communities: c,
                large_communities: lc,
            }
        })
}

fn arb_capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Capability::Multiprotocol { afi, safi }),
        Just(Capability::RouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            proptest::collection::vec((any::<u16>(), any::<u8>(), any::<bool>()), 0..4)
        )
            .prop_map(|(r, n, t, f)| Capability::GracefulRestart(GracefulRestart {
                restart_state: r,
                notification: n,
                restart_time: t,
                families: f
                    .into_iter()
                    .map(|(afi, safi, forwarding_state)| GracefulRestartFamily {
                        afi,
                        safi,
                        forwarding_state
                    })
                    .collect(),
            })),
        (
            any::<u8>().prop_filter("known code", |c| ![1, 2, 64, 65].contains(c)),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn arb_open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>().prop_filter("1 and 2 are refused", |h| *h != 1 && *h != 2),
        1u32..,
        proptest::collection::vec(arb_capability(), 0..12),
    )
        .prop_map(|(my_as, hold_time, id, capabilities)| Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            capabilities,
        })
}

fn arb_segment(four: bool) -> impl Strategy<Value = AsPathSegment> {
    let asn = if four {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    };
    (1u8..=4, proptest::collection::vec(asn, 1..8)).prop_map(|(k, a)| match k {
        1 => AsPathSegment::Set(a),
        2 => AsPathSegment::Sequence(a),
        3 => AsPathSegment::ConfedSequence(a),
        _ => AsPathSegment::ConfedSet(a),
    })
}

/// One attribute per type code, in a canonical order, so decoding reproduces the input.
fn arb_attributes(four: bool) -> impl Strategy<Value = Vec<PathAttribute>> {
    let asn = if four {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    };
    (
        (
            proptest::option::of(prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]),
            proptest::option::of(proptest::collection::vec(arb_segment(four), 0..3)),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
        ),
        (
            proptest::option::of((asn, any::<u32>())),
            proptest::option::of(proptest::collection::vec(any::<u32>(), 1..70)),
            proptest::option::of(prop_oneof![
                (
                    any::<u32>().prop_map(|a| vec![IpAddr::V4(Ipv4Addr::from(a))]),
                    proptest::collection::vec(arb_prefix_v4(), 0..10)
                )
                    .prop_map(|(next_hop, nlri)| PathAttribute::MpReach {
                        family: Family::Ipv4Unicast,
                        next_hop,
                        nlri
                    }),
                (
                    proptest::collection::vec(
                        any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
                        1..=2
                    ),
                    proptest::collection::vec(arb_prefix_v6(), 0..10)
                )
                    .prop_map(|(next_hop, nlri)| PathAttribute::MpReach {
                        family: Family::Ipv6Unicast,
                        next_hop,
                        nlri
                    }),
            ]),
            proptest::option::of(proptest::collection::vec(arb_prefix_v6(), 0..10).prop_map(
                |withdrawn| PathAttribute::MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn,
                },
            )),
            proptest::option::of(proptest::collection::vec(arb_segment(true), 0..3)),
            proptest::option::of(proptest::collection::vec(any::<(u32, u32, u32)>(), 1..30)),
            proptest::option::of((
                prop_oneof![Just(0x80u8), Just(0xc0), Just(0xe0)],
                100u8..=255,
                proptest::collection::vec(any::<u8>(), 0..300),
            )),
        ),
    )
        .prop_map(
            |(
                (origin, path, nh, med, lp, atomic),
                (aggr, comm, reach, unreach, as4, large, other),
            )| {
                let mut v = Vec::new();
                v.extend(origin.map(PathAttribute::Origin));
                v.extend(path.map(PathAttribute::AsPath));
                v.extend(nh.map(|a| PathAttribute::NextHop(Ipv4Addr::from(a))));
                v.extend(med.map(PathAttribute::MultiExitDisc));
                v.extend(lp.map(PathAttribute::LocalPref));
                if atomic {
                    v.push(PathAttribute::AtomicAggregate);
                }
                v.extend(aggr.map(|(asn, a)| PathAttribute::Aggregator {
                    asn,
                    address: Ipv4Addr::from(a),
                }));
                v.extend(comm.map(PathAttribute::Communities));
                v.extend(reach);
                v.extend(unreach);
                v.extend(as4.map(PathAttribute::As4Path));
                v.extend(large.map(PathAttribute::LargeCommunities));
                v.extend(other.map(|(flags, type_code, value)| PathAttribute::Other {
                    flags,
                    type_code,
                    value,
                }));
                v
            },
        )
}

fn arb_update(four: bool) -> impl Strategy<Value = Update> {
    (
        proptest::collection::vec(arb_prefix_v4(), 0..20),
        arb_attributes(four),
        proptest::collection::vec(arb_prefix_v4(), 0..20),
    )
        .prop_map(|(withdrawn, attributes, nlri)| Update {
            withdrawn,
            attributes,
            nlri,
            errors: Vec::new(),
        })
        .prop_filter("well-formed announcements only", |u| {
            // Announcements without mandatory attributes decode with recorded errors.
            let mut u2 = u.clone();
            u2.errors.clear();
            let has = |t| u.attributes.iter().any(|a| attr_type(a) == t);
            let mp = u
                .attributes
                .iter()
                .any(|a| matches!(a, PathAttribute::MpReach { nlri, .. } if !nlri.is_empty()));
            let needs_nh = !u.nlri.is_empty();
            !(needs_nh || mp) || (has(1) && has(2) && (!needs_nh || has(3)))
        })
}

fn arb_message(four: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_open().prop_map(Message::Open),
        arb_update(four).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(code, subcode, data)| Message::Notification(Notification {
                code,
                subcode,
                data
            })),
        Just(Message::Keepalive),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, subtype, safi)| {
            Message::RouteRefresh(RouteRefresh { afi, subtype, safi })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_four_octet(m in arb_message(true)) {
        if let Ok(bytes) = m.encode(&V4) {
            prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
            prop_assert_eq!(Message::decode(&bytes, &V4), Ok(m));
        }
    }

    #[test]
    fn roundtrip_two_octet(m in arb_message(false)) {
        if let Ok(bytes) = m.encode(&V2) {
            prop_assert_eq!(Message::decode(&bytes, &V2), Ok(m));
        }
    }

    #[test]
    fn roundtrip_open(o in arb_open()) {
        let bytes = Message::Open(o.clone()).encode(&V4).unwrap();
        prop_assert_eq!(Message::decode(&bytes, &V4), Ok(Message::Open(o)));
    }

    #[test]
    fn roundtrip_update(u in arb_update(true)) {
        if let Ok(bytes) = Message::Update(u.clone()).encode(&V4) {
            prop_assert_eq!(Message::decode(&bytes, &V4), Ok(Message::Update(u)));
        }
    }

    #[test]
    fn roundtrip_route_groups(routes in proptest::collection::vec(arb_route(), 0..200), ibgp: bool, four: bool) {
        let ctx = UpdateContext { local_asn: 4_200_000_000, ibgp, four_octet_as: four };
        let opts = CodecOptions { four_octet_as: four };
        let mut announced = std::collections::BTreeSet::new();
        for u in route::announce_updates(&routes, &ctx) {
            let bytes = Message::Update(u.clone()).encode(&opts).unwrap();
            prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
            let Ok(Message::Update(d)) = Message::decode(&bytes, &opts) else {
                return Err(TestCaseError::fail("not an update"));
            };
            prop_assert!(d.errors.is_empty());
            prop_assert_eq!(&d, &u);
            announced.extend(d.nlri.iter().copied());
            for a in &d.attributes {
                if let PathAttribute::MpReach { nlri, .. } = a {
                    announced.extend(nlri.iter().copied());
                }
            }
        }
        let want: std::collections::BTreeSet<Prefix> = routes.iter().map(|r| r.prefix).collect();
        prop_assert_eq!(announced, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(&bytes, &V4);
        let _ = decode_frame(&bytes, &V2);
    }

    #[test]
    fn arbitrary_bodies_never_panic(ty in 1u8..=5, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        // A valid header makes the body decoders do the work.
        let _ = Message::decode(&msg(ty, &body), &V4);
        let _ = Message::decode(&msg(ty, &body), &V2);
    }

    #[test]
    fn mutated_messages_never_panic(idx in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), byte: u8) {
        let msgs = sample_messages();
        let m = &msgs[idx.index(msgs.len())];
        let mut bytes = m.encode(&V4).unwrap().to_vec();
        let p = pos.index(bytes.len() - 16) + 16;
        bytes[p] = byte;
        let _ = Message::decode(&bytes, &V4);
    }
}
