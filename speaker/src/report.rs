//! Makes announcements visible with kubectl: which node announces each Service IP and on which
//! interfaces (a Service condition written by the announcing speaker, and an event when it
//! changes), and each node's BGP sessions (an entry of `BGPPeer.status.sessions`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrolb_crds::BGPSessionStatus;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

/// Condition type the announcing speaker writes on Services.
pub const L2_CONDITION: &str = "ferrolb.io/L2Announced";

/// What a Service should show about its L2 announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Shown {
    pub announced: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Writes visibility objects, remembering what it wrote so nothing is written twice.
pub struct Visibility {
    client: Client,
    node: String,
    recorder: Recorder,
    l2_written: BTreeMap<String, L2Shown>,
    bgp_written: BTreeMap<String, BGPSessionStatus>,
}

impl Visibility {
    pub fn new(client: Client, node: &str) -> Visibility {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "ferrolb-speaker".into(),
                instance: Some(node.to_string()),
            },
        );
        Visibility {
            client,
            node: node.to_string(),
            recorder,
            l2_written: BTreeMap::new(),
            bgp_written: BTreeMap::new(),
        }
    }

    /// Shows `want` on the Service unless it already shows it.
    pub fn l2(&mut self, svc: &Arc<Service>, want: L2Shown) {
        let key = ferrolb_crds::service::key(svc);
        let current = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == L2_CONDITION));
        let shows = current.is_some_and(|c| {
            c.status == if want.announced { "True" } else { "False" }
                && c.reason == want.reason
                && c.message == want.message
        });
        if shows || self.l2_written.get(&key) == Some(&want) {
            return;
        }
        self.l2_written.insert(key.clone(), want.clone());
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let svc = svc.clone();
        tokio::spawn(async move {
            let ns = svc.namespace().unwrap_or_default();
            let api: Api<Service> = Api::namespaced(client, &ns);
            let cond = Condition {
                type_: L2_CONDITION.into(),
                status: if want.announced { "True" } else { "False" }.into(),
                reason: want.reason.into(),
                message: want.message.clone(),
                observed_generation: svc.metadata.generation,
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
            };
            let body = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": svc.name_any(), "namespace": ns },
                "status": { "conditions": [cond] }
            });
            // One manager for all speakers: the announcer of the moment owns the condition.
            let pp = PatchParams::apply("ferrolb-speaker").force();
            if let Err(e) = api
                .patch_status(&svc.name_any(), &pp, &Patch::Apply(&body))
                .await
            {
                tracing::warn!(service = key, error = %e, "writing L2 condition failed");
                return;
            }
            let ev = Event {
                type_: if want.announced {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: if want.announced {
                    "NodeAssigned".into()
                } else {
                    want.reason.into()
                },
                note: Some(want.message),
                action: "Announce".into(),
                secondary: None,
            };
            let _ = recorder.publish(&ev, &svc.object_ref(&())).await;
        });
    }

    /// Writes this node's entry in `BGPPeer.status.sessions` when it changed.
    pub fn bgp(&mut self, namespace: &str, peer: &str, status: BGPSessionStatus) {
        if self.bgp_written.get(peer) == Some(&status) {
            return;
        }
        self.bgp_written.insert(peer.to_string(), status.clone());
        let api: Api<ferrolb_crds::BGPPeer> = Api::namespaced(self.client.clone(), namespace);
        let manager = format!("ferrolb-speaker-{}", self.node);
        let peer = peer.to_string();
        tokio::spawn(async move {
            let body = json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer",
                "metadata": { "name": peer },
                "status": { "sessions": [status] }
            });
            if let Err(e) = api
                .patch_status(
                    &peer,
                    &PatchParams::apply(&manager).force(),
                    &Patch::Apply(&body),
                )
                .await
            {
                tracing::debug!(peer, error = %e, "writing BGP session status failed");
            }
        });
    }

    /// Forgets what was written for a peer no longer used (so a new session is reported).
    pub fn forget_bgp(&mut self, peer: &str) {
        self.bgp_written.remove(peer);
    }
}
