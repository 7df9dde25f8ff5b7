//! Choosing addresses: which pools a Service may use, in what order, which address of each
//! family it takes, and the most useful error when none will do.

use ferrolb_crds::address::Family;

use super::{Allocator, Holding, Miss};
use crate::allocator::addr::{Addr, is_buggy};
use crate::allocator::demand::Demand;
use crate::allocator::error::{AllocError, Ineligibility, Shortage};
use crate::allocator::pool::Pool;

impl Allocator {
    pub(super) fn choose(
        &self,
        demand: &Demand,
        previous: Option<&Holding>,
    ) -> Result<Vec<Addr>, AllocError> {
        if let Some(first) = demand.requested.first() {
            return self.choose_requested(demand, *first, previous);
        }
        let candidates = self.candidates(demand, previous)?;
        // Every option in every pool before settling for less: PreferDualStack takes a
        // dual-stack pool anywhere over one family from a better-ranked pool.
        for option in &demand.options {
            for pool in &candidates {
                if let Ok(addrs) = self.fill(pool, option, demand, previous) {
                    return Ok(addrs);
                }
            }
        }
        Err(self.explain(demand, &candidates, previous))
    }

    /// Pools to try, best first.
    pub(super) fn candidates(
        &self,
        demand: &Demand,
        previous: Option<&Holding>,
    ) -> Result<Vec<&Pool>, AllocError> {
        if let Some(name) = &demand.req.pool {
            let pool = self.pinned(demand, name)?;
            return Ok(vec![pool]);
        }
        let mut pools: Vec<&Pool> = self
            .pools
            .iter()
            .filter(|p| p.auto_assign && demand.selected_by(p))
            .collect();
        // Stable sorts over name order: ties break by name.
        pools.sort_by_key(|p| p.rank());
        // A moving Service tries its current pool first (it may keep one of its addresses),
        // then pools where Services with its sharing key hold an address it may join.
        let current = previous.and_then(|h| h.pool.as_deref());
        pools.sort_by_cached_key(|p| {
            if current == Some(p.name.as_str()) {
                0
            } else if self.can_join(p, demand) {
                1
            } else {
                2
            }
        });
        Ok(pools)
    }

    pub(super) fn pinned<'a>(
        &'a self,
        demand: &Demand,
        name: &str,
    ) -> Result<&'a Pool, AllocError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| AllocError::PinnedPoolUnknown { pool: name.into() })?;
        if !demand.selected_by(pool) {
            return Err(AllocError::PinnedPoolNotForService { pool: name.into() });
        }
        Ok(pool)
    }

    /// All addresses from the pool of the requested ones, which must be one eligible pool.
    pub(super) fn choose_requested(
        &self,
        demand: &Demand,
        first: Addr,
        previous: Option<&Holding>,
    ) -> Result<Vec<Addr>, AllocError> {
        if let Some(name) = &demand.req.pool {
            self.pinned(demand, name)?;
        }
        let pool = self.requested_pool(demand, first, previous)?;
        for &addr in demand.requested.iter().skip(1) {
            let other = self.requested_pool(demand, addr, previous)?;
            if other.name != pool.name {
                return Err(AllocError::RequestedIpsInDifferentPools {
                    first: first.ip(),
                    first_pool: pool.name.clone(),
                    second: addr.ip(),
                    second_pool: other.name.clone(),
                });
            }
        }
        for &addr in &demand.requested {
            if let Some((holder, conflict)) = self.conflict(addr, &demand.profile) {
                return Err(AllocError::IpInUse {
                    ip: addr.ip(),
                    holder,
                    conflict,
                });
            }
        }
        let mut miss = Miss::Exhausted(first.family);
        for option in &demand.options {
            match self.fill(pool, option, demand, previous) {
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
    pub(super) fn requested_pool(
        &self,
        demand: &Demand,
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
        if let Some(pinned) = &demand.req.pool
            && *pinned != pool.name
        {
            return Err(not_eligible(Ineligibility::PinnedElsewhere {
                pinned: pinned.clone(),
            }));
        }
        if !demand.selected_by(pool) {
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
    pub(super) fn fill(
        &self,
        pool: &Pool,
        option: &[Family],
        demand: &Demand,
        previous: Option<&Holding>,
    ) -> Result<Vec<Addr>, Miss> {
        option
            .iter()
            .map(|&family| {
                if let Some(requested) = demand.requested(family) {
                    return Ok(requested);
                }
                if !pool.has_family(family) {
                    return Err(Miss::NoFamily(family));
                }
                self.pick(pool, family, demand, previous)
                    .ok_or(Miss::Exhausted(family))
            })
            .collect()
    }

    /// The address of `family` the Service should take from `pool`, if any.
    pub(super) fn pick(
        &self,
        pool: &Pool,
        family: Family,
        demand: &Demand,
        previous: Option<&Holding>,
    ) -> Option<Addr> {
        // A moving Service keeps what it can: a move changes only what it must.
        if let Some(own) = previous.and_then(|h| h.addrs.iter().find(|a| a.family == family))
            && pool.contains(*own)
            && !self.avoided(pool, *own)
            && self.conflict(*own, &demand.profile).is_none()
        {
            return Some(*own);
        }
        // With a sharing key, join the lowest address Services with that key hold, if allowed.
        if let Some(shared) = demand.profile.key.as_ref().and_then(|k| self.keyed.get(k)) {
            for range in pool.ranges_of(family) {
                let (lo, hi) = range.bounds();
                let found = shared
                    .range(Addr { family, value: lo }..=Addr { family, value: hi })
                    .map(|(a, _)| *a)
                    .find(|a| {
                        !self.avoided(pool, *a) && self.conflict(*a, &demand.profile).is_none()
                    });
                if found.is_some() {
                    return found;
                }
            }
        }
        let occupancy = self.occupancy(family);
        pool.ranges_of(family).find_map(|range| {
            let (mut from, hi) = range.bounds();
            // Conflicts are few (capped per pool), so stepping over them is cheap.
            loop {
                let v = occupancy.first_free(from, hi, pool.avoid_buggy_ips)?;
                let a = Addr::new(family, v);
                if !self.avoided(pool, a) {
                    return Some(a);
                }
                from = v.checked_add(1)?;
            }
        })
    }

    pub(super) fn can_join(&self, pool: &Pool, demand: &Demand) -> bool {
        let Some(shared) = demand.profile.key.as_ref().and_then(|k| self.keyed.get(k)) else {
            return false;
        };
        shared.keys().any(|a| {
            demand.options[0].contains(&a.family)
                && pool.contains(*a)
                && !self.avoided(pool, *a)
                && self.conflict(*a, &demand.profile).is_none()
        })
    }

    /// The most useful error once every candidate failed.
    pub(super) fn explain(
        &self,
        demand: &Demand,
        candidates: &[&Pool],
        previous: Option<&Holding>,
    ) -> AllocError {
        // Report against the least demanding option (PreferDualStack: the primary alone).
        let least: &[Family] = demand.options.last().map(Vec::as_slice).unwrap_or_default();
        let able: Vec<&Pool> = candidates
            .iter()
            .copied()
            .filter(|p| least.iter().all(|f| p.has_family(*f)))
            .collect();
        if able.is_empty() {
            if let (Some(_), Some(pool)) = (&demand.req.pool, candidates.first())
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
                    .filter(|f| self.pick(pool, **f, demand, previous).is_none())
                    .map(|f| Shortage {
                        pool: pool.name.clone(),
                        family: *f,
                    })
            })
            .collect();
        AllocError::Exhausted { shortages }
    }
}
