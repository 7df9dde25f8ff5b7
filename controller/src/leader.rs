//! Leader election on a `coordination.k8s.io` Lease, so two replicas are safe: only the holder
//! writes. Built on kube-lease-manager.

use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;

/// Lease timing: a dead leader is replaced within `DURATION` seconds; a live one renews
/// `GRACE` seconds before expiry.
const DURATION: u64 = 10;
const GRACE: u64 = 3;

/// An election in progress.
pub struct Election {
    /// Reads true while this replica leads.
    pub leading: watch::Receiver<bool>,
    task: Option<
        tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    >,
    _always: Option<watch::Sender<bool>>,
}

impl Election {
    /// Gives the lease up (on shutdown) so a standby takes over at once instead of waiting for
    /// the lease to expire.
    pub async fn resign(self) {
        let Election { leading, task, .. } = self;
        drop(leading);
        if let Some(task) = task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
    }
}

/// Starts election. With `enabled == false` (single replica) this replica always leads.
pub async fn elect(
    client: kube::Client,
    namespace: &str,
    lease: &str,
    identity: &str,
    enabled: bool,
) -> anyhow::Result<Election> {
    if !enabled {
        let (tx, rx) = watch::channel(true);
        return Ok(Election {
            leading: rx,
            task: None,
            _always: Some(tx),
        });
    }
    let manager = LeaseManagerBuilder::new(client, lease)
        .with_namespace(namespace)
        .with_parameters(LeaseParams::new(identity, DURATION, GRACE))
        .build()
        .await?;
    let (rx, task) = manager.watch().await;
    Ok(Election {
        leading: rx,
        task: Some(task),
        _always: None,
    })
}
