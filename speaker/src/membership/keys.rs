//! The shared membership keys: parsing the key file, and noticing when it
//! changes.
//!
//! The file holds one key per line, base64 (standard alphabet, `base64 -w0`),
//! at least [`MIN_KEY_LEN`] bytes once decoded; empty lines and `#` comments
//! are skipped. The first key signs what we send; every key is accepted on
//! receipt, so a rotation is: add the new key as a second line everywhere,
//! wait until every speaker has it, move it first, wait, remove the old one.
//! In a cluster the file is the `keys` entry of the Secret
//! [`SECRET_NAME`], mounted read-only; the kubelet updates a mounted Secret in
//! place, and the driver re-reads the file every [`RELOAD_EVERY`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Shortest key accepted: HMAC-SHA256 is only as strong as its key.
pub const MIN_KEY_LEN: usize = 32;
/// At most this many keys at once (two during a rotation; a few spare).
pub const MAX_KEYS: usize = 8;
/// How often the driver re-reads the key file.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// Where the speaker looks for the keys by default (the Secret's mount).
pub const DEFAULT_KEY_FILE: &str = "/etc/ferrolb/memberlist/keys";
/// The Secret (in FerroLB's namespace) that holds the keys, entry `keys`.
pub const SECRET_NAME: &str = "ferrolb-memberlist";
pub const SECRET_KEY: &str = "keys";

/// What an operator runs to create the Secret by hand (the controller
/// normally does it at start).
pub fn create_command(namespace: &str) -> String {
    format!(
        "kubectl -n {namespace} create secret generic {SECRET_NAME} \
         --from-literal={SECRET_KEY}=\"$(head -c 32 /dev/urandom | base64 -w0)\""
    )
}

/// Names a key on the wire: the first bytes of SHA-256 of the key, so the
/// receiver picks the right key without trying each, and an operator can
/// tell which key a speaker signs with from its log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KeyId::LEN]);

impl KeyId {
    pub const LEN: usize = 4;

    fn of(key: &[u8]) -> KeyId {
        let digest = Sha256::digest(key);
        let mut id = [0; KeyId::LEN];
        id.copy_from_slice(&digest[..KeyId::LEN]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub type HmacSha256 = Hmac<Sha256>;

/// One key, with its HMAC state already keyed (cloning it per datagram
/// saves hashing the key each time).
#[derive(Clone)]
pub struct Key {
    pub id: KeyId,
    pub mac: HmacSha256,
}

/// The keys in use: the first signs, all verify. Never empty.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl fmt::Debug for KeyRing {
    // Key ids only: the keys themselves never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.signing().id)
            .field("accepted", &self.ids())
            .finish()
    }
}

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no key in the file (one base64 key per line expected)")]
    Empty,
    #[error("line {line}: not base64 ({why}); write each key on one line (`base64 -w0`)")]
    NotBase64 { line: usize, why: String },
    #[error("line {line}: key is {len} bytes, at least {MIN_KEY_LEN} are needed")]
    TooShort { line: usize, len: usize },
    #[error("line {line}: the same key appears twice (id {id})")]
    Duplicate { line: usize, id: KeyId },
    #[error("more than {MAX_KEYS} keys")]
    TooMany,
}

impl KeyRing {
    /// Builds a ring from raw keys, first one signing.
    pub fn new<K: AsRef<[u8]>>(keys: &[K]) -> Result<KeyRing, KeyError> {
        let mut ring = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
            let line = i + 1;
            if key.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort {
                    line,
                    len: key.len(),
                });
            }
            let id = KeyId::of(key);
            if ring.iter().any(|k: &Key| k.id == id) {
                return Err(KeyError::Duplicate { line, id });
            }
            // HMAC takes keys of any length; this cannot fail.
            let Ok(mac) = HmacSha256::new_from_slice(key) else {
                return Err(KeyError::TooShort {
                    line,
                    len: key.len(),
                });
            };
            ring.push(Key { id, mac });
        }
        if ring.is_empty() {
            return Err(KeyError::Empty);
        }
        if ring.len() > MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        Ok(KeyRing { keys: ring })
    }

    /// Parses the key file's text.
    pub fn parse(text: &str) -> Result<KeyRing, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = STANDARD.decode(line).map_err(|e| KeyError::NotBase64 {
                line: line_no,
                why: e.to_string(),
            })?;
            if key.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort {
                    line: line_no,
                    len: key.len(),
                });
            }
            if keys.len() == MAX_KEYS {
                return Err(KeyError::TooMany);
            }
            keys.push((line_no, key));
        }
        let raw: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_slice()).collect();
        // Report file line numbers rather than key positions.
        KeyRing::new(raw.as_slice()).map_err(|e| match e {
            KeyError::Duplicate { line, id } => KeyError::Duplicate {
                line: keys[line - 1].0,
                id,
            },
            other => other,
        })
    }

    /// The key we sign with.
    pub fn signing(&self) -> &Key {
        &self.keys[0]
    }

    /// The accepted key with this id.
    pub fn get(&self, id: KeyId) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Ids of every accepted key, signing key first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }
}

/// The key file, re-read periodically.
#[derive(Clone)]
pub struct KeyFile {
    path: PathBuf,
    /// Last text read, to tell a change from a re-read.
    text: Option<String>,
    /// Last problem reported, so a persistent one is logged once.
    problem: Option<String>,
}

impl fmt::Debug for KeyFile {
    // The path only: the text holds the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile").field("path", &self.path).finish()
    }
}

/// What a re-read found.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Changed(KeyRing),
    /// The file cannot be read or parsed: keep the keys in use. Reported
    /// once per distinct problem.
    Failed(String),
}

impl KeyFile {
    /// Reads the file for the first time: the speaker refuses to start
    /// without a usable key.
    pub fn open(path: &Path, namespace: &str) -> anyhow::Result<(KeyFile, KeyRing)> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            anyhow::anyhow!(
                "cannot read the membership key file {}: {err}. The speakers authenticate \
                 their membership datagrams with a shared key from the Secret {SECRET_NAME} \
                 (entry `{SECRET_KEY}`) in namespace {namespace}, mounted at {}. The controller \
                 creates it when it starts; to create it by hand: {}. To run without \
                 authentication (anyone on the node network can then forge membership), pass \
                 --insecure-membership",
                path.display(),
                Path::new(DEFAULT_KEY_FILE)
                    .parent()
                    .map_or_else(String::new, |p| p.display().to_string()),
                create_command(namespace)
            )
        })?;
        let ring = KeyRing::parse(&text).map_err(|err| {
            anyhow::anyhow!(
                "membership key file {}: {err}. Each line must hold one base64 key of at \
                 least {MIN_KEY_LEN} bytes, e.g. from `head -c 32 /dev/urandom | base64 -w0`",
                path.display()
            )
        })?;
        let file = KeyFile {
            path: path.to_owned(),
            text: Some(text),
            problem: None,
        };
        Ok((file, ring))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file.
    pub fn reload(&mut self) -> Reload {
        let result = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))
            .and_then(|text| {
                if self.text.as_deref() == Some(text.as_str()) {
                    return Ok(None);
                }
                let ring =
                    KeyRing::parse(&text).map_err(|e| format!("{}: {e}", self.path.display()))?;
                Ok(Some((text, ring)))
            });
        match result {
            Ok(None) => {
                self.problem = None;
                Reload::Unchanged
            }
            Ok(Some((text, ring))) => {
                self.text = Some(text);
                self.problem = None;
                Reload::Changed(ring)
            }
            Err(problem) => {
                if self.problem.as_deref() == Some(problem.as_str()) {
                    Reload::Unchanged
                } else {
                    self.problem = Some(problem.clone());
                    Reload::Failed(problem)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn first_key_signs_all_are_accepted() {
        let (a, b) = ([1u8; 32], [2u8; 48]);
        let text = format!("# rotation in progress\n{}\n\n  {}  \n", b64(&a), b64(&b));
        let ring = KeyRing::parse(&text).expect("valid");
        assert_eq!(ring.ids(), vec![KeyId::of(&a), KeyId::of(&b)]);
        assert_eq!(ring.signing().id, KeyId::of(&a));
        assert!(ring.get(KeyId::of(&b)).is_some());
        assert!(ring.get(KeyId::of(&[3u8; 32])).is_none());
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyError::Empty);
        assert_eq!(KeyRing::parse("# only\n\n").unwrap_err(), KeyError::Empty);
        assert!(matches!(
            KeyRing::parse("\nnot base64!").unwrap_err(),
            KeyError::NotBase64 { line: 2, .. }
        ));
        assert_eq!(
            KeyRing::parse(&b64(&[1; 31])).unwrap_err(),
            KeyError::TooShort { line: 1, len: 31 }
        );
        let k = b64(&[7; 32]);
        assert!(matches!(
            KeyRing::parse(&format!("{k}\n# x\n{k}")).unwrap_err(),
            KeyError::Duplicate { line: 3, .. }
        ));
        let many: Vec<String> = (0..=MAX_KEYS as u8).map(|i| b64(&[i; 32])).collect();
        assert_eq!(
            KeyRing::parse(&many.join("\n")).unwrap_err(),
            KeyError::TooMany
        );
    }

    #[test]
    fn debug_never_shows_key_material() {
        let ring = KeyRing::new(&[[0x41u8; 32]]).expect("valid");
        let shown = format!("{ring:?}");
        assert!(
            shown.contains(&KeyId::of(&[0x41; 32]).to_string()),
            "{shown}"
        );
        assert!(
            !shown.contains("AAAA") && !shown.contains("65, 65"),
            "{shown}"
        );
    }

    #[test]
    fn reload_sees_changes_and_keeps_keys_on_errors() {
        let dir = std::env::temp_dir().join(format!("flb-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("keys");
        let (a, b) = (b64(&[1; 32]), b64(&[2; 32]));
        std::fs::write(&path, format!("{a}\n")).expect("write");
        let (mut file, ring) = KeyFile::open(&path, "ns").expect("opens");
        assert_eq!(ring.ids().len(), 1);
        assert!(matches!(file.reload(), Reload::Unchanged));
        std::fs::write(&path, format!("{a}\n{b}\n")).expect("write");
        match file.reload() {
            Reload::Changed(r) => assert_eq!(r.ids().len(), 2),
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "garbage\n").expect("write");
        assert!(matches!(file.reload(), Reload::Failed(_)));
        // Reported once, not every period.
        assert!(matches!(file.reload(), Reload::Unchanged));
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(file.reload(), Reload::Failed(_)));
        let Err(missing) = KeyFile::open(&path, "ferrolb-system") else {
            panic!("a missing file must be refused");
        };
        let msg = missing.to_string();
        assert!(
            msg.contains(SECRET_NAME) && msg.contains("--insecure-membership"),
            "{msg}"
        );
        assert!(
            msg.contains("kubectl -n ferrolb-system create secret"),
            "{msg}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
