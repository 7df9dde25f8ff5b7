//! BGP mode: announces LoadBalancer IPs to routers over BGP (RFC 4271) with BFD (RFC 5880).
//!
//! Layout: pure, sans-IO cores ([`codec`], [`fsm`], [`route`], [`bfd`]) and a thin tokio
//! shell ([`net`] for sockets, [`driver`] for the per-peer task).

pub mod bfd;
pub mod codec;
pub mod driver;
pub mod fsm;
pub mod net;
pub mod route;

pub use codec::{CodecOptions, Family, Message, Notification};
pub use fsm::{Action, DownReason, Event, PeerAsn, PeerConfig, Session, State, StopReason, TimerKind};
pub use route::{NextHop, Prefix, Route};
