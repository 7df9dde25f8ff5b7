use std::time::Duration;

use super::*;

fn ll(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn our_advertisement_announces_no_default_router() {
    let ra = advertisement();
    assert_eq!(ra.len(), 16);
    assert_eq!((ra[0], ra[1]), (134, 0));
    // Router lifetime (bytes 6-7) 0: no host makes us its default router.
    assert_eq!(&ra[4..], &[0; 12]);
}

#[test]
fn only_valid_router_advertisements_name_a_router() {
    let router = ll("fe80::18:2");
    let mut ra = advertisement().to_vec();
    ra[6..8].copy_from_slice(&1800u16.to_be_bytes());
    ra.extend_from_slice(&[1, 1, 2, 0x18, 0, 0, 0, 2]); // a source link-layer address option
    let own = Some(ll("fe80::18:11"));
    assert_eq!(
        advertising_router(&ra, router, Some(255), own),
        Some(router)
    );
    // RFC 4861 §6.1.2: a forwarded RA (hop limit < 255) or an unknown hop limit.
    assert_eq!(advertising_router(&ra, router, Some(254), own), None);
    assert_eq!(advertising_router(&ra, router, None, own), None);
    // Not from a link-local address.
    assert_eq!(
        advertising_router(&ra, ll("fd00:18::2"), Some(255), own),
        None
    );
    // Our own.
    assert_eq!(
        advertising_router(&ra, ll("fe80::18:11"), Some(255), own),
        None
    );
    // Code not 0, another type, too short, empty: untrusted bytes never panic.
    let mut bad_code = ra.clone();
    bad_code[1] = 1;
    let mut solicit = ra.clone();
    solicit[0] = 133;
    for bad in [&bad_code[..], &solicit, &ra[..15], &[]] {
        assert_eq!(advertising_router(bad, router, Some(255), own), None);
    }
}

#[test]
fn a_heard_router_is_kept_until_it_falls_silent() {
    let now = Instant::now();
    let first = Heard {
        ifindex: 7,
        router: ll("fe80::1"),
        at: now,
    };
    assert!(takes_over(None, ll("fe80::2"), now));
    assert!(takes_over(
        Some(&first),
        ll("fe80::1"),
        now + Duration::from_secs(1)
    ));
    // Another sender on the link does not take over while the router is heard...
    assert!(!takes_over(
        Some(&first),
        ll("fe80::2"),
        now + ROUTER_SILENCE - Duration::from_millis(1)
    ));
    // ... but does once it has been silent for ROUTER_SILENCE.
    assert!(takes_over(
        Some(&first),
        ll("fe80::2"),
        now + ROUTER_SILENCE
    ));
}

#[test]
fn link_local_addresses_from_proc_net_if_inet6() {
    let text = "\
00000000000000000000000000000001 01 80 10 80       lo
fd000018000000000000000000000011 02 40 00 80     eth0
fe800000000000000018fffe00001100 02 40 20 80     eth0
fe800000000000000000000000000abc 0b 40 20 80  unn-frr
garbage
";
    assert_eq!(
        link_local_in(text, "eth0"),
        Some((2, ll("fe80::18:fffe:0:1100")))
    );
    assert_eq!(link_local_in(text, "unn-frr"), Some((11, ll("fe80::abc"))));
    assert_eq!(link_local_in(text, "lo"), None);
    assert_eq!(link_local_in(text, "eth9"), None);
}

#[test]
fn no_router_heard_is_an_error_that_says_so() {
    let e = router_on("flb-test-none").unwrap_err();
    assert!(
        e.to_string()
            .contains("no router advertisement heard on flb-test-none")
    );
    heard("flb-test-one", 9, ll("fe80::9"));
    assert_eq!(router_on("flb-test-one").unwrap(), (9, ll("fe80::9")));
    // Another sender right after does not replace it.
    heard("flb-test-one", 9, ll("fe80::66"));
    assert_eq!(router_on("flb-test-one").unwrap().1, ll("fe80::9"));
}
