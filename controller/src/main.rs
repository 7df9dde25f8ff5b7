//! `ferrolb-controller`: allocates external IPs to LoadBalancer Services.

use std::net::SocketAddr;

use clap::Parser;
use ferrolb_controller::{leader, metrics::Metrics, runtime};
use ferrolb_shell::http;
use ferrolb_shell::process::{init_tracing, shutdown};
use prometheus_client::registry::Registry;

#[derive(Parser, Debug)]
#[command(name = "ferrolb-controller", version, about)]
struct Args {
    /// Namespace holding FerroLB's configuration (pools, advertisements, peers).
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Handle Services with this `spec.loadBalancerClass` (default: only Services without one).
    #[arg(long, env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Elect a leader on a Lease; off only when a single replica runs.
    #[arg(long, env = "FERROLB_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "ferrolb-controller")]
    lease_name: String,
    /// Identity of this replica (default: $POD_NAME, else host name and process id). A stable
    /// identity lets a restarted replica resume leadership at once.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "FERROLB_METRICS_ADDR", default_value = "0.0.0.0:7472")]
    metrics_addr: SocketAddr,
    /// Concurrent writes to the API server.
    #[arg(long, default_value_t = 32)]
    write_concurrency: usize,
    /// Log format.
    #[arg(long, env = "FERROLB_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

// One thread: the controller waits on the API server; a single runtime thread keeps its memory
// (allocator arenas, task stacks) small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(&args.log_format);
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "ferrolb-controller".into())
            + &format!("-{}", std::process::id())
    });
    let client = kube::Client::try_default().await?;

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let ready = http::start(args.metrics_addr, registry);

    // The speakers' membership key: created if missing, never overwritten.
    tokio::spawn(ferrolb_controller::membership_secret::ensure(
        client.clone(),
        args.namespace.clone(),
    ));

    let election = leader::elect(
        client.clone(),
        &args.namespace,
        &args.lease_name,
        &identity,
        args.leader_election,
    )
    .await?;
    let settings = runtime::Settings {
        namespace: args.namespace,
        lb_class: args.lb_class,
        identity,
        write_concurrency: args.write_concurrency,
    };
    tracing::info!(?settings, "starting");
    let leading = election.leading.clone();
    let fence = election.fence.clone();
    let result = tokio::select! {
        r = runtime::run(client, settings, metrics, ready, leading, fence) => r,
        _ = shutdown() => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
    election.resign().await;
    result
}
