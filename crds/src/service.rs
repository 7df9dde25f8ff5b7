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

/// Start of an `L2Announced` message that says where a Service's addresses are announced.
pub const L2_WHERE_PREFIX: &str = "layer2: ";

/// One address of a Service and the node announcing it, as the announcer writes it in the
/// `L2Announced` condition. Sticky L2Advertisements read it back ([`announced_from`]) to keep an
/// address where it is, so the speakers agree on the holder without writing anything new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncedFrom {
    pub address: IpAddr,
    pub node: String,
    /// Interfaces, or `all interfaces`.
    pub interfaces: Vec<String>,
}

const FROM_NODE: &str = " from node ";

impl AnnouncedFrom {
    /// `198.18.0.201 from node flb-node1 on eth0, eth1`.
    pub fn describe(&self) -> String {
        format!(
            "{}{FROM_NODE}{} on {}",
            self.address,
            self.node,
            self.interfaces.join(", ")
        )
    }

    /// Reads one part written by [`AnnouncedFrom::describe`]. Node names (DNS subdomains) and
    /// interface names hold no whitespace, so the words cannot be confused.
    pub fn parse(part: &str) -> Option<AnnouncedFrom> {
        let (address, rest) = part.trim().split_once(FROM_NODE)?;
        let (node, interfaces) = rest.split_once(" on ")?;
        if node.is_empty() || node.contains(char::is_whitespace) {
            return None;
        }
        Some(AnnouncedFrom {
            address: address.parse().ok()?,
            node: node.to_string(),
            interfaces: interfaces.split(", ").map(str::to_string).collect(),
        })
    }
}

/// Who announces each address of a Service, as its `L2Announced` condition says (the node that
/// wrote it last). Parts that are not [`AnnouncedFrom`] sentences (not announced, other reasons)
/// say nothing about a holder and are skipped.
pub fn announced_from(svc: &Service) -> Vec<AnnouncedFrom> {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.type_ == L2_ANNOUNCED)
        .filter_map(|c| c.message.strip_prefix(L2_WHERE_PREFIX))
        .flat_map(|m| m.split("; ").filter_map(AnnouncedFrom::parse))
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
        let want = vec![
            conflict("198.18.0.201", "eth0"),
            conflict("fd00:18::201", "eth1"),
        ];
        let msg = AddressConflict::message(&want);
        assert_eq!(
            msg,
            "198.18.0.201 is in use by another host (MAC 02:00:c6:12:00:09) seen by node \
             flb-node1 on eth0; fd00:18::201 is in use by another host (MAC 02:00:c6:12:00:09) \
             seen by node flb-node1 on eth1"
        );
        assert_eq!(
            conflicts(&with_condition(ADDRESS_CONFLICT, msg.clone())),
            want
        );
        // Another reason with the same words is not a conflict report.
        assert!(conflicts(&with_condition("Announced", msg)).is_empty());
        assert!(AddressConflict::parse("announced from node flb-node1 on eth0").is_none());
    }

    #[test]
    fn announced_from_reads_back_what_the_announcer_writes() {
        let a = AnnouncedFrom {
            address: "198.18.0.201".parse().unwrap(),
            node: "flb-node2".into(),
            interfaces: vec!["eth0".into(), "eth1".into()],
        };
        let b = AnnouncedFrom {
            address: "fd00:18::201".parse().unwrap(),
            node: "flb-node3".into(),
            interfaces: vec!["all interfaces".into()],
        };
        let msg = format!(
            "{L2_WHERE_PREFIX}{}; fd00:18::202 not announced (no live speaker); {}",
            a.describe(),
            b.describe()
        );
        assert_eq!(
            msg,
            "layer2: 198.18.0.201 from node flb-node2 on eth0, eth1; fd00:18::202 not announced \
             (no live speaker); fd00:18::201 from node flb-node3 on all interfaces"
        );
        assert_eq!(announced_from(&with_condition("Announced", msg)), [a, b]);
        // Other messages name no holder.
        for other in [
            "layer2: 198.18.0.201 elected to node flb-node1, which cannot announce it: no link",
            "198.18.0.201 from node flb-node1 on eth0",
            "layer2: 198.18.0.201 from node  on eth0",
            "layer2: nonsense from node flb-node1 on eth0",
        ] {
            assert!(
                announced_from(&with_condition("Announced", other.into())).is_empty(),
                "{other}"
            );
        }
    }
}
