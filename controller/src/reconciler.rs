//! The decision loop: one task owns the allocator, so decisions are serial and deterministic.
//! It follows leadership, takes what the watches and writes report in batches, decides Services
//! oldest first, and hands writes to the [`Writer`], one in flight per Service, so a slow write
//! never blocks decisions and a newer decision never loses to an older write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use ferrolb_crds::service::{conflicts as reported_conflicts, ingress_ips, key as key_of};
use ferrolb_crds::validate;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::config_status::ConfigStatus;
use crate::conflicts::{FORGET_AFTER, Seen};
use crate::inbox::{Batch, Msg};
use crate::intent;
use crate::metrics::{Metrics, ReasonLabels};
use crate::restore::{Leading, restore};
use crate::service_status::{our_condition, up_to_date, wrote_status};
use crate::settling::{Report, Settling};
use crate::stores::Stores;
use crate::writer::{Outcome, RETRY_LATER, WriteJob, Writer};

/// How often remembered conflicts are checked for expiry (they live [`FORGET_AFTER`]).
const EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) struct Reconciler {
    lb_class: Option<String>,
    stores: Stores,
    metrics: Metrics,
    writer: Writer,
    config_status: ConfigStatus,
    leading: Option<Leading>,
    /// Keys with a write in flight, and keys to revisit when it lands.
    in_flight: BTreeSet<String>,
    again: BTreeSet<String>,
    /// Services whose request is not met: retried whenever addresses are freed.
    pending: BTreeSet<String>,
    /// Whether addresses were freed since pending Services were last retried.
    freed: bool,
    /// Services not to decide again while the store still shows this resourceVersion: their
    /// write got 409 (wait for the fresh object) or was refused for good (wait for a change of
    /// the Service; a configuration change clears them all).
    blocked: BTreeMap<String, String>,
    /// First refusals held back while the configuration may still be arriving.
    settling: Settling,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Reconciler {
    /// `namespace` holds FerroLB's configuration; `tx` is the sender of the loop's own inbox.
    pub fn new(
        namespace: String,
        lb_class: Option<String>,
        stores: Stores,
        writer: Writer,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> Reconciler {
        Reconciler {
            lb_class,
            stores,
            metrics: writer.metrics.clone(),
            config_status: ConfigStatus {
                writer: writer.clone(),
                namespace,
            },
            writer,
            leading: None,
            in_flight: BTreeSet::new(),
            again: BTreeSet::new(),
            pending: BTreeSet::new(),
            freed: false,
            blocked: BTreeMap::new(),
            settling: Settling::default(),
            tx,
        }
    }

    /// Decides while `leader` reads true, until leadership election or the watches end.
    pub async fn run(
        mut self,
        client: &Client,
        mut leader: watch::Receiver<bool>,
        mut rx: mpsc::UnboundedReceiver<Msg>,
    ) -> Result<()> {
        // Conflicts expire by the clock, not by any watch event: look every so often.
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(EXPIRY_CHECK);
            loop {
                every.tick().await;
                if tx.send(Msg::ExpireConflicts).is_err() {
                    return;
                }
            }
        });
        loop {
            let is_leader = *leader.borrow_and_update();
            if is_leader && self.leading.is_none() {
                self.take_lead(client).await;
            } else if !is_leader && self.leading.is_some() {
                tracing::warn!("lost leadership: stop writing");
                self.leading = None;
                // A standby reports no pools and nothing handled or pending: the new leader does.
                self.metrics.standby();
                self.settling.clear();
            }
            tokio::select! {
                changed = leader.changed() => {
                    if changed.is_err() {
                        anyhow::bail!("leader election ended");
                    }
                }
                msg = rx.recv() => {
                    let Some(first) = msg else { anyhow::bail!("watchers ended") };
                    self.process(Batch::take(first, &mut rx));
                }
            }
        }
    }

    async fn take_lead(&mut self, client: &Client) {
        let manager = &self.writer.manager;
        let leading = restore(client, &self.stores, self.lb_class.as_deref(), manager).await;
        self.leading = Some(leading);
        self.metrics.leader.set(1);
        self.process(Batch {
            config: true,
            everything: true,
            ..Default::default()
        });
    }

    fn process(&mut self, mut batch: Batch) {
        for (k, outcome, rv) in batch.written.drain(..) {
            self.in_flight.remove(&k);
            match outcome {
                Outcome::Conflict | Outcome::Refused => {
                    if let Some(rv) = rv {
                        self.blocked.insert(k.clone(), rv);
                    }
                }
                Outcome::GaveUp => {
                    let tx = self.tx.clone();
                    let key = k.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(RETRY_LATER).await;
                        let _ = tx.send(Msg::Service(key));
                    });
                }
                Outcome::Done | Outcome::Gone | Outcome::Fenced => {}
            }
            if self.again.remove(&k) {
                batch.services.insert(k);
            }
        }
        if self.leading.is_none() {
            return;
        }
        if batch.expire_conflicts
            && let Some(l) = &mut self.leading
            && l.conflicts.expire(Timestamp::now())
        {
            tracing::info!(
                after = %FORGET_AFTER,
                "conflicts not reported again forgotten: their addresses may be handed out again"
            );
            l.decider.set_conflicts(l.conflicts.addresses());
            self.freed = true;
            // Messages that named a forgotten conflict change.
            batch.everything = true;
        }
        if batch.config {
            // Refused writes get another go when FerroLB's configuration changes (not on every
            // Namespace event or re-list: those come often and change nothing for them).
            self.blocked.clear();
            self.apply_config();
            batch.everything = true;
        }
        let keys: Vec<String> = if batch.everything {
            let mut all: BTreeSet<String> = self
                .stores
                .services
                .state()
                .iter()
                .map(|s| key_of(s))
                .collect();
            all.extend(batch.services);
            // Forget Services that disappeared while we were not looking.
            if let Some(l) = &mut self.leading {
                for k in l.decider.keys() {
                    if !all.contains(&k) {
                        self.freed |= l.decider.release(&k);
                    }
                }
            }
            all.into_iter().collect()
        } else {
            batch.services.into_iter().collect()
        };
        // Oldest first, so that when two Services want the same address the older one wins.
        let mut svcs: Vec<(Option<Time>, String, Option<Arc<Service>>)> = keys
            .into_iter()
            .map(|k| {
                let (ns, name) = k.split_once('/').unwrap_or(("", &k));
                let svc = self.stores.services.get(&ObjectRef::new(name).within(ns));
                (
                    svc.as_ref()
                        .and_then(|s| s.metadata.creation_timestamp.clone()),
                    k,
                    svc,
                )
            })
            .collect();
        svcs.sort_by(|a, b| {
            (a.0.as_ref().map(|t| t.0), &a.1).cmp(&(b.0.as_ref().map(|t| t.0), &b.1))
        });
        for (_, key, svc) in svcs {
            self.reconcile(&key, svc);
        }
        if std::mem::take(&mut self.freed) && !self.pending.is_empty() {
            // Addresses came free: give waiting Services another go, oldest first.
            let keys = std::mem::take(&mut self.pending);
            self.process(Batch {
                services: keys,
                ..Default::default()
            });
            return;
        }
        if let Some(l) = &self.leading {
            self.config_status.write_pools(
                &self.stores.config.pools,
                &l.report,
                &l.decider,
                &l.conflicts,
            );
            self.metrics.services.set(l.decider.len() as i64);
            self.metrics.services_pending.set(self.pending.len() as i64);
        }
    }

    fn reconcile(&mut self, key: &str, svc: Option<Arc<Service>>) {
        let Some(leading) = self.leading.as_mut() else {
            return;
        };
        let svc = match svc {
            Some(s) if intent::is_ours(&s, self.lb_class.as_deref()) => s,
            other => {
                self.pending.remove(key);
                self.settling.forget(key);
                self.freed |= leading.decider.release(key);
                // Give back what we wrote on a Service that is no longer ours (type or class changed).
                let manager = &self.writer.manager;
                if let Some(s) = other
                    .filter(|s| wrote_status(s, manager) && s.metadata.deletion_timestamp.is_none())
                {
                    self.write(key, WriteJob::Clear(s));
                }
                return;
            }
        };
        if let Some(rv) = self.blocked.get(key) {
            if svc.metadata.resource_version.as_ref() == Some(rv) {
                return;
            }
            self.blocked.remove(key);
        }
        let started = Instant::now();
        for other in observe_conflicts(leading, key, &svc) {
            let _ = self.tx.send(Msg::Service(other));
        }
        let mut ctx = self.stores.context(&svc, &leading.report.valid_pools);
        ctx.conflicts = leading.conflicts.of_service(key);
        let decision = leading.decider.decide(key, ctx);
        self.metrics
            .reconcile_seconds
            .observe(started.elapsed().as_secs_f64());
        if decision.ok {
            self.pending.remove(key);
        } else {
            self.pending.insert(key.to_string());
        }
        let shows_refusal = our_condition(&svc).is_some_and(|c| c.status == "False");
        if let Report::HoldUntil { at, first } =
            self.settling
                .judge(key, &decision, shows_refusal, Instant::now())
        {
            tracing::debug!(
                service = key,
                reason = decision.reason,
                "refusal held while the configuration settles"
            );
            if first {
                let (tx, key) = (self.tx.clone(), key.to_string());
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    let _ = tx.send(Msg::Service(key));
                });
            }
            return;
        }
        if !decision.ok {
            self.metrics
                .failures
                .get_or_create(&ReasonLabels {
                    reason: decision.reason.to_string(),
                })
                .inc();
        }
        tracing::debug!(service = key, ips = ?decision.ips, ok = decision.ok, reason = decision.reason, shown = ?ingress_ips(&svc), "decided");
        if !up_to_date(&svc, &decision) {
            if decision.ok && decision.ips != ingress_ips(&svc) && !decision.ips.is_empty() {
                self.metrics.allocations.inc();
            }
            self.write(key, WriteJob::Apply(svc, decision));
        }
    }

    /// Writes in the background; `Msg::Written` reports how it ended.
    fn write(&mut self, key: &str, job: WriteJob) {
        if self.in_flight.contains(key) {
            // Decide again when the current write lands; the store will have its result by then.
            self.again.insert(key.to_string());
            return;
        }
        self.in_flight.insert(key.to_string());
        let (writer, tx, key) = (self.writer.clone(), self.tx.clone(), key.to_string());
        tokio::spawn(async move {
            let outcome = writer.write(&key, &job).await;
            let rv = job.service().metadata.resource_version.clone();
            let _ = tx.send(Msg::Written(key, outcome, rv));
        });
    }

    /// Validates the configuration, hands valid pools to the allocator, and records verdicts.
    fn apply_config(&mut self) {
        let snapshot = self.stores.snapshot();
        let report = validate::validate(&snapshot);
        let Some(leading) = self.leading.as_mut() else {
            return;
        };
        leading.decider.set_pools(&report.valid_pools);
        // Turning `avoidConflictingIPs` off forgets the pool's conflicts (the operator's reset).
        let avoiding = snapshot
            .pools
            .iter()
            .filter(|p| p.spec.avoid_conflicting_ips)
            .map(|p| p.name_any())
            .collect();
        if leading.conflicts.retain_pools(&avoiding) {
            self.freed = true;
        }
        leading.decider.set_conflicts(leading.conflicts.addresses());
        self.config_status.write_verdicts(&snapshot, &report);
        leading.report = report;
    }
}

/// Records the conflicts the Service's speaker reports on addresses it holds, in pools that
/// avoid them. Returns the other Services holding a newly recorded address: they move too.
fn observe_conflicts(leading: &mut Leading, key: &str, svc: &Service) -> Vec<String> {
    let held = leading.decider.ips_of(key);
    let mut others = Vec::new();
    let mut changed = false;
    // A report is a node's word: only addresses this very Service holds count.
    for c in reported_conflicts(svc)
        .into_iter()
        .filter(|c| held.contains(&c.address))
    {
        let Some(pool) = leading.decider.pool_avoiding_conflicts(&c.address) else {
            continue;
        };
        let holders = leading.decider.holders(&c.address);
        match leading
            .conflicts
            .report(&pool, &c, &holders, Timestamp::now())
        {
            Seen::New => {
                tracing::warn!(
                    service = key,
                    pool,
                    conflict = c.describe(),
                    "address in conflict: the pool stops handing it out and its Services move"
                );
                changed = true;
                others.extend(holders.into_iter().filter(|h| h != key));
            }
            Seen::Full => tracing::warn!(
                service = key,
                pool,
                conflict = c.describe(),
                max = crate::conflicts::MAX_PER_POOL,
                "address in conflict not recorded: the pool remembers the most conflicts it may"
            ),
            Seen::Refreshed | Seen::Known => {}
        }
    }
    if changed {
        leading.decider.set_conflicts(leading.conflicts.addresses());
    }
    others
}
