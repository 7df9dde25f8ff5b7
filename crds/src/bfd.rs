//! `BFDProfile`: Bidirectional Forwarding Detection timers (RFC 5880) for BGP peers, the TTL
//! check and authentication of received packets.

use k8s_openapi::api::core::v1::Secret;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::status::ConditionsStatus;

/// The Secret type a BFD key Secret must have: the same as a BGPPeer's `passwordSecret`, as the
/// speakers watch only Secrets of this type.
pub const PASSWORD_SECRET_TYPE: &str = "kubernetes.io/basic-auth";

/// BFD settings a `BGPPeer` refers to by name. Unset fields take the defaults shown.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    plural = "bfdprofiles",
    namespaced,
    doc = "A BFDProfile holds BFD timers and authentication that BGPPeers refer to by name.",
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
        name = "Auth",
        type_ = "string",
        json_path = ".spec.authentication.type"
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
    /// Lowest TTL accepted on incoming packets. Unset: only 255, as RFC 5881 requires of
    /// single-hop BFD (a packet that crossed a router cannot pass). A value below 255 also
    /// accepts packets from hosts that many hops further away: set it only for a router that
    /// sends with a lower TTL, and then prefer `authentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
    /// Authenticate every control packet (RFC 5880 §6.7); packets without valid authentication
    /// are dropped. Unset: no authentication, so anyone on the link who can send packets with
    /// the router's address and TTL 255 can take the session down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<BfdAuthentication>,
}

/// BFD authentication (RFC 5880 §4.3, §4.4, §6.7). The router must use the same type, key ID
/// and key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BfdAuthentication {
    /// Algorithm. The meticulous variants advance the sequence number on every packet and
    /// refuse a repeated one, so a captured packet cannot be replayed.
    #[serde(rename = "type")]
    pub type_: BfdAuthType,
    /// Key ID sent in every packet; received packets must carry the same.
    #[serde(rename = "keyID")]
    #[schemars(range(min = 0, max = 255))]
    pub key_id: u32,
    /// Secret in FerroLB's namespace whose `password` key holds the key: 1-20 bytes for the
    /// SHA1 types, 1-16 for MD5.
    pub password_secret: BfdSecretRef,
}

/// RFC 5880 authentication types FerroLB implements (simple password is not offered: it sends
/// the key in clear).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BfdAuthType {
    /// Keyed MD5 (Auth Type 2).
    KeyedMd5,
    /// Meticulous Keyed MD5 (Auth Type 3).
    MeticulousKeyedMd5,
    /// Keyed SHA1 (Auth Type 4).
    KeyedSha1,
    /// Meticulous Keyed SHA1 (Auth Type 5).
    MeticulousKeyedSha1,
}

impl BfdAuthType {
    /// Longest key the algorithm carries (RFC 5880 §4.3, §4.4).
    pub fn max_key_len(self) -> usize {
        match self {
            BfdAuthType::KeyedMd5 | BfdAuthType::MeticulousKeyedMd5 => 16,
            BfdAuthType::KeyedSha1 | BfdAuthType::MeticulousKeyedSha1 => 20,
        }
    }
}

/// Why a Secret cannot hold a BFD key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BfdKeySecretError {
    #[error(
        "is of type {0}; FerroLB reads only {PASSWORD_SECRET_TYPE} Secrets: recreate it with that type"
    )]
    WrongType(String),
    #[error("has no 'password' key: put the BFD key under 'password'")]
    NoPassword,
    #[error("has an empty 'password'")]
    Empty,
    #[error("'password' is {len} bytes; {kind:?} takes 1-{max}")]
    TooLong {
        kind: BfdAuthType,
        len: usize,
        max: usize,
    },
}

/// The BFD key a Secret holds for `kind` (any bytes; the router must be given the same), or
/// why it holds none. Same Secret shape as a BGPPeer's `passwordSecret`.
pub fn bfd_key(secret: &Secret, kind: BfdAuthType) -> Result<Vec<u8>, BfdKeySecretError> {
    let ty = secret.type_.as_deref().unwrap_or("Opaque");
    if ty != PASSWORD_SECRET_TYPE {
        return Err(BfdKeySecretError::WrongType(ty.to_string()));
    }
    let key = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .ok_or(BfdKeySecretError::NoPassword)?;
    match key.0.len() {
        0 => Err(BfdKeySecretError::Empty),
        len if len > kind.max_key_len() => Err(BfdKeySecretError::TooLong {
            kind,
            len,
            max: kind.max_key_len(),
        }),
        _ => Ok(key.0.clone()),
    }
}

/// A Secret in FerroLB's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct BfdSecretRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
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
    /// The key `authentication` asks for, read from `secrets` (FerroLB's namespace), or why it
    /// cannot be had (for the speaker, which then does not start the profile's peers, and for
    /// validation). `Ok(None)`: no authentication.
    pub fn auth_key(&self, secrets: &[Secret]) -> Result<Option<Vec<u8>>, String> {
        let Some(a) = &self.authentication else {
            return Ok(None);
        };
        let name = &a.password_secret.name;
        if a.key_id > 255 {
            return Err(format!("authentication.keyID {} is not 0-255", a.key_id));
        }
        let secret = secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| {
                format!(
                    "authentication.passwordSecret {name} not found: create a Secret of type {PASSWORD_SECRET_TYPE} with the key under 'password'"
                )
            })?;
        bfd_key(secret, a.type_)
            .map(Some)
            .map_err(|e| format!("authentication.passwordSecret {name} {e}"))
    }

    /// Lowest TTL accepted: 255 unless `minimumTtl` says otherwise.
    pub fn min_ttl(&self) -> u8 {
        self.minimum_ttl.map_or(255, |t| t.clamp(1, 254) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(ty: &str, password: Option<&[u8]>) -> Secret {
        Secret {
            type_: Some(ty.into()),
            data: password.map(|p| [("password".to_string(), ByteString(p.to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn bfd_keys_come_from_basic_auth_secrets_of_the_right_length() {
        use BfdAuthType::*;
        let ok = secret(PASSWORD_SECRET_TYPE, Some(&[0xffu8; 20]));
        assert_eq!(bfd_key(&ok, KeyedSha1), Ok(vec![0xff; 20]));
        assert_eq!(bfd_key(&ok, MeticulousKeyedSha1), Ok(vec![0xff; 20]));
        assert!(matches!(
            bfd_key(&ok, KeyedMd5),
            Err(BfdKeySecretError::TooLong {
                len: 20,
                max: 16,
                ..
            })
        ));
        let long = secret(PASSWORD_SECRET_TYPE, Some(&[b'x'; 21]));
        assert!(bfd_key(&long, MeticulousKeyedSha1).is_err());
        assert_eq!(
            bfd_key(&secret(PASSWORD_SECRET_TYPE, Some(b"")), KeyedSha1),
            Err(BfdKeySecretError::Empty)
        );
        assert_eq!(
            bfd_key(&secret(PASSWORD_SECRET_TYPE, None), KeyedSha1),
            Err(BfdKeySecretError::NoPassword)
        );
        assert_eq!(
            bfd_key(&secret("Opaque", Some(b"k")), KeyedSha1),
            Err(BfdKeySecretError::WrongType("Opaque".into()))
        );
    }

    #[test]
    fn auth_key_names_the_secret_and_the_problem() {
        let mut spec = BFDProfileSpec::default();
        assert_eq!(spec.auth_key(&[]), Ok(None));
        spec.authentication = Some(BfdAuthentication {
            type_: BfdAuthType::KeyedSha1,
            key_id: 1,
            password_secret: BfdSecretRef {
                name: "bfd-key".into(),
            },
        });
        let err = spec.auth_key(&[]).unwrap_err();
        assert!(err.contains("bfd-key not found"), "{err}");
        let mut s = secret(PASSWORD_SECRET_TYPE, Some(b"k3y"));
        s.metadata.name = Some("bfd-key".into());
        assert_eq!(
            spec.auth_key(std::slice::from_ref(&s)),
            Ok(Some(b"k3y".to_vec()))
        );
        s.data = None;
        let err = spec.auth_key(&[s]).unwrap_err();
        assert!(err.contains("bfd-key has no 'password'"), "{err}");
    }

    #[test]
    fn min_ttl_defaults_to_255() {
        let mut s = BFDProfileSpec::default();
        assert_eq!(s.min_ttl(), 255);
        s.minimum_ttl = Some(254);
        assert_eq!(s.min_ttl(), 254);
        s.minimum_ttl = Some(1);
        assert_eq!(s.min_ttl(), 1);
    }

    #[test]
    fn authentication_round_trips_with_its_api_names() {
        let spec: BFDProfileSpec = serde_json::from_value(serde_json::json!({
            "authentication": {
                "type": "meticulous-keyed-sha1",
                "keyID": 7,
                "passwordSecret": {"name": "bfd-key"}
            }
        }))
        .unwrap();
        let a = spec.authentication.as_ref().unwrap();
        assert_eq!(
            (a.type_, a.key_id, a.password_secret.name.as_str()),
            (BfdAuthType::MeticulousKeyedSha1, 7, "bfd-key")
        );
        for (t, name) in [
            (BfdAuthType::KeyedMd5, "keyed-md5"),
            (BfdAuthType::MeticulousKeyedMd5, "meticulous-keyed-md5"),
            (BfdAuthType::KeyedSha1, "keyed-sha1"),
            (BfdAuthType::MeticulousKeyedSha1, "meticulous-keyed-sha1"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), name);
        }
    }
}
