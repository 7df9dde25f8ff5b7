//! BGP sessions of this node: which peers to talk to (from `BGPPeer`s selecting the node), with
//! what settings, and which routes each gets (from the plan). Deciding is pure
//! ([`desired_sessions`]); [`Sessions`] starts, updates and stops the session tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::bgp_peer::secret_password;
use ferrolb_crds::schema::parse_duration;
use ferrolb_crds::validate::{Report, Snapshot};
use ferrolb_crds::{BFDProfileSpec, BGPPeer, DynamicAsn, selector};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::ResourceExt;
use tokio::sync::watch;

use crate::bgp::bfd::{AuthKey, AuthType, BfdConfig, BfdState};
use crate::bgp::driver::{BfdHandle, SessionConfig, SessionHandle, SessionStatus, spawn_bfd};
use crate::bgp::endpoints::{NodeEndpoints, start_session};
use crate::bgp::fsm::GracefulRestartConfig;
use crate::bgp::listener::Registration;
use crate::bgp::net::{TransportConfig, bgp_ttl};
use crate::bgp::{NextHop, PeerAsn, PeerConfig, Prefix, Route, StopReason};
use crate::departure::Departure;
use crate::plan::Advertisement;

/// This node's addresses, per family (the Node object's InternalIPs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAddrs {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<std::net::Ipv6Addr>,
}

impl NodeAddrs {
    pub fn of(node: &Node) -> NodeAddrs {
        let mut a = NodeAddrs::default();
        for addr in node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
        {
            if addr.type_ != "InternalIP" {
                continue;
            }
            match addr.address.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) if a.v4.is_none() => a.v4 = Some(v4),
                Ok(IpAddr::V6(v6)) if a.v6.is_none() => a.v6 = Some(v6),
                _ => {}
            }
        }
        a
    }
}

/// BFD for a session: where to run it, with which timers, TTL check and key.
#[derive(Clone, Debug, PartialEq)]
pub struct BfdSettings {
    pub local: IpAddr,
    pub peer: IpAddr,
    pub profile: BFDProfileSpec,
    /// Non-zero, stable per peer (derived from its name).
    pub discriminator: u32,
    /// The profile's `authentication`, key read from its Secret.
    pub auth: Option<AuthKey>,
}

/// The key of a BFD profile's `authentication`, or why it cannot be had. A profile that asks
/// for authentication never runs without it (nor with a key cut to fit): its peers do not
/// start at all, and the reason is reported.
fn bfd_auth(
    name: &str,
    spec: &BFDProfileSpec,
    secrets: &[Secret],
) -> Result<Option<AuthKey>, String> {
    use ferrolb_crds::bfd::BfdAuthType as T;
    let why = |e: String| format!("BFDProfile {name}: {e}");
    let (Some(a), Some(key)) = (&spec.authentication, spec.auth_key(secrets).map_err(why)?) else {
        return Ok(None);
    };
    let kind = match a.type_ {
        T::KeyedMd5 => AuthType::KeyedMd5,
        T::MeticulousKeyedMd5 => AuthType::MeticulousKeyedMd5,
        T::KeyedSha1 => AuthType::KeyedSha1,
        T::MeticulousKeyedSha1 => AuthType::MeticulousKeyedSha1,
    };
    // `auth_key` checked the key ID's range and the key's length.
    let key_id = u8::try_from(a.key_id).map_err(|e| why(e.to_string()))?;
    AuthKey::new(kind, key_id, &key)
        .map(Some)
        .map_err(|e| why(e.to_string()))
}

/// A session this node should run.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub config: SessionConfig,
    pub bfd: Option<BfdSettings>,
    pub routes: BTreeSet<Route>,
}

/// A stable, non-zero BFD discriminator for a peer name (FNV-1a).
fn discriminator(name: &str) -> u32 {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h.max(1)
}

fn secs(d: &Option<ferrolb_crds::schema::Duration>) -> Option<Duration> {
    d.as_ref().and_then(|d| parse_duration(d.as_str()))
}

/// The TCP MD5 password of a peer: inline, or the `password` key of its Secret (which must be in
/// FerroLB's namespace, where `secrets` come from). Validation has refused peers whose Secret is
/// unusable; this is checked again because the two may see different moments of the cache.
fn password(peer: &BGPPeer, secrets: &[Secret]) -> Result<Option<String>, String> {
    if let Some(p) = &peer.spec.password {
        return Ok(Some(p.clone()));
    }
    let Some(r) = &peer.spec.password_secret else {
        return Ok(None);
    };
    let own = peer.namespace().unwrap_or_default();
    if r.namespace
        .as_deref()
        .is_some_and(|ns| !ns.is_empty() && ns != own)
    {
        return Err(format!(
            "passwordSecret {} is not in FerroLB's namespace {own}",
            r.name
        ));
    }
    let s = secrets
        .iter()
        .find(|s| s.name_any() == r.name)
        .ok_or_else(|| format!("passwordSecret {} not found", r.name))?;
    secret_password(s)
        .map(Some)
        .map_err(|e| format!("passwordSecret {} {e}", r.name))
}

/// Session settings for one peer, or why it cannot run.
pub fn session_config(
    peer: &BGPPeer,
    me: &NodeAddrs,
    secrets: &[Secret],
) -> Result<SessionConfig, String> {
    let s = &peer.spec;
    // An interface peer's address is the router's link-local, learned when connecting.
    let peer_ip: IpAddr = match (&s.peer_address, &s.interface) {
        (Some(a), _) => a
            .as_str()
            .parse()
            .map_err(|_| "peerAddress is not an IP".to_string())?,
        (None, Some(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        (None, None) => return Err("set peerAddress or interface".into()),
    };
    let router_id = match &s.router_id {
        Some(r) => r
            .as_str()
            .parse()
            .map_err(|_| "routerID is not IPv4".to_string())?,
        None => me
            .v4
            .ok_or("the node has no IPv4 address to use as router ID: set routerID")?,
    };
    let peer_asn = match (s.peer_asn, s.dynamic_asn) {
        (Some(a), _) => PeerAsn::Fixed(a),
        (None, Some(DynamicAsn::Internal)) => PeerAsn::Internal,
        (None, Some(DynamicAsn::External)) => PeerAsn::External,
        (None, None) => return Err("set peerASN or dynamicASN".into()),
    };
    let ebgp = match peer_asn {
        PeerAsn::Fixed(a) => a != s.my_asn,
        PeerAsn::Internal => false,
        PeerAsn::External => true,
    };
    let mut cfg = PeerConfig::new(s.my_asn, peer_asn, router_id);
    if let Some(h) = secs(&s.hold_time) {
        cfg.hold_time = u16::try_from(h.as_secs()).unwrap_or(u16::MAX);
    }
    if let Some(k) = secs(&s.keepalive_time) {
        cfg.keepalive = Some(u16::try_from(k.as_secs().max(1)).unwrap_or(u16::MAX));
    }
    if let Some(c) = secs(&s.connect_time) {
        cfg.connect_time = c;
    }
    if s.enable_graceful_restart {
        cfg.graceful_restart = Some(GracefulRestartConfig {
            restart_time: 120,
            forwarding_state: true,
            // Each session's first OPEN in this process: it may follow a planned restart.
            restarting: true,
        });
    }
    cfg.passive = s.passive;
    cfg.unnumbered = s.interface.is_some();
    let mut transport = TransportConfig::new(SocketAddr::new(peer_ip, s.peer_port));
    transport.interface = s.interface.clone();
    transport.listen_port = s.passive.then(|| s.listen_port());
    transport.source = s
        .source_address
        .as_ref()
        .and_then(|a| a.as_str().parse().ok());
    transport.md5_password = password(peer, secrets)?;
    transport.ttl = bgp_ttl(ebgp, s.ebgp_multi_hop);
    transport.connect_timeout = secs(&s.connect_time)
        .unwrap_or(Duration::from_secs(5))
        .max(Duration::from_millis(100));
    Ok(SessionConfig {
        peer: cfg,
        transport,
    })
}

/// Routes from the plan's advertisements: next hop is this node's address of the route's
/// family; advertisements of one prefix are merged (communities united, highest LOCAL_PREF).
pub fn routes(adverts: &BTreeSet<Advertisement>, me: &NodeAddrs) -> BTreeSet<Route> {
    let mut by_prefix: BTreeMap<(IpAddr, u8), Route> = BTreeMap::new();
    for a in adverts {
        let next_hop = match a.prefix {
            IpAddr::V4(_) => me.v4.map(NextHop::V4),
            IpAddr::V6(_) => me.v6.map(NextHop::v6),
        };
        let (Some(next_hop), Ok(prefix)) = (next_hop, Prefix::new(a.prefix, a.prefix_len)) else {
            continue;
        };
        let r = by_prefix
            .entry((a.prefix, a.prefix_len))
            .or_insert_with(|| Route::new(prefix, next_hop));
        r.local_pref = r.local_pref.max(a.local_pref);
        r.communities.extend(&a.communities);
        r.communities.sort();
        r.communities.dedup();
        r.large_communities.extend(&a.large_communities);
        r.large_communities.sort();
        r.large_communities.dedup();
    }
    by_prefix.into_values().collect()
}

/// Sessions this node should run, by peer name; peers that cannot run say why.
pub fn desired_sessions(
    node: &Node,
    config: &Snapshot,
    report: &Report,
    secrets: &[Secret],
    plan_bgp: &BTreeMap<String, BTreeSet<Advertisement>>,
) -> (BTreeMap<String, Desired>, BTreeMap<String, String>) {
    let me = NodeAddrs::of(node);
    let config_bfd = &config.bfd_profiles;
    let mut out = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for peer in &config.bgp_peers {
        let name = peer.name_any();
        if !report.bgp_peers.get(&name).is_some_and(|v| v.ok)
            || !selector::any_matches(&peer.spec.node_selectors, node.labels())
        {
            continue;
        }
        match session_config(peer, &me, secrets) {
            Ok(config) => {
                let routes = plan_bgp
                    .get(&name)
                    .map(|a| routes(a, &me))
                    .unwrap_or_default();
                let peer_ip = config.transport.peer.ip();
                let local = config.transport.source.or(match peer_ip {
                    IpAddr::V4(_) => me.v4.map(IpAddr::V4),
                    IpAddr::V6(_) => me.v6.map(IpAddr::V6),
                });
                // A missing profile runs the session without BFD (the peer's condition says so).
                let profile = peer
                    .spec
                    .bfd_profile
                    .as_ref()
                    .and_then(|p| config_bfd.iter().find(|b| b.name_any() == *p));
                let auth = match profile.map(|p| bfd_auth(&p.name_any(), &p.spec, secrets)) {
                    Some(Err(e)) => {
                        errors.insert(name, e);
                        continue;
                    }
                    Some(Ok(k)) => k,
                    None => None,
                };
                // Interface peers have no BFD (the API refuses bfdProfile with interface).
                let local = local.filter(|_| peer.spec.interface.is_none());
                let bfd = profile.zip(local).map(|(p, local)| BfdSettings {
                    local,
                    peer: peer_ip,
                    profile: p.spec.clone(),
                    discriminator: discriminator(&name),
                    auth,
                });
                out.insert(
                    name,
                    Desired {
                        config,
                        bfd,
                        routes,
                    },
                );
            }
            Err(e) => {
                errors.insert(name, e);
            }
        }
    }
    (out, errors)
}

struct Running {
    config: SessionConfig,
    bfd_settings: Option<BfdSettings>,
    routes: watch::Sender<BTreeSet<Route>>,
    handle: SessionHandle,
    bfd: Option<BfdHandle>,
    /// A passive session's place in the listener.
    inbound: Option<Registration>,
}

impl Running {
    async fn stop(self, reason: StopReason) {
        self.handle.shutdown(reason).await;
        if let Some(b) = self.bfd {
            b.shutdown().await;
        }
    }
}

/// The BFD runtime's settings for a session: every profile field that FerroLB honours.
fn bfd_config(s: &BfdSettings) -> BfdConfig {
    let mut c = BfdConfig::new(s.discriminator);
    c.desired_min_tx = Duration::from_millis(u64::from(s.profile.transmit_ms()));
    c.required_min_rx = Duration::from_millis(u64::from(s.profile.receive_ms()));
    c.detect_mult = s.profile.multiplier();
    c.passive = s.profile.passive_mode;
    c.min_ttl = s.profile.min_ttl();
    c.auth = s.auth;
    c
}

fn start_bfd(s: &BfdSettings) -> Option<BfdHandle> {
    match spawn_bfd(s.local, s.peer, bfd_config(s)) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(peer = %s.peer, error = %e, "BFD not started; the session runs without it");
            None
        }
    }
}

/// Decides, when the process stops, whether routers keep this node's routes
/// ([`crate::departure`]).
pub type DepartureRule = Arc<dyn Fn() -> Departure + Send + Sync>;

/// The session tasks of this node.
///
/// On SIGTERM every session stops at once, by itself (see [`crate::bgp::driver::spawn_with_cease`]), as the
/// departure rule says (a Cease, or a planned restart's close that lets routers keep the routes):
/// routers learn without waiting for the caller's orderly [`Sessions::shutdown`], which may come
/// late if the process is busy.
pub struct Sessions {
    running: BTreeMap<String, Running>,
    cease: watch::Sender<Option<StopReason>>,
    departure: DepartureRule,
    on_sigterm: Option<tokio::task::AbortHandle>,
    /// Why each peer that selects this node cannot run, as last logged.
    unusable: Unusable,
    /// Listeners of passive sessions, router discovery for unnumbered ones.
    endpoints: NodeEndpoints,
}

/// Peers that cannot run on this node, and why; so each reason is logged once when it appears
/// (planning runs on every cluster change: logging each time flooded the log).
#[derive(Debug, Default)]
pub struct Unusable(BTreeMap<String, String>);

impl Unusable {
    /// Records the current reasons; returns the peers whose reason is new or changed (`Some`)
    /// and those that are usable again (`None`).
    pub fn update(&mut self, now: BTreeMap<String, String>) -> Vec<(String, Option<String>)> {
        let mut changes: Vec<(String, Option<String>)> = now
            .iter()
            .filter(|(peer, why)| self.0.get(*peer) != Some(*why))
            .map(|(peer, why)| (peer.clone(), Some(why.clone())))
            .collect();
        changes.extend(
            self.0
                .keys()
                .filter(|peer| !now.contains_key(*peer))
                .map(|peer| (peer.clone(), None)),
        );
        self.0 = now;
        changes
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        if let Some(t) = self.on_sigterm.take() {
            t.abort();
        }
    }
}

impl Sessions {
    pub fn new(departure: DepartureRule) -> Sessions {
        Sessions {
            running: BTreeMap::new(),
            cease: watch::channel(None).0,
            departure,
            on_sigterm: None,
            unusable: Unusable::default(),
            endpoints: NodeEndpoints::default(),
        }
    }

    /// How the sessions end now that the process stops: as decided at SIGTERM, else decided now.
    fn departing(&self) -> StopReason {
        if let Some(r) = *self.cease.borrow() {
            return r;
        }
        let d = (self.departure)();
        tracing::info!(reason = ?d.reason, why = d.why, "stopping the BGP sessions");
        self.cease.send_replace(Some(d.reason));
        d.reason
    }

    /// Listens for SIGTERM (once) to stop every session at once.
    fn watch_sigterm(&mut self) {
        if self.on_sigterm.is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let cease = self.cease.clone();
        let departure = self.departure.clone();
        let task = tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            if term.recv().await.is_some() {
                let d = departure();
                match d.reason {
                    StopReason::Restart => tracing::info!(
                        why = d.why,
                        "SIGTERM: planned restart, routers with graceful restart keep this \
                         node's routes"
                    ),
                    _ => tracing::info!(why = d.why, "SIGTERM: sending Cease to every BGP peer"),
                }
                cease.send_if_modified(|c| {
                    let first = c.is_none();
                    c.get_or_insert(d.reason);
                    first
                });
            }
        });
        self.on_sigterm = Some(task.abort_handle());
    }

    /// Starts new sessions, restarts those whose settings changed, stops those no longer
    /// wanted (with a Cease), and hands every session its routes.
    pub fn apply(&mut self, desired: BTreeMap<String, Desired>) {
        if !desired.is_empty() {
            self.watch_sigterm();
        }
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                tracing::info!(peer = name, "stopping BGP session");
                tokio::spawn(r.stop(StopReason::Shutdown));
            }
        }
        for (name, d) in desired {
            match self.running.get(&name) {
                Some(r) if r.config == d.config && r.bfd_settings == d.bfd => {
                    r.routes.send_if_modified(|cur| {
                        let changed = *cur != d.routes;
                        *cur = d.routes.clone();
                        changed
                    });
                }
                _ => {
                    if let Some(old) = self.running.remove(&name) {
                        tracing::info!(
                            peer = name,
                            "BGP peer settings changed: restarting session"
                        );
                        tokio::spawn(old.stop(StopReason::Reset));
                    }
                    tracing::info!(peer = name, addr = %d.config.transport.peer, bfd = d.bfd.is_some(), "starting BGP session");
                    let bfd = d.bfd.as_ref().and_then(start_bfd);
                    let (tx, rx) = watch::channel(d.routes);
                    let (handle, inbound) = start_session(
                        &d.config,
                        rx,
                        bfd.as_ref().map(|b| b.up()),
                        self.cease.subscribe(),
                    );
                    self.running.insert(
                        name,
                        Running {
                            config: d.config,
                            bfd_settings: d.bfd,
                            routes: tx,
                            handle,
                            bfd,
                            inbound,
                        },
                    );
                }
            }
        }
        self.endpoints.sync(
            self.running
                .values()
                .map(|r| (&r.config, r.inbound.as_ref())),
        );
    }

    /// Logs why peers cannot run on this node (from [`desired_sessions`]), once per change.
    pub fn report_unusable(&mut self, errors: BTreeMap<String, String>) {
        for (peer, why) in self.unusable.update(errors) {
            match why {
                Some(error) => {
                    tracing::warn!(peer, error, "BGP peer not usable on this node")
                }
                None => tracing::info!(peer, "BGP peer usable on this node again"),
            }
        }
    }

    /// Status of every session, by peer name.
    pub fn statuses(&self) -> BTreeMap<String, (watch::Receiver<SessionStatus>, Option<BfdState>)> {
        self.running
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    (
                        r.handle.status(),
                        r.bfd.as_ref().map(|b| b.status().borrow().state),
                    ),
                )
            })
            .collect()
    }

    /// Stops every session as the departure rule says (Cease, or a planned restart's close) and
    /// waits (bounded) for them to close.
    pub async fn shutdown(&mut self) {
        let reason = self.departing();
        let all = std::mem::take(&mut self.running);
        let stops = all.into_values().map(|r| r.stop(reason));
        let _ =
            tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(stops)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::bgp_peer::SecretRef;
    use ferrolb_crds::validate::validate;
    use ferrolb_crds::{BFDProfile, BGPPeerSpec};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn node(name: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some([("kubernetes.io/hostname".to_string(), name.to_string())].into());
        n.status = Some(NodeStatus {
            addresses: Some(
                ["198.18.0.11", "fd00:18::11"]
                    .map(|a| NodeAddress {
                        type_: "InternalIP".into(),
                        address: a.into(),
                    })
                    .to_vec(),
            ),
            ..Default::default()
        });
        n
    }

    fn peer(name: &str, addr: &str, tweak: impl FnOnce(&mut BGPPeerSpec)) -> BGPPeer {
        let mut spec = BGPPeerSpec::new(64600, 64512, addr);
        tweak(&mut spec);
        BGPPeer::new(name, spec)
    }

    fn desired(
        config: &Snapshot,
        secrets: &[Secret],
    ) -> (BTreeMap<String, Desired>, BTreeMap<String, String>) {
        let report = validate(config);
        desired_sessions(
            &node("flb-node1"),
            config,
            &report,
            secrets,
            &BTreeMap::new(),
        )
    }

    #[test]
    fn bfd_runs_from_the_node_address_of_the_peer_family() {
        let config = Snapshot {
            bgp_peers: vec![
                peer("frr4", "198.18.0.2", |s| {
                    s.bfd_profile = Some("fast".into())
                }),
                peer("frr6", "fd00:18::2", |s| {
                    s.bfd_profile = Some("fast".into())
                }),
                peer("bird4", "198.18.0.3", |s| {
                    s.bfd_profile = Some("missing".into())
                }),
            ],
            bfd_profiles: vec![BFDProfile::new("fast", Default::default())],
            ..Default::default()
        };
        let (d, errors) = desired(&config, &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let b4 = d["frr4"].bfd.clone().expect("BFD for frr4");
        let b6 = d["frr6"].bfd.clone().expect("BFD for frr6");
        assert_eq!(
            (b4.local, b4.peer),
            (
                "198.18.0.11".parse().unwrap(),
                "198.18.0.2".parse().unwrap()
            )
        );
        assert_eq!(
            (b6.local, b6.peer),
            (
                "fd00:18::11".parse().unwrap(),
                "fd00:18::2".parse().unwrap()
            )
        );
        assert_ne!(b4.discriminator, 0);
        assert_ne!(b4.discriminator, b6.discriminator);
        // A profile that does not exist: the session runs without BFD (if it runs at all).
        assert!(d.get("bird4").is_none_or(|x| x.bfd.is_none()));
    }

    fn basic_auth(name: &str, password: &[u8]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            data: Some([("password".to_string(), ByteString(password.to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn bfd_profile_ttl_and_authentication_reach_the_bfd_runtime() {
        use ferrolb_crds::bfd::{BfdAuthType, BfdAuthentication, BfdSecretRef};
        let profile = |name: &str, ttl: Option<u32>, secret: Option<&str>| {
            BFDProfile::new(
                name,
                BFDProfileSpec {
                    minimum_ttl: ttl,
                    authentication: secret.map(|s| BfdAuthentication {
                        type_: BfdAuthType::MeticulousKeyedSha1,
                        key_id: 7,
                        password_secret: BfdSecretRef { name: s.into() },
                    }),
                    ..Default::default()
                },
            )
        };
        let config = Snapshot {
            bgp_peers: [
                "plain",
                "relaxed",
                "auth",
                "no-secret",
                "long-key",
                "opaque",
            ]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                peer(n, &format!("198.18.0.{}", i + 2), |s| {
                    s.bfd_profile = Some((*n).into())
                })
            })
            .collect(),
            bfd_profiles: vec![
                profile("plain", None, None),
                profile("relaxed", Some(250), None),
                profile("auth", None, Some("bfd-key")),
                profile("no-secret", None, Some("absent")),
                profile("long-key", None, Some("long")),
                profile("opaque", None, Some("opaque")),
            ],
            ..Default::default()
        };
        let mut opaque = basic_auth("opaque", b"k");
        opaque.type_ = Some("Opaque".into());
        let secrets = [
            basic_auth("bfd-key", b"s3cret"),
            basic_auth("long", &[b'x'; 21]),
            opaque,
        ];
        let (d, errors) = desired(&config, &secrets);
        let c = |n: &str| bfd_config(d[n].bfd.as_ref().expect("BFD"));
        assert_eq!((c("plain").min_ttl, c("plain").auth), (255, None));
        assert_eq!(c("relaxed").min_ttl, 250);
        assert_eq!(
            c("auth").auth,
            Some(AuthKey::new(AuthType::MeticulousKeyedSha1, 7, b"s3cret").unwrap())
        );
        // A profile asking for authentication never runs without it: the peer does not start
        // and says why.
        for (n, why) in [
            ("no-secret", "absent not found"),
            ("long-key", "21 bytes"),
            ("opaque", "type Opaque"),
        ] {
            assert!(!d.contains_key(n), "{n}");
            assert!(errors[n].contains(why), "{n}: {errors:?}");
            assert!(errors[n].contains(&format!("BFDProfile {n}")), "{errors:?}");
        }
        assert_eq!(errors.len(), 3, "{errors:?}");
        // The key is not in any message.
        assert!(!format!("{:?} {errors:?}", d["auth"]).contains("s3cret"));
    }

    #[test]
    fn transport_settings_follow_the_peer() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("md5".into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
            ..Default::default()
        };
        let config = Snapshot {
            bgp_peers: vec![
                peer("multihop", "198.18.2.2", |s| s.ebgp_multi_hop = true),
                peer("direct", "198.18.0.2", |s| s.enable_graceful_restart = true),
                peer("ibgp", "198.18.0.3", |s| {
                    s.peer_asn = Some(64600);
                    s.password = Some("inline".into());
                }),
                peer("secret", "198.18.0.4", |s| {
                    s.password_secret = Some(SecretRef {
                        name: "md5".into(),
                        namespace: None,
                    })
                }),
                peer("no-secret", "198.18.0.5", |s| {
                    s.password_secret = Some(SecretRef {
                        name: "absent".into(),
                        namespace: None,
                    })
                }),
                peer("elsewhere", "198.18.0.6", |s| {
                    s.node_selectors = vec![LabelSelector {
                        match_labels: Some(
                            [(
                                "kubernetes.io/hostname".to_string(),
                                "flb-node2".to_string(),
                            )]
                            .into(),
                        ),
                        match_expressions: None,
                    }]
                }),
            ],
            secrets: vec![secret.clone()],
            ..Default::default()
        };
        let (d, errors) = desired(&config, &[secret]);
        let t = |n: &str| d[n].config.transport.clone();
        assert_eq!(t("multihop").ttl, Some(255));
        assert_eq!(t("direct").ttl, Some(1));
        assert_eq!(t("ibgp").ttl, None);
        assert!(d["direct"].config.peer.graceful_restart.is_some());
        assert!(d["multihop"].config.peer.graceful_restart.is_none());
        assert_eq!(t("ibgp").md5_password.as_deref(), Some("inline"));
        assert_eq!(t("secret").md5_password.as_deref(), Some("s3cret"));
        // Validation refuses a peer whose Secret is missing (its condition says why): it is
        // neither run nor logged here.
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!d.contains_key("no-secret") && !d.contains_key("elsewhere"));
        // Should the two disagree (the Secret went between validation and here), the reason
        // is returned once per plan; the caller logs it once per change.
        let (_, errors) = desired(&config, &[]);
        assert!(errors["secret"].contains("md5 not found"), "{errors:?}");
        assert_eq!(
            d["direct"].config.peer.router_id,
            std::net::Ipv4Addr::new(198, 18, 0, 11)
        );
    }

    #[test]
    fn secrets_outside_ferrolbs_namespace_or_of_the_wrong_shape_are_refused() {
        let mut p = peer("p", "198.18.0.2", |s| {
            s.password_secret = Some(SecretRef {
                name: "md5".into(),
                namespace: Some("metallb-system".into()),
            })
        });
        p.metadata.namespace = Some("ferrolb-system".into());
        let mut secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("md5".into()),
                namespace: Some("ferrolb-system".into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
            ..Default::default()
        };
        let secrets = [secret.clone()];
        assert!(
            password(&p, &secrets)
                .unwrap_err()
                .contains("ferrolb-system")
        );
        p.spec.password_secret.as_mut().unwrap().namespace = Some("ferrolb-system".into());
        assert_eq!(password(&p, &secrets).unwrap().as_deref(), Some("s3cret"));
        secret.type_ = Some("Opaque".into());
        assert!(password(&p, &[secret]).unwrap_err().contains("type Opaque"));
    }

    #[test]
    fn unusable_peers_are_reported_once_per_change() {
        let mut u = Unusable::default();
        let errs = |e: &[(&str, &str)]| -> BTreeMap<String, String> {
            e.iter()
                .map(|(p, w)| (p.to_string(), w.to_string()))
                .collect()
        };
        let some = |p: &str, w: &str| (p.to_string(), Some(w.to_string()));
        assert_eq!(u.update(errs(&[("a", "x")])), [some("a", "x")]);
        for _ in 0..1000 {
            assert!(
                u.update(errs(&[("a", "x")])).is_empty(),
                "same reason: silent"
            );
        }
        assert_eq!(
            u.update(errs(&[("a", "y"), ("b", "z")])),
            [some("a", "y"), some("b", "z")]
        );
        assert_eq!(u.update(errs(&[("b", "z")])), [("a".to_string(), None)]);
        assert!(u.update(errs(&[("b", "z")])).is_empty());
    }
}
