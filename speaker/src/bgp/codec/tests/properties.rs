//! Property tests: arbitrary messages encode and decode back to themselves.

use proptest::prelude::*;

use super::*;

fn arb_capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Capability::Multiprotocol { afi, safi }),
        Just(Capability::RouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u16>()), 1..6).prop_map(|t| {
            Capability::ExtendedNextHop(
                t.into_iter()
                    .map(|(afi, safi, next_hop_afi)| ExtendedNextHop {
                        afi,
                        safi,
                        next_hop_afi,
                    })
                    .collect(),
            )
        }),
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
            any::<u8>().prop_filter("known code", |c| ![1, 2, 5, 64, 65].contains(c)),
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
            let has = |t| u.attributes.iter().any(|a| a.type_code() == t);
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
