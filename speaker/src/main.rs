//! `ferrolb-speaker`: makes the network deliver LoadBalancer IPs to this node (L2 or BGP).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ferrolb_shell::http;
use ferrolb_shell::process::{init_tracing, shutdown};
use ferrolb_speaker::departure::OnShutdown;
use ferrolb_speaker::{agent, metrics::Metrics};
use prometheus_client::registry::Registry;

#[derive(Parser, Debug)]
#[command(name = "ferrolb-speaker", version, about)]
struct Args {
    /// This node's name (the Node object).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Namespace holding FerroLB's configuration.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Handle Services with this `spec.loadBalancerClass` (default: only Services without one).
    #[arg(long, env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// UDP port of the speakers' membership protocol.
    #[arg(long, env = "FERROLB_MEMBER_PORT", default_value_t = ferrolb_speaker::membership::DEFAULT_PORT)]
    member_port: u16,
    /// File with the membership keys, one base64 key per line; the first signs, all are accepted
    /// (the Secret ferrolb-memberlist, entry `keys`, mounted). Re-read every 5 s.
    #[arg(long, env = "FERROLB_MEMBERSHIP_KEY_FILE", default_value = ferrolb_speaker::membership::keys::DEFAULT_KEY_FILE)]
    membership_key_file: PathBuf,
    /// Run the membership without authentication: anyone on the node network can then forge
    /// membership datagrams. Without a key file and without this flag the speaker refuses to start.
    #[arg(long, env = "FERROLB_INSECURE_MEMBERSHIP")]
    insecure_membership: bool,
    /// Interfaces never used for "all interfaces" L2 announcements (name prefixes).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "veth,cali,cilium_,flannel,cni,docker,kube-ipvs,vxlan,lxc,tunl,tap"
    )]
    ignore_interfaces: Vec<String>,
    /// What BGP routes become on SIGTERM. auto: kept at routers that negotiated graceful restart
    /// while this node stays in service (a planned restart), withdrawn at once when it is
    /// cordoned, being deleted, excluded or marked for removal, or the API server is unreachable;
    /// keep-routes / withdraw: always.
    #[arg(long, env = "FERROLB_ON_SHUTDOWN", value_enum, default_value_t = OnShutdown::Auto)]
    on_shutdown: OnShutdown,
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "FERROLB_METRICS_ADDR", default_value = "0.0.0.0:7473")]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "FERROLB_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(&args.log_format);
    // Before anything else: a speaker without a key must not start.
    let membership_auth = ferrolb_speaker::membership::Authentication::from_flags(
        &args.membership_key_file,
        args.insecure_membership,
        &args.namespace,
    )?;
    let client = kube::Client::try_default().await?;
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let ready = http::start(args.metrics_addr, registry);
    let settings = agent::Settings {
        node: args.node_name,
        namespace: args.namespace,
        lb_class: args.lb_class,
        member_port: args.member_port,
        membership_auth,
        ignore_interfaces: args.ignore_interfaces,
        on_shutdown: args.on_shutdown,
    };
    tracing::info!(?settings, "starting");
    agent::run(client, settings, metrics, ready, shutdown()).await
}
