//! The controller against the lab's real API server. Each test runs its own controller process
//! with its own configuration namespace and `loadBalancerClass`, so tests are independent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_crds::IPAddressPool;
use ferrolb_tests::controller::ControllerProc;
use ferrolb_tests::{TestNamespace, lab, object_yaml, on_each_service};
use k8s_openapi::api::core::v1::Service;
use kube::{Api, ResourceExt};

struct Env {
    svc_ns: TestNamespace,
    cfg_ns: TestNamespace,
    class: String,
    ctl: ControllerProc,
    client: kube::Client,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        let svc_ns = TestNamespace::new(prefix);
        let cfg_ns = TestNamespace::new(&format!("{prefix}-cfg"));
        let class = format!("test.ferrolb.io/{}", svc_ns.name);
        let ctl = ControllerProc::start(&cfg_ns.name, &class, &[]);
        let client = lab().client().await.expect("client");
        Env {
            svc_ns,
            cfg_ns,
            class,
            ctl,
            client,
        }
    }

    fn pool(&self, name: &str, spec: &str) {
        let r = self.cfg_ns.apply(&object_yaml("IPAddressPool", name, spec));
        assert!(r.ok, "pool {name}: {}", r.stderr);
    }

    /// Applies a LoadBalancer Service of this test's class. `extra` is YAML for the rest of spec
    /// (default: one TCP port 80).
    fn service(&self, name: &str, annotations: &[(&str, &str)], extra: &str) {
        let mut yaml = format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n");
        if !annotations.is_empty() {
            yaml += "  annotations:\n";
            for (k, v) in annotations {
                yaml += &format!("    {k}: \"{v}\"\n");
            }
        }
        yaml += &format!(
            "spec:\n  type: LoadBalancer\n  loadBalancerClass: {}\n  allocateLoadBalancerNodePorts: false\n  selector: {{app: {name}}}\n",
            self.class
        );
        yaml += if extra.is_empty() {
            "  ports: [{port: 80}]\n"
        } else {
            extra
        };
        let r = self.svc_ns.apply(&yaml);
        assert!(r.ok, "service {name}: {}\n{yaml}", r.stderr);
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.svc_ns.name)
    }

    async fn get(&self, name: &str) -> Service {
        self.services().get(name).await.expect("service exists")
    }

    /// Waits until the Service satisfies `pred`; panics with the Service and the controller log otherwise.
    async fn wait(&self, name: &str, what: &str, pred: impl Fn(&Service) -> bool) -> Service {
        let start = Instant::now();
        loop {
            let s = self.get(name).await;
            if pred(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "{name}: timed out waiting for {what}\nservice: {}\ncontroller log:\n{}",
                    serde_json::to_string_pretty(&s.status).unwrap_or_default(),
                    self.ctl.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ips(&self, name: &str) -> Vec<IpAddr> {
        ips(&self.wait(name, "an address", |s| !ips(s).is_empty()).await)
    }

    async fn wait_condition(&self, name: &str, status: &str, reason: &str) -> Service {
        self.wait(name, &format!("condition {status} {reason}"), |s| {
            cond(s).is_some_and(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    /// The Service's events, once they mention every one of `want` (events are written after
    /// the status, so they may trail it), or what there is after 10 s.
    fn events(&self, name: &str, want: &[&str]) -> String {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ev = self.events_now(name);
            if want.iter().all(|w| ev.contains(w)) || std::time::Instant::now() > until {
                return ev;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn events_now(&self, name: &str) -> String {
        lab()
            .kubectl(&[
                "get",
                "events",
                "-n",
                &self.svc_ns.name,
                "--field-selector",
                &format!("involvedObject.name={name}"),
                "-o",
                "custom-columns=TYPE:.type,REASON:.reason,MSG:.message",
            ])
            .stdout
    }

    async fn pool_status(&self, name: &str) -> ferrolb_crds::IPAddressPoolStatus {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &self.cfg_ns.name);
        api.get(name)
            .await
            .expect("pool")
            .status
            .unwrap_or_default()
    }
}

fn ips(s: &Service) -> Vec<IpAddr> {
    ferrolb_crds::service::ingress_ips(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn cond(s: &Service) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/IPAllocated")
        .cloned()
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn allocates_explains_exhaustion_and_frees() {
    let e = Env::new("alloc").await;
    e.pool("p", "{addresses: [198.18.20.0/30], autoAssign: true}");
    for n in ["a", "b", "c", "d", "e"] {
        e.service(n, &[], "");
    }
    let mut got = BTreeSet::new();
    for n in ["a", "b", "c", "d"] {
        got.extend(e.wait_ips(n).await);
    }
    let want: BTreeSet<IpAddr> = (0..4).map(|i| ip(&format!("198.18.20.{i}"))).collect();
    assert_eq!(
        got, want,
        "four services, four distinct addresses, lowest first"
    );

    let a = e.wait_condition("a", "True", "IPAllocated").await;
    let lb = a.status.as_ref().unwrap().load_balancer.as_ref().unwrap();
    assert_eq!(
        lb.ingress.as_ref().unwrap()[0].ip_mode.as_deref(),
        Some("VIP")
    );
    assert_eq!(
        a.annotations()
            .get("ferrolb.io/ip-allocated-from-pool")
            .map(String::as_str),
        Some("p")
    );
    assert!(
        cond(&a)
            .unwrap()
            .message
            .starts_with("allocated 198.18.20.")
    );

    let pending = e.wait_condition("e", "False", "PoolExhausted").await;
    assert!(ips(&pending).is_empty());
    assert!(
        cond(&pending)
            .unwrap()
            .message
            .contains("pool 'p' has no free IPv4 address"),
        "{:?}",
        cond(&pending)
    );
    let ev = e.events("e", &["Warning", "PoolExhausted"]);
    assert!(
        ev.contains("Warning") && ev.contains("PoolExhausted"),
        "events: {ev}"
    );
    assert!(e.events("a", &["IPAllocated"]).contains("IPAllocated"));
    wait_until("pool status 4/0", || async {
        let s = e.pool_status("p").await;
        s.assigned_ipv4 == 4 && s.available_ipv4 == 0
    })
    .await;

    // Freeing an address lets the waiting Service have it.
    let a_ip = ips(&a)[0];
    lab().kubectl(&["delete", "svc", "-n", &e.svc_ns.name, "a"]);
    assert_eq!(e.wait_ips("e").await, vec![a_ip]);
    e.wait_condition("e", "True", "IPAllocated").await;
}

#[tokio::test]
async fn requested_addresses_and_clear_refusals() {
    let e = Env::new("req").await;
    e.pool("p", "{addresses: [198.18.21.0/24]}");
    e.service(
        "want7",
        &[("ferrolb.io/loadBalancerIPs", "198.18.21.7")],
        "",
    );
    assert_eq!(e.wait_ips("want7").await, vec![ip("198.18.21.7")]);
    e.service(
        "legacy",
        &[],
        "  ports: [{port: 80}]\n  loadBalancerIP: 198.18.21.9\n",
    );
    assert_eq!(e.wait_ips("legacy").await, vec![ip("198.18.21.9")]);
    e.service(
        "metallb",
        &[("metallb.universe.tf/loadBalancerIPs", "198.18.21.11")],
        "",
    );
    assert_eq!(e.wait_ips("metallb").await, vec![ip("198.18.21.11")]);

    e.service(
        "outside",
        &[("ferrolb.io/loadBalancerIPs", "198.18.99.1")],
        "",
    );
    let s = e
        .wait_condition("outside", "False", "RequestedIPOutsidePools")
        .await;
    assert!(cond(&s).unwrap().message.contains("198.18.99.1"));

    e.service(
        "taken",
        &[("ferrolb.io/loadBalancerIPs", "198.18.21.7")],
        "",
    );
    let s = e.wait_condition("taken", "False", "IPInUse").await;
    let msg = cond(&s).unwrap().message;
    assert!(
        msg.contains(&format!("{}/want7", e.svc_ns.name)),
        "names the holder: {msg}"
    );

    e.service(
        "both",
        &[("ferrolb.io/loadBalancerIPs", "198.18.21.20")],
        "  ports: [{port: 80}]\n  loadBalancerIP: 198.18.21.21\n",
    );
    let s = e.wait_condition("both", "False", "InvalidRequest").await;
    assert!(
        cond(&s)
            .unwrap()
            .message
            .contains("keep only the annotation")
    );

    // Changing the request moves the Service; a bad new request keeps the old address.
    e.service(
        "want7",
        &[("ferrolb.io/loadBalancerIPs", "198.18.21.8")],
        "",
    );
    e.wait("want7", "moved to .8", |s| {
        ips(s) == vec![ip("198.18.21.8")]
    })
    .await;
    e.service("want7", &[("ferrolb.io/loadBalancerIPs", "not-an-ip")], "");
    let s = e.wait_condition("want7", "False", "InvalidRequest").await;
    assert_eq!(
        ips(&s),
        vec![ip("198.18.21.8")],
        "a typo must not lose the address"
    );
}

#[tokio::test]
async fn pool_choice_follows_pins_and_service_allocation() {
    let e = Env::new("choice").await;
    e.pool("auto", "{addresses: [198.18.22.0/24]}");
    e.pool("manual", "{addresses: [198.18.23.0/24], autoAssign: false}");
    let ns = &e.svc_ns.name;
    e.pool("second", &format!("{{addresses: [198.18.25.0/24], serviceAllocation: {{priority: 2, namespaces: [{ns}]}}}}"));
    e.pool("first", &format!("{{addresses: [198.18.24.0/24], serviceAllocation: {{priority: 1, namespaces: [{ns}]}}}}"));
    e.pool(
        "edge",
        "{addresses: [198.18.26.0/24], serviceAllocation: {priority: 1, serviceSelectors: [{matchLabels: {tier: edge}}]}}",
    );
    e.service("plain", &[], "");
    assert_eq!(
        e.wait_ips("plain").await,
        vec![ip("198.18.24.0")],
        "matching serviceAllocation by priority"
    );
    e.service("pinned", &[("ferrolb.io/address-pool", "manual")], "");
    assert_eq!(e.wait_ips("pinned").await, vec![ip("198.18.23.0")]);
    e.service(
        "pinned-metallb",
        &[("metallb.universe.tf/address-pool", "manual")],
        "",
    );
    assert_eq!(e.wait_ips("pinned-metallb").await, vec![ip("198.18.23.1")]);
    e.service("ghost", &[("ferrolb.io/address-pool", "nope")], "");
    let s = e.wait_condition("ghost", "False", "PoolNotUsable").await;
    assert!(cond(&s).unwrap().message.contains("'nope'"));

    // A labelled Service: edge (priority 1) ties with first (priority 1); the name breaks the tie.
    let r = e.svc_ns.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: labelled, labels: {{tier: edge}}}}\nspec: {{type: LoadBalancer, \
         loadBalancerClass: {}, allocateLoadBalancerNodePorts: false, ports: [{{port: 80}}]}}\n",
        e.class
    ));
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        e.wait_ips("labelled").await,
        vec![ip("198.18.26.0")],
        "edge < first by name"
    );
}

#[tokio::test]
async fn dual_stack_follows_family_policy() {
    let e = Env::new("dual").await;
    e.pool("both", "{addresses: [198.18.27.0/24, 'fd00:27::/64']}");
    e.pool("v4only", "{addresses: [198.18.28.0/24], autoAssign: false}");
    e.service(
        "req",
        &[],
        "  ports: [{port: 80}]\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n",
    );
    assert_eq!(
        e.wait_ips("req").await,
        vec![ip("fd00:27::"), ip("198.18.27.0")],
        "family order follows ipFamilies"
    );
    e.service("v6", &[], "  ports: [{port: 80}]\n  ipFamilies: [IPv6]\n");
    assert_eq!(e.wait_ips("v6").await, vec![ip("fd00:27::1")]);
    e.service(
        "prefer",
        &[("ferrolb.io/address-pool", "v4only")],
        "  ports: [{port: 80}]\n  ipFamilyPolicy: PreferDualStack\n",
    );
    assert_eq!(
        e.wait_ips("prefer").await,
        vec![ip("198.18.28.0")],
        "PreferDualStack falls back to one family"
    );
    e.service(
        "need",
        &[("ferrolb.io/address-pool", "v4only")],
        "  ports: [{port: 80}]\n  ipFamilyPolicy: RequireDualStack\n",
    );
    e.wait_condition("need", "False", "NoPoolForFamily").await;
}

#[tokio::test]
async fn sharing_needs_key_disjoint_ports_and_same_policy() {
    let e = Env::new("share").await;
    e.pool("p", "{addresses: [198.18.29.0/24]}");
    let key = [("ferrolb.io/allow-shared-ip", "k1")];
    e.service("dns-udp", &key, "  ports: [{port: 53, protocol: UDP}]\n");
    let shared = e.wait_ips("dns-udp").await;
    let want = shared[0].to_string();
    let req = [
        ("ferrolb.io/allow-shared-ip", "k1"),
        ("ferrolb.io/loadBalancerIPs", want.as_str()),
    ];
    e.service("dns-tcp", &req, "  ports: [{port: 53, protocol: TCP}]\n");
    assert_eq!(
        e.wait_ips("dns-tcp").await,
        shared,
        "TCP/53 and UDP/53 share"
    );
    e.service(
        "web",
        &[("metallb.io/allow-shared-ip", "k1")],
        "  ports: [{port: 80}]\n",
    );
    assert_eq!(
        e.wait_ips("web").await,
        shared,
        "same key, no collision: prefers the shared address"
    );

    e.service("clash", &req, "  ports: [{port: 80}]\n");
    let s = e.wait_condition("clash", "False", "IPInUse").await;
    assert!(
        cond(&s).unwrap().message.contains("TCP/80"),
        "{:?}",
        cond(&s)
    );
    let other = [
        ("ferrolb.io/allow-shared-ip", "k2"),
        ("ferrolb.io/loadBalancerIPs", want.as_str()),
    ];
    e.service("other-key", &other, "  ports: [{port: 8080}]\n");
    e.wait_condition("other-key", "False", "IPInUse").await;
    let local = [
        ("ferrolb.io/allow-shared-ip", "k1"),
        ("ferrolb.io/loadBalancerIPs", want.as_str()),
    ];
    e.service(
        "local",
        &local,
        "  ports: [{port: 9090}]\n  externalTrafficPolicy: Local\n",
    );
    e.wait_condition("local", "False", "IPInUse").await;
    e.service("nokey", &[], "  ports: [{port: 7070}]\n");
    assert_ne!(
        e.wait_ips("nokey").await,
        shared,
        "without a key an address is never shared"
    );
}

#[tokio::test]
async fn class_type_changes_and_deletion_release() {
    let e = Env::new("life").await;
    e.pool("p", "{addresses: [198.18.30.0/31]}");
    // Another class: not ours, never touched.
    let r = e.svc_ns.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: foreign}\nspec: {type: LoadBalancer, loadBalancerClass: example.com/other, \
         allocateLoadBalancerNodePorts: false, ports: [{port: 80}]}\n",
    );
    assert!(r.ok, "{}", r.stderr);
    e.service("a", &[], "");
    let a_ip = e.wait_ips("a").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        e.get("foreign")
            .await
            .status
            .and_then(|s| s.conditions)
            .is_none(),
        "foreign class untouched"
    );

    // Type changes away from LoadBalancer: status cleared, address free for the next Service.
    let r = lab().kubectl(&[
        "patch", "svc", "-n", &e.svc_ns.name, "a", "--type=merge", "-p",
        r#"{"spec":{"type":"ClusterIP","loadBalancerClass":null,"allocateLoadBalancerNodePorts":null}}"#,
    ]);
    assert!(r.ok, "{}", r.stderr);
    e.wait("a", "cleared status", |s| {
        ips(s).is_empty() && cond(s).is_none()
    })
    .await;
    e.service("b", &[], "");
    e.service("c", &[], "");
    let mut got = e.wait_ips("b").await;
    got.extend(e.wait_ips("c").await);
    assert!(got.contains(&a_ip[0]), "released address reused: {got:?}");
}

#[tokio::test]
async fn editing_pools_never_renumbers() {
    let e = Env::new("edit").await;
    e.pool("p", "{addresses: [198.18.31.0/24]}");
    for n in ["a", "b", "c"] {
        e.service(n, &[], "");
    }
    let mut before = BTreeMap::new();
    for n in ["a", "b", "c"] {
        before.insert(n, e.wait_ips(n).await);
    }
    // Add blocks before the old one, add a new lower pool, shrink to a range that still holds them.
    e.pool("p", "{addresses: [198.18.30.128/25, 198.18.31.0/24]}");
    e.pool("lower", "{addresses: [198.18.30.0/25]}");
    e.pool("p", "{addresses: [198.18.31.0-198.18.31.10]}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in ["a", "b", "c"] {
        assert_eq!(ips(&e.get(n).await), before[n], "{n} renumbered");
    }
    // The address leaves every pool: kept, and said so.
    e.pool("p", "{addresses: [198.18.31.200/29]}");
    for n in ["a", "b", "c"] {
        let s = e.wait_condition(n, "True", "IPOutsidePools").await;
        assert_eq!(ips(&s), before[n]);
        assert!(
            cond(&s)
                .unwrap()
                .message
                .contains("no longer inside any IPAddressPool")
        );
    }
    assert!(
        e.events("a", &["IPOutsidePools"])
            .contains("IPOutsidePools")
    );
}

#[tokio::test]
async fn an_invalid_pool_does_not_take_valid_ones_down() {
    let e = Env::new("badpool").await;
    e.pool("good", "{addresses: [198.18.32.0/24]}");
    tokio::time::sleep(Duration::from_millis(1100)).await; // creation timestamps have 1 s resolution
    e.pool(
        "overlap",
        "{addresses: [198.18.32.128/25], autoAssign: false}",
    );
    e.service("s", &[], "");
    assert_eq!(e.wait_ips("s").await, vec![ip("198.18.32.0")]);
    wait_until("overlap marked invalid", || async {
        let st = e.pool_status("overlap").await;
        st.conditions
            .iter()
            .any(|c| c.type_ == "Valid" && c.status == "False" && c.reason == "OverlapsPool")
    })
    .await;
    wait_until("good still valid and in use", || async {
        let good = e.pool_status("good").await;
        good.assigned_ipv4 == 1
            && good
                .conditions
                .iter()
                .any(|c| c.type_ == "Valid" && c.status == "True")
    })
    .await;
    let out = lab()
        .kubectl(&["get", "ipaddresspools", "-n", &e.cfg_ns.name])
        .stdout;
    assert!(
        out.contains("ASSIGNED IPV4") && out.contains("AVAILABLE IPV4"),
        "{out}"
    );
}

#[tokio::test]
async fn metrics_and_health() {
    let e = Env::new("metrics").await;
    e.pool("p", "{addresses: [198.18.33.0/24]}");
    e.service("a", &[], "");
    e.wait_ips("a").await;
    let start = Instant::now();
    loop {
        let m = e.ctl.http_get("/metrics").unwrap_or_default();
        if m.contains(r#"ferrolb_allocator_addresses_in_use{pool="p",family="IPv4"} 1"#) {
            assert!(m.contains("ferrolb_allocator_allocations_total"), "{m}");
            assert!(m.contains("ferrolb_controller_leader 1"), "{m}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "metrics: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(e.ctl.http_get("/healthz").unwrap().ends_with("ok"));
    assert!(e.ctl.http_get("/readyz").unwrap().ends_with("ok"));
}

/// Service UID → (name, every address list it ever showed).
type Seen = std::sync::Arc<std::sync::Mutex<BTreeMap<String, (String, BTreeSet<Vec<IpAddr>>)>>>;

/// Records every address each Service (by UID) ever showed; any change is a renumbering.
async fn watch_addresses(api: Api<Service>) -> Seen {
    let seen: Seen = Default::default();
    let s = seen.clone();
    on_each_service(api, move |svc| {
        let got = ips(&svc);
        if !got.is_empty() {
            let mut m = s.lock().unwrap();
            let e = m
                .entry(svc.uid().unwrap_or_default())
                .or_insert_with(|| (svc.name_any(), BTreeSet::new()));
            e.1.insert(got);
        }
    });
    seen
}

async fn assert_no_duplicates(api: &Api<Service>) {
    let list = api.list(&Default::default()).await.expect("list");
    let mut owner: BTreeMap<IpAddr, String> = BTreeMap::new();
    for s in &list.items {
        for a in ips(s) {
            if let Some(o) = owner.insert(a, s.name_any()) {
                panic!("{a} held by both {o} and {}", s.name_any());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_twenty_times_no_service_changes_address() {
    let mut e = Env::new("restart").await;
    e.pool("p", "{addresses: [198.18.34.0/24]}");
    let seen = watch_addresses(e.services()).await;
    let mut live = Vec::new();
    for round in 0..20 {
        for i in 0..4 {
            let n = format!("r{round}-{i}");
            e.service(&n, &[], "");
            live.push(n);
        }
        // Delete two older ones, so freed addresses are about while the controller restarts.
        if round % 2 == 1 {
            for _ in 0..2 {
                let n = live.remove(0);
                lab().kubectl(&["delete", "svc", "-n", &e.svc_ns.name, &n, "--wait=false"]);
            }
        }
        tokio::time::sleep(Duration::from_millis(50 + 37 * (round % 5))).await;
        e.ctl.restart_hard();
    }
    for n in &live {
        e.wait_ips(n).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= live.len());
    for (name, addrs) in seen.values() {
        assert_eq!(addrs.len(), 1, "{name} changed address: {addrs:?}");
    }
    assert_no_duplicates(&e.services()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_leader_killed_no_duplicates() {
    let e = Env::new("ha").await;
    let mut second = ControllerProc::start(&e.cfg_ns.name, &e.class, &[]);
    e.pool("p", "{addresses: [198.18.35.0/24]}");
    for i in 0..10 {
        e.service(&format!("before{i}"), &[], "");
    }
    for i in 0..10 {
        e.wait_ips(&format!("before{i}")).await;
    }
    // Kill whichever replica holds the lease.
    let lease = lab()
        .kubectl(&[
            "get",
            "lease",
            "-n",
            &e.cfg_ns.name,
            &format!("ferrolb-controller-{}", e.cfg_ns.name),
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .stdout;
    let mut first = e.ctl;
    let killed_first = lease.ends_with(&format!("-{}", first.child.id()));
    if killed_first {
        first.kill();
    } else {
        assert!(
            lease.ends_with(&format!("-{}", second.child.id())),
            "holder {lease}"
        );
        second.kill();
    }
    let t = Instant::now();
    for i in 0..10 {
        let r = lab().kubectl_in(
            &["apply", "-n", &e.svc_ns.name, "-f", "-"],
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: after{i}}}\nspec: {{type: LoadBalancer, loadBalancerClass: {}, \
                 allocateLoadBalancerNodePorts: false, ports: [{{port: 80}}]}}\n",
                e.class
            ),
        );
        assert!(r.ok);
    }
    let api: Api<Service> = Api::namespaced(e.client.clone(), &e.svc_ns.name);
    for i in 0..10 {
        let name = format!("after{i}");
        let start = Instant::now();
        while ips(&api.get(&name).await.unwrap()).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: standby never took over"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "standby took over and allocated 10 Services in {:?}",
        t.elapsed()
    );
    assert_no_duplicates(&api).await;
    drop(first);
    drop(second);
}
