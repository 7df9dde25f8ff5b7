//! When to report a refusal. Pools and Services arrive through separate watches, so a Service
//! applied together with its pool (one `kubectl apply -f`, a Helm release) is often decided
//! before the pool is seen, and would get a Warning (`PoolNotUsable`, `NoPoolForFamily`...) a
//! moment before it is allocated from that very pool. A Service's first refusal is therefore held
//! back for [`SETTLE`] and decided again; only a refusal that outlives it is reported. Pure: the
//! decision loop passes the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::decide::Decision;

/// How long a Service's first refusal is held back: far longer than a watch takes to deliver a
/// configuration object created at the same time (milliseconds), short enough that a real
/// problem is reported at once by human standards.
pub const SETTLE: Duration = Duration::from_secs(3);

/// Refusals that no configuration change can cure: reported at once.
const FINAL_REASONS: [&str; 1] = ["InvalidRequest"];

/// What to do with a decision.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// Write it (a grant, or a refusal that is final or has outlived the grace).
    Now,
    /// Hold it; decide the Service again at this instant. `first` is true when the hold
    /// starts, so the caller schedules exactly one revisit.
    HoldUntil { at: Instant, first: bool },
}

/// Services whose refusal is being held, since when.
#[derive(Debug, Default)]
pub(crate) struct Settling {
    held: BTreeMap<String, Instant>,
}

impl Settling {
    /// `shows_refusal`: the Service already shows a refusal (reported before, or by a previous
    /// leader), so there is no false alarm to avoid.
    pub fn judge(
        &mut self,
        key: &str,
        decision: &Decision,
        shows_refusal: bool,
        now: Instant,
    ) -> Report {
        if decision.ok || shows_refusal || FINAL_REASONS.contains(&decision.reason) {
            self.held.remove(key);
            return Report::Now;
        }
        match self.held.get(key) {
            Some(since) if now.duration_since(*since) >= SETTLE => {
                self.held.remove(key);
                Report::Now
            }
            Some(since) => Report::HoldUntil {
                at: *since + SETTLE,
                first: false,
            },
            None => {
                self.held.insert(key.to_string(), now);
                Report::HoldUntil {
                    at: now + SETTLE,
                    first: true,
                }
            }
        }
    }

    /// The Service is gone or no longer ours.
    pub fn forget(&mut self, key: &str) {
        self.held.remove(key);
    }

    /// Leadership lost: the next leader starts its own clock.
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(ok: bool, reason: &'static str) -> Decision {
        Decision {
            ips: vec![],
            pool: None,
            ok,
            reason,
            message: String::new(),
        }
    }

    #[test]
    fn a_first_refusal_is_held_then_reported_if_it_lasts() {
        let mut s = Settling::default();
        let t0 = Instant::now();
        let refused = decision(false, "PoolNotUsable");
        assert_eq!(
            s.judge("a/b", &refused, false, t0),
            Report::HoldUntil {
                at: t0 + SETTLE,
                first: true
            }
        );
        // Decided again early (another event): still held, no second revisit.
        assert_eq!(
            s.judge("a/b", &refused, false, t0 + Duration::from_secs(1)),
            Report::HoldUntil {
                at: t0 + SETTLE,
                first: false
            }
        );
        assert_eq!(s.judge("a/b", &refused, false, t0 + SETTLE), Report::Now);
        // Reported: a later refusal of the same Service starts a new hold only after it was
        // granted in between (it now shows the refusal, so it is reported at once).
        assert_eq!(s.judge("a/b", &refused, true, t0 + SETTLE * 2), Report::Now);
    }

    #[test]
    fn the_pool_arriving_within_the_grace_means_no_report_of_the_refusal() {
        let mut s = Settling::default();
        let t0 = Instant::now();
        assert!(matches!(
            s.judge("a/b", &decision(false, "PoolNotUsable"), false, t0),
            Report::HoldUntil { .. }
        ));
        let granted = decision(true, "IPAllocated");
        assert_eq!(
            s.judge("a/b", &granted, false, t0 + Duration::from_millis(50)),
            Report::Now
        );
        // The hold is gone: a refusal much later is a new first refusal.
        assert!(matches!(
            s.judge(
                "a/b",
                &decision(false, "PoolExhausted"),
                false,
                t0 + SETTLE * 5
            ),
            Report::HoldUntil { first: true, .. }
        ));
    }

    #[test]
    fn final_and_already_shown_refusals_are_reported_at_once() {
        let mut s = Settling::default();
        let t0 = Instant::now();
        assert_eq!(
            s.judge("a/b", &decision(false, "InvalidRequest"), false, t0),
            Report::Now
        );
        assert_eq!(
            s.judge("a/c", &decision(false, "PoolExhausted"), true, t0),
            Report::Now
        );
    }

    #[test]
    fn forgotten_and_cleared_services_start_over() {
        let mut s = Settling::default();
        let t0 = Instant::now();
        let refused = decision(false, "NoPoolForFamily");
        s.judge("a/b", &refused, false, t0);
        s.forget("a/b");
        assert!(matches!(
            s.judge("a/b", &refused, false, t0 + SETTLE),
            Report::HoldUntil { first: true, .. }
        ));
        s.clear();
        assert!(matches!(
            s.judge("a/b", &refused, false, t0 + SETTLE * 2),
            Report::HoldUntil { first: true, .. }
        ));
    }
}
