//! The controller's writes against the lab's real API server (issue 9, items 2 and 3).
//!
//! - `partitioned_leader_stops_and_cannot_clobber`: two replicas of a controller of the test's
//!   own (configuration namespace, `loadBalancerClass`, Lease); the leader talks to the API
//!   server through a TCP proxy in this test, which is frozen (nothing forwarded, connections
//!   kept open) to cut it off. The leader must stop within its lease duration; the other takes
//!   over and changes Services (deletes some, creates others that reuse the freed addresses);
//!   after the proxy forwards again, no Service shows anything the new leader did not write.
//! - `refused_status_write_is_explained_and_not_retried`: a ValidatingAdmissionPolicy refuses
//!   status writes of one Service; 100 others created with it get addresses promptly, the
//!   refused one gets a Warning event, and the write-error count stops growing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrolb_tests::controller::ControllerProc;
use ferrolb_tests::{TestNamespace, lab, repo, unique};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to the lab's API server that can be frozen: while frozen it neither accepts
/// upstream connections nor moves a byte either way, but keeps every connection open, as a
/// network partition does; what it holds is delivered after it thaws.
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
}

async fn thawed(frozen: &AtomicBool) {
    while frozen.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        thawed(&frozen).await;
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        thawed(&frozen).await;
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let f = f.clone();
                let up = upstream.clone();
                tokio::spawn(async move {
                    thawed(&f).await;
                    let Ok(s) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let (cr, cw) = c.into_split();
                    let (sr, sw) = s.into_split();
                    tokio::spawn(pipe(cr, sw, f.clone()));
                    pipe(sr, cw, f).await;
                });
            }
        });
        Proxy { port, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::Relaxed);
    }
}

/// A replica's metrics. (A busy single-threaded controller may be slow to answer: try again.)
fn metrics(r: &ControllerProc) -> String {
    for _ in 0..3 {
        if let Some(m) = r
            .http_get("/metrics")
            .filter(|m| m.contains("ferrolb_controller_leader "))
        {
            return m;
        }
    }
    String::new()
}

fn leading(r: &ControllerProc) -> bool {
    // (Whole lines: the HELP text reads "1 while this replica is the leader".)
    metrics(r)
        .lines()
        .any(|l| l.trim() == "ferrolb_controller_leader 1")
}

/// The value of an unlabelled or labelled metric line (`name{...} value`), summed.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn service_yaml(name: &str, class: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: {class}\n  allocateLoadBalancerNodePorts: false\n  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n"
    )
}

/// What each Service shows: addresses and our condition's reason.
async fn shown(api: &Api<Service>) -> BTreeMap<String, (Vec<String>, String)> {
    let list = api.list(&Default::default()).await.expect("list");
    list.items
        .iter()
        .map(|s| {
            let ips = s
                .status
                .iter()
                .flat_map(|st| st.load_balancer.iter())
                .flat_map(|lb| lb.ingress.iter().flatten())
                .filter_map(|i| i.ip.clone())
                .collect();
            let reason = s
                .status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "ferrolb.io/IPAllocated"))
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            (s.name_any(), (ips, reason))
        })
        .collect()
}

async fn wait_all_allocated(api: &Api<Service>, n: usize, timeout: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let s = shown(api).await;
        if s.len() >= n && s.values().all(|(ips, _)| !ips.is_empty()) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < timeout,
            "not all allocated after {timeout:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn no_duplicates(s: &BTreeMap<String, (Vec<String>, String)>) {
    let mut owner: BTreeMap<&String, &String> = BTreeMap::new();
    for (name, (ips, _)) in s {
        for ip in ips {
            if let Some(other) = owner.insert(ip, name) {
                panic!("{ip} shown by {other} and {name}: {s:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_and_cannot_clobber() {
    let svc_ns = TestNamespace::new("fence");
    let cfg_ns = TestNamespace::new("fence-cfg");
    let class = format!("test.ferrolb.io/{}", svc_ns.name);
    // Ten addresses for eight Services: the new leader's Services must reuse freed ones.
    let r = cfg_ns.apply(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [198.18.201.0-198.18.201.9]}\n",
    );
    assert!(r.ok, "{}", r.stderr);

    // Replica A reaches the API server only through the proxy.
    let kc = std::fs::read_to_string(&lab().kubeconfig).expect("lab kubeconfig");
    let server = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("server line")
        .to_string();
    let proxy = Proxy::start(server.clone()).await;
    let kc_a = repo().join(format!(".lab/fencing-{}.kubeconfig", svc_ns.name));
    std::fs::write(
        &kc_a,
        kc.replace(
            &format!("server: https://{server}"),
            &format!("server: https://127.0.0.1:{}", proxy.port),
        ),
    )
    .expect("write kubeconfig");
    let a = ControllerProc::start_with(&cfg_ns.name, &class, &["--identity", "fence-a"], &kc_a);
    let t = Instant::now();
    while !leading(&a) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "A never led:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = ControllerProc::start_with(
        &cfg_ns.name,
        &class,
        &["--identity", "fence-b"],
        &lab().kubeconfig,
    );

    let client = lab().client().await.expect("client");
    let api: Api<Service> = Api::namespaced(client.clone(), &svc_ns.name);
    for i in 0..8 {
        let r = svc_ns.apply(&service_yaml(&format!("s{i}"), &class, ""));
        assert!(r.ok, "{}", r.stderr);
    }
    wait_all_allocated(&api, 8, Duration::from_secs(30)).await;
    let (la, lb) = (leading(&a), leading(&b));
    assert!(la && !lb, "A leads ({la}), B waits ({lb})");

    // Partition A.
    proxy.freeze(true);
    let frozen_at = Instant::now();
    let a_stopped = loop {
        if !leading(&a) {
            break frozen_at.elapsed();
        }
        assert!(
            frozen_at.elapsed() < Duration::from_secs(15),
            "the cut-off leader still leads 15 s later (lease: 10 s):\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let b_took = loop {
        if leading(&b) {
            break frozen_at.elapsed();
        }
        assert!(
            frozen_at.elapsed() < Duration::from_secs(30),
            "B never took over:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "partition: A stopped leading after {:.2} s, B leads after {:.2} s",
        a_stopped.as_secs_f64(),
        b_took.as_secs_f64()
    );
    assert!(
        a_stopped < Duration::from_secs(10),
        "A stopped after {a_stopped:?}, past its 10 s lease"
    );
    assert!(a_stopped < b_took, "A stopped only after B took over");

    // The new leader changes things: four Services go, four come, on the freed addresses.
    let before = shown(&api).await;
    for i in 0..4 {
        let r = lab().kubectl(&["delete", "svc", "-n", &svc_ns.name, &format!("s{i}")]);
        assert!(r.ok, "{}", r.stderr);
    }
    for i in 0..4 {
        let r = svc_ns.apply(&service_yaml(&format!("n{i}"), &class, ""));
        assert!(r.ok, "{}", r.stderr);
    }
    wait_all_allocated(&api, 8, Duration::from_secs(20)).await;
    let written_by_b = shown(&api).await;
    no_duplicates(&written_by_b);
    let reused = (0..4)
        .filter(|i| {
            let freed = &before[&format!("s{i}")].0;
            written_by_b
                .values()
                .any(|(ips, _)| ips.iter().any(|ip| freed.contains(ip)))
        })
        .count();
    assert!(
        reused > 0,
        "the new Services reuse freed addresses: {written_by_b:?}"
    );

    // Record every status change from here on.
    let changes = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let c = changes.clone();
    let wapi = api.clone();
    let watch = tokio::spawn(async move {
        let s = watcher(wapi, watcher::Config::default());
        futures::pin_mut!(s);
        while let Some(ev) = s.next().await {
            if let Ok(watcher::Event::Apply(svc)) = ev {
                let now = shown_one(&svc);
                c.lock()
                    .unwrap()
                    .push(format!("{} -> {now:?}", svc.name_any()));
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Heal the partition; give A time to resume its watches and do whatever it would do.
    proxy.freeze(false);
    let healed = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    watch.abort();
    let after = shown(&api).await;
    let changes = changes.lock().unwrap().clone();
    assert_eq!(
        after,
        written_by_b,
        "a Service changed after the partition healed: {changes:?}\n--- A:\n{}",
        a.log()
    );
    assert!(
        changes.is_empty(),
        "status changes after healing: {changes:?}"
    );
    assert!(!leading(&a), "A leads again");
    let la = a.log();
    assert!(
        la.contains("lost leadership: stop writing"),
        "A never said it stopped:\n{la}"
    );
    eprintln!(
        "healed {:.1} s ago: no Service changed; A: {} write(s) dropped as not leading",
        healed.elapsed().as_secs_f64(),
        la.matches("not leading: write dropped").count()
    );
    let _ = std::fs::remove_file(&kc_a);
}

fn shown_one(s: &Service) -> Vec<String> {
    s.status
        .iter()
        .flat_map(|st| st.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// Deletes the test's admission policy and binding however the test ends.
struct Policy(String);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = lab().kubectl(&[
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            &self.0,
            "--ignore-not-found",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_status_write_is_explained_and_not_retried() {
    let svc_ns = TestNamespace::new("refuse");
    let cfg_ns = TestNamespace::new("refuse-cfg");
    let class = format!("test.ferrolb.io/{}", svc_ns.name);
    let r = cfg_ns.apply(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [198.18.202.0/24]}\n",
    );
    assert!(r.ok, "{}", r.stderr);
    let mark = unique("refuse");
    let policy = Policy(mark.clone());
    let r = lab().apply(&format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {{name: {mark}}}\n\
         spec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [\"\"]\n      apiVersions: [v1]\n      operations: [UPDATE]\n      resources: [services/status]\n\
         \x20 validations:\n  - expression: \"false\"\n    message: refused by the FerroLB fencing test\n\
         ---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {mark}}}\n\
         spec:\n  policyName: {mark}\n  validationActions: [Deny]\n  matchResources:\n    objectSelector:\n      matchLabels: {{ferrolb-test-refuse: {mark}}}\n"
    ));
    assert!(r.ok, "{}", r.stderr);
    // Wait until the policy bites (a ClusterIP probe Service, not FerroLB's).
    let probe = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: probe\n  labels: {{ferrolb-test-refuse: {mark}}}\nspec:\n  selector: {{app: probe}}\n  ports: [{{port: 80}}]\n"
    );
    assert!(svc_ns.apply(&probe).ok);
    let t = Instant::now();
    loop {
        let r = lab().kubectl(&[
            "patch", "svc", "probe", "-n", &svc_ns.name, "--subresource=status", "--type=merge",
            "-p", r#"{"status":{"conditions":[{"type":"Probe","status":"True","reason":"Probe","message":"p","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
        ]);
        if !r.ok && r.stderr.contains("refused by the FerroLB fencing test") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "policy never applied: {}",
            r.stderr
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ctl = ControllerProc::start(&cfg_ns.name, &class, &[]);
    let client = lab().client().await.expect("client");
    let api: Api<Service> = Api::namespaced(client.clone(), &svc_ns.name);
    // The refused Service first, then 100 others, all in one apply.
    let mut yaml = service_yaml("refused", &class, &format!("ferrolb-test-refuse: {mark}"));
    for i in 0..100 {
        yaml += "---\n";
        yaml += &service_yaml(&format!("s{i:03}"), &class, "");
    }
    let created = Instant::now();
    let r = svc_ns.apply(&yaml);
    assert!(r.ok, "{}", r.stderr);
    let applied = created.elapsed();
    let t = Instant::now();
    let took = loop {
        let s = shown(&api).await;
        let done = s
            .iter()
            .filter(|(n, (ips, _))| n.starts_with('s') && !ips.is_empty())
            .count();
        if done == 100 {
            break created.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{done}/100 allocated after 30 s\n{}",
            ctl.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "100 Services allocated {:.2} s after the apply started ({:.2} s after it returned)",
        took.as_secs_f64(),
        took.saturating_sub(applied).as_secs_f64()
    );
    let s = shown(&api).await;
    assert!(
        s["refused"].0.is_empty(),
        "the refused Service shows {:?}",
        s["refused"]
    );
    no_duplicates(&s);

    // Explained: a Warning event on the Service, a log line, the metric.
    let t = Instant::now();
    loop {
        let r = lab().kubectl(&[
            "get",
            "events",
            "-n",
            &svc_ns.name,
            "--field-selector",
            "involvedObject.name=refused,reason=StatusWriteRefused",
            "-o",
            "name",
        ]);
        if r.ok && !r.stdout.trim().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no StatusWriteRefused event\n{}",
            ctl.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ctl.log().contains("status write refused"), "{}", ctl.log());
    let m1 = ctl.http_get("/metrics").unwrap_or_default();
    let permanent = metric(
        &m1,
        "ferrolb_controller_write_failures_total{reason=\"permanent\"}",
    );
    assert!(
        permanent >= 1.0,
        "no permanent write failure counted:\n{m1}"
    );
    // Not retried: the error counts stand still.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m2 = ctl.http_get("/metrics").unwrap_or_default();
    let errs = |m: &str| metric(m, "ferrolb_controller_api_write_errors_total");
    assert_eq!(
        errs(&m1),
        errs(&m2),
        "write errors keep growing: retried\n{m2}"
    );
    eprintln!(
        "refused: {permanent} permanent failure(s), {} write errors in total, unchanged over 6 s",
        errs(&m2)
    );

    // Decided again when the Service changes (the policy gone, it gets its address).
    drop(policy);
    let t = Instant::now();
    let mut touched = 0;
    while shown(&api).await["refused"].0.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "refused Service never allocated after a change\n{}",
            ctl.log()
        );
        // (Again every 3 s: the policy's removal takes a moment to reach admission.)
        if t.elapsed() >= Duration::from_secs(3 * touched) {
            touched += 1;
            let r = lab().kubectl(&[
                "label",
                "svc",
                "-n",
                &svc_ns.name,
                "refused",
                &format!("touched={touched}"),
                "--overwrite",
            ]);
            assert!(r.ok, "{}", r.stderr);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
