//! Prometheus metrics of the speaker (`/metrics`), refreshed from the runtimes' status.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuntimeLabels {
    /// `l2` or `bgp`.
    pub runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConflictLabels {
    pub interface: String,
    pub family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// See `membership::Reason::label`.
    pub reason: String,
}

/// Gauges mirror the runtimes' own counters (which are monotonic), so a restart of a runtime
/// shows as a reset, as Prometheus expects of counters.
#[derive(Clone)]
pub struct Metrics {
    pub l2_requests_received: Gauge,
    pub l2_responses_sent: Gauge,
    pub l2_gratuitous_sent: Gauge,
    pub l2_malformed_dropped: Gauge,
    pub announced: Gauge,
    pub members: Gauge,
    pub bgp_session_up: Family<PeerLabels, Gauge>,
    pub bgp_updates: Family<PeerLabels, Gauge>,
    pub bgp_prefixes: Family<PeerLabels, Gauge>,
    /// How long computing the plan takes (it runs over every Service on each change).
    pub plan_seconds: Histogram,
    /// 1 while every watch reaches the API server (`Cluster::api_reachable`).
    pub api_reachable: Gauge,
    /// 1 while the runtime works; 0 when it cannot (no CAP_NET_RAW, task ended...).
    pub runtime_up: Family<RuntimeLabels, Gauge>,
    /// Membership datagrams dropped, per reason (`ferrolb_membership_rejected_total`). A real
    /// counter: the speaker may leave and rejoin the membership, which restarts its counts.
    pub membership_rejected: Family<ReasonLabels, Counter>,
    membership_seen: std::sync::Arc<std::sync::Mutex<crate::membership::reject::Rejected>>,
    pub address_conflicts: Family<ConflictLabels, Counter>,
    conflicts_seen: std::sync::Arc<std::sync::Mutex<crate::l2::conflict::ConflictCounts>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            l2_requests_received: Gauge::default(),
            l2_responses_sent: Gauge::default(),
            l2_gratuitous_sent: Gauge::default(),
            l2_malformed_dropped: Gauge::default(),
            announced: Gauge::default(),
            members: Gauge::default(),
            bgp_session_up: Family::default(),
            bgp_updates: Family::default(),
            bgp_prefixes: Family::default(),
            // 0.1 ms .. ~3 s.
            plan_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            api_reachable: Gauge::default(),
            runtime_up: Family::default(),
            membership_rejected: Family::default(),
            membership_seen: Default::default(),
            address_conflicts: Family::default(),
            conflicts_seen: Default::default(),
        }
    }
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("ferrolb");
        r.register(
            "layer2_requests_received",
            "ARP requests and NS received for announced IPs",
            m.l2_requests_received.clone(),
        );
        r.register(
            "layer2_responses_sent",
            "ARP replies and NAs sent",
            m.l2_responses_sent.clone(),
        );
        r.register(
            "layer2_gratuitous_sent",
            "Gratuitous ARP / unsolicited NA announcements sent",
            m.l2_gratuitous_sent.clone(),
        );
        r.register(
            "layer2_malformed_dropped",
            "Malformed frames dropped",
            m.l2_malformed_dropped.clone(),
        );
        r.register(
            "speaker_announced",
            "IPs this node announces in L2 mode",
            m.announced.clone(),
        );
        r.register(
            "speaker_members",
            "Live speakers seen by this speaker's membership",
            m.members.clone(),
        );
        r.register(
            "bgp_session_up",
            "1 while the BGP session with the peer is Established",
            m.bgp_session_up.clone(),
        );
        r.register(
            "bgp_updates",
            "UPDATE messages sent to the peer",
            m.bgp_updates.clone(),
        );
        r.register(
            "bgp_announced_prefixes",
            "Prefixes advertised to the peer",
            m.bgp_prefixes.clone(),
        );
        r.register(
            "speaker_plan_seconds",
            "Time to compute this node's announcements from the cluster state",
            m.plan_seconds.clone(),
        );
        r.register(
            "speaker_api_reachable",
            "1 while every watch of the speaker reaches the API server",
            m.api_reachable.clone(),
        );
        // Kept by the BFD runtime itself (one per process, like the sessions it counts for).
        r.register(
            "bfd_packets_dropped",
            "BFD control packets dropped, by peer and reason (ttl, auth_*, malformed, ...)",
            crate::bgp::bfd_mux::dropped_packets().clone(),
        );
        r.register(
            "bgp_rejected_connections",
            "Connections to a passive BGP listener from no configured peer, closed at once",
            crate::bgp::listener::rejected_connections().clone(),
        );
        r.register(
            "speaker_runtime_up",
            "1 while the speaker's L2 or BGP runtime works; 0 when it cannot (see the speaker's log)",
            m.runtime_up.clone(),
        );
        r.register(
            "membership_rejected",
            "Membership datagrams (or member updates in them) dropped, by reason",
            m.membership_rejected.clone(),
        );
        // Every reason shows, at 0 until it happens.
        r.register(
            "speaker_address_conflicts",
            "Pool addresses found in use by another host on the segment (L2 probe or a claim while announcing), by interface and family",
            m.address_conflicts.clone(),
        );
        for reason in crate::membership::Reason::ALL {
            let _ = m.membership_rejected.get_or_create(&ReasonLabels {
                reason: reason.label().into(),
            });
        }
        m
    }

    /// Adds the membership's rejections since the last call.
    pub fn record_membership(&self, stats: &crate::membership::Stats) {
        let Ok(mut seen) = self.membership_seen.lock() else {
            return;
        };
        for (reason, now) in stats.rejected.iter() {
            let before = seen.get(reason);
            // Fewer than before: a new Membership (rejoin) counting from zero.
            let delta = if now >= before { now - before } else { now };
            if delta > 0 {
                self.membership_rejected
                    .get_or_create(&ReasonLabels {
                        reason: reason.label().into(),
                    })
                    .inc_by(delta);
            }
        }
        *seen = stats.rejected;
    }

    /// Adds the conflicts the L2 runtime detected since the last call.
    pub fn record_conflicts(&self, counts: &crate::l2::conflict::ConflictCounts) {
        let Ok(mut seen) = self.conflicts_seen.lock() else {
            return;
        };
        for ((iface, family), &now) in counts {
            let before = seen.get(&(iface.clone(), *family)).copied().unwrap_or(0);
            // Fewer than before: a restarted L2 runtime counting from zero.
            let delta = if now >= before { now - before } else { now };
            if delta > 0 {
                self.address_conflicts
                    .get_or_create(&ConflictLabels {
                        interface: iface.clone(),
                        family: (*family).to_string(),
                    })
                    .inc_by(delta);
            }
        }
        *seen = counts.clone();
    }
}
