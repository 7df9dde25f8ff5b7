//! FerroLB's configuration as both programs cache it: one store per kind of its namespace, and
//! the Secrets that can be a BGP or BFD password.

use ferrolb_crds::bgp_peer::PASSWORD_SECRET_SELECTOR;
use ferrolb_crds::validate::Snapshot;
use ferrolb_crds::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};

use crate::watch::{Kind, own};

/// How a program watches a kind: what it caches of each object and what it hears of changes.
pub trait Watcher {
    /// Starts watching `api` and returns its store.
    fn watch<K: Kind>(&self, api: Api<K>, cfg: watcher::Config) -> Store<K>;

    /// BGPPeers: as any other kind unless the program needs more of them.
    fn watch_peers(&self, api: Api<BGPPeer>) -> Store<BGPPeer> {
        self.watch(api, watcher::Config::default())
    }

    /// The password Secrets (`cfg` selects them): as any other kind unless the program must
    /// not hold the passwords.
    fn watch_secrets(&self, api: Api<Secret>, cfg: watcher::Config) -> Store<Secret> {
        self.watch(api, cfg)
    }
}

/// Reflector stores of FerroLB's configuration.
#[derive(Clone)]
pub struct ConfigStores {
    pub pools: Store<IPAddressPool>,
    pub l2: Store<L2Advertisement>,
    pub bgp_ads: Store<BGPAdvertisement>,
    pub peers: Store<BGPPeer>,
    pub bfd: Store<BFDProfile>,
    pub communities: Store<Community>,
    /// Only Secrets that can be a password (basic-auth, as in MetalLB): no other Secret of the
    /// namespace is read or cached.
    pub secrets: Store<Secret>,
}

impl ConfigStores {
    /// Starts watching the configuration in `namespace`.
    pub fn watch(client: &Client, namespace: &str, w: &impl Watcher) -> ConfigStores {
        fn api<K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>>(
            client: &Client,
            namespace: &str,
        ) -> Api<K> {
            Api::namespaced(client.clone(), namespace)
        }
        let (c, ns) = (client, namespace);
        let all = watcher::Config::default;
        ConfigStores {
            pools: w.watch(api(c, ns), all()),
            l2: w.watch(api(c, ns), all()),
            bgp_ads: w.watch(api(c, ns), all()),
            peers: w.watch_peers(api(c, ns)),
            bfd: w.watch(api(c, ns), all()),
            communities: w.watch(api(c, ns), all()),
            secrets: w.watch_secrets(api(c, ns), all().fields(PASSWORD_SECRET_SELECTOR)),
        }
    }

    /// Waits until every store holds its first list.
    pub async fn ready(&self) {
        let _ = futures::join!(
            self.pools.wait_until_ready(),
            self.l2.wait_until_ready(),
            self.bgp_ads.wait_until_ready(),
            self.peers.wait_until_ready(),
            self.bfd.wait_until_ready(),
            self.communities.wait_until_ready(),
            self.secrets.wait_until_ready(),
        );
    }

    /// What validation reads.
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
