//! Addresses reported in use by another host, remembered per pool (`avoidConflictingIPs`) (pure).
//!
//! A speaker reports a conflict on a Service's `L2Announced` condition; the controller keeps
//! it here and in the pool's `status.conflicts`, so the memory outlives the Service moving off
//! the address (its report then goes away) and a controller restart (read back on taking the
//! lead). A report is untrusted input from a node: it counts only for an address the reporting
//! Service holds, in a pool that opted in; each pool remembers at most [`MAX_PER_POOL`]
//! addresses, and every entry is forgotten [`FORGET_AFTER`] after it was last reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::pool::PoolConflict;
use ferrolb_crds::service::AddressConflict;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// How long a conflict is remembered after it was last reported. Then the address may be handed
/// out again: a host still using it is found by the speaker's probe and reported again.
pub(crate) const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// `lastSeen` moves at most this often (each move is a pool status write).
const REFRESH: SignedDuration = SignedDuration::from_mins(1);
/// Most addresses one pool avoids: all a lying node can take out of a pool.
pub(crate) const MAX_PER_POOL: usize = 16;
/// Most Services named per entry.
const MAX_SERVICES: usize = 8;
/// Longest MAC, node or interface text kept from a report (the status stays small).
const MAX_TEXT: usize = 64;

/// What a report did to the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A new address in conflict.
    New,
    /// Known; `lastSeen` or the Services named changed.
    Refreshed,
    /// Known, nothing to write.
    Known,
    /// The pool remembers [`MAX_PER_POOL`] addresses already: not recorded.
    Full,
}

/// The conflicts of the pools with `avoidConflictingIPs`, by pool and address.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Conflicts {
    pools: BTreeMap<String, BTreeMap<IpAddr, PoolConflict>>,
}

impl Conflicts {
    /// Reads back what a pool's status shows. Entries whose address does not parse are dropped;
    /// at most [`MAX_PER_POOL`] are kept (the status is written by us, but may be edited).
    pub fn seed(&mut self, pool: &str, shown: &[PoolConflict]) {
        let entries = self.pools.entry(pool.to_string()).or_default();
        for c in shown {
            if entries.len() >= MAX_PER_POOL {
                break;
            }
            if let Ok(ip) = c.address.parse::<IpAddr>() {
                let mut c = c.clone();
                c.address = ip.to_string();
                c.mac = bounded(&c.mac);
                c.node = bounded(&c.node);
                c.interface = bounded(&c.interface);
                c.services.truncate(MAX_SERVICES);
                entries.insert(ip, c);
            }
        }
    }

    /// Forgets the pools not in `avoiding` (option turned off, which is how an operator clears
    /// a pool's list, or pool deleted). True if anything was forgotten.
    pub fn retain_pools(&mut self, avoiding: &BTreeSet<String>) -> bool {
        let before = self.len();
        self.pools.retain(|name, _| avoiding.contains(name));
        self.len() != before
    }

    /// A conflict reported by a Service holding the address (the caller checks), in `pool`.
    /// `holders` are the Services holding it now.
    pub fn report(
        &mut self,
        pool: &str,
        c: &AddressConflict,
        holders: &[String],
        now: Timestamp,
    ) -> Seen {
        let now = whole_second(now);
        let entries = self.pools.entry(pool.to_string()).or_default();
        if let Some(e) = entries.get_mut(&c.address) {
            let mut seen = Seen::Known;
            if now.duration_since(e.last_seen.0) >= REFRESH {
                e.last_seen = Time(now);
                seen = Seen::Refreshed;
            }
            for h in holders {
                if e.services.len() < MAX_SERVICES && !e.services.contains(h) {
                    e.services.push(h.clone());
                    seen = Seen::Refreshed;
                }
            }
            return seen;
        }
        if entries.len() >= MAX_PER_POOL {
            return Seen::Full;
        }
        entries.insert(
            c.address,
            PoolConflict {
                address: c.address.to_string(),
                mac: bounded(&c.mac),
                node: bounded(&c.node),
                interface: bounded(&c.interface),
                services: holders.iter().take(MAX_SERVICES).cloned().collect(),
                first_seen: Time(now),
                last_seen: Time(now),
            },
        );
        Seen::New
    }

    /// Forgets entries last reported [`FORGET_AFTER`] ago or more; true if any.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        let before = self.len();
        for entries in self.pools.values_mut() {
            entries.retain(|_, e| now.duration_since(e.last_seen.0) < FORGET_AFTER);
        }
        self.len() != before
    }

    /// Every address remembered, for the allocator.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.pools.values().flat_map(|e| e.keys().copied())
    }

    /// A pool's entries, by address: its `status.conflicts`.
    pub fn of_pool(&self, pool: &str) -> Vec<PoolConflict> {
        self.pools
            .get(pool)
            .map(|e| e.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The conflicts of addresses `service` (`namespace/name`) held when they were reported:
    /// what its `IPAllocated` message explains.
    pub fn of_service(&self, service: &str) -> Vec<AddressConflict> {
        self.pools
            .values()
            .flat_map(|e| e.iter())
            .filter(|(_, e)| e.services.iter().any(|s| s == service))
            .map(|(ip, e)| AddressConflict {
                address: *ip,
                mac: e.mac.clone(),
                node: e.node.clone(),
                interface: e.interface.clone(),
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.pools.values().map(BTreeMap::len).sum()
    }
}

/// Status times have whole seconds: remembering the same avoids a rewrite per comparison.
fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

#[cfg(test)]
mod tests;
