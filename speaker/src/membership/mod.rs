//! Which speakers are alive: SWIM gossip among speakers (like MetalLB's
//! memberlist), so L2 announcements fail over in well under a second.
//!
//! - [`identity`]: [`MemberId`], a speaker's renewable cluster identity.
//! - [`config`]: the foca tuning, with the detection-time arithmetic and the
//!   packet-rate trade-off.
//! - [`keys`]: the shared keys (key file, rotation, reload).
//! - [`seal`]: the authenticated datagram format and the replay window.
//! - [`vet`]: what an authenticated datagram may claim (Nodes at their
//!   addresses, believable identity counters, no reflection).
//! - [`reject`]: rejection reasons, counters and rate-limited logging.
//! - `core`: the sans-IO state machine (foca, authentication, timers, live
//!   set, seeds); unit- and simulation-tested with a fake clock.
//! - `timers`: foca's timers in the order they fire.
//! - `stats`: datagram, rejection and restart counters, and their snapshot.
//! - `driver`: the thin tokio shell (one UDP socket, one timer, key reload).
//!
//! Wire: UDP, default port [`DEFAULT_PORT`]; each datagram is `"FLBm"`,
//! version 2, key id, sequence number, a foca/postcard message and an
//! HMAC-SHA256 tag over all of it and the address pair ([`seal`]).
//!
//! # Trust
//!
//! Only datagrams from a Node's InternalIP (our family) at the membership
//! port are looked at; only those sealed with a key from the key file are
//! decoded; a sequence number seen before, or more than 30 s from our
//! clock, is refused; and a sender may only speak as the Node at its
//! address, and only about Nodes at their addresses ([`vet`]). So a host
//! on the node network without the key can only make us count drops (the
//! `ferrolb_membership_rejected_total{reason}` metric, one warning per
//! reason per 10 s). A node holding the key (any node: every speaker has
//! it) can still lie about the others' liveness: authentication keeps
//! outsiders out, not a compromised member. With `--insecure-membership`
//! datagrams are plain (version 1) and anyone able to spoof a node's source
//! address can lie about membership; the address and identity checks
//! still apply.
//!
//! Authentication costs 0.36 µs per 200-byte datagram and 1.1 µs for the
//! largest (seal or open, p50; `cargo bench -p ferrolb-speaker --bench
//! membership_auth`); the simulated detection figures are unchanged by it
//! (`sim.rs`: p50 268 ms, p99 414 ms over 300 trials, as before), and so
//! are the namespace-lab ones (`lab.sh 24` with authentication: SIGKILL
//! median 260 ms / p99 392 ms, link down 314 / 426 ms, leave 2.4 / 3.0 ms; no
//! datagram rejected in honest traffic).
//!
//! Measured on a real network (before authentication) (three speakers in namespaces on a bridge,
//! `lab.sh`; 34 faults per kind; shared 2-core machine at load ~6), time
//! until *both* other speakers dropped the victim from their live set:
//!
//! | fault                               | median | p99 (= max) |
//! |-------------------------------------|--------|-------------|
//! | SIGKILL                             | 265 ms | 355 ms      |
//! | bridge port down                    | 312 ms | 448 ms      |
//! | SIGTERM ([`Membership::leave`])     | 1.4 ms | 10 ms       |
//!
//! with no false positive and no flap (see `lab.rs`); a node whose link comes back
//! is re-merged in ~0.65 s. Tuning, costs and trade-offs: [`config`].
//!
//! Healing: a member the others declared down rejoins under a renewed
//! [`MemberId`] (foca's `Identity::renew`); a member cut off from everyone
//! starts afresh and knocks on its seeds every second; seeds whose node is
//! not live are knocked on with backoff, so partitions heal without help.

pub mod config;
mod core;
mod driver;
pub mod identity;
pub mod keys;
#[cfg(test)]
mod lab;
pub mod reject;
pub mod seal;
#[cfg(test)]
mod sim;
mod stats;
mod timers;
pub mod vet;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use self::core::{Auth, Core};
pub use self::identity::MemberId;
use self::keys::{KeyFile, KeyRing};
pub use self::reject::Reason;
use self::stats::Counters;
pub use self::stats::Stats;
pub use self::vet::Seed;

/// memberlist's port, which MetalLB speakers use too.
pub const DEFAULT_PORT: u16 = 7946;
/// How long [`Membership::start`] waits for a first peer when there are seeds
/// to ask, so the caller does not begin with a live set of just itself.
pub const JOIN_GRACE: Duration = Duration::from_secs(1);
/// After the first peer answers, how long to let the other seeds answer too.
pub const JOIN_SETTLE: Duration = Duration::from_millis(50);
/// Receive buffer asked for the membership socket.
pub const RECV_BUFFER: usize = 1 << 20;
/// Upper bound on [`Membership::leave`].
pub const LEAVE_TIMEOUT: Duration = Duration::from_millis(100);

/// How membership datagrams are authenticated, from the speaker's flags.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// HMAC-SHA256 with the keys of this file, re-read every
    /// [`keys::RELOAD_EVERY`].
    Keys { file: KeyFile, ring: KeyRing },
    /// None (`--insecure-membership`).
    Insecure,
}

impl Authentication {
    /// Reads the key file now, so a speaker without a usable key refuses to
    /// start (with an error saying what to create), unless `insecure`.
    pub fn from_flags(
        key_file: &Path,
        insecure: bool,
        namespace: &str,
    ) -> anyhow::Result<Authentication> {
        if insecure {
            warn!(
                "MEMBERSHIP AUTHENTICATION DISABLED (--insecure-membership): anyone who can send \
                 UDP to the membership port on the node network can declare nodes down or invent \
                 members, and so move or black-hole L2 addresses"
            );
            return Ok(Authentication::Insecure);
        }
        let (file, ring) = KeyFile::open(key_file, namespace)?;
        info!(
            file = %key_file.display(),
            signing = %ring.signing().id,
            accepted = ?ring.ids(),
            "membership datagrams are authenticated"
        );
        Ok(Authentication::Keys { file, ring })
    }
}

/// A running membership agent. Dropping it leaves the cluster in the
/// background; [`Membership::leave`] does the same and waits for it.
pub struct Membership {
    stop: Option<oneshot::Sender<driver::StopRequest>>,
    counters: Arc<Counters>,
}

impl Membership {
    /// Binds UDP on `bind` (the node's own address, which peers use to reach
    /// us; port usually [`DEFAULT_PORT`]) and joins the speakers at `seeds`
    /// (every Node's name and speaker address; ours is ignored as a seed;
    /// may change over time). Only seeds are heard and answered, and only
    /// under their Node's name. Seeds whose node is not live are
    /// re-contacted periodically, so restarts and partitions heal without
    /// outside help.
    ///
    /// Returns once a first peer answered (plus [`JOIN_SETTLE`]), or after
    /// [`JOIN_GRACE`], or at once if there is nobody to ask. The receiver
    /// holds the live node names, always including `node`.
    pub async fn start(
        node: String,
        bind: SocketAddr,
        seeds: watch::Receiver<Vec<Seed>>,
        auth: Authentication,
    ) -> anyhow::Result<(Membership, watch::Receiver<BTreeSet<String>>)> {
        anyhow::ensure!(!node.is_empty(), "membership needs a node name");
        // Our identity carries this address for peers to reply to, so it
        // must be a real one.
        anyhow::ensure!(
            !bind.ip().is_unspecified() && bind.port() != 0,
            "membership must bind the node's own address and a fixed port, not {bind}"
        );
        let socket =
            bind_socket(bind).with_context(|| format!("binding membership socket on {bind}"))?;
        let rng = StdRng::try_from_rng(&mut SysRng).context("seeding membership rng")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the membership runtime")?;

        let counters = Arc::new(Counters::default());
        let id = MemberId::starting_now(node, bind);
        info!(%id, "starting membership");
        let (core_auth, key_file) = match auth {
            Authentication::Keys { file, ring } => (Auth::Keys(ring), Some(file)),
            Authentication::Insecure => (Auth::Insecure, None),
        };
        let wall: self::core::WallClock = Arc::new(|_| identity::now_micros());
        let core = Core::new(
            id,
            rng,
            Instant::now(),
            Arc::clone(&counters),
            core_auth,
            wall,
        );
        let (live_tx, mut live_rx) = watch::channel(core.live().clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        let has_peers_to_ask = seeds.borrow().iter().any(|s| s.addr != bind);

        let driver_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("ferrolb-members".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::UdpSocket::from_std(socket) {
                        Ok(socket) => {
                            driver::run(
                                core,
                                socket,
                                seeds,
                                live_tx,
                                stop_rx,
                                driver_counters,
                                key_file,
                            )
                            .await;
                        }
                        Err(err) => error!(error = %err, "membership socket setup failed"),
                    }
                });
            })
            .context("spawning the membership thread")?;

        if has_peers_to_ask {
            wait_for_first_peer(&mut live_rx).await;
        }
        // Callers may start with changed(): make the current set count.
        live_rx.mark_changed();
        Ok((
            Membership {
                stop: Some(stop_tx),
                counters,
            },
            live_rx,
        ))
    }

    /// Leaves gracefully: tells every live member we are going, so they take
    /// over at once instead of after failure detection. Best effort, bounded
    /// by [`LEAVE_TIMEOUT`].
    pub async fn leave(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done_tx, done_rx) = oneshot::channel();
            if stop.send(done_tx).is_ok() {
                let _ = tokio::time::timeout(LEAVE_TIMEOUT, done_rx).await;
            }
        }
    }

    /// Datagram counters, e.g. for metrics.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

fn bind_socket(bind: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    // A joiner announces to every seed at once and gets one member list
    // (up to 1400 bytes) back from each: room for a few hundred. Best
    // effort: the kernel caps it at net.core.rmem_max, and a lost list only
    // delays learning a few members until the next gossip.
    if let Err(err) = socket.set_recv_buffer_size(RECV_BUFFER) {
        info!(error = %err, "could not enlarge the membership receive buffer");
    }
    socket.bind(&bind.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

async fn wait_for_first_peer(live: &mut watch::Receiver<BTreeSet<String>>) {
    let joined = tokio::time::timeout(JOIN_GRACE, live.wait_for(|set| set.len() > 1)).await;
    if matches!(joined, Ok(Ok(_))) {
        tokio::time::sleep(JOIN_SETTLE).await;
    } else {
        info!("no peer answered yet; starting with a live set of one");
    }
}
