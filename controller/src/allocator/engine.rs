//! The allocator: which Service holds which addresses, and every decision about them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::address::Family;

use super::addr::Addr;
use super::allocation::Allocation;
use super::demand::Demand;
use super::error::{AllocError, Refusal};
use super::occupancy::Occupancy;
use super::pool::{Pool, PoolSet, PoolStats};
use super::service::{Request, ServiceKey};
use super::sharing::{SharingConflict, SharingProfile};

mod choice;
#[cfg(test)]
mod invariants;

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
    /// Addresses reported in use by another host; avoided in pools with
    /// `avoid_conflicting_ips`.
    conflicted: BTreeSet<Addr>,
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
            conflicted: BTreeSet::new(),
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

    /// Replaces the addresses reported in conflict. Never changes anyone's addresses: the next
    /// `ensure` of a Service holding one decides whether it moves.
    pub fn set_conflicts(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        self.conflicted = ips.into_iter().map(|ip| Addr::of(&ip)).collect();
    }

    /// Whether `pool` must not hand out `addr` automatically (reported in conflict).
    fn avoided(&self, pool: &Pool, addr: Addr) -> bool {
        pool.avoid_conflicting_ips && self.conflicted.contains(&addr)
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
        let demand = match Demand::new(req) {
            Ok(demand) => demand,
            Err(error) => {
                return Err(Refusal {
                    error,
                    kept: self.allocation(&req.key),
                });
            }
        };
        // Taken out while deciding, so the Service never conflicts with itself.
        let Some(current) = self.remove_holding(&req.key) else {
            return self.take(&demand, None);
        };
        match self.judge(&current, &demand) {
            Verdict::Keep(pool) => Ok(self.keep(&demand, current, Some(pool))),
            Verdict::KeepOrphaned => Ok(self.keep(&demand, current, None)),
            Verdict::Move => self.take(&demand, Some(current)),
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
        Some(self.pools.stats(pool, &self.v4, &self.v6, &self.conflicted))
    }

    /// Stats of every pool, by name.
    pub fn stats(&self) -> BTreeMap<String, PoolStats> {
        self.pools
            .iter()
            .map(|p| {
                let stats = self.pools.stats(p, &self.v4, &self.v6, &self.conflicted);
                (p.name.clone(), stats)
            })
            .collect()
    }

    /// Number of Services holding addresses.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    fn judge(&self, current: &Holding, demand: &Demand) -> Verdict {
        let families: BTreeSet<Family> = current.addrs.iter().map(|a| a.family).collect();
        if families.len() != current.addrs.len() || !demand.accepts(&families) {
            return Verdict::Move;
        }
        if demand.requested.iter().any(|r| !current.addrs.contains(r)) {
            return Verdict::Move;
        }
        // An address reported in conflict is left, unless the Service asked for it.
        if current.addrs.iter().any(|a| {
            !demand.requested.contains(a)
                && self.pools.pool_of(*a).is_some_and(|p| self.avoided(p, *a))
        }) {
            return Verdict::Move;
        }
        // Only this Service's own profile can have changed: co-holders were compatible with
        // the recorded one and change only in ways compatible with it.
        if current
            .addrs
            .iter()
            .any(|a| self.conflict(*a, &demand.profile).is_some())
        {
            return Verdict::Move;
        }
        match self.pools.home(&current.addrs) {
            Some(pool) if demand.may_use(pool) => Verdict::Keep(pool.name.clone()),
            Some(_) => Verdict::Move,
            None if current.pin == demand.req.pool => Verdict::KeepOrphaned,
            None => Verdict::Move,
        }
    }

    fn keep(&mut self, demand: &Demand, mut holding: Holding, pool: Option<String>) -> Allocation {
        holding.profile = demand.profile.clone();
        holding.pin = demand.req.pool.clone();
        holding.addrs.sort_by_key(|a| demand.rank(a.family));
        // A PreferDualStack Service that fell back to one family gains the other in place once
        // its pool has one free: its existing address does not change.
        if let (Some(name), Some(best)) = (&pool, demand.options.first())
            && best.len() > holding.addrs.len()
            && let Some(home) = self.pools.get(name)
        {
            let missing = best
                .iter()
                .filter(|f| !holding.addrs.iter().any(|a| a.family == **f));
            let extra: Option<Vec<Addr>> =
                missing.map(|f| self.pick(home, *f, demand, None)).collect();
            if let Some(extra) = extra {
                holding.addrs.extend(extra);
                holding.addrs.sort_by_key(|a| demand.rank(a.family));
            }
        }
        holding.pool = pool;
        self.insert_holding(demand.key().clone(), holding)
    }

    /// New addresses for the Service; on failure its previous holding is put back untouched.
    #[expect(clippy::result_large_err, reason = "see `ensure`")]
    fn take(&mut self, demand: &Demand, previous: Option<Holding>) -> Result<Allocation, Refusal> {
        match self.choose(demand, previous.as_ref()) {
            Ok(addrs) => {
                let holding = Holding {
                    pool: self.pools.home(&addrs).map(|p| p.name.clone()),
                    addrs,
                    profile: demand.profile.clone(),
                    pin: demand.req.pool.clone(),
                };
                Ok(self.insert_holding(demand.key().clone(), holding))
            }
            Err(error) => {
                let kept = previous.map(|prev| self.insert_holding(demand.key().clone(), prev));
                Err(Refusal { error, kept })
            }
        }
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

    fn occupancy_mut(&mut self, family: Family) -> &mut Occupancy {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    fn insert_holding(&mut self, key: ServiceKey, holding: Holding) -> Allocation {
        for a in &holding.addrs {
            self.occupancy_mut(a.family).add(a.value, key.clone());
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
            self.occupancy_mut(a.family).remove(a.value, key);
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
}

fn allocation_of(h: &Holding) -> Allocation {
    Allocation {
        ips: h.addrs.iter().map(|a| a.ip()).collect(),
        pool: h.pool.clone(),
    }
}
