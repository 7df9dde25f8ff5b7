//! `BGPPeer`: a router the speakers open BGP sessions to.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::schema::{Duration, IpAddress, RouterId};

fn default_port() -> u16 {
    179
}

/// A BGP router that speakers on the selected nodes peer with.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    plural = "bgppeers",
    namespaced,
    doc = "A BGPPeer is a router the speakers on the selected nodes open BGP sessions to.",
    status = "BGPPeerStatus",
    shortname = "bgpp",
    category = "ferrolb",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "string", json_path = ".spec.peerASN"),
    printcolumn(name = "My ASN", type_ = "string", json_path = ".spec.myASN"),
    printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
    printcolumn(
        name = "Multi Hop",
        type_ = "boolean",
        json_path = ".spec.ebgpMultiHop",
        priority = 1
    ),
    printcolumn(
        name = "Established",
        type_ = "string",
        json_path = ".status.establishedSummary"
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
#[x_kube(
    validation = Rule::new("has(self.peerASN) != has(self.dynamicASN)").message("set exactly one of peerASN and dynamicASN"),
    validation = Rule::new("!(has(self.password) && has(self.passwordSecret))").message("set password or passwordSecret, not both"),
    validation = Rule::new("!has(self.holdTime) || duration(self.holdTime) == duration('0s') || (duration(self.holdTime) >= duration('3s') && duration(self.holdTime) <= duration('65535s'))").message("holdTime must be 0s (no keepalives) or between 3s and 65535s (RFC 4271)"),
    validation = Rule::new("!has(self.keepaliveTime) || duration(self.keepaliveTime) < duration(has(self.holdTime) ? self.holdTime : '90s') || (has(self.holdTime) && duration(self.holdTime) == duration('0s'))").message("keepaliveTime must be shorter than holdTime (default 90s)"),
    validation = Rule::new("!has(self.connectTime) || (duration(self.connectTime) >= duration('100ms') && duration(self.connectTime) <= duration('65535s'))").message("connectTime must be between 100ms and 65535s"),
    validation = Rule::new("!has(self.sourceAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()").message("sourceAddress and peerAddress must be of one family"),
    validation = Rule::new("!self.ebgpMultiHop || !((has(self.peerASN) && self.peerASN == self.myASN) || (has(self.dynamicASN) && self.dynamicASN == 'internal'))").message("ebgpMultiHop applies to eBGP only (myASN differs from the peer's ASN)"),
)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// Our AS number (1-4294967295; 4-octet ASNs are supported).
    #[serde(rename = "myASN")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub my_asn: u32,
    /// The peer's AS number. Set this or `dynamicASN`.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub peer_asn: Option<u32>,
    /// Accept whatever ASN the peer announces, provided it is our own (`internal`) or not
    /// (`external`). Set this or `peerASN`.
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsn>,
    /// The router's address.
    pub peer_address: IpAddress,
    /// Local address to connect from (default: chosen by the node's routing table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddress>,
    /// TCP port of the peer.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub peer_port: u16,
    /// Proposed hold time (default 90s; 0s disables keepalives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<Duration>,
    /// Keepalive interval (default: a third of the negotiated hold time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<Duration>,
    /// How long a TCP connection attempt may take, and the first reconnect delay (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<Duration>,
    /// BGP router ID (default: the node's IPv4 address).
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<RouterId>,
    /// Nodes that peer with this router. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 password (RFC 2385), in clear text. Prefer `passwordSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub password: Option<String>,
    /// A `kubernetes.io/basic-auth` Secret in FerroLB's namespace whose `password` key is the TCP
    /// MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretRef>,
    /// Name of a `BFDProfile`: run BFD with the peer and drop the session when BFD goes down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Announce graceful restart (RFC 4724) so the router keeps our routes while a speaker restarts.
    #[serde(default)]
    pub enable_graceful_restart: bool,
    /// The eBGP peer is not directly connected: send with TTL 255 instead of 1.
    #[serde(default)]
    pub ebgp_multi_hop: bool,
}

impl BGPPeerSpec {
    /// A peer with a fixed ASN and every optional field at the API's default (what an object
    /// with only `myASN`, `peerASN` and `peerAddress` deserializes to).
    pub fn new(my_asn: u32, peer_asn: u32, peer_address: &str) -> BGPPeerSpec {
        BGPPeerSpec {
            my_asn,
            peer_asn: Some(peer_asn),
            dynamic_asn: None,
            peer_address: IpAddress::from(peer_address),
            source_address: None,
            peer_port: default_port(),
            hold_time: None,
            keepalive_time: None,
            connect_time: None,
            router_id: None,
            node_selectors: vec![],
            password: None,
            password_secret: None,
            bfd_profile: None,
            enable_graceful_restart: false,
            ebgp_multi_hop: false,
        }
    }
}

/// How to accept a peer's ASN when `peerASN` is not given.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    Internal,
    External,
}

/// Reference to a Secret in FerroLB's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SecretRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Secret namespace (default: FerroLB's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Observed state of a peer: validity, and each speaker's session.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Sessions per node, as reported by the speakers (each speaker owns its entry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub sessions: Vec<BGPSessionStatus>,
    /// `established/total` sessions, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_summary: Option<String>,
}

/// One speaker's session with the peer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BGPSessionStatus {
    /// Node of the speaker.
    pub node: String,
    /// BGP FSM state (Idle, Connect, Active, OpenSent, OpenConfirm, Established).
    pub state: String,
    /// BFD session state, when a BFD profile is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_state: Option<String>,
    /// Prefixes advertised to the peer.
    #[serde(default)]
    pub prefixes_sent: i64,
    /// The last error seen on the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
