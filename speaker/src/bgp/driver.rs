//! Thin tokio shell around the sans-IO [`Session`]: owns the TCP stream, framing, timers,
//! the routes watch and BFD signals, and publishes status for metrics.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use super::bfd_mux::{BfdHandle, BfdStatus, spawn_bfd};
use super::codec::{self, Message};
use super::fsm::{Action, Event, PeerConfig, Session, State, StopReason, TimerKind};
use super::net::{self, TransportConfig};
use super::route::Route;

/// How long to wait for the peer to close after we sent our last message, so that a
/// NOTIFICATION is not lost to a reset caused by unread data.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub peer: PeerConfig,
    pub transport: TransportConfig,
}

/// Observable session state, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub state: State,
    /// Prefixes currently advertised to the peer.
    pub prefixes_sent: usize,
    pub updates_sent: u64,
    /// Times the session reached Established.
    pub established_count: u64,
    pub last_error: Option<String>,
}

impl Default for SessionStatus {
    fn default() -> Self {
        Self {
            state: State::Idle,
            prefixes_sent: 0,
            updates_sent: 0,
            established_count: 0,
            last_error: None,
        }
    }
}

/// A running session task.
pub struct SessionHandle {
    status: watch::Receiver<SessionStatus>,
    stop: Option<oneshot::Sender<StopReason>>,
    task: JoinHandle<()>,
}

impl SessionHandle {
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// Sends a Cease NOTIFICATION (if connected), closes, and waits for the task to end.
    pub async fn shutdown(mut self, reason: StopReason) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(reason);
        }
        let _ = self.task.await;
    }
}

/// Starts a session task. `bfd_up` (when BFD is configured) going from true to false tears
/// the session down.
pub fn spawn(
    config: SessionConfig,
    routes: watch::Receiver<BTreeSet<Route>>,
    bfd_up: Option<watch::Receiver<bool>>,
) -> SessionHandle {
    spawn_with_cease(config, routes, bfd_up, None)
}

/// Like [`spawn`], plus `cease`: once it reads `Some(reason)` the session stops for that
/// reason (a Cease, or for [`StopReason::Restart`] with graceful restart a close without one)
/// and ends, without waiting for whoever holds the handle. A process stopping (SIGTERM) uses it
/// so that routers learn at once, however busy the rest of the process is; a session started
/// after it was set stops as it starts.
pub fn spawn_with_cease(
    config: SessionConfig,
    routes: watch::Receiver<BTreeSet<Route>>,
    bfd_up: Option<watch::Receiver<bool>>,
    cease: Option<watch::Receiver<Option<StopReason>>>,
) -> SessionHandle {
    start(config, routes, bfd_up, cease, None)
}

/// Like [`spawn_with_cease`] for a passive session (`PeerConfig::passive`): it never connects;
/// the connections a listener accepted from the peer arrive on `inbound`.
pub fn spawn_passive(
    config: SessionConfig,
    routes: watch::Receiver<BTreeSet<Route>>,
    bfd_up: Option<watch::Receiver<bool>>,
    cease: Option<watch::Receiver<Option<StopReason>>>,
    inbound: mpsc::Receiver<TcpStream>,
) -> SessionHandle {
    start(config, routes, bfd_up, cease, Some(inbound))
}

fn start(
    config: SessionConfig,
    routes: watch::Receiver<BTreeSet<Route>>,
    bfd_up: Option<watch::Receiver<bool>>,
    cease: Option<watch::Receiver<Option<StopReason>>>,
    inbound: Option<mpsc::Receiver<TcpStream>>,
) -> SessionHandle {
    let (status_tx, status) = watch::channel(SessionStatus::default());
    let (stop, stop_rx) = oneshot::channel();
    let driver = Driver {
        fsm: Session::new(config.peer),
        transport: config.transport,
        timers: [None; 3],
        conn: None,
        connecting: None,
        status: status_tx,
        updates_sent: 0,
        established_count: 0,
        last_error: None,
        inbound,
    };
    let task = tokio::spawn(driver.run(routes, bfd_up, cease, stop_rx));
    SessionHandle {
        status,
        stop: Some(stop),
        task,
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
}

struct Driver {
    fsm: Session,
    transport: TransportConfig,
    timers: [Option<Instant>; 3],
    conn: Option<Conn>,
    connecting: Option<ConnectFuture>,
    status: watch::Sender<SessionStatus>,
    updates_sent: u64,
    established_count: u64,
    last_error: Option<String>,
    /// A passive session's accepted connections.
    inbound: Option<mpsc::Receiver<TcpStream>>,
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::ConnectRetry => 0,
        TimerKind::Hold => 1,
        TimerKind::Keepalive => 2,
    }
}

const TIMER_KINDS: [TimerKind; 3] = [
    TimerKind::ConnectRetry,
    TimerKind::Hold,
    TimerKind::Keepalive,
];

impl Driver {
    async fn run(
        mut self,
        mut routes: watch::Receiver<BTreeSet<Route>>,
        mut bfd_up: Option<watch::Receiver<bool>>,
        mut cease: Option<watch::Receiver<Option<StopReason>>>,
        mut stop: oneshot::Receiver<StopReason>,
    ) {
        if cease.as_ref().is_some_and(|c| c.borrow().is_some()) {
            self.publish();
            return;
        }
        let initial = routes.borrow_and_update().clone();
        self.apply(Event::RoutesChanged(initial)).await;
        self.apply(Event::Start).await;
        let mut routes_open = true;
        let mut bfd_was_up = bfd_up.as_ref().is_some_and(|b| *b.borrow());
        loop {
            let deadline = self.timers.iter().flatten().min().copied();
            tokio::select! {
                reason = &mut stop => {
                    // A dropped handle also stops the session cleanly.
                    self.stop(reason.unwrap_or(StopReason::Shutdown)).await;
                    break;
                }
                reason = wait_set(&mut cease) => {
                    self.stop(reason).await;
                    break;
                }
                changed = routes.changed(), if routes_open => match changed {
                    Ok(()) => {
                        let set = routes.borrow_and_update().clone();
                        self.apply(Event::RoutesChanged(set)).await;
                    }
                    // The producer is gone: keep the last routes.
                    Err(_) => routes_open = false,
                },
                up = wait_bfd(&mut bfd_up) => match up {
                    Some(up) => {
                        if bfd_was_up && !up {
                            self.apply(Event::BfdDown).await;
                        }
                        bfd_was_up = up;
                    }
                    None => bfd_up = None,
                },
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    for kind in TIMER_KINDS {
                        let slot = &mut self.timers[timer_index(kind)];
                        if slot.is_some_and(|t| t <= now) {
                            *slot = None;
                            self.apply(Event::TimerFired(kind)).await;
                        }
                    }
                }
                result = poll_connect(&mut self.connecting) => {
                    self.connecting = None;
                    match result {
                        Ok(stream) => self.connected(stream).await,
                        Err(e) => {
                            tracing::debug!(peer = %self.transport.peer, error = %e, "BGP connect failed");
                            self.last_error = Some(format!("connect: {e}"));
                            self.apply(Event::TcpFailed).await;
                        }
                    }
                }
                stream = recv_inbound(&mut self.inbound) => match stream {
                    Some(stream) => self.accept(stream).await,
                    None => self.inbound = None,
                },
                read = read_some(&mut self.conn) => match read {
                    Ok(0) | Err(_) => {
                        self.conn = None;
                        self.apply(Event::TcpClosed).await;
                    }
                    Ok(_) => self.process_input().await,
                },
            }
        }
        self.publish();
    }

    /// Stops the session, saying in the log what the peer does with our routes.
    async fn stop(&mut self, reason: StopReason) {
        let peer = self.transport.peer;
        let up = self.fsm.state() != State::Idle;
        match reason {
            StopReason::Restart if self.fsm.graceful_restart_negotiated() => tracing::info!(
                %peer,
                "planned restart: closing without NOTIFICATION; the peer keeps this node's \
                 routes (graceful restart) until the next speaker re-advertises them"
            ),
            StopReason::Restart if up => tracing::warn!(
                %peer,
                "planned restart, but graceful restart was not negotiated with this peer \
                 (enableGracefulRestart on the BGPPeer, and the router must support it): \
                 Cease, the peer drops this node's routes until the next speaker is up"
            ),
            _ if up => {
                tracing::info!(%peer, ?reason, "stopping: Cease, the peer withdraws this node's routes")
            }
            _ => {}
        }
        self.apply(Event::Stop(reason)).await;
    }

    /// Takes a connection up: ours (connected) or the peer's (accepted).
    async fn connected(&mut self, stream: TcpStream) {
        if let Ok(local) = stream.local_addr() {
            self.fsm.set_local_address(local.ip());
        }
        let (reader, writer) = stream.into_split();
        self.conn = Some(Conn {
            reader,
            writer,
            buf: BytesMut::with_capacity(8192),
        });
        self.apply(Event::TcpConnected).await;
    }

    /// A connection the peer opened to a passive session. We never connect, so no collision
    /// (RFC 4271 §6.8) arises; a second connection means the peer gave up on the first, unless
    /// the first is Established (which then stays, as §6.8 keeps an Established one).
    async fn accept(&mut self, stream: TcpStream) {
        let peer = stream.peer_addr().ok();
        match self.fsm.state() {
            State::Established => {
                tracing::info!(
                    ?peer,
                    "closing a second connection: the session is Established"
                );
                return;
            }
            State::OpenSent | State::OpenConfirm => {
                self.conn = None;
                self.apply(Event::TcpClosed).await;
            }
            State::Idle | State::Connect | State::Active => {}
        }
        // Idle: waiting to restart after an error; the peer's next attempt is taken.
        if self.fsm.state() == State::Idle {
            return;
        }
        tracing::debug!(?peer, "accepted BGP connection");
        self.connected(stream).await;
    }

    /// Decodes and handles every complete message in the input buffer.
    async fn process_input(&mut self) {
        loop {
            let opts = self.fsm.codec_options();
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match codec::decode_frame(&conn.buf, &opts) {
                Ok(Some((msg, used))) => {
                    conn.buf.advance(used);
                    self.apply(Event::Message(msg)).await;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(peer = %self.transport.peer, error = %e, "malformed BGP message");
                    self.apply(Event::Malformed(e)).await;
                    return;
                }
            }
        }
    }

    /// Feeds an event to the FSM and carries out the resulting actions (which may produce
    /// further events, e.g. a failed write closing the connection).
    async fn apply(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(ev) = queue.pop_front() {
            for action in self.fsm.handle(ev) {
                self.execute(action, &mut queue).await;
            }
        }
        self.publish();
    }

    async fn execute(&mut self, action: Action, queue: &mut VecDeque<Event>) {
        let peer = self.transport.peer;
        match action {
            Action::Connect => {
                self.conn = None;
                let transport = self.transport.clone();
                self.connecting = Some(Box::pin(async move { net::connect(&transport).await }));
            }
            Action::Send(msg) => {
                let bytes = match msg.encode(&self.fsm.codec_options()) {
                    Ok(b) => b,
                    Err(e) => {
                        // Route packing keeps messages in bounds; this is a bug, not input.
                        tracing::error!(%peer, error = %e, "cannot encode BGP message");
                        return;
                    }
                };
                if matches!(msg, Message::Update(_)) {
                    self.updates_sent += 1;
                }
                if let Message::Notification(n) = &msg {
                    tracing::info!(%peer, notification = %n, "sending NOTIFICATION");
                }
                if let Some(conn) = self.conn.as_mut()
                    && let Err(e) = conn.writer.write_all(&bytes).await
                {
                    tracing::debug!(%peer, error = %e, "BGP write failed");
                    self.conn = None;
                    queue.push_back(Event::TcpClosed);
                }
            }
            Action::CloseTcp => {
                self.connecting = None;
                if let Some(conn) = self.conn.take() {
                    close_gracefully(conn).await;
                }
            }
            Action::SetTimer(kind, after) => {
                self.timers[timer_index(kind)] = Some(Instant::now() + after);
            }
            Action::CancelTimer(kind) => self.timers[timer_index(kind)] = None,
            Action::Established => {
                self.established_count += 1;
                let n = self.fsm.negotiated();
                tracing::info!(
                    %peer,
                    peer_asn = n.map(|n| n.peer_asn),
                    hold_time = n.map(|n| n.hold_time),
                    "BGP session established"
                );
            }
            Action::Down(reason) => {
                tracing::warn!(%peer, %reason, "BGP session down");
                self.last_error = Some(reason.to_string());
            }
        }
    }

    fn publish(&self) {
        let status = SessionStatus {
            state: self.fsm.state(),
            prefixes_sent: self.fsm.advertised().count(),
            updates_sent: self.updates_sent,
            established_count: self.established_count,
            last_error: self.fsm.withheld().or_else(|| self.last_error.clone()),
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}

/// Flushes what we wrote (typically a NOTIFICATION) with a FIN, then briefly reads until the
/// peer closes: closing with unread input would make the kernel send a reset instead.
async fn close_gracefully(mut conn: Conn) {
    let _ = conn.writer.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Ok(n) = conn.reader.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn poll_connect(connecting: &mut Option<ConnectFuture>) -> io::Result<TcpStream> {
    match connecting.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn recv_inbound(inbound: &mut Option<mpsc::Receiver<TcpStream>>) -> Option<TcpStream> {
    match inbound.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn read_some(conn: &mut Option<Conn>) -> io::Result<usize> {
    match conn.as_mut() {
        Some(c) => {
            c.buf.reserve(codec::MAX_MESSAGE_LEN);
            c.reader.read_buf(&mut c.buf).await
        }
        None => std::future::pending().await,
    }
}

/// Returns the reason once one is set; never if there is no flag or its sender is gone.
async fn wait_set(flag: &mut Option<watch::Receiver<Option<StopReason>>>) -> StopReason {
    if let Some(rx) = flag.as_mut()
        && let Ok(v) = rx.wait_for(|v| v.is_some()).await
        && let Some(reason) = *v
    {
        return reason;
    }
    *flag = None;
    std::future::pending().await
}

/// Next BFD state; `None` once the sender is gone.
async fn wait_bfd(bfd: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    match bfd.as_mut() {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
