//! What the speaker reads from the API server: reflector stores, and a signal whenever any of
//! them changes (the plan is recomputed from scratch on each signal; it is cheap).

use std::fmt::Debug;

use ferrolb_crds::validate::Snapshot;
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{Lookup, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::apiwatch::{self, ApiHealth};

/// Reflector stores of everything the speaker reads.
#[derive(Clone)]
pub struct Cluster {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub nodes: Store<Node>,
    pub secrets: Store<Secret>,
    pub pools: Store<IPAddressPool>,
    pub l2: Store<L2Advertisement>,
    pub bgp_ads: Store<BGPAdvertisement>,
    pub peers: Store<BGPPeer>,
    pub bfd: Store<BFDProfile>,
    pub communities: Store<Community>,
    health: ApiHealth,
}

fn reflect<K>(
    api: Api<K>,
    cfg: watcher::Config,
    health: &ApiHealth,
    changed: watch::Sender<u64>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    // The speaker never reads field managers or `kubectl apply`'s copy of an object: drop them
    // before caching (memory grows with the number of Services and EndpointSlices).
    let slim = |o: &mut K| {
        let m = o.meta_mut();
        m.managed_fields = None;
        if let Some(a) = m.annotations.as_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    };
    apiwatch::reflect(api, cfg, health.clone(), slim, move |ev| {
        if !matches!(ev, watcher::Event::Init) {
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        true
    })
}

impl Cluster {
    /// Starts watching; `changed` ticks on every change. Each watch resumes within ~1 s of the
    /// API server answering again; one line is logged when they start failing and one when
    /// they recover (see `api_reachable`).
    pub fn watch(client: &Client, namespace: &str, changed: watch::Sender<u64>) -> Cluster {
        let all = watcher::Config::default;
        let ns = |c: &Client| c.clone();
        let health = ApiHealth::start("speaker");
        let h = &health;
        Cluster {
            services: reflect(Api::all(client.clone()), all(), h, changed.clone()),
            slices: reflect(Api::all(client.clone()), all(), h, changed.clone()),
            nodes: reflect(Api::all(client.clone()), all(), h, changed.clone()),
            // Only password Secrets (BGP, BFD), which must be basic-auth as in MetalLB: no other
            // Secret of the namespace is read or cached.
            secrets: reflect(
                Api::namespaced(ns(client), namespace),
                all().fields(ferrolb_crds::bgp_peer::PASSWORD_SECRET_SELECTOR),
                h,
                changed.clone(),
            ),
            pools: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                h,
                changed.clone(),
            ),
            l2: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                h,
                changed.clone(),
            ),
            bgp_ads: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                h,
                changed.clone(),
            ),
            peers: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                h,
                changed.clone(),
            ),
            bfd: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                h,
                changed.clone(),
            ),
            communities: reflect(Api::namespaced(ns(client), namespace), all(), h, changed),
            health,
        }
    }

    /// True while every watch reaches the API server; false from ~1 s after they start
    /// failing until they have all listed again. For readiness and the `api_reachable` gauge.
    pub fn api_reachable(&self) -> watch::Receiver<bool> {
        self.health.reachable()
    }

    /// Sets `gauge` to 1 while the watches reach the API server, 0 while they do not.
    pub fn export_api_reachable(&self, gauge: prometheus_client::metrics::gauge::Gauge) {
        let mut rx = self.api_reachable();
        tokio::spawn(async move {
            loop {
                gauge.set(i64::from(*rx.borrow_and_update()));
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    pub async fn ready(&self) {
        let _ = futures::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.pools.wait_until_ready(),
            self.l2.wait_until_ready(),
            self.bgp_ads.wait_until_ready(),
            self.peers.wait_until_ready(),
            self.bfd.wait_until_ready(),
            self.communities.wait_until_ready(),
        );
    }

    pub fn snapshot(&self) -> Snapshot {
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

/// Owned copies of a store's objects.
pub fn own<K>(s: &Store<K>) -> Vec<K>
where
    K: Lookup + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    s.state().iter().map(|k| (**k).clone()).collect()
}
