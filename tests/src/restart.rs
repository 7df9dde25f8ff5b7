//! Planned restarts and drains of the lab's speakers (FerroLB as supervised processes): a node
//! cordoned for the length of a test, a SIGTERM to a speaker that its supervisor restarts (what a
//! rolling update does to a pod), and a watch on the routers' kernel tables that records every
//! moment a route was not what it should be.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bgp::{Objects, ROUTERS, hops};
use crate::l2::{signal_speaker, wait_speaker_back};
use crate::lab;

/// An IPv4 BGPPeer to each router, named `PREFIX-ROUTER`, with `extra` spec fields; their names.
pub fn peers_v4(o: &mut Objects, prefix: &str, extra: &str) -> Vec<String> {
    ROUTERS
        .iter()
        .map(|r| {
            let name = format!("{prefix}-{}", r.name);
            o.peer(&name, *r, false, extra);
            name
        })
        .collect()
}

/// `kubectl cordon NODE` until dropped (then uncordon).
pub struct Cordon(String);

impl Cordon {
    pub fn node(node: &str) -> Cordon {
        let r = lab().kubectl(&["cordon", node]);
        assert!(r.ok, "kubectl cordon {node}: {}", r.stderr);
        Cordon(node.to_string())
    }
}

impl Drop for Cordon {
    fn drop(&mut self) {
        let _ = lab().kubectl(&["uncordon", &self.0]);
    }
}

/// SIGTERM to `node`'s speaker, as the kubelet sends it to a pod being replaced; its supervisor
/// starts a new one ~200 ms after it exits. Returns when the new process runs.
pub fn restart_speaker(node: &str) {
    let pid = lab().pid(&format!("speaker-{node}")).expect("speaker pid");
    signal_speaker(node, "-TERM");
    wait_speaker_back(node, pid);
}

/// Polls both routers' kernel tables every 20 ms and records each read where an address was
/// not routed via exactly the expected nodes.
pub struct RouteKeeper {
    stop: Arc<AtomicBool>,
    task: Option<JoinHandle<(u32, Vec<String>)>>,
}

impl RouteKeeper {
    pub fn start(ips: &[String], nodes: &[&str]) -> RouteKeeper {
        let stop = Arc::new(AtomicBool::new(false));
        let want: Vec<(String, BTreeSet<String>)> =
            ips.iter().map(|ip| (ip.clone(), hops(nodes, ip))).collect();
        let s = stop.clone();
        let task = std::thread::spawn(move || {
            let started = Instant::now();
            let (mut polls, mut lost) = (0u32, Vec::new());
            while !s.load(Ordering::Relaxed) {
                for r in ROUTERS {
                    for (ip, hops) in &want {
                        let got = r.kernel_nexthops(ip);
                        if got != *hops {
                            lost.push(format!(
                                "{:?}: {} routes {ip} via {got:?}",
                                started.elapsed(),
                                r.name
                            ));
                        }
                    }
                }
                polls += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (polls, lost)
        });
        RouteKeeper {
            stop,
            task: Some(task),
        }
    }

    /// Stops polling: how many rounds ran, and every deviation seen.
    pub fn finish(mut self) -> (u32, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RouteKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
