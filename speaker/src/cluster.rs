//! What the speaker reads from the API server: reflector stores, and a signal whenever any of
//! them changes (the plan is recomputed from scratch on each signal; it is cheap).

use std::fmt::Debug;

use ferrolb_crds::validate::Snapshot;
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

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
}

fn reflect<K>(api: Api<K>, cfg: watcher::Config, changed: watch::Sender<u64>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    // The speaker never reads field managers or `kubectl apply`'s copy of an object: drop them
    // before caching (memory grows with the number of Services and EndpointSlices).
    let slim = |o: &mut K| {
        let m = o.meta_mut();
        m.managed_fields = None;
        if let Some(a) = m.annotations.as_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    };
    let stream = reflector::reflector(writer, watcher(api, cfg).modify(slim))
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => {
                    changed.send_modify(|n| *n = n.wrapping_add(1));
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), "watch error (retrying)")
                }
            }
        }
    });
    store
}

impl Cluster {
    /// Starts watching; `changed` ticks on every change.
    pub fn watch(client: &Client, namespace: &str, changed: watch::Sender<u64>) -> Cluster {
        let all = watcher::Config::default;
        let ns = |c: &Client| c.clone();
        Cluster {
            services: reflect(Api::all(client.clone()), all(), changed.clone()),
            slices: reflect(Api::all(client.clone()), all(), changed.clone()),
            nodes: reflect(Api::all(client.clone()), all(), changed.clone()),
            secrets: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            pools: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            l2: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            bgp_ads: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            peers: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            bfd: reflect(
                Api::namespaced(ns(client), namespace),
                all(),
                changed.clone(),
            ),
            communities: reflect(Api::namespaced(ns(client), namespace), all(), changed),
        }
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
