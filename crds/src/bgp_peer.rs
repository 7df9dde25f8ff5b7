//! `BGPPeer`: a router the speakers open BGP sessions to.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
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
    printcolumn(
        name = "Interface",
        type_ = "string",
        json_path = ".spec.interface",
        priority = 1
    ),
    printcolumn(
        name = "Passive",
        type_ = "boolean",
        json_path = ".spec.passive",
        priority = 1
    ),
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
    validation = Rule::new("has(self.peerAddress) != has(self.interface)").message("set exactly one of peerAddress and interface (unnumbered peering)"),
    validation = Rule::new("!has(self.interface) || (!has(self.sourceAddress) && !self.ebgpMultiHop)").message("an interface peer is directly connected over IPv6 link-local: sourceAddress and ebgpMultiHop do not apply"),
    validation = Rule::new("!has(self.listenPort) || self.passive").message("listenPort applies to passive peers only"),
    validation = Rule::new("!has(self.interface) || !has(self.bfdProfile)").message("bfdProfile is not supported on interface peers"),
    validation = Rule::new("!has(self.interface) || !self.passive || (!has(self.password) && !has(self.passwordSecret))").message("a passive interface peer cannot have a password: its link-local address, which the key is set for, is not known in advance"),
    validation = Rule::new("!has(self.sourceAddress) || !has(self.peerAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()").message("sourceAddress and peerAddress must be of one family"),
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
    /// The router's address. Set this or `interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<IpAddress>,
    /// Unnumbered peering (RFC 8950): the node's interface that leads to the router, instead of
    /// `peerAddress`. The speaker peers with the IPv6 link-local address the router sends its
    /// router advertisements from, sends router advertisements itself (router lifetime 0) so the
    /// router learns its link-local address, and carries IPv4 routes with IPv6 next hops when
    /// the router announces the extended next hop capability for IPv4 unicast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15), regex(pattern = r"^[A-Za-z0-9._@-]+$"))]
    pub interface: Option<String>,
    /// Never connect: listen on `listenPort` (on the node's addresses) and accept the router's
    /// connection from `peerAddress` (or from a link-local address on `interface`) only. The
    /// speaker needs CAP_NET_BIND_SERVICE to listen on a port below 1024.
    #[serde(default)]
    pub passive: bool,
    /// The TCP port a passive speaker listens on (default 179).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub listen_port: Option<u16>,
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
    /// MD5 password (1-80 bytes of UTF-8). The peer is not Valid, and no session starts, while
    /// the Secret is missing or unusable.
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
            peer_address: Some(IpAddress::from(peer_address)),
            interface: None,
            passive: false,
            listen_port: None,
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

impl BGPPeerSpec {
    /// The port a passive speaker listens on.
    pub fn listen_port(&self) -> u16 {
        self.listen_port.unwrap_or(default_port())
    }

    /// Where the peer is, for people: its address, or `interface NAME` when unnumbered.
    pub fn address_label(&self) -> String {
        match (&self.peer_address, &self.interface) {
            (Some(a), _) => a.to_string(),
            (None, Some(i)) => format!("interface {i}"),
            (None, None) => String::new(),
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
    /// Secret namespace: FerroLB's namespace, which is also the default. FerroLB reads Secrets
    /// only there, so a peer naming another namespace is not Valid (MetalLB configurations say
    /// `metallb-system` here: write FerroLB's namespace, or leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// The Secret type a `passwordSecret` must have (as in MetalLB).
pub const PASSWORD_SECRET_TYPE: &str = "kubernetes.io/basic-auth";
/// Field selector for the only Secrets that can be a `passwordSecret`: watchers use it so they
/// do not receive the other Secrets of the namespace.
pub const PASSWORD_SECRET_SELECTOR: &str = "type=kubernetes.io/basic-auth";
/// Longest TCP MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_PASSWORD_BYTES: usize = 80;

/// Why a Secret cannot serve as a `passwordSecret`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordSecretError {
    #[error(
        "is of type {0}; FerroLB reads only {PASSWORD_SECRET_TYPE} Secrets (as MetalLB): recreate it with that type"
    )]
    WrongType(String),
    #[error("has no 'password' key: put the TCP MD5 password under 'password'")]
    NoPassword,
    #[error("has an empty 'password': an empty TCP MD5 key would mean no authentication")]
    Empty,
    #[error("'password' is not UTF-8 text")]
    NotUtf8,
    #[error("'password' is longer than {MAX_PASSWORD_BYTES} bytes, the TCP MD5 key limit")]
    TooLong,
}

/// The TCP MD5 password a `passwordSecret` holds, or why it holds none.
pub fn secret_password(secret: &Secret) -> Result<String, PasswordSecretError> {
    let ty = secret.type_.as_deref().unwrap_or("Opaque");
    if ty != PASSWORD_SECRET_TYPE {
        return Err(PasswordSecretError::WrongType(ty.to_string()));
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .ok_or(PasswordSecretError::NoPassword)?;
    if bytes.0.is_empty() {
        return Err(PasswordSecretError::Empty);
    }
    if bytes.0.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordSecretError::TooLong);
    }
    String::from_utf8(bytes.0.clone()).map_err(|_| PasswordSecretError::NotUtf8)
}

/// `secret` with everything but what [`secret_password`] needs to give the same verdict removed,
/// and the password itself replaced: for a cache that must explain a bad Secret without holding
/// anyone's password (the controller's). Only that verdict survives: other checks (a BFD key's
/// length, say) must not run on a redacted Secret.
pub fn redact_secret(secret: &mut Secret) {
    let verdict = secret_password(secret);
    let meta = &mut secret.metadata;
    meta.annotations = None; // kubectl's last-applied copy holds the data
    meta.managed_fields = None;
    meta.labels = None;
    secret.string_data = None;
    secret.immutable = None;
    let placeholder: Option<Vec<u8>> = match verdict {
        Ok(_) => Some(b"redacted".to_vec()),
        Err(PasswordSecretError::WrongType(_) | PasswordSecretError::NoPassword) => None,
        Err(PasswordSecretError::Empty) => Some(Vec::new()),
        Err(PasswordSecretError::NotUtf8) => Some(vec![0xff]),
        Err(PasswordSecretError::TooLong) => Some(vec![b'x'; MAX_PASSWORD_BYTES + 1]),
    };
    secret.data = placeholder.map(|p| [("password".to_string(), ByteString(p))].into());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(ty: Option<&str>, password: Option<&[u8]>) -> Secret {
        let mut s = Secret {
            type_: ty.map(String::from),
            data: password.map(|p| {
                [
                    ("password".to_string(), ByteString(p.to_vec())),
                    ("username".to_string(), ByteString(b"u".to_vec())),
                ]
                .into()
            }),
            ..Default::default()
        };
        s.metadata.name = Some("md5".into());
        s.metadata.annotations = Some(
            [(
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{\"stringData\":{\"password\":\"s3cret\"}}".to_string(),
            )]
            .into(),
        );
        s
    }

    #[test]
    fn password_secrets_are_checked_and_redaction_keeps_the_verdict() {
        let basic = Some(PASSWORD_SECRET_TYPE);
        let cases = [
            (secret(basic, Some(b"s3cret")), Ok("s3cret".to_string())),
            (
                secret(None, Some(b"s3cret")),
                Err(PasswordSecretError::WrongType("Opaque".into())),
            ),
            (
                secret(Some("Opaque"), Some(b"s3cret")),
                Err(PasswordSecretError::WrongType("Opaque".into())),
            ),
            (secret(basic, None), Err(PasswordSecretError::NoPassword)),
            (secret(basic, Some(b"")), Err(PasswordSecretError::Empty)),
            (
                secret(basic, Some(&[0xc3, 0x28])),
                Err(PasswordSecretError::NotUtf8),
            ),
            (
                secret(basic, Some(&[b'a'; 81])),
                Err(PasswordSecretError::TooLong),
            ),
            (secret(basic, Some(&[b'a'; 80])), Ok("a".repeat(80))),
        ];
        for (mut s, want) in cases {
            assert_eq!(secret_password(&s), want);
            redact_secret(&mut s);
            let after = secret_password(&s);
            assert_eq!(after.is_ok(), want.is_ok(), "{want:?}");
            if let Err(e) = want {
                assert_eq!(after, Err(e));
            }
            let data = s.data.clone().unwrap_or_default();
            assert!(data.keys().all(|k| k == "password"), "{data:?}");
            assert!(
                data.values()
                    .all(|v| v.0 != b"s3cret" && !v.0.starts_with(b"aaaa")),
                "{data:?}"
            );
            assert!(s.metadata.annotations.is_none());
            assert_eq!(s.metadata.name.as_deref(), Some("md5"));
        }
    }
}
