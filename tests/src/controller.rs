//! A FerroLB controller process of a test's own, beside the lab's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{binary, free_port, lab, repo};

/// A controller process of the test's own: its own configuration namespace and
/// `loadBalancerClass`, so tests run side by side without seeing each other's pools.
pub struct ControllerProc {
    pub child: std::process::Child,
    pub metrics_port: u16,
    pub args: Vec<String>,
    kubeconfig: PathBuf,
    log: PathBuf,
}

impl ControllerProc {
    pub fn start(config_ns: &str, class: &str, extra: &[&str]) -> ControllerProc {
        Self::start_with(config_ns, class, extra, &lab().kubeconfig)
    }

    /// [`start`](Self::start) with another kubeconfig (another identity, or another way to the
    /// API server).
    pub fn start_with(
        config_ns: &str,
        class: &str,
        extra: &[&str],
        kubeconfig: &Path,
    ) -> ControllerProc {
        let mut args: Vec<String> = vec![
            "--namespace".into(),
            config_ns.into(),
            "--lb-class".into(),
            class.into(),
            "--lease-name".into(),
            format!("ferrolb-controller-{config_ns}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args, kubeconfig.to_path_buf())
    }

    fn spawn(args: Vec<String>, kubeconfig: PathBuf) -> ControllerProc {
        let metrics_port = free_port();
        let log = repo()
            .join(".lab/logs")
            .join(format!("test-controller-{metrics_port}.log"));
        let _ = std::fs::create_dir_all(log.parent().unwrap());
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary("ferrolb-controller"))
            .args(&args)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info,ferrolb_controller=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("controller starts");
        ControllerProc {
            child,
            metrics_port,
            args,
            kubeconfig,
            log,
        }
    }

    /// SIGKILL, then start again with the same arguments.
    pub fn restart_hard(&mut self) {
        self.kill();
        let next = Self::spawn(self.args.clone(), self.kubeconfig.clone());
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

/// The events of object `name` in namespace `ns`, one per line: type, reason, message.
pub fn events(ns: &str, name: &str) -> String {
    lab()
        .kubectl(&[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,MSG:.message",
        ])
        .stdout
}
