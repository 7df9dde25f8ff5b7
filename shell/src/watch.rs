//! Watches that come back quickly after an API-server outage, and say so while they cannot.
//!
//! kube-runtime's default watch backoff (0.8 s doubling to 30 s, reset only after 120 s of
//! quiet) left allocation stalled 40-70 s after a 20 s outage, with nothing logged. Here each
//! watch retries on a short jittered backoff ([`Backoff::watch`]), restarts from a fresh list
//! after an error (so a successful list proves the API server answers again), and reports its
//! state to an [`ApiHealth`].

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::Api;
use kube::Resource;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use crate::api_health::ApiHealth;
use crate::backoff::Backoff;

/// A kind of object the programs watch and cache.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// Runs a reflector for `api` until the process ends. `slim` trims each object before it is
/// cached; `on_event` sees every event after the store has it, and returns false to stop.
///
/// After any error the watch starts over with a fresh list (the store swaps in the new list
/// atomically at `InitDone`), after a [`Backoff::watch`] delay; the list answering is what marks
/// the watch healthy again.
pub fn reflect<K: Kind>(
    api: Api<K>,
    cfg: watcher::Config,
    health: ApiHealth,
    slim: impl Fn(&mut K) + Send + Sync + 'static,
    mut on_event: impl FnMut(&watcher::Event<K>) -> bool + Send + 'static,
) -> Store<K> {
    let (store, mut writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let slim = Arc::new(slim);
    tokio::spawn(async move {
        let mut backoff = Backoff::watch();
        loop {
            let s = slim.clone();
            let stream = watcher(api.clone(), cfg.clone()).modify(move |o| s(o));
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        // `Init` comes before the list request: it proves nothing.
                        if !matches!(ev, watcher::Event::Init) {
                            health.ok(&kind);
                            backoff.reset();
                        }
                        writer.apply_watcher_event(&ev);
                        if !on_event(&ev) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, kind, "watch error; starting over");
                        health.failed(&kind, e.to_string());
                        break;
                    }
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    });
    store
}

/// Owned copies of a store's objects.
pub fn own<K>(s: &Store<K>) -> Vec<K>
where
    K: Lookup + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    s.state().iter().map(|k| (**k).clone()).collect()
}
