//! Turns a Service and the allocator's answer into what the Service should show: addresses,
//! pool annotation, and a condition whose reason and message explain the outcome (pure).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_crds::address::Family;
use ferrolb_crds::annotations;
use ferrolb_crds::service::AddressConflict;
use ferrolb_crds::validate::ValidPool;
use k8s_openapi::api::core::v1::Service;

use crate::allocator::{
    AllocError, Allocation, Allocator, Pool, PoolAllocationRule, PoolStats, Request, ServiceKey,
};
use crate::intent;

/// What a Service is judged with, besides the allocator's state.
pub struct Context<'a> {
    pub service: &'a Service,
    pub matching_pools: BTreeSet<String>,
    /// Conflicts remembered for addresses the Service held (`avoidConflictingIPs`): its
    /// message says it moved off them, or kept one it requested.
    pub conflicts: Vec<AddressConflict>,
}

/// What a Service should show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub ips: Vec<IpAddr>,
    pub pool: Option<String>,
    /// Whether the request is met (condition status).
    pub ok: bool,
    /// Condition reason (and event reason).
    pub reason: &'static str,
    pub message: String,
}

/// Condition reason for each refusal, so `kubectl get events` can be filtered by cause.
fn reason_of(e: &AllocError) -> &'static str {
    match e {
        AllocError::Exhausted { .. } => "PoolExhausted",
        AllocError::RequestedIpOutsidePools { .. } => "RequestedIPOutsidePools",
        AllocError::IpInUse { .. } => "IPInUse",
        AllocError::NoPoolForFamily { .. }
        | AllocError::NoDualStackPool
        | AllocError::PoolLacksFamily { .. } => "NoPoolForFamily",
        AllocError::PinnedPoolUnknown { .. } | AllocError::PinnedPoolNotForService { .. } => {
            "PoolNotUsable"
        }
        _ => "InvalidRequest",
    }
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The allocator, fed from validated pools and Services.
pub struct Decider {
    alloc: Allocator,
}

/// Allocator pools from validated `IPAddressPool`s.
fn pools(valid: &[ValidPool]) -> Vec<Pool> {
    valid
        .iter()
        .map(|p| Pool {
            name: p.name.clone(),
            ranges: p.ranges.clone(),
            auto_assign: p.spec.auto_assign,
            avoid_buggy_ips: p.spec.avoid_buggy_ips,
            avoid_conflicting_ips: p.spec.avoid_conflicting_ips,
            allocation: p
                .spec
                .service_allocation
                .as_ref()
                .map(|sa| PoolAllocationRule {
                    priority: sa.priority,
                }),
        })
        .collect()
}

fn key_of(key: &str) -> ServiceKey {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    ServiceKey::new(ns, name)
}

impl Decider {
    pub fn new(valid: &[ValidPool]) -> Decider {
        let mut alloc = Allocator::default();
        alloc.set_pools(pools(valid));
        Decider { alloc }
    }

    /// Replaces the pools. Never renumbers: Services keep addresses still inside an eligible pool.
    pub fn set_pools(&mut self, valid: &[ValidPool]) {
        self.alloc.set_pools(pools(valid));
    }

    /// Claims the addresses a Service shows, before any new allocation.
    pub fn restore(
        &mut self,
        _key: &str,
        ips: &[IpAddr],
        ctx: Context<'_>,
    ) -> Result<(), AllocError> {
        // A Service whose annotations are wrong still owns what it shows: restore with the
        // families of its addresses so nobody else can take them.
        let req = intent::request(ctx.service, ctx.matching_pools).unwrap_or_else(|_| {
            let mut r = Request::new(
                intent::service_key(ctx.service),
                ips.first().map(Family::of).unwrap_or(Family::V4),
            );
            r.families = ips.iter().map(Family::of).collect();
            r
        });
        self.alloc.restore(&req, ips).map(|_| ())
    }

    /// Decides a Service's addresses and how to explain them.
    pub fn decide(&mut self, key: &str, ctx: Context<'_>) -> Decision {
        let req = match intent::request(ctx.service, ctx.matching_pools) {
            Ok(r) => r,
            Err(e) => {
                // Keep whatever it holds; say what to fix.
                let kept = self.alloc.allocation(&key_of(key));
                return refused(kept, "InvalidRequest", e.to_string());
            }
        };
        let decision = match self.alloc.ensure(&req) {
            Ok(a) => granted(a, ctx.service),
            Err(r) => refused(r.kept, reason_of(&r.error), r.error.to_string()),
        };
        explain_conflicts(decision, &ctx.conflicts, &req.requested_ips)
    }

    /// Replaces the addresses reported in conflict (avoided by pools with `avoidConflictingIPs`).
    pub fn set_conflicts(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        self.alloc.set_conflicts(ips);
    }

    /// The addresses a Service holds.
    pub fn ips_of(&self, key: &str) -> Vec<IpAddr> {
        self.alloc
            .allocation(&key_of(key))
            .map(|a| a.ips)
            .unwrap_or_default()
    }

    /// The pool of `ip`, if it avoids conflicting addresses.
    pub fn pool_avoiding_conflicts(&self, ip: &IpAddr) -> Option<String> {
        self.alloc
            .pool_of(ip)
            .filter(|p| p.avoid_conflicting_ips)
            .map(|p| p.name.clone())
    }

    /// Keys (`namespace/name`) of the Services holding `ip`.
    pub fn holders(&self, ip: &IpAddr) -> Vec<String> {
        self.alloc.holders(ip).map(ToString::to_string).collect()
    }

    /// Frees a Service's addresses; true if it held any.
    pub fn release(&mut self, key: &str) -> bool {
        self.alloc.release(&key_of(key)).is_some()
    }

    /// Keys (`namespace/name`) of every Service holding addresses.
    pub fn keys(&self) -> Vec<String> {
        self.alloc.services().map(|(k, _)| k.to_string()).collect()
    }

    /// Number of Services holding addresses.
    pub fn len(&self) -> usize {
        self.alloc.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alloc.is_empty()
    }

    pub fn stats(&self, pool: &str) -> PoolStats {
        self.alloc.pool_stats(pool).unwrap_or_default()
    }
}

fn granted(a: Allocation, svc: &Service) -> Decision {
    match &a.pool {
        Some(pool) => Decision {
            message: format!("allocated {} from pool {pool}", list(&a.ips)),
            ips: a.ips,
            pool: a.pool,
            ok: true,
            reason: "IPAllocated",
        },
        None => {
            let was = svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotations::IP_ALLOCATED_FROM_POOL))
                .map(|p| format!(" (was pool {p})"))
                .unwrap_or_default();
            Decision {
                message: format!(
                    "{} is no longer inside any IPAddressPool{was}; FerroLB keeps it rather than renumber the Service. \
                     Put the address back into a pool, or request another address ({}) or pool ({}) to move it",
                    list(&a.ips),
                    annotations::LOAD_BALANCER_IPS,
                    annotations::ADDRESS_POOL
                ),
                ips: a.ips,
                pool: None,
                ok: true,
                reason: "IPOutsidePools",
            }
        }
    }
}

/// Adds to the message what the conflicts remembered for the Service did: it moved off an
/// address, or kept one it requested (an operator then sees why it is unreachable).
fn explain_conflicts(
    mut d: Decision,
    conflicts: &[AddressConflict],
    requested: &[IpAddr],
) -> Decision {
    for c in conflicts {
        let note = if !d.ips.contains(&c.address) {
            format!("moved because {}", c.describe())
        } else if requested.contains(&c.address) {
            format!("kept as requested although {}", c.describe())
        } else {
            // Still held: the refusal before says why it could not move.
            c.describe()
        };
        d.message = format!("{}; {note}", d.message);
    }
    d
}

fn refused(kept: Option<Allocation>, reason: &'static str, error: String) -> Decision {
    match kept {
        Some(a) => Decision {
            message: format!("{error}; keeping {}", list(&a.ips)),
            ips: a.ips,
            pool: a.pool,
            ok: false,
            reason,
        },
        None => Decision {
            ips: vec![],
            pool: None,
            ok: false,
            reason,
            message: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::IPAddressPoolSpec;
    use std::collections::BTreeMap;

    fn pool(name: &str, cidr: &str) -> ValidPool {
        ValidPool {
            name: name.into(),
            ranges: vec![cidr.parse().unwrap()],
            labels: BTreeMap::new(),
            spec: IPAddressPoolSpec {
                addresses: vec![],
                auto_assign: true,
                avoid_buggy_ips: false,
                avoid_conflicting_ips: false,
                service_allocation: None,
            },
        }
    }

    fn svc(name: &str, ann: &[(&str, &str)]) -> Service {
        crate::fixtures::service(name, ann, |_| {})
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ctx(s: &Service) -> Context<'_> {
        Context {
            service: s,
            matching_pools: BTreeSet::new(),
            conflicts: vec![],
        }
    }

    #[test]
    fn explains_allocation_exhaustion_and_orphans() {
        let mut d = Decider::new(&[pool("p", "198.18.10.0/31")]);
        let (a, b, c) = (svc("a", &[]), svc("b", &[]), svc("c", &[]));
        let da = d.decide("ns/a", ctx(&a));
        assert!(da.ok);
        assert_eq!(da.reason, "IPAllocated");
        assert_eq!(da.message, "allocated 198.18.10.0 from pool p");
        assert!(d.decide("ns/b", ctx(&b)).ok);
        let dc = d.decide("ns/c", ctx(&c));
        assert!(!dc.ok && dc.ips.is_empty());
        assert_eq!(dc.reason, "PoolExhausted");
        assert!(dc.message.contains("pool 'p'"), "{}", dc.message);

        // The pool moves away: a keeps its address and is told why.
        d.set_pools(&[pool("q", "198.18.11.0/24")]);
        let da = d.decide("ns/a", ctx(&a));
        assert_eq!(da.ips, ["198.18.10.0".parse::<IpAddr>().unwrap()]);
        assert_eq!(da.reason, "IPOutsidePools");
        assert!(da.pool.is_none());
    }

    #[test]
    fn messages_say_a_service_moved_off_a_conflict_or_kept_what_it_asked_for() {
        let mut avoiding = pool("p", "198.18.10.0/24");
        avoiding.spec.avoid_conflicting_ips = true;
        let mut d = Decider::new(&[avoiding]);
        let (a, w) = (
            svc("a", &[]),
            svc("w", &[("ferrolb.io/loadBalancerIPs", "198.18.10.7")]),
        );
        assert_eq!(d.decide("ns/a", ctx(&a)).ips, [ip("198.18.10.0")]);
        assert!(d.decide("ns/w", ctx(&w)).ok);
        let conflict = |addr: &str| AddressConflict {
            address: ip(addr),
            mac: "02:00:c6:12:00:09".into(),
            node: "flb-node1".into(),
            interface: "eth0".into(),
        };
        d.set_conflicts([ip("198.18.10.0"), ip("198.18.10.7")]);
        assert_eq!(
            d.pool_avoiding_conflicts(&ip("198.18.10.0")).as_deref(),
            Some("p")
        );
        let mut c = ctx(&a);
        c.conflicts = vec![conflict("198.18.10.0")];
        let da = d.decide("ns/a", c);
        assert!(da.ok);
        assert_eq!(da.reason, "IPAllocated");
        assert_eq!(
            da.message,
            "allocated 198.18.10.1 from pool p; moved because 198.18.10.0 is in use by another \
             host (MAC 02:00:c6:12:00:09) seen by node flb-node1 on eth0"
        );
        let mut c = ctx(&w);
        c.conflicts = vec![conflict("198.18.10.7")];
        let dw = d.decide("ns/w", c);
        assert_eq!(dw.ips, [ip("198.18.10.7")]);
        assert!(
            dw.message.ends_with(
                "; kept as requested although 198.18.10.7 is in use by another host \
                 (MAC 02:00:c6:12:00:09) seen by node flb-node1 on eth0"
            ),
            "{}",
            dw.message
        );
    }

    #[test]
    fn bad_annotations_keep_addresses() {
        let mut d = Decider::new(&[pool("p", "198.18.10.0/24")]);
        let ok = svc("a", &[]);
        let first = d.decide("ns/a", ctx(&ok));
        let bad = svc("a", &[("ferrolb.io/loadBalancerIPs", "nonsense")]);
        let second = d.decide("ns/a", ctx(&bad));
        assert!(!second.ok);
        assert_eq!(second.reason, "InvalidRequest");
        assert_eq!(second.ips, first.ips);
        assert!(
            second.message.contains("keeping 198.18.10.0"),
            "{}",
            second.message
        );
    }
}
