//! Real-network check: `lab.sh` (next to this file) runs [`lab_node`] in
//! three network namespaces on a bridge and measures failover.
//!
//! Each node prints `EV <unix µs> <observer> <up|down> <node>` for every live
//! set change and `LIVE <unix µs> <observer> <a,b,c>` with the whole set; on
//! SIGTERM it leaves and exits. Namespaces share the wall clock, so the
//! script subtracts its own timestamp of the fault from the observers'.
//!
//! ```text
//! sudo speaker/src/membership/lab.sh 34     # rounds per fault kind
//! FAULTS=link RUST_LOG=ferrolb_speaker::membership=debug,foca=debug \
//!     sudo speaker/src/membership/lab.sh 4   # one kind, with protocol traces
//! ```
//!
//! Last run (34 rounds per kind, victim rotating over the three nodes, on a
//! shared 2-core machine at load ~6; per round, the slower of the two
//! observers):
//!
//! ```text
//! kill   n=34  median 264.7 ms  p99 355.2 ms  min 205.6 ms  max 355.2 ms
//! link   n=34  median 312.3 ms  p99 448.1 ms  min 221.1 ms  max 448.1 ms
//! leave  n=34  median   1.4 ms  p99  10.0 ms  min   0.7 ms  max  10.0 ms
//! heal after link up: median 636 ms, max 694 ms
//! ```
//!
//! Every down event matched a fault (no false positive, no flap). An earlier
//! run found one: after a link flap the kernel re-resolves ARP only once a
//! second, so the returning node heard its peers but could not answer yet
//! and dropped them again; `core::REJOIN_GRACE` fixes it and
//! `sim::heal_after_cut_never_flaps_any_view` covers it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::{Authentication, Membership, Seed};

fn micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

#[test]
#[ignore = "run by membership/lab.sh inside a network namespace"]
fn lab_node() {
    let node = env("FLB_MEM_NODE");
    let bind: SocketAddr = env("FLB_MEM_BIND").parse().expect("FLB_MEM_BIND");
    // name=address,...
    let seeds: Vec<Seed> = env("FLB_MEM_SEEDS")
        .split(',')
        .map(|s| {
            let (name, addr) = s.trim().split_once('=').expect("FLB_MEM_SEEDS: name=addr");
            Seed::new(name, addr.parse().expect("FLB_MEM_SEEDS address"))
        })
        .collect();
    let auth = Authentication::from_flags(env("FLB_MEM_KEYS").as_ref(), false, "lab")
        .expect("FLB_MEM_KEYS: a key file");
    // RUST_LOG=ferrolb_speaker::membership=debug,foca=debug shows the protocol.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let (_seeds_tx, seeds_rx) = watch::channel(seeds);
        let (membership, mut live) = Membership::start(node.clone(), bind, seeds_rx, auth)
            .await
            .expect("start");
        let mut shown = BTreeSet::from([node.clone()]);
        loop {
            let current = live.borrow_and_update().clone();
            let now = micros();
            for gone in shown.difference(&current) {
                println!("EV {now} {node} down {gone}");
            }
            for new in current.difference(&shown) {
                println!("EV {now} {node} up {new}");
            }
            if current != shown {
                let list: Vec<_> = current.iter().map(String::as_str).collect();
                println!("LIVE {now} {node} {}", list.join(","));
                shown = current;
            }
            tokio::select! {
                _ = term.recv() => break,
                changed = live.changed() => if changed.is_err() { break },
            }
        }
        let asked = micros();
        println!("LEAVING {asked} {node}");
        let stats = membership.stats();
        membership.leave().await;
        println!(
            "LEFT {} {node} took_us={} stats={stats:?}",
            micros(),
            micros() - asked
        );
    });
}
