//! BGP-mode fixtures shared by the BGP lab tests and the BGP benchmark: the lab's routers (what
//! their RIBs and kernel tables hold, their sessions, their configuration), FerroLB objects that
//! clean up after themselves, a Service with hand-made endpoints, and a route watch that times
//! kernel route changes in a router namespace to the millisecond.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{NODES, Ran, TestNamespace, lab, repo, unique, wait_for};

/// Our AS (the lab routers peer with the nodes as AS 64600).
pub const NODE_AS: u32 = 64600;

/// A lab router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Router {
    pub name: &'static str,
    /// Its network namespace.
    pub ns: &'static str,
    pub v4: &'static str,
    pub v6: &'static str,
    /// Its AS with the lab's default settings.
    pub asn: u32,
}

pub const FRR: Router = Router {
    name: "frr",
    ns: "flb-frr",
    v4: "198.18.0.2",
    v6: "fd00:18::2",
    asn: 64512,
};

pub const BIRD: Router = Router {
    name: "bird",
    ns: "flb-bird",
    v4: "198.18.0.3",
    v6: "fd00:18::3",
    asn: 64513,
};

pub const ROUTERS: [Router; 2] = [FRR, BIRD];

/// A node's address on the routers' segment: `flb-node1` → 198.18.0.11 / fd00:18::11.
pub fn node_addr(node: &str, v6: bool) -> String {
    let n: u8 = node.trim_start_matches("flb-node").parse().unwrap_or(0);
    if v6 {
        format!("fd00:18::{}", 10 + n)
    } else {
        format!("198.18.0.{}", 10 + n)
    }
}

/// The next hops a set of nodes should give for an address of `ip`'s family.
pub fn hops(nodes: &[&str], ip: &str) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| node_addr(n, ip.contains(':')))
        .collect()
}

fn host_len(ip: &str) -> u8 {
    if ip.contains(':') { 128 } else { 32 }
}

fn run(cmd: &mut Command) -> Ran {
    cmd.stdin(Stdio::null())
        .output()
        .map(Ran::from)
        .unwrap_or_else(|e| Ran {
            ok: false,
            stdout: String::new(),
            stderr: e.to_string(),
        })
}

/// One BGP path for a prefix in a router's RIB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RibPath {
    pub next_hop: String,
    /// `65000:200` form.
    pub communities: BTreeSet<String>,
    /// `64600:7:7` form.
    pub large_communities: BTreeSet<String>,
    pub local_pref: Option<u32>,
    /// Kept while the peer restarts (graceful restart); FRR only.
    pub stale: bool,
}

impl Router {
    pub fn addr(&self, v6: bool) -> &'static str {
        if v6 { self.v6 } else { self.v4 }
    }

    /// `vtysh -c CMD` (FRR) or `birdc CMD` (BIRD).
    pub fn cli(&self, cmd: &str) -> Ran {
        if *self == FRR {
            run(Command::new("vtysh")
                .arg("--vty_socket")
                .arg(repo().join(".lab/frr"))
                .args(["-c", cmd]))
        } else {
            run(Command::new("birdc")
                .arg("-s")
                .arg(repo().join(".lab/bird/bird.ctl"))
                .args(cmd.split_whitespace()))
        }
    }

    /// Next hops of the kernel route for `ip` (a host route) in the router's namespace: what
    /// the router actually forwards with (ECMP: several).
    pub fn kernel_nexthops(&self, ip: &str) -> BTreeSet<String> {
        self.kernel_nexthops_of(&format!("{ip}/{}", host_len(ip)))
    }

    /// Next hops of the kernel route for exactly `prefix` (`198.19.0.0/16`).
    pub fn kernel_nexthops_of(&self, prefix: &str) -> BTreeSet<String> {
        let fam = if prefix.contains(':') { "-6" } else { "-4" };
        let r =
            run(Command::new("ip")
                .args(["-n", self.ns, fam, "-j", "route", "show", "exact", prefix]));
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let mut out = BTreeSet::new();
        for route in v.as_array().into_iter().flatten() {
            if let Some(g) = route.get("gateway").and_then(Value::as_str) {
                out.insert(g.to_string());
            }
            for nh in route
                .get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(g) = nh.get("gateway").and_then(Value::as_str) {
                    out.insert(g.to_string());
                }
            }
        }
        out
    }

    /// The BGP paths the router holds for `ip` (as a host route).
    pub fn rib(&self, ip: &str) -> Vec<RibPath> {
        let v6 = ip.contains(':');
        let prefix = format!("{ip}/{}", host_len(ip));
        if *self == FRR {
            let afi = if v6 { "ipv6" } else { "ipv4" };
            let r = self.cli(&format!("show bgp {afi} unicast {prefix} json"));
            frr_paths(&r.stdout)
        } else {
            bird_paths(&self.cli(&format!("show route all {prefix}")).stdout)
        }
    }

    /// Whether the router's session with `neighbor` is Established.
    pub fn established(&self, neighbor: &str) -> bool {
        if *self == FRR {
            let r = self.cli(&format!("show bgp neighbors {neighbor} json"));
            let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
            v.get(neighbor)
                .and_then(|n| n.get("bgpState"))
                .and_then(Value::as_str)
                == Some("Established")
        } else {
            let r = self.cli(&format!("show protocols {}", bird_protocol(neighbor)));
            r.stdout.contains("Established")
        }
    }

    /// Neighbours (node addresses) whose session with the router is Established, from one
    /// CLI call.
    pub fn established_neighbors(&self) -> BTreeSet<String> {
        if *self == FRR {
            let r = self.cli("show bgp summary json");
            let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
            let mut out = BTreeSet::new();
            for af in ["ipv4Unicast", "ipv6Unicast"] {
                for (addr, p) in v
                    .get(af)
                    .and_then(|a| a.get("peers"))
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if p.get("state").and_then(Value::as_str) == Some("Established") {
                        out.insert(addr.clone());
                    }
                }
            }
            out
        } else {
            let r = self.cli("show protocols");
            r.stdout
                .lines()
                .filter(|l| l.contains("Established"))
                .filter_map(|l| {
                    // flb_node2_v6 → fd00:18::12
                    let name = l.split_whitespace().next()?;
                    let rest = name.strip_prefix("flb_node")?;
                    let (n, fam) = rest.split_once('_')?;
                    Some(node_addr(&format!("flb-node{n}"), fam == "v6"))
                })
                .collect()
        }
    }

    /// The router's established BGP connections as (its address, the speaker's address),
    /// from the kernel (`ss`): shows which of its addresses a speaker connected to.
    pub fn bgp_connections(&self) -> Vec<(String, String)> {
        let r = run(Command::new("ip").args([
            "netns",
            "exec",
            self.ns,
            "ss",
            "-Htn",
            "state",
            "established",
            "( sport = :179 )",
        ]));
        let host = |a: &str| {
            a.rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                .unwrap_or_default()
        };
        r.stdout
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.len() >= 4).then(|| (host(w[w.len() - 2]), host(w[w.len() - 1])))
            })
            .collect()
    }

    /// Whether the router's BFD session with `neighbor` is up.
    pub fn bfd_up(&self, neighbor: &str) -> bool {
        if *self == FRR {
            let r = self.cli("show bfd peers json");
            let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
            v.as_array().into_iter().flatten().any(|p| {
                p.get("peer").and_then(Value::as_str) == Some(neighbor)
                    && p.get("status").and_then(Value::as_str) == Some("up")
            })
        } else {
            let r = self.cli("show bfd sessions");
            r.stdout.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&neighbor) && w.get(2) == Some(&"Up")
            })
        }
    }
}

/// BIRD's protocol name for a node address (hack/lib/routers.sh: `flb_node1_v4`).
fn bird_protocol(neighbor: &str) -> String {
    let v6 = neighbor.contains(':');
    let last: u8 = neighbor
        .rsplit(['.', ':'])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    format!(
        "flb_node{}_{}",
        last.saturating_sub(10),
        if v6 { "v6" } else { "v4" }
    )
}

fn frr_paths(json: &str) -> Vec<RibPath> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let strings = |p: &Value, key: &str| -> BTreeSet<String> {
        p.get(key)
            .and_then(|c| c.get("list"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    v.get("paths")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| RibPath {
            next_hop: p
                .get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|n| n.get("scope").and_then(Value::as_str) != Some("link-local"))
                .find_map(|n| n.get("ip").and_then(Value::as_str))
                .unwrap_or_default()
                .to_string(),
            communities: strings(p, "community"),
            large_communities: strings(p, "largeCommunity"),
            local_pref: p.get("locPrf").and_then(Value::as_u64).map(|x| x as u32),
            stale: p.get("stale").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect()
}

/// Parses `birdc show route all PREFIX`: one path per route block.
fn bird_paths(text: &str) -> Vec<RibPath> {
    let mut out: Vec<RibPath> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if line.contains(" [") && (t.contains("unicast") || t.contains("unreachable")) {
            out.push(RibPath::default());
            continue;
        }
        let Some(p) = out.last_mut() else { continue };
        if let Some(v) = t.strip_prefix("BGP.next_hop:") {
            p.next_hop = v.split_whitespace().next().unwrap_or_default().to_string();
        } else if let Some(v) = t.strip_prefix("BGP.local_pref:") {
            p.local_pref = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("BGP.community:") {
            // "(65000,200) (65000,100)"
            p.communities = v
                .split(')')
                .filter_map(|c| {
                    let c = c.trim().trim_start_matches('(');
                    (!c.is_empty()).then(|| c.replace(' ', "").replace(',', ":"))
                })
                .collect();
        } else if let Some(v) = t.strip_prefix("BGP.large_community:") {
            // "(64600, 7, 7) (64600, 1, 2)"
            p.large_communities = v
                .split(')')
                .filter_map(|c| {
                    let c = c.trim().trim_start_matches('(');
                    (!c.is_empty()).then(|| c.replace(' ', "").replace(',', ":"))
                })
                .collect();
        }
    }
    out
}

// ---- router configuration ---------------------------------------------------------------------

/// Settings `hack/lab routers` reads; cleared so that defaults (hack/lab.env) apply.
const ROUTER_VARS: [&str; 10] = [
    "LAB_FRR_AS",
    "LAB_BIRD_AS",
    "LAB_NODE_AS",
    "LAB_BGP_PASSWORD",
    "LAB_BFD",
    "LAB_BFD_AUTH",
    "LAB_BFD_PASSWORD",
    "LAB_BFD_KEY_ID",
    "LAB_ROUTER_PASSIVE",
    "LAB_BGP_HOLD",
];

/// Regenerates the router configs from `settings` (e.g. `[("LAB_BFD", "1")]`) and restarts
/// them; restores the lab's defaults when dropped.
pub struct RouterConfig {
    restore: bool,
}

impl RouterConfig {
    pub fn set(settings: &[(&str, &str)]) -> RouterConfig {
        routers(settings);
        RouterConfig { restore: true }
    }
}

impl Drop for RouterConfig {
    fn drop(&mut self) {
        if self.restore {
            routers(&[]);
        }
    }
}

/// `hack/lab routers` with `settings` (nothing else) over the defaults, then waits until FRR's
/// bgpd talks to zebra (only then does it install routes) and, with BFD, until its BFD
/// sessions are registered with bfdd.
pub fn routers(settings: &[(&str, &str)]) {
    let mut cmd = Command::new(repo().join("hack/lab"));
    cmd.arg("routers");
    for v in ROUTER_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in settings {
        cmd.env(k, v);
    }
    let r = run(&mut cmd);
    assert!(r.ok, "hack/lab routers: {}{}", r.stdout, r.stderr);
    // bgpd and bfdd start before zebra's socket exists, and retry connecting after ~10 s.
    wait_for(
        "FRR bgpd connected to zebra",
        Duration::from_secs(30),
        || {
            let r = FRR.cli("show zebra client summary");
            r.stdout
                .lines()
                .any(|l| l.starts_with("bgp "))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if settings.iter().any(|(k, v)| *k == "LAB_BFD" && *v == "1") {
        // bgpd registers its BFD sessions before it can reach bfdd (through zebra) and does
        // not replay them: re-apply the setting once both are connected.
        wait_for(
            "FRR bfdd connected to zebra",
            Duration::from_secs(30),
            || {
                let r = FRR.cli("show zebra client summary");
                r.stdout
                    .lines()
                    .any(|l| l.starts_with("bfd "))
                    .then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let asn = settings
            .iter()
            .find(|(k, _)| *k == "LAB_FRR_AS")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| FRR.asn.to_string());
        let r = run(Command::new("vtysh")
            .arg("--vty_socket")
            .arg(repo().join(".lab/frr"))
            .args([
                "-c",
                "configure terminal",
                "-c",
                &format!("router bgp {asn}"),
            ])
            .args([
                "-c",
                "no neighbor NODES4 bfd",
                "-c",
                "no neighbor NODES6 bfd",
            ])
            .args(["-c", "neighbor NODES4 bfd", "-c", "neighbor NODES6 bfd"]));
        assert!(r.ok, "re-registering FRR BFD sessions: {}", r.stderr);
    }
}

// ---- FerroLB objects --------------------------------------------------------------------------

/// FerroLB objects in ferrolb-system (and Secrets), deleted in reverse order when dropped.
#[derive(Default)]
pub struct Objects {
    made: Vec<(String, String)>,
}

impl Objects {
    pub fn new() -> Objects {
        Objects::default()
    }

    /// Applies a `ferrolb.io/v1beta1` object with this spec (YAML flow or block).
    pub fn apply(&mut self, kind: &str, name: &str, spec: &str) {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        );
        let r = lab().apply(&yaml);
        assert!(r.ok, "applying {kind} {name}: {}\n{yaml}", r.stderr);
        self.remember(kind, name);
    }

    /// A `kubernetes.io/basic-auth` Secret whose `password` key is `password`.
    pub fn secret(&mut self, name: &str, password: &str) {
        let yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/basic-auth\n\
             stringData: {{password: '{password}'}}\n"
        );
        let r = lab().apply(&yaml);
        assert!(r.ok, "applying Secret {name}: {}", r.stderr);
        self.remember("Secret", name);
    }

    /// A BGPPeer from our AS to `router` over IPv4 or IPv6, with short timers (hold 9 s,
    /// keepalive 3 s, connect 1 s) and `extra` spec fields (`key: value, ...`).
    pub fn peer(&mut self, name: &str, router: Router, v6: bool, extra: &str) {
        self.peer_as(name, router, router.asn, v6, extra);
    }

    pub fn peer_as(&mut self, name: &str, router: Router, peer_asn: u32, v6: bool, extra: &str) {
        let sep = if extra.is_empty() { "" } else { ", " };
        self.apply(
            "BGPPeer",
            name,
            &format!(
                "{{myASN: {NODE_AS}, peerASN: {peer_asn}, peerAddress: '{}', holdTime: 9s, \
                 keepaliveTime: 3s, connectTime: 1s{sep}{extra}}}",
                router.addr(v6)
            ),
        );
    }

    /// Merge-patches an object's spec.
    pub fn patch_spec(&self, kind: &str, name: &str, spec_json: &str) {
        let r = lab().kubectl(&[
            "patch",
            kind,
            name,
            "-n",
            ferrolb_crds::DEFAULT_NAMESPACE,
            "--type",
            "merge",
            "-p",
            &format!("{{\"spec\": {spec_json}}}"),
        ]);
        assert!(r.ok, "patching {kind} {name}: {}", r.stderr);
    }

    /// Deletes an object made elsewhere (e.g. through the API) along with ours.
    pub fn adopt(&mut self, kind: &str, name: &str) {
        self.remember(kind, name);
    }

    pub fn delete(&mut self, kind: &str, name: &str) {
        delete(kind, name);
        self.made.retain(|(k, n)| !(k == kind && n == name));
    }

    fn remember(&mut self, kind: &str, name: &str) {
        let o = (kind.to_string(), name.to_string());
        if !self.made.contains(&o) {
            self.made.push(o);
        }
    }
}

fn delete(kind: &str, name: &str) {
    let _ = lab().kubectl(&[
        "delete",
        kind,
        name,
        "-n",
        ferrolb_crds::DEFAULT_NAMESPACE,
        "--ignore-not-found",
    ]);
}

impl Drop for Objects {
    fn drop(&mut self) {
        for (kind, name) in self.made.drain(..).rev() {
            delete(&kind, &name);
        }
    }
}

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
        let addrs = addresses
            .iter()
            .map(|a| format!("'{a}/{}'", host_len(a)))
            .collect::<Vec<_>>()
            .join(", ");
        objects.apply(
            "IPAddressPool",
            &pool,
            &format!("{{addresses: [{addrs}], autoAssign: false}}"),
        );
        let sep = if adv_spec.is_empty() { "" } else { ", " };
        objects.apply(
            "BGPAdvertisement",
            &pool,
            &format!("{{ipAddressPools: [{pool}]{sep}{adv_spec}}}"),
        );
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

// ---- waiting on routers -----------------------------------------------------------------------

/// Waits until `router` forwards `ip` to exactly `want` (empty: no route).
/// Waits until the router forwards `prefix` (any length) via exactly `want`.
pub fn wait_prefix_nexthops(
    router: Router,
    prefix: &str,
    want: &BTreeSet<String>,
    timeout: Duration,
) {
    wait_for(
        &format!("{} to route {prefix} via {want:?}", router.name),
        timeout,
        || (router.kernel_nexthops_of(prefix) == *want).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}: has {:?}", router.kernel_nexthops_of(prefix)));
}

pub fn wait_nexthops(router: Router, ip: &str, want: &BTreeSet<String>, timeout: Duration) {
    wait_for(
        &format!("{} to route {ip} via {want:?}", router.name),
        timeout,
        || (router.kernel_nexthops(ip) == *want).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; it has {:?}", router.kernel_nexthops(ip)));
}

/// Waits until every router's session with each of `nodes` (over IPv4 or IPv6) is Established.
pub fn wait_router_sessions(routers: &[Router], nodes: &[&str], v6: bool, timeout: Duration) {
    for r in routers {
        for n in nodes {
            let a = node_addr(n, v6);
            wait_for(&format!("{} session with {a}", r.name), timeout, || {
                r.established(&a).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Lines received so far with their arrival, and a signal for each new one.
type Events = Arc<(Mutex<Vec<(Instant, String)>>, Condvar)>;

/// Events of `ip monitor OBJECTS` in a lab namespace, each with the instant it arrived.
pub struct Monitor {
    child: Child,
    events: Events,
}

impl Monitor {
    pub fn start(ns: &str, objects: &[&str]) -> Monitor {
        let mut child = Command::new("ip")
            .args(["-n", ns, "monitor"])
            .args(objects)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor starts");
        let out = child.stdout.take().expect("piped");
        let events: Events = Arc::default();
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*ev;
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), line));
                cv.notify_all();
            }
        });
        // `ip monitor` subscribes right after it starts.
        std::thread::sleep(Duration::from_millis(50));
        Monitor { child, events }
    }

    /// When the first event line after `since` for which `matches` holds arrived.
    pub fn first_event(
        &self,
        since: Instant,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<Instant> {
        let (m, cv) = &*self.events;
        let mut ev = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((t, _)) = ev.iter().find(|(t, l)| *t >= since && matches(l)) {
                return Some(*t);
            }
            let left = timeout.checked_sub(since.elapsed())?;
            ev = cv
                .wait_timeout(ev, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times kernel route changes in a router namespace: `ip monitor route nexthop` runs in the
/// background; [`RouteWatch::wait`] re-reads the route on every event and reports when the
/// awaited change happened, to the millisecond.
pub struct RouteWatch {
    pub router: Router,
    monitor: Monitor,
}

impl RouteWatch {
    pub fn start(router: Router) -> RouteWatch {
        RouteWatch {
            router,
            monitor: Monitor::start(router.ns, &["route", "nexthop"]),
        }
    }

    /// Waits until the kernel's next hops for `ip` satisfy `ok`; returns how long after `since`
    /// the change happened: the arrival of the last route event that mentions `ip` up to the
    /// satisfying read (or the read itself if there was none). `None` on timeout.
    pub fn wait(
        &self,
        ip: &str,
        since: Instant,
        timeout: Duration,
        ok: impl Fn(&BTreeSet<String>) -> bool,
    ) -> Option<Duration> {
        let (m, cv) = &*self.monitor.events;
        let mut seen = 0;
        loop {
            let hops = self.router.kernel_nexthops(ip);
            let read_at = Instant::now();
            if ok(&hops) {
                // The change was visible to the read, so its event was sent before the read
                // ended; give the monitor a moment to pass it on.
                std::thread::sleep(Duration::from_millis(20));
                let slack = read_at + Duration::from_millis(20);
                let ev = m.lock().unwrap_or_else(|e| e.into_inner());
                let at = ev
                    .iter()
                    .filter(|(t, line)| {
                        *t >= since && *t <= slack && line.split_whitespace().any(|w| w == ip)
                    })
                    .map(|(t, _)| *t)
                    .next_back()
                    .unwrap_or(read_at);
                return Some(at.saturating_duration_since(since));
            }
            if since.elapsed() > timeout {
                return None;
            }
            // Until the next event (or a slow poll, in case one was missed).
            let ev = m.lock().unwrap_or_else(|e| e.into_inner());
            let n = ev.len();
            if n == seen {
                let _ = cv.wait_timeout(ev, Duration::from_millis(100));
            }
            seen = n;
        }
    }
}

// ---- the lab network --------------------------------------------------------------------------

/// Runs `ip ARGS` in a lab namespace, asserting success.
pub fn ip_in(ns: &str, args: &[&str]) {
    let r = run(Command::new("ip").arg("-n").arg(ns).args(args));
    assert!(r.ok, "ip -n {ns} {args:?}: {}", r.stderr);
}

/// `sysctl -w KEY=VALUE` in a lab namespace; returns the previous value.
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> String {
    let old = run(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-n", key]));
    let r = run(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]));
    assert!(r.ok, "{ns}: sysctl {key}={value}: {}", r.stderr);
    old.stdout.trim().to_string()
}

/// Cuts a node's link at the lab switch until dropped.
pub struct LinkCut {
    port: String,
    /// When the switch reported the port down (`ip monitor link`).
    pub at: Instant,
}

impl LinkCut {
    pub fn node(node: &str) -> LinkCut {
        let port = format!("{}-e0", node.trim_start_matches("flb-"));
        let links = Monitor::start("flb-sw", &["link"]);
        let before = Instant::now();
        ip_in("flb-sw", &["link", "set", &port, "down"]);
        let at = links
            .first_event(before, Duration::from_secs(2), |l| {
                l.contains(&format!(" {port}@")) || l.contains(&format!(" {port}:"))
            })
            .unwrap_or(before);
        LinkCut { port, at }
    }
}

impl Drop for LinkCut {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["-n", "flb-sw", "link", "set", &self.port, "up"]));
    }
}

/// Percentile of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bird_routes() {
        let text = "BIRD 2.0.12 ready.\nTable master4:\n\
            198.18.100.0/32      unicast [flb_node1_v4 23:48:31.827] * (100) [AS64600i]\n\
            \tvia 198.18.0.11 on eth0\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 64600\n\
            \tBGP.next_hop: 198.18.0.11\n\tBGP.local_pref: 100\n\tBGP.community: (65000,200) (65000,100)\n\
            \tBGP.large_community: (64600, 7, 7)\n\
            \x20                    unicast [flb_node2_v4 23:48:31.708] (100) [AS64600i]\n\
            \tvia 198.18.0.12 on eth0\n\tBGP.next_hop: 198.18.0.12\n\tBGP.local_pref: 250\n";
        let p = bird_paths(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].next_hop, "198.18.0.11");
        assert_eq!(
            p[0].communities,
            ["65000:100", "65000:200"].map(String::from).into()
        );
        assert_eq!(
            p[0].large_communities,
            ["64600:7:7"].map(String::from).into()
        );
        assert_eq!(
            (p[1].next_hop.as_str(), p[1].local_pref),
            ("198.18.0.12", Some(250))
        );
    }

    #[test]
    fn names_bird_protocols() {
        assert_eq!(bird_protocol("198.18.0.12"), "flb_node2_v4");
        assert_eq!(bird_protocol("fd00:18::13"), "flb_node3_v6");
        assert_eq!(node_addr("flb-node3", true), "fd00:18::13");
    }
}
