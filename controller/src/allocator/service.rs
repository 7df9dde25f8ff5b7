//! What the allocator needs to know about a LoadBalancer Service: plain data, filled in by the
//! controller from the Service object, its annotations and the pools' selectors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ferrolb_crds::address::Family;

/// A Service's identity: `namespace/name`. Ordered, so every decision that walks Services is
/// deterministic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FamilyPolicy {
    #[default]
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

impl FamilyPolicy {
    pub fn from_k8s_name(s: &str) -> Option<FamilyPolicy> {
        match s {
            "SingleStack" => Some(FamilyPolicy::SingleStack),
            "PreferDualStack" => Some(FamilyPolicy::PreferDualStack),
            "RequireDualStack" => Some(FamilyPolicy::RequireDualStack),
            _ => None,
        }
    }
}

/// Transport protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn from_k8s_name(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// A (protocol, port) a Service listens on; two Services sharing an address must not collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    pub protocol: Protocol,
    pub port: u16,
}

impl Port {
    pub fn tcp(port: u16) -> Port {
        Port {
            protocol: Protocol::Tcp,
            port,
        }
    }
    pub fn udp(port: u16) -> Port {
        Port {
            protocol: Protocol::Udp,
            port,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// `spec.externalTrafficPolicy`. `Local` carries the pod selector: Local Services may share an
/// address only when they select the same pods (they are announced from the same nodes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local {
        selector: BTreeMap<String, String>,
    },
}

impl TrafficPolicy {
    pub fn name(&self) -> &'static str {
        match self {
            TrafficPolicy::Cluster => "Cluster",
            TrafficPolicy::Local { .. } => "Local",
        }
    }
}

/// Everything that decides a Service's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub key: ServiceKey,
    /// `spec.ipFamilies`, primary first (one or two distinct families). Under
    /// `RequireDualStack` a missing second family is taken to be the other one.
    pub families: Vec<Family>,
    pub policy: FamilyPolicy,
    /// Requested addresses (`loadBalancerIPs` annotation or `spec.loadBalancerIP`): at most one
    /// per family. Families without one get a free address from the same pool.
    pub requested_ips: Vec<IpAddr>,
    /// Pool named by the `address-pool` annotation.
    pub pool: Option<String>,
    /// `allow-shared-ip` annotation; an empty key means no key.
    pub sharing_key: Option<String>,
    pub ports: Vec<Port>,
    pub traffic: TrafficPolicy,
    /// Names of the pools whose `serviceAllocation` selects this Service (namespace and label
    /// selectors are evaluated by the caller). Pools with a `serviceAllocation` not named here
    /// are never used for this Service.
    pub matching_pools: BTreeSet<String>,
}

impl Request {
    /// A single-stack Cluster Service with no ports, no pin, no key, no requested address.
    pub fn new(key: ServiceKey, family: Family) -> Request {
        Request {
            key,
            families: vec![family],
            policy: FamilyPolicy::SingleStack,
            requested_ips: Vec::new(),
            pool: None,
            sharing_key: None,
            ports: Vec::new(),
            traffic: TrafficPolicy::Cluster,
            matching_pools: BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_display() {
        assert_eq!(ServiceKey::new("ns", "web").to_string(), "ns/web");
        assert_eq!(Port::tcp(80).to_string(), "TCP/80");
        assert_eq!(Port::udp(53).to_string(), "UDP/53");
        assert_eq!(
            FamilyPolicy::from_k8s_name("PreferDualStack"),
            Some(FamilyPolicy::PreferDualStack)
        );
        assert_eq!(FamilyPolicy::from_k8s_name("x"), None);
        assert_eq!(Protocol::from_k8s_name("SCTP"), Some(Protocol::Sctp));
        assert_eq!(Protocol::from_k8s_name("tcp"), None);
        assert!(ServiceKey::new("a", "z") < ServiceKey::new("b", "a"));
    }
}
