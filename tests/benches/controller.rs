//! Controller benchmark against the lab's real API server (prints figures; asserts nothing).
//!
//! `cargo bench -p ferrolb-tests --bench controller` (lab up, controller running via
//! `hack/lab restart-ferrolb`). Sizes: FERROLB_BENCH_SERVICES (default 10000),
//! FERROLB_BENCH_PRESENT (services present while measuring latency, default 5000),
//! FERROLB_BENCH_SAMPLES (latency samples, default 200).
//!
//! Measures: Service create → EXTERNAL-IP latency p50/p99 with PRESENT services; time for
//! SERVICES services to all get IPs; controller RSS at SERVICES; controller SIGKILL → ready and
//! → first new allocation, with SERVICES present.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferrolb_tests::on_each_service;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn service(ns: &str, name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns, "annotations": { "ferrolb.io/address-pool": "bench" } },
        "spec": { "type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                  "ports": [{ "port": 80 }], "selector": { "app": name } }
    }))
    .expect("valid service")
}

fn has_ip(s: &Service) -> bool {
    !ferrolb_crds::service::ingress_ips(s).is_empty()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Watches the bench namespace and records when each Service first shows an address.
async fn ip_watch(client: Client, ns: &str) -> Arc<Mutex<BTreeMap<String, Instant>>> {
    let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let s = seen.clone();
    on_each_service(Api::namespaced(client, ns), move |svc| {
        if has_ip(&svc) {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(svc.name_any())
                .or_insert_with(Instant::now);
        }
    });
    seen
}

async fn create_many(api: &Api<Service>, names: Vec<String>) -> Result<()> {
    futures::stream::iter(names)
        .map(|n| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &service(api.namespace().unwrap_or_default(), &n),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn wait_count(
    seen: &Mutex<BTreeMap<String, Instant>>,
    n: usize,
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    while seen.lock().unwrap_or_else(|e| e.into_inner()).len() < n {
        anyhow::ensure!(
            start.elapsed() < timeout,
            "only {} of {n} services got IPs",
            seen.lock().unwrap_or_else(|e| e.into_inner()).len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn controller_pid() -> Result<i32> {
    ferrolb_tests::lab().pid("controller")
}

fn rss_mib(pid: i32) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

async fn readyz() -> bool {
    // The lab's controller serves on 127.0.0.1:7472 (root namespace).
    let Ok(mut s) = tokio::net::TcpStream::connect("127.0.0.1:7472").await else {
        return false;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200")
}

#[tokio::main]
async fn main() -> Result<()> {
    let total = env("FERROLB_BENCH_SERVICES", 10_000);
    let present = env("FERROLB_BENCH_PRESENT", 5_000).min(total);
    let samples = env("FERROLB_BENCH_SAMPLES", 200);
    let lab = ferrolb_tests::lab();
    let client = lab.client().await?;
    // Measure release binaries, as they ship.
    anyhow::ensure!(
        ferrolb_tests::restart_ferrolb_release(),
        "release build or restarting FerroLB failed"
    );

    // A fresh namespace (deleting thousands of Services takes the namespace controller a while,
    // so each run gets its own) and a pool big enough for everything.
    let ns_name = format!("ferrolb-bench-{}", std::process::id());
    let ns = ns_name.as_str();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?,
    )
    .await?;
    let r = lab.apply(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench}\n\
         spec: {addresses: [198.18.128.0/17], autoAssign: false}\n",
    );
    anyhow::ensure!(r.ok, "pool: {}", r.stderr);
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let seen = ip_watch(client.clone(), ns).await;

    println!(
        "== controller bench: {total} services, latency with {present} present, {samples} samples"
    );
    // 1. Fill to `present`.
    let t = Instant::now();
    create_many(&api, (0..present).map(|i| format!("s{i}")).collect()).await?;
    wait_count(&seen, present, Duration::from_secs(600)).await?;
    println!(
        "{present} services created and all given IPs in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 2. Latency, one at a time.
    let mut lat = Vec::new();
    for i in 0..samples {
        let name = format!("lat{i}");
        let t = Instant::now();
        api.create(&PostParams::default(), &service(ns, &name))
            .await?;
        loop {
            if let Some(at) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
                lat.push(at.saturating_duration_since(t));
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "{name} got no IP");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    lat.sort();
    println!(
        "create -> EXTERNAL-IP latency with {present} present: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        lat.len()
    );

    // 3. The rest, in bulk.
    let rest = total.saturating_sub(present + samples);
    let t = Instant::now();
    create_many(
        &api,
        (present..present + rest).map(|i| format!("s{i}")).collect(),
    )
    .await?;
    wait_count(&seen, present + samples + rest, Duration::from_secs(900)).await?;
    println!(
        "{rest} more services all given IPs in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let all = present + samples + rest;
    let pid = controller_pid()?;
    println!(
        "controller RSS with {all} services: {:.1} MiB",
        rss_mib(pid)?
    );

    // 4. Restart: SIGKILL, then time to ready and to the next allocation.
    let t = Instant::now();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    while controller_pid().ok() == Some(pid) || !readyz().await {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "controller not ready again"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = t.elapsed();
    api.create(&PostParams::default(), &service(ns, "after-restart"))
        .await?;
    while !seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key("after-restart")
    {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "no allocation after restart"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "controller SIGKILL -> ready {:.2} s; -> next Service allocated {:.2} s ({all} services present)",
        ready.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    if let Ok(p) = controller_pid() {
        println!(
            "controller RSS after restart: {:.1} MiB",
            rss_mib(p).unwrap_or(0.0)
        );
    }

    let _ = ferrolb_tests::restart_ferrolb(None);
    if std::env::var("FERROLB_BENCH_KEEP").is_err() {
        let _ = nss.delete(ns, &DeleteParams::default()).await;
        let _ = lab.kubectl(&[
            "delete",
            "ipaddresspool",
            "-n",
            ferrolb_crds::DEFAULT_NAMESPACE,
            "bench",
            "--wait=false",
        ]);
    }
    Ok(())
}
