//! Which addresses of one family are held, and by whom.
//!
//! Besides the holders of each address, the held addresses are kept as maximal runs of
//! consecutive values. The lowest free address of a range is then found by hopping over runs
//! instead of walking every held address: O(log n) per hop, one hop per run (plus one per
//! skipped .0/.255), so cost follows the number of allocations, never the size of a pool.

use std::collections::{BTreeMap, BTreeSet};

use super::service::ServiceKey;
use ferrolb_crds::address::Family;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Occupancy {
    family: Family,
    holders: BTreeMap<u128, BTreeSet<ServiceKey>>,
    /// Maximal runs of held addresses: first -> last (inclusive). Canonical: runs never touch.
    runs: BTreeMap<u128, u128>,
}

impl Occupancy {
    pub fn new(family: Family) -> Occupancy {
        Occupancy {
            family,
            holders: BTreeMap::new(),
            runs: BTreeMap::new(),
        }
    }

    pub fn holders(&self, value: u128) -> impl Iterator<Item = &ServiceKey> {
        self.holders.get(&value).into_iter().flatten()
    }

    pub fn is_held(&self, value: u128) -> bool {
        self.holders.contains_key(&value)
    }

    /// Distinct held addresses.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    pub fn add(&mut self, value: u128, key: ServiceKey) {
        let set = self.holders.entry(value).or_default();
        let was_free = set.is_empty();
        set.insert(key);
        if was_free {
            self.mark_held(value);
        }
    }

    pub fn remove(&mut self, value: u128, key: &ServiceKey) {
        let Some(set) = self.holders.get_mut(&value) else {
            return;
        };
        set.remove(key);
        if set.is_empty() {
            self.holders.remove(&value);
            self.mark_free(value);
        }
    }

    /// The lowest address of `lo..=hi` nobody holds, skipping .0/.255 when `avoid_buggy`.
    pub fn first_free(&self, lo: u128, hi: u128, avoid_buggy: bool) -> Option<u128> {
        let avoid = avoid_buggy && self.family == Family::V4;
        let mut candidate = lo;
        loop {
            if avoid {
                // .255 is followed by .0 of the next /24: skip both at once.
                candidate += match candidate & 0xff {
                    0 => 1,
                    0xff => 2,
                    _ => 0,
                };
            }
            if candidate > hi {
                return None;
            }
            match self.runs.range(..=candidate).next_back() {
                Some((_, &last)) if last >= candidate => candidate = last.checked_add(1)?,
                _ => return Some(candidate),
            }
        }
    }

    /// Held addresses in `lo..=hi`, ascending.
    #[cfg(test)]
    pub fn held_in(&self, lo: u128, hi: u128) -> impl Iterator<Item = u128> + '_ {
        self.holders.range(lo..=hi).map(|(v, _)| *v)
    }

    /// (held addresses, held addresses that are .0/.255) in `lo..=hi`, counted from runs.
    pub fn count_in(&self, lo: u128, hi: u128) -> (u128, u128) {
        // A run starting before `lo` may still reach into the range.
        let start = match self.runs.range(..lo).next_back() {
            Some((&first, &last)) if last >= lo => first,
            _ => lo,
        };
        let (mut held, mut buggy) = (0u128, 0u128);
        for (&first, &last) in self.runs.range(start..=hi) {
            let (a, b) = (first.max(lo), last.min(hi));
            held = held.saturating_add(b - a).saturating_add(1);
            if self.family == Family::V4 {
                buggy += super::addr::buggy_count(a, b);
            }
        }
        (held, buggy)
    }

    fn mark_held(&mut self, value: u128) {
        let left = value
            .checked_sub(1)
            .and_then(|below| self.runs.range(..=below).next_back())
            .filter(|(_, last)| value.checked_sub(1) == Some(**last))
            .map(|(first, _)| *first);
        let right = value
            .checked_add(1)
            .and_then(|above| self.runs.get(&above).map(|last| (above, *last)));
        match (left, right) {
            (Some(first), Some((above, last))) => {
                self.runs.remove(&above);
                self.runs.insert(first, last);
            }
            (Some(first), None) => {
                self.runs.insert(first, value);
            }
            (None, Some((above, last))) => {
                self.runs.remove(&above);
                self.runs.insert(value, last);
            }
            (None, None) => {
                self.runs.insert(value, value);
            }
        }
    }

    fn mark_free(&mut self, value: u128) {
        let Some((&first, &last)) = self.runs.range(..=value).next_back() else {
            return;
        };
        if last < value {
            return;
        }
        if first == value {
            self.runs.remove(&first);
        } else {
            self.runs.insert(first, value - 1);
        }
        if last > value {
            self.runs.insert(value + 1, last);
        }
    }

    /// Test hook: runs are exactly the maximal runs of held addresses.
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        let mut expected = BTreeMap::new();
        let mut current: Option<(u128, u128)> = None;
        for (&v, holders) in &self.holders {
            assert!(!holders.is_empty(), "empty holder set at {v}");
            current = match current {
                Some((first, last)) if last.checked_add(1) == Some(v) => Some((first, v)),
                Some((first, last)) => {
                    expected.insert(first, last);
                    Some((v, v))
                }
                None => Some((v, v)),
            };
        }
        if let Some((first, last)) = current {
            expected.insert(first, last);
        }
        assert_eq!(self.runs, expected, "runs out of step with holders");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::addr::is_buggy;
    use proptest::prelude::*;

    fn avoided(family: Family, value: u128, avoid_buggy: bool) -> bool {
        avoid_buggy && is_buggy(family, value)
    }

    fn key(n: u8) -> ServiceKey {
        ServiceKey::new("ns", format!("s{n}"))
    }

    #[test]
    fn hops_runs_and_buggy_addresses() {
        let mut occ = Occupancy::new(Family::V4);
        assert_eq!(occ.first_free(10, 20, false), Some(10));
        for v in 10..=14 {
            occ.add(v, key(1));
        }
        assert_eq!(occ.first_free(10, 20, false), Some(15));
        assert_eq!(occ.first_free(10, 14, false), None);
        occ.remove(12, &key(1));
        assert_eq!(occ.first_free(10, 20, false), Some(12));
        occ.assert_consistent();
        // 254 held, 255 and 256 (.255, .0) avoided: next is 257.
        occ.add(254, key(2));
        assert_eq!(occ.first_free(254, 300, true), Some(257));
        assert_eq!(occ.first_free(254, 300, false), Some(255));
        assert_eq!(occ.first_free(255, 256, true), None);
    }

    #[test]
    fn shared_address_freed_by_last_holder_only() {
        let mut occ = Occupancy::new(Family::V6);
        occ.add(5, key(1));
        occ.add(5, key(2));
        occ.remove(5, &key(1));
        assert!(occ.is_held(5));
        assert_eq!(occ.holders(5).collect::<Vec<_>>(), vec![&key(2)]);
        occ.remove(5, &key(2));
        assert!(!occ.is_held(5));
        assert_eq!(occ.len(), 0);
        occ.assert_consistent();
    }

    #[test]
    fn top_of_address_space_does_not_overflow() {
        let mut occ = Occupancy::new(Family::V6);
        occ.add(u128::MAX, key(1));
        occ.add(u128::MAX - 1, key(1));
        assert_eq!(occ.first_free(u128::MAX - 1, u128::MAX, false), None);
        assert_eq!(
            occ.first_free(u128::MAX - 2, u128::MAX, false),
            Some(u128::MAX - 2)
        );
        assert_eq!(occ.count_in(0, u128::MAX), (2, 0));
        occ.remove(u128::MAX, &key(1));
        occ.assert_consistent();
        occ.add(0, key(1));
        occ.assert_consistent();
    }

    #[test]
    fn counts_follow_runs() {
        let mut occ = Occupancy::new(Family::V4);
        for v in [0, 1, 2, 255, 256, 300] {
            occ.add(v, key(1));
        }
        assert_eq!(occ.count_in(0, 1000), (6, 3));
        assert_eq!(occ.count_in(1, 255), (3, 1));
        assert_eq!(occ.count_in(257, 299), (0, 0));
        assert_eq!(occ.held_in(2, 256).collect::<Vec<_>>(), vec![2, 255, 256]);
    }

    proptest! {
        /// Against a plain set: runs stay canonical and first_free is the brute-force answer.
        #[test]
        fn matches_brute_force(
            ops in proptest::collection::vec((any::<bool>(), 0u128..600, 0u8..3), 1..200),
            lo in 0u128..600, len in 0u128..600, avoid in any::<bool>(),
        ) {
            let mut occ = Occupancy::new(Family::V4);
            let mut model: BTreeMap<u128, BTreeSet<u8>> = BTreeMap::new();
            for (add, v, k) in ops {
                if add {
                    occ.add(v, key(k));
                    model.entry(v).or_default().insert(k);
                } else {
                    occ.remove(v, &key(k));
                    if let Some(s) = model.get_mut(&v) {
                        s.remove(&k);
                        if s.is_empty() { model.remove(&v); }
                    }
                }
                occ.assert_consistent();
            }
            let hi = lo + len;
            let brute = (lo..=hi).find(|v| !model.contains_key(v) && !avoided(Family::V4, *v, avoid));
            prop_assert_eq!(occ.first_free(lo, hi, avoid), brute);
            let held = model.range(lo..=hi).count() as u128;
            let buggy = model.range(lo..=hi).filter(|(v, _)| is_buggy(Family::V4, **v)).count() as u128;
            prop_assert_eq!(occ.count_in(lo, hi), (held, buggy));
            prop_assert_eq!(occ.len(), model.len());
        }
    }
}
