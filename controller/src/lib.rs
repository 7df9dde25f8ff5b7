//! FerroLB controller: the pure allocator core, and the thin Kubernetes shell around it.

pub mod allocator;
pub mod apiwatch;
pub mod decide;
pub mod events;
pub mod http;
pub mod intent;
pub mod leader;
pub mod membership_secret;
pub mod metrics;
pub mod runtime;
pub mod writer;
