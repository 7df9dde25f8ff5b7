//! The node's side of passive and unnumbered sessions, shared by all of them: the listening
//! sockets ([`Listeners`]) and router discovery on each interface with unnumbered peers
//! ([`Discovery`]). Sessions are started here so that a passive one gets its connections.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{mpsc, watch};

use super::driver::{self, SessionConfig, SessionHandle};
use super::fsm::StopReason;
use super::listener::{Expected, Listeners, Registration};
use super::route::Route;
use super::unnumbered::Discovery;

/// Starts a session: passive ones with a channel for the connections the listener accepts for
/// them (returned as their [`Registration`]).
pub fn start_session(
    config: &SessionConfig,
    routes: watch::Receiver<BTreeSet<Route>>,
    bfd_up: Option<watch::Receiver<bool>>,
    cease: watch::Receiver<Option<StopReason>>,
) -> (SessionHandle, Option<Registration>) {
    let t = &config.transport;
    let Some(port) = t.listen_port else {
        let h = driver::spawn_with_cease(config.clone(), routes, bfd_up, Some(cease));
        return (h, None);
    };
    let expected = match &t.interface {
        Some(iface) => Expected::Interface(iface.clone()),
        None => Expected::Address(t.peer.ip()),
    };
    // A connection waits here only until the session task takes it.
    let (tx, rx) = mpsc::channel(2);
    let h = driver::spawn_passive(config.clone(), routes, bfd_up, Some(cease), rx);
    let reg = Registration {
        port,
        expected,
        md5_password: t.md5_password.clone(),
        inbound: tx,
    };
    (h, Some(reg))
}

/// Listeners and router discovery for the sessions that run.
#[derive(Default)]
pub struct NodeEndpoints {
    listeners: Listeners,
    discovery: BTreeMap<String, Discovery>,
    /// Problems as last logged, so each is logged once.
    problems: BTreeSet<String>,
}

impl NodeEndpoints {
    /// Opens (and closes) what `sessions` need: a listener per passive port, router discovery
    /// per interface of unnumbered peers. Problems (a port that cannot be opened, an interface
    /// without link-local address) are logged as errors when they appear, and retried on
    /// every call.
    pub fn sync<'a>(
        &mut self,
        sessions: impl IntoIterator<Item = (&'a SessionConfig, Option<&'a Registration>)>,
    ) {
        let mut registrations = Vec::new();
        let mut interfaces = BTreeSet::new();
        for (config, reg) in sessions {
            registrations.extend(reg.cloned());
            interfaces.extend(config.transport.interface.clone());
        }
        let mut problems = BTreeSet::new();
        for (port, e) in self.listeners.sync(registrations) {
            problems.insert(if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "cannot listen on port {port} for passive BGP peers: {e} (ports below 1024 \
                     need CAP_NET_BIND_SERVICE)"
                )
            } else {
                format!("cannot listen on port {port} for passive BGP peers: {e}")
            });
        }
        self.discovery.retain(|iface, _| interfaces.contains(iface));
        for iface in interfaces {
            if self.discovery.contains_key(&iface) {
                continue;
            }
            match Discovery::start(&iface) {
                Ok(d) => {
                    self.discovery.insert(iface, d);
                }
                Err(e) => {
                    problems.insert(format!("no router discovery on {iface}: {e}"));
                }
            }
        }
        for p in problems.difference(&self.problems) {
            tracing::error!(problem = %p, "BGP peers cannot run as configured");
        }
        self.problems = problems;
    }
}

#[cfg(test)]
mod tests;
