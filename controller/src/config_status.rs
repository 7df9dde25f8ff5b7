//! What the controller writes on FerroLB's configuration: each object's `Valid` condition, each
//! BGPPeer's established-sessions summary, and each pool's address counts (with the matching
//! gauges). Written only where they differ from what the store shows.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ferrolb_crds::status::{VALID, condition, set_condition};
use ferrolb_crds::validate::{Report, Snapshot, Verdict};
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, IPAddressPoolStatus,
    L2Advertisement,
};
use ferrolb_shell::watch::Kind;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::conflicts::Conflicts;
use crate::decide::Decider;
use crate::metrics::{PoolLabels, gauge_value};
use crate::writer::Writer;

/// Writes the status of the configuration in one namespace.
pub(crate) struct ConfigStatus {
    pub writer: Writer,
    pub namespace: String,
}

impl ConfigStatus {
    fn api<K: Resource<Scope = NamespaceResourceScope>>(&self) -> Api<K>
    where
        K::DynamicType: Default,
    {
        Api::namespaced(self.writer.client.clone(), &self.namespace)
    }

    /// The verdicts of `report` on the objects of `snapshot`, and the peers' session summaries.
    pub fn write_verdicts(&self, snapshot: &Snapshot, report: &Report) {
        self.verdicts::<L2Advertisement>(&snapshot.l2_advertisements, &report.l2_advertisements);
        self.verdicts::<BGPAdvertisement>(&snapshot.bgp_advertisements, &report.bgp_advertisements);
        self.verdicts::<BGPPeer>(&snapshot.bgp_peers, &report.bgp_peers);
        self.verdicts::<BFDProfile>(&snapshot.bfd_profiles, &report.bfd_profiles);
        self.verdicts::<Community>(&snapshot.communities, &report.communities);
        // `kubectl get bgppeers` shows established/total sessions, from what the speakers report.
        for p in &snapshot.bgp_peers {
            let st = p.status.clone().unwrap_or_default();
            let up = st
                .sessions
                .iter()
                .filter(|s| s.state == "Established")
                .count();
            let summary = format!("{up}/{}", st.sessions.len());
            if st.established_summary.as_deref() != Some(summary.as_str()) {
                self.writer.patch_status(
                    self.api::<BGPPeer>(),
                    p.name_any(),
                    json!({ "status": { "establishedSummary": summary } }),
                );
            }
        }
    }

    /// Writes `Valid` conditions of a kind whose verdict changed.
    fn verdicts<K>(&self, objs: &[K], verdicts: &BTreeMap<String, Verdict>)
    where
        K: Kind + Resource<Scope = NamespaceResourceScope> + HasConditions,
    {
        for o in objs {
            let Some(v) = verdicts.get(&o.name_any()) else {
                continue;
            };
            let mut conds = o.conditions().to_vec();
            if set_condition(&mut conds, verdict_condition(v, o.meta().generation)) {
                self.writer.patch_status(
                    self.api::<K>(),
                    o.name_any(),
                    json!({ "status": { "conditions": conds } }),
                );
            }
        }
    }

    /// Writes each pool's counts, conflicts and `Valid` condition when they changed, and sets
    /// the pool gauges.
    pub fn write_pools(
        &self,
        pools: &Store<IPAddressPool>,
        report: &Report,
        decider: &Decider,
        conflicts: &Conflicts,
    ) {
        let metrics = &self.writer.metrics;
        for pool in pools.state() {
            let name = pool.name_any();
            let verdict = report.pools.get(&name).cloned().unwrap_or(Verdict {
                ok: false,
                reason: "Pending",
                message: "not validated yet".into(),
            });
            let stats = decider.stats(&name);
            let in_conflict = conflicts.of_pool(&name);
            let v4_in_conflict = in_conflict
                .iter()
                .filter(|c| c.address.parse::<Ipv4Addr>().is_ok())
                .count();
            for (family, used, free, conflicted) in [
                (
                    "IPv4",
                    stats.assigned_ipv4,
                    stats.available_ipv4,
                    v4_in_conflict,
                ),
                (
                    "IPv6",
                    stats.assigned_ipv6,
                    stats.available_ipv6,
                    in_conflict.len() - v4_in_conflict,
                ),
            ] {
                let labels = PoolLabels {
                    pool: name.clone(),
                    family: family.into(),
                };
                metrics
                    .addresses_total
                    .get_or_create(&labels)
                    .set(gauge_value(used.saturating_add(free)));
                metrics
                    .addresses_in_use
                    .get_or_create(&labels)
                    .set(gauge_value(used));
                metrics
                    .addresses_in_conflict
                    .get_or_create(&labels)
                    .set(gauge_value(conflicted as u128));
            }
            let old = pool.status.clone().unwrap_or_default();
            let mut new = IPAddressPoolStatus {
                assigned_ipv4: gauge_value(stats.assigned_ipv4),
                assigned_ipv6: gauge_value(stats.assigned_ipv6),
                available_ipv4: gauge_value(stats.available_ipv4),
                available_ipv6: gauge_value(stats.available_ipv6),
                addresses_in_conflict: in_conflict.len() as i64,
                conflicts: in_conflict,
                conditions: old.conditions.clone(),
            };
            let changed = set_condition(
                &mut new.conditions,
                verdict_condition(&verdict, pool.metadata.generation),
            );
            if changed
                || new.assigned_ipv4 != old.assigned_ipv4
                || new.assigned_ipv6 != old.assigned_ipv6
                || new.available_ipv4 != old.available_ipv4
                || new.available_ipv6 != old.available_ipv6
                || new.addresses_in_conflict != old.addresses_in_conflict
                || new.conflicts != old.conflicts
            {
                self.writer.patch_status(
                    self.api::<IPAddressPool>(),
                    name,
                    json!({ "status": new }),
                );
            }
        }
    }
}

fn verdict_condition(v: &Verdict, generation: Option<i64>) -> Condition {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    condition(VALID, v.ok, v.reason, v.message.clone(), generation, now)
}

/// Kinds whose status carries `conditions`.
pub trait HasConditions {
    fn conditions(&self) -> &[Condition];
}

macro_rules! has_conditions {
    ($($k:ty),*) => {$(
        impl HasConditions for $k {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default()
            }
        }
    )*};
}
has_conditions!(
    L2Advertisement,
    BGPAdvertisement,
    BGPPeer,
    BFDProfile,
    Community
);
