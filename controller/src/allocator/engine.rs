//! The allocator: which Service holds which addresses, and every decision about them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::address::Family;

use super::addr::{Addr, is_buggy};
use super::allocation::Allocation;
use super::error::{AllocError, Ineligibility, Refusal, Shortage};
use super::occupancy::Occupancy;
use super::plan::Plan;
use super::pool::{Pool, PoolSet, PoolStats};
use super::service::{Request, ServiceKey};
use super::sharing::{SharingConflict, SharingProfile};

/// Allocates pool addresses to LoadBalancer Services. Pure and deterministic: the same calls in
/// the same order give the same results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocator {
    pools: PoolSet,
    services: BTreeMap<ServiceKey, Holding>,
    v4: Occupancy,
    v6: Occupancy,
    /// Sharing key -> addresses held by Services with that key (and how many such holders), so
    /// a Service with a key finds addresses it may join without scanning everything.
    keyed: BTreeMap<String, BTreeMap<Addr, usize>>,
}

/// What one Service holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holding {
    /// At most one per family, in the Service's family order.
    addrs: Vec<Addr>,
    /// The pool holding all of `addrs`; `None` = orphaned. Recomputed whenever pools change.
    pool: Option<String>,
    profile: SharingProfile,
    /// The pin in force when the addresses were taken or last confirmed. Tells "the pools
    /// changed under an orphan" (keep) from "the Service now names another pool" (move).
    pin: Option<String>,
}

enum Verdict {
    /// Addresses still satisfy the request, in this eligible pool.
    Keep(String),
    /// Addresses left the pools but the request did not change: keep and report.
    KeepOrphaned,
    /// The request (or the pool's eligibility) changed: take new addresses if possible.
    Move,
}

/// Why a pool could not serve a family set.
enum Miss {
    NoFamily(Family),
    Exhausted(Family),
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator::new()
    }
}

impl Allocator {
    pub fn new() -> Allocator {
        Allocator {
            pools: PoolSet::default(),
            services: BTreeMap::new(),
            v4: Occupancy::new(Family::V4),
            v6: Occupancy::new(Family::V6),
            keyed: BTreeMap::new(),
        }
    }

    /// Replaces the pools (already validated, non-overlapping). Never changes anyone's
    /// addresses: holdings are only re-attributed to whichever pool now holds them, or marked
    /// orphaned. The next `ensure` of each Service decides whether it must move.
    pub fn set_pools(&mut self, pools: impl IntoIterator<Item = Pool>) {
        self.pools.set(pools);
        for h in self.services.values_mut() {
            h.pool = self.pools.home(&h.addrs).map(|p| p.name.clone());
        }
    }

    /// Pools in name order.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.iter()
    }

    /// Gives the Service addresses that satisfy `req`, keeping its current ones whenever they
    /// still do (stability first), and keeping orphaned ones unless the request changed.
    ///
    /// On `Err`, nothing changed: [`Refusal::kept`] holds the addresses the Service still has
    /// (its request changed but cannot be met), or is `None` (it has none: pending).
    #[expect(
        clippy::result_large_err,
        reason = "one refusal per reconcile, never in a hot loop; unboxed fields keep callers' matches plain"
    )]
    pub fn ensure(&mut self, req: &Request) -> Result<Allocation, Refusal> {
        let plan = match Plan::new(req) {
            Ok(plan) => plan,
            Err(error) => {
                return Err(Refusal {
                    error,
                    kept: self.allocation(&req.key),
                });
            }
        };
        // Taken out while deciding, so the Service never conflicts with itself.
        let Some(current) = self.remove_holding(&req.key) else {
            return self.take(&plan, None);
        };
        match self.judge(&current, &plan) {
            Verdict::Keep(pool) => Ok(self.keep(&plan, current, Some(pool))),
            Verdict::KeepOrphaned => Ok(self.keep(&plan, current, None)),
            Verdict::Move => self.take(&plan, Some(current)),
        }
    }

    /// Claims addresses a Service already has (its status), at start-up before any `ensure`,
    /// so pending Services cannot take them. Addresses outside every pool are claimed too
    /// (orphaned). Refused, changing nothing, when an address is held by a Service it may not
    /// share with; restore in creation order so the oldest wins.
    pub fn restore(&mut self, req: &Request, ips: &[IpAddr]) -> Result<Allocation, AllocError> {
        let mut addrs: Vec<Addr> = ips.iter().map(Addr::of).collect();
        let families: BTreeSet<Family> = addrs.iter().map(|a| a.family).collect();
        if addrs.is_empty() || families.len() != addrs.len() {
            return Err(AllocError::InvalidRestore { ips: ips.to_vec() });
        }
        // Stable sort: follow the Service's family order, keep status order otherwise.
        addrs.sort_by_key(|a| req.families.iter().position(|f| *f == a.family));
        let profile = SharingProfile::of(req);
        let previous = self.remove_holding(&req.key);
        for a in &addrs {
            if let Some((holder, conflict)) = self.conflict(*a, &profile) {
                if let Some(prev) = previous {
                    self.insert_holding(req.key.clone(), prev);
                }
                return Err(AllocError::IpInUse {
                    ip: a.ip(),
                    holder,
                    conflict,
                });
            }
        }
        let holding = Holding {
            pool: self.pools.home(&addrs).map(|p| p.name.clone()),
            addrs,
            profile,
            pin: req.pool.clone(),
        };
        Ok(self.insert_holding(req.key.clone(), holding))
    }

    /// Frees the Service's addresses (shared ones stay with the other holders).
    pub fn release(&mut self, key: &ServiceKey) -> Option<Allocation> {
        self.remove_holding(key).map(|h| allocation_of(&h))
    }

    pub fn allocation(&self, key: &ServiceKey) -> Option<Allocation> {
        self.services.get(key).map(allocation_of)
    }

    /// Every Service holding addresses, in key order.
    pub fn services(&self) -> impl Iterator<Item = (&ServiceKey, Allocation)> {
        self.services.iter().map(|(k, h)| (k, allocation_of(h)))
    }

    /// Services whose addresses no single pool holds any more.
    pub fn orphans(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services
            .iter()
            .filter(|(_, h)| h.pool.is_none())
            .map(|(k, _)| k)
    }

    /// Services holding `ip`, in key order.
    pub fn holders(&self, ip: &IpAddr) -> impl Iterator<Item = &ServiceKey> {
        let a = Addr::of(ip);
        self.occupancy(a.family).holders(a.value)
    }

    /// The pool whose ranges contain `ip`.
    pub fn pool_of(&self, ip: &IpAddr) -> Option<&Pool> {
        self.pools.pool_of(Addr::of(ip))
    }

    pub fn pool_stats(&self, pool: &str) -> Option<PoolStats> {
        let pool = self.pools.get(pool)?;
        Some(self.pools.stats(pool, &self.v4, &self.v6))
    }

    /// Stats of every pool, by name.
    pub fn stats(&self) -> BTreeMap<String, PoolStats> {
        self.pools
            .iter()
            .map(|p| (p.name.clone(), self.pools.stats(p, &self.v4, &self.v6)))
            .collect()
    }

    /// Number of Services holding addresses.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    fn judge(&self, current: &Holding, plan: &Plan) -> Verdict {
        let families: BTreeSet<Family> = current.addrs.iter().map(|a| a.family).collect();
        if families.len() != current.addrs.len() || !plan.accepts(&families) {
            return Verdict::Move;
        }
        if plan.requested.iter().any(|r| !current.addrs.contains(r)) {
            return Verdict::Move;
        }
        // Only this Service's own profile can have changed: co-holders were compatible with
        // the recorded one and change only in ways compatible with it.
        if current
            .addrs
            .iter()
            .any(|a| self.conflict(*a, &plan.profile).is_some())
        {
            return Verdict::Move;
        }
        match self.pools.home(&current.addrs) {
            Some(pool) if plan.may_use(pool) => Verdict::Keep(pool.name.clone()),
            Some(_) => Verdict::Move,
            None if current.pin == plan.req.pool => Verdict::KeepOrphaned,
            None => Verdict::Move,
        }
    }

    fn keep(&mut self, plan: &Plan, mut holding: Holding, pool: Option<String>) -> Allocation {
        holding.profile = plan.profile.clone();
        holding.pin = plan.req.pool.clone();
        holding.addrs.sort_by_key(|a| plan.rank(a.family));
        // A PreferDualStack Service that fell back to one family gains the other in place once
        // its pool has one free: its existing address does not change.
        if let (Some(name), Some(best)) = (&pool, plan.options.first())
            && best.len() > holding.addrs.len()
            && let Some(home) = self.pools.get(name)
        {
            let missing = best
                .iter()
                .filter(|f| !holding.addrs.iter().any(|a| a.family == **f));
            let extra: Option<Vec<Addr>> =
                missing.map(|f| self.pick(home, *f, plan, None)).collect();
            if let Some(extra) = extra {
                holding.addrs.extend(extra);
                holding.addrs.sort_by_key(|a| plan.rank(a.family));
            }
        }
        holding.pool = pool;
        self.insert_holding(plan.key().clone(), holding)
    }

    /// New addresses for the Service; on failure its previous holding is put back untouched.
    #[expect(clippy::result_large_err, reason = "see `ensure`")]
    fn take(&mut self, plan: &Plan, previous: Option<Holding>) -> Result<Allocation, Refusal> {
        match self.choose(plan, previous.as_ref()) {
            Ok(addrs) => {
                let holding = Holding {
                    pool: self.pools.home(&addrs).map(|p| p.name.clone()),
                    addrs,
                    profile: plan.profile.clone(),
                    pin: plan.req.pool.clone(),
                };
                Ok(self.insert_holding(plan.key().clone(), holding))
            }
            Err(error) => {
                let kept = previous.map(|prev| self.insert_holding(plan.key().clone(), prev));
                Err(Refusal { error, kept })
            }
        }
    }

    fn choose(&self, plan: &Plan, previous: Option<&Holding>) -> Result<Vec<Addr>, AllocError> {
        if let Some(first) = plan.requested.first() {
            return self.choose_requested(plan, *first, previous);
        }
        let candidates = self.candidates(plan, previous)?;
        // Every option in every pool before settling for less: PreferDualStack takes a
        // dual-stack pool anywhere over one family from a better-ranked pool.
        for option in &plan.options {
            for pool in &candidates {
                if let Ok(addrs) = self.fill(pool, option, plan, previous) {
                    return Ok(addrs);
                }
            }
        }
        Err(self.explain(plan, &candidates, previous))
    }

    /// Pools to try, best first.
    fn candidates(
        &self,
        plan: &Plan,
        previous: Option<&Holding>,
    ) -> Result<Vec<&Pool>, AllocError> {
        if let Some(name) = &plan.req.pool {
            let pool = self.pinned(plan, name)?;
            return Ok(vec![pool]);
        }
        let mut pools: Vec<&Pool> = self
            .pools
            .iter()
            .filter(|p| p.auto_assign && plan.selected_by(p))
            .collect();
        // Stable sorts over name order: ties break by name.
        pools.sort_by_key(|p| p.rank());
        // A moving Service tries its current pool first (it may keep one of its addresses),
        // then pools where Services with its sharing key hold an address it may join.
        let current = previous.and_then(|h| h.pool.as_deref());
        pools.sort_by_cached_key(|p| {
            if current == Some(p.name.as_str()) {
                0
            } else if self.can_join(p, plan) {
                1
            } else {
                2
            }
        });
        Ok(pools)
    }

    fn pinned<'a>(&'a self, plan: &Plan, name: &str) -> Result<&'a Pool, AllocError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| AllocError::PinnedPoolUnknown { pool: name.into() })?;
        if !plan.selected_by(pool) {
            return Err(AllocError::PinnedPoolNotForService { pool: name.into() });
        }
        Ok(pool)
    }

    /// All addresses from the pool of the requested ones, which must be one eligible pool.
    fn choose_requested(
        &self,
        plan: &Plan,
        first: Addr,
        previous: Option<&Holding>,
    ) -> Result<Vec<Addr>, AllocError> {
        if let Some(name) = &plan.req.pool {
            self.pinned(plan, name)?;
        }
        let pool = self.requested_pool(plan, first, previous)?;
        for &addr in plan.requested.iter().skip(1) {
            let other = self.requested_pool(plan, addr, previous)?;
            if other.name != pool.name {
                return Err(AllocError::RequestedIpsInDifferentPools {
                    first: first.ip(),
                    first_pool: pool.name.clone(),
                    second: addr.ip(),
                    second_pool: other.name.clone(),
                });
            }
        }
        for &addr in &plan.requested {
            if let Some((holder, conflict)) = self.conflict(addr, &plan.profile) {
                return Err(AllocError::IpInUse {
                    ip: addr.ip(),
                    holder,
                    conflict,
                });
            }
        }
        let mut miss = Miss::Exhausted(first.family);
        for option in &plan.options {
            match self.fill(pool, option, plan, previous) {
                Ok(addrs) => return Ok(addrs),
                Err(m) => miss = m,
            }
        }
        let name = pool.name.clone();
        Err(match miss {
            Miss::NoFamily(family) => AllocError::PoolLacksFamily { pool: name, family },
            Miss::Exhausted(family) => AllocError::Exhausted {
                shortages: vec![Shortage { pool: name, family }],
            },
        })
    }

    /// The pool of a requested address, if the Service may take that address from it.
    fn requested_pool(
        &self,
        plan: &Plan,
        addr: Addr,
        previous: Option<&Holding>,
    ) -> Result<&Pool, AllocError> {
        let ip = addr.ip();
        let pool = self
            .pools
            .pool_of(addr)
            .ok_or(AllocError::RequestedIpOutsidePools { ip })?;
        let not_eligible = |why| AllocError::RequestedIpNotEligible {
            ip,
            pool: pool.name.clone(),
            why,
        };
        if let Some(pinned) = &plan.req.pool
            && *pinned != pool.name
        {
            return Err(not_eligible(Ineligibility::PinnedElsewhere {
                pinned: pinned.clone(),
            }));
        }
        if !plan.selected_by(pool) {
            return Err(not_eligible(Ineligibility::NotSelected));
        }
        // avoidBuggyIPs governs new hand-outs; an address the Service already has stays.
        let own = previous.is_some_and(|h| h.addrs.contains(&addr));
        if pool.avoid_buggy_ips && is_buggy(addr.family, addr.value) && !own {
            return Err(AllocError::RequestedIpAvoided {
                ip,
                pool: pool.name.clone(),
            });
        }
        Ok(pool)
    }

    /// Addresses of `option`'s families from one pool (requested ones as requested).
    fn fill(
        &self,
        pool: &Pool,
        option: &[Family],
        plan: &Plan,
        previous: Option<&Holding>,
    ) -> Result<Vec<Addr>, Miss> {
        option
            .iter()
            .map(|&family| {
                if let Some(requested) = plan.requested(family) {
                    return Ok(requested);
                }
                if !pool.has_family(family) {
                    return Err(Miss::NoFamily(family));
                }
                self.pick(pool, family, plan, previous)
                    .ok_or(Miss::Exhausted(family))
            })
            .collect()
    }

    /// The address of `family` the Service should take from `pool`, if any.
    fn pick(
        &self,
        pool: &Pool,
        family: Family,
        plan: &Plan,
        previous: Option<&Holding>,
    ) -> Option<Addr> {
        // A moving Service keeps what it can: a move changes only what it must.
        if let Some(own) = previous.and_then(|h| h.addrs.iter().find(|a| a.family == family))
            && pool.contains(*own)
            && self.conflict(*own, &plan.profile).is_none()
        {
            return Some(*own);
        }
        // With a sharing key, join the lowest address Services with that key hold, if allowed.
        if let Some(shared) = plan.profile.key.as_ref().and_then(|k| self.keyed.get(k)) {
            for range in pool.ranges_of(family) {
                let (lo, hi) = range.bounds();
                let found = shared
                    .range(Addr { family, value: lo }..=Addr { family, value: hi })
                    .map(|(a, _)| *a)
                    .find(|a| self.conflict(*a, &plan.profile).is_none());
                if found.is_some() {
                    return found;
                }
            }
        }
        let occupancy = self.occupancy(family);
        pool.ranges_of(family).find_map(|range| {
            let (lo, hi) = range.bounds();
            occupancy
                .first_free(lo, hi, pool.avoid_buggy_ips)
                .map(|v| Addr::new(family, v))
        })
    }

    fn can_join(&self, pool: &Pool, plan: &Plan) -> bool {
        let Some(shared) = plan.profile.key.as_ref().and_then(|k| self.keyed.get(k)) else {
            return false;
        };
        shared.keys().any(|a| {
            plan.options[0].contains(&a.family)
                && pool.contains(*a)
                && self.conflict(*a, &plan.profile).is_none()
        })
    }

    /// The most useful error once every candidate failed.
    fn explain(&self, plan: &Plan, candidates: &[&Pool], previous: Option<&Holding>) -> AllocError {
        // Report against the least demanding option (PreferDualStack: the primary alone).
        let least: &[Family] = plan.options.last().map(Vec::as_slice).unwrap_or_default();
        let able: Vec<&Pool> = candidates
            .iter()
            .copied()
            .filter(|p| least.iter().all(|f| p.has_family(*f)))
            .collect();
        if able.is_empty() {
            if let (Some(_), Some(pool)) = (&plan.req.pool, candidates.first())
                && let Some(family) = least.iter().find(|f| !pool.has_family(**f))
            {
                return AllocError::PoolLacksFamily {
                    pool: pool.name.clone(),
                    family: *family,
                };
            }
            let primary = least.first().copied().unwrap_or(Family::V4);
            let any_primary = candidates.iter().any(|p| p.has_family(primary));
            return if least.len() > 1 && any_primary {
                AllocError::NoDualStackPool
            } else {
                AllocError::NoPoolForFamily { family: primary }
            };
        }
        let shortages = able
            .iter()
            .flat_map(|pool| {
                least
                    .iter()
                    .filter(|f| self.pick(pool, **f, plan, previous).is_none())
                    .map(|f| Shortage {
                        pool: pool.name.clone(),
                        family: *f,
                    })
            })
            .collect();
        AllocError::Exhausted { shortages }
    }

    /// The first holder of `addr` (in key order) a Service with `profile` may not share with.
    fn conflict(
        &self,
        addr: Addr,
        profile: &SharingProfile,
    ) -> Option<(ServiceKey, SharingConflict)> {
        self.occupancy(addr.family)
            .holders(addr.value)
            .find_map(|k| {
                let holder = self.services.get(k)?;
                profile
                    .conflict_with(&holder.profile)
                    .map(|c| (k.clone(), c))
            })
    }

    fn occupancy(&self, family: Family) -> &Occupancy {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn insert_holding(&mut self, key: ServiceKey, holding: Holding) -> Allocation {
        for a in &holding.addrs {
            let occupancy = match a.family {
                Family::V4 => &mut self.v4,
                Family::V6 => &mut self.v6,
            };
            occupancy.add(a.value, key.clone());
            if let Some(k) = &holding.profile.key {
                *self
                    .keyed
                    .entry(k.clone())
                    .or_default()
                    .entry(*a)
                    .or_default() += 1;
            }
        }
        let allocation = allocation_of(&holding);
        self.services.insert(key, holding);
        allocation
    }

    fn remove_holding(&mut self, key: &ServiceKey) -> Option<Holding> {
        let holding = self.services.remove(key)?;
        for a in &holding.addrs {
            let occupancy = match a.family {
                Family::V4 => &mut self.v4,
                Family::V6 => &mut self.v6,
            };
            occupancy.remove(a.value, key);
            if let Some(k) = &holding.profile.key
                && let Some(addrs) = self.keyed.get_mut(k)
            {
                if let Some(n) = addrs.get_mut(a) {
                    *n -= 1;
                    if *n == 0 {
                        addrs.remove(a);
                    }
                }
                if addrs.is_empty() {
                    self.keyed.remove(k);
                }
            }
        }
        Some(holding)
    }

    /// Test hook: every internal index agrees with the holdings, co-holders are mutually
    /// compatible, and attribution matches the pools.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        self.v4.assert_consistent();
        self.v6.assert_consistent();
        let mut pairs = 0usize;
        let mut keyed: BTreeMap<String, BTreeMap<Addr, usize>> = BTreeMap::new();
        for (key, h) in &self.services {
            assert!(!h.addrs.is_empty(), "{key} holds nothing");
            let families: BTreeSet<Family> = h.addrs.iter().map(|a| a.family).collect();
            assert_eq!(
                families.len(),
                h.addrs.len(),
                "{key}: two addresses of one family"
            );
            assert_eq!(
                h.pool.as_deref(),
                self.pools.home(&h.addrs).map(|p| p.name.as_str()),
                "{key}: stale pool attribution"
            );
            for a in &h.addrs {
                assert!(
                    self.occupancy(a.family).holders(a.value).any(|k| k == key),
                    "{key} missing from holders of {a}"
                );
                pairs += 1;
                if let Some(k) = &h.profile.key {
                    *keyed.entry(k.clone()).or_default().entry(*a).or_default() += 1;
                }
                for other in self.occupancy(a.family).holders(a.value) {
                    if other == key {
                        continue;
                    }
                    let o = &self.services[other];
                    assert_eq!(
                        h.profile.conflict_with(&o.profile),
                        None,
                        "{key} and {other} share {a} but may not"
                    );
                }
            }
        }
        let held: usize = [&self.v4, &self.v6]
            .iter()
            .map(|o| {
                o.held_in(0, u128::MAX)
                    .map(|v| o.holders(v).count())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(held, pairs, "holders index has entries of no holding");
        assert_eq!(self.keyed, keyed, "sharing-key index out of step");
    }
}

fn allocation_of(h: &Holding) -> Allocation {
    Allocation {
        ips: h.addrs.iter().map(|a| a.ip()).collect(),
        pool: h.pool.clone(),
    }
}
