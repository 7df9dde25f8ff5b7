//! FerroLB controller library: the pure allocator core and the thin Kubernetes shell around it.
pub mod allocator;
