//! What the speaker reads from the API server: reflector stores, and a signal whenever any of
//! them changes (the plan is recomputed from scratch on each signal; it is cheap).

use ferrolb_shell::api_health::ApiHealth;
use ferrolb_shell::config::{ConfigStores, Watcher};
use ferrolb_shell::watch::{self, Kind};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::watch as signal;

/// Reflector stores of everything the speaker reads: its own kinds, and FerroLB's
/// configuration (`config`).
#[derive(Clone)]
pub struct Cluster {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    pub config: ConfigStores,
    health: ApiHealth,
}

/// The speaker's way of watching: every kind slimmed alike, every change ticks `changed`.
struct Ticking {
    health: ApiHealth,
    changed: signal::Sender<u64>,
}

impl Watcher for Ticking {
    fn watch<K: Kind>(&self, api: Api<K>, cfg: watcher::Config) -> Store<K> {
        // The speaker never reads field managers or `kubectl apply`'s copy of an object: drop
        // them before caching (memory grows with the number of Services and EndpointSlices).
        let slim = |o: &mut K| {
            let m = o.meta_mut();
            m.managed_fields = None;
            if let Some(a) = m.annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        };
        let changed = self.changed.clone();
        watch::reflect(api, cfg, self.health.clone(), slim, move |ev| {
            if !matches!(ev, watcher::Event::Init) {
                changed.send_modify(|n| *n = n.wrapping_add(1));
            }
            true
        })
    }
}

impl Cluster {
    /// Starts watching; `changed` ticks on every change. Each watch resumes within ~1 s of the
    /// API server answering again; one line is logged when they start failing and one when
    /// they recover (see `api_reachable`).
    pub fn watch(client: &Client, namespace: &str, changed: signal::Sender<u64>) -> Cluster {
        let w = Ticking {
            health: ApiHealth::start("speaker"),
            changed,
        };
        let all = watcher::Config::default;
        Cluster {
            services: w.watch(Api::all(client.clone()), all()),
            slices: w.watch(Api::all(client.clone()), all()),
            nodes: w.watch(Api::all(client.clone()), all()),
            config: ConfigStores::watch(client, namespace, &w),
            health: w.health,
        }
    }

    /// True while every watch reaches the API server; false from ~1 s after they start
    /// failing until they have all listed again. For readiness and the `api_reachable` gauge.
    pub fn api_reachable(&self) -> signal::Receiver<bool> {
        self.health.reachable()
    }

    /// Sets `gauge` to 1 while the watches reach the API server, 0 while they do not.
    pub fn export_api_reachable(&self, gauge: prometheus_client::metrics::gauge::Gauge) {
        self.health.on_change(move |up| {
            gauge.set(i64::from(up));
        });
    }

    pub async fn ready(&self) {
        let _ = futures::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.config.ready(),
        );
    }
}
