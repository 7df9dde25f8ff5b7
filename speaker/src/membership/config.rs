//! SWIM tuning for sub-second failure detection on a LAN.
//!
//! # How long detection takes
//!
//! foca declares a member `Suspect` at the end of the probe period in which
//! neither it nor the `num_indirect_probes` helpers got an answer, and `Down`
//! after `suspect_to_down_after` more, unless the member refutes. Other
//! members learn `Down` by gossip (or declare it themselves). So, from the
//! moment a speaker dies:
//!
//! ```text
//! detection = wait until someone probes it   (~0.5-1.6 probe periods, tail ~3)
//!           + rest of that probe period       (PROBE_PERIOD)
//!           + suspicion                       (suspect_to_down_after)
//!           + dissemination                   (~0 to a few GOSSIP_EVERY)
//! ```
//!
//! With `PROBE_PERIOD` = 80 ms, suspicion 120 ms (up to 10 members) and
//! gossip every 50 ms, a 3-member cluster detects a crash in ~270 ms
//! typically and ~410 ms at p99 (simulated, 300 trials; the namespace lab
//! agrees: see `lab.rs`). A clean leave skips all of it: the leaver tells
//! every member directly (~1-2 ms).
//!
//! Bigger clusters wait a little longer: suspicion grows with log10(N) so a
//! wrongly suspected member has time to hear about it and refute, and a
//! `Down` needs a few more gossip rounds to reach everyone. Simulated time
//! until each member drops a crashed one (`sim::large_cluster_figures`):
//! 50 nodes p50 ~350 ms / last ~400 ms; 100 nodes p50 500 ms / p99 650 ms;
//! 300 nodes p50 650 ms / p99 750 ms / last 760 ms.
//!
//! # What it costs
//!
//! SWIM's load per member does not grow with the cluster: each member sends
//! one `Ping` per probe period and, on average, receives one and answers it
//! with an `Ack`. At 80 ms that is ~25 datagrams/s out and ~25 in per member
//! (measured 25.2/s at 3 and at 30 members; ~60-150 bytes each depending on
//! node-name length, so ~3 KB/s), whatever N is. Gossip only runs while
//! there is news; the periodic announce is one exchange per 10 s. A
//! 300-node cluster thus carries ~7500 small datagrams/s in total, spread
//! over all its links. Halving the probe period would halve the wait for a
//! probe and double this rate.
//!
//! # The trade-off
//!
//! The price of fast detection is tolerance to stalls: a speaker that does
//! not answer for about probe period + suspicion (~200 ms in a small
//! cluster, minus a gossip round to hear it is suspected) is declared down
//! and fails over, then comes back under a renewed identity. A 100 ms
//! freeze is tested to be harmless. The driver runs on its own thread so
//! that the rest of the speaker cannot starve it, but a CPU-throttled pod
//! (CFS quota) or a frozen node can still cause a spurious failover: do not
//! give speakers a tight CPU limit.
//!
//! Suspicion and retransmissions scale with log10(cluster size) like
//! memberlist's (a suspected member needs O(log N) gossip rounds to hear
//! about it and refute); probe timing cannot change on a running foca and
//! does not need to.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

/// How often each member probes one other member (round-robin, shuffled).
pub const PROBE_PERIOD: Duration = Duration::from_millis(80);
/// How long to wait for a direct `Ack` before asking others to probe. LAN
/// RTTs are well under 1 ms; 30 ms absorbs scheduling hiccups and leaves
/// 50 ms of the period for the indirect round trip (4 hops).
pub const PROBE_RTT: Duration = Duration::from_millis(30);
/// Helpers asked to probe indirectly when the direct probe times out.
pub const INDIRECT_PROBES: usize = 3;
/// Suspicion time for clusters of up to 10 members; scaled by log10 above.
pub const SUSPICION_BASE: Duration = Duration::from_millis(120);
/// How often pending updates are pushed to [`GOSSIP_FANOUT`] random members
/// (nothing is sent when there is no news).
pub const GOSSIP_EVERY: Duration = Duration::from_millis(50);
pub const GOSSIP_FANOUT: usize = 3;
/// Ask one random member for its member list this often, to converge on the
/// full roster even if some update was missed.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// Knock on one member we consider down this often, so a partition that our
/// seed list does not cover still heals.
pub const ANNOUNCE_DOWN_EVERY: Duration = Duration::from_secs(5);
/// Largest datagram on the wire (our envelope included): below any LAN MTU.
pub const MAX_DATAGRAM: usize = 1400;

/// The foca configuration for a cluster of `cluster_size` members (ourselves
/// included). The driver re-applies it as the cluster grows or shrinks.
pub fn for_cluster(cluster_size: usize, envelope_len: usize) -> Config {
    let scale = (cluster_size.max(1) as f64).log10().max(1.0);
    Config {
        probe_period: PROBE_PERIOD,
        probe_rtt: PROBE_RTT,
        num_indirect_probes: nonzero(INDIRECT_PROBES),
        max_transmissions: max_transmissions(cluster_size),
        suspect_to_down_after: SUSPICION_BASE.mul_f64(scale),
        // Only matters for identities that come back *unchanged*, which ours
        // never do (see `MemberId::renew`); keep them long so a stale
        // identity cannot sneak back in.
        remove_down_after: Some(Duration::from_secs(24 * 3600)),
        max_packet_size: nonzero(MAX_DATAGRAM - envelope_len),
        // Lets a member that the cluster declared down learn it and rejoin
        // under a renewed identity (heals symmetric partitions).
        notify_down_members: true,
        periodic_announce: Some(PeriodicParams {
            frequency: ANNOUNCE_EVERY,
            num_members: nonzero(1),
        }),
        periodic_announce_to_down_members: Some(PeriodicParams {
            frequency: ANNOUNCE_DOWN_EVERY,
            num_members: nonzero(1),
        }),
        periodic_gossip: Some(PeriodicParams {
            frequency: GOSSIP_EVERY,
            num_members: nonzero(GOSSIP_FANOUT),
        }),
    }
}

/// Times each update rides on outgoing messages: memberlist's
/// 4·log10(N+1), but at least 6 so a small cluster shrugs off a lost packet.
fn max_transmissions(cluster_size: usize) -> NonZeroU8 {
    let n = (cluster_size.saturating_add(1) as f64).log10() * 4.0;
    let n = n.ceil().clamp(6.0, 255.0) as u8;
    NonZeroU8::new(n).unwrap_or(NonZeroU8::MIN)
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// True if switching from `current` to `wanted` changes anything that
/// [`for_cluster`] varies with the cluster size.
pub fn differs(current: &Config, wanted: &Config) -> bool {
    current.suspect_to_down_after != wanted.suspect_to_down_after
        || current.max_transmissions != wanted.max_transmissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_timing_is_consistent() {
        let c = for_cluster(3, 5);
        // foca requires rtt < period; the indirect cycle needs room too.
        assert!(c.probe_rtt * 2 <= c.probe_period);
        assert_eq!(c.max_packet_size.get(), MAX_DATAGRAM - 5);
        assert!(c.notify_down_members);
    }

    #[test]
    fn small_cluster_detects_fast() {
        let c = for_cluster(3, 5);
        // period + suspicion + one gossip round, plus up to ~2 periods of
        // waiting to be probed, stays within the 500 ms budget.
        let worst = c.probe_period * 3 + c.suspect_to_down_after + GOSSIP_EVERY;
        assert!(worst <= Duration::from_millis(500), "{worst:?}");
        assert_eq!(c.max_transmissions.get(), 6);
    }

    #[test]
    fn suspicion_and_retransmissions_grow_slowly() {
        let sizes = [1, 10, 50, 100, 300, 1000];
        let configs: Vec<_> = sizes.iter().map(|&n| for_cluster(n, 5)).collect();
        for pair in configs.windows(2) {
            assert!(pair[0].suspect_to_down_after <= pair[1].suspect_to_down_after);
            assert!(pair[0].max_transmissions <= pair[1].max_transmissions);
        }
        assert_eq!(configs[1].suspect_to_down_after, SUSPICION_BASE);
        let at_300 = for_cluster(300, 5);
        assert!(at_300.suspect_to_down_after < Duration::from_millis(400));
        assert_eq!(at_300.max_transmissions.get(), 10);
    }

    #[test]
    fn resizing_only_changes_what_foca_allows_at_runtime() {
        let small = for_cluster(3, 5);
        let big = for_cluster(300, 5);
        assert!(differs(&small, &big));
        assert!(!differs(&small, &for_cluster(5, 5)));
        assert_eq!(small.probe_period, big.probe_period);
        assert_eq!(small.probe_rtt, big.probe_rtt);
    }
}
