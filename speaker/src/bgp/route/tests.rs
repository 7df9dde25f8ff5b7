use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::bgp::codec::{CodecOptions, Message};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn v4(s: &str) -> Route {
    Route::new(p(s), NextHop::V4("198.18.0.1".parse().unwrap()))
}

fn v6(s: &str) -> Route {
    Route::new(p(s), NextHop::v6("fd00::1".parse().unwrap()))
}

const EBGP: UpdateContext = UpdateContext {
    local_asn: 64512,
    ibgp: false,
    four_octet_as: true,
};
const IBGP: UpdateContext = UpdateContext {
    local_asn: 64512,
    ibgp: true,
    four_octet_as: true,
};

#[test]
fn consistency() {
    assert!(v4("198.18.0.1").is_consistent());
    assert!(v6("fd00::1").is_consistent());
    let bad = Route::new(p("fd00::1"), NextHop::V4("198.18.0.1".parse().unwrap()));
    assert!(!bad.is_consistent());
    assert!(announce_updates([&bad], &EBGP).is_empty());
}

#[test]
fn groups_by_identical_attributes() {
    let mut a = v4("198.18.0.10");
    let b = v4("198.18.0.11");
    let mut c = v4("198.18.0.12");
    c.communities = vec![0xfde8_0001];
    a.large_communities = vec![];
    let d = v6("fd00::10");
    let e = v6("fd00::11");
    a.local_pref = None;
    let ups = announce_updates([&a, &b, &c, &d, &e], &EBGP);
    assert_eq!(ups.len(), 3);
    let v4_groups: Vec<_> = ups.iter().filter(|u| !u.nlri.is_empty()).collect();
    assert_eq!(v4_groups.len(), 2);
    assert!(v4_groups.iter().any(|u| u.nlri.len() == 2));
    let v6u = ups.iter().find(|u| u.nlri.is_empty()).unwrap();
    match v6u.attributes.last().unwrap() {
        PathAttribute::MpReach { nlri, next_hop, .. } => {
            assert_eq!(nlri.len(), 2);
            assert_eq!(next_hop.len(), 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    // eBGP: AS_PATH is our AS, no LOCAL_PREF.
    for u in &ups {
        assert!(
            u.attributes
                .contains(&PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
                    64512
                ])]))
        );
        assert!(
            !u.attributes
                .iter()
                .any(|a| matches!(a, PathAttribute::LocalPref(_)))
        );
    }
}

#[test]
fn ibgp_has_empty_as_path_and_local_pref() {
    let mut a = v4("198.18.0.10");
    let b = v4("198.18.0.11");
    a.local_pref = Some(200);
    let ups = announce_updates([&a, &b], &IBGP);
    assert_eq!(ups.len(), 2, "different local prefs split groups");
    for u in &ups {
        assert!(u.attributes.contains(&PathAttribute::AsPath(vec![])));
    }
    assert!(
        ups.iter()
            .any(|u| u.attributes.contains(&PathAttribute::LocalPref(200)))
    );
    assert!(ups.iter().any(|u| {
        u.attributes
            .contains(&PathAttribute::LocalPref(DEFAULT_LOCAL_PREF))
    }));
}

#[test]
fn two_octet_peer_gets_as_trans_and_as4_path() {
    let ctx = UpdateContext {
        local_asn: 4_200_000_000,
        ibgp: false,
        four_octet_as: false,
    };
    let ups = announce_updates([&v4("198.18.0.1")], &ctx);
    let attrs = &ups[0].attributes;
    assert!(
        attrs.contains(&PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
            23456
        ])]))
    );
    assert!(
        attrs.contains(&PathAttribute::As4Path(vec![AsPathSegment::Sequence(
            vec![4_200_000_000]
        )]))
    );
    let opts = CodecOptions {
        four_octet_as: false,
    };
    let bytes = Message::Update(ups[0].clone()).encode(&opts).unwrap();
    assert_eq!(
        Message::decode(&bytes, &opts).unwrap(),
        Message::Update(ups[0].clone())
    );
}

#[test]
fn large_sets_respect_message_size() {
    let opts = CodecOptions::default();
    for ctx in [EBGP, IBGP] {
        let routes: Vec<Route> = (0..3000u32)
            .map(|i| {
                let a = Ipv4Addr::from(0xc612_0000 + i);
                let mut r = Route::new(Prefix::host(a.into()), NextHop::V4(Ipv4Addr::LOCALHOST));
                r.large_communities = vec![(1, 2, 3); 4];
                r
            })
            .chain((0..3000u32).map(|i| {
                let a = Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i));
                Route::new(
                    Prefix::host(a.into()),
                    NextHop::V6 {
                        global: "fd00::1".parse().unwrap(),
                        link_local: Some("fe80::1".parse().unwrap()),
                    },
                )
            }))
            .collect();
        let ups = announce_updates(&routes, &ctx);
        let mut seen = 0;
        for u in &ups {
            let bytes = Message::Update(u.clone()).encode(&opts).unwrap();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
            seen += u.nlri.len()
                + u.attributes
                    .iter()
                    .map(|a| match a {
                        PathAttribute::MpReach { nlri, .. } => nlri.len(),
                        _ => 0,
                    })
                    .sum::<usize>();
        }
        assert_eq!(seen, 6000);
        // Packing is tight: few messages, each near the limit.
        assert!(ups.len() < 20, "{} updates", ups.len());

        let prefixes: Vec<Prefix> = routes.iter().map(|r| r.prefix).collect();
        let wd = withdraw_updates(&prefixes);
        let mut n = 0;
        for u in &wd {
            let bytes = Message::Update(u.clone()).encode(&opts).unwrap();
            assert!(bytes.len() <= MAX_MESSAGE_LEN);
            n += u.withdrawn.len()
                + u.attributes
                    .iter()
                    .map(|a| match a {
                        PathAttribute::MpUnreach { withdrawn, .. } => withdrawn.len(),
                        _ => 0,
                    })
                    .sum::<usize>();
        }
        assert_eq!(n, 6000);
    }
}

#[test]
fn end_of_rib_markers() {
    let opts = CodecOptions::default();
    let v4 = Message::Update(end_of_rib(Family::Ipv4Unicast))
        .encode(&opts)
        .unwrap();
    assert_eq!(v4.len(), 23);
    let v6 = Message::Update(end_of_rib(Family::Ipv6Unicast))
        .encode(&opts)
        .unwrap();
    // Header, two lengths, MP_UNREACH with AFI 2 / SAFI 1 and nothing else.
    assert_eq!(&v6[19..], &[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    for m in [&v4, &v6] {
        let Message::Update(u) = Message::decode(m, &opts).unwrap() else {
            panic!()
        };
        assert!(u.end_of_rib().is_some());
    }
}
