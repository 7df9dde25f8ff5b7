//! The controller's Kubernetes shell, put together: the watches (`stores`) feed the decision
//! loop (`reconciler`), which owns the allocator and hands API writes to the `writer`, all while
//! this replica leads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use ferrolb_shell::api_health::ApiHealth;
use ferrolb_shell::events::EventWriter;
use kube::Client;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::leader::Fence;
use crate::metrics::Metrics;
use crate::reconciler::Reconciler;
use crate::stores::Stores;
use crate::writer::{Writer, manager_for};

/// Start-up settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace holding FerroLB's configuration.
    pub namespace: String,
    /// `spec.loadBalancerClass` handled (None: Services without a class).
    pub lb_class: Option<String>,
    /// Name of this replica (events, lease).
    pub identity: String,
    /// Concurrent API writes.
    pub write_concurrency: usize,
}

/// Runs the controller until the process ends.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    leader: watch::Receiver<bool>,
    fence: Fence,
) -> Result<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let health = ApiHealth::start("controller");
    let manager = manager_for(settings.lb_class.as_deref());
    let stores = Stores::watch(&client, &settings.namespace, &manager, &health, tx.clone());
    stores.ready().await;
    tracing::info!("caches synced");
    // Ready while the watches reach the API server (a controller that cannot see changes
    // cannot act on them); the gauge says the same.
    let gauge = metrics.api_reachable.clone();
    health.on_change(move |up| {
        ready.store(up, Ordering::Relaxed);
        gauge.set(i64::from(up));
    });

    let writer = Writer {
        events: EventWriter::new(client.clone(), &manager, &settings.identity),
        manager,
        client: client.clone(),
        metrics,
        permits: Arc::new(Semaphore::new(settings.write_concurrency.max(1))),
        fence,
    };
    let reconciler = Reconciler::new(settings.namespace, settings.lb_class, stores, writer, tx);
    reconciler.run(&client, leader, rx).await
}
