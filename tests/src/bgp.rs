//! BGP-mode fixtures shared by the BGP lab tests and the BGP benchmark: the lab's routers (what
//! their RIBs and kernel tables hold, their sessions, their configuration), FerroLB objects that
//! clean up after themselves, a Service with hand-made endpoints, what the speakers show of their
//! sessions, and a route watch that times kernel route changes in a router namespace.

mod objects;
mod route_watch;
mod router;
mod router_config;
mod unnumbered;

pub use objects::Objects;
pub use route_watch::RouteWatch;
pub use router::{
    BIRD, FRR, NODE_AS, ROUTERS, RibPath, Router, hops, node_addr, wait_nexthops,
    wait_prefix_nexthops, wait_routed, wait_router_sessions,
};
pub use router_config::RouterConfig;
pub use unnumbered::{FRR_SIDE, NODE_SIDE, UnnumberedLink, link_local};

use std::time::Duration;

use serde_json::Value;

use crate::{NODES, TestNamespace, lab, unique, wait_for};

/// A Service with addresses from a pool of its own (a /32 and a /128, autoAssign off, pinned
/// with the `ferrolb.io/address-pool` annotation), advertised over BGP by a BGPAdvertisement
/// of its own, and endpoints made by hand (the lab has no kubelets).
pub struct BgpService {
    pub ns: TestNamespace,
    pub pool: String,
    pub objects: Objects,
}

impl BgpService {
    /// `addresses`: one IPv4 and/or one IPv6 address. `adv_spec`: BGPAdvertisement fields
    /// besides `ipAddressPools` (`key: value, ...`). `policy`: Cluster or Local.
    pub fn new(
        addresses: &[&str],
        adv_spec: &str,
        policy: &str,
        endpoint_nodes: &[&str],
    ) -> BgpService {
        let ns = TestNamespace::new("bgp");
        let pool = unique("bgp");
        let mut objects = Objects::new();
        objects.advertised_pool(&pool, addresses, "BGPAdvertisement", adv_spec);
        let v4 = addresses.iter().any(|a| !a.contains(':'));
        let v6 = addresses.iter().any(|a| a.contains(':'));
        let families = match (v4, v6) {
            (true, true) => "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n",
            (false, true) => "  ipFamilies: [IPv6]\n",
            _ => "",
        };
        let r = ns.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {{ferrolb.io/address-pool: {pool}}}\n\
             spec:\n  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  externalTrafficPolicy: {policy}\n  \
             ports: [{{port: 80}}]\n{families}"
        ));
        assert!(r.ok, "{}", r.stderr);
        let s = BgpService { ns, pool, objects };
        s.endpoints(endpoint_nodes);
        s
    }

    /// Replaces the Service's endpoints with one ready endpoint on each of `nodes`.
    pub fn endpoints(&self, nodes: &[&str]) {
        self.ns.web_endpoints(nodes);
    }

    pub fn set_policy(&self, policy: &str) {
        let r = lab().kubectl(&[
            "patch",
            "svc",
            "web",
            "-n",
            &self.ns.name,
            "-p",
            &format!("{{\"spec\": {{\"externalTrafficPolicy\": \"{policy}\"}}}}"),
        ]);
        assert!(r.ok, "{}", r.stderr);
    }

    /// The Service's addresses, once allocated.
    pub fn ips(&self) -> Vec<String> {
        self.ns.web_ips(Duration::from_secs(20))
    }
}

// ---- what the speakers show -------------------------------------------------------------------

/// One entry of `BGPPeer.status.sessions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShownSession {
    pub node: String,
    pub state: String,
    pub bfd_state: Option<String>,
    pub prefixes_sent: i64,
    pub last_error: Option<String>,
}

/// `BGPPeer.status.sessions` of a peer.
pub fn shown_sessions(peer: &str) -> Vec<ShownSession> {
    let r = lab().kubectl(&[
        "get",
        "bgppeer",
        peer,
        "-n",
        ferrolb_crds::DEFAULT_NAMESPACE,
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    let s = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).map(str::to_string);
    v.pointer("/status/sessions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|x| ShownSession {
            node: s(x, "node").unwrap_or_default(),
            state: s(x, "state").unwrap_or_default(),
            bfd_state: s(x, "bfdState"),
            prefixes_sent: x.get("prefixesSent").and_then(Value::as_i64).unwrap_or(0),
            last_error: s(x, "lastError"),
        })
        .collect()
}

/// Waits until every node shows an Established session for `peer` (and `also` holds for each
/// entry); returns the entries.
pub fn wait_shown_established(
    peer: &str,
    timeout: Duration,
    also: impl Fn(&ShownSession) -> bool,
) -> Vec<ShownSession> {
    wait_for(
        &format!("BGPPeer {peer} status: Established on every node"),
        timeout,
        || {
            let s = shown_sessions(peer);
            let ok = NODES.iter().all(|n| {
                s.iter()
                    .any(|e| e.node == *n && e.state == "Established" && also(e))
            });
            ok.then_some(s)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: last seen {:?}", shown_sessions(peer)))
}

/// A sample of the speaker's metrics on `node` (from inside the node's namespace), e.g.
/// `metric("flb-node1", "ferrolb_bgp_session_up", "frr")`.
pub fn metric(node: &str, name: &str, peer: &str) -> Option<f64> {
    let label = format!("{name}{{peer=\"{peer}\"}}");
    crate::speaker_metrics(node).lines().find_map(|l| {
        l.strip_prefix(&label)
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
}
