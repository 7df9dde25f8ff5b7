//! Unnumbered peering (a `BGPPeer` with `interface`): the router on an interface is found from
//! its IPv6 router advertisements (RFC 4861 §6.1.2), and the speaker sends its own (router
//! lifetime 0: no host takes it as a default router) so that the router learns the speaker's
//! link-local address the same way (FRR's `neighbor IFACE interface` does).
//!
//! Every RA byte is untrusted: anyone on the link can send one. A forged RA can only make the
//! speaker try to peer with the forger's link-local address, which still needs the BGPPeer's ASN
//! (and TCP MD5 password, where one is set) to come up: use a password on links shared with
//! hosts you do not trust. To keep one chattering host from making the session flap, the router
//! we peer with is only replaced once it has been silent for [`ROUTER_SILENCE`].
//!
//! The router learned per interface is kept for this process in one table (the sessions'
//! connect path reads it); [`Discovery`] (one per interface in use) writes it.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::net;

/// How often we send a router advertisement on an interface with unnumbered peers.
pub const RA_INTERVAL: Duration = Duration::from_secs(3);
/// A router heard from within this long is not replaced by another.
pub const ROUTER_SILENCE: Duration = Duration::from_secs(30);

/// ICMPv6 type of a router advertisement.
pub const ND_ROUTER_ADVERT: u8 = 134;
/// Fixed part of an RA (type, code, checksum, hop limit, flags, lifetime, two timers).
const RA_LEN: usize = 16;

/// Our router advertisement: no default router (lifetime 0), no prefixes, nothing to
/// configure; it only says "a router is here, at this link-local address". The kernel fills
/// in the checksum (ICMPv6 raw sockets always do).
pub fn advertisement() -> [u8; RA_LEN] {
    let mut ra = [0u8; RA_LEN];
    ra[0] = ND_ROUTER_ADVERT;
    ra
}

/// The router an ICMPv6 message announces, if it is a valid router advertisement (RFC 4861
/// §6.1.2): hop limit 255 (so it was not forwarded), code 0, at least 16 bytes, from a
/// link-local address. `own` is our address on the link: our own RAs are not a router.
pub fn advertising_router(
    packet: &[u8],
    source: Ipv6Addr,
    hop_limit: Option<u8>,
    own: Option<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let valid = packet.len() >= RA_LEN
        && packet[0] == ND_ROUTER_ADVERT
        && packet[1] == 0
        && hop_limit == Some(255)
        && source.is_unicast_link_local()
        && Some(source) != own;
    valid.then_some(source)
}

/// The router we peer with on an interface, and when we last heard it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    pub ifindex: u32,
    pub router: Ipv6Addr,
    pub at: Instant,
}

/// Whether an RA from `router` at `now` becomes the interface's router: yes if there is none,
/// if it is the same one (refreshed), or if the current one has been silent too long.
pub fn takes_over(current: Option<&Heard>, router: Ipv6Addr, now: Instant) -> bool {
    current.is_none_or(|c| c.router == router || now.duration_since(c.at) >= ROUTER_SILENCE)
}

fn table() -> &'static Mutex<BTreeMap<String, Heard>> {
    static ROUTERS: OnceLock<Mutex<BTreeMap<String, Heard>>> = OnceLock::new();
    ROUTERS.get_or_init(Mutex::default)
}

/// The router's link-local address on `iface` and the interface's index, as last learned.
pub fn router_on(iface: &str) -> io::Result<(u32, Ipv6Addr)> {
    let t = table().lock().unwrap_or_else(|e| e.into_inner());
    t.get(iface).map(|h| (h.ifindex, h.router)).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no router advertisement heard on {iface} yet"),
        )
    })
}

fn heard(iface: &str, ifindex: u32, router: Ipv6Addr) {
    let now = Instant::now();
    let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
    let current = t.get(iface);
    if !takes_over(current, router, now) {
        return;
    }
    if current.is_none_or(|c| c.router != router) {
        tracing::info!(iface, %router, "router found on the interface (router advertisement)");
    }
    t.insert(
        iface.to_string(),
        Heard {
            ifindex,
            router,
            at: now,
        },
    );
}

/// An interface's index and IPv6 link-local address, from the text of `/proc/net/if_inet6`
/// (`address ifindex prefixlen scope flags name`, hex; scope 0x20 is link).
pub fn link_local_in(if_inet6: &str, iface: &str) -> Option<(u32, Ipv6Addr)> {
    if_inet6.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, index, _, scope, _, name] = f.as_slice() else {
            return None;
        };
        if *name != iface || *scope != "20" || addr.len() != 32 {
            return None;
        }
        let addr = u128::from_str_radix(addr, 16).ok()?;
        let index = u32::from_str_radix(index, 16).ok()?;
        Some((index, Ipv6Addr::from(addr)))
    })
}

/// This node's index and link-local address of `iface` (in the speaker's network namespace).
pub fn link_local(iface: &str) -> io::Result<(u32, Ipv6Addr)> {
    let text = std::fs::read_to_string("/proc/net/if_inet6")?;
    link_local_in(&text, iface).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{iface} has no IPv6 link-local address (is it up, with IPv6 on?)"),
        )
    })
}

/// Router discovery on one interface: sends our RAs and learns the router from its RAs,
/// until dropped.
pub struct Discovery {
    iface: String,
    task: tokio::task::AbortHandle,
}

impl Discovery {
    /// Starts on `iface`; fails if the interface has no link-local address or the ICMPv6
    /// socket cannot be opened (it needs CAP_NET_RAW).
    pub fn start(iface: &str) -> io::Result<Discovery> {
        let (ifindex, own) = link_local(iface)?;
        let socket = net::icmpv6_socket(iface, ifindex)?;
        let name = iface.to_string();
        let task = tokio::spawn(async move {
            let all_nodes =
                SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
            let mut tick = tokio::time::interval(RA_INTERVAL);
            let mut buf = [0u8; 1500];
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = socket.send_to(&advertisement(), all_nodes).await {
                            tracing::warn!(iface = name, error = %e, "cannot send router advertisement");
                        }
                    }
                    r = net::recv_with_ttl(&socket, &mut buf) => match r {
                        Ok((n, from, hops)) => {
                            let std::net::SocketAddr::V6(from) = from else { continue };
                            let packet = buf.get(..n).unwrap_or_default();
                            if let Some(router) = advertising_router(packet, *from.ip(), hops, Some(own)) {
                                heard(&name, ifindex, router);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(iface = name, error = %e, "router discovery stopped");
                            return;
                        }
                    },
                }
            }
        });
        Ok(Discovery {
            iface: iface.to_string(),
            task: task.abort_handle(),
        })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
        let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
        t.remove(&self.iface);
    }
}

#[cfg(test)]
mod tests;
