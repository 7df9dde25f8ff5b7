//! Why datagrams are dropped: counted per reason (for the metric
//! `ferrolb_membership_rejected_total{reason}`) and logged at most once per
//! reason per [`LOG_EVERY`], with the count, so hostile input costs bounded
//! log volume.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::warn;

/// At most one warning per reason this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The source address is not a known node's membership address.
    NotANode,
    /// Not ours, truncated, oversized or undecodable.
    Malformed,
    /// A plain (unauthenticated) datagram while we authenticate.
    Unauthenticated,
    /// Sealed with a key we do not hold.
    UnknownKey,
    /// The MAC does not match: forged, tampered, or replayed to another
    /// address.
    BadMac,
    /// A sequence number already accepted (replay).
    Replay,
    /// Sealed too long ago.
    TooOld,
    /// Sealed in the future: the sender's clock is ahead of ours.
    FromFuture,
    /// The sender's identity does not match its address and Node.
    IdentityMismatch,
    /// Names a member that is not a Node at that address (the member is
    /// dropped from the message, or the message refused if it is a probe
    /// target).
    UnknownMember,
    /// An identity counter too far ahead of the clock.
    BumpAhead,
    /// Refused by the SWIM protocol itself.
    Protocol,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::NotANode,
        Reason::Malformed,
        Reason::Unauthenticated,
        Reason::UnknownKey,
        Reason::BadMac,
        Reason::Replay,
        Reason::TooOld,
        Reason::FromFuture,
        Reason::IdentityMismatch,
        Reason::UnknownMember,
        Reason::BumpAhead,
        Reason::Protocol,
    ];
    pub const COUNT: usize = Reason::ALL.len();

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::NotANode => "not_a_node",
            Reason::Malformed => "malformed",
            Reason::Unauthenticated => "unauthenticated",
            Reason::UnknownKey => "unknown_key",
            Reason::BadMac => "bad_mac",
            Reason::Replay => "replay",
            Reason::TooOld => "too_old",
            Reason::FromFuture => "from_future",
            Reason::IdentityMismatch => "identity_mismatch",
            Reason::UnknownMember => "unknown_member",
            Reason::BumpAhead => "bump_ahead",
            Reason::Protocol => "protocol",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Rejection counters, shared with the speaker's metrics.
#[derive(Debug, Default)]
pub struct RejectCounters([AtomicU64; Reason::COUNT]);

impl RejectCounters {
    pub fn add(&self, reason: Reason) {
        self.0[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Rejected {
        Rejected(std::array::from_fn(|i| self.0[i].load(Relaxed)))
    }
}

/// Rejections so far, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected([u64; Reason::COUNT]);

impl Rejected {
    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with its count, zero or not (so the metric shows all).
    pub fn iter(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.iter().map(|&r| (r, self.get(r)))
    }
}

/// Per reason: when we last warned and how many were dropped silently since.
#[derive(Debug, Default)]
pub struct RateLimitedLog {
    last: [Option<Instant>; Reason::COUNT],
    quiet: [u64; Reason::COUNT],
}

impl RateLimitedLog {
    /// Records one rejection; warns if this reason has been quiet for
    /// [`LOG_EVERY`]. Returns whether it warned (for tests).
    pub fn note(
        &mut self,
        now: Instant,
        reason: Reason,
        from: SocketAddr,
        detail: &dyn std::fmt::Display,
    ) -> bool {
        let i = reason.index();
        self.quiet[i] += 1;
        let due = self.last[i].is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        if due {
            warn!(
                reason = reason.label(),
                %from,
                dropped = self.quiet[i],
                "membership datagram rejected: {detail} (at most one such warning per {}s; \
                 `dropped` counts them since the last)",
                LOG_EVERY.as_secs()
            );
            self.last[i] = Some(now);
            self.quiet[i] = 0;
        }
        due
    }

    /// Reports reasons that were dropped silently and have been quiet for
    /// [`LOG_EVERY`], so the tail of a burst is not lost.
    pub fn flush(&mut self, now: Instant) {
        for r in Reason::ALL {
            let i = r.index();
            if self.quiet[i] > 0
                && self.last[i].is_some_and(|at| now.saturating_duration_since(at) >= LOG_EVERY)
            {
                warn!(
                    reason = r.label(),
                    dropped = self.quiet[i],
                    "more membership datagrams rejected since the last warning"
                );
                self.last[i] = Some(now);
                self.quiet[i] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_indexes_dense() {
        let labels: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Reason::COUNT);
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn one_warning_per_reason_per_period() {
        let t0 = Instant::now();
        let from = SocketAddr::from(([198, 18, 0, 9], 7946));
        let mut log = RateLimitedLog::default();
        let warned: usize = (0..10_000u64)
            .map(|i| {
                let now = t0 + Duration::from_millis(i * 3); // 30 s of flood
                usize::from(log.note(now, Reason::BadMac, from, &"x"))
            })
            .sum();
        assert_eq!(warned, 3);
        assert!(
            log.note(t0, Reason::Replay, from, &"x"),
            "other reasons have their own budget"
        );
    }

    #[test]
    fn counters_count_per_reason() {
        let c = RejectCounters::default();
        c.add(Reason::Replay);
        c.add(Reason::Replay);
        c.add(Reason::NotANode);
        let s = c.snapshot();
        assert_eq!(s.get(Reason::Replay), 2);
        assert_eq!(s.total(), 3);
        assert_eq!(s.iter().count(), Reason::COUNT);
    }
}
