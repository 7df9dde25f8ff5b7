//! FerroLB controller: the pure allocator core, and the thin Kubernetes shell around it.

pub mod allocator;
mod config_status;
mod conflicts;
pub mod decide;
#[cfg(test)]
mod fixtures;
mod inbox;
pub mod intent;
pub mod leader;
pub mod membership_secret;
pub mod metrics;
mod reconciler;
mod restore;
pub mod runtime;
mod service_status;
mod settling;
mod stores;
pub mod writer;
