//! FerroLB speaker: pure cores (L2 frames, election and announcer; BGP codec, session FSM and
//! BFD; the announcement plan) and the thin shells that drive them.

pub mod agent;
pub mod bgp;
pub mod cluster;
pub mod departure;
pub mod health;
pub mod l2;
pub mod membership;
pub mod metrics;
pub mod plan;
pub mod sessions;
pub mod visibility;
