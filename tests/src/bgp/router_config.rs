//! The lab routers' configuration: `hack/lab routers` with settings (BFD, passwords, AS numbers,
//! passive mode) over the lab's defaults, and back to the defaults.

use std::process::Command;
use std::time::Duration;

use super::router::{FRR, vtysh};
use crate::{repo, run, wait_for};

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
fn routers(settings: &[(&str, &str)]) {
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
    wait_zebra_client("bgp");
    if settings.iter().any(|(k, v)| *k == "LAB_BFD" && *v == "1") {
        // bgpd registers its BFD sessions before it can reach bfdd (through zebra) and does
        // not replay them: re-apply the setting once both are connected.
        wait_zebra_client("bfd");
        let asn = settings
            .iter()
            .find(|(k, _)| *k == "LAB_FRR_AS")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| FRR.asn.to_string());
        let r = vtysh(&[
            "configure terminal",
            &format!("router bgp {asn}"),
            "no neighbor NODES4 bfd",
            "no neighbor NODES6 bfd",
            "neighbor NODES4 bfd",
            "neighbor NODES6 bfd",
        ]);
        assert!(r.ok, "re-registering FRR BFD sessions: {}", r.stderr);
    }
}

/// Waits until FRR's daemon for `proto` (`bgp`, `bfd`) is connected to zebra.
fn wait_zebra_client(proto: &str) {
    wait_for(
        &format!("FRR {proto}d connected to zebra"),
        Duration::from_secs(30),
        || {
            let r = FRR.cli("show zebra client summary");
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{proto} ")))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
