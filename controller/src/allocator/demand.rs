//! A request checked and reduced to what allocation decisions need.

use std::collections::BTreeSet;

use ferrolb_crds::address::Family;

use super::addr::{Addr, other};
use super::error::AllocError;
use super::pool::Pool;
use super::service::{FamilyPolicy, Request, ServiceKey};
use super::sharing::SharingProfile;

#[derive(Debug)]
pub(crate) struct Demand<'r> {
    pub req: &'r Request,
    /// Family sets the Service accepts, most wanted first, each primary first. PreferDualStack
    /// yields two: both families, then the primary alone.
    pub options: Vec<Vec<Family>>,
    /// Requested addresses, at most one per family.
    pub requested: Vec<Addr>,
    pub profile: SharingProfile,
}

impl<'r> Demand<'r> {
    pub fn new(req: &'r Request) -> Result<Demand<'r>, AllocError> {
        let families = &req.families;
        let invalid = || AllocError::InvalidFamilies {
            families: families.clone(),
        };
        let primary = *families.first().ok_or_else(invalid)?;
        if families.len() > 2 || families.get(1) == Some(&primary) {
            return Err(invalid());
        }
        let second = families.get(1).copied();
        let mut options = match req.policy {
            FamilyPolicy::SingleStack => vec![vec![primary]],
            // Kubernetes fills in both families for RequireDualStack; if a caller did not,
            // the second can only be the other one.
            FamilyPolicy::RequireDualStack => {
                vec![vec![primary, second.unwrap_or(other(primary))]]
            }
            FamilyPolicy::PreferDualStack => match second {
                Some(s) => vec![vec![primary, s], vec![primary]],
                None => vec![vec![primary]],
            },
        };

        if req.requested_ips.len() > 2 {
            return Err(AllocError::TooManyRequestedIps {
                count: req.requested_ips.len(),
            });
        }
        let accepted: Vec<Family> = options[0].clone();
        let mut requested: Vec<Addr> = Vec::new();
        for ip in &req.requested_ips {
            let addr = Addr::of(ip);
            if !accepted.contains(&addr.family) {
                return Err(AllocError::RequestedFamilyNotInService {
                    ip: *ip,
                    families: accepted,
                });
            }
            if let Some(first) = requested.iter().find(|a| a.family == addr.family) {
                return Err(AllocError::DuplicateRequestedFamily {
                    family: addr.family,
                    first: first.ip(),
                    second: *ip,
                });
            }
            requested.push(addr);
        }
        requested.sort_by_key(|a| accepted.iter().position(|f| *f == a.family));
        // A requested address of the second family makes it mandatory.
        options.retain(|o| requested.iter().all(|a| o.contains(&a.family)));

        Ok(Demand {
            req,
            options,
            requested,
            profile: SharingProfile::of(req),
        })
    }

    pub fn key(&self) -> &ServiceKey {
        &self.req.key
    }

    pub fn requested(&self, family: Family) -> Option<Addr> {
        self.requested.iter().copied().find(|a| a.family == family)
    }

    /// The pool's `serviceAllocation`, if any, selects the Service.
    pub fn selected_by(&self, pool: &Pool) -> bool {
        pool.allocation.is_none() || self.req.matching_pools.contains(&pool.name)
    }

    /// The Service may hold addresses of `pool` (autoAssign aside: it only governs automatic
    /// choice of a new pool).
    pub fn may_use(&self, pool: &Pool) -> bool {
        self.req.pool.as_ref().is_none_or(|p| *p == pool.name) && self.selected_by(pool)
    }

    /// Whether holding exactly these families satisfies the Service.
    pub fn accepts(&self, families: &BTreeSet<Family>) -> bool {
        self.options
            .iter()
            .any(|o| o.iter().copied().collect::<BTreeSet<_>>() == *families)
    }

    /// Position of a family in the Service's family order, for ordering its addresses.
    pub fn rank(&self, family: Family) -> usize {
        self.options[0]
            .iter()
            .position(|f| *f == family)
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Family::{V4, V6};
    use std::net::IpAddr;

    fn req(families: &[Family], policy: FamilyPolicy, ips: &[&str]) -> Request {
        let mut r = Request::new(ServiceKey::new("ns", "s"), V4);
        r.families = families.to_vec();
        r.policy = policy;
        r.requested_ips = ips.iter().map(|s| s.parse::<IpAddr>().unwrap()).collect();
        r
    }

    #[test]
    fn options_per_policy() {
        use FamilyPolicy::*;
        let r = req(&[V6, V4], SingleStack, &[]);
        assert_eq!(Demand::new(&r).unwrap().options, vec![vec![V6]]);
        let r = req(&[V6, V4], PreferDualStack, &[]);
        assert_eq!(
            Demand::new(&r).unwrap().options,
            vec![vec![V6, V4], vec![V6]]
        );
        let r = req(&[V4], PreferDualStack, &[]);
        assert_eq!(Demand::new(&r).unwrap().options, vec![vec![V4]]);
        let r = req(&[V4], RequireDualStack, &[]);
        assert_eq!(Demand::new(&r).unwrap().options, vec![vec![V4, V6]]);
        // Requesting the second family's address makes dual-stack mandatory.
        let r = req(&[V4, V6], PreferDualStack, &["fd00::1"]);
        assert_eq!(Demand::new(&r).unwrap().options, vec![vec![V4, V6]]);
        let r = req(&[V4, V6], PreferDualStack, &["10.0.0.1"]);
        assert_eq!(Demand::new(&r).unwrap().options.len(), 2);
    }

    #[test]
    fn invalid_requests() {
        use FamilyPolicy::*;
        let e = |r: Request| Demand::new(&r).unwrap_err();
        assert!(matches!(
            e(req(&[], SingleStack, &[])),
            AllocError::InvalidFamilies { .. }
        ));
        assert!(matches!(
            e(req(&[V4, V4], PreferDualStack, &[])),
            AllocError::InvalidFamilies { .. }
        ));
        assert!(matches!(
            e(req(
                &[V4, V6],
                RequireDualStack,
                &["10.0.0.1", "fd00::1", "10.0.0.2"]
            )),
            AllocError::TooManyRequestedIps { count: 3 }
        ));
        assert!(matches!(
            e(req(&[V4, V6], RequireDualStack, &["10.0.0.1", "10.0.0.2"])),
            AllocError::DuplicateRequestedFamily { family: V4, .. }
        ));
        assert!(matches!(
            e(req(&[V4], SingleStack, &["fd00::1"])),
            AllocError::RequestedFamilyNotInService { .. }
        ));
        assert!(matches!(
            e(req(&[V4, V6], SingleStack, &["fd00::1"])),
            AllocError::RequestedFamilyNotInService { .. }
        ));
        let ok = req(&[V6, V4], RequireDualStack, &["10.0.0.1", "fd00::1"]);
        let demand = Demand::new(&ok).unwrap();
        assert_eq!(
            demand.requested[0].family, V6,
            "requested addresses follow family order"
        );
    }
}
