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

/// Generators shared by the property and oracle tests.
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

mod exact_bytes;
mod malformed;
mod oracle;
mod properties;
