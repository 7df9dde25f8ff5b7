//! How FerroLB reads a Service, shared by controller and speaker so they always agree.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

/// Condition type the controller writes on every Service it handles (addresses, or why not).
pub const IP_ALLOCATED: &str = "ferrolb.io/IPAllocated";
/// Condition type the announcing speaker writes on a Service in L2 mode (which node, which
/// interfaces).
pub const L2_ANNOUNCED: &str = "ferrolb.io/L2Announced";

/// Whether FerroLB handles this Service: `type: LoadBalancer`, with no class or with ours, and
/// not being deleted.
pub fn is_ours(svc: &Service, our_class: Option<&str>) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec.load_balancer_class.as_deref() == our_class
        && svc.metadata.deletion_timestamp.is_none()
}

/// Addresses the Service's status shows (`status.loadBalancer.ingress[].ip`).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
        .collect()
}

/// `namespace/name`.
pub fn key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Reason of the `L2Announced` condition (status False) when another host on the segment already
/// uses an address: the speaker then does not announce it. The controller reads the conflicts
/// back from the condition ([`conflicts`]), so the message format has one home here.
pub const ADDRESS_CONFLICT: &str = "AddressConflict";

/// An address some host that is not a FerroLB node answered for (ARP probe / DAD, or a
/// conflicting reply while announcing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressConflict {
    pub address: IpAddr,
    /// The other host's MAC, as it answered.
    pub mac: String,
    /// The node that saw it, and on which interface.
    pub node: String,
    pub interface: String,
}

const IN_USE: &str = " is in use by another host (MAC ";

impl AddressConflict {
    /// The sentence an operator reads; [`AddressConflict::parse`] reads it back.
    pub fn describe(&self) -> String {
        format!(
            "{}{IN_USE}{}) seen by node {} on {}",
            self.address, self.mac, self.node, self.interface
        )
    }

    /// Reads one sentence written by [`AddressConflict::describe`].
    pub fn parse(sentence: &str) -> Option<AddressConflict> {
        let (address, rest) = sentence.trim().split_once(IN_USE)?;
        let (mac, rest) = rest.split_once(") seen by node ")?;
        let (node, interface) = rest.split_once(" on ")?;
        Some(AddressConflict {
            address: address.parse().ok()?,
            mac: mac.to_string(),
            node: node.to_string(),
            interface: interface.to_string(),
        })
    }

    /// The condition message for several conflicts (sentences joined by "; ").
    pub fn message(conflicts: &[AddressConflict]) -> String {
        let mut m: Vec<String> = conflicts.iter().map(AddressConflict::describe).collect();
        m.sort();
        m.join("; ")
    }
}

/// The conflicts a Service's `L2Announced` condition reports (empty unless its reason is
/// [`ADDRESS_CONFLICT`]).
pub fn conflicts(svc: &Service) -> Vec<AddressConflict> {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.type_ == L2_ANNOUNCED && c.reason == ADDRESS_CONFLICT)
        .flat_map(|c| c.message.split("; ").filter_map(AddressConflict::parse))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn conflict(ip: &str, iface: &str) -> AddressConflict {
        AddressConflict {
            address: ip.parse().unwrap(),
            mac: "02:00:c6:12:00:09".into(),
            node: "flb-node1".into(),
            interface: iface.into(),
        }
    }

    fn with_condition(reason: &str, message: String) -> Service {
        Service {
            status: Some(ServiceStatus {
                conditions: Some(vec![Condition {
                    type_: L2_ANNOUNCED.into(),
                    status: "False".into(),
                    reason: reason.into(),
                    message,
                    last_transition_time: Time(Default::default()),
                    observed_generation: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn conflicts_read_back_what_the_message_says() {
        let want = vec![conflict("198.18.0.201", "eth0"), conflict("fd00:18::201", "eth1")];
        let msg = AddressConflict::message(&want);
        assert_eq!(
            msg,
            "198.18.0.201 is in use by another host (MAC 02:00:c6:12:00:09) seen by node \
             flb-node1 on eth0; fd00:18::201 is in use by another host (MAC 02:00:c6:12:00:09) \
             seen by node flb-node1 on eth1"
        );
        assert_eq!(conflicts(&with_condition(ADDRESS_CONFLICT, msg.clone())), want);
        // Another reason with the same words is not a conflict report.
        assert!(conflicts(&with_condition("Announced", msg)).is_empty());
        assert!(AddressConflict::parse("announced from node flb-node1 on eth0").is_none());
    }
}
