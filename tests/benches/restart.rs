//! Route continuity during a rolling restart of the speakers (issue 13 §2), in the lab with
//! FerroLB as supervised processes (prints figures; asserts nothing).
//!
//! A rolling restart is what a DaemonSet update with `maxUnavailable: 1` does: each node's
//! speaker in turn gets SIGTERM (its supervisor starts a new one ~200 ms after it exits, as the
//! kubelet starts the new pod), and the next node waits until the new speaker's sessions are
//! Established at both routers and the route is whole again. Meanwhile the client GETs
//! agnhost's `/hostname` through FRR every 10 ms (new connection each, 200 ms timeout); a figure
//! is the number of requests that failed during one whole rolling restart (three speakers).
//!
//! Two Services (Cluster policy, an agnhost pod on each node) and two settings of the BGPPeers
//! (to FRR and BIRD, IPv4):
//! - announced by all three nodes (ECMP at the routers) or by flb-node1 alone (its
//!   BGPAdvertisement selects that node: a withdrawn route is a route gone);
//! - `enableGracefulRestart: true` (the routers keep the routes of a restarting speaker) or
//!   false (every SIGTERM withdraws, as before issue 13).
//!
//! ```sh
//! cargo bench -p ferrolb-tests --bench restart --no-run
//! FERROLB_BENCH_TRIALS=5 flock /tmp/ferrolb-lab.lock cargo bench -p ferrolb-tests --bench restart
//! ```

use std::time::{Duration, Instant};

use ferrolb_tests::backend::{Backend, Spec, url, wait_http};
use ferrolb_tests::bench::{Summary, settle, stamp, started, trials};
use ferrolb_tests::bgp::{Objects, ROUTERS, hops, wait_routed, wait_shown_established};
use ferrolb_tests::probe::Prober;
use ferrolb_tests::restart::{peers_v4, restart_speaker};
use ferrolb_tests::{NODES, lab, unique};

const SETTLE: Duration = Duration::from_secs(60);

/// Both routers forward `ip` via exactly `nodes`.
fn routed(ip: &str, nodes: &[&str]) -> Result<(), String> {
    for r in ROUTERS {
        let h = r.kernel_nexthops(ip);
        if h != hops(nodes, ip) {
            return Err(format!("{} routes {ip} via {h:?}", r.name));
        }
    }
    Ok(())
}

/// One rolling restart while probing `ip`: the requests that failed, of those sent.
fn rolling_restart(ip: &str, announcers: &[&str], peers: &[String]) -> Option<(usize, usize)> {
    settle("route whole", SETTLE, || routed(ip, announcers))?;
    let prober = Prober::start(ip);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    for node in NODES {
        restart_speaker(node);
        for p in peers {
            wait_shown_established(p, SETTLE, |_| true);
        }
        settle("route whole", SETTLE, || routed(ip, announcers))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let probes: Vec<_> = prober.finish().into_iter().filter(|p| p.at >= t0).collect();
    let failed = probes.iter().filter(|p| p.answer.is_none()).count();
    Some((failed, probes.len()))
}

fn main() {
    let n = trials();
    let started = started();
    lab();
    let base = unique("bench-rr");
    let mut o = Objects::new();
    let peers = peers_v4(&mut o, &base, "");
    let (all, one) = (format!("{base}-all"), format!("{base}-one"));
    o.advertised_pool(&all, &["198.18.101.21"], "BGPAdvertisement", "");
    o.advertised_pool(
        &one,
        &["198.18.101.22"],
        "BGPAdvertisement",
        "nodeSelectors: [{matchLabels: {kubernetes.io/hostname: flb-node1}}]",
    );
    let backends: Vec<(Backend, &[&str], &str)> = vec![
        (
            Backend::new(Spec::one_per_node(&all)),
            &NODES[..],
            "announced by 3 nodes",
        ),
        (
            Backend::new(Spec::one_per_node(&one)),
            &NODES[..1],
            "announced by flb-node1",
        ),
    ];
    let mut services = Vec::new();
    for (b, announcers, what) in &backends {
        b.wait_ready();
        let ip = b.ips(SETTLE).remove(0);
        wait_routed(std::slice::from_ref(&ip), announcers, SETTLE);
        wait_http(&url(&ip, 80, "/hostname"), SETTLE, |_| true);
        services.push((ip, *announcers, *what));
    }
    println!(
        "== rolling restart of the 3 speakers (SIGTERM each in turn, next once its sessions are \
         back); failed requests of one every 10 ms through FRR; {n} trials"
    );
    for gr in [false, true] {
        for p in &peers {
            o.patch_spec(
                "bgppeer",
                p,
                &format!("{{\"enableGracefulRestart\": {gr}}}"),
            );
        }
        // The sessions restart with the new capability.
        std::thread::sleep(Duration::from_secs(3));
        for p in &peers {
            wait_shown_established(p, SETTLE, |_| true);
        }
        for (ip, announcers, what) in &services {
            let mut failed = Vec::new();
            let mut sent = 0;
            for t in 0..n {
                match rolling_restart(ip, announcers, &peers) {
                    Some((f, s)) => {
                        eprintln!(
                            "{} graceful restart {gr}, {what}, trial {}/{n}: {f} of {s} failed",
                            stamp(),
                            t + 1
                        );
                        failed.push(f as f64);
                        sent += s;
                    }
                    None => eprintln!("{} trial {} skipped", stamp(), t + 1),
                }
            }
            let name = format!(
                "graceful restart {}, {what}: failed requests",
                if gr { "on " } else { "off" }
            );
            println!(
                "{}  (of {} sent in all)",
                Summary::of(&failed).row(&name, "", (56, 3, 6), 0),
                sent
            );
        }
    }
    drop(backends);
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
}
