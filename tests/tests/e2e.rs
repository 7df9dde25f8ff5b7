//! FerroLB end to end as a user runs it: installed from deploy/ as pods (this binary's name starts
//! with `e2e`, so `lab()` switches the lab to pods mode), in front of real backends — agnhost pods
//! of a Deployment behind a LoadBalancer Service with a selector — so that every request takes
//! the whole data path: flb-client → EXTERNAL-IP (ARP/NDP answered by a node, or a router's BGP
//! route to a node) → kube-proxy on that node → a pod. agnhost's `/hostname` names the pod that
//! answered (with `externalTrafficPolicy: Local` and one pod per node, also the node that carried
//! the request) and `/clientip` the source address the pod saw.
//!
//! Each test has a namespace, pool and addresses of its own (L2: 198.18.0.180-183 and
//! fd00:18::180-181; BGP: 198.18.50.0/24 and fd00:50::/64), so the tests run side by side; the BGP
//! tests also take `serial()`, because each makes every node open sessions to both routers (two
//! BGPPeers for one router address would be a DuplicatePeer). The lab's routers send no ICMP
//! redirects and its client accepts none (hack/lib/network.sh): a redirect would send the client
//! straight to one node, bypassing the router and its ECMP; the spread checks verify the route.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferrolb_tests::backend::{
    Backend, ClientRoute, Spec, client_addr, client_gateway, curl_from_client, curl_many, tally,
    url, values, wait_http, wait_http_fails,
};
use ferrolb_tests::bgp::{BIRD, FRR, Objects, ROUTERS, Router, node_addr, wait_routed};
use ferrolb_tests::{NODES, lab, neighbour_mac, node_mac, serial, unique, wait_for};

/// The lab client's address on segment 0 (what a pod sees when the source is kept).
const CLIENT: &str = "198.18.0.100";
/// Consecutive answers that show every node in a route serves (before a spread is measured).
const WARM_RUN: usize = 15;
/// Time for FerroLB (and the network) to follow a change: an announcement, a route.
const SETTLE: Duration = Duration::from_secs(40);
/// Time for pods to start or stop.
const PODS: Duration = Duration::from_secs(90);
/// Requests per spread measurement (new connection each: a new source port, a new ECMP hash).
const SPREAD_REQUESTS: usize = 45;

/// Prints how long each step of a test took (on failure, the output shows how far it got).
struct Steps {
    test: &'static str,
    start: Instant,
    last: Instant,
}

impl Steps {
    /// Also brings the lab up (FerroLB as pods) first, so that the first step does not count it.
    fn start(test: &'static str) -> Steps {
        let t0 = Instant::now();
        lab();
        let now = Instant::now();
        if now - t0 > Duration::from_secs(1) {
            println!(
                "[{test}] waited {:.1} s for hack/lab up",
                (now - t0).as_secs_f64()
            );
        }
        Steps {
            test,
            start: now,
            last: now,
        }
    }

    fn done(&mut self, what: &str) {
        let now = Instant::now();
        println!(
            "[{}] {what}: {:.1} s (at {:.1} s)",
            self.test,
            (now - self.last).as_secs_f64(),
            (now - self.start).as_secs_f64()
        );
        self.last = now;
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A pool of `addresses` (host routes) with an L2Advertisement, in FerroLB's namespace.
fn l2_pool(prefix: &str, addresses: &[&str]) -> (Objects, String) {
    let name = unique(prefix);
    let mut o = Objects::new();
    o.advertised_pool(&name, addresses, "L2Advertisement", "");
    (o, name)
}

/// A pool of `addresses` with a BGPAdvertisement, and a BGPPeer from every node to each router
/// over each family, in FerroLB's namespace.
fn bgp_pool(prefix: &str, addresses: &[&str]) -> (Objects, String) {
    let name = unique(prefix);
    let mut o = Objects::new();
    o.peers_everywhere(&name, "");
    o.advertised_pool(&name, addresses, "BGPAdvertisement", "");
    (o, name)
}

/// Waits until ARP (IPv4) / NDP (IPv6) for `ip` on the client's segment 0 is answered by one
/// of `macs`; returns it.
fn wait_mac(ip: &str, macs: &[String], timeout: Duration) -> String {
    let mut last = None;
    wait_for(
        &format!("{ip} answered on flb-client's eth0 by one of {macs:?}"),
        timeout,
        || {
            let m = neighbour_mac(ip, "eth0");
            last = Some(m.clone());
            m.filter(|m| macs.contains(m))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: last answer {last:?}"))
}

/// Waits until nobody answers ARP/NDP for `ip` (twice in a row).
fn wait_no_mac(ip: &str, timeout: Duration) {
    let mut quiet = 0;
    let mut last = None;
    wait_for(&format!("no node to answer for {ip}"), timeout, || {
        match neighbour_mac(ip, "eth0") {
            Some(m) => {
                quiet = 0;
                last = Some(m);
            }
            None => quiet += 1,
        }
        (quiet >= 2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: still answered by {last:?}"));
}

/// Both MACs (segments 0 and 1) of every node.
fn node_macs() -> Vec<String> {
    NODES
        .iter()
        .flat_map(|n| [node_mac(n, 0), node_mac(n, 1)])
        .collect()
}

/// The node with this MAC (either segment).
fn node_with_mac(mac: &str) -> Option<&'static str> {
    NODES
        .iter()
        .copied()
        .find(|n| node_mac(n, 0) == mac || node_mac(n, 1) == mac)
}

/// The nodes' InternalIPs, from the API server.
fn internal_ips() -> BTreeMap<String, Vec<String>> {
    let r = lab().kubectl(&["get", "nodes", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("nodes as JSON");
    let mut out = BTreeMap::new();
    for n in v["items"].as_array().into_iter().flatten() {
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ips: Vec<String> = n["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"] == "InternalIP")
            .filter_map(|a| a["address"].as_str().map(str::to_string))
            .collect();
        out.insert(name, ips);
    }
    out
}

/// `SPREAD_REQUESTS` GETs of `path` on `ip` from the client through `router`, each on a new
/// connection (a new source port, so a new ECMP hash): how many requests each node carried, as
/// `carrier` tells from an answer (None: an answer that names no node of the Service's, a
/// failure). Every request must be answered, and the client must still route through `router`
/// afterwards (no redirect followed).
fn spread(
    ip: &str,
    router: Router,
    path: &str,
    carrier: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, usize> {
    let _route = through(router, ip);
    // A route can be up a moment before every node's kube-proxy has programmed the endpoints
    // it is announced for (kube-proxy syncs at most once a second, after the EndpointSlice that
    // FerroLB announces from): first wait until a run of requests all succeed.
    let target = url(ip, 80, path);
    let t = Instant::now();
    let mut run = 0;
    while run < WARM_RUN && t.elapsed() < SETTLE {
        run = if curl_from_client(&target).is_some() {
            run + 1
        } else {
            0
        };
    }
    assert!(
        run >= WARM_RUN,
        "{ip} via {}: never {WARM_RUN} answers in a row within {SETTLE:?}",
        router.name
    );
    let (bodies, failed) = curl_many(&target, SPREAD_REQUESTS);
    let via = router.name;
    assert_eq!(
        failed,
        0,
        "{failed} of {SPREAD_REQUESTS} requests to {ip} via {via} failed; answers: {:?}",
        tally(bodies.iter().map(String::as_str))
    );
    let nodes: Vec<String> = bodies
        .iter()
        .map(|b| {
            carrier(b).unwrap_or_else(|| {
                panic!("{ip}{path} via {via} answered {b:?}: no node of the Service's carried it")
            })
        })
        .collect();
    let t = tally(nodes.iter().map(String::as_str));
    println!("{ip}{path} via {via}: requests per node {t:?}");
    assert_eq!(
        client_gateway(ip).as_deref(),
        Some(router.addr(ip.contains(':'))),
        "after the requests, flb-client's route to {ip} no longer goes through {via}"
    );
    t
}

/// The node a masqueraded request came through (Cluster policy), from the source address the
/// pod saw: kube-proxy on the node that received it rewrote the source to the node's address
/// towards the pod: its segment-0 address (198.18.0.1N, fd00:18::1N) for a pod on another node,
/// its pod-bridge address (in 198.18.(64+N).0/24, fd00:64:0:N::/64) for a pod of its own.
fn masquerading_node(src: &str) -> Option<String> {
    use std::net::IpAddr;
    let ip: IpAddr = src.parse().ok()?;
    NODES
        .iter()
        .find(|n| {
            let k: u16 = n.trim_start_matches("flb-node").parse().unwrap_or(0);
            let on_segment = [false, true]
                .iter()
                .any(|v6| node_addr(n, *v6).parse::<IpAddr>().ok() == Some(ip));
            let on_bridge = match ip {
                IpAddr::V4(a) => a.octets()[..3] == [198, 18, 64 + k as u8],
                IpAddr::V6(a) => a.segments()[..4] == [0xfd00, 0x64, 0, k],
            };
            on_segment || on_bridge
        })
        .map(|n| n.to_string())
}

/// The client's path to `ip` through `router`: FRR is its default router (nothing to do), BIRD
/// takes a host route on the client while the guard lives. Checks the client's kernel agrees.
fn through(router: Router, ip: &str) -> Option<ClientRoute> {
    let route = (router == BIRD).then(|| ClientRoute::via(ip, BIRD.addr(ip.contains(':'))));
    let gw = client_gateway(ip);
    assert_eq!(
        gw.as_deref(),
        Some(router.addr(ip.contains(':'))),
        "flb-client's route to {ip} should go through {}",
        router.name
    );
    route
}

#[test]
fn l2_dual_stack_reaches_a_pod_through_kube_proxy() {
    let mut t = Steps::start("l2");
    let (_o, pool) = l2_pool("e2e-l2", &["198.18.0.180", "fd00:18::180"]);
    let b = Backend::new(Spec {
        replicas: 2,
        dual_stack: true,
        pool: Some(pool),
        ..Spec::default()
    });
    let pods = b.wait_ready();
    t.done("2 pods ready");
    let ips = b.ips(SETTLE);
    assert_eq!(ips, ["198.18.0.180", "fd00:18::180"]);

    for ip in &ips {
        // HTTP over each family reaches a pod of the Service...
        let first = wait_http(&url(ip, 80, "/hostname"), SETTLE, |h| pods.contains_key(h));
        println!("{ip}: first answer from pod {first} on {}", pods[&first]);
        let (bodies, failed) = curl_many(&url(ip, 80, "/hostname"), 10);
        assert_eq!(failed, 0, "{ip}: {failed} of 10 requests failed");
        for body in &bodies {
            assert!(
                pods.contains_key(body),
                "{ip} answered {body:?}, not a pod of the Service ({pods:?})"
            );
        }
        // ... and the address is answered for by a node's MAC: the node FerroLB elected.
        let mac = wait_mac(ip, &node_macs(), SETTLE);
        let node = node_with_mac(&mac).expect("a node's MAC");
        let elected = b.l2_announcer(ip);
        assert_eq!(
            elected.as_deref(),
            Some(node),
            "{ip} answered by {mac} ({node}), the L2 condition says {:?}",
            b.l2_condition("message")
        );
        if !ip.contains(':') {
            // ARP on segment 0 is answered from the node's segment-0 interface. (NDP may show
            // the unsolicited NA the node sent on segment 1: tests/tests/l2.rs.)
            assert_eq!(mac, node_mac(node, 0), "{ip}: ARP answered by {mac}");
        }
        t.done(&format!("{ip}: HTTP to pods, answered for by {node}"));
    }
}

#[test]
fn node_port_answers_on_every_nodes_internal_ip() {
    let mut t = Steps::start("nodeport");
    let (_o, pool) = l2_pool("e2e-np", &["198.18.0.181", "fd00:18::181"]);
    // One pod, on node1: the other nodes forward to it. Dual-stack: kube-proxy serves a
    // Service's nodePort on the node addresses of the Service's families.
    let b = Backend::new(Spec {
        node: Some("flb-node1".into()),
        dual_stack: true,
        pool: Some(pool),
        ..Spec::default()
    });
    let pods = b.wait_ready();
    let pod = pods.keys().next().expect("one pod").clone();
    t.done("pod ready");
    let port = b.node_port();
    assert!(
        (30000..=32767).contains(&port),
        "nodePort {port} out of the range"
    );
    for ip in b.ips(SETTLE) {
        wait_http(&url(&ip, 80, "/hostname"), SETTLE, |h| h == pod);
    }
    t.done("EXTERNAL-IPs answered");

    let nodes = internal_ips();
    assert_eq!(
        nodes.keys().map(String::as_str).collect::<Vec<_>>(),
        NODES,
        "Nodes: {nodes:?}"
    );
    for (node, addrs) in &nodes {
        assert!(
            addrs.iter().any(|a| a.contains(':')) && addrs.iter().any(|a| !a.contains(':')),
            "{node}: InternalIPs {addrs:?}, expected one per family"
        );
        for a in addrs {
            let got = wait_http(&url(a, port, "/hostname"), Duration::from_secs(10), |_| {
                true
            });
            assert_eq!(
                got, pod,
                "nodePort {port} on {node}'s InternalIP {a} answered {got:?}, expected pod {pod}"
            );
        }
    }
    t.done("nodePort answered on every InternalIP");
}

#[test]
fn local_policy_announces_from_the_pods_node_keeps_the_source_and_follows_the_pod() {
    let mut t = Steps::start("local");
    let (_o, pool) = l2_pool("e2e-local", &["198.18.0.182"]);
    let (first, second) = ("flb-node1", "flb-node3");
    let mut b = Backend::new(Spec {
        node: Some(first.into()),
        policy: "Local",
        pool: Some(pool),
        ..Spec::default()
    });
    let pods = b.wait_ready();
    assert_eq!(values(&pods), set(&[first]), "pods {pods:?}");
    let pod = pods.keys().next().unwrap().clone();
    t.done(&format!("pod ready on {first}"));
    let ip = b.ips(SETTLE).remove(0);
    assert_eq!(ip, "198.18.0.182");

    // Only the node with the pod announces.
    wait_mac(&ip, &[node_mac(first, 0)], SETTLE);
    for _ in 0..3 {
        assert_eq!(
            neighbour_mac(&ip, "eth0"),
            Some(node_mac(first, 0)),
            "{ip}: ARP must be answered by {first}, the only node with a pod"
        );
    }
    assert_eq!(b.l2_announcer(&ip).as_deref(), Some(first));
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |h| h == pod);
    // The source address is kept: the pod sees the client.
    let seen = wait_http(&url(&ip, 80, "/clientip"), SETTLE, |_| true);
    assert_eq!(client_addr(&seen), CLIENT, "Local policy: /clientip {seen}");
    t.done(&format!("announced from {first}, source kept"));

    // The pod moves to another node (a rollout onto a new pin): so does the announcement.
    b.pin(Some(second));
    let pods = b.wait_pods(1, PODS, |m| values(m) == set(&[second]));
    let new_pod = pods.keys().next().unwrap().clone();
    assert_ne!(new_pod, pod);
    t.done(&format!("pod moved to {second}, the old one gone"));
    wait_mac(&ip, &[node_mac(second, 0)], SETTLE);
    t.done(&format!("ARP answered by {second}"));
    assert_eq!(b.l2_announcer(&ip).as_deref(), Some(second));
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |h| h == new_pod);
    let seen = wait_http(&url(&ip, 80, "/clientip"), SETTLE, |_| true);
    assert_eq!(
        client_addr(&seen),
        CLIENT,
        "Local policy after the move: /clientip {seen}"
    );
    for _ in 0..3 {
        assert_eq!(neighbour_mac(&ip, "eth0"), Some(node_mac(second, 0)));
    }
    t.done("HTTP reaches the new pod, source kept");

    // Contrast: with Cluster policy kube-proxy masquerades, the pod sees a node's address.
    b.set_policy("Cluster");
    let seen = wait_http(&url(&ip, 80, "/clientip"), SETTLE, |a| {
        client_addr(a) != CLIENT
    });
    t.done(&format!("Cluster policy: the pod sees {seen}"));
}

#[test]
fn l2_scaled_to_zero_nobody_answers_scaled_back_served_again() {
    let mut t = Steps::start("l2-scale");
    let (_o, pool) = l2_pool("e2e-scale", &["198.18.0.183"]);
    let mut b = Backend::new(Spec {
        policy: "Local",
        pool: Some(pool),
        ..Spec::default()
    });
    let pods = b.wait_ready();
    let (pod, node) = pods
        .iter()
        .next()
        .map(|(p, n)| (p.clone(), n.clone()))
        .unwrap();
    let ip = b.ips(SETTLE).remove(0);
    assert_eq!(ip, "198.18.0.183");
    wait_mac(&ip, &[node_mac(&node, 0)], SETTLE);
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |h| h == pod);
    t.done(&format!("served by {pod} on {node}"));

    b.scale(0);
    b.wait_pods(0, PODS, |_| true);
    t.done("scaled to 0");
    wait_no_mac(&ip, SETTLE);
    wait_http_fails(&url(&ip, 80, "/hostname"), SETTLE, 3);
    t.done("nobody answers");
    let cond = b.l2_condition("message");
    assert!(
        cond.contains("not announced"),
        "scaled to 0: the L2 condition says {cond:?}"
    );

    b.scale(1);
    let pods = b.wait_pods(1, PODS, |_| true);
    let (pod, node) = pods
        .iter()
        .next()
        .map(|(p, n)| (p.clone(), n.clone()))
        .unwrap();
    t.done(&format!("scaled to 1: {pod} on {node}"));
    wait_mac(&ip, &[node_mac(&node, 0)], SETTLE);
    wait_http(&url(&ip, 80, "/hostname"), SETTLE, |h| h == pod);
    t.done("served again");
}

#[test]
fn bgp_cluster_policy_ecmp_over_frr_and_bird_reaches_the_pods() {
    let _s = serial();
    let mut t = Steps::start("bgp-cluster");
    let (_o, pool) = bgp_pool("e2e-bgpc", &["198.18.50.1", "fd00:50::1"]);
    let b = Backend::new(Spec {
        dual_stack: true,
        ..Spec::one_per_node(&pool)
    });
    let pods = b.wait_ready();
    assert_eq!(values(&pods), set(&NODES), "one pod per node: {pods:?}");
    let ips = b.ips(SETTLE);
    assert_eq!(ips, ["198.18.50.1", "fd00:50::1"]);
    t.done("3 pods ready");

    // Cluster policy: every node is a next hop on both routers (ECMP), both families.
    wait_routed(&ips, &NODES, SETTLE);
    t.done("3 next hops on both routers");
    for router in ROUTERS {
        for ip in &ips {
            // The pods answering are the Service's (kube-proxy picks any, on any node)...
            let per_pod = spread(ip, router, "/hostname", |h| {
                pods.contains_key(h).then(|| h.to_string())
            });
            assert!(
                per_pod.len() > 1,
                "{ip} via {}: only {per_pod:?}",
                router.name
            );
            // ... and every node carried some requests: the source the pods see is the
            // address of the node that received the request (masqueraded).
            let per_node = spread(ip, router, "/clientip", |a| {
                masquerading_node(&client_addr(a))
            });
            assert_eq!(
                per_node.keys().cloned().collect::<BTreeSet<_>>(),
                set(&NODES),
                "{ip} via {}: {SPREAD_REQUESTS} connections should come in through every node, got {per_node:?}",
                router.name
            );
            t.done(&format!("{ip} via {}: spread over every node", router.name));
        }
    }
}

#[test]
fn bgp_local_policy_routes_to_nodes_with_pods_spreads_and_follows_scaling() {
    let _s = serial();
    let mut t = Steps::start("bgp-local");
    let (_o, pool) = bgp_pool("e2e-bgpl", &["198.18.50.2", "fd00:50::2"]);
    let mut b = Backend::new(Spec {
        policy: "Local",
        dual_stack: true,
        ..Spec::one_per_node(&pool)
    });
    let pods = b.wait_ready();
    assert_eq!(values(&pods), set(&NODES), "one pod per node: {pods:?}");
    let ips = b.ips(SETTLE);
    assert_eq!(ips, ["198.18.50.2", "fd00:50::2"]);
    t.done("3 pods ready");
    wait_routed(&ips, &NODES, SETTLE);
    t.done("3 next hops on both routers");

    // Requests spread over every node, through each router (ECMP hashed by L4 flow).
    for router in [FRR, BIRD] {
        for ip in &ips {
            let per_node = spread(ip, router, "/hostname", |h| pods.get(h).cloned());
            assert_eq!(
                per_node.keys().cloned().collect::<BTreeSet<_>>(),
                set(&NODES),
                "{ip} via {}: {SPREAD_REQUESTS} connections should reach every node, got {per_node:?}",
                router.name
            );
        }
    }
    t.done("requests spread over every node, via both routers");

    // One pod fewer: only the nodes that still have one are next hops, and carry the traffic.
    b.scale(2);
    let pods = b.wait_pods(2, PODS, |_| true);
    let with_pods: Vec<String> = values(&pods).into_iter().collect();
    let with_pods: Vec<&str> = with_pods.iter().map(String::as_str).collect();
    t.done(&format!("scaled to 2: pods on {with_pods:?}"));
    wait_routed(&ips, &with_pods, SETTLE);
    t.done("next hops: the nodes with pods");
    for router in [FRR, BIRD] {
        let per_node = spread(&ips[0], router, "/hostname", |h| pods.get(h).cloned());
        assert_eq!(
            per_node.keys().cloned().collect::<BTreeSet<_>>(),
            set(&with_pods),
            "{} via {} with pods on {with_pods:?}: {per_node:?}",
            ips[0],
            router.name
        );
    }

    // No pod: every route is withdrawn, the client's requests go nowhere.
    b.scale(0);
    b.wait_pods(0, PODS, |_| true);
    t.done("scaled to 0");
    wait_routed(&ips, &[], SETTLE);
    t.done("routes withdrawn");
    for router in ROUTERS {
        for ip in &ips {
            assert!(
                router.rib(ip).is_empty(),
                "{} still holds {ip}: {:?}",
                router.name,
                router.rib(ip)
            );
        }
    }
    assert_eq!(curl_from_client(&url(&ips[0], 80, "/hostname")), None);

    // Back up: announced again from the nodes with pods, and served.
    b.scale(3);
    let pods = b.wait_pods(3, PODS, |_| true);
    assert_eq!(values(&pods), set(&NODES), "one pod per node: {pods:?}");
    t.done("scaled to 3");
    wait_routed(&ips, &NODES, SETTLE);
    for ip in &ips {
        wait_http(&url(ip, 80, "/hostname"), SETTLE, |h| pods.contains_key(h));
    }
    t.done("routed and served again");
}

#[test]
fn masquerading_sources_name_their_nodes() {
    for (src, node) in [
        ("198.18.0.12", Some("flb-node2")),
        ("198.18.67.1", Some("flb-node3")),
        ("fd00:18::11", Some("flb-node1")),
        ("fd00:64:0:2::1", Some("flb-node2")),
        (CLIENT, None),
        ("fd00:18::100", None),
    ] {
        assert_eq!(masquerading_node(src).as_deref(), node, "{src}");
    }
}
