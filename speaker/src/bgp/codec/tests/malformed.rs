//! Decoding malformed input: the NOTIFICATION each error gets (RFC 4271 §6), or the
//! RFC 7606 containment of an UPDATE error; never a panic.

use super::*;

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
