//! Why a Service got no (new) addresses. Every message says what to change.

use std::fmt;
use std::net::IpAddr;

use ferrolb_crds::address::Family;
use ferrolb_crds::annotations::{ADDRESS_POOL, LOAD_BALANCER_IPS};

use super::allocation::Allocation;
use super::service::ServiceKey;
use super::sharing::SharingConflict;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("spec.ipFamilies must list one or two distinct families, got [{}]", join(.families))]
    InvalidFamilies { families: Vec<Family> },

    #[error("{count} addresses requested: request at most two, one per family")]
    TooManyRequestedIps { count: usize },

    #[error(
        "two {family} addresses requested ({first} and {second}): request at most one per family"
    )]
    DuplicateRequestedFamily {
        family: Family,
        first: IpAddr,
        second: IpAddr,
    },

    #[error(
        "requested address {ip} is {}, but the Service's families are [{}]: request an address of its families or change spec.ipFamilies/ipFamilyPolicy",
        Family::of(.ip),
        join(.families)
    )]
    RequestedFamilyNotInService { ip: IpAddr, families: Vec<Family> },

    #[error(
        "pool '{pool}' named by {ADDRESS_POOL} does not exist (or is invalid): name an existing pool"
    )]
    PinnedPoolUnknown { pool: String },

    #[error(
        "pool '{pool}' named by {ADDRESS_POOL} has a serviceAllocation that does not select this Service: name another pool or extend the pool's serviceAllocation"
    )]
    PinnedPoolNotForService { pool: String },

    #[error(
        "requested address {ip} is in no IPAddressPool: add it to a pool or request an address of an existing pool ({LOAD_BALANCER_IPS})"
    )]
    RequestedIpOutsidePools { ip: IpAddr },

    #[error("requested address {ip} is in pool '{pool}', which this Service may not use: {why}")]
    RequestedIpNotEligible {
        ip: IpAddr,
        pool: String,
        why: Ineligibility,
    },

    #[error(
        "requested addresses {first} (pool '{first_pool}') and {second} (pool '{second_pool}') are in different pools: all of a Service's addresses come from one pool"
    )]
    RequestedIpsInDifferentPools {
        first: IpAddr,
        first_pool: String,
        second: IpAddr,
        second_pool: String,
    },

    #[error(
        "requested address {ip} ends in .0 or .255 and pool '{pool}' sets avoidBuggyIPs: request another address"
    )]
    RequestedIpAvoided { ip: IpAddr, pool: String },

    #[error("address {ip} is in use by {holder} and cannot be shared: {conflict}")]
    IpInUse {
        ip: IpAddr,
        holder: ServiceKey,
        conflict: SharingConflict,
    },

    #[error(
        "no pool this Service may use has {family} addresses: add a {family} block to an autoAssign pool, or let a pool's serviceAllocation select the Service, or name a pool with {ADDRESS_POOL}"
    )]
    NoPoolForFamily { family: Family },

    #[error(
        "the Service requires dual-stack but no pool it may use has both IPv4 and IPv6 addresses: add the missing family to a pool, or use ipFamilyPolicy PreferDualStack"
    )]
    NoDualStackPool,

    #[error(
        "pool '{pool}' has no {family} addresses, and all of a Service's addresses come from one pool: add a {family} block to '{pool}' or change the Service's families"
    )]
    PoolLacksFamily { pool: String, family: Family },

    #[error(
        "no free address: {}; add addresses to a pool or delete unused Services",
        join(.shortages)
    )]
    Exhausted { shortages: Vec<Shortage> },

    #[error(
        "cannot restore [{}]: a Service holds one address, or one of each family",
        join(.ips)
    )]
    InvalidRestore { ips: Vec<IpAddr> },
}

/// A pool that had the family but no free address of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortage {
    pub pool: String,
    pub family: Family,
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool '{}' has no free {} address",
            self.pool, self.family
        )
    }
}

/// Why a Service may not take an address from the pool holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ineligibility {
    /// The Service names another pool.
    PinnedElsewhere { pinned: String },
    /// The pool's `serviceAllocation` does not select the Service.
    NotSelected,
}

impl fmt::Display for Ineligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligibility::PinnedElsewhere { pinned } => write!(
                f,
                "the Service names pool '{pinned}' ({ADDRESS_POOL}): request an address of that pool or change the annotation"
            ),
            Ineligibility::NotSelected => f.write_str(
                "the pool's serviceAllocation does not select this Service: request an address of another pool or extend the serviceAllocation",
            ),
        }
    }
}

/// `ensure` refused the request. `kept` is what the Service still holds, untouched: a Service
/// whose changed request cannot be met keeps its old addresses rather than losing them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    pub error: AllocError,
    /// `Some` when the Service still holds addresses (publish them, report `error`); `None`
    /// when it holds nothing (pending).
    pub kept: Option<Allocation>,
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
