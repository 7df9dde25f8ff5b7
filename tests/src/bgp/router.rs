//! The lab's BGP routers, FRR and BIRD, in network namespaces of their own: what their RIBs and
//! kernel tables hold, their sessions (BGP and BFD), and waits on them.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Ran, host_prefix, repo, run, wait_for};

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

/// FRR's `vtysh -c COMMAND ...` (one `-c` per command, in order) on the lab's FRR.
pub(super) fn vtysh(commands: &[&str]) -> Ran {
    let mut cmd = Command::new("vtysh");
    cmd.arg("--vty_socket").arg(repo().join(".lab/frr"));
    for c in commands {
        cmd.args(["-c", c]);
    }
    run(&mut cmd)
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
            vtysh(&[cmd])
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
        self.kernel_nexthops_of(&host_prefix(ip))
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
        let prefix = host_prefix(ip);
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
            p.communities = bird_tuples(v);
        } else if let Some(v) = t.strip_prefix("BGP.large_community:") {
            p.large_communities = bird_tuples(v);
        }
    }
    out
}

/// BIRD's communities, `(65000,200) (65000,100)`, or large ones, `(64600, 7, 7)`, in the
/// `65000:200` / `64600:7:7` form.
fn bird_tuples(text: &str) -> BTreeSet<String> {
    text.split(')')
        .filter_map(|c| {
            let c = c.trim().trim_start_matches('(');
            (!c.is_empty()).then(|| c.replace(' ', "").replace(',', ":"))
        })
        .collect()
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

/// Waits until every router forwards each of `ips` via exactly the nodes `nodes` (none: no
/// route).
pub fn wait_routed(ips: &[String], nodes: &[&str], timeout: Duration) {
    for r in ROUTERS {
        for ip in ips {
            wait_nexthops(r, ip, &hops(nodes, ip), timeout);
        }
    }
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

#[cfg(test)]
mod tests;
