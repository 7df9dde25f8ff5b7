//! FerroLB's speaker pods in the lab (FerroLB as pods): as the API server shows them, and their
//! processes in the nodes' network namespaces (the speaker runs with hostNetwork).

use std::process::Command;

use serde_json::Value;

use crate::{NODES, lab, repo};

const SPEAKER_SELECTOR: &str = "app.kubernetes.io/name=ferrolb,app.kubernetes.io/component=speaker";

unsafe extern "C" {
    /// kill(2): the signal leaves at a known instant (no `kill` process to spawn first).
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGKILL: i32 = 9;

/// A speaker pod as the API server shows it.
#[derive(Debug)]
pub struct SpeakerPod {
    pub name: String,
    pub node: String,
    pub ready: bool,
    pub terminating: bool,
    pub restarts: u64,
}

/// The speaker DaemonSet's pods, terminating ones included.
pub fn speaker_pods() -> Vec<SpeakerPod> {
    let r = lab().kubectl(&[
        "get",
        "pods",
        "-n",
        ferrolb_crds::DEFAULT_NAMESPACE,
        "-l",
        SPEAKER_SELECTOR,
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    v.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| SpeakerPod {
            name: p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            node: p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            ready: p
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            terminating: p.pointer("/metadata/deletionTimestamp").is_some(),
            restarts: p
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
        .collect()
}

/// A speaker pod on every node, each ready and none terminating (else what there is).
pub fn speakers_ready() -> Result<(), String> {
    let sp = speaker_pods();
    if sp.len() != NODES.len() || sp.iter().any(|p| !p.ready || p.terminating) {
        return Err(format!("speaker pods {sp:?}"));
    }
    Ok(())
}

/// The pid of the speaker container's process in a node's network namespace (hostNetwork).
pub fn speaker_pid(node: &str) -> Option<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", node])
        .output()
        .ok()?;
    let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "ferrolb-speaker")
        })
        .collect();
    match pids.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// SIGKILL to a speaker process found by [`speaker_pid`] (the kubelet restarts the container).
pub fn kill_speaker(pid: i32) {
    // SAFETY: kill(2) of the speaker container's process, found by name in the node.
    let rc = unsafe { kill(pid, SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}");
}

/// Which build the speaker image holds: its binary compared (by size) with the static builds in
/// target/ (hack/build-static).
pub fn image_profile() -> String {
    let Some(size) = speaker_pid("flb-node1")
        .and_then(|p| std::fs::metadata(format!("/proc/{p}/exe")).ok())
        .map(|m| m.len())
    else {
        return "unknown (no speaker process on flb-node1)".into();
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    for (profile, dir) in [("release", "release"), ("dev", "debug")] {
        let p = target.join(format!("x86_64-unknown-linux-musl/{dir}/ferrolb-speaker"));
        if std::fs::metadata(&p).is_ok_and(|m| m.len() == size) {
            return format!(
                "{profile} (the speaker's binary is target/x86_64-unknown-linux-musl/{dir}/ferrolb-speaker, {} MB)",
                size >> 20
            );
        }
    }
    format!("unknown (a {size}-byte speaker binary matching neither static build in target/)")
}
