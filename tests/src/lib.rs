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
