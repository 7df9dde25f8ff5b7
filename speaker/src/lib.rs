//! FerroLB speaker: pure cores (L2 frames, election and announcer; BGP codec, session FSM and
//! BFD; the announcement plan) and the thin shells that drive them.

pub mod agent;
/// Watches that resume quickly after an API-server outage and report it, shared with the
/// controller.
#[path = "../../controller/src/apiwatch.rs"]
pub mod apiwatch;
pub mod bgp;
pub mod cluster;
/// Service events, shared with the controller (see its module doc for why not kube's Recorder).
#[path = "../../controller/src/events.rs"]
pub mod events;
pub mod health;
/// `/metrics`, `/healthz`, `/readyz`: the same three endpoints as the controller, from one file.
#[path = "../../controller/src/http.rs"]
pub mod http;
pub mod l2;
pub mod membership;
pub mod metrics;
pub mod plan;
pub mod sessions;
pub mod visibility;
