//! BGP mode: announces LoadBalancer IPs to routers over BGP (RFC 4271) with BFD (RFC 5880).
//!
//! Layout: pure, sans-IO cores and a thin tokio shell.
//! - [`prefix`]: IP prefixes, next hops and their address families (AFI/SAFI).
//! - [`codec`]: BGP-4 messages as values, their decoding and encoding.
//! - [`route`]: the routes we originate, packed into UPDATEs.
//! - [`fsm`]: the per-peer session state machine (RFC 4271 §8), with the OPEN exchange.
//! - [`bfd`]: the BFD packet format and per-peer state machine (RFC 5880), with
//!   authentication and timing.
//! - [`net`]: sockets and their options (TCP MD5, TTL security, BFD ports, listeners).
//! - [`endpoints`]: what passive and unnumbered sessions share on the node (listeners, router
//!   discovery), and starting sessions with them.
//! - [`listener`]: passive peers: the listening sockets and which session gets a connection.
//! - [`unnumbered`]: unnumbered peers: the router on an interface, from router advertisements.
//! - [`driver`]: the per-peer tasks that run a session over TCP.
//! - [`bfd_mux`]: the node's BFD sessions: one shared receive socket per local address,
//!   demultiplexed by discriminator, on a thread of its own.
//!
//! Typical use: build a [`PeerConfig`] and a [`TransportConfig`], optionally start BFD with
//! [`spawn_bfd`], then [`spawn`] a session fed by a `watch` of the routes to announce; read
//! [`SessionStatus`] from the handle and call [`SessionHandle::shutdown`] to send a Cease
//! ([`spawn_with_cease`] adds a flag that stops the session at once, e.g. on SIGTERM).

pub mod bfd;
pub mod bfd_mux;
pub mod codec;
pub mod driver;
pub mod endpoints;
pub mod fsm;
pub mod listener;
pub mod net;
pub mod prefix;
pub mod route;
pub mod unnumbered;

pub use bfd::{BfdConfig, BfdSession, BfdState};
pub use bfd_mux::BfdMux;
pub use codec::{CodecOptions, DecodeError, Message, Notification};
pub use driver::{
    BfdHandle, BfdStatus, SessionConfig, SessionHandle, SessionStatus, spawn, spawn_bfd,
    spawn_passive, spawn_with_cease,
};
pub use fsm::{
    Action, DownReason, Event, GracefulRestartConfig, PeerAsn, PeerConfig, Session, State,
    StopReason, TimerKind,
};
pub use net::TransportConfig;
pub use prefix::{Family, NextHop, Prefix};
pub use route::Route;
