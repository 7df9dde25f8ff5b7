//! Per-node BFD runtime (RFC 5880 asynchronous mode, RFC 5881 single hop): the tokio shell
//! around the sans-IO [`BfdSession`].
//!
//! Every BFD session from one local address shares **one receive socket** on UDP 3784 (a
//! node peering with several routers cannot bind the port once per router). Received packets
//! are demultiplexed to their session by Your Discriminator (RFC 5880 §6.8.6); while the peer
//! does not know our discriminator yet (Your Discriminator 0) by the packet's source address
//! (RFC 5881 §3). A packet whose discriminator names a session of another peer is dropped.
//!
//! There is one BFD session per (local address, peer address): BGP sessions to one router from
//! one address share it, as a router runs one BFD session per neighbour address. The session
//! lives while any [`BfdHandle`] for it does; the last handle to go sends AdminDown. A later
//! handle with different timers reconfigures the shared session (Poll sequence, RFC 5880
//! §6.8.3); a different minimum TTL or key takes effect with the next packet.
//!
//! Every packet a session drops (TTL, malformed, authentication) is counted in
//! [`dropped_packets`] by peer and reason and logged at most once a minute per session: a
//! hostile host on the link can send them at any rate.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use super::bfd::{BfdAction, BfdConfig, BfdEvent, BfdSession, BfdState, BfdTimer, PacketError};
use super::net;
use demux::{Inbound, Inbox, Table, receive};
use drops::DropLog;

mod demux;
mod drops;

pub use drops::{DropLabels, dropped_packets};

/// A fresh random bfd.XmitAuthSeq (RFC 5880 §6.8.1). Should the OS RNG fail, the clock is
/// the next best thing: what matters is not to restart from a number used before.
fn random_seq() -> u32 {
    use rand::TryRng;
    rand::rngs::SysRng.try_next_u32().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
    })
}

/// Packets queued per session before the receiver drops more. A session drains its queue at
/// once; a full queue means it is stuck, and dropping is what a lossy link does anyway.
const INBOX_LEN: usize = 64;

/// Observable BFD session state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdStatus {
    pub state: BfdState,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Diagnostic of the last state change.
    pub diag: u8,
    pub packets_received: u64,
    pub packets_dropped: u64,
}

/// A reference to a running single-hop BFD session towards one peer.
pub struct BfdHandle {
    status: watch::Receiver<BfdStatus>,
    up: watch::Receiver<bool>,
    lease: Option<Lease>,
}

struct Lease {
    mux: BfdMux,
    key: Key,
}

impl BfdHandle {
    pub fn status(&self) -> watch::Receiver<BfdStatus> {
        self.status.clone()
    }

    /// `true` while Up, `false` once BFD detects a failure; feed it to
    /// [`spawn`](super::driver::spawn) to tie BGP to BFD. A peer going AdminDown is not a
    /// failure (RFC 5882 §3.2) and leaves it alone.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// Releases this reference; the last one signals AdminDown to the peer (so it does not
    /// mistake us for a failure) and waits for the session to stop.
    pub async fn shutdown(mut self) {
        if let Some(l) = self.lease.take()
            && let Some(task) = l.mux.release(l.key)
        {
            let _ = task.await;
        }
    }

    /// Kills the session without a word, as a crash or a cut cable would (tests).
    #[cfg(test)]
    pub(crate) fn abort(&self) {
        if let Some(l) = &self.lease
            && let Some(e) = lock(&l.mux.inner).sessions.get(&l.key)
        {
            e.abort.abort();
        }
    }
}

impl Drop for BfdHandle {
    fn drop(&mut self) {
        if let Some(l) = self.lease.take() {
            // The session stops on its own (AdminDown); nobody waits for it.
            drop(l.mux.release(l.key));
        }
    }
}

/// Starts (or joins) the BFD session from `local` to `peer` in the process-wide [`BfdMux`].
pub fn spawn_bfd(local: IpAddr, peer: IpAddr, config: BfdConfig) -> io::Result<BfdHandle> {
    BfdMux::global().spawn(local, peer, config)
}

/// (local address, peer address).
type Key = (IpAddr, IpAddr);

/// The BFD sessions of a node and their shared receive sockets.
#[derive(Clone, Default)]
pub struct BfdMux {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Receive sockets by local address; kept once opened (a node has one or two addresses).
    receivers: HashMap<IpAddr, Receiver>,
    sessions: HashMap<Key, Entry>,
    /// Local discriminators in use, so each is unique on the node.
    discriminators: HashSet<u32>,
}

struct Receiver {
    table: Arc<Mutex<Table>>,
    task: AbortHandle,
}

struct Entry {
    refs: usize,
    config: BfdConfig,
    status: watch::Receiver<BfdStatus>,
    up: watch::Receiver<bool>,
    control: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
    abort: AbortHandle,
}

enum Control {
    Reconfigure(BfdConfig),
    Stop,
}

/// BFD runs on a thread and runtime of its own: its timers (300 ms × 3 by default) must not
/// wait behind the speaker's other work, such as recomputing the plan over thousands of
/// Services on a busy node.
fn runtime() -> &'static tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("BFD runtime");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("bfd".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("BFD thread");
        handle
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BfdMux {
    /// The process-wide instance: one speaker runs per node, so this is the node's.
    pub fn global() -> &'static BfdMux {
        static MUX: OnceLock<BfdMux> = OnceLock::new();
        MUX.get_or_init(BfdMux::default)
    }

    /// Starts the BFD session from `local` to `peer`, or joins the running one (applying
    /// `config`'s timers to it if they differ). `config.local_discriminator` is a preference:
    /// if another session of this node uses it, the next free value is taken.
    pub fn spawn(&self, local: IpAddr, peer: IpAddr, config: BfdConfig) -> io::Result<BfdHandle> {
        let key = (local, peer);
        let rt = runtime();
        // Sockets register with the reactor of the runtime they are created in.
        let _in_bfd_runtime = rt.enter();
        let mut inner = lock(&self.inner);
        // An entry whose task ended without being released (aborted) is stale.
        if inner
            .sessions
            .get(&key)
            .is_some_and(|e| e.abort.is_finished())
        {
            inner.sessions.remove(&key);
        }
        if let Some(e) = inner.sessions.get_mut(&key) {
            e.refs += 1;
            if !same_settings(&e.config, &config) {
                e.config = config;
                let _ = e.control.send(Control::Reconfigure(config));
            }
            return Ok(self.handle(key, e));
        }

        let table = self.receiver(&mut inner, local)?;
        let tx = net::bfd_tx_socket(local, peer)?;
        let mut disc = config.local_discriminator.max(1);
        while inner.discriminators.contains(&disc) {
            disc = disc.wrapping_add(1).max(1);
        }
        inner.discriminators.insert(disc);
        let (inbox_tx, inbox) = mpsc::channel(INBOX_LEN);
        {
            let mut t = lock(&table);
            t.by_discriminator
                .insert(disc, Inbox { peer, tx: inbox_tx });
            t.by_peer.insert(peer, disc);
        }
        let registration = Registration {
            mux: self.clone(),
            local,
            peer,
            discriminator: disc,
        };
        let mut session = BfdSession::new(BfdConfig {
            local_discriminator: disc,
            ..config
        });
        session.set_xmit_auth_seq(random_seq());
        let initial = BfdStatus {
            state: session.state(),
            local_discriminator: disc,
            remote_discriminator: 0,
            diag: 0,
            packets_received: 0,
            packets_dropped: 0,
        };
        let (status_tx, status) = watch::channel(initial);
        let (up_tx, up) = watch::channel(false);
        let (control, control_rx) = mpsc::unbounded_channel();
        let task = rt.spawn(
            SessionTask {
                session,
                peer,
                tx,
                timers: [None; 3],
                st: initial,
                drop_log: DropLog::default(),
                status: status_tx,
                up: up_tx,
                _registration: registration,
            }
            .run(inbox, control_rx),
        );
        let entry = Entry {
            refs: 1,
            config,
            abort: task.abort_handle(),
            status,
            up,
            control,
            task: Some(task),
        };
        let handle = self.handle(key, &entry);
        inner.sessions.insert(key, entry);
        Ok(handle)
    }

    /// A new reference to the session `entry` (already counted in its `refs`).
    fn handle(&self, key: Key, entry: &Entry) -> BfdHandle {
        BfdHandle {
            status: entry.status.clone(),
            up: entry.up.clone(),
            lease: Some(Lease {
                mux: self.clone(),
                key,
            }),
        }
    }

    /// The delivery table of `local`'s receive socket, opening the socket if needed.
    fn receiver(&self, inner: &mut Inner, local: IpAddr) -> io::Result<Arc<Mutex<Table>>> {
        if let Some(r) = inner.receivers.get(&local)
            && !r.task.is_finished()
        {
            return Ok(r.table.clone());
        }
        let socket = net::bfd_rx_socket(local)?;
        let table = Arc::new(Mutex::new(Table::default()));
        let task = runtime()
            .spawn(receive(socket, table.clone(), local))
            .abort_handle();
        inner.receivers.insert(
            local,
            Receiver {
                table: table.clone(),
                task,
            },
        );
        Ok(table)
    }

    /// Drops one reference to a session; the last one stops it and gets its task to await.
    fn release(&self, key: Key) -> Option<JoinHandle<()>> {
        let mut inner = lock(&self.inner);
        let e = inner.sessions.get_mut(&key)?;
        e.refs = e.refs.saturating_sub(1);
        if e.refs > 0 {
            return None;
        }
        let mut e = inner.sessions.remove(&key)?;
        let _ = e.control.send(Control::Stop);
        e.task.take()
    }

    /// Removes a session's delivery routes (its task is ending).
    fn unregister(&self, local: IpAddr, peer: IpAddr, discriminator: u32) {
        let mut inner = lock(&self.inner);
        inner.discriminators.remove(&discriminator);
        if let Some(r) = inner.receivers.get(&local) {
            let mut t = lock(&r.table);
            t.by_discriminator.remove(&discriminator);
            if t.by_peer.get(&peer) == Some(&discriminator) {
                t.by_peer.remove(&peer);
            }
        }
    }
}

/// Whether a joining handle's settings are those of the running session.
fn same_settings(a: &BfdConfig, b: &BfdConfig) -> bool {
    a.desired_min_tx == b.desired_min_tx
        && a.required_min_rx == b.required_min_rx
        && a.detect_mult == b.detect_mult
        && a.min_ttl == b.min_ttl
        && a.auth == b.auth
}

/// Unregisters a session's routes when its task ends, however it ends (even aborted).
struct Registration {
    mux: BfdMux,
    local: IpAddr,
    peer: IpAddr,
    discriminator: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.mux
            .unregister(self.local, self.peer, self.discriminator);
    }
}

struct SessionTask {
    session: BfdSession,
    peer: IpAddr,
    tx: UdpSocket,
    timers: [Option<Instant>; 3],
    st: BfdStatus,
    drop_log: DropLog,
    status: watch::Sender<BfdStatus>,
    up: watch::Sender<bool>,
    _registration: Registration,
}

impl SessionTask {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Inbound>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let start = self.session.start();
        self.execute(start).await;
        loop {
            let deadline = self.timers.iter().flatten().min().copied();
            let actions = tokio::select! {
                c = control.recv() => match c {
                    Some(Control::Reconfigure(c)) => {
                        self.session.set_min_ttl(c.min_ttl);
                        self.session.set_auth(c.auth, random_seq());
                        self.session.set_detect_mult(c.detect_mult);
                        self.session.handle(BfdEvent::SetIntervals {
                            desired_min_tx: c.desired_min_tx,
                            required_min_rx: c.required_min_rx,
                        })
                    }
                    Some(Control::Stop) | None => {
                        let actions = self.session.handle(BfdEvent::AdminDown);
                        self.execute(actions).await;
                        // One explicit AdminDown packet so the peer reports "neighbor down".
                        let a = self.session.handle(BfdEvent::TimerFired(BfdTimer::Transmit));
                        self.execute(a).await;
                        break;
                    }
                },
                Some(p) = inbox.recv() => match self.session.receive(&p.bytes, p.ttl) {
                    Ok(actions) => {
                        self.st.packets_received += 1;
                        actions
                    }
                    Err(e) => {
                        self.dropped(e);
                        Vec::new()
                    }
                },
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    let mut actions = Vec::new();
                    for (i, kind) in TIMERS.into_iter().enumerate() {
                        if self.timers[i].is_some_and(|t| t <= now) {
                            self.timers[i] = None;
                            actions.extend(self.session.handle(BfdEvent::TimerFired(kind)));
                        }
                    }
                    actions
                }
            };
            if self.session.remote_state() == BfdState::AdminDown {
                // Not a path failure: report nothing to clients (RFC 5882 §3.2).
                let mut rest = Vec::with_capacity(actions.len());
                for a in actions {
                    if let BfdAction::StateChanged { to, diag, .. } = a {
                        self.st.state = to;
                        self.st.diag = diag;
                    } else {
                        rest.push(a);
                    }
                }
                self.execute(rest).await;
            } else {
                self.execute(actions).await;
            }
            self.publish();
        }
        self.st.state = self.session.state();
        self.publish();
    }

    /// Counts a dropped packet and logs it, at most once per [`DROP_LOG_INTERVAL`].
    fn dropped(&mut self, e: PacketError) {
        self.st.packets_dropped += 1;
        dropped_packets()
            .get_or_create(&DropLabels {
                peer: self.peer.to_string(),
                reason: e.reason(),
            })
            .inc();
        if let Some(suppressed) = self.drop_log.allow(Instant::now()) {
            tracing::warn!(
                peer = %self.peer,
                error = %e,
                dropped_since_last_log = suppressed,
                "BFD packet dropped (logged at most once a minute; see ferrolb_bfd_packets_dropped_total)"
            );
        }
    }

    fn publish(&mut self) {
        self.st.remote_discriminator = self.session.remote_discriminator();
        let st = self.st;
        self.status.send_if_modified(|s| {
            let changed = *s != st;
            *s = st;
            changed
        });
    }

    async fn execute(&mut self, actions: Vec<BfdAction>) {
        for a in actions {
            match a {
                BfdAction::Send(p) => {
                    let wire = self.session.seal(&p);
                    if let Err(e) = self.tx.send(wire.as_bytes()).await {
                        tracing::debug!(peer = %self.peer, error = %e, "BFD send failed");
                    }
                }
                BfdAction::SetTimer(kind, after) => {
                    self.timers[timer_index(kind)] = Some(Instant::now() + after);
                }
                BfdAction::CancelTimer(kind) => self.timers[timer_index(kind)] = None,
                BfdAction::StateChanged { from, to, diag } => {
                    tracing::info!(peer = %self.peer, ?from, ?to, diag, "BFD state change");
                    self.st.state = to;
                    self.st.diag = diag;
                    // Status first: whoever wakes on `up` then reads a status that says why.
                    self.publish();
                    self.up.send_replace(to == BfdState::Up);
                }
            }
        }
    }
}

const TIMERS: [BfdTimer; 3] = [BfdTimer::Transmit, BfdTimer::Detect, BfdTimer::AuthSeqReset];

fn timer_index(kind: BfdTimer) -> usize {
    match kind {
        BfdTimer::Transmit => 0,
        BfdTimer::Detect => 1,
        BfdTimer::AuthSeqReset => 2,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
