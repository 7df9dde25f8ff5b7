//! BGP session state machine (RFC 4271 §8), sans-IO: active (we connect) or passive (we
//! wait in Active for the peer's connection, which a listener hands in).
//!
//! The [`Session`] consumes [`Event`]s and returns [`Action`]s; it never touches sockets or
//! clocks. Timers are requested with [`Action::SetTimer`] and come back as
//! [`Event::TimerFired`]. Setting a timer that is already running restarts it.
//!
//! We only originate routes: received UPDATEs are validated (by the codec) and ignored.
//! Connection collisions (RFC 4271 §6.8) cannot arise: a session either connects or accepts,
//! never both; a second inbound connection is settled by the driver.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

mod config;
mod negotiation;

pub use config::{GracefulRestartConfig, PeerAsn, PeerConfig};
pub use negotiation::Negotiated;

use super::codec::{CodecOptions, DecodeError, Message, Notification, Open, Update, err};
use super::prefix::{Family, NextHop, Prefix};
use super::route::{self, Route, UpdateContext};

/// Hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    ConnectRetry,
    Hold,
    Keepalive,
}

/// Why we stop a session administratively, and so what the peer is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Withdraw: Cease (Administrative Shutdown, RFC 4486); the peer drops our routes at once.
    Shutdown,
    /// Withdraw and come back (settings changed): Cease (Administrative Reset).
    Reset,
    /// A planned restart of this process: where graceful restart was negotiated (RFC 4724) the
    /// connection closes without a NOTIFICATION, so the peer keeps our routes (stale) until the
    /// next process re-advertises them and sends End-of-RIB, or the restart time passes. A peer
    /// without graceful restart gets a Cease (Administrative Reset) and drops them.
    Restart,
}

impl StopReason {
    fn subcode(self) -> u8 {
        match self {
            StopReason::Shutdown => err::ADMINISTRATIVE_SHUTDOWN,
            StopReason::Reset | StopReason::Restart => err::ADMINISTRATIVE_RESET,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Stop(StopReason),
    TcpConnected,
    TcpFailed,
    TcpClosed,
    Message(Message),
    /// The peer sent bytes that do not decode; carries the NOTIFICATION to answer with.
    Malformed(DecodeError),
    TimerFired(TimerKind),
    BfdDown,
    /// The full set of routes we want advertised now.
    RoutesChanged(BTreeSet<Route>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer (abandoning any attempt in progress).
    Connect,
    Send(Message),
    CloseTcp,
    SetTimer(TimerKind, Duration),
    CancelTimer(TimerKind),
    Established,
    Down(DownReason),
}

/// Why a session (or a session attempt that reached TCP) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    AdminStop(StopReason),
    NotificationReceived(Notification),
    /// We found an error (including hold timer expiry) and told the peer.
    NotificationSent(Notification),
    TcpClosed,
    BfdDown,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::AdminStop(r) => write!(f, "administrative stop ({r:?})"),
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION {n}"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}"),
            DownReason::TcpClosed => write!(f, "TCP connection closed"),
            DownReason::BfdDown => write!(f, "BFD session down"),
        }
    }
}

/// One BGP peering, sans-IO.
#[derive(Clone, Debug)]
pub struct Session {
    config: PeerConfig,
    state: State,
    /// Cleared by `Stop`: automatic restarts only happen while administratively up.
    admin_up: bool,
    /// Consecutive failed attempts, for exponential connect-retry backoff.
    failures: u32,
    negotiated: Option<Negotiated>,
    /// What we want advertised, by prefix (one route per prefix: the first in set order).
    desired: BTreeMap<Prefix, Route>,
    /// What the peer has from us (Adj-RIB-Out).
    advertised: BTreeMap<Prefix, Route>,
    /// Our end of the connection: the next hop of every route on an unnumbered session.
    local_address: Option<IpAddr>,
}

impl Session {
    pub fn new(mut config: PeerConfig) -> Self {
        // RFC 4271 §4.2: hold time is 0 or at least 3 seconds.
        if config.hold_time > 0 && config.hold_time < 3 {
            config.hold_time = 3;
        }
        // A zero retry delay would reconnect in a tight loop.
        config.connect_time = config.connect_time.max(Duration::from_millis(100));
        config.connect_time_max = config.connect_time_max.max(config.connect_time);
        config.families.sort_unstable();
        config.families.dedup();
        Self {
            config,
            state: State::Idle,
            admin_up: false,
            failures: 0,
            negotiated: None,
            desired: BTreeMap::new(),
            advertised: BTreeMap::new(),
            local_address: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Whether both sides announced graceful restart on the current connection, so that closing
    /// it without a NOTIFICATION makes the peer keep our routes (RFC 4724 §4.2).
    pub fn graceful_restart_negotiated(&self) -> bool {
        self.config.graceful_restart.is_some()
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.peer_graceful_restart.is_some())
    }

    /// Prefixes currently advertised to the peer.
    pub fn advertised(&self) -> impl Iterator<Item = &Route> {
        self.advertised.values()
    }

    /// Codec settings for messages to and from this peer.
    pub fn codec_options(&self) -> CodecOptions {
        CodecOptions {
            four_octet_as: self.negotiated.as_ref().is_none_or(|n| n.four_octet_as),
        }
    }

    /// The OPEN we send.
    pub fn open_message(&self) -> Open {
        negotiation::open_message(&self.config)
    }

    /// Delay before the next connection attempt: `connect_time * 2^failures`, capped.
    pub fn retry_delay(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX);
        self.config
            .connect_time
            .saturating_mul(factor)
            .min(self.config.connect_time_max)
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(&mut out),
            Event::Stop(reason) => self.on_stop(reason, &mut out),
            Event::TcpConnected => self.on_tcp_connected(&mut out),
            // A connection that never came up and one that went down end alike.
            Event::TcpFailed | Event::TcpClosed => self.on_tcp_closed(&mut out),
            Event::Message(m) => self.on_message(m, &mut out),
            Event::Malformed(e) => {
                if self.tcp_up() {
                    self.tear_down(DownReason::NotificationSent(e.notification), &mut out);
                }
            }
            Event::TimerFired(kind) => self.on_timer(kind, &mut out),
            Event::BfdDown => {
                if self.tcp_up() {
                    self.tear_down(
                        DownReason::NotificationSent(Notification::cease(err::BFD_DOWN)),
                        &mut out,
                    );
                    // Report the real cause rather than the NOTIFICATION we sent about it.
                    if let Some(Action::Down(r)) = out.last_mut() {
                        *r = DownReason::BfdDown;
                    }
                }
            }
            Event::RoutesChanged(routes) => self.on_routes(routes, &mut out),
        }
        out
    }

    fn tcp_up(&self) -> bool {
        matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        if self.config.passive {
            // A passive session only waits for the peer's connection (RFC 4271 §8.1.1).
            self.state = State::Active;
            return;
        }
        self.state = State::Connect;
        out.push(Action::Connect);
        out.push(Action::SetTimer(
            TimerKind::ConnectRetry,
            self.retry_delay(),
        ));
    }

    fn on_start(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Idle {
            return;
        }
        self.admin_up = true;
        self.failures = 0;
        self.connect(out);
    }

    fn on_stop(&mut self, reason: StopReason, out: &mut Vec<Action>) {
        let was_up = self.tcp_up();
        let keep_routes = reason == StopReason::Restart && self.graceful_restart_negotiated();
        if was_up && !keep_routes {
            out.push(Action::Send(Message::Notification(Notification::cease(
                reason.subcode(),
            ))));
        }
        if self.state != State::Idle {
            out.push(Action::CloseTcp);
        }
        for t in [
            TimerKind::ConnectRetry,
            TimerKind::Hold,
            TimerKind::Keepalive,
        ] {
            out.push(Action::CancelTimer(t));
        }
        if was_up {
            out.push(Action::Down(DownReason::AdminStop(reason)));
        }
        self.admin_up = false;
        self.enter_idle();
    }

    /// Counts a failed attempt for backoff; a session that had been Established retries
    /// promptly instead.
    fn note_failure(&mut self) {
        self.failures = if self.state == State::Established {
            0
        } else {
            self.failures.saturating_add(1)
        };
    }

    fn enter_idle(&mut self) {
        self.state = State::Idle;
        self.negotiated = None;
        self.advertised.clear();
    }

    /// Ends a connected session: tells the peer why when the error is ours to report, closes
    /// the connection and, while administratively up, schedules an automatic restart.
    fn tear_down(&mut self, reason: DownReason, out: &mut Vec<Action>) {
        if let DownReason::NotificationSent(n) = &reason {
            out.push(Action::Send(Message::Notification(n.clone())));
        }
        out.push(Action::CloseTcp);
        out.push(Action::CancelTimer(TimerKind::Hold));
        out.push(Action::CancelTimer(TimerKind::Keepalive));
        self.note_failure();
        self.enter_idle();
        if self.admin_up {
            // Idle with automatic restart: ConnectRetry doubles as the idle-hold timer.
            out.push(Action::SetTimer(
                TimerKind::ConnectRetry,
                self.retry_delay(),
            ));
        }
        out.push(Action::Down(reason));
    }

    fn on_tcp_connected(&mut self, out: &mut Vec<Action>) {
        if !matches!(self.state, State::Connect | State::Active) {
            return;
        }
        self.state = State::OpenSent;
        out.push(Action::CancelTimer(TimerKind::ConnectRetry));
        out.push(Action::Send(Message::Open(self.open_message())));
        out.push(Action::SetTimer(TimerKind::Hold, LARGE_HOLD_TIME));
    }

    fn on_tcp_closed(&mut self, out: &mut Vec<Action>) {
        match self.state {
            State::OpenSent => {
                // RFC 4271 §8.2.2: OpenSent + TcpConnectionFails → Active, retry later.
                self.negotiated = None;
                out.push(Action::CloseTcp);
                out.push(Action::CancelTimer(TimerKind::Hold));
                self.retry_later(out);
                out.push(Action::Down(DownReason::TcpClosed));
            }
            State::OpenConfirm | State::Established => {
                self.tear_down(DownReason::TcpClosed, out);
            }
            State::Connect => self.retry_later(out),
            State::Idle | State::Active => {}
        }
    }

    /// Counts a failed attempt and waits in Active for the connect-retry timer.
    fn retry_later(&mut self, out: &mut Vec<Action>) {
        self.failures = self.failures.saturating_add(1);
        self.state = State::Active;
        out.push(Action::SetTimer(
            TimerKind::ConnectRetry,
            self.retry_delay(),
        ));
    }

    fn on_timer(&mut self, kind: TimerKind, out: &mut Vec<Action>) {
        match (kind, self.state) {
            (TimerKind::ConnectRetry, State::Connect) => {
                // RFC 4271 §8.2.2: drop the attempt in progress and try again.
                self.failures = self.failures.saturating_add(1);
                out.push(Action::CloseTcp);
                self.connect(out);
            }
            (TimerKind::ConnectRetry, State::Active) => self.connect(out),
            (TimerKind::ConnectRetry, State::Idle) if self.admin_up => self.connect(out),
            (TimerKind::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                self.tear_down(
                    DownReason::NotificationSent(Notification::hold_timer_expired()),
                    out,
                );
            }
            (TimerKind::Keepalive, State::OpenConfirm | State::Established) => {
                out.push(Action::Send(Message::Keepalive));
                self.restart_keepalive(out);
            }
            // Stale timers (fired after a transition that cancelled them) are harmless.
            _ => {}
        }
    }

    fn restart_keepalive(&self, out: &mut Vec<Action>) {
        self.restart_negotiated(TimerKind::Keepalive, |n| n.keepalive, out);
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        self.restart_negotiated(TimerKind::Hold, |n| n.hold_time, out);
    }

    /// Restarts a timer whose period (seconds) came out of the OPEN exchange; 0 turns it off.
    fn restart_negotiated(
        &self,
        kind: TimerKind,
        period: fn(&Negotiated) -> u16,
        out: &mut Vec<Action>,
    ) {
        if let Some(secs) = self.negotiated.as_ref().map(period)
            && secs > 0
        {
            out.push(Action::SetTimer(kind, Duration::from_secs(secs.into())));
        }
    }

    fn fsm_error(&mut self, out: &mut Vec<Action>) {
        let subcode = match self.state {
            State::OpenSent => err::FSM_UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => err::FSM_UNEXPECTED_IN_OPEN_CONFIRM,
            _ => err::FSM_UNEXPECTED_IN_ESTABLISHED,
        };
        self.tear_down(
            DownReason::NotificationSent(Notification::new(err::FSM, subcode, Vec::new())),
            out,
        );
    }

    fn on_message(&mut self, msg: Message, out: &mut Vec<Action>) {
        if !self.tcp_up() {
            return;
        }
        if let Message::Notification(n) = msg {
            self.tear_down(DownReason::NotificationReceived(n), out);
            return;
        }
        match (self.state, msg) {
            (State::OpenSent, Message::Open(open)) => {
                match negotiation::negotiate(&self.config, &open) {
                    Ok(n) => {
                        self.negotiated = Some(n);
                        self.state = State::OpenConfirm;
                        out.push(Action::Send(Message::Keepalive));
                        match self.negotiated.as_ref().map(|n| n.hold_time) {
                            Some(0) | None => out.push(Action::CancelTimer(TimerKind::Hold)),
                            Some(_) => self.restart_hold(out),
                        }
                        self.restart_keepalive(out);
                    }
                    Err(notification) => {
                        self.tear_down(DownReason::NotificationSent(notification), out);
                    }
                }
            }
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.failures = 0;
                // The R bit says "this process restarted": true of our first session only, not
                // of a reconnection later in the same process.
                if let Some(gr) = self.config.graceful_restart.as_mut() {
                    gr.restarting = false;
                }
                out.push(Action::Established);
                self.restart_hold(out);
                self.send_all(out);
            }
            (State::Established, Message::Keepalive) => self.restart_hold(out),
            (State::Established, Message::Update(_)) => {
                // We only originate: received routes (and any RFC 7606 soft errors in them)
                // are ignored; the codec already rejected what must reset the session.
                self.restart_hold(out);
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(out);
                if let Some(family) = Family::from_afi_safi(rr.afi, rr.safi)
                    && rr.subtype == 0
                    && self
                        .negotiated
                        .as_ref()
                        .is_some_and(|n| n.families.contains(&family))
                {
                    let routes: Vec<Route> = self
                        .advertised
                        .values()
                        .filter(|r| r.prefix.family() == family)
                        .cloned()
                        .collect();
                    let updates = route::announce_updates(&routes, &self.update_context());
                    self.send_updates(updates, out);
                }
            }
            _ => self.fsm_error(out),
        }
    }

    fn update_context(&self) -> UpdateContext {
        UpdateContext {
            local_asn: self.config.local_asn,
            ibgp: self.negotiated.as_ref().is_some_and(|n| n.ibgp),
            four_octet_as: self.codec_options().four_octet_as,
        }
    }

    /// The route as this peer gets it, if it gets it: on an unnumbered session the next hop
    /// is our link-local address; the family must be negotiated, and an IPv4 route with an IPv6
    /// next hop needs the peer's extended next hop capability (RFC 8950).
    fn outgoing(&self, r: &Route) -> Option<Route> {
        let n = self.negotiated.as_ref()?;
        let mut r = r.clone();
        if self.config.unnumbered {
            let Some(IpAddr::V6(ll)) = self.local_address else {
                return None;
            };
            r.next_hop = NextHop::v6(ll);
        }
        let sendable = r.is_consistent() || (r.needs_extended_next_hop() && n.extended_next_hop);
        (n.families.contains(&r.prefix.family()) && sendable).then_some(r)
    }

    /// Records our end of the connection (the driver calls this on connecting).
    pub fn set_local_address(&mut self, addr: IpAddr) {
        self.local_address = Some(addr.to_canonical());
    }

    /// Why some wanted routes are not sent to this Established peer, if that is so.
    pub fn withheld(&self) -> Option<String> {
        let n = self
            .negotiated
            .as_ref()
            .filter(|_| self.state == State::Established)?;
        let v4 = self
            .desired
            .values()
            .filter(|r| r.prefix.family() == Family::Ipv4Unicast)
            .count();
        if !self.config.unnumbered || n.extended_next_hop || v4 == 0 {
            return None;
        }
        Some(format!(
            "the router did not announce the extended next hop capability (RFC 8950) for IPv4 \
             unicast with IPv6 next hops: {v4} IPv4 route(s) not sent over this unnumbered session"
        ))
    }

    fn send_updates(&self, updates: Vec<Update>, out: &mut Vec<Action>) {
        if updates.is_empty() {
            return;
        }
        out.extend(
            updates
                .into_iter()
                .map(|u| Action::Send(Message::Update(u))),
        );
        // RFC 4271 §8.2.2: sending an UPDATE restarts the keepalive timer.
        self.restart_keepalive(out);
    }

    /// Initial advertisement on reaching Established: all routes, then End-of-RIB per family.
    fn send_all(&mut self, out: &mut Vec<Action>) {
        self.advertised = self
            .desired
            .iter()
            .filter_map(|(p, r)| self.outgoing(r).map(|r| (*p, r)))
            .collect();
        let mut updates = route::announce_updates(self.advertised.values(), &self.update_context());
        if let Some(n) = &self.negotiated {
            updates.extend(n.families.iter().map(|f| route::end_of_rib(*f)));
        }
        self.send_updates(updates, out);
    }

    fn on_routes(&mut self, routes: BTreeSet<Route>, out: &mut Vec<Action>) {
        let mut desired = BTreeMap::new();
        for r in routes {
            desired.entry(r.prefix).or_insert(r);
        }
        self.desired = desired;
        if self.state != State::Established {
            return;
        }
        let target: BTreeMap<Prefix, Route> = self
            .desired
            .iter()
            .filter_map(|(p, r)| self.outgoing(r).map(|r| (*p, r)))
            .collect();
        let withdrawn: Vec<Prefix> = self
            .advertised
            .keys()
            .filter(|p| !target.contains_key(p))
            .copied()
            .collect();
        // New prefixes and changed attributes (an announcement implicitly replaces).
        let announced: Vec<&Route> = target
            .iter()
            .filter(|(p, r)| self.advertised.get(p) != Some(r))
            .map(|(_, r)| r)
            .collect();
        let mut updates = route::withdraw_updates(&withdrawn);
        updates.extend(route::announce_updates(announced, &self.update_context()));
        self.advertised = target;
        self.send_updates(updates, out);
    }
}

#[cfg(test)]
mod tests;
