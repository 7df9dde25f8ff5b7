//! Pure IP allocator (no I/O): which LoadBalancer Service holds which pool addresses.
//!
//! Plain data in, plain data out. The controller feeds it validated [`Pool`]s
//! ([`Allocator::set_pools`]), restores the addresses Services already have at start-up
//! ([`Allocator::restore`]), then calls [`Allocator::ensure`] per Service and
//! [`Allocator::release`] when one goes away. Decisions are deterministic (ordered maps only)
//! and cost grows with the number of allocations, never with pool size.
//!
//! Rules, in order of precedence:
//! - Stability: a Service keeps addresses that still satisfy its request, whatever pools are
//!   added or edited; addresses that left every pool are kept and reported as orphaned.
//! - A changed request that cannot be met keeps the old addresses ([`Refusal::kept`]).
//! - All of a Service's addresses come from one pool: the pinned pool, else matching
//!   `serviceAllocation` pools by priority, else auto-assign pools, ties by name; the lowest
//!   free address of each family, sharing only between compatible Services with one key.

mod addr;
mod allocation;
mod demand;
mod engine;
mod error;
mod occupancy;
mod pool;
mod service;
mod sharing;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use allocation::Allocation;
pub use engine::Allocator;
pub use error::{AllocError, Ineligibility, Refusal, Shortage};
pub use pool::{Pool, PoolAllocationRule, PoolStats};
pub use service::{FamilyPolicy, Port, Protocol, Request, ServiceKey, TrafficPolicy};
pub use sharing::SharingConflict;
