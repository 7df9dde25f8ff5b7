//! Test hook: the allocator's internal indexes checked against its holdings.

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::address::Family;

use super::Allocator;
use crate::allocator::addr::Addr;

impl Allocator {
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
