//! Accounting for the BFD packets this node drops: a metric by peer and reason, and a bound
//! on the log lines about them (a hostile host on the link can send them at any rate).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

/// How often a session may log the packets it drops.
pub(super) const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Labels of [`dropped_packets`]: `peer` is the session's peer address (empty for packets
/// that reach no session: their source address is the sender's to choose), `reason` one of a
/// fixed set ([`PacketError::reason`](crate::bgp::bfd::PacketError::reason), `no_session`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub peer: String,
    pub reason: &'static str,
}

/// BFD packets dropped by this process, by peer and reason (the metric
/// `ferrolb_bfd_packets_dropped_total`).
pub fn dropped_packets() -> &'static Family<DropLabels, Counter> {
    static DROPPED: OnceLock<Family<DropLabels, Counter>> = OnceLock::new();
    DROPPED.get_or_init(Family::default)
}

/// Bounds the log lines about dropped packets.
#[derive(Default)]
pub(super) struct DropLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl DropLog {
    /// `Some(drops not logged since the last line)` if this drop may be logged now.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < DROP_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
