//! BGP fabrics beyond numbered, speaker-initiated sessions (issue 13 §2), in the lab:
//! - unnumbered peering (RFC 8950): a BGPPeer naming an interface peers with FRR's
//!   `neighbor IFACE interface` over IPv6 link-local addresses and carries IPv4 and IPv6 routes
//!   with the node's link-local next hop; the client's traffic follows that route;
//! - passive peers: a speaker that only listens peers with a router that connects, never
//!   connects itself, and closes connections from anyone else (counted).
//!
//! Like tests/bgp.rs these change shared router state: one at a time, everything restored.

use std::time::Duration;

use ferrolb_tests::backend::{Backend, Spec, client_gateway, curl_many, url};
use ferrolb_tests::bgp::{
    BIRD, BgpService, FRR, FRR_SIDE, NODE_SIDE, Objects, RouterConfig, UnnumberedLink, hops,
    link_local, node_addr, shown_sessions, wait_nexthops, wait_router_sessions,
    wait_shown_established,
};
use ferrolb_tests::{NODES, host_prefix, run, serial, speaker_metrics, unique, wait_for};

const SETTLE: Duration = Duration::from_secs(60);
const NODE: &str = "flb-node1";

#[test]
fn unnumbered_session_with_frr_carries_ipv4_and_ipv6_and_traffic_follows_it() {
    let _s = serial();
    let link = UnnumberedLink::new(NODE);
    let node_ll = link_local(NODE, NODE_SIDE);
    let p = unique("unnum");
    let mut o = Objects::new();
    o.apply(
        "BGPPeer",
        &p,
        &format!(
            "{{myASN: 64600, peerASN: {}, interface: {}, holdTime: 9s, keepaliveTime: 3s, \
             connectTime: 1s, nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {NODE}}}}}]}}",
            FRR.asn,
            NODE_SIDE
        ),
    );
    let pool = unique("unnum");
    o.advertised_pool(
        &pool,
        &["198.18.100.21", "fd00:100::21"],
        "BGPAdvertisement",
        "",
    );
    let b = Backend::new(Spec {
        node: Some(NODE.to_string()),
        dual_stack: true,
        pool: Some(pool),
        ..Spec::default()
    });
    b.wait_ready();
    let ips = b.ips(SETTLE);
    assert_eq!(ips, ["198.18.100.21", "fd00:100::21"]);

    // The session, over link-local addresses, with RFC 8950 negotiated both ways.
    let n = wait_for("FRR's unnumbered session Established", SETTLE, || {
        let n = link.neighbor();
        (n.get("bgpState").and_then(|s| s.as_str()) == Some("Established")).then_some(n)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", link.neighbor()));
    let enh = n
        .pointer("/neighborCapabilities/extendedNexthop")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    assert_eq!(enh, "advertisedAndReceived", "{n}");

    // Both routes, each with the node's link-local next hop, forwarded over the link.
    for ip in &ips {
        let prefix = host_prefix(ip);
        wait_for(
            &format!("FRR to hold {prefix} via {node_ll}"),
            SETTLE,
            || {
                let hops = link.rib_next_hops(&prefix);
                hops.iter().any(|(h, _)| *h == node_ll).then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", link.rib_next_hops(&prefix)));
        wait_for(
            &format!("FRR's kernel route for {prefix} over the link"),
            SETTLE,
            || {
                let devs = link.kernel_devices(&prefix);
                (devs == [FRR_SIDE]).then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", link.kernel_devices(&prefix)));
    }
    let shown = shown_sessions(&p);
    assert!(
        shown
            .iter()
            .any(|s| s.node == NODE && s.state == "Established" && s.prefixes_sent == 2),
        "{shown:?}"
    );

    // The client reaches the Service through FRR, which has no other route to it.
    for ip in &ips {
        assert_eq!(
            client_gateway(ip).as_deref(),
            Some(FRR.addr(ip.contains(':'))),
            "{ip}"
        );
        let (bodies, failed) = curl_many(&url(ip, 80, "/hostname"), 10);
        assert_eq!(failed, 0, "{ip}: {bodies:?}");
        let pods: Vec<String> = b.pods().into_iter().map(|p| p.name).collect();
        assert!(
            bodies.iter().all(|body| pods.contains(body)),
            "{ip}: {bodies:?} {pods:?}"
        );
    }

    // The peer goes: the routes go with the session.
    o.delete("BGPPeer", &p);
    for ip in &ips {
        let prefix = host_prefix(ip);
        wait_for(&format!("FRR to drop {prefix}"), SETTLE, || {
            link.rib_next_hops(&prefix).is_empty().then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Sockets of `node` connected to `peer` whose local port is 179: connections it accepted.
fn accepted_from(node: &str, peer: &str) -> usize {
    let r = run(std::process::Command::new("ip").args([
        "netns",
        "exec",
        node,
        "ss",
        "-Htn",
        "state",
        "established",
        "( sport = :179 )",
        "dst",
        peer,
    ]));
    r.stdout.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Sockets of `node` with remote port 179 at `peer`: connections it opened (any state).
fn opened_to(node: &str, peer: &str) -> usize {
    let r = run(std::process::Command::new("ip").args([
        "netns",
        "exec",
        node,
        "ss",
        "-Htn",
        "( dport = :179 )",
        "dst",
        peer,
    ]));
    r.stdout.lines().filter(|l| !l.trim().is_empty()).count()
}

fn rejected(node: &str) -> f64 {
    speaker_metrics(node)
        .lines()
        .find_map(|l| {
            l.strip_prefix("ferrolb_bgp_rejected_connections_total ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[test]
fn a_passive_speaker_peers_with_a_router_that_connects_and_never_connects_itself() {
    let _s = serial();
    let p = unique("passive");
    let mut o = Objects::new();
    o.peer(&p, BIRD, false, "passive: true");
    let svc = BgpService::new(&["198.18.100.22"], "", "Cluster", &[NODE]);
    let ip = svc.ips()[0].clone();

    // With the lab's routers passive too, nobody connects: no session, no SYN from a node.
    for _ in 0..16 {
        std::thread::sleep(Duration::from_millis(500));
        for n in NODES {
            assert_eq!(opened_to(n, BIRD.v4), 0, "{n} connected to BIRD");
        }
    }
    for n in NODES {
        assert!(!BIRD.established(&node_addr(n, false)), "{n}");
    }

    // The routers connect: BIRD's connections to the speakers' port 179 come up.
    let _routers = RouterConfig::set(&[("LAB_ROUTER_PASSIVE", "0")]);
    wait_router_sessions(&[BIRD], &NODES, false, SETTLE);
    wait_nexthops(BIRD, &ip, &hops(&NODES, &ip), SETTLE);
    wait_shown_established(&p, SETTLE, |e| e.prefixes_sent == 1);
    for n in NODES {
        assert_eq!(
            accepted_from(n, BIRD.v4),
            1,
            "{n}: accepted BIRD's connection"
        );
        assert_eq!(opened_to(n, BIRD.v4), 0, "{n}: connected out");
    }
    // Connections from no passive peer (FRR, and BIRD's IPv6 sessions: the routers connect
    // to every node on both families now) are closed at once and counted.
    for n in NODES {
        wait_for(
            &format!("{n} to count rejected connections"),
            SETTLE,
            || (rejected(n) > 0.0).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!FRR.established(&node_addr(n, false)), "{n} let FRR in");
        assert!(
            !BIRD.established(&node_addr(n, true)),
            "{n} let BIRD in over IPv6"
        );
    }
}
