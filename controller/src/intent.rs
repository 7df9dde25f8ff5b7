//! What a Service asks of FerroLB, read from its spec and annotations (pure).
//!
//! Everything a user can get wrong here becomes an [`IntentError`] whose message says what to
//! change; nothing is guessed. Rules the allocator owns (families, pools, sharing) are checked
//! there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::address::Family;
use ferrolb_crds::annotations;
use ferrolb_crds::selector;
use ferrolb_crds::validate::ValidPool;
use k8s_openapi::api::core::v1::Service;

use crate::allocator::{FamilyPolicy, Port, Protocol, Request, ServiceKey, TrafficPolicy};

pub use ferrolb_crds::service::is_ours;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    #[error(
        "both {annotation} and spec.loadBalancerIP are set: keep only the annotation (spec.loadBalancerIP is deprecated)"
    )]
    BothRequested { annotation: String },
    #[error("{from}: '{value}' is not an IP address")]
    BadAddress { from: String, value: String },
    #[error("port {port} is not a TCP, UDP or SCTP port number")]
    BadPort { port: String },
}

/// The key the allocator knows a Service by.
pub fn service_key(svc: &Service) -> ServiceKey {
    ServiceKey::new(
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

/// The Service's address families, primary first.
pub fn families(svc: &Service) -> Vec<Family> {
    let spec = svc.spec.as_ref();
    let mut families: Vec<Family> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| Family::from_k8s_name(f))
        .collect();
    if families.is_empty() {
        // Not yet defaulted by the API server (or a very old object): derive from the cluster IPs.
        families = spec
            .and_then(|s| s.cluster_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| Family::of(&ip))
            .collect();
    }
    if families.is_empty() {
        families.push(Family::V4);
    }
    families
}

/// Reads what a LoadBalancer Service asks for, as an allocator [`Request`].
/// `matching_pools` are the pools whose `serviceAllocation` selects it (see [`matching_pools`]).
pub fn request(svc: &Service, matching_pools: BTreeSet<String>) -> Result<Request, IntentError> {
    let spec = svc.spec.clone().unwrap_or_default();
    let empty = BTreeMap::new();
    let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let policy = spec
        .ip_family_policy
        .as_deref()
        .and_then(FamilyPolicy::from_k8s_name)
        .unwrap_or_default();

    let annotated = annotations::get(ann, annotations::LOAD_BALANCER_IPS);
    let legacy = spec
        .load_balancer_ip
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    let (raw, from): (Vec<&str>, String) = match (annotated, legacy) {
        (Some((_, key)), Some(_)) => return Err(IntentError::BothRequested { annotation: key }),
        (Some((v, key)), None) => (
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
            key,
        ),
        (None, Some(v)) => (vec![v.trim()], "spec.loadBalancerIP".to_string()),
        (None, None) => (vec![], String::new()),
    };
    let mut requested_ips = Vec::new();
    for value in raw {
        let ip: IpAddr = value.parse().map_err(|_| IntentError::BadAddress {
            from: from.clone(),
            value: value.to_string(),
        })?;
        requested_ips.push(ip);
    }

    let mut ports = Vec::new();
    for p in spec.ports.iter().flatten() {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let bad = || IntentError::BadPort {
            port: format!("{proto}/{}", p.port),
        };
        let protocol = Protocol::from_k8s_name(proto).ok_or_else(bad)?;
        let port = u16::try_from(p.port).map_err(|_| bad())?;
        ports.push(Port { protocol, port });
    }
    let traffic = if spec.external_traffic_policy.as_deref() == Some("Local") {
        TrafficPolicy::Local {
            selector: spec.selector.clone().unwrap_or_default(),
        }
    } else {
        TrafficPolicy::Cluster
    };
    Ok(Request {
        key: service_key(svc),
        families: families(svc),
        policy,
        requested_ips,
        pool: annotations::get(ann, annotations::ADDRESS_POOL).map(|(v, _)| v.trim().to_string()),
        sharing_key: annotations::get(ann, annotations::ALLOW_SHARED_IP)
            .map(|(v, _)| v.trim().to_string())
            .filter(|s| !s.is_empty()),
        ports,
        traffic,
        matching_pools,
    })
}

/// Pools whose `serviceAllocation` selects this Service (namespace and service selectors).
pub fn matching_pools(
    pools: &[ValidPool],
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    service_labels: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    pools
        .iter()
        .filter(|p| {
            let Some(sa) = &p.spec.service_allocation else {
                return false;
            };
            let ns_ok = (sa.namespaces.is_empty() && sa.namespace_selectors.is_empty())
                || sa.namespaces.iter().any(|n| n == namespace)
                || sa
                    .namespace_selectors
                    .iter()
                    .any(|s| selector::matches(s, namespace_labels));
            let svc_ok = selector::any_matches(&sa.service_selectors, service_labels);
            ns_ok && svc_ok
        })
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::address::AddressRange;
    use ferrolb_crds::{IPAddressPoolSpec, ServiceAllocation};
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn svc(ann: &[(&str, &str)], f: impl FnOnce(&mut ServiceSpec)) -> Service {
        crate::fixtures::service("web", ann, f)
    }

    fn req(s: &Service) -> Result<Request, IntentError> {
        request(s, BTreeSet::new())
    }

    #[test]
    fn class_and_type_decide_ownership() {
        let s = svc(&[], |_| {});
        assert!(is_ours(&s, None));
        assert!(!is_ours(&s, Some("ferrolb.io/lb")));
        let c = svc(&[], |s| {
            s.load_balancer_class = Some("ferrolb.io/lb".into())
        });
        assert!(is_ours(&c, Some("ferrolb.io/lb")));
        assert!(!is_ours(&c, None));
        assert!(!is_ours(
            &svc(&[], |s| s.type_ = Some("ClusterIP".into())),
            None
        ));
    }

    #[test]
    fn requested_addresses() {
        let i = req(&svc(
            &[("ferrolb.io/loadBalancerIPs", "198.18.0.5, fd00::5")],
            |s| {
                s.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
                s.ip_family_policy = Some("RequireDualStack".into());
            },
        ))
        .unwrap();
        assert_eq!(i.key, ServiceKey::new("ns", "web"));
        assert_eq!(i.requested_ips.len(), 2);
        assert_eq!(i.families, [Family::V6, Family::V4]);
        assert_eq!(i.policy, FamilyPolicy::RequireDualStack);

        let legacy = req(&svc(&[], |s| {
            s.load_balancer_ip = Some("198.18.0.7".into())
        }))
        .unwrap();
        assert_eq!(
            legacy.requested_ips,
            ["198.18.0.7".parse::<IpAddr>().unwrap()]
        );

        let metallb = req(&svc(
            &[("metallb.universe.tf/loadBalancerIPs", "198.18.0.8")],
            |_| {},
        ))
        .unwrap();
        assert_eq!(
            metallb.requested_ips,
            ["198.18.0.8".parse::<IpAddr>().unwrap()]
        );

        let both = req(&svc(&[("ferrolb.io/loadBalancerIPs", "198.18.0.5")], |s| {
            s.load_balancer_ip = Some("198.18.0.6".into())
        }));
        assert!(matches!(both, Err(IntentError::BothRequested { .. })));
        let bad = req(&svc(&[("ferrolb.io/loadBalancerIPs", "nope")], |_| {}));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("'nope' is not an IP address")
        );
        let dual = req(&svc(&[], |s| {
            s.ip_families = None;
            s.cluster_ips = Some(vec!["fd00::1".into(), "198.19.0.1".into()]);
        }))
        .unwrap();
        assert_eq!(dual.families, [Family::V6, Family::V4]);
    }

    #[test]
    fn sharing_pool_ports_policy() {
        let i = req(&svc(
            &[
                ("metallb.io/allow-shared-ip", "k"),
                ("ferrolb.io/address-pool", " p "),
            ],
            |s| {
                s.external_traffic_policy = Some("Local".into());
                s.selector = Some([("app".to_string(), "x".to_string())].into());
                s.ports = Some(vec![
                    ServicePort {
                        port: 53,
                        protocol: Some("UDP".into()),
                        ..Default::default()
                    },
                    ServicePort {
                        port: 53,
                        ..Default::default()
                    },
                ]);
            },
        ))
        .unwrap();
        assert_eq!(i.sharing_key.as_deref(), Some("k"));
        assert_eq!(i.pool.as_deref(), Some("p"));
        assert!(
            matches!(i.traffic, TrafficPolicy::Local { ref selector } if selector["app"] == "x")
        );
        assert_eq!(i.ports, [Port::udp(53), Port::tcp(53)]);
        let bad = req(&svc(&[], |s| {
            s.ports = Some(vec![ServicePort {
                port: 80,
                protocol: Some("QUIC".into()),
                ..Default::default()
            }])
        }));
        assert!(matches!(bad, Err(IntentError::BadPort { .. })));
    }

    #[test]
    fn service_allocation_matching() {
        let pool = |name: &str, sa: Option<ServiceAllocation>| ValidPool {
            name: name.into(),
            ranges: vec!["198.18.10.0/24".parse::<AddressRange>().unwrap()],
            labels: BTreeMap::new(),
            spec: IPAddressPoolSpec {
                addresses: vec![],
                auto_assign: true,
                avoid_buggy_ips: false,
                avoid_conflicting_ips: false,
                service_allocation: sa,
            },
        };
        let labels = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let sel = |k: &str, v: &str| LabelSelector {
            match_labels: Some(labels(k, v)),
            match_expressions: None,
        };
        let pools = vec![
            pool("plain", None),
            pool(
                "by-ns",
                Some(ServiceAllocation {
                    namespaces: vec!["prod".into()],
                    ..Default::default()
                }),
            ),
            pool(
                "by-ns-label",
                Some(ServiceAllocation {
                    namespace_selectors: vec![sel("env", "prod")],
                    ..Default::default()
                }),
            ),
            pool(
                "by-svc",
                Some(ServiceAllocation {
                    service_selectors: vec![sel("tier", "edge")],
                    ..Default::default()
                }),
            ),
        ];
        let m = matching_pools(&pools, "prod", &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(m, BTreeSet::from(["by-ns".to_string()]));
        let m = matching_pools(
            &pools,
            "dev",
            &labels("env", "prod"),
            &labels("tier", "edge"),
        );
        assert_eq!(
            m,
            BTreeSet::from(["by-ns-label".to_string(), "by-svc".to_string()])
        );
    }
}
