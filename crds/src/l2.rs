//! `L2Advertisement`: announce pool addresses on the local segment with ARP / NDP.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConditionsStatus;

/// Announces addresses of the selected pools from one elected node per address, by answering
/// ARP (IPv4) and Neighbor Solicitations (IPv6).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    plural = "l2advertisements",
    namespaced,
    doc = "An L2Advertisement announces pool addresses on a layer-2 segment (ARP/NDP) from one elected node per address.",
    status = "ConditionsStatus",
    shortname = "l2adv",
    category = "ferrolb",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(
        name = "Pool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors",
        priority = 1
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = 1
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools to announce, by name. With neither this nor `ipAddressPoolSelectors`, every pool.
    #[serde(
        default,
        rename = "ipAddressPools",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_address_pools: Vec<String>,
    /// Pools to announce, by label.
    #[serde(
        default,
        rename = "ipAddressPoolSelectors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on (`eth0`). Empty: every suitable interface (up, with ARP, not
    /// loopback). Each a Linux interface name: 1-15 bytes, no '/', ':' or whitespace, not '.'
    /// or '..' (`eth0:1` is an address label on `eth0`: write `eth0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("items" = interface_name_schema()))]
    pub interfaces: Vec<String>,
    /// Keep each address on the node announcing it for as long as that node stays live and
    /// eligible: a node that returns (excluded, drained or restarted, then back) does not take
    /// its addresses back, since every hand-over breaks the connections kube-proxy tracked on the
    /// old node. Default false: addresses follow the election, as in MetalLB, so they spread
    /// evenly again and where each one goes is computed from the objects alone. Setting it back
    /// to false rebalances. An address is sticky if any L2Advertisement covering its pool says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sticky: bool,
}

/// Schema of one interface name: one Linux would accept for a link (`dev_valid_name`: at most
/// IFNAMSIZ - 1 = 15 bytes, no '/', ':' or whitespace, not '.' or '..'), checked by CEL so the
/// error names the value. Kept in step with [`interface_name_problem`]. (CEL unescapes `\\` in
/// the string literal, so RE2 sees `\s`.)
fn interface_name_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string",
        // Generous: a bound for CEL's cost estimate. The rule says 15 bytes, and names the value
        // (a failed maxLength would also hide every CEL verdict on the other names).
        "maxLength": 64,
        "x-kubernetes-validations": [{
            "rule": r"size(self) >= 1 && bytes(self).size() <= 15 && !self.matches('[/:\\s\\x0b]') && self != '.' && self != '..'",
            "messageExpression": r#""'" + self + "' is not a Linux interface name (eth0): 1-15 bytes, no '/', ':' or whitespace, not '.' or '..' (for an address label such as eth0:1, write eth0)""#,
            "reason": "FieldValueInvalid"
        }]
    })
}

/// Why `name` cannot be a Linux interface name, if it cannot (the kernel's `dev_valid_name`).
pub fn interface_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains(':') {
        Some("contains ':' (for an address label such as eth0:1, write the interface, eth0)")
    } else if name.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b) {
        Some("contains whitespace")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in [
            "eth0",
            "enp0s31f6",
            "br-lan.100",
            "a",
            "x23456789012345",
            "bond0.10",
            "wlan@x",
        ] {
            assert_eq!(interface_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc",
            "eth0:1",
            "eth 0",
            "eth0\t",
            "x234567890123456",
            "a/b",
            "éééééééé", // 8 characters, 16 bytes
        ] {
            assert!(interface_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
