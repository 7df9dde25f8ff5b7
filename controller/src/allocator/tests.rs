//! Scenario tests: one or more per allocation rule.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use Family::{V4, V6};
use ferrolb_crds::address::{AddressRange, Family};

use super::*;

fn r(s: &str) -> AddressRange {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn pool(name: &str, ranges: &[&str]) -> Pool {
    Pool::new(name, ranges.iter().map(|s| r(s)).collect())
}
fn restricted(name: &str, ranges: &[&str], priority: Option<i32>) -> Pool {
    Pool {
        allocation: Some(PoolAllocationRule { priority }),
        ..pool(name, ranges)
    }
}
fn key(name: &str) -> ServiceKey {
    ServiceKey::new("ns", name)
}
fn req(name: &str) -> Request {
    Request::new(key(name), V4)
}
fn req6(name: &str) -> Request {
    Request::new(key(name), V6)
}
fn dual(name: &str, policy: FamilyPolicy, families: &[Family]) -> Request {
    Request {
        families: families.to_vec(),
        policy,
        ..req(name)
    }
}
fn wants(mut r: Request, ips: &[&str]) -> Request {
    r.requested_ips = ips.iter().map(|s| ip(s)).collect();
    r
}
fn pinned(mut r: Request, pool: &str) -> Request {
    r.pool = Some(pool.into());
    r
}
fn sharing(mut r: Request, k: &str, ports: &[Port]) -> Request {
    r.sharing_key = Some(k.into());
    r.ports = ports.to_vec();
    r
}
fn matching(mut r: Request, pools: &[&str]) -> Request {
    r.matching_pools = pools.iter().map(|s| s.to_string()).collect();
    r
}
fn local(app: &str) -> TrafficPolicy {
    TrafficPolicy::Local {
        selector: BTreeMap::from([("app".to_string(), app.to_string())]),
    }
}
fn allocator(pools: Vec<Pool>) -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(pools);
    a
}

/// Ensures, checks invariants, returns (addresses, pool) or panics with the refusal.
fn got(a: &mut Allocator, r: &Request) -> (Vec<String>, Option<String>) {
    let res = a.ensure(r);
    a.assert_invariants();
    let alloc = res.unwrap_or_else(|e| panic!("{} refused: {e}", r.key));
    assert_eq!(a.allocation(&r.key), Some(alloc.clone()));
    (
        alloc.ips.iter().map(ToString::to_string).collect(),
        alloc.pool,
    )
}
fn ips_of(a: &mut Allocator, r: &Request) -> Vec<String> {
    got(a, r).0
}
fn refused(a: &mut Allocator, r: &Request) -> Refusal {
    let before = a.clone();
    let res = a.ensure(r);
    a.assert_invariants();
    let refusal = res.expect_err("expected a refusal");
    assert_eq!(*a, before, "a refusal must change nothing");
    assert_eq!(refusal.kept, a.allocation(&r.key));
    refusal
}

// ---- address choice ----

#[test]
fn lowest_free_address_ranges_in_address_order() {
    let mut a = allocator(vec![pool("p", &["10.0.0.8/30", "10.0.0.0/31"])]);
    let got: Vec<_> = (0..6)
        .map(|i| ips_of(&mut a, &req(&format!("s{i}")))[0].clone())
        .collect();
    assert_eq!(
        got,
        [
            "10.0.0.0",
            "10.0.0.1",
            "10.0.0.8",
            "10.0.0.9",
            "10.0.0.10",
            "10.0.0.11"
        ]
    );
    let e = refused(&mut a, &req("s6"));
    assert_eq!(
        e.error,
        AllocError::Exhausted {
            shortages: vec![Shortage {
                pool: "p".into(),
                family: V4
            }]
        }
    );
    assert!(e.kept.is_none());
    assert!(
        e.to_string().contains("pool 'p' has no free IPv4 address"),
        "{e}"
    );
}

#[test]
fn avoid_buggy_ips_skips_dot0_and_dot255() {
    let mut p = pool("p", &["10.0.0.254-10.0.1.2"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p.clone()]);
    let got: Vec<_> = (0..3)
        .map(|i| ips_of(&mut a, &req(&format!("s{i}")))[0].clone())
        .collect();
    assert_eq!(got, ["10.0.0.254", "10.0.1.1", "10.0.1.2"]);
    assert!(a.ensure(&req("s3")).is_err());
    // Without the flag, .255 and .0 are ordinary.
    p.avoid_buggy_ips = false;
    let mut a = allocator(vec![p]);
    let got: Vec<_> = (0..3)
        .map(|i| ips_of(&mut a, &req(&format!("s{i}")))[0].clone())
        .collect();
    assert_eq!(got, ["10.0.0.254", "10.0.0.255", "10.0.1.0"]);
}

#[test]
fn avoid_buggy_ips_does_not_touch_ipv6() {
    let mut p = pool("p", &["fd00::ff-fd00::100"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p]);
    assert_eq!(ips_of(&mut a, &req6("a")), ["fd00::ff"]);
    assert_eq!(ips_of(&mut a, &req6("b")), ["fd00::100"]);
}

fn avoiding(name: &str, ranges: &[&str]) -> Pool {
    Pool {
        avoid_conflicting_ips: true,
        ..pool(name, ranges)
    }
}

#[test]
fn conflicting_addresses_are_left_and_never_handed_out() {
    let mut a = allocator(vec![avoiding("p", &["10.0.0.0/29"])]);
    assert_eq!(ips_of(&mut a, &req("a")), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &req("b")), ["10.0.0.1"]);
    a.set_conflicts([ip("10.0.0.0")]);
    a.assert_invariants();
    // Nothing moves until the Service is decided again; then it takes the lowest usable one.
    assert_eq!(a.allocation(&key("a")).unwrap().ips, [ip("10.0.0.0")]);
    assert_eq!(
        got(&mut a, &req("a")),
        (vec!["10.0.0.2".into()], Some("p".into()))
    );
    assert_eq!(ips_of(&mut a, &req("b")), ["10.0.0.1"]);
    // The freed address is not handed to anyone automatically...
    assert_eq!(ips_of(&mut a, &req("c")), ["10.0.0.3"]);
    // ...and is not counted as available (8 - 3 held - 1 in conflict).
    assert_eq!(a.pool_stats("p").unwrap().available_ipv4, 4);
    // A Service that asks for it gets it, and keeps it.
    let d = wants(req("d"), &["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &d), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &d), ["10.0.0.0"]);
    assert_eq!(a.pool_stats("p").unwrap().available_ipv4, 4);
}

#[test]
fn conflicts_change_nothing_in_pools_that_do_not_avoid_them() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    assert_eq!(ips_of(&mut a, &req("a")), ["10.0.0.0"]);
    a.set_conflicts([ip("10.0.0.0"), ip("10.0.0.1")]);
    assert_eq!(ips_of(&mut a, &req("a")), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &req("b")), ["10.0.0.1"]);
    assert_eq!(a.pool_stats("p").unwrap().available_ipv4, 6);
}

#[test]
fn a_dual_stack_service_moves_only_the_address_in_conflict() {
    let mut a = allocator(vec![avoiding("p", &["10.0.0.0/30", "fd00::/126"])]);
    let r = dual("a", FamilyPolicy::RequireDualStack, &[V4, V6]);
    assert_eq!(ips_of(&mut a, &r), ["10.0.0.0", "fd00::"]);
    a.set_conflicts([ip("fd00::")]);
    assert_eq!(ips_of(&mut a, &r), ["10.0.0.0", "fd00::1"]);
    // Requested IPv4, automatic IPv6: the requested one is never the reason to move.
    let w = wants(
        dual("w", FamilyPolicy::RequireDualStack, &[V4, V6]),
        &["10.0.0.3"],
    );
    assert_eq!(ips_of(&mut a, &w), ["10.0.0.3", "fd00::2"]);
    a.set_conflicts([ip("fd00::"), ip("10.0.0.3"), ip("fd00::2")]);
    assert_eq!(ips_of(&mut a, &w), ["10.0.0.3", "fd00::3"]);
}

#[test]
fn services_sharing_an_address_in_conflict_move_together() {
    let mut a = allocator(vec![avoiding("p", &["10.0.0.0/29"])]);
    let web = sharing(req("web"), "k", &[Port::tcp(80)]);
    let tls = sharing(req("tls"), "k", &[Port::tcp(443)]);
    assert_eq!(ips_of(&mut a, &web), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &tls), ["10.0.0.0"]);
    a.set_conflicts([ip("10.0.0.0")]);
    assert_eq!(ips_of(&mut a, &web), ["10.0.0.1"]);
    assert_eq!(ips_of(&mut a, &tls), ["10.0.0.1"]);
}

#[test]
fn a_full_pool_keeps_the_address_in_conflict_and_says_why() {
    let mut a = allocator(vec![avoiding("p", &["10.0.0.0/31"])]);
    assert_eq!(ips_of(&mut a, &req("a")), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &req("b")), ["10.0.0.1"]);
    a.set_conflicts([ip("10.0.0.0")]);
    let e = refused(&mut a, &req("a"));
    assert!(matches!(e.error, AllocError::Exhausted { .. }), "{e}");
    assert_eq!(e.kept.unwrap().ips, [ip("10.0.0.0")]);
}

// ---- pool choice ----

#[test]
fn pool_order_priority_then_unset_then_auto_assign_by_name() {
    let one = |n: u8| format!("10.0.{n}.1/32");
    let pools = vec![
        pool("auto-b", &[&one(1)]),
        pool("auto-a", &[&one(2)]),
        restricted("sa-unset", &[&one(3)], None),
        restricted("sa-zero", &[&one(4)], Some(0)),
        restricted("sa-2", &[&one(5)], Some(2)),
        restricted("sa-1b", &[&one(6)], Some(1)),
        restricted("sa-1a", &[&one(7)], Some(1)),
        restricted("sa-other", &[&one(8)], Some(1)),
        Pool {
            auto_assign: false,
            ..pool("manual", &[&one(9)])
        },
    ];
    let mut a = allocator(pools);
    let sel = ["sa-unset", "sa-zero", "sa-2", "sa-1b", "sa-1a"];
    let order: Vec<String> = (0..7)
        .map(|i| {
            got(&mut a, &matching(req(&format!("s{i}")), &sel))
                .1
                .unwrap()
        })
        .collect();
    assert_eq!(
        order,
        [
            "sa-1a", "sa-1b", "sa-2", "sa-unset", "sa-zero", "auto-a", "auto-b"
        ]
    );
    let e = refused(&mut a, &matching(req("s7"), &sel));
    let AllocError::Exhausted { shortages } = e.error else {
        panic!("{e}")
    };
    let names: Vec<_> = shortages.iter().map(|s| s.pool.as_str()).collect();
    assert_eq!(names, order.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn service_allocation_that_does_not_match_is_never_used() {
    let mut a = allocator(vec![restricted("vip", &["10.0.0.0/30"], Some(1))]);
    assert_eq!(
        refused(&mut a, &req("s")).error,
        AllocError::NoPoolForFamily { family: V4 }
    );
    assert_eq!(
        refused(&mut a, &wants(req("s"), &["10.0.0.2"])).error,
        AllocError::RequestedIpNotEligible {
            ip: ip("10.0.0.2"),
            pool: "vip".into(),
            why: Ineligibility::NotSelected
        }
    );
    assert_eq!(
        refused(&mut a, &pinned(req("s"), "vip")).error,
        AllocError::PinnedPoolNotForService { pool: "vip".into() }
    );
    // Selected: every way works.
    assert_eq!(
        got(&mut a, &matching(req("s"), &["vip"])),
        (vec!["10.0.0.0".into()], Some("vip".into()))
    );
    assert_eq!(
        ips_of(&mut a, &matching(wants(req("t"), &["10.0.0.2"]), &["vip"])),
        ["10.0.0.2"]
    );
    assert_eq!(
        ips_of(&mut a, &matching(pinned(req("u"), "vip"), &["vip"])),
        ["10.0.0.1"]
    );
}

#[test]
fn auto_assign_false_serves_only_pins_and_requests() {
    let manual = Pool {
        auto_assign: false,
        ..pool("manual", &["10.0.0.0/30"])
    };
    // autoAssign: false also keeps a selecting serviceAllocation pool out of automatic choice
    // (the CRD: "whether Services that do not name a pool may get addresses from this one").
    let manual_sa = Pool {
        auto_assign: false,
        ..restricted("manual-sa", &["10.0.1.0/30"], Some(1))
    };
    let mut a = allocator(vec![manual, manual_sa]);
    let e = refused(&mut a, &matching(req("s"), &["manual-sa"]));
    assert_eq!(e.error, AllocError::NoPoolForFamily { family: V4 });
    assert!(e.to_string().contains("autoAssign"), "{e}");
    assert_eq!(ips_of(&mut a, &pinned(req("s"), "manual")), ["10.0.0.0"]);
    assert_eq!(
        ips_of(&mut a, &wants(req("t"), &["10.0.0.3"])),
        ["10.0.0.3"]
    );
    assert_eq!(
        ips_of(
            &mut a,
            &matching(pinned(req("u"), "manual-sa"), &["manual-sa"])
        ),
        ["10.0.1.0"]
    );
}

#[test]
fn pinned_pool_is_the_only_pool() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.1.0/31"]),
    ]);
    assert_eq!(
        got(&mut a, &pinned(req("s0"), "b")),
        (vec!["10.0.1.0".into()], Some("b".into()))
    );
    assert_eq!(ips_of(&mut a, &pinned(req("s1"), "b")), ["10.0.1.1"]);
    let e = refused(&mut a, &pinned(req("s2"), "b"));
    assert_eq!(
        e.error,
        AllocError::Exhausted {
            shortages: vec![Shortage {
                pool: "b".into(),
                family: V4
            }]
        }
    );
    let e = refused(&mut a, &pinned(req("s2"), "nope"));
    assert_eq!(
        e.error,
        AllocError::PinnedPoolUnknown {
            pool: "nope".into()
        }
    );
    assert!(e.to_string().contains("ferrolb.io/address-pool"), "{e}");
    // A pinned pool lacking the family says so.
    let e = refused(&mut a, &pinned(req6("s3"), "a"));
    assert_eq!(
        e.error,
        AllocError::PoolLacksFamily {
            pool: "a".into(),
            family: V6
        }
    );
}

// ---- requested addresses ----

#[test]
fn requested_address_is_given_and_then_skipped_by_others() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    assert_eq!(
        got(&mut a, &wants(req("s"), &["10.0.0.0"])),
        (vec!["10.0.0.0".into()], Some("p".into()))
    );
    assert_eq!(ips_of(&mut a, &req("t")), ["10.0.0.1"]);
    let e = refused(&mut a, &wants(req("u"), &["10.0.0.0"]));
    assert_eq!(
        e.error,
        AllocError::IpInUse {
            ip: ip("10.0.0.0"),
            holder: key("s"),
            conflict: SharingConflict::NoSharingKey
        }
    );
    assert!(e.to_string().contains("in use by ns/s"), "{e}");
}

#[test]
fn requested_address_must_be_in_an_eligible_pool() {
    let mut avoid = pool("avoid", &["10.0.1.0/24"]);
    avoid.avoid_buggy_ips = true;
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30", "fd00::/126"]),
        avoid,
        pool("b", &["fd00:1::/126"]),
    ]);
    assert_eq!(
        refused(&mut a, &wants(req("s"), &["192.0.2.1"])).error,
        AllocError::RequestedIpOutsidePools {
            ip: ip("192.0.2.1")
        }
    );
    assert_eq!(
        refused(&mut a, &pinned(wants(req("s"), &["10.0.0.1"]), "avoid")).error,
        AllocError::RequestedIpNotEligible {
            ip: ip("10.0.0.1"),
            pool: "a".into(),
            why: Ineligibility::PinnedElsewhere {
                pinned: "avoid".into()
            }
        }
    );
    assert_eq!(
        refused(&mut a, &wants(req("s"), &["10.0.1.255"])).error,
        AllocError::RequestedIpAvoided {
            ip: ip("10.0.1.255"),
            pool: "avoid".into()
        }
    );
    let both = wants(
        dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]),
        &["10.0.0.1", "fd00:1::1"],
    );
    assert!(matches!(
        refused(&mut a, &both).error,
        AllocError::RequestedIpsInDifferentPools { .. }
    ));
    assert_eq!(
        ips_of(
            &mut a,
            &wants(
                dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]),
                &["10.0.0.1", "fd00::3"]
            )
        ),
        ["10.0.0.1", "fd00::3"]
    );
}

#[test]
fn malformed_requests_are_refused() {
    let mut a = allocator(vec![pool("a", &["10.0.0.0/30", "fd00::/126"])]);
    let d = || dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]);
    assert_eq!(
        refused(&mut a, &wants(d(), &["10.0.0.1", "fd00::1", "10.0.0.2"])).error,
        AllocError::TooManyRequestedIps { count: 3 }
    );
    assert_eq!(
        refused(&mut a, &wants(d(), &["10.0.0.1", "10.0.0.2"])).error,
        AllocError::DuplicateRequestedFamily {
            family: V4,
            first: ip("10.0.0.1"),
            second: ip("10.0.0.2")
        }
    );
    assert_eq!(
        refused(&mut a, &wants(req("s"), &["fd00::1"])).error,
        AllocError::RequestedFamilyNotInService {
            ip: ip("fd00::1"),
            families: vec![V4]
        }
    );
    let mut none = req("s");
    none.families.clear();
    assert!(matches!(
        refused(&mut a, &none).error,
        AllocError::InvalidFamilies { .. }
    ));
}

#[test]
fn one_requested_address_and_a_free_one_of_the_other_family_from_its_pool() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30", "fd00::/126"]),
        pool("b", &["10.0.1.0/30"]),
    ]);
    let r = wants(
        dual("s", FamilyPolicy::RequireDualStack, &[V6, V4]),
        &["10.0.0.2"],
    );
    assert_eq!(
        got(&mut a, &r),
        (vec!["fd00::".into(), "10.0.0.2".into()], Some("a".into()))
    );
    // The requested address's pool lacks the second family.
    let r = wants(
        dual("t", FamilyPolicy::RequireDualStack, &[V4, V6]),
        &["10.0.1.1"],
    );
    assert_eq!(
        refused(&mut a, &r).error,
        AllocError::PoolLacksFamily {
            pool: "b".into(),
            family: V6
        }
    );
    // PreferDualStack settles for the requested family.
    let r = wants(
        dual("t", FamilyPolicy::PreferDualStack, &[V4, V6]),
        &["10.0.1.1"],
    );
    assert_eq!(ips_of(&mut a, &r), ["10.0.1.1"]);
}

// ---- families ----

#[test]
fn require_dual_stack_needs_one_pool_with_both() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["fd00::/126"]),
    ]);
    let r = dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]);
    assert_eq!(refused(&mut a, &r).error, AllocError::NoDualStackPool);
    a.set_pools(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("c", &["10.0.1.0/30", "fd00::/126"]),
    ]);
    assert_eq!(
        got(&mut a, &r),
        (vec!["10.0.1.0".into(), "fd00::".into()], Some("c".into()))
    );
    let r6 = dual("t", FamilyPolicy::RequireDualStack, &[V6, V4]);
    assert_eq!(
        ips_of(&mut a, &r6),
        ["fd00::1", "10.0.1.1"],
        "order follows spec.ipFamilies"
    );
    // Only the family list's first entry given: the second is the other family.
    let r1 = dual("u", FamilyPolicy::RequireDualStack, &[V6]);
    assert_eq!(ips_of(&mut a, &r1), ["fd00::2", "10.0.1.2"]);
}

#[test]
fn prefer_dual_stack_takes_a_dual_pool_anywhere_then_falls_back() {
    // "a" ranks first by name but has IPv4 only.
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.1.0/31", "fd00::/127"]),
    ]);
    let r = |n: &str| dual(n, FamilyPolicy::PreferDualStack, &[V4, V6]);
    assert_eq!(
        got(&mut a, &r("s0")),
        (vec!["10.0.1.0".into(), "fd00::".into()], Some("b".into()))
    );
    assert_eq!(ips_of(&mut a, &r("s1")), ["10.0.1.1", "fd00::1"]);
    // b exhausted: primary family only, from the best pool.
    assert_eq!(
        got(&mut a, &r("s2")),
        (vec!["10.0.0.0".into()], Some("a".into()))
    );
    // ipFamilies lists one family: single-stack even under PreferDualStack.
    let mut a = allocator(vec![pool("b", &["10.0.1.0/31", "fd00::/127"])]);
    assert_eq!(
        ips_of(&mut a, &dual("s", FamilyPolicy::PreferDualStack, &[V4])),
        ["10.0.1.0"]
    );
}

#[test]
fn single_stack_takes_the_primary_family_only() {
    let mut a = allocator(vec![pool("b", &["10.0.1.0/31", "fd00::/127"])]);
    assert_eq!(
        ips_of(&mut a, &dual("s", FamilyPolicy::SingleStack, &[V6, V4])),
        ["fd00::"]
    );
    let mut b = allocator(vec![pool("a", &["10.0.0.0/30"])]);
    assert_eq!(
        refused(&mut b, &req6("s")).error,
        AllocError::NoPoolForFamily { family: V6 }
    );
}

#[test]
fn prefer_dual_stack_gains_the_second_family_in_place() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("z", &["fd00:9::/126"]),
    ]);
    let r = dual("s", FamilyPolicy::PreferDualStack, &[V4, V6]);
    assert_eq!(ips_of(&mut a, &r), ["10.0.0.0"]);
    // IPv6 in another pool: no move (that would renumber), still single-stack.
    assert_eq!(ips_of(&mut a, &r), ["10.0.0.0"]);
    a.set_pools(vec![pool("a", &["10.0.0.0/30", "fd00::/126"])]);
    assert_eq!(
        got(&mut a, &r),
        (vec!["10.0.0.0".into(), "fd00::".into()], Some("a".into()))
    );
}

#[test]
fn changing_families_keeps_what_it_can() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.1.0/30", "fd00::/126"]),
    ]);
    // Filler so the kept address is not simply the lowest free.
    assert_eq!(ips_of(&mut a, &pinned(req("x"), "b")), ["10.0.1.0"]);
    let single = pinned(req("s"), "b");
    assert_eq!(ips_of(&mut a, &single), ["10.0.1.1"]);
    a.release(&key("x"));
    let require = dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]);
    assert_eq!(
        ips_of(&mut a, &require),
        ["10.0.1.1", "fd00::"],
        "IPv4 kept, IPv6 added"
    );
    let flipped = dual("s", FamilyPolicy::RequireDualStack, &[V6, V4]);
    assert_eq!(ips_of(&mut a, &flipped), ["fd00::", "10.0.1.1"]);
    assert_eq!(
        ips_of(&mut a, &req("s")),
        ["10.0.1.1"],
        "IPv6 dropped, IPv4 kept"
    );
    assert!(a.holders(&ip("fd00::")).next().is_none());
    // A pool without the second family: the Service must move to one that has both.
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.1.0/30", "fd00::/126"]),
    ]);
    assert_eq!(ips_of(&mut a, &req("s")), ["10.0.0.0"]);
    assert_eq!(
        got(&mut a, &require),
        (vec!["10.0.1.0".into(), "fd00::".into()], Some("b".into()))
    );
    assert!(a.holders(&ip("10.0.0.0")).next().is_none());
}

// ---- sharing ----

#[test]
fn compatible_services_share_an_address() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let web = sharing(req("web"), "k", &[Port::tcp(80)]);
    let tls = sharing(req("tls"), "k", &[Port::tcp(443)]);
    assert_eq!(ips_of(&mut a, &web), ["10.0.0.0"]);
    assert_eq!(
        ips_of(&mut a, &tls),
        ["10.0.0.0"],
        "same key, disjoint ports: shared"
    );
    let dns_t = sharing(req("dns-t"), "dns", &[Port::tcp(53)]);
    let dns_u = sharing(req("dns-u"), "dns", &[Port::udp(53)]);
    assert_eq!(ips_of(&mut a, &dns_t), ["10.0.0.1"]);
    assert_eq!(
        ips_of(&mut a, &dns_u),
        ["10.0.0.1"],
        "TCP/53 and UDP/53 coexist"
    );
    let holders: Vec<_> = a
        .holders(&ip("10.0.0.0"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(holders, ["ns/tls", "ns/web"]);
    let s = a.pool_stats("p").unwrap();
    assert_eq!(
        (s.assigned_ipv4, s.available_ipv4),
        (2, 2),
        "a shared address counts once"
    );
    // Releasing one sharer leaves the address with the other.
    a.release(&key("web"));
    a.assert_invariants();
    assert_eq!(
        a.holders(&ip("10.0.0.0")).collect::<Vec<_>>(),
        [&key("tls")]
    );
}

#[test]
fn sharing_refusals_say_why() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    let web = sharing(req("web"), "k", &[Port::tcp(80)]);
    ips_of(&mut a, &web);
    let plain = wants(req("plain"), &["10.0.0.1"]);
    ips_of(&mut a, &plain);
    let at = |r: Request, at: &str| wants(r, &[at]);
    let cases = [
        (
            at(sharing(req("c"), "k", &[Port::tcp(80)]), "10.0.0.0"),
            SharingConflict::PortCollision(Port::tcp(80)),
            "TCP/80",
        ),
        (
            at(sharing(req("c"), "j", &[Port::tcp(81)]), "10.0.0.0"),
            SharingConflict::DifferentKey {
                ours: "j".into(),
                theirs: "k".into(),
            },
            "'j'",
        ),
        (
            at(req("c"), "10.0.0.0"),
            SharingConflict::NoSharingKey,
            "allow-shared-ip",
        ),
        (
            at(sharing(req("c"), "k", &[Port::tcp(81)]), "10.0.0.1"),
            SharingConflict::HolderNotSharing,
            "allow-shared-ip",
        ),
        (
            at(
                Request {
                    traffic: local("x"),
                    ..sharing(req("c"), "k", &[Port::tcp(81)])
                },
                "10.0.0.0",
            ),
            SharingConflict::TrafficPolicyMismatch {
                ours: "Local",
                theirs: "Cluster",
            },
            "externalTrafficPolicy",
        ),
    ];
    for (r, conflict, text) in cases {
        let e = refused(&mut a, &r);
        let holder = if r.requested_ips[0] == ip("10.0.0.0") {
            "web"
        } else {
            "plain"
        };
        assert_eq!(
            e.error,
            AllocError::IpInUse {
                ip: r.requested_ips[0],
                holder: key(holder),
                conflict
            }
        );
        assert!(e.to_string().contains(text), "{e}");
    }
}

#[test]
fn local_services_share_only_with_the_same_selector() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let l = |n: &str, app: &str, port: u16| Request {
        traffic: local(app),
        ..sharing(req(n), "k", &[Port::tcp(port)])
    };
    assert_eq!(ips_of(&mut a, &l("a", "x", 1)), ["10.0.0.0"]);
    assert_eq!(ips_of(&mut a, &l("b", "x", 2)), ["10.0.0.0"]);
    assert_eq!(
        ips_of(&mut a, &l("c", "y", 3)),
        ["10.0.0.1"],
        "other selector: fresh address"
    );
    let e = refused(&mut a, &wants(l("d", "y", 4), &["10.0.0.0"]));
    assert!(matches!(
        e.error,
        AllocError::IpInUse {
            conflict: SharingConflict::SelectorMismatch,
            ..
        }
    ));
    // A Cluster Service with the key does not join Local ones.
    assert_eq!(
        ips_of(&mut a, &sharing(req("e"), "k", &[Port::tcp(9)])),
        ["10.0.0.2"]
    );
}

#[test]
fn a_sharing_key_prefers_an_address_already_shared_over_a_lower_free_one() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    assert_eq!(ips_of(&mut a, &req("filler")), ["10.0.0.0"]);
    assert_eq!(
        ips_of(&mut a, &sharing(req("web"), "k", &[Port::tcp(80)])),
        ["10.0.0.1"]
    );
    a.release(&key("filler"));
    assert_eq!(
        ips_of(&mut a, &sharing(req("tls"), "k", &[Port::tcp(443)])),
        ["10.0.0.1"]
    );
    // Colliding port: the shared address is out, the lowest free one is taken.
    assert_eq!(
        ips_of(&mut a, &sharing(req("web2"), "k", &[Port::tcp(80)])),
        ["10.0.0.0"]
    );
    // Lowest compatible shared address when several exist.
    assert_eq!(
        ips_of(&mut a, &sharing(req("dns"), "k", &[Port::udp(53)])),
        ["10.0.0.0"]
    );
}

#[test]
fn a_sharing_key_prefers_a_shared_address_in_any_eligible_pool() {
    let mut a = allocator(vec![
        restricted("first", &["10.0.0.0/30"], Some(1)),
        pool("second", &["10.0.1.0/30"]),
    ]);
    assert_eq!(
        got(&mut a, &sharing(req("web"), "k", &[Port::tcp(80)]))
            .1
            .as_deref(),
        Some("second")
    );
    let tls = matching(sharing(req("tls"), "k", &[Port::tcp(443)]), &["first"]);
    assert_eq!(
        got(&mut a, &tls),
        (vec!["10.0.1.0".into()], Some("second".into()))
    );
    // Not allowed to join: the best pool.
    let dup = matching(sharing(req("dup"), "k", &[Port::tcp(80)]), &["first"]);
    assert_eq!(
        got(&mut a, &dup),
        (vec!["10.0.0.0".into()], Some("first".into()))
    );
}

#[test]
fn a_sole_holder_changes_key_and_ports_in_place_co_holders_move() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/31"])]);
    assert_eq!(
        ips_of(&mut a, &sharing(req("a"), "k", &[Port::tcp(80)])),
        ["10.0.0.0"]
    );
    // Sole holder: any change is fine in place.
    assert_eq!(
        ips_of(&mut a, &sharing(req("a"), "j", &[Port::tcp(443)])),
        ["10.0.0.0"]
    );
    assert_eq!(
        ips_of(&mut a, &req("a")),
        ["10.0.0.0"],
        "even dropping the key"
    );
    assert_eq!(
        ips_of(&mut a, &sharing(req("a"), "j", &[Port::tcp(443)])),
        ["10.0.0.0"]
    );
    assert_eq!(
        ips_of(&mut a, &sharing(req("b"), "j", &[Port::tcp(80)])),
        ["10.0.0.0"]
    );
    // A compatible change stays.
    assert_eq!(
        ips_of(
            &mut a,
            &sharing(req("b"), "j", &[Port::tcp(80), Port::tcp(8080)])
        ),
        ["10.0.0.0"]
    );
    // An incompatible change moves the changing Service only.
    assert_eq!(
        ips_of(&mut a, &sharing(req("b"), "j", &[Port::tcp(443)])),
        ["10.0.0.1"]
    );
    assert_eq!(a.holders(&ip("10.0.0.0")).collect::<Vec<_>>(), [&key("a")]);
    // Rejoin, then change incompatibly with nowhere to go: kept as it was, with the reason.
    a.release(&key("b"));
    assert_eq!(ips_of(&mut a, &sharing(req("c"), "z", &[])), ["10.0.0.1"]);
    assert_eq!(
        ips_of(&mut a, &sharing(req("b"), "j", &[Port::tcp(80)])),
        ["10.0.0.0"]
    );
    let e = refused(&mut a, &sharing(req("b"), "other", &[Port::tcp(80)]));
    assert!(matches!(e.error, AllocError::Exhausted { .. }), "{e}");
    assert_eq!(e.kept.unwrap().ips, [ip("10.0.0.0")]);
}

// ---- stability, orphans, moves ----

#[test]
fn pool_edits_never_renumber_an_address_still_in_an_eligible_pool() {
    let mut a = allocator(vec![pool("b", &["10.0.0.0/29"])]);
    ips_of(&mut a, &req("x"));
    assert_eq!(
        got(&mut a, &req("s")),
        (vec!["10.0.0.1".into()], Some("b".into()))
    );
    a.release(&key("x"));
    // A better pool appears, the pool loses autoAssign, priorities shuffle: no renumbering.
    a.set_pools(vec![
        restricted("a", &["10.0.1.0/29"], Some(1)),
        Pool {
            auto_assign: false,
            ..pool("b", &["10.0.0.0/29"])
        },
    ]);
    let s = matching(req("s"), &["a"]);
    assert_eq!(got(&mut a, &s), (vec!["10.0.0.1".into()], Some("b".into())));
    // The pool shrinks and another pool now covers the address: re-attributed, same address.
    a.set_pools(vec![
        pool("b", &["10.0.0.4/30"]),
        pool("c", &["10.0.0.0/30"]),
    ]);
    assert_eq!(a.allocation(&key("s")).unwrap().pool.as_deref(), Some("c"));
    assert_eq!(got(&mut a, &s), (vec!["10.0.0.1".into()], Some("c".into())));
}

#[test]
fn orphaned_addresses_are_kept_and_reported() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    ips_of(&mut a, &req("s"));
    a.set_pools(vec![pool("q", &["10.0.1.0/30"])]);
    a.assert_invariants();
    assert_eq!(a.orphans().collect::<Vec<_>>(), [&key("s")]);
    let alloc = a.ensure(&req("s")).unwrap();
    assert!(alloc.is_orphaned());
    assert_eq!(alloc.ips, [ip("10.0.0.0")]);
    // The address comes back into a pool: nobody else got it meanwhile.
    a.set_pools(vec![
        pool("q", &["10.0.1.0/30"]),
        pool("p", &["10.0.0.0/30"]),
    ]);
    assert_eq!(ips_of(&mut a, &pinned(req("t"), "p")), ["10.0.0.1"]);
    assert_eq!(
        got(&mut a, &req("s")),
        (vec!["10.0.0.0".into()], Some("p".into()))
    );
    assert_eq!(a.orphans().count(), 0);
}

#[test]
fn half_orphaned_dual_stack_is_kept_whole() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]);
    let r = dual("s", FamilyPolicy::RequireDualStack, &[V4, V6]);
    ips_of(&mut a, &r);
    a.set_pools(vec![
        pool("p", &["10.0.0.0/30"]),
        pool("q", &["fd00:1::/126"]),
    ]);
    let alloc = a.ensure(&r).unwrap();
    assert_eq!(
        alloc,
        Allocation {
            ips: vec![ip("10.0.0.0"), ip("fd00::")],
            pool: None
        }
    );
}

#[test]
fn a_changed_request_moves_and_frees_the_old_address() {
    let mut a = allocator(vec![
        pool("p", &["10.0.0.0/29"]),
        pool("q", &["10.0.1.0/30"]),
    ]);
    assert_eq!(ips_of(&mut a, &req("s")), ["10.0.0.0"]);
    assert_eq!(
        ips_of(&mut a, &wants(req("s"), &["10.0.0.5"])),
        ["10.0.0.5"]
    );
    assert_eq!(ips_of(&mut a, &req("t")), ["10.0.0.0"], "old address freed");
    // Dropping the request keeps the address (it still satisfies the Service).
    assert_eq!(ips_of(&mut a, &req("s")), ["10.0.0.5"]);
    // New pin: moves.
    assert_eq!(
        got(&mut a, &pinned(req("s"), "q")),
        (vec!["10.0.1.0".into()], Some("q".into()))
    );
    assert!(a.holders(&ip("10.0.0.5")).next().is_none());
}

#[test]
fn a_changed_request_that_cannot_be_met_keeps_the_old_addresses() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    ips_of(&mut a, &req("s"));
    ips_of(&mut a, &req("t"));
    let kept = Some(Allocation {
        ips: vec![ip("10.0.0.0")],
        pool: Some("p".into()),
    });
    let e = refused(&mut a, &wants(req("s"), &["10.0.0.1"]));
    assert!(matches!(e.error, AllocError::IpInUse { .. }));
    assert_eq!(e.kept, kept);
    let e = refused(&mut a, &pinned(req("s"), "gone"));
    assert_eq!(
        e.error,
        AllocError::PinnedPoolUnknown {
            pool: "gone".into()
        }
    );
    assert_eq!(e.kept, kept);
    let e = refused(&mut a, &wants(req("s"), &["10.0.0.1", "10.0.0.2"]));
    assert!(matches!(
        e.error,
        AllocError::DuplicateRequestedFamily { .. }
    ));
    assert_eq!(e.kept, kept);
    // The old request still works afterwards.
    assert_eq!(ips_of(&mut a, &req("s")), ["10.0.0.0"]);
}

#[test]
fn an_orphan_moves_only_when_its_own_request_changes() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    ips_of(&mut a, &pinned(req("s"), "p"));
    a.set_pools(vec![
        pool("p", &["10.0.0.2/31"]),
        pool("q", &["10.0.1.0/30"]),
    ]);
    // Pools changed under it: kept, orphaned, even though its pinned pool has room.
    assert!(a.ensure(&pinned(req("s"), "p")).unwrap().is_orphaned());
    // Its pin changed: it moves.
    assert_eq!(
        got(&mut a, &pinned(req("s"), "q")),
        (vec!["10.0.1.0".into()], Some("q".into()))
    );
}

#[test]
fn a_pool_that_stops_selecting_the_service_is_left_if_possible() {
    let mut a = allocator(vec![restricted("vip", &["10.0.0.0/30"], Some(1))]);
    let r = matching(req("s"), &["vip"]);
    ips_of(&mut a, &r);
    // The Service's labels changed: vip no longer selects it, and there is nowhere else.
    let e = refused(&mut a, &req("s"));
    assert_eq!(e.error, AllocError::NoPoolForFamily { family: V4 });
    assert_eq!(e.kept.unwrap().ips, [ip("10.0.0.0")]);
    a.set_pools(vec![
        restricted("vip", &["10.0.0.0/30"], Some(1)),
        pool("plain", &["10.0.1.0/30"]),
    ]);
    assert_eq!(
        got(&mut a, &req("s")),
        (vec!["10.0.1.0".into()], Some("plain".into()))
    );
}

#[test]
fn ensure_is_idempotent() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]);
    let r = sharing(
        dual("s", FamilyPolicy::PreferDualStack, &[V6, V4]),
        "k",
        &[Port::tcp(1)],
    );
    let first = a.ensure(&r).unwrap();
    let state = a.clone();
    assert_eq!(a.ensure(&r).unwrap(), first);
    assert_eq!(a, state);
}

// ---- restore and release ----

#[test]
fn restore_claims_addresses_before_anything_is_allocated() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let restored = a.restore(&req("old"), &[ip("10.0.0.0")]).unwrap();
    assert_eq!(restored.pool.as_deref(), Some("p"));
    // Outside every pool: claimed anyway, orphaned.
    let out = a.restore(&req("gone"), &[ip("192.0.2.9")]).unwrap();
    assert!(out.is_orphaned());
    a.assert_invariants();
    assert_eq!(ips_of(&mut a, &req("new")), ["10.0.0.1"]);
    // A restored address that is not the lowest is kept.
    let mut b = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    b.restore(&req("s"), &[ip("10.0.0.3")]).unwrap();
    assert_eq!(ips_of(&mut b, &req("s")), ["10.0.0.3"]);
}

#[test]
fn restore_refuses_a_conflicting_claim_naming_the_holder() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]);
    a.restore(&req("first"), &[ip("10.0.0.1")]).unwrap();
    let before = a.clone();
    let e = a.restore(&req("second"), &[ip("10.0.0.1")]).unwrap_err();
    assert_eq!(
        e,
        AllocError::IpInUse {
            ip: ip("10.0.0.1"),
            holder: key("first"),
            conflict: SharingConflict::NoSharingKey
        }
    );
    assert!(e.to_string().contains("ns/first"), "{e}");
    assert_eq!(a, before);
    // Compatible sharers are both restored.
    let mut b = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    b.restore(&sharing(req("x"), "k", &[Port::tcp(80)]), &[ip("10.0.0.2")])
        .unwrap();
    b.restore(
        &sharing(req("y"), "k", &[Port::tcp(443)]),
        &[ip("10.0.0.2")],
    )
    .unwrap();
    b.assert_invariants();
    assert_eq!(b.holders(&ip("10.0.0.2")).count(), 2);
    // Malformed statuses.
    for bad in [
        vec![],
        vec![ip("10.0.0.1"), ip("10.0.0.2")],
        vec![ip("10.0.0.1"), ip("fd00::1"), ip("10.0.0.2")],
    ] {
        assert!(matches!(
            b.restore(&req("z"), &bad),
            Err(AllocError::InvalidRestore { .. })
        ));
    }
    // Restoring again replaces; a refused re-restore keeps the old claim.
    b.restore(&req("z"), &[ip("10.0.0.0")]).unwrap();
    b.restore(&req("z"), &[ip("10.0.0.1")]).unwrap();
    assert!(b.holders(&ip("10.0.0.0")).next().is_none());
    assert!(b.restore(&req("z"), &[ip("10.0.0.2")]).is_err());
    assert_eq!(b.allocation(&key("z")).unwrap().ips, [ip("10.0.0.1")]);
    b.assert_invariants();
}

#[test]
fn restore_orders_addresses_by_family() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]);
    let r = dual("s", FamilyPolicy::RequireDualStack, &[V6, V4]);
    let alloc = a.restore(&r, &[ip("10.0.0.1"), ip("fd00::1")]).unwrap();
    assert_eq!(alloc.ips, [ip("fd00::1"), ip("10.0.0.1")]);
    assert_eq!(ips_of(&mut a, &r), ["fd00::1", "10.0.0.1"]);
}

#[test]
fn release_frees_for_the_next_service() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    for n in ["a", "b", "c"] {
        ips_of(&mut a, &req(n));
    }
    assert_eq!(
        a.release(&key("b")),
        Some(Allocation {
            ips: vec![ip("10.0.0.1")],
            pool: Some("p".into())
        })
    );
    assert_eq!(a.release(&key("b")), None);
    assert_eq!(a.len(), 2);
    assert_eq!(ips_of(&mut a, &req("d")), ["10.0.0.1"]);
    assert_eq!(
        a.services()
            .map(|(k, _)| k.name.clone())
            .collect::<Vec<_>>(),
        ["a", "c", "d"]
    );
}

// ---- stats and scale ----

#[test]
fn stats_per_pool_and_family() {
    let mut p = pool("p", &["10.0.0.0/24", "fd00::/64"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p, pool("q", &["10.0.1.0/30"])]);
    for i in 0..3 {
        ips_of(
            &mut a,
            &pinned(
                dual(&format!("s{i}"), FamilyPolicy::RequireDualStack, &[V4, V6]),
                "p",
            ),
        );
    }
    let s = a.pool_stats("p").unwrap();
    assert_eq!(
        s,
        PoolStats {
            assigned_ipv4: 3,
            available_ipv4: 256 - 2 - 3,
            assigned_ipv6: 3,
            available_ipv6: (1u128 << 64) - 3,
        }
    );
    let all = a.stats();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["p", "q"]);
    assert_eq!(all["q"].available_ipv4, 4);
    assert_eq!(a.pool_stats("nope"), None);
    assert_eq!(
        a.pool_of(&ip("10.0.1.3")).map(|p| p.name.as_str()),
        Some("q")
    );
}

#[test]
fn huge_ipv6_pools_hand_out_their_lowest_addresses_quickly() {
    let started = Instant::now();
    for (block, base) in [
        ("fd00:1:2:3::/64", "fd00:1:2:3::"),
        ("fd00:9::/48", "fd00:9::"),
    ] {
        let mut a = allocator(vec![pool("big", &[block])]);
        let base = u128::from(base.parse::<std::net::Ipv6Addr>().unwrap());
        for i in 0..2000u128 {
            let alloc = a.ensure(&req6(&format!("s{i}"))).unwrap();
            assert_eq!(alloc.ips, [IpAddr::V6((base + i).into())]);
        }
        a.release(&key("s700"));
        a.release(&key("s5"));
        assert_eq!(
            a.ensure(&req6("n1")).unwrap().ips,
            [IpAddr::V6((base + 5).into())]
        );
        assert_eq!(
            a.ensure(&req6("n2")).unwrap().ips,
            [IpAddr::V6((base + 700).into())]
        );
        assert_eq!(
            a.ensure(&req6("n3")).unwrap().ips,
            [IpAddr::V6((base + 2000).into())]
        );
        a.assert_invariants();
        let size = r(block).size();
        assert_eq!(a.pool_stats("big").unwrap().available_ipv6, size - 2001);
    }
    // Walking a pool instead of the allocations would take forever on these.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_top_of_the_address_space_does_not_overflow() {
    let mut a = allocator(vec![
        pool("top", &["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"]),
        pool("v4top", &["255.255.255.254/31"]),
    ]);
    assert_eq!(
        ips_of(&mut a, &req6("a")),
        ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"]
    );
    assert_eq!(
        ips_of(&mut a, &req6("b")),
        ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    );
    assert!(matches!(
        refused(&mut a, &req6("c")).error,
        AllocError::Exhausted { .. }
    ));
    assert_eq!(ips_of(&mut a, &req("d")), ["255.255.255.254"]);
    assert_eq!(ips_of(&mut a, &req("e")), ["255.255.255.255"]);
    assert!(a.ensure(&req("f")).is_err());
}

#[test]
fn decisions_never_depend_on_insertion_order_of_pools() {
    let pools = vec![
        pool("c", &["10.0.2.0/30"]),
        restricted("a", &["10.0.0.0/30"], Some(2)),
        restricted("b", &["10.0.1.0/30"], Some(2)),
    ];
    let mut reversed = pools.clone();
    reversed.reverse();
    let (mut x, mut y) = (allocator(pools), allocator(reversed));
    for i in 0..12 {
        let r = matching(req(&format!("s{i}")), &["a", "b"]);
        assert_eq!(x.ensure(&r), y.ensure(&r));
    }
    assert_eq!(x, y);
}

#[test]
fn error_messages_say_what_to_change() {
    let msgs = [
        AllocError::NoDualStackPool.to_string(),
        AllocError::NoPoolForFamily { family: V6 }.to_string(),
        AllocError::PoolLacksFamily {
            pool: "p".into(),
            family: V6,
        }
        .to_string(),
        AllocError::RequestedIpOutsidePools {
            ip: ip("192.0.2.1"),
        }
        .to_string(),
        AllocError::TooManyRequestedIps { count: 3 }.to_string(),
        AllocError::InvalidRestore { ips: vec![] }.to_string(),
    ];
    for m in &msgs {
        assert!(m.contains(':') || m.contains("request"), "{m}");
    }
    assert!(msgs[0].contains("PreferDualStack"));
    assert!(msgs[1].contains("IPv6 block"));
    assert!(msgs[2].contains("add a IPv6 block to 'p'") || msgs[2].contains("to 'p'"));
    assert!(msgs[3].contains("loadBalancerIPs"));
    let set: BTreeSet<&String> = msgs.iter().collect();
    assert_eq!(set.len(), msgs.len());
}
