//! `BGPAdvertisement`: which pool addresses are announced to which BGP peers, and how.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::schema::{Cidr, CommunityRef};
use crate::status::ConditionsStatus;

/// Announces addresses of the selected pools over BGP from the selected nodes.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    plural = "bgpadvertisements",
    namespaced,
    doc = "A BGPAdvertisement announces pool addresses to BGP peers from the selected nodes.",
    status = "ConditionsStatus",
    shortname = "bgpadv",
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
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
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
pub struct BGPAdvertisementSpec {
    /// Prefix length announced for each IPv4 address (32: the address itself; shorter
    /// aggregates addresses into one route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub aggregation_length: Option<i32>,
    /// Prefix length announced for each IPv6 address (default 128).
    #[serde(
        rename = "aggregationLengthV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 128))]
    pub aggregation_length_v6: Option<i32>,
    /// LOCAL_PREF attribute, sent to iBGP peers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295u32))]
    pub local_pref: Option<u32>,
    /// Communities to attach: values (`65000:100`, `large:65000:1:2`) or names of aliases from
    /// `Community` objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub communities: Vec<CommunityRef>,
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
    /// Nodes that announce. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// `BGPPeer` names to announce to. Empty: every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Also announce Service cluster IPs, as Calico's `serviceClusterIPs` does: every selected
    /// node announces each of these ranges (ECMP; kube-proxy forwards), and the cluster IP of a
    /// Service with `externalTrafficPolicy: Local` is also announced as a host route from the
    /// nodes with a serving endpoint. An advertisement that sets this or `serviceExternalIPs`
    /// announces pools only if it names or selects them.
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(length(max = 16))]
    pub service_cluster_ips: Vec<Cidr>,
    /// Also announce Service `spec.externalIPs` in these ranges, as Calico's
    /// `serviceExternalIPs` does: every selected node announces each range, and an external IP
    /// of a Service with `externalTrafficPolicy: Local` is also announced as a host route from
    /// the nodes with a serving endpoint.
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(length(max = 16))]
    pub service_external_ips: Vec<Cidr>,
}

impl BGPAdvertisementSpec {
    /// Whether naming no pool means every pool (true unless Service ranges are announced).
    pub fn all_pools_by_default(&self) -> bool {
        self.service_cluster_ips.is_empty() && self.service_external_ips.is_empty()
    }

    pub fn aggregation_v4(&self) -> u8 {
        self.aggregation_length.map_or(32, |v| v.clamp(0, 32) as u8)
    }
    pub fn aggregation_v6(&self) -> u8 {
        self.aggregation_length_v6
            .map_or(128, |v| v.clamp(0, 128) as u8)
    }
}
