//! Passive peers (`BGPPeer.spec.passive`): the node's listening sockets, one pair (IPv4, IPv6)
//! per port in use, and which session each accepted connection belongs to.
//!
//! Only configured peers get in: a connection is handed to the session whose peer address it
//! comes from (for an interface peer: any link-local address on that interface); any other is
//! closed at once and counted in `ferrolb_bgp_rejected_connections_total`. Where a peer has a
//! TCP MD5 password its key is set on the listening socket, so the kernel drops that address's
//! unsigned or wrongly signed segments before they reach us.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{net, unnumbered};

/// Connections refused because they came from no configured passive peer.
pub fn rejected_connections() -> &'static Counter {
    static REJECTED: OnceLock<Counter> = OnceLock::new();
    REJECTED.get_or_init(Counter::default)
}

/// Whom a passive session accepts connections from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expected {
    Address(IpAddr),
    /// Any IPv6 link-local address on this interface (unnumbered).
    Interface(String),
}

/// A passive session waiting for its peer.
#[derive(Clone, Debug)]
pub struct Registration {
    pub port: u16,
    pub expected: Expected,
    pub md5_password: Option<String>,
    pub inbound: mpsc::Sender<TcpStream>,
}

/// Which of `expected` a connection from `from` belongs to; `ifindex` names an interface's
/// index. IPv4-mapped sources count as IPv4.
pub fn belongs_to<'a>(
    expected: impl IntoIterator<Item = &'a Expected>,
    from: SocketAddr,
    ifindex: impl Fn(&str) -> Option<u32>,
) -> Option<&'a Expected> {
    let ip = from.ip().to_canonical();
    expected.into_iter().find(|e| match e {
        Expected::Address(a) => *a == ip,
        Expected::Interface(name) => match from {
            SocketAddr::V6(v6) => {
                v6.ip().is_unicast_link_local() && ifindex(name) == Some(v6.scope_id())
            }
            SocketAddr::V4(_) => false,
        },
    })
}

struct Port {
    sockets: Vec<Arc<TcpListener>>,
    sessions: Arc<Mutex<Vec<Registration>>>,
    /// MD5 keys set on the sockets, by peer address.
    keys: BTreeMap<IpAddr, String>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Port {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// The listening sockets of this node's passive sessions.
#[derive(Default)]
pub struct Listeners {
    ports: BTreeMap<u16, Port>,
}

impl Listeners {
    /// Listens on exactly the ports `sessions` use, with their MD5 keys, and routes connections
    /// to them. Returns the ports that could not be opened, with the reason.
    pub fn sync(&mut self, sessions: Vec<Registration>) -> Vec<(u16, io::Error)> {
        let mut by_port: BTreeMap<u16, Vec<Registration>> = BTreeMap::new();
        for r in sessions {
            by_port.entry(r.port).or_default().push(r);
        }
        self.ports.retain(|p, _| by_port.contains_key(p));
        let mut errors = Vec::new();
        for (port, regs) in by_port {
            let p = match self.ports.entry(port) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => match open(port) {
                    Ok(p) => v.insert(p),
                    Err(e) => {
                        errors.push((port, e));
                        continue;
                    }
                },
            };
            if let Err(e) = p.set_keys(&regs) {
                errors.push((port, e));
            }
            *p.sessions.lock().unwrap_or_else(|e| e.into_inner()) = regs;
        }
        errors
    }
}

fn open(port: u16) -> io::Result<Port> {
    let sockets = [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ]
    .into_iter()
    .map(|a| net::listen(a, port).map(Arc::new))
    .collect::<io::Result<Vec<_>>>()?;
    let sessions: Arc<Mutex<Vec<Registration>>> = Arc::default();
    let tasks = sockets
        .iter()
        .map(|s| tokio::spawn(accept_loop(s.clone(), sessions.clone())).abort_handle())
        .collect();
    tracing::info!(port, "listening for passive BGP peers");
    Ok(Port {
        sockets,
        sessions,
        keys: BTreeMap::new(),
        tasks,
    })
}

impl Port {
    /// Sets the MD5 key of every peer address that has a password, and removes the others.
    fn set_keys(&mut self, regs: &[Registration]) -> io::Result<()> {
        let want: BTreeMap<IpAddr, String> = regs
            .iter()
            .filter_map(|r| match (&r.expected, &r.md5_password) {
                (Expected::Address(a), Some(p)) => Some((*a, p.clone())),
                _ => None,
            })
            .collect();
        for addr in self.keys.keys() {
            if !want.contains_key(addr) {
                self.set_key(*addr, b"")?;
            }
        }
        for (addr, key) in &want {
            if self.keys.get(addr) != Some(key) {
                self.set_key(*addr, key.as_bytes())?;
            }
        }
        self.keys = want;
        Ok(())
    }

    fn set_key(&self, addr: IpAddr, key: &[u8]) -> io::Result<()> {
        let socket = self
            .sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == addr.is_ipv4()))
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        net::set_tcp_md5sig(socket.as_ref(), SocketAddr::new(addr, 0), key)
    }
}

async fn accept_loop(socket: Arc<TcpListener>, sessions: Arc<Mutex<Vec<Registration>>>) {
    loop {
        let (stream, from) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Per-connection errors (the peer reset before accept): keep listening.
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let target = {
            let regs = sessions.lock().unwrap_or_else(|e| e.into_inner());
            let expected = belongs_to(regs.iter().map(|r| &r.expected), from, |name| {
                unnumbered::link_local(name).ok().map(|(i, _)| i)
            })
            .cloned();
            expected.and_then(|e| {
                regs.iter()
                    .find(|r| r.expected == e)
                    .map(|r| r.inbound.clone())
            })
        };
        match target {
            Some(inbound) => {
                if inbound.try_send(stream).is_err() {
                    tracing::debug!(%from, "session not taking connections: closed");
                }
            }
            None => {
                let n = rejected_connections().inc() + 1;
                // Anyone can connect: log the first and then one in a thousand, the metric
                // counts them all.
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(%from, rejected = n, "BGP connection from an address that is no passive peer: closed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
