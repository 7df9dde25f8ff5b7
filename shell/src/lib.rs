//! FerroLB's Kubernetes shell, shared by the controller and the speaker: what both need from
//! the API server and around their process. The API itself (kinds, validation) is `ferrolb-crds`.

pub mod api_health;
pub mod backoff;
pub mod config;
pub mod events;
pub mod http;
pub mod process;
pub mod watch;
