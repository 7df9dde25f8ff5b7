//! Which speakers are alive: SWIM gossip among speakers (like MetalLB's
//! memberlist), so L2 announcements fail over in well under a second.
//!
//! - [`identity`]: [`MemberId`], a speaker's renewable cluster identity.
//! - [`config`]: the foca tuning, with the detection-time arithmetic and the
//!   packet-rate trade-off.
//! - `core`: the sans-IO state machine (foca, wire envelope, timers, live
//!   set, seeds); unit- and simulation-tested with a fake clock.
//! - `driver`: the thin tokio shell (one UDP socket, one timer).
//!
//! Wire: UDP, default port [`DEFAULT_PORT`]; each datagram is `"FLBm"`, a
//! version byte and a foca/postcard message. Unauthenticated: anyone who can
//! send UDP to the port can lie about membership.
//!
//! Measured on a real network (three speakers in namespaces on a bridge,
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
#[cfg(test)]
mod lab;
#[cfg(test)]
mod sim;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use tokio::sync::{oneshot, watch};
use tracing::{error, info};

pub use self::core::Stats;
use self::core::{Core, Counters};
pub use self::identity::MemberId;

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

/// A running membership agent. Dropping it leaves the cluster in the
/// background; [`Membership::leave`] does the same and waits for it.
pub struct Membership {
    stop: Option<oneshot::Sender<driver::StopRequest>>,
    counters: Arc<Counters>,
}

impl Membership {
    /// Binds UDP on `bind` (the node's own address, which peers use to reach
    /// us; port usually [`DEFAULT_PORT`]) and joins the speakers at `seeds`
    /// (every node's speaker address; ours is ignored; may change over
    /// time). Seeds whose node is not live are re-contacted periodically, so
    /// restarts and partitions heal without outside help.
    ///
    /// Returns once a first peer answered (plus [`JOIN_SETTLE`]), or after
    /// [`JOIN_GRACE`], or at once if there is nobody to ask. The receiver
    /// holds the live node names, always including `node`.
    pub async fn start(
        node: String,
        bind: SocketAddr,
        seeds: watch::Receiver<Vec<SocketAddr>>,
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
        let core = Core::new(id, rng, Instant::now(), Arc::clone(&counters));
        let (live_tx, mut live_rx) = watch::channel(core.live().clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        let has_peers_to_ask = seeds.borrow().iter().any(|s| *s != bind);

        let driver_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("ferrolb-members".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::UdpSocket::from_std(socket) {
                        Ok(socket) => {
                            driver::run(core, socket, seeds, live_tx, stop_rx, driver_counters)
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
