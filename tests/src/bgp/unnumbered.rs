//! An unnumbered link for a test: a veth between the lab's FRR and one node with no address but
//! IPv6 link-local ones, and FRR peering over it with `neighbor IFACE interface` (FRR's zebra
//! sends router advertisements on it and learns the node from the node's). Both go when dropped.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::router::{FRR, NODE_AS, vtysh};
use crate::{run, wait_for};

/// The link's name on the FRR side.
pub const FRR_SIDE: &str = "unn-n1";
/// The link's name on the node side (what the BGPPeer's `interface` names).
pub const NODE_SIDE: &str = "unn-frr";

pub struct UnnumberedLink {
    pub node: &'static str,
}

/// The IPv6 link-local address of `dev` in namespace `ns`, once it has one.
pub fn link_local(ns: &str, dev: &str) -> String {
    wait_for(
        &format!("a link-local address on {dev} in {ns}"),
        Duration::from_secs(10),
        || {
            let r = run(Command::new("ip").args([
                "-n", ns, "-6", "-j", "addr", "show", "dev", dev, "scope", "link",
            ]));
            let v: Value = serde_json::from_str(&r.stdout).ok()?;
            v.get(0)?
                .get("addr_info")?
                .as_array()?
                .iter()
                .find_map(|a| a.get("local")?.as_str().map(str::to_string))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

impl UnnumberedLink {
    /// Creates the link to `node` and the FRR neighbour on it (remote AS: the nodes').
    pub fn new(node: &'static str) -> UnnumberedLink {
        // A link left by an interrupted run goes first (deleting one end removes both).
        let _ = run(Command::new("ip").args(["-n", FRR.ns, "link", "del", FRR_SIDE]));
        let r = run(Command::new("ip").args([
            "-n", FRR.ns, "link", "add", FRR_SIDE, "type", "veth", "peer", "name", NODE_SIDE,
            "netns", node,
        ]));
        assert!(r.ok, "creating the unnumbered link: {}", r.stderr);
        let link = UnnumberedLink { node };
        for (ns, dev) in [(FRR.ns, FRR_SIDE), (node, NODE_SIDE)] {
            let r = run(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]));
            assert!(r.ok, "{ns} {dev} up: {}", r.stderr);
        }
        link_local(node, NODE_SIDE);
        link_local(FRR.ns, FRR_SIDE);
        let r = vtysh(&[
            "configure terminal",
            &format!("interface {FRR_SIDE}"),
            "ipv6 nd ra-interval 3",
            "no ipv6 nd suppress-ra",
            "exit",
            &format!("router bgp {}", FRR.asn),
            &format!("neighbor {FRR_SIDE} interface remote-as {NODE_AS}"),
            &format!("neighbor {FRR_SIDE} timers connect 1"),
            "address-family ipv4 unicast",
            &format!("neighbor {FRR_SIDE} activate"),
            &format!("neighbor {FRR_SIDE} route-map LAB-IN4 in"),
            &format!("neighbor {FRR_SIDE} route-map LAB-OUT out"),
            "exit-address-family",
            "address-family ipv6 unicast",
            &format!("neighbor {FRR_SIDE} activate"),
            &format!("neighbor {FRR_SIDE} route-map LAB-IN6 in"),
            &format!("neighbor {FRR_SIDE} route-map LAB-OUT out"),
            "exit-address-family",
        ]);
        assert!(r.ok, "configuring FRR: {}{}", r.stdout, r.stderr);
        link
    }

    /// FRR's view of the neighbour (`show bgp neighbors IFACE json`).
    pub fn neighbor(&self) -> Value {
        let r = FRR.cli(&format!("show bgp neighbors {FRR_SIDE} json"));
        serde_json::from_str::<Value>(&r.stdout)
            .ok()
            .and_then(|v| v.get(FRR_SIDE).cloned())
            .unwrap_or(Value::Null)
    }

    /// Every next hop (with its scope) FRR's BGP table has for `prefix`.
    pub fn rib_next_hops(&self, prefix: &str) -> Vec<(String, String)> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let r = FRR.cli(&format!("show bgp {afi} unicast {prefix} json"));
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        v.get("paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|p| {
                p.get("nexthops")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|n| {
                let ip = n.get("ip")?.as_str()?.to_string();
                let scope = n
                    .get("scope")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                Some((ip, scope))
            })
            .collect()
    }

    /// The devices FRR's kernel route for `prefix` goes out of.
    pub fn kernel_devices(&self, prefix: &str) -> Vec<String> {
        let fam = if prefix.contains(':') { "-6" } else { "-4" };
        let r =
            run(Command::new("ip")
                .args(["-n", FRR.ns, fam, "-j", "route", "show", "exact", prefix]));
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let mut out = Vec::new();
        for route in v.as_array().into_iter().flatten() {
            out.extend(route.get("dev").and_then(Value::as_str).map(str::to_string));
            for nh in route
                .get("nexthops")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(nh.get("dev").and_then(Value::as_str).map(str::to_string));
            }
        }
        out
    }
}

impl Drop for UnnumberedLink {
    fn drop(&mut self) {
        let _ = vtysh(&[
            "configure terminal",
            &format!("router bgp {}", FRR.asn),
            &format!("no neighbor {FRR_SIDE}"),
        ]);
        let _ = run(Command::new("ip").args(["-n", FRR.ns, "link", "del", FRR_SIDE]));
        // zebra forgets an interface's settings only once it is gone.
        let _ = vtysh(&["configure terminal", &format!("no interface {FRR_SIDE}")]);
    }
}
