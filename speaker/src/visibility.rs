//! Makes announcements visible with kubectl: which node announces each Service IP and on which
//! interfaces (a Service condition written by the announcing speaker, and an event when it
//! changes), and each node's BGP sessions (an entry of `BGPPeer.status.sessions`). What to show
//! is decided from the plan and the runtimes' status ([`StatusWriter::show_l2`],
//! [`StatusWriter::show_bgp`]); the writes go out newest-first per object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_crds::BGPSessionStatus;
use ferrolb_shell::events::{EventType, EventWriter};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::cluster::Cluster;
use crate::l2::{DesiredL2, L2Status};
use crate::metrics::{Metrics, PeerLabels};
use crate::plan::Plan;
use crate::sessions::Sessions;
use ferrolb_crds::service::{ADDRESS_CONFLICT, AddressConflict};

/// Condition type the announcing speaker writes on Services (one home, in the API crate).
use ferrolb_crds::service::L2_ANNOUNCED as L2_CONDITION;
use ferrolb_crds::service::{AnnouncedFrom, L2_WHERE_PREFIX};

/// What a Service should show about its L2 announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
struct L2Shown {
    announced: bool,
    reason: &'static str,
    message: String,
}

/// Writes of the newest value per object, in order: at most one write in flight per object,
/// values superseded while it is in flight are skipped, and a failed write is retried (1 s) until
/// it lands or a newer value replaces it. (Spawning one write per change let an older write land
/// after a newer one: a restarted BGP session showed `Idle` while Established.)
struct Latest<V> {
    /// Per object with a writer running: the value it should write next, if any.
    slots: Arc<Mutex<HashMap<String, Option<V>>>>,
}

impl<V: Clone + Send + 'static> Latest<V> {
    fn new() -> Latest<V> {
        Latest {
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Queues `value` for `key`; `write` performs one attempt (Err = retry later).
    fn set<F, Fut>(&self, key: String, value: V, write: F)
    where
        F: Fn(V) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let mut slots = lock(&self.slots);
        if let Some(pending) = slots.get_mut(&key) {
            // A writer runs for this key and will pick the newest value up.
            *pending = Some(value);
            return;
        }
        slots.insert(key.clone(), Some(value));
        drop(slots);
        let slots = self.slots.clone();
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut all = lock(&slots);
                    match all.get_mut(&key).and_then(Option::take) {
                        Some(v) => v,
                        None => {
                            all.remove(&key);
                            return;
                        }
                    }
                };
                if let Err(e) = write(next.clone()).await {
                    tracing::debug!(object = key, error = e, "status write failed; retrying");
                    {
                        let mut all = lock(&slots);
                        if let Some(pending) = all.get_mut(&key) {
                            pending.get_or_insert(next);
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking writer cannot leave the map half-updated (single inserts/takes), so a
    // poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes visibility objects, remembering what it wrote so nothing is written twice.
pub struct StatusWriter {
    client: Client,
    node: String,
    events: EventWriter,
    /// What this node last wrote on each Service, while it is the node that shows it.
    l2_written: BTreeMap<String, L2Shown>,
    /// This node's entry of each BGPPeer: written (Some) or removed (None).
    bgp_written: BTreeMap<String, Option<BGPSessionStatus>>,
    l2_writes: Latest<(Arc<Service>, L2Shown)>,
    bgp_writes: Latest<Option<BGPSessionStatus>>,
}

impl StatusWriter {
    pub fn new(client: Client, node: &str) -> StatusWriter {
        let events = EventWriter::new(client.clone(), "ferrolb-speaker", node);
        StatusWriter {
            client,
            node: node.to_string(),
            events,
            l2_written: BTreeMap::new(),
            bgp_written: BTreeMap::new(),
            l2_writes: Latest::new(),
            bgp_writes: Latest::new(),
        }
    }

    /// Shows `want` on the Service unless it already shows it; true if a write was queued.
    fn l2(&mut self, svc: &Arc<Service>, want: L2Shown) -> bool {
        let key = ferrolb_crds::service::key(svc);
        let current = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == L2_CONDITION));
        let shows = current.is_some_and(|c| {
            c.status == if want.announced { "True" } else { "False" }
                && c.reason == want.reason
                && c.message == want.message
        });
        if shows || self.l2_written.get(&key) == Some(&want) {
            return false;
        }
        self.l2_written.insert(key.clone(), want.clone());
        let client = self.client.clone();
        let events = self.events.clone();
        self.l2_writes
            .set(key.clone(), (svc.clone(), want), move |(svc, want)| {
                let (client, events, key) = (client.clone(), events.clone(), key.clone());
                async move { write_l2(client, events, &key, &svc, want).await }
            });
        true
    }

    /// Another node (or nobody) shows the Service now: forget what this node wrote, so that it
    /// writes (and sends NodeAssigned) again when the address comes back to it.
    fn forget_l2(&mut self, svc: &Service) {
        if !self.l2_written.is_empty() {
            self.l2_written.remove(&ferrolb_crds::service::key(svc));
        }
    }

    /// Writes this node's entry in `BGPPeer.status.sessions` when it changed; `None` removes it
    /// (the node no longer peers).
    fn bgp(&mut self, namespace: &str, peer: &str, status: Option<BGPSessionStatus>) {
        if self.bgp_written.get(peer) == Some(&status) {
            return;
        }
        self.bgp_written.insert(peer.to_string(), status.clone());
        let api: Api<ferrolb_crds::BGPPeer> = Api::namespaced(self.client.clone(), namespace);
        let manager = format!("ferrolb-speaker-{}", self.node);
        let name = peer.to_string();
        self.bgp_writes
            .set(format!("{namespace}/{peer}"), status, move |status| {
                let (api, manager, peer) = (api.clone(), manager.clone(), name.clone());
                async move {
                    // sessions is a list map keyed by node, and this node's field manager owns
                    // only its own entry: applying an empty list removes just that entry. No
                    // force: no other manager writes these entries.
                    let body = json!({
                        "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                        "metadata": { "name": peer },
                        "status": { "sessions": status.into_iter().collect::<Vec<_>>() }
                    });
                    let r = api
                        .patch_status(&peer, &PatchParams::apply(&manager), &Patch::Apply(&body))
                        .await;
                    settle(r, "BGPPeer", &peer)
                }
            });
    }
}

/// A write's outcome for [`Latest`]: Ok when done (landed, or the object is gone), Err to retry.
/// Errors that no retry can fix (403 refused by RBAC or an admission policy, 409 a field owned by
/// someone else, 400/422 invalid) are logged and dropped, so they neither retry forever nor hold
/// the writer; the value is written again when it changes.
fn settle<T>(r: Result<T, kube::Error>, kind: &str, name: &str) -> Result<(), String> {
    match r {
        Ok(_) => Ok(()),
        // The object was deleted: nothing left to show.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 403 | 409 | 422) => {
            tracing::warn!(kind, object = name, code = s.code, error = %s.message, "status write refused; not retried");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the L2 condition on a Service, then (once it landed) the event saying so.
async fn write_l2(
    client: Client,
    events: EventWriter,
    key: &str,
    svc: &Service,
    want: L2Shown,
) -> Result<(), String> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client, &ns);
    let cond = Condition {
        type_: L2_CONDITION.into(),
        status: if want.announced { "True" } else { "False" }.into(),
        reason: want.reason.into(),
        message: want.message.clone(),
        observed_generation: svc.metadata.generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    };
    let body = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": svc.name_any(), "namespace": ns },
        "status": { "conditions": [cond] }
    });
    // One manager for all speakers: the announcer of the moment owns the condition. No force:
    // only this manager writes the condition, and the admission policy of deploy/rbac lets the
    // speaker change nothing else in the status.
    let pp = PatchParams::apply("ferrolb-speaker");
    match api
        .patch_status(&svc.name_any(), &pp, &Patch::Apply(&body))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 400 | 403 | 409 | 422) => {
            return settle(Err::<(), _>(kube::Error::Api(s)), "Service", key);
        }
        Err(e) => {
            tracing::warn!(service = key, error = %e, "writing L2 condition failed");
            return Err(e.to_string());
        }
    }
    let (type_, reason) = if want.announced {
        (EventType::Normal, "NodeAssigned")
    } else {
        (EventType::Warning, want.reason)
    };
    if let Err(e) = events
        .publish(type_, reason, "Announce", want.message, svc.object_ref(&()))
        .await
    {
        tracing::debug!(service = key, error = %e, "event not published");
    }
    Ok(())
}

impl StatusWriter {
    /// The node announcing a Service's primary address writes where all its addresses are
    /// announced, or why it cannot announce them (no usable interface); if nobody announces it any
    /// more, the node that did says so.
    pub fn show_l2(
        &mut self,
        cluster: &Cluster,
        plan: &Plan,
        last: &Plan,
        status: &L2Status,
        desired: &DesiredL2,
        me: &str,
    ) {
        for svc in cluster.services.state() {
            let ips = ferrolb_crds::service::ingress_ips(&svc);
            let Some(primary) = ips.first() else { continue };
            let mine_now = plan.l2.get(primary).is_some_and(|a| a.node == me);
            let mine_before = last.l2.get(primary).is_some_and(|a| a.node == me);
            let found = conflicts_of(status, me, &ips);
            if mine_now && !found.is_empty() {
                // Not announced where another host uses it (or reported while announcing).
                let message = AddressConflict::message(&found);
                self.l2(
                    &svc,
                    L2Shown {
                        announced: false,
                        reason: ADDRESS_CONFLICT,
                        message,
                    },
                );
            } else if mine_now && status.announcing.contains_key(primary) {
                let (ok, message) = where_announced(plan, status, me, &ips);
                let reason = if ok { "Announced" } else { "PartlyAnnounced" };
                self.l2(
                    &svc,
                    L2Shown {
                        announced: ok,
                        reason,
                        message,
                    },
                );
            } else if mine_now {
                // Won but announced nowhere: say why rather than leave a silent black hole.
                let why = status
                    .scan
                    .as_ref()
                    .zip(desired.get(primary))
                    .and_then(|(scan, sel)| scan.why_nowhere(sel));
                if let Some(why) = why {
                    let message = format!(
                        "layer2: {primary} elected to node {me}, which cannot announce it: {why}"
                    );
                    let shown = L2Shown {
                        announced: false,
                        reason: "NoMatchingInterface",
                        message: message.clone(),
                    };
                    if self.l2(&svc, shown) {
                        tracing::warn!(
                            service = ferrolb_crds::service::key(&svc),
                            ip = %primary,
                            why,
                            "address elected to this node is announced on no interface"
                        );
                    }
                }
            } else if mine_before && !plan.l2.contains_key(primary) {
                let (_, message) = where_announced(plan, status, me, &ips);
                self.l2(
                    &svc,
                    L2Shown {
                        announced: false,
                        reason: "NotAnnounced",
                        message,
                    },
                );
            } else {
                // Another node (or nobody) shows it now: if it comes back to us (A -> B -> A), what
                // we wrote before must not stop us from writing it again.
                self.forget_l2(&svc);
            }
        }
    }

    /// Reports this node's BGP sessions (metrics and `BGPPeer.status.sessions`), removes its entry
    /// from peers it no longer peers with, and returns what is broken in the BGP runtime (session
    /// tasks that ended, BFD that could not start).
    pub fn show_bgp(
        &mut self,
        sessions: &Sessions,
        cluster: &Cluster,
        want_bfd: &BTreeSet<String>,
        ns: &str,
        me: &str,
        m: &Metrics,
    ) -> Vec<String> {
        let statuses: BTreeMap<String, _> = sessions.statuses();
        let mut broken = Vec::new();
        for (peer, (rx, bfd)) in &statuses {
            // The task holds the sender: closed means it ended (panicked) while still wanted.
            if rx.has_changed().is_err() {
                broken.push(format!("BGP session task for peer {peer} ended"));
            }
            if want_bfd.contains(peer) && bfd.is_none() {
                broken.push(format!("BFD for peer {peer} could not start"));
            }
            let s = rx.borrow().clone();
            let labels = PeerLabels { peer: peer.clone() };
            let up = s.state == crate::bgp::State::Established;
            m.bgp_session_up.get_or_create(&labels).set(i64::from(up));
            m.bgp_updates
                .get_or_create(&labels)
                .set(i64::try_from(s.updates_sent).unwrap_or(i64::MAX));
            m.bgp_prefixes
                .get_or_create(&labels)
                .set(i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX));
            self.bgp(
                ns,
                peer,
                Some(BGPSessionStatus {
                    node: me.to_string(),
                    state: format!("{:?}", s.state),
                    bfd_state: bfd.map(|b| format!("{b:?}")),
                    prefixes_sent: i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX),
                    last_error: s.last_error.clone(),
                }),
            );
        }
        // Peers that still list this node (also from before a restart) but that it no longer peers
        // with (nodeSelector changed, peer invalid...): remove the entry.
        for peer in cluster.config.peers.state() {
            let name = peer.name_any();
            let lists_me = peer
                .status
                .as_ref()
                .is_some_and(|s| s.sessions.iter().any(|x| x.node == me));
            if lists_me && !statuses.contains_key(&name) {
                let labels = PeerLabels { peer: name.clone() };
                m.bgp_session_up.remove(&labels);
                m.bgp_updates.remove(&labels);
                m.bgp_prefixes.remove(&labels);
                self.bgp(ns, &name, None);
            }
        }
        broken
    }
}

/// The conflicts this node found for a Service's addresses.
fn conflicts_of(status: &L2Status, me: &str, ips: &[IpAddr]) -> Vec<AddressConflict> {
    ips.iter()
        .filter_map(|ip| status.conflicts.get(ip).map(|on| (ip, on)))
        .flat_map(|(ip, on)| {
            on.iter().map(|(iface, mac)| AddressConflict {
                address: *ip,
                mac: mac.to_string(),
                node: me.to_string(),
                interface: iface.clone(),
            })
        })
        .collect()
}

/// The addresses a FerroLB node has announced: those a Service's `L2Announced` condition shows
/// announced from a node. The L2 runtime takes them over without a conflict probe, so failover is
/// never slowed; everything else is probed before its first announcement.
pub fn announced_before(services: &[Arc<Service>]) -> BTreeSet<IpAddr> {
    services
        .iter()
        .flat_map(|svc| ferrolb_crds::service::announced_from(svc))
        .map(|a| a.address)
        .collect()
}

/// Where each of a Service's addresses is announced, in words.
fn where_announced(plan: &Plan, status: &L2Status, me: &str, ips: &[IpAddr]) -> (bool, String) {
    let mut all = true;
    let parts: Vec<String> = ips
        .iter()
        .map(|ip| match plan.l2.get(ip) {
            Some(a) => {
                let ifaces: Vec<String> = match status.announcing.get(ip) {
                    Some(set) if a.node == me => set.iter().cloned().collect(),
                    _ if a.interfaces.is_empty() => vec!["all interfaces".to_string()],
                    _ => a.interfaces.clone(),
                };
                AnnouncedFrom {
                    address: *ip,
                    node: a.node.clone(),
                    interfaces: ifaces,
                }
                .describe()
            }
            None => {
                all = false;
                format!("{ip} not announced (no live speaker selected by an L2Advertisement with a serving endpoint)")
            }
        })
        .collect();
    (all, format!("{L2_WHERE_PREFIX}{}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Slow writes, values set faster than they land: the writes land in order, the last one is
    /// the newest value, and superseded values are skipped.
    #[tokio::test]
    async fn newest_value_lands_last_and_in_order() {
        let latest = Latest::new();
        let landed = Arc::new(Mutex::new(Vec::new()));
        for v in 0..20u32 {
            let landed = landed.clone();
            latest.set("svc".into(), v, move |v| {
                let landed = landed.clone();
                async move {
                    // Earlier values take longer: unordered writers would land them last.
                    tokio::time::sleep(Duration::from_millis(u64::from(20 - v))).await;
                    lock(&landed).push(v);
                    Ok(())
                }
            });
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let landed = lock(&landed).clone();
        assert_eq!(landed.last(), Some(&19), "{landed:?}");
        assert!(landed.windows(2).all(|w| w[0] < w[1]), "{landed:?}");
        assert!(
            landed.len() < 20,
            "superseded values are skipped: {landed:?}"
        );
        assert!(lock(&latest.slots).is_empty(), "the writer ends when idle");
    }

    #[tokio::test]
    async fn failed_writes_are_retried_until_they_land() {
        let latest = Latest::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let a = attempts.clone();
        latest.set("peer".into(), 7u32, move |_| {
            let a = a.clone();
            async move {
                if a.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err("apiserver unavailable".to_string())
                } else {
                    Ok(())
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(lock(&latest.slots).is_empty());
    }
}
