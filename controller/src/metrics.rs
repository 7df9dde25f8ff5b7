//! Prometheus metrics of the controller (`/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
    pub family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric the controller exports.
#[derive(Clone)]
pub struct Metrics {
    pub addresses_total: Family<PoolLabels, Gauge>,
    pub addresses_in_use: Family<PoolLabels, Gauge>,
    /// Addresses each pool avoids because a speaker reported them in use by another host.
    pub addresses_in_conflict: Family<PoolLabels, Gauge>,
    pub allocations: Counter,
    pub failures: Family<ReasonLabels, Counter>,
    pub services: Gauge,
    /// Services whose request is not met (no address, or a changed request refused), as the
    /// leader sees them; they are retried whenever addresses come free.
    pub services_pending: Gauge,
    pub leader: Gauge,
    pub reconcile_seconds: Histogram,
    pub api_writes: Counter,
    pub api_write_errors: Counter,
    /// Failed writes by class: permanent (refused, not retried), transient (retried),
    /// conflict (the object changed since the decision; decided again).
    pub write_failures: Family<ReasonLabels, Counter>,
    /// 1 while every watch reaches the API server.
    pub api_reachable: Gauge,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            addresses_total: Family::default(),
            addresses_in_use: Family::default(),
            addresses_in_conflict: Family::default(),
            allocations: Counter::default(),
            failures: Family::default(),
            services: Gauge::default(),
            services_pending: Gauge::default(),
            leader: Gauge::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            api_writes: Counter::default(),
            api_write_errors: Counter::default(),
            write_failures: Family::default(),
            api_reachable: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("ferrolb");
        r.register(
            "allocator_addresses",
            "Addresses in each pool (saturates at 2^63-1 for huge IPv6 pools)",
            m.addresses_total.clone(),
        );
        r.register(
            "allocator_addresses_in_use",
            "Addresses of each pool held by Services",
            m.addresses_in_use.clone(),
        );
        r.register(
            "allocator_addresses_in_conflict",
            "Addresses of each pool reported in use by another host and avoided (avoidConflictingIPs)",
            m.addresses_in_conflict.clone(),
        );
        r.register(
            "allocator_allocations",
            "Addresses handed to Services",
            m.allocations.clone(),
        );
        r.register(
            "allocator_failures",
            "Services that could not get an address, by reason",
            m.failures.clone(),
        );
        r.register(
            "controller_services",
            "LoadBalancer Services handled; 0 on a standby",
            m.services.clone(),
        );
        r.register(
            "controller_services_pending",
            "LoadBalancer Services whose request is not met (no address, or a changed request refused); 0 on a standby",
            m.services_pending.clone(),
        );
        r.register(
            "controller_leader",
            "1 while this replica is the leader",
            m.leader.clone(),
        );
        r.register(
            "controller_reconcile_seconds",
            "Time to decide one Service (allocator work, not API writes)",
            m.reconcile_seconds.clone(),
        );
        r.register(
            "controller_api_writes",
            "Writes to the API server",
            m.api_writes.clone(),
        );
        r.register(
            "controller_api_write_errors",
            "Failed writes to the API server (retried)",
            m.api_write_errors.clone(),
        );
        r.register(
            "controller_write_failures",
            "Failed writes by class: permanent (refused, not retried), transient (retried), conflict (decided again)",
            m.write_failures.clone(),
        );
        r.register(
            "controller_api_reachable",
            "1 while every watch of the controller reaches the API server",
            m.api_reachable.clone(),
        );
        m
    }

    /// What a replica shows once it no longer leads: not leading, no Services handled or pending,
    /// and no pool series at all. Otherwise its last view of the pools stays exported, frozen,
    /// beside the new leader's (stale series a `sum` or an alert without a leader filter counts).
    pub fn standby(&self) {
        self.leader.set(0);
        self.services.set(0);
        self.services_pending.set(0);
        self.addresses_total.clear();
        self.addresses_in_use.clear();
        self.addresses_in_conflict.clear();
    }
}

/// Saturating conversion for gauges.
pub fn gauge_value(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
