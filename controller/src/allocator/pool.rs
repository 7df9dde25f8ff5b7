//! Address pools as the allocator sees them, and which pool holds an address.

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::address::{AddressRange, Family};

use super::addr::{Addr, buggy_count, is_buggy};
use super::occupancy::Occupancy;

/// A validated `IPAddressPool`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub ranges: Vec<AddressRange>,
    /// Whether Services that neither name a pool nor request an address may get addresses here.
    pub auto_assign: bool,
    /// Never hand out IPv4 addresses ending in .0 or .255.
    pub avoid_buggy_ips: bool,
    /// Never hand out automatically an address reported in conflict
    /// ([`Allocator::set_conflicts`](super::Allocator::set_conflicts)), and move Services that
    /// got one automatically.
    pub avoid_conflicting_ips: bool,
    /// `serviceAllocation`: the pool serves only the Services that list it in
    /// [`Request::matching_pools`](super::Request::matching_pools).
    pub allocation: Option<PoolAllocationRule>,
}

/// The part of `serviceAllocation` the allocator needs; selectors are evaluated by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolAllocationRule {
    /// Lower positive values rank first; 0, negative and unset rank after every positive value.
    pub priority: Option<i32>,
}

impl Pool {
    /// An auto-assign pool without `serviceAllocation`, `avoidBuggyIPs` or `avoidConflictingIPs`.
    pub fn new(name: impl Into<String>, ranges: Vec<AddressRange>) -> Pool {
        Pool {
            name: name.into(),
            ranges,
            auto_assign: true,
            avoid_buggy_ips: false,
            avoid_conflicting_ips: false,
            allocation: None,
        }
    }

    /// Ranges of `family` in address order (sorted by `PoolSet::set`).
    pub(crate) fn ranges_of(&self, family: Family) -> impl Iterator<Item = &AddressRange> {
        self.ranges.iter().filter(move |r| r.family() == family)
    }

    pub(crate) fn has_family(&self, family: Family) -> bool {
        self.ranges_of(family).next().is_some()
    }

    pub(crate) fn contains(&self, addr: Addr) -> bool {
        self.ranges_of(addr.family).any(|r| {
            let (lo, hi) = r.bounds();
            (lo..=hi).contains(&addr.value)
        })
    }

    /// Sort key among the pools a Service may take automatically: matching `serviceAllocation`
    /// pools by positive priority, then matching pools without one, then plain pools. Callers
    /// sort stably from name order, so ties break by name.
    pub(crate) fn rank(&self) -> (u8, i32) {
        match self.allocation {
            Some(PoolAllocationRule { priority: Some(p) }) if p > 0 => (0, p),
            Some(_) => (1, 0),
            None => (2, 0),
        }
    }
}

/// Assigned and available addresses of a pool. `u128` so an IPv6 /64 counts exactly; the caller
/// saturates into the status' `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Distinct addresses held (a shared address counts once).
    pub assigned_ipv4: u128,
    pub assigned_ipv6: u128,
    /// Addresses that could still be handed out (minus .0/.255 under `avoidBuggyIPs`, and free
    /// addresses in conflict under `avoidConflictingIPs`).
    pub available_ipv4: u128,
    pub available_ipv6: u128,
}

/// The current pools, by name, with an index from address to pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PoolSet {
    by_name: BTreeMap<String, Pool>,
    /// (family, first, last, pool name), sorted: a binary search finds an address's pool.
    index: Vec<(Family, u128, u128, String)>,
}

impl PoolSet {
    /// Replaces all pools. A later pool with an already seen name replaces the earlier one.
    /// Pools must not overlap (the caller validates); if they do, lookups stay deterministic
    /// but may attribute a shared address to either pool.
    pub fn set(&mut self, pools: impl IntoIterator<Item = Pool>) {
        self.by_name.clear();
        for mut pool in pools {
            // Address order, so "lowest free address" walks ranges low to high.
            pool.ranges.sort_by_key(|r| (r.family(), r.bounds()));
            pool.ranges.dedup();
            self.by_name.insert(pool.name.clone(), pool);
        }
        self.index = self
            .by_name
            .values()
            .flat_map(|p| {
                p.ranges.iter().map(|r| {
                    let (lo, hi) = r.bounds();
                    (r.family(), lo, hi, p.name.clone())
                })
            })
            .collect();
        self.index.sort();
    }

    pub fn get(&self, name: &str) -> Option<&Pool> {
        self.by_name.get(name)
    }

    /// Pools in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.by_name.values()
    }

    pub fn pool_of(&self, addr: Addr) -> Option<&Pool> {
        let i = self
            .index
            .partition_point(|(f, lo, _, _)| (*f, *lo) <= (addr.family, addr.value));
        let (family, _, hi, name) = self.index.get(i.checked_sub(1)?)?;
        (*family == addr.family && addr.value <= *hi)
            .then(|| self.by_name.get(name))
            .flatten()
    }

    /// The one pool holding every address, if there is one.
    pub fn home(&self, addrs: &[Addr]) -> Option<&Pool> {
        let (first, rest) = addrs.split_first()?;
        let pool = self.pool_of(*first)?;
        rest.iter()
            .all(|a| self.pool_of(*a).is_some_and(|p| p.name == pool.name))
            .then_some(pool)
    }

    /// Counts of `pool`; `conflicted` are the addresses reported in conflict (any pool).
    pub fn stats(
        &self,
        pool: &Pool,
        v4: &Occupancy,
        v6: &Occupancy,
        conflicted: &BTreeSet<Addr>,
    ) -> PoolStats {
        let mut s = PoolStats::default();
        for r in &pool.ranges {
            let (lo, hi) = r.bounds();
            let (occ, assigned, available) = match r.family() {
                Family::V4 => (v4, &mut s.assigned_ipv4, &mut s.available_ipv4),
                Family::V6 => (v6, &mut s.assigned_ipv6, &mut s.available_ipv6),
            };
            let (held, held_buggy) = occ.count_in(lo, hi);
            // Avoided addresses are not available, held or not; held ones are still assigned.
            let unusable = if pool.avoid_buggy_ips && r.family() == Family::V4 {
                buggy_count(lo, hi) - held_buggy
            } else {
                0
            };
            *assigned = assigned.saturating_add(held);
            *available =
                available.saturating_add(r.size().saturating_sub(held).saturating_sub(unusable));
        }
        if pool.avoid_conflicting_ips {
            // Free addresses in conflict are not available either (held ones count as held).
            for a in conflicted.iter().filter(|a| pool.contains(**a)) {
                let (occ, available) = match a.family {
                    Family::V4 => (v4, &mut s.available_ipv4),
                    Family::V6 => (v6, &mut s.available_ipv6),
                };
                let avoided_anyway = pool.avoid_buggy_ips && is_buggy(a.family, a.value);
                if !occ.is_held(a.value) && !avoided_anyway {
                    *available = available.saturating_sub(1);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::service::ServiceKey;
    use std::net::IpAddr;

    fn r(s: &str) -> AddressRange {
        s.parse().unwrap()
    }
    fn a(s: &str) -> Addr {
        Addr::of(&s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn lookup_by_address() {
        let mut set = PoolSet::default();
        set.set([
            Pool::new("b", vec![r("10.0.1.0/24"), r("fd00::/64")]),
            Pool::new("a", vec![r("10.0.0.0/24")]),
        ]);
        assert_eq!(
            set.pool_of(a("10.0.0.255")).map(|p| p.name.as_str()),
            Some("a")
        );
        assert_eq!(
            set.pool_of(a("10.0.1.0")).map(|p| p.name.as_str()),
            Some("b")
        );
        assert_eq!(set.pool_of(a("10.0.2.0")), None);
        assert_eq!(set.pool_of(a("9.255.255.255")), None);
        // An IPv4 value must not match an IPv6 range of the same number.
        assert_eq!(set.pool_of(a("::a00:5")), None);
        assert_eq!(
            set.pool_of(a("fd00::ffff")).map(|p| p.name.as_str()),
            Some("b")
        );
        assert_eq!(
            set.home(&[a("10.0.1.1"), a("fd00::1")])
                .map(|p| p.name.as_str()),
            Some("b")
        );
        assert_eq!(set.home(&[a("10.0.0.1"), a("fd00::1")]), None);
        assert_eq!(set.home(&[]), None);
        assert_eq!(
            set.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn rank_orders_priorities() {
        let mut p = Pool::new("x", vec![]);
        assert_eq!(p.rank(), (2, 0));
        p.allocation = Some(PoolAllocationRule { priority: None });
        assert_eq!(p.rank(), (1, 0));
        p.allocation = Some(PoolAllocationRule { priority: Some(0) });
        assert_eq!(p.rank(), (1, 0));
        p.allocation = Some(PoolAllocationRule { priority: Some(-3) });
        assert_eq!(p.rank(), (1, 0));
        p.allocation = Some(PoolAllocationRule { priority: Some(7) });
        assert_eq!(p.rank(), (0, 7));
    }

    #[test]
    fn stats_count_without_enumerating() {
        let mut set = PoolSet::default();
        let mut pool = Pool::new("p", vec![r("10.0.0.0/23"), r("fd00::/48")]);
        pool.avoid_buggy_ips = true;
        set.set([pool.clone()]);
        let (mut v4, mut v6) = (Occupancy::new(Family::V4), Occupancy::new(Family::V6));
        let k = ServiceKey::new("ns", "s");
        v4.add(a("10.0.0.1").value, k.clone());
        v4.add(a("10.0.0.255").value, k.clone()); // a restored buggy address
        v6.add(a("fd00::1").value, k.clone());
        v6.add(a("fd01::1").value, k); // outside the pool
        let s = set.stats(&pool, &v4, &v6, &BTreeSet::new());
        assert_eq!(s.assigned_ipv4, 2);
        // 512 addresses, 4 buggy (.0/.255 twice), 2 held of which one buggy.
        assert_eq!(s.available_ipv4, 512 - 2 - 3);
        assert_eq!(s.assigned_ipv6, 1);
        assert_eq!(s.available_ipv6, (1u128 << 80) - 1);
    }
}
