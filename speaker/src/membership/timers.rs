//! foca's timers in the order they are due: by deadline, then by foca's own order for timers due
//! together (an indirect probe must fire before the next probe), then by submission. Sans-IO:
//! the core pops what is due at the `now` it is given.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

use super::identity::MemberId;

pub type Timer = foca::Timer<MemberId>;

/// The timers foca asked for, not yet fired.
#[derive(Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    /// Submissions so far (orders timers equal in deadline and kind).
    submitted: u64,
}

impl TimerQueue {
    pub fn push(&mut self, at: Instant, timer: Timer) {
        self.submitted += 1;
        self.heap.push(Reverse(Scheduled {
            at,
            timer,
            seq: self.submitted,
        }));
    }

    /// The earliest deadline, if any timer waits.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(first)| first.at)
    }

    /// The next timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next_at()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(due)| due.timer)
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

/// A timer waiting in the queue, ordered as the module says.
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn timers_fire_in_deadline_then_foca_order() {
        let t0 = Instant::now();
        let mut queue = TimerQueue::default();
        let probe = foca::Timer::ProbeRandomMember(0);
        let indirect = foca::Timer::SendIndirectProbe {
            probed_id: MemberId::seed(SocketAddr::from(([198, 18, 210, 2], 7946))),
            token: 0,
        };
        let late = foca::Timer::PeriodicGossip(0);
        for (at, timer) in [
            (t0, probe.clone()),
            (t0, indirect.clone()),
            (t0 - Duration::from_millis(1), late.clone()),
        ] {
            queue.push(at, timer);
        }
        let order: Vec<_> = std::iter::from_fn(|| queue.pop_due(t0)).collect();
        assert_eq!(order, vec![late, indirect, probe]);
        assert_eq!(queue.next_at(), None);
    }
}
