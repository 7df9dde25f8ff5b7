//! `BFDProfile`: Bidirectional Forwarding Detection timers (RFC 5880) for BGP peers.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConditionsStatus;

/// BFD settings a `BGPPeer` refers to by name. Unset fields take the defaults shown.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    doc = "A BFDProfile holds BFD timers that BGPPeers refer to by name.",
    status = "ConditionsStatus",
    shortname = "bfdp",
    category = "ferrolb",
    printcolumn(name = "Passive", type_ = "boolean", json_path = ".spec.passiveMode"),
    printcolumn(
        name = "Transmit",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Slowest rate, in milliseconds, at which we want to receive control packets (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Fastest rate, in milliseconds, at which we send control packets (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Packets that may be lost before the session is declared down (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Echo packet interval in milliseconds (default 50), when `echoMode` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Ask for echo mode (RFC 5880 §6.4). FerroLB does not originate echo packets; see the docs.
    #[serde(default)]
    pub echo_mode: bool,
    /// Wait for the peer to start BFD instead of starting it.
    #[serde(default)]
    pub passive_mode: bool,
    /// Lowest TTL accepted on incoming packets (single-hop BFD sends and expects 255; default 254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}

impl BFDProfileSpec {
    pub fn receive_ms(&self) -> u32 {
        self.receive_interval.unwrap_or(300)
    }
    pub fn transmit_ms(&self) -> u32 {
        self.transmit_interval.unwrap_or(300)
    }
    pub fn multiplier(&self) -> u8 {
        self.detect_multiplier.unwrap_or(3).clamp(2, 255) as u8
    }
    pub fn min_ttl(&self) -> u8 {
        self.minimum_ttl.unwrap_or(254).clamp(1, 254) as u8
    }
}
