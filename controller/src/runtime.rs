//! The controller's Kubernetes shell: watches Services, Namespaces and FerroLB's configuration,
//! feeds the pure allocator one decision at a time, and writes the results back.
//!
//! One task owns the allocator, so decisions are serial and deterministic; API writes run
//! concurrently (bounded), one in flight per object, so a slow write never blocks decisions and
//! a newer decision never loses to an older write.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::apiwatch::{self, ApiHealth};
use crate::events::EventWriter;
use crate::leader::Fence;
use crate::writer::{Outcome, RETRY_LATER, WriteJob, Writer};
use anyhow::Result;
use ferrolb_crds::bgp_peer::{PASSWORD_SECRET_SELECTOR, redact_secret};
use ferrolb_crds::status::{VALID, condition, set_condition};
use ferrolb_crds::validate::{self, Report, Snapshot, Verdict};
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement, annotations,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::decide::{Decider, Decision};
use crate::intent;
use crate::metrics::{Metrics, PoolLabels, ReasonLabels, gauge_value};

/// Condition type FerroLB writes on Services.
pub const SERVICE_CONDITION: &str = "ferrolb.io/IPAllocated";
/// Field manager of every controller write (with `-<class>` appended for a non-default class,
/// so two FerroLB controllers serving different classes never clear each other's fields).
pub const MANAGER: &str = "ferrolb-controller";

/// The field manager for `class`.
pub fn manager_for(class: Option<&str>) -> String {
    match class {
        None => MANAGER.to_string(),
        Some(c) => format!("{MANAGER}-{}", c.replace('/', "-"))
            .chars()
            .take(128)
            .collect(),
    }
}

/// Start-up settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace holding FerroLB's configuration.
    pub namespace: String,
    /// `spec.loadBalancerClass` handled (None: Services without a class).
    pub lb_class: Option<String>,
    /// Name of this replica (events, lease).
    pub identity: String,
    /// Concurrent API writes.
    pub write_concurrency: usize,
}

/// What the decision loop hears about.
pub(crate) enum Msg {
    Service(String),
    Namespaces,
    Config,
    /// A Service write ended: key, how, and the resourceVersion it was conditional on.
    Written(String, Outcome, Option<String>),
    /// A watch listed afresh (after an outage): deletions may have been missed.
    Relisted,
}

/// Reflector stores of everything the controller reads.
#[derive(Clone)]
struct Stores {
    services: Store<Service>,
    namespaces: Store<Namespace>,
    pools: Store<IPAddressPool>,
    l2: Store<L2Advertisement>,
    bgp_ads: Store<BGPAdvertisement>,
    peers: Store<BGPPeer>,
    bfd: Store<BFDProfile>,
    communities: Store<Community>,
    /// Possible BGPPeer `passwordSecret`s, redacted: to explain a missing or unusable one.
    secrets: Store<Secret>,
}

impl Stores {
    async fn ready(&self) {
        let _ = futures::join!(
            self.services.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.pools.wait_until_ready(),
            self.l2.wait_until_ready(),
            self.bgp_ads.wait_until_ready(),
            self.peers.wait_until_ready(),
            self.bfd.wait_until_ready(),
            self.communities.wait_until_ready(),
            self.secrets.wait_until_ready(),
        );
    }

    fn snapshot(&self) -> Snapshot {
        fn own<K>(s: &Store<K>) -> Vec<K>
        where
            K: kube::runtime::reflector::Lookup + Clone,
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            s.state().iter().map(|k| (**k).clone()).collect()
        }
        Snapshot {
            pools: own(&self.pools),
            l2_advertisements: own(&self.l2),
            bgp_advertisements: own(&self.bgp_ads),
            bgp_peers: own(&self.peers),
            bfd_profiles: own(&self.bfd),
            communities: own(&self.communities),
            secrets: own(&self.secrets),
        }
    }
}

/// Runs a reflector for `api` (see [`apiwatch::reflect`]: quick resume, health reporting),
/// sending `msg(object)` for every change that matters. `slim` trims each object before it is
/// cached (memory grows with the number of Services).
/// `fingerprint`, when given, names what matters of an object: an update that leaves it unchanged
/// (our own status writes, for instance) sends nothing, so writing a pool's counts does not
/// trigger a resync of every Service. Deletions and re-lists always count.
fn reflect<K>(
    api: Api<K>,
    health: &ApiHealth,
    tx: mpsc::UnboundedSender<Msg>,
    msg: fn(&K) -> Msg,
    slim: impl Fn(&mut K) + Send + Sync + 'static,
    fingerprint: Option<fn(&K) -> String>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let cfg = watcher::Config::default();
    reflect_with(api, cfg, health, tx, msg, slim, fingerprint)
}

/// [`reflect`] with a watcher configuration (a field selector, say).
fn reflect_with<K>(
    api: Api<K>,
    cfg: watcher::Config,
    health: &ApiHealth,
    tx: mpsc::UnboundedSender<Msg>,
    msg: fn(&K) -> Msg,
    slim: impl Fn(&mut K) + Send + Sync + 'static,
    fingerprint: Option<fn(&K) -> String>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let key = |o: &K| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
    apiwatch::reflect(api, cfg, health.clone(), slim, move |ev| {
        let m = match ev {
            watcher::Event::Apply(o) => {
                if let Some(f) = fingerprint {
                    let print = f(o);
                    if seen.get(&key(o)) == Some(&print) {
                        return true;
                    }
                    seen.insert(key(o), print);
                }
                msg(o)
            }
            watcher::Event::Delete(o) => {
                seen.remove(&key(o));
                msg(o)
            }
            watcher::Event::InitApply(o) => {
                if let Some(f) = fingerprint {
                    seen.insert(key(o), f(o));
                }
                msg(o)
            }
            // The store now holds the fresh list: objects deleted meanwhile are gone from
            // it without a Delete event, so everything is looked at again.
            watcher::Event::InitDone => Msg::Relisted,
            watcher::Event::Init => return true,
        };
        tx.send(m).is_ok()
    })
}

/// What of a configuration object matters to allocation: its spec (generation) and labels.
fn config_print<K: Resource>(o: &K) -> String {
    format!("{:?}/{:?}", o.meta().generation, o.meta().labels)
}

/// A BGPPeer also matters when its sessions change (for the established summary).
fn peer_print(p: &BGPPeer) -> String {
    let sessions: Vec<_> = p
        .status
        .iter()
        .flat_map(|s| s.sessions.iter().map(|x| (&x.node, &x.state)))
        .collect();
    format!("{}/{sessions:?}", config_print(p))
}

/// A (redacted) Secret matters through whether its password is usable.
fn secret_print(s: &Secret) -> String {
    format!("{:?}/{:?}", s.type_, s.data)
}

/// Namespaces matter to allocation through their labels only.
fn namespace_print(n: &Namespace) -> String {
    format!("{:?}", n.metadata.labels)
}

use ferrolb_crds::service::key as key_of;

/// Runs the controller until the process ends.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    mut leader: watch::Receiver<bool>,
    fence: Fence,
) -> Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let health = ApiHealth::start("controller");
    let ns = settings.namespace.as_str();
    let manager = manager_for(settings.lb_class.as_deref());
    let ours = manager.clone();
    let stores = Stores {
        services: reflect(
            Api::all(client.clone()),
            &health,
            tx.clone(),
            |s| Msg::Service(key_of(s)),
            move |s: &mut Service| slim_service(s, &ours),
            None,
        ),
        namespaces: reflect(
            Api::all(client.clone()),
            &health,
            tx.clone(),
            |_| Msg::Namespaces,
            |n: &mut Namespace| {
                n.metadata.managed_fields = None;
                n.metadata.annotations = None;
            },
            Some(namespace_print),
        ),
        pools: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(config_print),
        ),
        l2: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(config_print),
        ),
        bgp_ads: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(config_print),
        ),
        peers: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(peer_print),
        ),
        bfd: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(config_print),
        ),
        communities: reflect(
            Api::namespaced(client.clone(), ns),
            &health,
            tx.clone(),
            |_| Msg::Config,
            keep,
            Some(config_print),
        ),
        // Only Secrets that can be a passwordSecret are asked for, and each is redacted before
        // it is cached: the controller says why one is unusable without holding any password.
        secrets: reflect_with(
            Api::namespaced(client.clone(), ns),
            watcher::Config::default().fields(PASSWORD_SECRET_SELECTOR),
            &health,
            tx.clone(),
            |_| Msg::Config,
            redact_secret,
            Some(secret_print),
        ),
    };
    stores.ready().await;
    tracing::info!("caches synced");
    // Ready while the watches reach the API server (a controller that cannot see changes
    // cannot act on them); the gauge says the same.
    let mut reachable = health.reachable();
    let gauge = metrics.api_reachable.clone();
    tokio::spawn(async move {
        loop {
            let up = *reachable.borrow_and_update();
            ready.store(up, Ordering::Relaxed);
            gauge.set(i64::from(up));
            if reachable.changed().await.is_err() {
                return;
            }
        }
    });

    let writer = Writer {
        manager: manager.clone(),
        client: client.clone(),
        events: EventWriter::new(client.clone(), &manager, &settings.identity),
        metrics: metrics.clone(),
        permits: Arc::new(Semaphore::new(settings.write_concurrency.max(1))),
        tx: tx.clone(),
        fence,
    };
    let mut ctl = Controller {
        settings,
        stores,
        metrics,
        writer,
        leading: None,
        in_flight: BTreeSet::new(),
        again: BTreeSet::new(),
        pending: BTreeSet::new(),
        freed: false,
        blocked: BTreeMap::new(),
        tx: tx.clone(),
    };

    loop {
        let is_leader = *leader.borrow_and_update();
        if is_leader && ctl.leading.is_none() {
            ctl.take_lead(&client).await;
        } else if !is_leader && ctl.leading.is_some() {
            tracing::warn!("lost leadership: stop writing");
            ctl.leading = None;
            ctl.metrics.leader.set(0);
        }
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    anyhow::bail!("leader election ended");
                }
            }
            msg = rx.recv() => {
                let Some(first) = msg else { anyhow::bail!("watchers ended") };
                // Batch whatever else is queued: one config pass serves many changes.
                let mut batch = Batch::default();
                batch.add(first);
                while let Ok(m) = rx.try_recv() {
                    batch.add(m);
                    if batch.services.len() > 4096 {
                        break;
                    }
                }
                ctl.process(batch);
            }
        }
    }
}

#[derive(Default)]
struct Batch {
    services: BTreeSet<String>,
    config: bool,
    everything: bool,
    written: Vec<(String, Outcome, Option<String>)>,
}

impl Batch {
    fn add(&mut self, m: Msg) {
        match m {
            Msg::Service(k) => {
                self.services.insert(k);
            }
            Msg::Config => self.config = true,
            Msg::Namespaces | Msg::Relisted => self.everything = true,
            Msg::Written(k, o, rv) => self.written.push((k, o, rv)),
        }
    }
}

/// State held only while leading.
struct Leading {
    decider: Decider,
    report: Report,
}

struct Controller {
    settings: Settings,
    stores: Stores,
    metrics: Metrics,
    writer: Writer,
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
    tx: mpsc::UnboundedSender<Msg>,
}

impl Controller {
    /// Rebuilds allocation state from the API server before any new allocation, so a pending
    /// Service can never take an address that another Service already shows in its status.
    async fn take_lead(&mut self, client: &Client) {
        let started = Instant::now();
        // A fresh list (not the cache): the previous leader may have written moments ago.
        // Paged and slimmed, so restoring many Services does not double the controller's memory.
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
                        (intent::is_ours(&s, self.settings.lb_class.as_deref())
                            && !ingress_ips(&s).is_empty())
                        .then(|| {
                            slim_service(&mut s, &self.writer.manager);
                            s
                        })
                    }));
                    if token.is_none() {
                        break;
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
        let report = validate::validate(&self.stores.snapshot());
        let mut decider = Decider::new(&report.valid_pools);
        let mut ours: Vec<&Service> = services
            .iter()
            .filter(|s| intent::is_ours(s, self.settings.lb_class.as_deref()))
            .collect();
        ours.sort_by(|a, b| {
            let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (ta, key_of(a)).cmp(&(tb, key_of(b)))
        });
        let mut restored = 0;
        for svc in ours {
            let ips = ingress_ips(svc);
            if ips.is_empty() {
                continue;
            }
            let ctx = self.context(svc, &report);
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
        self.leading = Some(Leading { decider, report });
        self.metrics.leader.set(1);
        self.process(Batch {
            config: true,
            everything: true,
            ..Default::default()
        });
    }

    fn context<'a>(&self, svc: &'a Service, report: &Report) -> crate::decide::Context<'a> {
        let ns = svc.namespace().unwrap_or_default();
        let ns_labels = self
            .stores
            .namespaces
            .get(&ObjectRef::new(&ns))
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        crate::decide::Context {
            service: svc,
            matching_pools: intent::matching_pools(
                &report.valid_pools,
                &ns,
                &ns_labels,
                svc.labels(),
            ),
        }
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
        if batch.config {
            // Refused writes get another go when FerroLB's configuration changes (not on every
            // Namespace event or re-list: those come often and change nothing for them).
            self.blocked.clear();
        }
        if batch.config {
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
        self.write_pool_status();
        if let Some(l) = &self.leading {
            self.metrics.services.set(l.decider.len() as i64);
        }
    }

    fn reconcile(&mut self, key: &str, svc: Option<Arc<Service>>) {
        let Some(leading) = self.leading.as_mut() else {
            return;
        };
        let svc = match svc {
            Some(s) if intent::is_ours(&s, self.settings.lb_class.as_deref()) => s,
            other => {
                self.pending.remove(key);
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
        let ns = svc.namespace().unwrap_or_default();
        let ns_labels = self
            .stores
            .namespaces
            .get(&ObjectRef::new(&ns))
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        let ctx = crate::decide::Context {
            service: &svc,
            matching_pools: intent::matching_pools(
                &leading.report.valid_pools,
                &ns,
                &ns_labels,
                svc.labels(),
            ),
        };
        let decision = leading.decider.decide(key, ctx);
        self.metrics
            .reconcile_seconds
            .observe(started.elapsed().as_secs_f64());
        if decision.ok {
            self.pending.remove(key);
        } else {
            self.pending.insert(key.to_string());
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

    fn write(&mut self, key: &str, job: WriteJob) {
        if self.in_flight.contains(key) {
            // Decide again when the current write lands; the store will have its result by then.
            self.again.insert(key.to_string());
            return;
        }
        self.in_flight.insert(key.to_string());
        self.writer.spawn(key.to_string(), job);
    }

    /// Validates the configuration, hands valid pools to the allocator, and records verdicts.
    fn apply_config(&mut self) {
        let snapshot = self.stores.snapshot();
        let report = validate::validate(&snapshot);
        let Some(leading) = self.leading.as_mut() else {
            return;
        };
        leading.decider.set_pools(&report.valid_pools);
        let ns = self.settings.namespace.clone();
        let c = &self.writer.client;
        self.writer.verdicts::<L2Advertisement>(
            Api::namespaced(c.clone(), &ns),
            &snapshot.l2_advertisements,
            &report.l2_advertisements,
        );
        self.writer.verdicts::<BGPAdvertisement>(
            Api::namespaced(c.clone(), &ns),
            &snapshot.bgp_advertisements,
            &report.bgp_advertisements,
        );
        self.writer.verdicts::<BGPPeer>(
            Api::namespaced(c.clone(), &ns),
            &snapshot.bgp_peers,
            &report.bgp_peers,
        );
        self.writer.verdicts::<BFDProfile>(
            Api::namespaced(c.clone(), &ns),
            &snapshot.bfd_profiles,
            &report.bfd_profiles,
        );
        self.writer.verdicts::<Community>(
            Api::namespaced(c.clone(), &ns),
            &snapshot.communities,
            &report.communities,
        );
        // `kubectl get bgppeers` shows established/total sessions, from what the speakers report.
        let peers: Api<BGPPeer> = Api::namespaced(c.clone(), &ns);
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
                    peers.clone(),
                    p.name_any(),
                    json!({ "status": { "establishedSummary": summary } }),
                );
            }
        }
        leading.report = report;
    }

    /// Writes each pool's counts and `Valid` condition when they changed.
    fn write_pool_status(&mut self) {
        let Some(leading) = &self.leading else { return };
        let api: Api<IPAddressPool> =
            Api::namespaced(self.writer.client.clone(), &self.settings.namespace);
        for pool in self.stores.pools.state() {
            let name = pool.name_any();
            let verdict = leading.report.pools.get(&name).cloned().unwrap_or(Verdict {
                ok: false,
                reason: "Pending",
                message: "not validated yet".into(),
            });
            let stats = leading.decider.stats(&name);
            for (family, used, free) in [
                ("IPv4", stats.assigned_ipv4, stats.available_ipv4),
                ("IPv6", stats.assigned_ipv6, stats.available_ipv6),
            ] {
                let labels = PoolLabels {
                    pool: name.clone(),
                    family: family.into(),
                };
                self.metrics
                    .addresses_total
                    .get_or_create(&labels)
                    .set(gauge_value(used.saturating_add(free)));
                self.metrics
                    .addresses_in_use
                    .get_or_create(&labels)
                    .set(gauge_value(used));
            }
            let old = pool.status.clone().unwrap_or_default();
            let mut new = ferrolb_crds::IPAddressPoolStatus {
                assigned_ipv4: gauge_value(stats.assigned_ipv4),
                assigned_ipv6: gauge_value(stats.assigned_ipv6),
                available_ipv4: gauge_value(stats.available_ipv4),
                available_ipv6: gauge_value(stats.available_ipv6),
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
            {
                self.writer
                    .patch_status(api.clone(), name, json!({ "status": new }));
            }
        }
    }
}

pub(crate) fn verdict_condition(v: &Verdict, generation: Option<i64>) -> Condition {
    condition(VALID, v.ok, v.reason, v.message.clone(), generation, now())
}

pub(crate) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

use ferrolb_crds::service::ingress_ips;

/// Drops what the controller never reads from a cached Service: `kubectl apply`'s copy of the
/// whole object and other managers' field lists (ours is kept: it says whether we wrote status).
fn slim_service(s: &mut Service, manager: &str) {
    if let Some(a) = s.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(m) = s.metadata.managed_fields.as_mut() {
        m.retain(|f| f.manager.as_deref() == Some(manager));
        // Only whether our status entry is non-empty is read (`wrote_status`); the field tree
        // itself is a JSON map per Service, the biggest part of a cached Service. Keep a
        // one-key marker in its place.
        for f in m.iter_mut() {
            let owns_something = f
                .fields_v1
                .as_ref()
                .is_some_and(|v| v.0.as_object().is_some_and(|o| !o.is_empty()));
            f.fields_v1 = owns_something.then(|| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                    serde_json::json!({"f:": {}}),
                )
            });
            f.api_version = None;
            f.time = None;
        }
    }
}

/// Caches a configuration object as it is.
fn keep<K>(_: &mut K) {}

pub(crate) fn our_condition(svc: &Service) -> Option<&Condition> {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == SERVICE_CONDITION))
}

/// Whether `manager` owns fields of the Service's status (so there is something of ours to clear).
fn wrote_status(svc: &Service, manager: &str) -> bool {
    svc.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(manager)
            && m.subresource.as_deref() == Some("status")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.as_object().is_some_and(|o| !o.is_empty()))
    })
}

/// Whether the Service already shows `d` (addresses, pool annotation, condition).
fn up_to_date(svc: &Service, d: &Decision) -> bool {
    let pool = svc.annotations().get(annotations::IP_ALLOCATED_FROM_POOL);
    let cond_same = our_condition(svc).is_some_and(|c| {
        c.status == if d.ok { "True" } else { "False" }
            && c.reason == d.reason
            && c.message == d.message
    });
    ingress_ips(svc) == d.ips && pool == d.pool.as_ref() && cond_same
}
