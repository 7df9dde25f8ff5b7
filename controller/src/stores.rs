//! What the controller caches (Services, Namespaces and FerroLB's configuration), and which
//! changes of them reach the decision loop.

use std::collections::BTreeMap;

use ferrolb_crds::BGPPeer;
use ferrolb_crds::bgp_peer::redact_secret;
use ferrolb_crds::service::key as key_of;
use ferrolb_crds::validate::{Snapshot, ValidPool};
use ferrolb_shell::api_health::ApiHealth;
use ferrolb_shell::config::{ConfigStores, Watcher};
use ferrolb_shell::watch::{self, Kind};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::decide::Context;
use crate::inbox::Msg;
use crate::intent;

/// Reflector stores of everything the controller reads.
#[derive(Clone)]
pub(crate) struct Stores {
    pub services: Store<Service>,
    pub namespaces: Store<Namespace>,
    pub config: ConfigStores,
}

impl Stores {
    /// Starts the watches; each change that matters is sent on `tx`. `manager` is the
    /// controller's field manager (the only one whose fields a cached Service keeps).
    pub fn watch(
        client: &Client,
        namespace: &str,
        manager: &str,
        health: &ApiHealth,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> Stores {
        let feed = Feed {
            health: health.clone(),
            tx,
        };
        let ours = manager.to_string();
        let all = watcher::Config::default;
        Stores {
            services: feed.reflect(
                Api::all(client.clone()),
                all(),
                |s| Msg::Service(key_of(s)),
                move |s: &mut Service| slim_service(s, &ours),
                None,
            ),
            namespaces: feed.reflect(
                Api::all(client.clone()),
                all(),
                |_| Msg::Namespaces,
                |n: &mut Namespace| {
                    n.metadata.managed_fields = None;
                    n.metadata.annotations = None;
                },
                Some(namespace_print),
            ),
            config: ConfigStores::watch(client, namespace, &feed),
        }
    }

    pub async fn ready(&self) {
        let _ = futures::join!(
            self.services.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.config.ready(),
        );
    }

    pub fn snapshot(&self) -> Snapshot {
        self.config.snapshot()
    }

    /// What `svc` is judged with: the valid pools whose `serviceAllocation` selects it (by its
    /// namespace's labels and its own).
    pub fn context<'a>(&self, svc: &'a Service, valid_pools: &[ValidPool]) -> Context<'a> {
        let ns = svc.namespace().unwrap_or_default();
        let ns_labels = self
            .namespaces
            .get(&ObjectRef::new(&ns))
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        Context {
            service: svc,
            matching_pools: intent::matching_pools(valid_pools, &ns, &ns_labels, svc.labels()),
            conflicts: vec![],
        }
    }
}

/// Turns watch events into messages for the decision loop.
struct Feed {
    health: ApiHealth,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Feed {
    /// Runs a reflector for `api` (see [`watch::reflect`]: quick resume, health reporting),
    /// sending `msg(object)` for every change that matters. `slim` trims each object before it
    /// is cached (memory grows with the number of Services).
    /// `fingerprint`, when given, names what matters of an object: an update that leaves it
    /// unchanged (our own status writes, for instance) sends nothing, so writing a pool's
    /// counts does not trigger a resync of every Service. Deletions and re-lists always count.
    fn reflect<K: Kind>(
        &self,
        api: Api<K>,
        cfg: watcher::Config,
        msg: fn(&K) -> Msg,
        slim: impl Fn(&mut K) + Send + Sync + 'static,
        fingerprint: Option<fn(&K) -> String>,
    ) -> Store<K> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let key = |o: &K| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
        let tx = self.tx.clone();
        watch::reflect(api, cfg, self.health.clone(), slim, move |ev| {
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
}

/// FerroLB's configuration: cached as it is, and any change that matters is a `Msg::Config`.
impl Watcher for Feed {
    fn watch<K: Kind>(&self, api: Api<K>, cfg: watcher::Config) -> Store<K> {
        self.reflect(api, cfg, |_| Msg::Config, keep, Some(config_print))
    }

    fn watch_peers(&self, api: Api<BGPPeer>) -> Store<BGPPeer> {
        let cfg = watcher::Config::default();
        self.reflect(api, cfg, |_| Msg::Config, keep, Some(peer_print))
    }

    /// Each Secret is redacted before it is cached: the controller says why one is unusable
    /// without holding any password.
    fn watch_secrets(&self, api: Api<Secret>, cfg: watcher::Config) -> Store<Secret> {
        self.reflect(api, cfg, |_| Msg::Config, redact_secret, Some(secret_print))
    }
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

/// Caches a configuration object as it is.
fn keep<K>(_: &mut K) {}

/// Drops what the controller never reads from a cached Service: `kubectl apply`'s copy of the
/// whole object and other managers' field lists (ours is kept: it says whether we wrote status).
pub(crate) fn slim_service(s: &mut Service, manager: &str) {
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
            f.fields_v1 = owns_something.then(|| FieldsV1(serde_json::json!({"f:": {}})));
            f.api_version = None;
            f.time = None;
        }
    }
}
