//! FerroLB speaker library.
pub mod bgp;
pub mod l2;
