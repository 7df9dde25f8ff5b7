//! The sans-IO membership state machine: foca plus everything we decide
//! around it (authentication, vetting, timer queue, live set, seeds,
//! restarts).
//!
//! Time only comes in through `now` arguments (and the [`WallClock`] the
//! core is built with) and bytes only go out through [`Core::take_outbox`],
//! so tests drive several cores in memory with a fake clock. The tokio shell
//! (`driver.rs`) just moves datagrams and sleeps until
//! [`Core::next_deadline`].
//!
//! A received datagram goes through, in order, each step cheaper than the
//! next and nothing parsed before the MAC is verified: the source must be a
//! known node address ([`Roster`]); the MAC ([`seal::open`]); the seq's age
//! and replay window ([`seal::check_time`], [`ReplayWindow`], per known
//! address only); what it claims ([`vet::vet`]); and only then foca.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use foca::{Config, Foca, NoCustomBroadcast, Notification, PostcardCodec, Runtime};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing::{debug, info, warn};

use super::config;
use super::identity::MemberId;
use super::keys::KeyRing;
use super::reject::{RateLimitedLog, Reason};
use super::seal::{self, OpenError, ReplayWindow, SeqCounter, SeqError};
use super::stats::Counters;
use super::timers::{Timer, TimerQueue};
use super::vet::{self, Roster, Seed, Vetted};

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

/// Bytes around each foca payload; foca's packet limit leaves room for them
/// (the plain format is shorter, the limit the same).
pub const ENVELOPE_LEN: usize = seal::OVERHEAD;

/// Our wall clock in µs since the epoch at the given instant: sequence
/// numbers, their age, and the identity-counter ceiling. Tests derive it from
/// their fake clock.
pub type WallClock = Arc<dyn Fn(Instant) -> u64 + Send + Sync>;

/// How datagrams are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    /// HMAC-SHA256 under these keys (see [`seal`]).
    Keys(KeyRing),
    /// None (`--insecure-membership`): plain datagrams only.
    Insecure,
}

type Swim = Foca<MemberId, PostcardCodec, StdRng, NoCustomBroadcast>;

/// What foca asked for during one interaction (our [`Runtime`]). Payloads
/// are framed (sealed) in [`Core::apply_effects`], which has the keys.
#[derive(Default)]
struct Effects {
    sends: Vec<(SocketAddr, Bytes)>,
    timers: Vec<(Duration, Timer)>,
    membership_changed: bool,
    defunct: bool,
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
        self.sends
            .push((to.socket_addr(), Bytes::copy_from_slice(data)));
    }

    fn submit_after(&mut self, event: Timer, after: Duration) {
        self.timers.push((after, event));
    }
}

struct SeedState {
    next_attempt: Instant,
    backoff: Duration,
}

pub struct Core {
    node: String,
    swim: Swim,
    config: Config,
    /// Seeds the rng of each fresh foca instance.
    rng: StdRng,
    effects: Effects,
    timers: TimerQueue,
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
    auth: Auth,
    wall: WallClock,
    seq: SeqCounter,
    /// Every Node's membership address and name, ours included.
    roster: Roster,
    /// Replay state per known node address (bounded by the roster).
    windows: BTreeMap<SocketAddr, ReplayWindow>,
    log: RateLimitedLog,
    frame: BytesMut,
}

impl Core {
    pub fn new(
        id: MemberId,
        mut rng: StdRng,
        now: Instant,
        counters: Arc<Counters>,
        auth: Auth,
        wall: WallClock,
    ) -> Self {
        let config = config::for_cluster(1, ENVELOPE_LEN);
        let node = id.node().to_owned();
        let swim = Foca::new(
            id,
            config.clone(),
            StdRng::from_rng(&mut rng),
            PostcardCodec,
        );
        let roster = Roster::new(&[Seed::new(node.clone(), id_addr(&swim))]);
        Self {
            live: BTreeSet::from([node.clone()]),
            node,
            swim,
            config,
            rng,
            effects: Effects::default(),
            timers: TimerQueue::default(),
            outbox: Vec::new(),
            seeds: BTreeMap::new(),
            next_rejoin: now + REJOIN_EVERY,
            grace_pending: false,
            grace_until: None,
            defunct: false,
            left: false,
            counters,
            auth,
            wall,
            seq: SeqCounter::default(),
            roster,
            windows: BTreeMap::new(),
            log: RateLimitedLog::default(),
            frame: BytesMut::new(),
        }
    }

    /// Replaces the keys (the key file changed). Ignored when insecure.
    pub fn set_keys(&mut self, ring: KeyRing) {
        if let Auth::Keys(current) = &mut self.auth {
            *current = ring;
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
        match self.timers.next_at() {
            Some(at) => at.min(self.next_rejoin),
            None => self.next_rejoin,
        }
    }

    /// Current foca configuration (varies with the cluster size).
    #[cfg(test)]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds a datagram received from `from`. Anything wrong with it is
    /// counted, logged at a bounded rate and dropped; nothing in it can make
    /// us panic, and nothing is decoded before it is authenticated.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Reason> {
        self.counters.received.fetch_add(1, Relaxed);
        if self.left {
            return Ok(());
        }
        match self.admit(now, from, datagram) {
            Ok(()) => {
                // Even a refused datagram may have changed state before the error.
                self.apply_effects(now);
                Ok(())
            }
            Err(refusal) => {
                self.counters.rejected.add(refusal.reason);
                self.log.note(now, refusal.reason, from, &refusal.detail);
                self.apply_effects(now);
                Err(refusal.reason)
            }
        }
    }

    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), vet::Refusal> {
        let refuse = |reason, detail: String| vet::Refusal { reason, detail };
        if !self.roster.knows(&from) {
            return Err(refuse(
                Reason::NotANode,
                format!(
                    "{} bytes from an address that is not a node's",
                    datagram.len()
                ),
            ));
        }
        let me = self.identity().socket_addr();
        let wall = (self.wall)(now);
        let payload = match &self.auth {
            Auth::Insecure => {
                seal::open_plain(datagram).map_err(|e| open_refusal(e, &self.auth))?
            }
            Auth::Keys(ring) => {
                let opened = seal::open(ring, from, me, datagram)
                    .map_err(|e| open_refusal(e, &self.auth))?;
                seal::check_time(opened.seq, wall).map_err(seq_refusal)?;
                self.windows
                    .entry(from)
                    .or_default()
                    .accept(opened.seq)
                    .map_err(seq_refusal)?;
                opened.payload
            }
        };
        let trimmed = match vet::vet(payload, from, &self.roster, wall)? {
            Vetted::AsIs => None,
            Vetted::Trimmed(rest, refusal) => {
                // The message itself goes on without the refused updates.
                self.counters.rejected.add(refusal.reason);
                self.log.note(now, refusal.reason, from, &refusal.detail);
                Some(rest)
            }
        };
        let payload = trimmed.as_deref().unwrap_or(payload);
        self.swim
            .handle_data(payload, &mut self.effects)
            .map_err(|err| {
                let reason = match err {
                    foca::Error::Decode(_)
                    | foca::Error::MalformedPacket
                    | foca::Error::DataTooBig => Reason::Malformed,
                    _ => Reason::Protocol,
                };
                refuse(reason, format!("refused by SWIM: {err}"))
            })
    }

    /// Fires every timer due at `now` and, once per [`REJOIN_EVERY`], knocks
    /// on seeds whose node is not live.
    pub fn on_tick(&mut self, now: Instant) {
        if self.left {
            return;
        }
        while let Some(timer) = self.timers.pop_due(now) {
            if let Err(err) = self.swim.handle_timer(timer, &mut self.effects) {
                debug!(error = %err, "timer handling failed");
            }
            self.apply_effects(now);
        }
        self.log.flush(now);
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

    /// Replaces the seed list: every Node's name and membership address
    /// (ours is skipped as a seed). Only these addresses are heard, answered
    /// and probed, and only under these names. New seeds are contacted at
    /// once.
    pub fn set_seeds(&mut self, now: Instant, seeds: &[Seed]) {
        let me = self.identity().socket_addr();
        let mut roster: Vec<Seed> = seeds.iter().filter(|s| s.addr != me).cloned().collect();
        let wanted: BTreeSet<SocketAddr> = roster.iter().map(|s| s.addr).collect();
        roster.push(Seed::new(self.node.clone(), me));
        self.roster = Roster::new(&roster);
        self.windows.retain(|addr, _| wanted.contains(addr));
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
        if !self.effects.sends.is_empty() {
            let me = self.identity().socket_addr();
            let wall = (self.wall)(now);
            for (to, payload) in std::mem::take(&mut self.effects.sends) {
                // Vetting keeps foca to known members; this makes sure.
                if !self.roster.knows(&to) || to == me {
                    self.counters.unroutable.fetch_add(1, Relaxed);
                    debug!(%to, "not sending to an address that is not a node's");
                    continue;
                }
                match &self.auth {
                    Auth::Keys(ring) => {
                        let seq = self.seq.next(wall);
                        seal::seal(ring, seq, me, to, &payload, &mut self.frame);
                    }
                    Auth::Insecure => seal::plain(&payload, &mut self.frame),
                }
                self.outbox.push((to, self.frame.split().freeze()));
                self.counters.sent.fetch_add(1, Relaxed);
            }
        }
        if !self.left {
            for (after, timer) in self.effects.timers.drain(..) {
                self.timers.push(now + after, timer);
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

fn id_addr(swim: &Swim) -> SocketAddr {
    swim.identity().socket_addr()
}

fn open_refusal(err: OpenError, auth: &Auth) -> vet::Refusal {
    let (reason, detail) = match (err, auth) {
        (OpenError::Malformed, _) => (
            Reason::Malformed,
            "not a FerroLB membership datagram".to_owned(),
        ),
        (OpenError::Unauthenticated, _) => (
            Reason::Unauthenticated,
            "unauthenticated (is the sender running with --insecure-membership?)".to_owned(),
        ),
        (OpenError::UnknownKey, Auth::Insecure) => (
            Reason::UnknownKey,
            "authenticated, but we run with --insecure-membership and hold no key".to_owned(),
        ),
        (OpenError::UnknownKey, Auth::Keys(ring)) => (
            Reason::UnknownKey,
            format!("signed with a key we do not hold (ours: {:?})", ring.ids()),
        ),
        (OpenError::BadMac, _) => (Reason::BadMac, "MAC does not match".to_owned()),
    };
    vet::Refusal { reason, detail }
}

fn seq_refusal(err: SeqError) -> vet::Refusal {
    let (reason, detail) = match err {
        SeqError::Replay => (
            Reason::Replay,
            "sequence number already seen (replay)".to_owned(),
        ),
        SeqError::TooOld { by } => (
            Reason::TooOld,
            format!(
                "sealed {:.1}s ago (limit {}s): a replay, or the sender's clock is behind ours",
                by.as_secs_f64(),
                seal::MAX_AGE.as_secs()
            ),
        ),
        SeqError::FromFuture { by } => (
            Reason::FromFuture,
            format!(
                "sealed {:.1}s in the future (limit {}s): the sender's clock is ahead of ours; \
                 keep node clocks in sync (NTP)",
                by.as_secs_f64(),
                seal::MAX_AHEAD.as_secs()
            ),
        ),
    };
    vet::Refusal { reason, detail }
}

/// Test fixtures shared with the simulation.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// Wall clock µs at the fake clock's start: the real clock when the test process first asks,
    /// because identity renewal (`MemberId::renew`, called inside foca) reads the real clock, and
    /// identities more than a minute ahead of the fake one would be refused.
    pub fn wall_t0() -> u64 {
        static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *BASE.get_or_init(super::super::identity::now_micros)
    }

    pub fn ring() -> KeyRing {
        KeyRing::new(&[[0x5a_u8; 32]]).expect("valid key")
    }

    pub fn keyed() -> Auth {
        Auth::Keys(ring())
    }

    /// A wall clock that advances with the fake `Instant`s, from [`wall_t0`].
    pub fn wall(t0: Instant) -> WallClock {
        Arc::new(move |now: Instant| {
            let since = now.saturating_duration_since(t0).as_micros();
            wall_t0() + u64::try_from(since).unwrap_or(u64::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{keyed, ring, wall, wall_t0};
    use super::*;
    use foca::{Codec, Header, Member, Message};

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 210, last], 7946))
    }

    fn seeds(lasts: &[u8]) -> Vec<Seed> {
        lasts
            .iter()
            .map(|&l| Seed::new(format!("node-{l}"), addr(l)))
            .collect()
    }

    fn id(last: u8) -> MemberId {
        MemberId::new(format!("node-{last}"), addr(last), 1000)
    }

    fn core_with(last: u8, now: Instant, auth: Auth) -> Core {
        Core::new(
            id(last),
            StdRng::seed_from_u64(u64::from(last)),
            now,
            Arc::default(),
            auth,
            wall(now),
        )
    }

    fn core(last: u8, now: Instant) -> Core {
        core_with(last, now, keyed())
    }

    /// Two cores that know each other; returns them joined.
    fn pair(t0: Instant) -> (Core, Core) {
        let (mut a, mut b) = (core(1, t0), core(2, t0));
        a.set_seeds(t0, &seeds(&[1, 2]));
        b.set_seeds(t0, &seeds(&[1, 2]));
        for _ in 0..4 {
            for (to, d) in a.take_outbox() {
                assert_eq!(to, addr(2));
                let _ = b.handle_datagram(t0, addr(1), &d);
            }
            for (to, d) in b.take_outbox() {
                assert_eq!(to, addr(1));
                let _ = a.handle_datagram(t0, addr(2), &d);
            }
        }
        assert_eq!(a.live().len(), 2);
        assert_eq!(b.live().len(), 2);
        (a, b)
    }

    fn rejected(c: &Core, r: Reason) -> u64 {
        c.counters.snapshot().rejected.get(r)
    }

    /// A datagram from node-2 to node-1 saying `members`, sealed with `ring`
    /// (or plain) at wall time `seq`.
    fn forged(
        src: MemberId,
        members: &[Member<MemberId>],
        ring: Option<&KeyRing>,
        seq: u64,
    ) -> Vec<u8> {
        let header = Header {
            src,
            src_incarnation: 0,
            dst: id(1),
            message: Message::Gossip,
        };
        let mut payload = Vec::new();
        foca::PostcardCodec
            .encode_header(&header, &mut payload)
            .expect("encode");
        payload.extend_from_slice(&u16::try_from(members.len()).expect("few").to_be_bytes());
        for m in members {
            foca::PostcardCodec
                .encode_member(m, &mut payload)
                .expect("encode");
        }
        let mut out = BytesMut::new();
        match ring {
            Some(r) => seal::seal(r, seq, addr(2), addr(1), &payload, &mut out),
            None => seal::plain(&payload, &mut out),
        }
        out.to_vec()
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let now = Instant::now();
        let mut c = core(1, now);
        c.set_seeds(now, &seeds(&[1, 2]));
        assert_eq!(
            c.handle_datagram(now, addr(2), b"hello"),
            Err(Reason::Malformed)
        );
        assert_eq!(
            c.handle_datagram(now, addr(2), b"FLBm\x01\xff\xff\xff\xff"),
            Err(Reason::Unauthenticated)
        );
        let mut junk = b"FLBm\x02".to_vec();
        junk.resize(100, 0xff);
        assert_eq!(
            c.handle_datagram(now, addr(2), &junk),
            Err(Reason::UnknownKey)
        );
        assert_eq!(
            c.handle_datagram(now, addr(9), b"FLBm\x02"),
            Err(Reason::NotANode)
        );
        let stats = c.counters.snapshot();
        assert_eq!(stats.datagrams_received, 4);
        assert_eq!(stats.rejected.total(), 4);
        assert_eq!(c.live(), &BTreeSet::from(["node-1".to_owned()]));
    }

    #[test]
    fn forged_down_is_refused_and_the_real_one_is_heard() {
        let t0 = Instant::now();
        let (mut a, _b) = pair(t0);
        let wall_now = wall_t0() + 10_000;
        let down = |id: MemberId| Member::new(id, 1, foca::State::Down);
        let huge = MemberId::new("node-2", addr(2), u64::MAX);
        // Unauthenticated, with the wrong key, or claiming node-2 down with
        // an unbeatable counter: none gets through.
        let other = KeyRing::new(&[[0x11_u8; 32]]).expect("key");
        let cases = [
            (
                forged(id(2), &[down(id(2))], None, wall_now),
                Reason::Unauthenticated,
            ),
            (
                forged(id(2), &[down(id(2))], Some(&other), wall_now),
                Reason::UnknownKey,
            ),
            (
                forged(huge.clone(), &[down(id(2))], Some(&ring()), wall_now),
                Reason::BumpAhead,
            ),
        ];
        for (d, why) in cases {
            assert_eq!(a.handle_datagram(t0, addr(2), &d), Err(why));
        }
        assert_eq!(a.live().len(), 2);
        // A key holder's update with a huge counter is dropped from the
        // message; the message itself (from the real node) still counts.
        let d = forged(id(2), &[down(huge)], Some(&ring()), wall_now + 1);
        assert_eq!(a.handle_datagram(t0, addr(2), &d), Ok(()));
        assert_eq!(rejected(&a, Reason::BumpAhead), 2);
        assert_eq!(a.live().len(), 2);
    }

    #[test]
    fn replays_and_stale_datagrams_are_refused() {
        let t0 = Instant::now();
        let (mut a, mut b) = pair(t0);
        let t1 = t0 + Duration::from_millis(100);
        b.on_tick(t1 + Duration::from_secs(1));
        let out = b.take_outbox();
        let (_, d) = out
            .iter()
            .find(|(to, _)| *to == addr(1))
            .expect("b talks to a");
        assert_eq!(a.handle_datagram(t1, addr(2), d), Ok(()));
        assert_eq!(a.handle_datagram(t1, addr(2), d), Err(Reason::Replay));
        // Accepted datagrams are only valid for the address pair they were
        // sealed for.
        let mut c = core(3, t0);
        c.set_seeds(t0, &seeds(&[1, 2, 3]));
        assert_eq!(c.handle_datagram(t1, addr(2), d), Err(Reason::BadMac));
        // A restarted receiver has no replay state, but the age limit holds.
        let mut fresh = core(1, t0);
        fresh.set_seeds(t0, &seeds(&[1, 2]));
        let late = t1 + seal::MAX_AGE + Duration::from_secs(2);
        assert_eq!(fresh.handle_datagram(late, addr(2), d), Err(Reason::TooOld));
        // A sender whose clock runs ahead is refused, and said so.
        let ahead = forged(id(2), &[], Some(&ring()), wall_t0() + 90_000_000);
        assert_eq!(
            fresh.handle_datagram(t0, addr(2), &ahead),
            Err(Reason::FromFuture)
        );
    }

    #[test]
    fn impostors_and_unknown_sources_are_refused() {
        let t0 = Instant::now();
        let (mut a, _b) = pair(t0);
        // Sealed by a key holder, from node-2's address, claiming to be node-3.
        let n3 = MemberId::new("node-3", addr(2), 1000);
        let d = forged(n3, &[], Some(&ring()), wall_t0() + 20_000);
        assert_eq!(
            a.handle_datagram(t0, addr(2), &d),
            Err(Reason::IdentityMismatch)
        );
        // A fake member with a real name at another address is dropped.
        let fake = MemberId::new("node-2", addr(7), wall_t0());
        let d = forged(
            id(2),
            &[Member::alive(fake)],
            Some(&ring()),
            wall_t0() + 20_001,
        );
        assert_eq!(a.handle_datagram(t0, addr(2), &d), Ok(()));
        assert_eq!(rejected(&a, Reason::IdentityMismatch), 1);
        assert_eq!(rejected(&a, Reason::UnknownMember), 1);
        assert_eq!(
            a.live(),
            &BTreeSet::from(["node-1".to_owned(), "node-2".to_owned()])
        );
        assert_eq!(a.handle_datagram(t0, addr(7), &d), Err(Reason::NotANode));
    }

    #[test]
    fn key_rotation_keeps_talking() {
        let t0 = Instant::now();
        let (mut a, mut b) = pair(t0);
        let old = [0x5a_u8; 32];
        let new = [0x77_u8; 32];
        let step = |a: &mut Core, b: &mut Core, at: Instant| {
            a.on_tick(at);
            b.on_tick(at);
            let mut refused = 0;
            for (_, d) in a.take_outbox() {
                refused += usize::from(b.handle_datagram(at, addr(1), &d).is_err());
            }
            for (_, d) in b.take_outbox() {
                refused += usize::from(a.handle_datagram(at, addr(2), &d).is_err());
            }
            refused
        };
        let phases = [
            (vec![old, new], vec![old]),      // new key added on a only
            (vec![old, new], vec![old, new]), // everywhere
            (vec![new, old], vec![old, new]), // a signs with it first
            (vec![new, old], vec![new, old]), // everyone does
            (vec![new], vec![new, old]),      // old removed on a
            (vec![new], vec![new]),           // everywhere
        ];
        let mut at = t0;
        for (ka, kb) in phases {
            a.set_keys(KeyRing::new(&ka).expect("keys"));
            b.set_keys(KeyRing::new(&kb).expect("keys"));
            for _ in 0..30 {
                at += Duration::from_millis(20);
                assert_eq!(step(&mut a, &mut b, at), 0);
            }
            assert_eq!(a.live().len(), 2);
            assert_eq!(b.live().len(), 2);
        }
    }

    #[test]
    fn insecure_mode_talks_plain_and_still_vets() {
        let t0 = Instant::now();
        let mut a = core_with(1, t0, Auth::Insecure);
        a.set_seeds(t0, &seeds(&[1, 2]));
        let out = a.take_outbox();
        assert!(out.iter().all(|(_, d)| d.starts_with(b"FLBm\x01")));
        let d = forged(id(2), &[], Some(&ring()), wall_t0());
        assert_eq!(a.handle_datagram(t0, addr(2), &d), Err(Reason::UnknownKey));
        let d = forged(id(2), &[], None, 0);
        assert_eq!(a.handle_datagram(t0, addr(2), &d), Ok(()));
        assert_eq!(a.handle_datagram(t0, addr(9), &d), Err(Reason::NotANode));
    }

    #[test]
    fn seeds_are_announced_to_at_once_then_with_backoff() {
        let t0 = Instant::now();
        let mut c = core(1, t0);
        // Our own address is not a seed.
        c.set_seeds(t0, &seeds(&[1, 2, 3]));
        let out = c.take_outbox();
        let dests: BTreeSet<_> = out.iter().map(|(a, _)| *a).collect();
        assert_eq!(dests, BTreeSet::from([addr(2), addr(3)]));
        assert!(out.iter().all(|(_, d)| d.starts_with(b"FLBm\x02")));

        // Alone: knock every REJOIN_EVERY.
        for i in 1..=3 {
            c.on_tick(t0 + REJOIN_EVERY * i);
            assert_eq!(c.take_outbox().len(), 2, "tick {i}");
        }
        // An unchanged seed list does not trigger extra announces.
        c.set_seeds(t0 + REJOIN_EVERY * 3, &seeds(&[2, 3]));
        assert!(c.take_outbox().is_empty());
        // A new seed is contacted immediately.
        c.set_seeds(t0 + REJOIN_EVERY * 3, &seeds(&[2, 3, 4]));
        let out = c.take_outbox();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, addr(4));
    }
}
