//! L2 mode: answer ARP and Neighbor Solicitations for the VIPs this node
//! announces, and announce takeovers with gratuitous ARP / unsolicited NA.
//!
//! - [`frame`]: pure parsing and building of Ethernet frames.
//! - [`election`]: pure, coordination-free choice of the announcing node.
//! - [`announcer`]: pure state machine from desired announcements, frames and
//!   time to actions.
//! - [`conflict`]: pure address conflict detection: probe before a first
//!   announcement, defend once then report while announcing.
//! - [`placement`]: pure choice of the interfaces each address is announced
//!   on, and why none when none.
//! - [`socket`]: Linux AF_PACKET sockets and interface discovery.
//! - [`runtime`]: the async shell tying sockets to the announcer.
pub mod announcer;
pub mod conflict;
pub mod election;
pub mod frame;
pub mod placement;
pub mod runtime;
pub mod socket;

pub use placement::{DesiredL2, IfaceSelector};
pub use runtime::{L2Config, L2Error, L2Runtime, L2Status};
