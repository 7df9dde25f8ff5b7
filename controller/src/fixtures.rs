//! Test fixtures: Services as the unit tests write them.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

/// An IPv4 LoadBalancer Service `ns/<name>` on port 80 with annotations `ann`, its spec changed
/// by `f`.
pub fn service(name: &str, ann: &[(&str, &str)], f: impl FnOnce(&mut ServiceSpec)) -> Service {
    let mut spec = ServiceSpec {
        type_: Some("LoadBalancer".into()),
        ip_families: Some(vec!["IPv4".into()]),
        ports: Some(vec![ServicePort {
            port: 80,
            ..Default::default()
        }]),
        ..Default::default()
    };
    f(&mut spec);
    let mut s = Service {
        spec: Some(spec),
        ..Default::default()
    };
    s.metadata.namespace = Some("ns".into());
    s.metadata.name = Some(name.into());
    s.metadata.annotations = Some(
        ann.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    s
}
