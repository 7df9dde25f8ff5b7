//! An independent decoder (netgauze-bgp-pkt) as oracle for what we encode.

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
