//! `kubectl ferrolb`: a read-only kubectl plugin showing FerroLB's pools, Services, who
//! announces them, and BGP sessions. Installed by copying `kubectl-ferrolb` onto PATH.

mod announce;
mod explain;
mod fetch;
mod serving;
mod sessions;
mod snapshot;
mod status;
mod table;

#[cfg(test)]
mod fixtures;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use fetch::{Cluster, Target};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl ferrolb",
    bin_name = "kubectl ferrolb",
    about = "Shows what FerroLB does: pools, Services and who announces them, BGP sessions (read-only)."
)]
struct Cli {
    /// Path of the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The loadBalancerClass FerroLB handles (the controller's `--lb-class`); without it, only
    /// Services with no class are FerroLB's.
    #[arg(long, global = true)]
    class: Option<String>,
    /// Output format: human tables, or JSON for scripts.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "table",
        global = true
    )]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pools (used/free addresses, validity), Services with their addresses and announcers, and
    /// what is pending with its reason.
    Status {
        /// FerroLB's configuration namespace.
        #[arg(short = 'n', long = "namespace", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
        namespace: String,
    },
    /// Why a Service has, or lacks, an address, where it came from and who announces it.
    Explain {
        /// The Service: NAME, or NAMESPACE/NAME.
        service: String,
        /// The Service's namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// FerroLB's configuration namespace.
        #[arg(long = "ferrolb-namespace", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
        ferrolb_namespace: String,
    },
    /// BGP sessions per peer and node: state, BFD, prefixes sent, last error.
    Sessions {
        /// FerroLB's configuration namespace.
        #[arg(short = 'n', long = "namespace", default_value = ferrolb_crds::DEFAULT_NAMESPACE)]
        namespace: String,
    },
}

fn print<T: Serialize>(output: Output, value: &T, human: impl Fn(&T) -> String) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => print!("{}", human(value)),
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let target = Target {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
    };
    let cluster = Cluster::connect(&target).await?;
    match cli.command {
        Command::Status { namespace } => {
            let snap = cluster.snapshot(&namespace, cli.class).await?;
            print(cli.output, &status::build(&snap), status::human)
        }
        Command::Sessions { namespace } => {
            let snap = cluster.peers(&namespace).await?;
            print(cli.output, &sessions::build(&snap), sessions::human)
        }
        Command::Explain {
            service,
            namespace,
            ferrolb_namespace,
        } => {
            let (ns, name) = match service.split_once('/') {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => (namespace, service),
            };
            let mut snap = cluster.snapshot(&ferrolb_namespace, cli.class).await?;
            let Some(svc) = snap
                .services
                .iter()
                .find(|s| {
                    s.metadata.namespace.as_deref() == Some(&ns)
                        && s.metadata.name.as_deref() == Some(&name)
                })
                .cloned()
            else {
                bail!("Service {ns}/{name} not found");
            };
            snap.events = cluster.service_events(&ns, &name).await?;
            print(cli.output, &explain::build(&snap, &svc), explain::human)
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubectl-ferrolb: {e:#}");
            ExitCode::FAILURE
        }
    }
}
