//! Service events (`events.k8s.io/v1`), created directly.
//!
//! Not kube-runtime's `Recorder`: it caches every event it published in the last 6 minutes (one
//! entry per Service, as each Service is its own series key) and scans that cache on every
//! publish, so creating 10,000 Services held 10,000 events in memory and cost O(n) per event.
//! The controller and the speaker publish an event only when what a Service shows changes, so
//! there is no series to aggregate and nothing to cache.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Creates events as one reporting controller instance.
#[derive(Clone)]
pub struct EventWriter {
    client: Client,
    controller: String,
    instance: String,
}

impl EventWriter {
    pub fn new(client: Client, controller: &str, instance: &str) -> EventWriter {
        EventWriter {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
        }
    }

    /// Creates the event about `regarding`, in its namespace.
    pub async fn publish(
        &self,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
        regarding: ObjectReference,
    ) -> Result<(), kube::Error> {
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let now = k8s_openapi::jiff::Timestamp::now();
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &ev)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::Path;
    use axum::http::{StatusCode, header};
    use axum::routing::post;

    use super::*;

    /// What the stand-in API server was sent: (namespace in the path, event).
    type Sent = Arc<Mutex<Vec<(String, Event)>>>;

    /// A stand-in API server that keeps every event created and answers with it (the lab tests
    /// read real events back from a real API server).
    async fn api_server() -> (Client, Sent) {
        let sent = Sent::default();
        let keep = sent.clone();
        let app = axum::Router::new().route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events",
            post(move |Path(ns): Path<String>, body: String| {
                let keep = keep.clone();
                async move {
                    let ev: Event = serde_json::from_str(&body).expect("an Event");
                    keep.lock().unwrap().push((ns, ev));
                    let json = [(header::CONTENT_TYPE, "application/json")];
                    (StatusCode::CREATED, json, body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = kube::Config::new(url.parse().expect("url"));
        (Client::try_from(config).expect("client"), sent)
    }

    #[tokio::test]
    async fn events_name_their_object_reporter_and_type() {
        let (client, sent) = api_server().await;
        let w = EventWriter::new(client, "ferrolb-controller", "pod-1");
        let regarding = ObjectReference {
            kind: Some("Service".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        w.publish(
            EventType::Warning,
            "PoolExhausted",
            "Allocate",
            "no free address".into(),
            regarding.clone(),
        )
        .await
        .expect("created");
        let (ns, ev) = sent.lock().unwrap()[0].clone();
        assert_eq!(ns, "shop");
        assert_eq!(ev.metadata.namespace.as_deref(), Some("shop"));
        assert!(
            ev.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web."))
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.reason.as_deref(), Some("PoolExhausted"));
        assert_eq!(ev.action.as_deref(), Some("Allocate"));
        assert_eq!(ev.note.as_deref(), Some("no free address"));
        assert_eq!(ev.regarding, Some(regarding));
        assert_eq!(
            ev.reporting_controller.as_deref(),
            Some("ferrolb-controller")
        );
        assert_eq!(ev.reporting_instance.as_deref(), Some("pod-1"));
        assert!(
            ev.event_time.is_some(),
            "events.k8s.io/v1 requires eventTime"
        );
        // Two events about one object get distinct names.
        w.publish(
            EventType::Normal,
            "IPAllocated",
            "Allocate",
            String::new(),
            ev.regarding.clone().unwrap_or_default(),
        )
        .await
        .expect("created");
        let again = sent.lock().unwrap()[1].1.clone();
        assert_ne!(again.metadata.name, ev.metadata.name);
    }
}
