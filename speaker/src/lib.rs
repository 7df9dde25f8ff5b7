//! FerroLB speaker library.
pub mod bgp;
pub mod l2;
pub mod membership;
