use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::*;
use super::*;
use crate::bgp::prefix::{Family, NextHop, Prefix};
use crate::bgp::route::{self, Route, UpdateContext};

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

mod exact_bytes;
mod malformed;
mod oracle;
mod properties;
