//! L2 mode end to end in the lab: the lab's speakers (one per node host) answer ARP/NDP for the
//! elected node, and the client's traffic follows failures. The tests kill and cut speakers, so
//! they run one at a time (a lock), with pools and advertisements of their own.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferrolb_tests::{NODES, Responders, TestNamespace, lab, neighbour_mac, node_mac, repo, unique, wait_for, who_answers};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool of one or two addresses, an L2Advertisement, and a Service in a namespace of its own,
/// with a hand-made EndpointSlice (the lab has no kubelets).
struct L2Case {
    ns: TestNamespace,
    name: String,
}

impl L2Case {
    /// `adv_spec` is the L2Advertisement spec without `ipAddressPools` (None: no advertisement).
    fn new(addresses: &[&str], adv_spec: Option<&str>, svc_extra: &str, endpoint_nodes: &[&str]) -> L2Case {
        let ns = TestNamespace::new("l2");
        let name = unique("l2");
        let addrs = addresses
            .iter()
            .map(|a| format!("'{a}/{}'", if a.contains(':') { 128 } else { 32 }))
            .collect::<Vec<_>>()
            .join(", ");
        let r = lab().apply(&format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}}}\nspec: {{addresses: [{addrs}], autoAssign: false}}\n"
        ));
        assert!(r.ok, "{}", r.stderr);
        if let Some(spec) = adv_spec {
            let sep = if spec.trim() == "{}" { "" } else { ", " };
            let spec = spec.trim().trim_start_matches('{').trim_end_matches('}');
            let r = lab().apply(&format!(
                "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: {name}}}\nspec: {{ipAddressPools: [{name}]{sep}{spec}}}\n"
            ));
            assert!(r.ok, "{}", r.stderr);
        }
        let families = if addresses.iter().any(|a| a.contains(':')) && addresses.iter().any(|a| !a.contains(':')) {
            "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n"
        } else if addresses.iter().all(|a| a.contains(':')) {
            "  ipFamilies: [IPv6]\n"
        } else {
            ""
        };
        let r = ns.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {{ferrolb.io/address-pool: {name}}}\nspec:\n  \
             type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: [{{port: 80}}]\n{families}{svc_extra}"
        ));
        assert!(r.ok, "{}", r.stderr);
        let c = L2Case { ns, name };
        c.endpoints(endpoint_nodes);
        c
    }

    /// Replaces the Service's endpoints with one ready endpoint on each of `nodes`.
    fn endpoints(&self, nodes: &[&str]) {
        let eps: String = nodes
            .iter()
            .map(|n| {
                let id: u8 = n.trim_start_matches("flb-node").parse::<u8>().unwrap_or(1) + 10;
                format!("  - addresses: [198.18.0.{id}]\n    nodeName: {n}\n    conditions: {{ready: true}}\n")
            })
            .collect();
        let body = if eps.is_empty() { "endpoints: []\n".to_string() } else { format!("endpoints:\n{eps}") };
        let r = self.ns.apply(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  labels: {{kubernetes.io/service-name: web}}\n\
             addressType: IPv4\n{body}ports: [{{port: 80, protocol: TCP}}]\n"
        ));
        assert!(r.ok, "{}", r.stderr);
    }

    /// The Service's addresses, once allocated.
    fn ips(&self) -> Vec<String> {
        wait_for("an EXTERNAL-IP", Duration::from_secs(15), || {
            let r = lab().kubectl(&["get", "svc", "-n", &self.ns.name, "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"]);
            let ips: Vec<String> = r.stdout.split_whitespace().map(String::from).collect();
            (!ips.is_empty()).then_some(ips)
        })
        .expect("allocated")
    }

    /// The node the Service's L2 condition names as announcer of its primary address.
    fn announcer(&self) -> String {
        wait_for("the L2 condition", Duration::from_secs(15), || {
            let r = lab().kubectl(&[
                "get", "svc", "-n", &self.ns.name, "web", "-o",
                r#"jsonpath={.status.conditions[?(@.type=="ferrolb.io/L2Announced")].message}"#,
            ]);
            let msg = r.stdout;
            let node = msg.split("from node ").nth(1)?.split_whitespace().next()?.to_string();
            NODES.contains(&node.as_str()).then_some(node)
        })
        .expect("announced")
    }
}

impl Drop for L2Case {
    fn drop(&mut self) {
        for kind in ["l2advertisement", "ipaddresspool"] {
            let _ = lab().kubectl(&["delete", kind, "-n", ferrolb_crds::DEFAULT_NAMESPACE, &self.name, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// Waits until the client reaches the VIP on a node for which `ok` holds; returns that node.
fn wait_answer(vip: &str, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    wait_for(what, timeout, || who_answers(vip).filter(|n| ok(n))).unwrap_or_else(|e| panic!("{e}"))
}

/// Keeps a speaker's supervisor from restarting it until dropped (a node that stays down).
struct Hold(std::path::PathBuf);

impl Hold {
    fn speaker(node: &str) -> Hold {
        let p = repo().join(format!(".lab/pids/speaker-{node}.pid.hold"));
        std::fs::write(&p, "").expect("hold file");
        Hold(p)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn signal_speaker(node: &str, sig: &str) {
    let pid = lab().pid(&format!("speaker-{node}")).expect("speaker pid");
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill").success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits for the speaker of `node` to run again (after its hold is released).
fn wait_speaker_back(node: &str, old_pid: i32) {
    wait_for("the speaker to restart", Duration::from_secs(10), || {
        lab().pid(&format!("speaker-{node}")).ok().filter(|p| *p != old_pid)
    })
    .expect("speaker restarted");
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn arp_ndp_and_tcp_reach_the_elected_node() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.201", "fd00:18::201"], Some("{}"), "", &["flb-node1"]);
    let ips = case.ips();
    assert_eq!(ips, ["198.18.0.201", "fd00:18::201"]);
    let node = case.announcer();
    let _r4 = Responders::start(&ips[0]);
    let _r6 = Responders::start(&ips[1]);
    let mac = wait_for("ARP answer", Duration::from_secs(5), || neighbour_mac(&ips[0], "eth0")).unwrap();
    assert_eq!(mac, node_mac(&node, 0), "ARP answered by the elected node's MAC");
    assert_eq!(wait_answer(&ips[0], "TCP over IPv4", Duration::from_secs(5), |_| true), node);

    // IPv6 may be elected elsewhere: the condition names each address's node.
    let msg = lab()
        .kubectl(&["get", "svc", "-n", &case.ns.name, "web", "-o", r#"jsonpath={.status.conditions[?(@.type=="ferrolb.io/L2Announced")].message}"#])
        .stdout;
    let v6_node = msg.split(&format!("{} from node ", ips[1])).nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_string();
    let mac6 = wait_for("NDP answer", Duration::from_secs(5), || neighbour_mac(&ips[1], "eth0")).unwrap();
    assert_eq!(mac6, node_mac(&v6_node, 0));
    assert_eq!(wait_answer(&ips[1], "TCP over IPv6", Duration::from_secs(5), |_| true), v6_node);
    // Only the elected node answers: the others' MACs never show up.
    for _ in 0..5 {
        assert_eq!(neighbour_mac(&ips[0], "eth0").as_deref(), Some(node_mac(&node, 0).as_str()));
    }
}

#[test]
fn sigkill_and_sigterm_move_traffic_to_another_node() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.202"], Some("{}"), "", &["flb-node1"]);
    let vip = case.ips().remove(0);
    let _r = Responders::start(&vip);
    for sig in ["-KILL", "-TERM"] {
        let first = case.announcer();
        assert_eq!(wait_answer(&vip, "first node", Duration::from_secs(5), |_| true), first);
        let hold = Hold::speaker(&first);
        let pid = lab().pid(&format!("speaker-{first}")).unwrap();
        let t = Instant::now();
        signal_speaker(&first, sig);
        let next = wait_answer(&vip, "another node", Duration::from_secs(5), |n| n != first);
        println!("{sig}: traffic moved from {first} to {next} in {:?}", t.elapsed());
        drop(hold);
        wait_speaker_back(&first, pid);
    }
}

#[test]
fn cutting_the_link_moves_traffic() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.203"], Some("{}"), "", &["flb-node1"]);
    let vip = case.ips().remove(0);
    let _r = Responders::start(&vip);
    let first = case.announcer();
    assert_eq!(wait_answer(&vip, "first node", Duration::from_secs(5), |_| true), first);
    let port = format!("{}-e0", first.trim_start_matches("flb-"));
    let t = Instant::now();
    let r = lab().exec("flb-sw", &["ip", "link", "set", &port, "down"]);
    assert!(r.ok, "{}", r.stderr);
    let next = wait_answer(&vip, "another node", Duration::from_secs(5), |n| n != first);
    println!("link cut: traffic moved from {first} to {next} in {:?}", t.elapsed());
    let r = lab().exec("flb-sw", &["ip", "link", "set", &port, "up"]);
    assert!(r.ok, "{}", r.stderr);
    std::thread::sleep(Duration::from_secs(2));
}

#[test]
fn local_policy_follows_the_endpoints() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.204"], Some("{}"), "  externalTrafficPolicy: Local\n", &["flb-node2"]);
    let vip = case.ips().remove(0);
    let _r = Responders::start(&vip);
    assert_eq!(case.announcer(), "flb-node2");
    assert_eq!(wait_answer(&vip, "node2", Duration::from_secs(5), |_| true), "flb-node2");
    case.endpoints(&["flb-node3"]);
    assert_eq!(wait_answer(&vip, "node3 after the endpoint moved", Duration::from_secs(5), |n| n == "flb-node3"), "flb-node3");
    // No serving endpoint anywhere: nobody announces (the client's cached entry aside, a fresh
    // ARP request goes unanswered).
    case.endpoints(&[]);
    wait_for("silence", Duration::from_secs(5), || neighbour_mac(&vip, "eth0").is_none().then_some(())).unwrap();
}

#[test]
fn node_selectors_and_interfaces_are_respected() {
    let _s = serial();
    let case = L2Case::new(
        &["198.18.1.205"],
        Some("{nodeSelectors: [{matchLabels: {kubernetes.io/hostname: flb-node3}}], interfaces: [eth1]}"),
        "",
        &["flb-node1", "flb-node2", "flb-node3"],
    );
    let vip = case.ips().remove(0);
    assert_eq!(case.announcer(), "flb-node3");
    let mac = wait_for("ARP on eth1", Duration::from_secs(5), || neighbour_mac(&vip, "eth1")).unwrap();
    assert_eq!(mac, node_mac("flb-node3", 1), "answered from node3's eth1");
    assert_eq!(neighbour_mac(&vip, "eth0"), None, "never answered on eth0");
}

#[test]
fn no_advertisement_no_announcement() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.206"], None, "", &["flb-node1"]);
    let vip = case.ips().remove(0);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(neighbour_mac(&vip, "eth0"), None);
}
