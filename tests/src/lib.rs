//! Shared helpers for tests that run against a real cluster: by default the local lab
//! (`hack/lab`: a control plane, nodes with kubelet, containerd and kube-proxy, pods, FRR and BIRD
//! routers in network namespaces), started on first use and reused while it is up. FerroLB runs
//! in the lab either as pods installed from deploy/ (test binaries named `e2e*`: the user's view)
//! or as supervised processes (every other binary: they kill, hold and reconfigure speakers);
//! the first `lab()` call of a binary switches the lab to its mode. With `FERROLB_E2E=kind` (set by
//! `hack/kind-e2e`) the same tests talk to a kind cluster instead: `KUBECONFIG` names it, kubectl
//! comes from PATH, and `exec` runs in a node container with `docker exec`. Tests that need the
//! lab's network namespaces (`l2`, `bgp`) are lab-only; `api` and `controller` run on both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod backend;
pub mod bench;
pub mod bgp;
pub mod controller;
pub mod l2;
pub mod membership;
pub mod network;
pub mod probe;
pub mod restart;
pub mod speakers;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Restarts the lab's FerroLB processes (`hack/lab restart-ferrolb`) with the binaries in
/// `bin_dir` (a path in the repository), or the lab's default (debug) ones. True on success.
pub fn restart_ferrolb(bin_dir: Option<&str>) -> bool {
    let mut c = Command::new(repo().join("hack/lab"));
    c.arg("restart-ferrolb");
    if let Some(d) = bin_dir {
        c.env("FERROLB_BIN_DIR", repo().join(d));
    }
    c.status().is_ok_and(|s| s.success())
}

/// Builds the release controller and speaker and restarts the lab's FerroLB with them, so
/// benchmarks measure what ships. True when both steps succeeded.
pub fn restart_ferrolb_release() -> bool {
    let built = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--bin",
            "ferrolb-controller",
            "--bin",
            "ferrolb-speaker",
        ])
        .current_dir(repo())
        .status()
        .is_ok_and(|s| s.success());
    built && restart_ferrolb(Some("target/release"))
}

/// Brings the lab up once per test process (idempotent: reuses a running lab).
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        if kind() {
            let kubeconfig =
                std::env::var_os("KUBECONFIG").expect("FERROLB_E2E=kind needs KUBECONFIG");
            return Lab {
                kubeconfig: PathBuf::from(kubeconfig),
            };
        }
        let out = Command::new(repo().join("hack/lab"))
            .arg("up")
            .env("LAB_FERROLB", lab_mode())
            .stdin(Stdio::null())
            .output()
            .expect("hack/lab runs");
        assert!(
            out.status.success(),
            "hack/lab up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Lab {
            kubeconfig: repo().join(".lab/kubeconfig"),
        }
    })
}

static MODE: OnceLock<&'static str> = OnceLock::new();

/// Asks for FerroLB as pods in this binary (a benchmark's `main` calls it before `lab()`).
pub fn want_pods() {
    let _ = MODE.set("pods");
}

/// How this test binary wants FerroLB to run in the lab: `pods` (installed from deploy/) for
/// binaries named `e2e*` or that called `want_pods()`, `processes` (supervised, pid files in
/// .lab/pids) for the others.
pub fn lab_mode() -> &'static str {
    if let Some(m) = MODE.get() {
        return m;
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.starts_with("e2e") {
        "pods"
    } else {
        "processes"
    }
}

/// Whether the tests run against a kind cluster (`FERROLB_E2E=kind`) rather than the lab.
pub fn kind() -> bool {
    std::env::var("FERROLB_E2E").as_deref() == Ok("kind")
}

/// A running lab.
pub struct Lab {
    pub kubeconfig: PathBuf,
}

/// What a command printed and whether it succeeded.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to its end with stdin closed; one that cannot start fails with the reason as its
/// stderr.
pub fn run(cmd: &mut Command) -> Ran {
    cmd.stdin(Stdio::null())
        .output()
        .map(Ran::from)
        .unwrap_or_else(|e| Ran {
            ok: false,
            stdout: String::new(),
            stderr: e.to_string(),
        })
}

/// `ip` as a host route: `ip/32`, or `ip/128` for IPv6.
pub fn host_prefix(ip: &str) -> String {
    format!("{ip}/{}", if ip.contains(':') { 128 } else { 32 })
}

/// A `ferrolb.io/v1beta1` object as YAML, with this spec (YAML flow or block).
pub fn object_yaml(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

/// Asserts that the API server refused the `kind` with `spec` (`r`: what it said to it) and that
/// its answer says each of `expected`.
pub fn assert_refused(r: &Ran, kind: &str, spec: &str, expected: &[&str]) {
    assert!(!r.ok, "{kind} {spec} was accepted: {}", r.stdout);
    for e in expected {
        assert!(
            r.stderr.contains(e),
            "{kind}: expected {e:?} in:\n{}",
            r.stderr
        );
    }
}

impl Lab {
    /// `kubectl ARGS` against the lab, with `stdin` piped in.
    pub fn kubectl_in(&self, args: &[&str], stdin: &str) -> Ran {
        use std::io::Write;
        let mut cmd = if kind() {
            let mut c = Command::new("kubectl");
            c.arg("--kubeconfig").arg(&self.kubeconfig);
            c
        } else {
            let mut c = Command::new(repo().join("hack/lab"));
            c.arg("kubectl");
            c
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.as_bytes());
        }
        child.wait_with_output().expect("kubectl runs").into()
    }

    pub fn kubectl(&self, args: &[&str]) -> Ran {
        self.kubectl_in(args, "")
    }

    /// Applies YAML in FerroLB's namespace; returns what the API server said.
    pub fn apply(&self, yaml: &str) -> Ran {
        self.kubectl_in(
            &["apply", "-n", ferrolb_crds::DEFAULT_NAMESPACE, "-f", "-"],
            yaml,
        )
    }

    /// Runs a command inside a lab host (network namespace).
    pub fn exec(&self, host: &str, cmd: &[&str]) -> Ran {
        let mut c = if kind() {
            let mut c = Command::new("docker");
            c.arg("exec");
            c
        } else {
            let mut c = Command::new(repo().join("hack/lab"));
            c.arg("exec");
            c
        };
        c.arg(host)
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("hack/lab exec runs")
            .into()
    }

    /// A kube client for the lab.
    pub async fn client(&self) -> Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(cfg)?)
    }

    /// PID from `.lab/pids/NAME.pid`.
    pub fn pid(&self, name: &str) -> Result<i32> {
        let p = repo().join(format!(".lab/pids/{name}.pid"));
        let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(s.trim().parse()?)
    }
}

/// Calls `each` with every Service the watch on `api` reports added or changed (retrying with
/// backoff), on a task of its own, for as long as the runtime runs.
pub fn on_each_service(
    api: kube::Api<k8s_openapi::api::core::v1::Service>,
    mut each: impl FnMut(k8s_openapi::api::core::v1::Service) + Send + 'static,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(Ok(svc)) = stream.next().await {
            each(svc);
        }
    });
}

/// The Prometheus text a node's speaker serves on :7473 (empty if it does not answer in 2 s).
pub fn speaker_metrics(node: &str) -> String {
    lab()
        .exec(
            node,
            &[
                "curl",
                "-s",
                "--max-time",
                "2",
                "http://127.0.0.1:7473/metrics",
            ],
        )
        .stdout
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one test binary that change shared lab state (router configs,
/// speakers stopped or restarted): cargo runs a binary's tests on several threads.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `f` until it returns `Some`, or fails after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name unique to this test run, for objects tests create.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Path of a FerroLB binary built by `cargo build` (hack/test builds them before the tests).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let p = target.join("debug").join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// A free TCP port on loopback (for a process's metrics server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An object a test made in FerroLB's namespace, deleted (without waiting) when dropped.
pub struct DeletedOnDrop {
    /// As kubectl names it (`bgppeer`).
    pub kind: &'static str,
    pub name: String,
}

impl Drop for DeletedOnDrop {
    fn drop(&mut self) {
        let _ = lab().kubectl(&[
            "delete",
            self.kind,
            "-n",
            ferrolb_crds::DEFAULT_NAMESPACE,
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// A namespace for one test, deleted (without waiting) when dropped.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub fn new(prefix: &str) -> TestNamespace {
        let name = unique(prefix);
        let r = lab().kubectl(&["create", "namespace", &name]);
        assert!(r.ok, "{}", r.stderr);
        TestNamespace { name }
    }

    /// `kubectl apply -n NS -f -`.
    pub fn apply(&self, yaml: &str) -> Ran {
        lab().kubectl_in(&["apply", "-n", &self.name, "-f", "-"], yaml)
    }

    /// Replaces the endpoints of Service `web` (EndpointSlice `web-1`) with one ready endpoint on
    /// each of `nodes` (the lab has no kubelets to make them).
    pub fn web_endpoints(&self, nodes: &[&str]) {
        let eps: String = nodes
            .iter()
            .map(|n| {
                let id: u8 = n.trim_start_matches("flb-node").parse::<u8>().unwrap_or(1) + 10;
                format!(
                    "  - addresses: [198.18.0.{id}]\n    nodeName: {n}\n    conditions: {{ready: true}}\n"
                )
            })
            .collect();
        let body = if eps.is_empty() {
            "endpoints: []\n".to_string()
        } else {
            format!("endpoints:\n{eps}")
        };
        let r = self.apply(&format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  \
             labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\n{body}ports: [{{port: 80, protocol: TCP}}]\n"
        ));
        assert!(r.ok, "{}", r.stderr);
    }

    /// The addresses of Service `web`, once allocated (panics after `timeout`).
    pub fn web_ips(&self, timeout: Duration) -> Vec<String> {
        wait_for("an EXTERNAL-IP", timeout, || {
            let r = lab().kubectl(&[
                "get",
                "svc",
                "-n",
                &self.name,
                "web",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[*].ip}",
            ]);
            let ips: Vec<String> = r.stdout.split_whitespace().map(String::from).collect();
            (!ips.is_empty()).then_some(ips)
        })
        .expect("allocated")
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = lab().kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Node hosts of the lab.
pub const NODES: [&str; 3] = ["flb-node1", "flb-node2", "flb-node3"];

/// The lab's deterministic MAC of a node's interface on segment `seg` (hack/lib/network.sh).
pub fn node_mac(node: &str, seg: u8) -> String {
    let id: u8 = node
        .trim_start_matches("flb-node")
        .parse::<u8>()
        .map(|n| 10 + n)
        .unwrap_or(0);
    format!("02:18:00:{seg:02x}:00:{id:02x}")
}

/// A stand-in for kube-proxy on every node, for Services kube-proxy ignores (labelled with
/// `l2::STANDIN_PROXY`): the VIP on `lo` (the lab's nodes have arp_ignore=1, so only FerroLB
/// answers ARP for it), plus a tiny TCP responder on port 80 that answers with the node's name,
/// so a client can tell which node it reached. The real data path (kube-proxy, pods) is tested
/// by tests/tests/e2e.rs.
pub struct Responders {
    vip: String,
    children: Vec<(String, std::process::Child)>,
}

impl Responders {
    pub fn start(vip: &str) -> Responders {
        let prefix = if vip.contains(':') { "128" } else { "32" };
        let mut children = Vec::new();
        for n in NODES {
            let r = lab().exec(
                n,
                &[
                    "ip",
                    "addr",
                    "replace",
                    &format!("{vip}/{prefix}"),
                    "dev",
                    "lo",
                ],
            );
            assert!(r.ok, "{n}: {}", r.stderr);
            let listen = if vip.contains(':') {
                format!("TCP6-LISTEN:80,bind=[{vip}],fork,reuseaddr")
            } else {
                format!("TCP4-LISTEN:80,bind={vip},fork,reuseaddr")
            };
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    n,
                    "socat",
                    &listen,
                    &format!("SYSTEM:echo {n}"),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("socat starts");
            children.push((n.to_string(), child));
        }
        std::thread::sleep(Duration::from_millis(150));
        Responders {
            vip: vip.to_string(),
            children,
        }
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        for (n, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            let prefix = if self.vip.contains(':') { "128" } else { "32" };
            let _ = lab().exec(
                n,
                &[
                    "ip",
                    "addr",
                    "del",
                    &format!("{}/{prefix}", self.vip),
                    "dev",
                    "lo",
                ],
            );
        }
    }
}

/// From the client host: which node answers a TCP connection to `vip`:80 (None: no answer).
pub fn who_answers(vip: &str) -> Option<String> {
    let target = if vip.contains(':') {
        format!("TCP6:[{vip}]:80,connect-timeout=1")
    } else {
        format!("TCP4:{vip}:80,connect-timeout=1")
    };
    let r = lab().exec(
        "flb-client",
        &["timeout", "2", "socat", "-T1", "-", &target],
    );
    let out = r.stdout.trim().to_string();
    (r.ok && out.starts_with("flb-node")).then_some(out)
}

/// From the client host: the MAC that answers ARP (IPv4) or NDP (IPv6) for `vip` on `iface`.
pub fn neighbour_mac(vip: &str, iface: &str) -> Option<String> {
    let r = if vip.contains(':') {
        lab().exec(
            "flb-client",
            &["ndisc6", "-q", "-1", "-r1", "-w500", vip, iface],
        )
    } else {
        lab().exec("flb-client", &["arping", "-c1", "-w1", "-I", iface, vip])
    };
    if !r.ok {
        return None;
    }
    let text = r.stdout.to_lowercase();
    // arping: "... from 02:18:00:00:00:0b (198.18.0.200) ..."; ndisc6 -q prints the MAC alone.
    text.split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .find(|w| w.len() == 17 && w.matches(':').count() == 5)
        .map(str::to_string)
}
