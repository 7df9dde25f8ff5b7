//! `IPAddressPool`: the addresses FerroLB may hand out, and which Services may take them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::schema::AddressBlock;

fn default_true() -> bool {
    true
}

/// A pool of external IP addresses for `type: LoadBalancer` Services.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    plural = "ipaddresspools",
    namespaced,
    doc = "An IPAddressPool is a set of external addresses FerroLB allocates to LoadBalancer Services.",
    status = "IPAddressPoolStatus",
    shortname = "ippool",
    category = "ferrolb",
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Assigned IPv4",
        type_ = "integer",
        json_path = ".status.assignedIPv4"
    ),
    printcolumn(
        name = "Available IPv4",
        type_ = "integer",
        json_path = ".status.availableIPv4"
    ),
    printcolumn(
        name = "Assigned IPv6",
        type_ = "integer",
        json_path = ".status.assignedIPv6"
    ),
    printcolumn(
        name = "Available IPv6",
        type_ = "integer",
        json_path = ".status.availableIPv6"
    ),
    printcolumn(
        name = "In Conflict",
        type_ = "integer",
        json_path = ".status.addressesInConflict",
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
pub struct IPAddressPoolSpec {
    /// Address blocks of the pool: CIDRs (`198.18.10.0/24`, `fd00:18:10::/120`) or inclusive
    /// ranges (`198.18.10.5-198.18.10.9`), IPv4 and IPv6 in any mix. Blocks must not overlap,
    /// here or in another pool.
    #[schemars(length(min = 1, max = 256))]
    pub addresses: Vec<AddressBlock>,
    /// Whether Services that do not name a pool may get addresses from this one.
    #[serde(default = "default_true")]
    pub auto_assign: bool,
    /// Skip addresses ending in .0 and .255, which some old client stacks mistake for
    /// network/broadcast addresses.
    #[serde(default, rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,
    /// FerroLB extension (not in MetalLB): never hand out automatically an address a speaker
    /// reported in use by another host (L2 conflict detection), and move a Service that got
    /// such an address automatically to another one. Addresses a Service requested stay. The
    /// conflicts are remembered in `status.conflicts` for an hour after last seen.
    #[serde(default, rename = "avoidConflictingIPs")]
    pub avoid_conflicting_ips: bool,
    /// Restrict the pool to some Services, and rank it among the pools they may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which Services a pool serves first, and how it ranks against other pools.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Rank among pools that match a Service: lower wins; 0 (or unset) ranks after every
    /// positive priority. Ties break by pool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub priority: Option<i32>,
    /// Namespaces whose Services this pool serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Label selectors of namespaces whose Services this pool serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Label selectors of Services this pool serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Observed state of a pool, written by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses allocated to Services.
    #[serde(rename = "assignedIPv4", default)]
    pub assigned_ipv4: i64,
    /// IPv6 addresses allocated to Services.
    #[serde(rename = "assignedIPv6", default)]
    pub assigned_ipv6: i64,
    /// IPv4 addresses still free.
    #[serde(rename = "availableIPv4", default)]
    pub available_ipv4: i64,
    /// IPv6 addresses still free (saturates at 9223372036854775807 for pools of /65 and larger).
    #[serde(rename = "availableIPv6", default)]
    pub available_ipv6: i64,
    /// Addresses of the pool reported in use by another host and avoided
    /// (`avoidConflictingIPs`).
    #[serde(rename = "addressesInConflict", default)]
    pub addresses_in_conflict: i64,
    /// The conflicts the pool avoids (`avoidConflictingIPs`), by address; written by the
    /// controller and read back when it takes the lead. Always written, empty included, so a
    /// merge patch clears it.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub conflicts: Vec<PoolConflict>,
    /// `Valid`: whether the pool is in use (False names what to fix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// An address of the pool some host that is not a FerroLB node answered for.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolConflict {
    pub address: String,
    /// The other host's MAC, as the speaker reported it.
    pub mac: String,
    /// The node that saw it, and on which interface.
    pub node: String,
    pub interface: String,
    /// Services (`namespace/name`) that held the address when it was reported.
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub services: Vec<String>,
    pub first_seen: Time,
    /// Refreshed while a Service holding the address reports it; the entry expires an hour
    /// later.
    pub last_seen: Time,
}
