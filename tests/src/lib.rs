//! Shared helpers for tests that run against a real cluster: by default the local lab
//! (`hack/lab`: real etcd, kube-apiserver, kube-controller-manager, network namespaces, FRR and
//! BIRD), started on first use and reused while it is up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Brings the lab up once per test process (idempotent: reuses a running lab).
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let out = Command::new(repo().join("hack/lab"))
            .arg("up")
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

impl Lab {
    /// `kubectl ARGS` against the lab, with `stdin` piped in.
    pub fn kubectl_in(&self, args: &[&str], stdin: &str) -> Ran {
        use std::io::Write;
        let mut child = Command::new(repo().join("hack/lab"))
            .arg("kubectl")
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
        self.kubectl_in(&["apply", "-n", ferrolb_crds::DEFAULT_NAMESPACE, "-f", "-"], yaml)
    }

    /// Runs a command inside a lab host (network namespace).
    pub fn exec(&self, host: &str, cmd: &[&str]) -> Ran {
        Command::new(repo().join("hack/lab"))
            .arg("exec")
            .arg(host)
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
    format!("{prefix}-{}-{}", std::process::id() % 100_000, N.fetch_add(1, Ordering::Relaxed))
}

/// Path of a FerroLB binary built by `cargo build` (hack/test builds them before the tests).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let p = target.join("debug").join(name);
    assert!(p.exists(), "{} missing: run `cargo build --workspace --bins` first", p.display());
    p
}

/// A free TCP port on loopback (for a process's metrics server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A controller process of the test's own: its own configuration namespace and
/// `loadBalancerClass`, so tests run side by side without seeing each other's pools.
pub struct ControllerProc {
    pub child: std::process::Child,
    pub metrics_port: u16,
    pub args: Vec<String>,
    log: PathBuf,
}

impl ControllerProc {
    pub fn start(config_ns: &str, class: &str, extra: &[&str]) -> ControllerProc {
        let mut args: Vec<String> = vec![
            "--namespace".into(),
            config_ns.into(),
            "--lb-class".into(),
            class.into(),
            "--lease-name".into(),
            format!("ferrolb-controller-{config_ns}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args)
    }

    fn spawn(args: Vec<String>) -> ControllerProc {
        let metrics_port = free_port();
        let log = repo().join(".lab/logs").join(format!("test-controller-{metrics_port}.log"));
        let _ = std::fs::create_dir_all(log.parent().unwrap());
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary("ferrolb-controller"))
            .args(&args)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .env("KUBECONFIG", &lab().kubeconfig)
            .env("RUST_LOG", "info,ferrolb_controller=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("controller starts");
        ControllerProc { child, metrics_port, args, log }
    }

    /// SIGKILL, then start again with the same arguments.
    pub fn restart_hard(&mut self) {
        self.kill();
        let next = Self::spawn(self.args.clone());
        let old = std::mem::replace(self, next);
        std::mem::forget(old);
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET a path of the controller's HTTP server.
    pub fn http_get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        self.kill();
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
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = lab().kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}
