//! The EndpointSlice changes of a Service, as a watch delivers them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::route_log::Timeline;

/// Nodes with a serving endpoint of the Service `web` in a namespace over time (FerroLB's rule:
/// serving, or ready for producers without `serving`; ready or terminating), each change with
/// the instant the watch delivered it.
pub struct SliceWatch {
    changes: Timeline,
    task: tokio::task::JoinHandle<()>,
}

pub fn serving_nodes(s: &EndpointSlice) -> BTreeSet<String> {
    s.endpoints
        .iter()
        .flatten()
        .filter(|e| {
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving.or(c.ready)).unwrap_or(true);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            serving && (ready || terminating)
        })
        .filter_map(|e| e.node_name.clone())
        .collect()
}

impl SliceWatch {
    pub fn start(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str) -> SliceWatch {
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        let changes: Timeline = Arc::default();
        let c = changes.clone();
        let task = rt.spawn(async move {
            let cfg = watcher::Config::default().labels("kubernetes.io/service-name=web");
            let mut stream = watcher(api, cfg).boxed();
            // Serving nodes by slice; a (re)list is collected apart and takes over when done.
            let mut slices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut listing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                match ev {
                    watcher::Event::Apply(s) => {
                        slices.insert(s.name_any(), serving_nodes(&s));
                    }
                    watcher::Event::Delete(s) => {
                        slices.remove(&s.name_any());
                    }
                    watcher::Event::Init => {
                        listing.clear();
                        continue;
                    }
                    watcher::Event::InitApply(s) => {
                        listing.insert(s.name_any(), serving_nodes(&s));
                        continue;
                    }
                    watcher::Event::InitDone => slices = std::mem::take(&mut listing),
                }
                let now: BTreeSet<String> = slices.values().flatten().cloned().collect();
                let mut log = c.lock().unwrap_or_else(|e| e.into_inner());
                if log.last().is_none_or(|(_, last)| *last != now) {
                    log.push((Instant::now(), now));
                }
            }
        });
        SliceWatch { changes, task }
    }

    /// The first change at or after `since` to a set `ok` accepts.
    pub fn first(&self, since: Instant, ok: impl Fn(&BTreeSet<String>) -> bool) -> Option<Instant> {
        let log = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .find(|(t, s)| *t >= since && ok(s))
            .map(|(t, _)| *t)
    }
}

impl Drop for SliceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
