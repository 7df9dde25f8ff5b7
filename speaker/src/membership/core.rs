//! The sans-IO membership state machine: foca plus everything we decide
//! around it (wire envelope, timer queue, live set, seeds, restarts).
//!
//! Time only comes in through `now` arguments and bytes only go out through
//! [`Core::take_outbox`], so tests drive several cores in memory with a fake
//! clock. The tokio shell (`driver.rs`) just moves datagrams and sleeps until
//! [`Core::next_deadline`].

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use foca::{Config, Foca, NoCustomBroadcast, Notification, PostcardCodec, Runtime};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{debug, info, warn};

use super::config;
use super::identity::MemberId;

/// Every datagram starts with this, so stray traffic on the port (an old
/// memberlist speaker also defaults to 7946) is counted and dropped before
/// it reaches the decoder, and the format can evolve.
pub const MAGIC: [u8; 4] = *b"FLBm";
pub const VERSION: u8 = 1;
pub const ENVELOPE_LEN: usize = MAGIC.len() + 1;

/// How often we knock on seeds whose node is not live.
pub const REJOIN_EVERY: Duration = Duration::from_secs(1);
/// Backoff cap for a seed that keeps not answering while we have company
/// (a node without a speaker, a powered-off node). While we are alone we
/// keep knocking every [`REJOIN_EVERY`]: healing fast matters more then.
pub const SEED_BACKOFF_MAX: Duration = Duration::from_secs(8);
/// After being cut off from every peer and starting afresh, how long (from
/// the first peer we hear again) we are slow to declare peers down, and how
/// slow. Seen in the lab: a link flap
/// makes the kernel flush the ARP cache, and it re-resolves only once a
/// second, so for up to a second after the link returns we hear our peers
/// but our own datagrams wait in the neighbour queue. With the usual
/// suspicion we would declare everyone down again and flap back to "alone"
/// just when our link works. Peers still detect *us* at the usual speed.
pub const REJOIN_GRACE: Duration = Duration::from_secs(3);
pub const REJOIN_GRACE_SUSPICION: Duration = Duration::from_millis(1200);

type Timer = foca::Timer<MemberId>;
type Swim = Foca<MemberId, PostcardCodec, StdRng, NoCustomBroadcast>;

/// Datagram and event counters, shared with the driver thread.
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    malformed: AtomicU64,
    rejected: AtomicU64,
    sent: AtomicU64,
    send_errors: AtomicU64,
    restarts: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams read from the socket.
    pub datagrams_received: u64,
    /// Dropped: not ours (envelope), too long, or undecodable.
    pub datagrams_malformed: u64,
    /// Decoded but refused by the protocol (e.g. claims to come from us).
    pub datagrams_rejected: u64,
    /// Datagrams handed to the socket.
    pub datagrams_sent: u64,
    /// Datagrams the socket refused (no route, buffer full, ...).
    pub send_errors: u64,
    /// Times we started afresh under a renewed identity after being cut off.
    pub restarts: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            datagrams_received: self.received.load(Relaxed),
            datagrams_malformed: self.malformed.load(Relaxed),
            datagrams_rejected: self.rejected.load(Relaxed),
            datagrams_sent: self.sent.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
        }
    }

    pub fn send_failed(&self) {
        self.send_errors.fetch_add(1, Relaxed);
    }
}

/// What foca asked for during one interaction (our [`Runtime`]).
#[derive(Default)]
struct Effects {
    sends: Vec<(SocketAddr, Bytes)>,
    timers: Vec<(Duration, Timer)>,
    membership_changed: bool,
    defunct: bool,
    buf: BytesMut,
}

impl Runtime<MemberId> for Effects {
    fn notify(&mut self, notification: Notification<'_, MemberId>) {
        // The live set is recomputed from foca's member list rather than
        // patched per notification, so a Rename (restart of a peer) can never
        // leave a stale entry behind.
        #[allow(unreachable_patterns)] // other foca features add variants
        match notification {
            Notification::MemberUp(id) => info!(member = %id, "member up"),
            Notification::MemberDown(id) => info!(member = %id, "member down"),
            Notification::Rename(old, new) => debug!(%old, %new, "member renewed its identity"),
            Notification::Active => info!("joined the cluster"),
            Notification::Idle => warn!("no other member is reachable"),
            Notification::Rejoin(id) => info!(as_ = %id, "declared down by peers, rejoined"),
            Notification::Defunct => self.defunct = true,
            _ => return,
        }
        self.membership_changed = true;
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        self.buf.reserve(ENVELOPE_LEN + data.len());
        self.buf.put_slice(&MAGIC);
        self.buf.put_u8(VERSION);
        self.buf.put_slice(data);
        self.sends
            .push((to.socket_addr(), self.buf.split().freeze()));
    }

    fn submit_after(&mut self, event: Timer, after: Duration) {
        self.timers.push((after, event));
    }
}

/// A timer waiting in the queue. Ordered by deadline, then by foca's own
/// order for events due together (an indirect probe must fire before the
/// next probe), then by submission.
struct Scheduled {
    at: Instant,
    timer: Timer,
    seq: u64,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.timer.cmp(&other.timer))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

struct SeedState {
    next_attempt: Instant,
    backoff: Duration,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Malformed,
    Rejected,
}

pub struct Core {
    node: String,
    swim: Swim,
    config: Config,
    /// Seeds the rng of each fresh foca instance.
    rng: StdRng,
    effects: Effects,
    timers: BinaryHeap<Reverse<Scheduled>>,
    timer_seq: u64,
    outbox: Vec<(SocketAddr, Bytes)>,
    live: BTreeSet<String>,
    seeds: BTreeMap<SocketAddr, SeedState>,
    next_rejoin: Instant,
    /// Set after a fresh restart until we hear a peer, see [`REJOIN_GRACE`].
    grace_pending: bool,
    grace_until: Option<Instant>,
    defunct: bool,
    left: bool,
    counters: Arc<Counters>,
}

impl Core {
    pub fn new(id: MemberId, mut rng: StdRng, now: Instant, counters: Arc<Counters>) -> Self {
        let config = config::for_cluster(1, ENVELOPE_LEN);
        let node = id.node().to_owned();
        let swim = Foca::new(
            id,
            config.clone(),
            StdRng::from_rng(&mut rng),
            PostcardCodec,
        );
        Self {
            live: BTreeSet::from([node.clone()]),
            node,
            swim,
            config,
            rng,
            effects: Effects::default(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            outbox: Vec::new(),
            seeds: BTreeMap::new(),
            next_rejoin: now + REJOIN_EVERY,
            grace_pending: false,
            grace_until: None,
            defunct: false,
            left: false,
            counters,
        }
    }

    /// Our current identity (it changes when we rejoin).
    pub fn identity(&self) -> &MemberId {
        self.swim.identity()
    }

    /// Node names of the active members, ourselves included. Suspects count
    /// as live: they have not been declared down and may yet refute.
    pub fn live(&self) -> &BTreeSet<String> {
        &self.live
    }

    /// Datagrams to send, with their destination.
    pub fn take_outbox(&mut self) -> Vec<(SocketAddr, Bytes)> {
        std::mem::take(&mut self.outbox)
    }

    /// When [`Core::on_tick`] must run next.
    pub fn next_deadline(&self) -> Instant {
        match self.timers.peek() {
            Some(Reverse(first)) => first.at.min(self.next_rejoin),
            None => self.next_rejoin,
        }
    }

    /// Current foca configuration (varies with the cluster size).
    #[cfg(test)]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds a received datagram. Anything wrong with it is counted and
    /// dropped; nothing in it can make us panic.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), Dropped> {
        self.counters.received.fetch_add(1, Relaxed);
        if self.left {
            return Ok(());
        }
        let verdict = match open_envelope(datagram) {
            None => Err(Dropped::Malformed),
            Some(payload) => match self.swim.handle_data(payload, &mut self.effects) {
                Ok(()) => Ok(()),
                Err(err) => {
                    debug!(error = %err, len = datagram.len(), "dropped datagram");
                    Err(classify(&err))
                }
            },
        };
        match verdict {
            Err(Dropped::Malformed) => self.counters.malformed.fetch_add(1, Relaxed),
            Err(Dropped::Rejected) => self.counters.rejected.fetch_add(1, Relaxed),
            Ok(()) => 0,
        };
        // Even a refused datagram may have changed state before the error.
        self.apply_effects(now);
        verdict
    }

    /// Fires every timer due at `now` and, once per [`REJOIN_EVERY`], knocks
    /// on seeds whose node is not live.
    pub fn on_tick(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while let Some(Reverse(first)) = self.timers.peek()
            && first.at <= now
        {
            let Some(Reverse(due)) = self.timers.pop() else {
                break;
            };
            if let Err(err) = self.swim.handle_timer(due.timer, &mut self.effects) {
                debug!(error = %err, "timer handling failed");
            }
            self.apply_effects(now);
        }
        if let Some(until) = self.grace_until
            && now >= until
        {
            self.grace_until = None;
            self.resize(now);
        }
        if now >= self.next_rejoin {
            self.next_rejoin = now + REJOIN_EVERY;
            self.rejoin(now);
        }
    }

    /// Replaces the seed list (addresses of every node's speaker; ours is
    /// ignored). New seeds are contacted at once.
    pub fn set_seeds(&mut self, now: Instant, seeds: &[SocketAddr]) {
        let me = self.identity().socket_addr();
        let wanted: BTreeSet<SocketAddr> = seeds.iter().copied().filter(|s| *s != me).collect();
        self.seeds.retain(|addr, _| wanted.contains(addr));
        for addr in wanted {
            self.seeds.entry(addr).or_insert(SeedState {
                next_attempt: now,
                backoff: REJOIN_EVERY,
            });
        }
        if !self.left {
            self.announce_to_seeds(now);
        }
    }

    /// Graceful exit: declares ourselves down to every active member at once
    /// (not just the few foca gossips to), so each can fail over without
    /// waiting for gossip. Calling it again repeats the message, which the
    /// driver does once in case a datagram is lost.
    pub fn leave(&mut self, now: Instant) {
        let members = self.swim.num_members();
        let mut config = self.config.clone();
        config.num_indirect_probes =
            std::num::NonZeroUsize::new(members.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        // Each message carries the update while it has transmissions left.
        config.max_transmissions = std::num::NonZeroU8::MAX;
        if let Err(err) = self.swim.set_config(config) {
            debug!(error = %err, "could not widen the leave fan-out");
        }
        if let Err(err) = self.swim.leave_cluster(&mut self.effects) {
            warn!(error = %err, "leaving the cluster failed");
        }
        self.left = true;
        self.timers.clear();
        self.apply_effects(now);
    }

    /// Turns what foca asked for into queued datagrams, timers and a fresh
    /// live set.
    fn apply_effects(&mut self, now: Instant) {
        let sent = self.effects.sends.len() as u64;
        self.counters.sent.fetch_add(sent, Relaxed);
        self.outbox.append(&mut self.effects.sends);
        if !self.left {
            for (after, timer) in self.effects.timers.drain(..) {
                self.timer_seq += 1;
                self.timers.push(Reverse(Scheduled {
                    at: now + after,
                    timer,
                    seq: self.timer_seq,
                }));
            }
        } else {
            self.effects.timers.clear();
        }
        if std::mem::take(&mut self.effects.defunct) && !self.left {
            // Only reachable if renew() gave up; rejoin() starts afresh.
            warn!("our identity is down and could not be renewed");
            self.defunct = true;
        }
        if std::mem::take(&mut self.effects.membership_changed) {
            if self.grace_pending && self.swim.num_members() > 0 {
                self.grace_pending = false;
                self.grace_until = Some(now + REJOIN_GRACE);
            }
            self.refresh_live();
            self.resize(now);
        }
    }

    fn refresh_live(&mut self) {
        let mut live = BTreeSet::from([self.node.clone()]);
        live.extend(self.swim.iter_members().map(|m| m.id().node().to_owned()));
        self.live = live;
    }

    /// The configuration for the current cluster size and grace period.
    fn wanted_config(&self, now: Instant) -> Config {
        let mut config = config::for_cluster(self.swim.num_members() + 1, ENVELOPE_LEN);
        if self.grace_until.is_some_and(|until| now < until) {
            config.suspect_to_down_after = config.suspect_to_down_after.max(REJOIN_GRACE_SUSPICION);
        }
        config
    }

    /// Re-tunes suspicion and retransmissions for the current cluster size.
    fn resize(&mut self, now: Instant) {
        let wanted = self.wanted_config(now);
        if config::differs(&self.config, &wanted) {
            match self.swim.set_config(wanted.clone()) {
                Ok(()) => self.config = wanted,
                Err(err) => warn!(error = %err, "could not resize the configuration"),
            }
        }
    }

    fn rejoin(&mut self, now: Instant) {
        // Alone, but still remembering peers as down (our link was cut, or
        // the cluster declared us down and we declared it down back): those
        // Down records are terminal in SWIM and would make us ignore the
        // very peers we need. Start afresh under a renewed identity; the
        // others see it replace our old one. Nothing is lost: we had no
        // active member anyway.
        let forgotten_peers =
            self.swim.num_members() == 0 && self.swim.iter_membership_state().next().is_some();
        if (self.defunct || forgotten_peers) && !self.seeds.is_empty() {
            self.restart_fresh(now);
        }
        self.announce_to_seeds(now);
    }

    fn restart_fresh(&mut self, now: Instant) {
        let old = self.identity().clone();
        let id = foca::Identity::renew(&old)
            .unwrap_or_else(|| MemberId::starting_now(old.node(), old.socket_addr()));
        info!(%old, new = %id, "cut off from every peer: rejoining under a new identity");
        self.grace_pending = true;
        self.grace_until = None;
        self.config = self.wanted_config(now);
        self.swim = Foca::new(
            id,
            self.config.clone(),
            StdRng::from_rng(&mut self.rng),
            PostcardCodec,
        );
        // The old instance's timers carry tokens the new one could mistake
        // for its own.
        self.timers.clear();
        self.defunct = false;
        self.counters.restarts.fetch_add(1, Relaxed);
        for seed in self.seeds.values_mut() {
            seed.next_attempt = now;
            seed.backoff = REJOIN_EVERY;
        }
        self.refresh_live();
    }

    /// Announces ourselves to each seed whose node is not live and whose
    /// backoff has elapsed.
    fn announce_to_seeds(&mut self, now: Instant) {
        let live: HashSet<SocketAddr> = self
            .swim
            .iter_members()
            .map(|m| m.id().socket_addr())
            .collect();
        let alone = live.is_empty();
        let mut due = Vec::new();
        for (addr, seed) in &mut self.seeds {
            if live.contains(addr) {
                seed.backoff = REJOIN_EVERY;
                seed.next_attempt = now;
                continue;
            }
            if seed.next_attempt > now {
                continue;
            }
            due.push(*addr);
            seed.next_attempt = now + seed.backoff;
            seed.backoff = if alone {
                REJOIN_EVERY
            } else {
                (seed.backoff * 2).min(SEED_BACKOFF_MAX)
            };
        }
        for addr in due {
            if let Err(err) = self.swim.announce(MemberId::seed(addr), &mut self.effects) {
                debug!(seed = %addr, error = %err, "announce failed");
            }
        }
        self.apply_effects(now);
    }
}

/// The foca payload inside a datagram, if the datagram is ours.
fn open_envelope(datagram: &[u8]) -> Option<&[u8]> {
    if datagram.len() > config::MAX_DATAGRAM {
        return None;
    }
    let payload = datagram.strip_prefix(&MAGIC)?;
    let (&version, payload) = payload.split_first()?;
    (version == VERSION).then_some(payload)
}

fn classify(err: &foca::Error) -> Dropped {
    match err {
        foca::Error::Decode(_) | foca::Error::MalformedPacket | foca::Error::DataTooBig => {
            Dropped::Malformed
        }
        _ => Dropped::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 210, last], 7946))
    }

    fn core(last: u8, now: Instant) -> Core {
        let id = MemberId::new(format!("node-{last}"), addr(last), 1000);
        Core::new(
            id,
            StdRng::seed_from_u64(u64::from(last)),
            now,
            Arc::default(),
        )
    }

    #[test]
    fn envelope_rejects_foreign_and_oversized_datagrams() {
        assert_eq!(open_envelope(b"FLBm\x01abc"), Some(&b"abc"[..]));
        assert_eq!(open_envelope(b"FLBm\x02abc"), None);
        assert_eq!(open_envelope(b"FLBm"), None);
        assert_eq!(open_envelope(b"\x00\x01\x02"), None);
        assert_eq!(open_envelope(&[]), None);
        let mut big = b"FLBm\x01".to_vec();
        big.resize(config::MAX_DATAGRAM + 1, 0);
        assert_eq!(open_envelope(&big), None);
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let now = Instant::now();
        let mut c = core(1, now);
        assert_eq!(c.handle_datagram(now, b"hello"), Err(Dropped::Malformed));
        assert_eq!(
            c.handle_datagram(now, b"FLBm\x01\xff\xff\xff\xff"),
            Err(Dropped::Malformed)
        );
        let stats = c.counters.snapshot();
        assert_eq!(stats.datagrams_received, 2);
        assert_eq!(stats.datagrams_malformed, 2);
        assert_eq!(c.live(), &BTreeSet::from(["node-1".to_owned()]));
    }

    #[test]
    fn seeds_are_announced_to_at_once_then_with_backoff() {
        let t0 = Instant::now();
        let mut c = core(1, t0);
        // Our own address is not a seed.
        c.set_seeds(t0, &[addr(1), addr(2), addr(3)]);
        let out = c.take_outbox();
        let dests: BTreeSet<_> = out.iter().map(|(a, _)| *a).collect();
        assert_eq!(dests, BTreeSet::from([addr(2), addr(3)]));
        assert!(out.iter().all(|(_, d)| d.starts_with(&MAGIC)));

        // Alone: knock every REJOIN_EVERY.
        for i in 1..=3 {
            c.on_tick(t0 + REJOIN_EVERY * i);
            assert_eq!(c.take_outbox().len(), 2, "tick {i}");
        }
        // An unchanged seed list does not trigger extra announces.
        c.set_seeds(t0 + REJOIN_EVERY * 3, &[addr(2), addr(3)]);
        assert!(c.take_outbox().is_empty());
        // A new seed is contacted immediately.
        c.set_seeds(t0 + REJOIN_EVERY * 3, &[addr(2), addr(3), addr(4)]);
        let out = c.take_outbox();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, addr(4));
    }

    #[test]
    fn timers_fire_in_deadline_then_foca_order() {
        let t0 = Instant::now();
        let mut heap = BinaryHeap::new();
        let probe = foca::Timer::ProbeRandomMember(0);
        let indirect = foca::Timer::SendIndirectProbe {
            probed_id: MemberId::seed(addr(2)),
            token: 0,
        };
        let late = foca::Timer::PeriodicGossip(0);
        for (seq, (at, timer)) in [
            (t0, probe),
            (t0, indirect),
            (t0 - Duration::from_millis(1), late),
        ]
        .into_iter()
        .enumerate()
        {
            heap.push(Reverse(Scheduled {
                at,
                timer,
                seq: seq as u64,
            }));
        }
        let order: Vec<_> = std::iter::from_fn(|| heap.pop().map(|Reverse(s)| s.seq)).collect();
        assert_eq!(order, vec![2, 1, 0]);
    }
}
