//! Property tests: random sequences of operations over small pools, checked after every step
//! against the allocator's invariants and against brute-force oracles written independently of
//! the implementation (they enumerate the small pools address by address).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use Family::{V4, V6};
use ferrolb_crds::address::{AddressRange, Family};
use proptest::prelude::*;

use super::*;

/// Disjoint blocks pools are built from; the first crosses a .255/.0 boundary.
const BLOCKS: [&str; 7] = [
    "10.0.0.252-10.0.1.3",
    "10.0.2.0/30",
    "10.0.3.8/31",
    "10.0.4.0/32",
    "fd00::/126",
    "fd00::1:0/127",
    "fd00::2:0/128",
];
/// Blocks never used by the random operations: a superset of the pools adds only these, so it
/// cannot cover an address anyone holds.
const SPARE: [&str; 3] = ["10.9.0.0/30", "fd09::/126", "10.9.1.0/31"];
const NAMES: [&str; 4] = ["a", "b", "c", "d"];
/// Pins may also name a pool that does not exist.
const PINS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn range(s: &str) -> AddressRange {
    s.parse().expect("test block")
}

/// Every address of the blocks, plus two outside every block.
fn addresses() -> Vec<IpAddr> {
    let mut all: Vec<IpAddr> = BLOCKS.iter().flat_map(|b| enumerate(&range(b))).collect();
    all.push("10.0.5.5".parse().expect("literal"));
    all.push("fd00::9:9".parse().expect("literal"));
    all
}

fn enumerate(r: &AddressRange) -> Vec<IpAddr> {
    let (lo, hi) = r.bounds();
    (lo..=hi)
        .map(|v| ferrolb_crds::address::from_u128(r.family(), v).expect("in family"))
        .collect()
}

fn is_buggy(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if matches!(v4.octets()[3], 0 | 255))
}

// ---- strategies ----

fn address() -> impl Strategy<Value = IpAddr> {
    let all = addresses();
    (0..all.len()).prop_map(move |i| all[i])
}

#[derive(Clone, Debug)]
struct Attrs {
    auto_assign: bool,
    avoid: bool,
    /// 0: no serviceAllocation; 1: unset priority; 2..=4: priority 0, 1, 2.
    allocation: usize,
}

fn attrs() -> impl Strategy<Value = Attrs> {
    (prop::bool::weighted(0.8), any::<bool>(), 0usize..5).prop_map(
        |(auto_assign, avoid, allocation)| Attrs {
            auto_assign,
            avoid,
            allocation,
        },
    )
}

fn build_pool(name: &str, ranges: Vec<AddressRange>, a: &Attrs) -> Pool {
    Pool {
        name: name.into(),
        ranges,
        auto_assign: a.auto_assign,
        avoid_buggy_ips: a.avoid,
        avoid_conflicting_ips: false,
        allocation: match a.allocation {
            0 => None,
            1 => Some(PoolAllocationRule { priority: None }),
            n => Some(PoolAllocationRule {
                priority: Some(n as i32 - 2),
            }),
        },
    }
}

fn pools() -> impl Strategy<Value = Vec<Pool>> {
    // Owner NAMES.len() means "in no pool".
    (
        prop::collection::vec(0..=NAMES.len(), BLOCKS.len()),
        prop::collection::vec(attrs(), NAMES.len()),
    )
        .prop_map(|(owners, attrs)| {
            NAMES
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let ranges: Vec<AddressRange> = BLOCKS
                        .iter()
                        .zip(&owners)
                        .filter(|(_, o)| **o == i)
                        .map(|(b, _)| range(b))
                        .collect();
                    (!ranges.is_empty()).then(|| build_pool(name, ranges, &attrs[i]))
                })
                .collect()
        })
}

fn request() -> impl Strategy<Value = Request> {
    let ips = prop_oneof![
        4 => Just(Vec::new()),
        2 => address().prop_map(|a| vec![a]),
        1 => (address(), address()).prop_map(|(a, b)| vec![a, b]),
    ];
    (
        0usize..6,
        0usize..4,
        0usize..3,
        ips,
        prop::option::weighted(0.25, 0..PINS.len()),
        0usize..3,
        0u8..8,
        // Mostly Cluster, so random Services are often compatible sharers.
        prop_oneof![4 => Just(0usize), 1 => Just(1), 1 => Just(2)],
        0u8..16,
    )
        .prop_map(|(n, fam, pol, ips, pin, key, ports, traffic, matching)| {
            let families = [vec![V4], vec![V6], vec![V4, V6], vec![V6, V4]][fam].clone();
            let all_ports = [Port::tcp(80), Port::udp(53), Port::tcp(53)];
            Request {
                key: ServiceKey::new(format!("ns{}", n % 2), format!("s{n}")),
                families,
                policy: [
                    FamilyPolicy::SingleStack,
                    FamilyPolicy::PreferDualStack,
                    FamilyPolicy::RequireDualStack,
                ][pol],
                requested_ips: ips,
                pool: pin.map(|p| PINS[p].to_string()),
                sharing_key: [None, Some("k1".to_string()), Some("k2".to_string())][key].clone(),
                ports: (0..3)
                    .filter(|b| ports & (1 << b) != 0)
                    .map(|b| all_ports[b])
                    .collect(),
                traffic: match traffic {
                    0 => TrafficPolicy::Cluster,
                    t => TrafficPolicy::Local {
                        selector: BTreeMap::from([("app".to_string(), format!("x{t}"))]),
                    },
                },
                matching_pools: (0..4)
                    .filter(|b| matching & (1 << b) != 0)
                    .map(|b| NAMES[b].to_string())
                    .collect(),
            }
        })
}

#[derive(Clone, Debug)]
enum Op {
    Ensure(Request),
    Release(usize),
    SetPools(Vec<Pool>),
    Restore(Request, Vec<IpAddr>),
}

fn op() -> impl Strategy<Value = Op> {
    let restore_ips = prop_oneof![
        3 => address().prop_map(|a| vec![a]),
        1 => (address(), address()).prop_map(|(a, b)| vec![a, b]),
    ];
    prop_oneof![
        8 => request().prop_map(Op::Ensure),
        2 => (0usize..6).prop_map(Op::Release),
        1 => pools().prop_map(Op::SetPools),
        2 => (request(), restore_ips).prop_map(|(r, ips)| Op::Restore(r, ips)),
    ]
}

// ---- oracles (independent of the implementation) ----

/// Sharing facts as the test tracks them per holder.
#[derive(Clone, Debug)]
struct Profile {
    key: Option<String>,
    ports: BTreeSet<Port>,
    traffic: TrafficPolicy,
}

fn profile(r: &Request) -> Profile {
    Profile {
        key: r.sharing_key.clone(),
        ports: r.ports.iter().copied().collect(),
        traffic: r.traffic.clone(),
    }
}

fn may_share(a: &Profile, b: &Profile) -> bool {
    a.key.is_some() && a.key == b.key && a.ports.is_disjoint(&b.ports) && a.traffic == b.traffic
}

fn options(r: &Request) -> Vec<Vec<Family>> {
    let p = r.families[0];
    let other = if p == V4 { V6 } else { V4 };
    let mut opts = match (r.policy, r.families.get(1)) {
        (FamilyPolicy::SingleStack, _) => vec![vec![p]],
        (FamilyPolicy::RequireDualStack, s) => vec![vec![p, *s.unwrap_or(&other)]],
        (FamilyPolicy::PreferDualStack, Some(s)) => vec![vec![p, *s], vec![p]],
        (FamilyPolicy::PreferDualStack, None) => vec![vec![p]],
    };
    opts.retain(|o| r.requested_ips.iter().all(|ip| o.contains(&Family::of(ip))));
    opts
}

fn family_set(ips: &[IpAddr]) -> BTreeSet<Family> {
    ips.iter().map(Family::of).collect()
}

fn eligible(pool: &Pool, r: &Request) -> bool {
    r.pool.as_ref().is_none_or(|p| *p == pool.name)
        && (pool.allocation.is_none() || r.matching_pools.contains(&pool.name))
}

fn pool_containing<'p>(pools: &'p [Pool], ip: &IpAddr) -> Option<&'p Pool> {
    pools
        .iter()
        .find(|p| p.ranges.iter().any(|r| r.contains(ip)))
}

fn home<'p>(pools: &'p [Pool], ips: &[IpAddr]) -> Option<&'p Pool> {
    let first = pool_containing(pools, ips.first()?)?;
    ips.iter()
        .all(|ip| pool_containing(pools, ip).is_some_and(|p| p.name == first.name))
        .then_some(first)
}

/// Where a brand-new Service without requested addresses or sharing key must land, found by
/// enumerating every address: (addresses, pool), or None when nothing fits.
fn expected_fresh(pools: &[Pool], held: &Allocator, r: &Request) -> Option<(Vec<IpAddr>, String)> {
    let candidates: Vec<&Pool> = match &r.pool {
        Some(name) => {
            let p = pools.iter().find(|p| p.name == *name)?;
            if !eligible(p, r) {
                return None;
            }
            vec![p]
        }
        None => {
            let mut c: Vec<&Pool> = pools
                .iter()
                .filter(|p| p.auto_assign && eligible(p, r))
                .collect();
            c.sort_by_key(|p| {
                let group = match p.allocation {
                    Some(PoolAllocationRule { priority: Some(n) }) if n > 0 => (0, n),
                    Some(_) => (1, 0),
                    None => (2, 0),
                };
                (group, p.name.clone())
            });
            c
        }
    };
    for option in options(r) {
        for pool in &candidates {
            let mut ranges = pool.ranges.clone();
            ranges.sort();
            let picks: Option<Vec<IpAddr>> = option
                .iter()
                .map(|f| {
                    ranges
                        .iter()
                        .filter(|rg| rg.family() == *f)
                        .flat_map(enumerate)
                        .find(|ip| {
                            !(pool.avoid_buggy_ips && is_buggy(ip))
                                && held.holders(ip).next().is_none()
                        })
                })
                .collect();
            if let Some(ips) = picks {
                return Some((ips, pool.name.clone()));
            }
        }
    }
    None
}

/// The test's own record of the world, updated only from successful results.
#[derive(Default)]
struct Model {
    pools: Vec<Pool>,
    profiles: BTreeMap<ServiceKey, Profile>,
    last_request: BTreeMap<ServiceKey, Request>,
}

fn services(a: &Allocator) -> BTreeMap<ServiceKey, Allocation> {
    a.services().map(|(k, v)| (k.clone(), v)).collect()
}

/// Applies one operation, checking everything checkable; returns a printable outcome.
fn apply(a: &mut Allocator, model: &mut Model, op: &Op) -> String {
    let before = a.clone();
    let others_before = services(a);
    let outcome = match op {
        Op::Ensure(r) => {
            let res = a.ensure(r);
            a.assert_invariants();
            check_ensure(&before, a, model, r, &res);
            model.last_request.insert(r.key.clone(), r.clone());
            if res.is_ok() {
                model.profiles.insert(r.key.clone(), profile(r));
            }
            format!("{res:?}")
        }
        Op::Release(n) => {
            let key = ServiceKey::new(format!("ns{}", n % 2), format!("s{n}"));
            let res = a.release(&key);
            a.assert_invariants();
            assert_eq!(res, before.allocation(&key));
            assert_eq!(a.allocation(&key), None);
            model.profiles.remove(&key);
            format!("{res:?}")
        }
        Op::SetPools(pools) => {
            a.set_pools(pools.clone());
            a.assert_invariants();
            model.pools = pools.clone();
            // Addresses never change; attribution follows the pools.
            for (k, alloc) in services(a) {
                assert_eq!(
                    alloc.ips, others_before[&k].ips,
                    "{k} renumbered by set_pools"
                );
                let expected = home(pools, &alloc.ips).map(|p| p.name.clone());
                assert_eq!(alloc.pool, expected, "{k} attributed wrongly");
            }
            "pools".to_string()
        }
        Op::Restore(r, ips) => {
            let res = a.restore(r, ips);
            a.assert_invariants();
            match &res {
                Ok(alloc) => {
                    assert_eq!(family_set(&alloc.ips).len(), ips.len());
                    let got: BTreeSet<_> = alloc.ips.iter().collect();
                    assert_eq!(got, ips.iter().collect::<BTreeSet<_>>());
                    model.profiles.insert(r.key.clone(), profile(r));
                    model.last_request.insert(r.key.clone(), r.clone());
                }
                Err(_) => assert_eq!(*a, before, "a refused restore changed state"),
            }
            format!("{res:?}")
        }
    };
    // Only the Service operated on may change.
    let touched = match op {
        Op::Ensure(r) | Op::Restore(r, _) => Some(r.key.clone()),
        Op::Release(n) => Some(ServiceKey::new(format!("ns{}", n % 2), format!("s{n}"))),
        Op::SetPools(_) => None,
    };
    if let Some(t) = touched {
        let mut after = services(a);
        let mut prior = others_before;
        after.remove(&t);
        prior.remove(&t);
        assert_eq!(after, prior, "an operation on {t} changed another Service");
    }
    outcome
}

fn check_ensure(
    before: &Allocator,
    a: &Allocator,
    model: &Model,
    r: &Request,
    res: &Result<Allocation, Refusal>,
) {
    let prev = before.allocation(&r.key);
    match res {
        Ok(alloc) => {
            assert_eq!(a.allocation(&r.key).as_ref(), Some(alloc));
            let fams = family_set(&alloc.ips);
            assert_eq!(fams.len(), alloc.ips.len(), "two addresses of one family");
            assert!(
                options(r)
                    .iter()
                    .any(|o| o.iter().copied().collect::<BTreeSet<_>>() == fams),
                "{alloc:?} has the wrong families for {r:?}"
            );
            for want in &r.requested_ips {
                assert!(alloc.ips.contains(want), "requested {want} not given");
            }
            // Family order follows the request.
            let order: Vec<Family> = alloc.ips.iter().map(Family::of).collect();
            assert!(order.first() == Some(&r.families[0]) || !fams.contains(&r.families[0]));
            match &alloc.pool {
                Some(name) => {
                    let pool = model
                        .pools
                        .iter()
                        .find(|p| p.name == *name)
                        .expect("known pool");
                    assert!(
                        eligible(pool, r),
                        "{} got addresses of ineligible pool {name}",
                        r.key
                    );
                    for ip in &alloc.ips {
                        assert!(pool.ranges.iter().any(|rg| rg.contains(ip)));
                    }
                }
                None => {
                    // Orphaned: only ever the addresses the Service already had.
                    let prev = prev.as_ref().expect("an orphan existed before");
                    assert_eq!(family_set(&prev.ips), fams);
                    assert_eq!(
                        prev.ips.iter().collect::<BTreeSet<_>>(),
                        alloc.ips.iter().collect::<BTreeSet<_>>()
                    );
                }
            }
        }
        Err(refusal) => {
            assert_eq!(a, before, "a refusal changed state");
            assert_eq!(refusal.kept, prev);
        }
    }

    // Brand-new Service, nothing requested, no key: exactly the brute-force choice.
    if prev.is_none() && r.requested_ips.is_empty() && r.sharing_key.is_none() {
        let expected = expected_fresh(&model.pools, before, r);
        match (expected, res) {
            (Some((ips, pool)), Ok(alloc)) => {
                assert_eq!(
                    alloc.ips, ips,
                    "not the lowest free addresses of the best pool"
                );
                assert_eq!(alloc.pool.as_deref(), Some(pool.as_str()));
            }
            (None, Err(_)) => {}
            (e, got) => panic!("oracle {e:?} but allocator {got:?} for {r:?}"),
        }
    }

    // Stability: addresses that still satisfy the request are kept.
    if let Some(prev) = &prev
        && let Some(pool) = prev
            .pool
            .as_ref()
            .and_then(|n| model.pools.iter().find(|p| p.name == *n))
    {
        let fams = family_set(&prev.ips);
        let mine = profile(r);
        let sharing_ok = prev.ips.iter().all(|ip| {
            before
                .holders(ip)
                .filter(|h| **h != r.key)
                .all(|h| may_share(&mine, &model.profiles[h]))
        });
        let service_families = options(r).first().cloned().unwrap_or_default();
        let well_formed = r.requested_ips.len() <= 2
            && family_set(&r.requested_ips).len() == r.requested_ips.len()
            && r.requested_ips
                .iter()
                .all(|ip| service_families.contains(&Family::of(ip)));
        let still_fits = well_formed
            && eligible(pool, r)
            && options(r)
                .iter()
                .any(|o| o.iter().copied().collect::<BTreeSet<_>>() == fams)
            && r.requested_ips.iter().all(|ip| prev.ips.contains(ip))
            && sharing_ok;
        if still_fits {
            let alloc = res.as_ref().expect("a fitting Service keeps its addresses");
            for ip in &prev.ips {
                assert!(
                    alloc.ips.contains(ip),
                    "{} renumbered: {prev:?} -> {alloc:?}",
                    r.key
                );
            }
            assert_eq!(alloc.pool, prev.pool);
        }
    }
}

fn run(initial: &[Pool], ops: &[Op]) -> (Allocator, Model, Vec<String>) {
    let mut a = Allocator::new();
    a.set_pools(initial.to_vec());
    let mut model = Model {
        pools: initial.to_vec(),
        ..Model::default()
    };
    let outcomes = ops.iter().map(|op| apply(&mut a, &mut model, op)).collect();
    (a, model, outcomes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Invariants after every step; oracles for fresh choices and stability; determinism.
    #[test]
    fn random_operations(initial in pools(), ops in prop::collection::vec(op(), 1..40)) {
        let (a, _, outcomes) = run(&initial, &ops);
        // Replaying on a fresh allocator gives the same answers and the same state.
        let (b, _, replay) = run(&initial, &ops);
        prop_assert_eq!(outcomes, replay);
        prop_assert_eq!(a, b);
    }

    /// A superset of the pools (more ranges, more pools of any rank) renumbers nobody.
    #[test]
    fn superset_of_pools_renumbers_nobody(
        initial in pools(),
        ops in prop::collection::vec(op(), 1..40),
        spare_owner in prop::collection::vec(0..=NAMES.len(), SPARE.len()),
        new_attrs in attrs(),
    ) {
        let (mut a, mut model, _) = run(&initial, &ops);
        // Settle: every Service confirms its last request.
        let requests: Vec<Request> = model
            .last_request
            .iter()
            .filter(|(k, _)| a.allocation(k).is_some())
            .map(|(_, r)| r.clone())
            .collect();
        let settled: Vec<(Request, Allocation)> = requests
            .iter()
            .filter_map(|r| {
                let res = a.ensure(r);
                res.ok().map(|alloc| (r.clone(), alloc))
            })
            .collect();
        a.assert_invariants();
        // Grow: spare blocks go to existing pools or to a new pool "n".
        let mut grown = model.pools.clone();
        let mut new_ranges = Vec::new();
        for (block, owner) in SPARE.iter().zip(&spare_owner) {
            match grown.iter_mut().find(|p| p.name == NAMES.get(*owner).copied().unwrap_or("")) {
                Some(p) => p.ranges.push(range(block)),
                None => new_ranges.push(range(block)),
            }
        }
        if !new_ranges.is_empty() {
            grown.push(build_pool("n", new_ranges, &new_attrs));
        }
        a.set_pools(grown.clone());
        model.pools = grown;
        a.assert_invariants();
        for (r, first) in settled {
            let mut r = r;
            // The new pool may select the Service too: still no renumbering.
            r.matching_pools.insert("n".to_string());
            let again = a.ensure(&r);
            a.assert_invariants();
            let again = again.map_err(|e| TestCaseError::fail(format!("{} refused after growth: {e}", r.key)))?;
            for ip in &first.ips {
                prop_assert!(again.ips.contains(ip), "{} renumbered: {:?} -> {:?}", r.key, first, again);
            }
        }
    }

    /// Huge IPv6 pools: the lowest free address, whatever the churn, without enumerating.
    #[test]
    fn huge_pools_hand_out_the_lowest_free_address(
        churn in prop::collection::vec(prop_oneof![3 => Just(None), 1 => (0usize..64).prop_map(Some)], 1..120),
        wide in any::<bool>(),
    ) {
        let (block, base) = if wide { ("fd00:48::/48", "fd00:48::") } else { ("fd00:64:0:1::/64", "fd00:64:0:1::") };
        let base = u128::from(base.parse::<Ipv6Addr>().expect("literal"));
        let mut a = Allocator::new();
        a.set_pools(vec![Pool::new("big", vec![range(block)])]);
        let mut held: BTreeMap<u128, ServiceKey> = BTreeMap::new();
        for (i, step) in churn.into_iter().enumerate() {
            match step {
                Some(n) if !held.is_empty() => {
                    let offset = *held.keys().nth(n % held.len()).expect("non-empty");
                    let key = held.remove(&offset).expect("present");
                    prop_assert!(a.release(&key).is_some());
                }
                _ => {
                    let key = ServiceKey::new("ns", format!("s{i}"));
                    let expected = (0u128..).find(|o| !held.contains_key(o)).expect("free");
                    let alloc = a.ensure(&Request::new(key.clone(), V6)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(alloc.ips, vec![IpAddr::V6((base + expected).into())]);
                    held.insert(expected, key);
                }
            }
        }
        a.assert_invariants();
        let size = range(block).size();
        prop_assert_eq!(a.pool_stats("big").map(|s| s.available_ipv6), Some(size - held.len() as u128));
    }
}
