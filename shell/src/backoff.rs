//! Capped exponential backoff: jittered for anything that retries the API server, exact for a
//! local retry nobody else shares (the speaker's runtime restarts).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with full jitter in the upper half: `[d/2, d]`, `d` doubling from
/// `first` up to `max`. Jitter keeps many watches (and many replicas) from reconnecting in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
            jitter: true,
        }
    }

    /// `first` doubling up to `max`, each delay exactly: for a retry that only this process
    /// makes (no herd to spread), e.g. re-opening a runtime's sockets.
    pub fn exact(first: Duration, max: Duration) -> Backoff {
        Backoff {
            jitter: false,
            ..Backoff::new(first, max)
        }
    }

    /// The watch backoff: 100 ms doubling to 1 s, so a watch is back within ~1 s of the API
    /// server answering again.
    pub fn watch() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        half + half.mul_f64(unit_random())
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in [0, 1) that differs between calls (std's per-`RandomState` keys; jitter needs
/// no cryptographic quality and no extra dependency).
fn unit_random() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        let mut b = Backoff::watch();
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(1)));
        assert!(d[7] >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        let spread: std::collections::BTreeSet<_> = (0..20)
            .map(|_| Backoff::watch().next_delay().as_nanos())
            .collect();
        assert!(spread.len() > 1, "no jitter");
    }

    #[test]
    fn exact_backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::exact(Duration::from_secs(1), Duration::from_secs(5));
        let got: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
