//! The kube shell: connects with the user's kubeconfig and reads (list calls only; the plugin
//! never writes) what a command needs into a [`Snapshot`]. API errors become messages that say
//! what to do: API unreachable, CRDs missing, not allowed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use ferrolb_crds::{BGPAdvertisement, BGPPeer, IPAddressPool, L2Advertisement};
use k8s_openapi::api::core::v1::{Event, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::de::DeserializeOwned;

use crate::snapshot::Snapshot;

/// Where to connect: `--kubeconfig` and `--context`, as kubectl takes them.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

pub struct Cluster {
    client: Client,
    url: String,
}

impl Cluster {
    pub async fn connect(t: &Target) -> Result<Cluster> {
        let opts = KubeConfigOptions {
            context: t.context.clone(),
            ..Default::default()
        };
        let mut config = match &t.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                Config::from_custom_kubeconfig(kc, &opts).await?
            }
            None if t.context.is_some() => Config::from_kubeconfig(&opts).await?,
            None => Config::infer().await.context("no kubeconfig found")?,
        };
        // An unreachable API server should fail in seconds, not hang.
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).context("building the Kubernetes client")?;
        Ok(Cluster { client, url })
    }

    /// Lists a namespaced kind in `ns` (None: every namespace).
    async fn list<K>(&self, ns: Option<&str>, what: &str, lp: &ListParams) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = match ns {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        api.list(lp)
            .await
            .map(|l| l.items)
            .map_err(|e| self.explain(e, what))
    }

    fn explain(&self, e: kube::Error, what: &str) -> anyhow::Error {
        match e {
            kube::Error::Api(s) if s.code == 404 && what.ends_with(ferrolb_crds::GROUP) => anyhow!(
                "FerroLB's CRDs are not installed: listing {what} returned 404 Not Found \
                 (install them with `kubectl apply -f deploy/crds/`)"
            ),
            kube::Error::Api(s) if s.code == 403 => anyhow!(
                "not allowed to list {what}: {} (the plugin needs list on FerroLB's kinds, Services, EndpointSlices, Nodes and Events)",
                s.message
            ),
            kube::Error::Api(s) => anyhow!("listing {what}: {} ({})", s.message, s.code),
            other => anyhow!(
                "cannot reach the Kubernetes API server at {}: {other} (is the cluster up, and are --kubeconfig and --context right?)",
                self.url
            ),
        }
    }

    /// FerroLB's configuration in `ns`, every Service and EndpointSlice, and the nodes (for
    /// advertisements' node selectors); FerroLB handles `lb_class`.
    pub async fn snapshot(&self, ns: &str, lb_class: Option<String>) -> Result<Snapshot> {
        let lp = ListParams::default();
        let ns_ = Some(ns);
        let (pools, l2, bgp, peers, services, endpoint_slices) = tokio::try_join!(
            self.list::<IPAddressPool>(ns_, "ipaddresspools.ferrolb.io", &lp),
            self.list::<L2Advertisement>(ns_, "l2advertisements.ferrolb.io", &lp),
            self.list::<BGPAdvertisement>(ns_, "bgpadvertisements.ferrolb.io", &lp),
            self.list::<BGPPeer>(ns_, "bgppeers.ferrolb.io", &lp),
            self.list::<Service>(None, "services", &lp),
            self.list::<EndpointSlice>(None, "endpointslices", &lp),
        )?;
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| self.explain(e, "nodes"))?;
        Ok(Snapshot {
            namespace: ns.to_string(),
            config: ferrolb_crds::validate::Snapshot {
                pools,
                l2_advertisements: l2,
                bgp_advertisements: bgp,
                bgp_peers: peers,
                ..Default::default()
            },
            lb_class,
            services,
            nodes,
            endpoint_slices,
            ..Default::default()
        })
    }

    /// Only the BGPPeers in `ns`.
    pub async fn peers(&self, ns: &str) -> Result<Snapshot> {
        let peers = self
            .list::<BGPPeer>(Some(ns), "bgppeers.ferrolb.io", &ListParams::default())
            .await?;
        Ok(Snapshot {
            namespace: ns.to_string(),
            config: ferrolb_crds::validate::Snapshot {
                bgp_peers: peers,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// The events about Service `ns/name`, oldest first.
    pub async fn service_events(&self, ns: &str, name: &str) -> Result<Vec<Event>> {
        let lp = ListParams::default().fields(&format!(
            "involvedObject.kind=Service,involvedObject.name={name}"
        ));
        let mut events = self.list::<Event>(Some(ns), "events", &lp).await?;
        events.sort_by_key(|e| {
            e.event_time
                .as_ref()
                .map(|t| t.0)
                .or(e.last_timestamp.as_ref().map(|t| t.0))
        });
        Ok(events)
    }
}
