//! BGP mode end to end in the lab, against both routers (FRR and BIRD): the lab's speakers (one
//! per node host) open real sessions, and the tests read what the routers hold — RIB paths and
//! their attributes, and the routes in the router namespaces' kernel tables (what they forward
//! with). Every BGPPeer makes every lab speaker open a session, and some tests reconfigure the
//! routers, kill speakers or cut links, so the tests run one at a time (a lock); each restores
//! the router configuration and deletes its objects when done, even when it fails.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferrolb_tests::bgp::{
    BIRD, BgpService, FRR, Objects, ROUTERS, RouteWatch, RouterConfig, hops, metric, node_addr,
    shown_sessions, wait_nexthops, wait_prefix_nexthops, wait_routed, wait_router_sessions,
    wait_shown_established,
};
use ferrolb_tests::l2::{Hold, signal_speaker, wait_speaker_back};
use ferrolb_tests::network::{LinkCut, ip_in, sysctl_in};
use ferrolb_tests::{NODES, TestNamespace, lab, serial, unique, wait_for};

const SETTLE: Duration = Duration::from_secs(40);

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sessions_routes_and_attributes_over_ipv4_and_ipv6() {
    let _s = serial();
    let p = unique("bgp-attr");
    let mut o = Objects::new();
    let (alias, large_alias) = (format!("{p}-edge"), format!("{p}-big"));
    o.apply(
        "Community",
        &p,
        &format!(
            "{{communities: [{{name: {alias}, value: '65000:300'}}, {{name: {large_alias}, value: 'large:64600:9:9'}}]}}"
        ),
    );
    let peers = o.peers_everywhere(&p, "");
    let svc = BgpService::new(
        &["198.18.100.1", "fd00:100::1"],
        &format!("communities: ['65000:200', {alias}, 'large:64600:7:7', {large_alias}]"),
        "Cluster",
        &["flb-node2"],
    );
    let ips = svc.ips();
    assert_eq!(ips, ["198.18.100.1", "fd00:100::1"]);

    // Sessions over IPv4 and IPv6 with both routers, seen from the routers...
    wait_router_sessions(&ROUTERS, &NODES, false, SETTLE);
    wait_router_sessions(&ROUTERS, &NODES, true, SETTLE);
    // ... and the routes: Cluster policy with a serving endpoint, so every node is a next hop
    // (ECMP in the routers' forwarding tables), with every community of the advertisement,
    // aliases resolved.
    for r in ROUTERS {
        for ip in &ips {
            wait_nexthops(r, ip, &hops(&NODES, ip), SETTLE);
            let paths = r.rib(ip);
            let next_hops: BTreeSet<String> = paths.iter().map(|p| p.next_hop.clone()).collect();
            assert_eq!(
                next_hops,
                hops(&NODES, ip),
                "{} RIB for {ip}: {paths:?}",
                r.name
            );
            for path in &paths {
                assert_eq!(
                    path.communities,
                    set(&["65000:200", "65000:300"]),
                    "{} {ip}",
                    r.name
                );
                assert_eq!(
                    path.large_communities,
                    set(&["64600:7:7", "64600:9:9"]),
                    "{} {ip}",
                    r.name
                );
            }
        }
    }

    // What the speakers show: each node's session in BGPPeer.status.sessions, and metrics.
    for (name, _, _) in &peers {
        wait_shown_established(name, SETTLE, |e| e.prefixes_sent == 1);
        for n in NODES {
            assert_eq!(
                metric(n, "ferrolb_bgp_session_up", name),
                Some(1.0),
                "{n} {name}"
            );
            assert_eq!(
                metric(n, "ferrolb_bgp_announced_prefixes", name),
                Some(1.0),
                "{n} {name}"
            );
            assert!(metric(n, "ferrolb_bgp_updates", name).is_some_and(|u| u >= 1.0));
        }
    }

    // No serving endpoint: every node withdraws, on both routers and both families.
    svc.endpoints(&[]);
    for r in ROUTERS {
        for ip in &ips {
            wait_nexthops(r, ip, &BTreeSet::new(), SETTLE);
            assert!(r.rib(ip).is_empty(), "{} still has {ip}", r.name);
        }
    }
    for (name, _, _) in &peers {
        wait_shown_established(name, SETTLE, |e| e.prefixes_sent == 0);
    }
}

#[test]
fn local_and_cluster_policies_follow_the_endpoints() {
    let _s = serial();
    let p = unique("bgp-pol");
    let mut o = Objects::new();
    o.peers_everywhere(&p, "");
    let svc = BgpService::new(
        &["198.18.100.3", "fd00:100::3"],
        "",
        "Local",
        &["flb-node1"],
    );
    let ips = svc.ips();
    let expect = |nodes: &[&str], what: &str| {
        println!("{what}: expecting next hops {nodes:?}");
        wait_routed(&ips, nodes, SETTLE);
    };
    expect(&["flb-node1"], "Local, endpoint on node1");
    svc.endpoints(&["flb-node1", "flb-node2"]);
    expect(
        &["flb-node1", "flb-node2"],
        "Local, endpoint added on node2",
    );
    svc.endpoints(&["flb-node3"]);
    expect(&["flb-node3"], "Local, endpoint moved to node3");
    svc.endpoints(&[]);
    expect(&[], "Local, endpoints removed");
    svc.endpoints(&["flb-node2"]);
    expect(&["flb-node2"], "Local, endpoint back on node2");
    svc.set_policy("Cluster");
    expect(&NODES, "Cluster, endpoint on node2");
    svc.set_policy("Local");
    expect(&["flb-node2"], "Local again");
}

#[test]
fn local_pref_over_ibgp() {
    let _s = serial();
    // Both routers in our AS: iBGP, where LOCAL_PREF is carried.
    let _routers = RouterConfig::set(&[("LAB_FRR_AS", "64600"), ("LAB_BIRD_AS", "64600")]);
    let p = unique("bgp-ibgp");
    let mut o = Objects::new();
    let mut peers = Vec::new();
    for r in ROUTERS {
        for v6 in [false, true] {
            let name = format!("{p}-{}{}", r.name, if v6 { 6 } else { 4 });
            o.peer_as(&name, r, 64600, v6, "");
            peers.push(name);
        }
    }
    let svc = BgpService::new(
        &["198.18.100.2", "fd00:100::2"],
        "localPref: 250, communities: ['65000:250']",
        "Cluster",
        &["flb-node1"],
    );
    let ips = svc.ips();
    for name in &peers {
        wait_shown_established(name, SETTLE, |e| e.prefixes_sent == 1);
    }
    for r in ROUTERS {
        for ip in &ips {
            let paths = wait_for(
                &format!("{} to hold {ip} from every node", r.name),
                SETTLE,
                || {
                    let paths = r.rib(ip);
                    let nh: BTreeSet<String> = paths.iter().map(|p| p.next_hop.clone()).collect();
                    (nh == hops(&NODES, ip)).then_some(paths)
                },
            )
            .unwrap_or_else(|e| panic!("{e}: {:?}", r.rib(ip)));
            for path in paths {
                assert_eq!(path.local_pref, Some(250), "{} {ip}: {path:?}", r.name);
                assert_eq!(path.communities, set(&["65000:250"]));
            }
        }
    }
    // FRR resolves the iBGP next hops (connected) and forwards over all of them. (BIRD's lab
    // config has no IGP table for recursive next hops, so its iBGP routes stay unreachable.)
    for ip in &ips {
        wait_nexthops(FRR, ip, &hops(&NODES, ip), SETTLE);
    }
}

#[test]
fn md5_wrong_password_fails_right_password_establishes() {
    let _s = serial();
    const PASSWORD: &str = "flb-md5-s3cret";
    let _routers = RouterConfig::set(&[("LAB_BGP_PASSWORD", PASSWORD)]);
    let p = unique("bgp-md5");
    let mut o = Objects::new();
    let secret = format!("{p}-bird");
    // Wrong passwords: inline for FRR, from a Secret for BIRD.
    o.secret(&secret, "not-the-password");
    let frr = format!("{p}-frr4");
    let bird = format!("{p}-bird4");
    o.peer(&frr, FRR, false, "password: wrong-password");
    o.peer(
        &bird,
        BIRD,
        false,
        &format!("passwordSecret: {{name: {secret}}}"),
    );
    let svc = BgpService::new(&["198.18.100.4"], "", "Cluster", &["flb-node1"]);
    let ip = svc.ips().remove(0);

    // The routers' kernels drop the SYNs (bad signature): nothing establishes, and the speakers
    // say why.
    let errors = wait_for("the speakers to report connect errors", SETTLE, || {
        let all: Vec<_> = [&frr, &bird]
            .iter()
            .flat_map(|n| shown_sessions(n))
            .collect();
        (all.len() == 2 * NODES.len() && all.iter().all(|e| e.last_error.is_some())).then_some(all)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    println!("wrong password: {errors:?}");
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        for r in ROUTERS {
            for n in NODES {
                assert!(
                    !r.established(&node_addr(n, false)),
                    "{} established with {n}",
                    r.name
                );
            }
        }
        for e in shown_sessions(&frr)
            .into_iter()
            .chain(shown_sessions(&bird))
        {
            assert_ne!(e.state, "Established", "{e:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(FRR.kernel_nexthops(&ip).is_empty() && BIRD.kernel_nexthops(&ip).is_empty());

    // The right password (a new inline value; the Secret updated in place) establishes.
    o.patch_spec(
        "bgppeer",
        &frr,
        &format!("{{\"password\": \"{PASSWORD}\"}}"),
    );
    o.secret(&secret, PASSWORD);
    wait_router_sessions(&ROUTERS, &NODES, false, SETTLE);
    for name in [&frr, &bird] {
        wait_shown_established(name, SETTLE, |e| e.prefixes_sent == 1);
    }
    for r in ROUTERS {
        wait_nexthops(r, &ip, &hops(&NODES, &ip), SETTLE);
    }
}

/// Each router gets a loopback address the nodes reach only through the other router (a static
/// route on node1, forwarding on the routers), so sessions to it are two IP hops away.
struct Loopbacks {
    redirects: Vec<(&'static str, String, String)>,
}

const FRR_LO: &str = "198.18.2.2";
const BIRD_LO: &str = "198.18.2.3";

impl Loopbacks {
    fn new() -> Loopbacks {
        let mut l = Loopbacks {
            redirects: Vec::new(),
        };
        // A router forwarding back out of the interface it received on would tell node1 to go
        // direct (ICMP redirect), turning the path into one hop: no redirects while we test.
        for ns in [FRR.ns, BIRD.ns] {
            for key in [
                "net.ipv4.conf.all.send_redirects",
                "net.ipv4.conf.eth0.send_redirects",
            ] {
                let old = sysctl_in(ns, key, "0");
                l.redirects.push((ns, key.to_string(), old));
            }
        }
        ip_in(
            FRR.ns,
            &["addr", "replace", &format!("{FRR_LO}/32"), "dev", "lo"],
        );
        ip_in(
            BIRD.ns,
            &["addr", "replace", &format!("{BIRD_LO}/32"), "dev", "lo"],
        );
        ip_in(
            BIRD.ns,
            &["route", "replace", &format!("{FRR_LO}/32"), "via", FRR.v4],
        );
        ip_in(
            FRR.ns,
            &["route", "replace", &format!("{BIRD_LO}/32"), "via", BIRD.v4],
        );
        ip_in(
            "flb-node1",
            &["route", "replace", &format!("{FRR_LO}/32"), "via", BIRD.v4],
        );
        ip_in(
            "flb-node1",
            &["route", "replace", &format!("{BIRD_LO}/32"), "via", FRR.v4],
        );
        l
    }
}

impl Drop for Loopbacks {
    fn drop(&mut self) {
        let del = |ns: &str, args: &[&str]| {
            let _ = std::process::Command::new("ip")
                .arg("-n")
                .arg(ns)
                .args(args)
                .status();
        };
        del("flb-node1", &["route", "del", &format!("{FRR_LO}/32")]);
        del("flb-node1", &["route", "del", &format!("{BIRD_LO}/32")]);
        del(FRR.ns, &["route", "del", &format!("{BIRD_LO}/32")]);
        del(BIRD.ns, &["route", "del", &format!("{FRR_LO}/32")]);
        del(
            FRR.ns,
            &["addr", "del", &format!("{FRR_LO}/32"), "dev", "lo"],
        );
        del(
            BIRD.ns,
            &["addr", "del", &format!("{BIRD_LO}/32"), "dev", "lo"],
        );
        for (ns, key, old) in self.redirects.drain(..) {
            if !old.is_empty() {
                sysctl_in(ns, &key, &old);
            }
        }
    }
}

#[test]
fn ebgp_multihop_reaches_a_router_two_hops_away() {
    let _s = serial();
    let _lo = Loopbacks::new();
    let p = unique("bgp-mh");
    let mut o = Objects::new();
    let only_node1 = "nodeSelectors: [{matchLabels: {kubernetes.io/hostname: flb-node1}}]";
    let peers = [
        (format!("{p}-frr"), FRR, FRR_LO),
        (format!("{p}-bird"), BIRD, BIRD_LO),
    ];
    for (name, r, lo) in &peers {
        o.apply(
            "BGPPeer",
            name,
            &format!(
                "{{myASN: 64600, peerASN: {}, peerAddress: {lo}, holdTime: 9s, keepaliveTime: 3s, \
                 connectTime: 1s, {only_node1}}}",
                r.asn
            ),
        );
    }
    let svc = BgpService::new(&["198.18.100.5"], "", "Cluster", &["flb-node1"]);
    let ip = svc.ips().remove(0);

    // Without ebgpMultiHop the speaker sends with TTL 1, which dies at the first router.
    for (name, _, _) in &peers {
        let e = wait_for(&format!("{name} to report an error"), SETTLE, || {
            shown_sessions(name)
                .into_iter()
                .find(|e| e.node == "flb-node1" && e.last_error.is_some())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        println!("{name} without ebgpMultiHop: {e:?}");
    }
    std::thread::sleep(Duration::from_secs(3));
    for (name, r, _) in &peers {
        assert!(!r.established(&node_addr("flb-node1", false)), "{}", r.name);
        assert!(
            shown_sessions(name)
                .iter()
                .all(|e| e.state != "Established")
        );
    }

    // With it (TTL 255) both sessions establish, to the loopback addresses.
    for (name, _, _) in &peers {
        o.patch_spec("bgppeer", name, "{\"ebgpMultiHop\": true}");
    }
    for (name, r, lo) in &peers {
        wait_for(&format!("{name} established"), SETTLE, || {
            shown_sessions(name)
                .iter()
                .any(|e| e.node == "flb-node1" && e.state == "Established")
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", shown_sessions(name)));
        let conns = r.bgp_connections();
        assert!(
            conns.contains(&(lo.to_string(), node_addr("flb-node1", false))),
            "{}: {conns:?}",
            r.name
        );
        wait_nexthops(*r, &ip, &hops(&["flb-node1"], &ip), SETTLE);
        // Only node1 peers (nodeSelectors).
        for n in ["flb-node2", "flb-node3"] {
            assert!(!r.established(&node_addr(n, false)));
        }
    }
}

#[test]
fn bfd_removes_a_cut_node_within_a_second() {
    let _s = serial();
    let _routers = RouterConfig::set(&[("LAB_BFD", "1")]);
    let p = unique("bgp-bfd");
    let mut o = Objects::new();
    o.apply(
        "BFDProfile",
        &p,
        "{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}",
    );
    let peers = o.peers_everywhere(&p, &format!("bfdProfile: {p}"));
    let svc = BgpService::new(
        &["198.18.100.6", "fd00:100::6"],
        "",
        "Cluster",
        &["flb-node2"],
    );
    let ips = svc.ips();
    for r in ROUTERS {
        for ip in &ips {
            wait_nexthops(r, ip, &hops(&NODES, ip), SETTLE);
        }
        // One node, two routers, two families: four BFD sessions per node, all up (the
        // speaker's shared BFD receiver serves them from one port per address).
        for n in NODES {
            for v6 in [false, true] {
                let a = node_addr(n, v6);
                wait_for(&format!("{} BFD with {a}", r.name), SETTLE, || {
                    r.bfd_up(&a).then_some(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    for (name, _, _) in &peers {
        wait_shown_established(name, SETTLE, |e| e.bfd_state.as_deref() == Some("Up"));
    }
    // Let every Poll sequence settle, then cut node1's cable.
    std::thread::sleep(Duration::from_secs(2));
    let watches: Vec<RouteWatch> = ROUTERS.iter().map(|r| RouteWatch::start(*r)).collect();
    let cut = LinkCut::node("flb-node1");
    let t0 = cut.at;
    for w in &watches {
        for ip in &ips {
            let gone = node_addr("flb-node1", ip.contains(':'));
            let took = w
                .wait(ip, t0, Duration::from_secs(5), |h| {
                    !h.contains(&gone) && !h.is_empty()
                })
                .unwrap_or_else(|| panic!("{}: {gone} never left {ip}", w.router.name));
            println!(
                "link cut → {} drops node1 for {ip}: {took:?}",
                w.router.name
            );
            assert!(
                took < Duration::from_secs(1),
                "{} {ip}: {took:?}",
                w.router.name
            );
            assert_eq!(
                w.router.kernel_nexthops(ip),
                hops(&["flb-node2", "flb-node3"], ip)
            );
        }
    }
    drop(cut);
    wait_routed(&ips, &NODES, SETTLE);
}

#[test]
fn graceful_restart_keeps_routes_across_a_speaker_restart() {
    let _s = serial();
    let p = unique("bgp-gr");
    let mut o = Objects::new();
    let peers = o.peers_everywhere(&p, "");
    let svc = BgpService::new(
        &["198.18.100.7", "fd00:100::7"],
        "",
        "Local",
        &["flb-node1"],
    );
    let ips = svc.ips();
    let node1 = |ip: &str| hops(&["flb-node1"], ip);
    let ready = || {
        for r in ROUTERS {
            for ip in &ips {
                wait_nexthops(r, ip, &node1(ip), SETTLE);
            }
        }
    };
    ready();

    // Without graceful restart, a speaker crash withdraws at once (TCP closes).
    let hold = Hold::speaker("flb-node1");
    let pid = lab().pid("speaker-flb-node1").unwrap();
    signal_speaker("flb-node1", "-KILL");
    wait_routed(&ips, &[], Duration::from_secs(5));
    drop(hold);
    wait_speaker_back("flb-node1", pid);
    ready();

    // With it, the routers keep the routes (stale) until the speaker is back.
    for (name, _, _) in &peers {
        o.patch_spec("bgppeer", name, "{\"enableGracefulRestart\": true}");
    }
    // The sessions restart with the new capability; wait until they have.
    std::thread::sleep(Duration::from_secs(2));
    for (name, _, _) in &peers {
        wait_shown_established(name, SETTLE, |_| true);
    }
    ready();
    // From the kill until the refreshed routes are back, a watcher checks the routers' kernel
    // tables every 50 ms: the next hop must never leave (not while the speaker is away, and not
    // when it reconnects, which would happen if it sent End-of-RIB before its routes).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let ips = ips.clone();
        std::thread::spawn(move || {
            let mut lost = Vec::new();
            let mut polls = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for r in ROUTERS {
                    for ip in &ips {
                        let got = r.kernel_nexthops(ip);
                        if got != hops(&["flb-node1"], ip) {
                            lost.push(format!("{}: {ip} -> {got:?}", r.name));
                        }
                    }
                }
                polls += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (polls, lost)
        })
    };
    let hold = Hold::speaker("flb-node1");
    let pid = lab().pid("speaker-flb-node1").unwrap();
    signal_speaker("flb-node1", "-KILL");
    let mut saw_stale = false;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        for r in ROUTERS {
            for ip in &ips {
                assert_eq!(
                    r.kernel_nexthops(ip),
                    node1(ip),
                    "{} lost {ip} while node1 restarts",
                    r.name
                );
            }
        }
        saw_stale |= ips.iter().all(|ip| FRR.rib(ip).iter().any(|p| p.stale));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        saw_stale,
        "FRR marks the routes stale while the speaker is away"
    );
    drop(hold);
    wait_speaker_back("flb-node1", pid);
    for (name, _, _) in &peers {
        wait_shown_established(name, SETTLE, |_| true);
    }
    // Back and refreshed (End-of-RIB clears the stale mark); the route never left.
    for ip in &ips {
        wait_for(&format!("FRR to refresh {ip}"), SETTLE, || {
            let paths = FRR.rib(ip);
            (!paths.is_empty() && paths.iter().all(|p| !p.stale)).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", FRR.rib(ip)));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (polls, lost) = watcher.join().expect("watcher");
    assert!(polls > 20, "the watcher ran ({polls} polls)");
    assert!(
        lost.is_empty(),
        "next hops left during the restart: {lost:?}"
    );
    for r in ROUTERS {
        for ip in &ips {
            assert_eq!(r.kernel_nexthops(ip), node1(ip));
        }
    }
}

/// Calico's serviceClusterIPs / serviceExternalIPs: the ranges from every node, and the cluster
/// and external IPs of a Local-policy Service as host routes from the nodes serving it.
#[test]
fn service_cluster_and_external_ip_ranges() {
    let _s = serial();
    let p = unique("bgp-ranges");
    let mut o = Objects::new();
    for r in ROUTERS {
        o.peer(&format!("{p}-{}", r.name), r, false, "");
    }
    o.apply(
        "BGPAdvertisement",
        &p,
        "{serviceClusterIPs: ['198.19.0.0/16'], serviceExternalIPs: ['198.18.120.0/24']}",
    );
    let ns = TestNamespace::new("bgp");
    let r = ns.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: ClusterIP\n  \
         externalIPs: [198.18.120.5]\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
    );
    assert!(r.ok, "{}", r.stderr);
    let cluster_ip = lab()
        .kubectl(&[
            "get",
            "svc",
            "-n",
            &ns.name,
            "web",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .stdout
        .trim()
        .to_string();
    assert!(cluster_ip.starts_with("198.19."), "cluster IP {cluster_ip}");
    let endpoints = |nodes: &[&str]| {
        ns.web_endpoints(nodes);
    };
    endpoints(&["flb-node2"]);
    for r in ROUTERS {
        for range in ["198.19.0.0/16", "198.18.120.0/24"] {
            wait_prefix_nexthops(r, range, &hops(&NODES, "198.18.0.1"), SETTLE);
        }
        for ip in [cluster_ip.as_str(), "198.18.120.5"] {
            wait_nexthops(r, ip, &hops(&["flb-node2"], ip), SETTLE);
        }
    }
    // The endpoint moves: so do the host routes; the ranges stay on every node.
    endpoints(&["flb-node3"]);
    for r in ROUTERS {
        for ip in [cluster_ip.as_str(), "198.18.120.5"] {
            wait_nexthops(r, ip, &hops(&["flb-node3"], ip), SETTLE);
        }
        assert_eq!(
            r.kernel_nexthops_of("198.19.0.0/16"),
            hops(&NODES, "198.18.0.1"),
            "{}",
            r.name
        );
    }
    // The advertisement goes: every route goes.
    o.delete("BGPAdvertisement", &p);
    for r in ROUTERS {
        for range in ["198.19.0.0/16", "198.18.120.0/24"] {
            wait_prefix_nexthops(r, range, &BTreeSet::new(), SETTLE);
        }
        for ip in [cluster_ip.as_str(), "198.18.120.5"] {
            wait_nexthops(r, ip, &BTreeSet::new(), SETTLE);
        }
    }
}
