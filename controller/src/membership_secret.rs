//! The speakers' membership key: the controller makes sure the Secret
//! `ferrolb-memberlist` (entry `keys`) exists in FerroLB's namespace, so an
//! install needs no manual step. It creates it with one random 32-byte key
//! when it is missing and never changes an existing one (operators rotate
//! keys by editing it; see docs/install.md).
//!
//! Every replica does it at start, leader or not: creating is idempotent
//! (a concurrent create loses with 409 and that is fine), and speakers wait
//! for the Secret to be mounted before they can start.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use rand::TryRng;
use rand::rngs::SysRng;

/// Must match the speaker (`membership::keys::SECRET_NAME` / `SECRET_KEY`)
/// and the DaemonSet's volume.
pub const SECRET_NAME: &str = "ferrolb-memberlist";
pub const SECRET_KEY: &str = "keys";
/// Bytes of a generated key (HMAC-SHA256: 32 is the hash size).
pub const KEY_LEN: usize = 32;
/// Retry backoff when the API server refuses or is away.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The Secret to create: one fresh key, as the speakers' key file wants it
/// (one base64 key per line).
pub fn new_secret(namespace: &str, key: &[u8; KEY_LEN]) -> Secret {
    let mut labels = BTreeMap::new();
    labels.insert("app.kubernetes.io/name".into(), "ferrolb".into());
    labels.insert("app.kubernetes.io/component".into(), "speaker".into());
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "ferrolb.io/description".into(),
                "Keys authenticating the speakers' membership datagrams: one base64 key per \
                 line, the first signs, all are accepted. Created by ferrolb-controller if \
                 missing, never changed by it."
                    .into(),
            )])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            SECRET_KEY.into(),
            format!("{}\n", STANDARD.encode(key)),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// What [`ensure_once`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Existed,
    Created,
}

/// Creates the Secret if it does not exist; never touches an existing one.
pub async fn ensure_once(client: &Client, namespace: &str) -> Result<Outcome, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    // `get` on this one name only (RBAC resourceNames): no list, no watch.
    if api.get_opt(SECRET_NAME).await?.is_some() {
        return Ok(Outcome::Existed);
    }
    let mut key = [0u8; KEY_LEN];
    SysRng
        .try_fill_bytes(&mut key)
        .map_err(|e| kube::Error::Service(format!("no randomness for the key: {e}").into()))?;
    match api
        .create(&PostParams::default(), &new_secret(namespace, &key))
        .await
    {
        Ok(_) => Ok(Outcome::Created),
        // Another replica was quicker: its key stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Existed),
        Err(e) => Err(e),
    }
}

/// Ensures the Secret, retrying with a capped backoff until it exists. Runs
/// in the background: allocation does not depend on it, and the speakers
/// say what they miss if it never appears.
pub async fn ensure(client: Client, namespace: String) {
    let mut backoff = RETRY_FIRST;
    loop {
        match ensure_once(&client, &namespace).await {
            Ok(Outcome::Existed) => {
                tracing::info!(
                    secret = SECRET_NAME,
                    namespace,
                    "membership key Secret exists"
                );
                return;
            }
            Ok(Outcome::Created) => {
                tracing::info!(
                    secret = SECRET_NAME,
                    namespace,
                    "created the membership key Secret with a fresh random key"
                );
                return;
            }
            Err(err) => {
                tracing::error!(
                    secret = SECRET_NAME,
                    namespace,
                    error = %err,
                    retry_in_s = backoff.as_secs(),
                    "cannot ensure the membership key Secret: speakers will not start without it \
                     (the controller needs get and create on this Secret, see deploy/rbac)"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_holds_one_base64_key_line() {
        let s = new_secret("ferrolb-system", &[0xab; KEY_LEN]);
        assert_eq!(s.metadata.name.as_deref(), Some(SECRET_NAME));
        assert_eq!(s.metadata.namespace.as_deref(), Some("ferrolb-system"));
        let data = s.string_data.expect("string data");
        let line = data[SECRET_KEY].trim_end_matches('\n');
        assert!(!line.contains('\n'));
        assert_eq!(STANDARD.decode(line).expect("base64"), vec![0xab; KEY_LEN]);
    }
}
