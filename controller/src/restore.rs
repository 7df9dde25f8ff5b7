//! Taking the lead: allocation state rebuilt from what the Services show, before any new
//! allocation, so a pending Service can never take an address another Service already shows.

use std::time::{Duration, Instant};

use ferrolb_crds::service::{ingress_ips, key as key_of};
use ferrolb_crds::validate::{self, Report};
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::conflicts::Conflicts;
use crate::decide::Decider;
use crate::intent;
use crate::stores::{Stores, slim_service};

/// What the controller holds only while leading.
pub(crate) struct Leading {
    pub decider: Decider,
    /// The validation of the configuration the decider's pools come from.
    pub report: Report,
    /// Addresses reported in conflict, as the pools' status remembers them.
    pub conflicts: Conflicts,
}

/// A decider holding every address our Services show (as listed now, not as cached: the
/// previous leader may have written moments ago).
pub(crate) async fn restore(
    client: &Client,
    stores: &Stores,
    lb_class: Option<&str>,
    manager: &str,
) -> Leading {
    let started = Instant::now();
    let mut services = list_shown(client, lb_class, manager).await;
    let report = validate::validate(&stores.snapshot());
    let mut decider = Decider::new(&report.valid_pools);
    // What the previous leader remembered, before any new allocation can take those addresses.
    let mut conflicts = Conflicts::default();
    for pool in stores.config.pools.state() {
        if pool.spec.avoid_conflicting_ips {
            let shown = pool.status.as_ref().map(|s| s.conflicts.as_slice());
            conflicts.seed(&pool.name_any(), shown.unwrap_or_default());
        }
    }
    decider.set_conflicts(conflicts.addresses());
    // Oldest first, as the decision loop goes.
    services.sort_by(|a, b| {
        let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (ta, key_of(a)).cmp(&(tb, key_of(b)))
    });
    let mut restored = 0;
    for svc in &services {
        let ips = ingress_ips(svc);
        let ctx = stores.context(svc, &report.valid_pools);
        tracing::debug!(service = key_of(svc), ?ips, "restoring");
        match decider.restore(&key_of(svc), &ips, ctx) {
            Ok(()) => restored += 1,
            Err(e) => {
                tracing::warn!(service = key_of(svc), error = %e, "cannot restore addresses; will re-allocate")
            }
        }
    }
    tracing::info!(
        restored,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "leading: allocations restored"
    );
    Leading {
        decider,
        report,
        conflicts,
    }
}

/// Our Services that show addresses, listed page by page and slimmed (so restoring many
/// Services does not double the controller's memory); retried until a whole list succeeds.
async fn list_shown(client: &Client, lb_class: Option<&str>, manager: &str) -> Vec<Service> {
    let api = Api::<Service>::all(client.clone());
    let mut services: Vec<Service> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        match api.list(&lp).await {
            Ok(page) => {
                token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
                services.extend(page.items.into_iter().filter_map(|mut s| {
                    (intent::is_ours(&s, lb_class) && !ingress_ips(&s).is_empty()).then(|| {
                        slim_service(&mut s, manager);
                        s
                    })
                }));
                if token.is_none() {
                    return services;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing Services to restore allocations; retrying");
                services.clear();
                token = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
