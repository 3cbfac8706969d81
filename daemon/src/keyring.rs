//! The mirror's signing keys, opened from the key URIs of the configuration: `file:`,
//! `pkcs11:` and, in a build with the `aws-kms` feature, `awskms:`.
//!
//! [`load_checked`] also checks the keys against the mirror root being served, when
//! there is one: snapshot or timestamp keys none of which the served root lists would
//! sign metadata no client accepts. A key the root does not list yet is allowed beside
//! one it lists, with a warning: that is how a key is rotated in (configure it beside
//! the old one, publish a root listing it with the root ceremony, then drop the old one;
//! docs/root-ceremony.md). Root key files that do not exist are offline keys.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tough::sign::Sign;
use tuf_mirror_config::{KeyUri, Repository};
use tuf_mirror_keys::{KeyError, Signer};

use crate::mirror::{MirrorError, MirrorKey, MirrorKeys};

/// Errors loading a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The key could not be opened or used (the cause names the file or URI).
    #[error("repository {repo}: {role} key")]
    Key {
        /// Repository.
        repo: String,
        /// Role.
        role: &'static str,
        /// Cause (names the file or the URI, never a secret).
        #[source]
        source: Box<KeyError>,
    },
    /// A key could not be described as a TUF key.
    #[error("repository {repo}")]
    Describe {
        /// Repository.
        repo: String,
        /// Cause.
        #[source]
        source: MirrorError,
    },
    /// The served mirror root does not list a configured key for its role.
    #[error(
        "repository {repo}: {role} key {uri} has key id {keyid}, but the served mirror root \
         (version {root_version}) lists {} for {role}; publish a root listing it first \
         (the root ceremony), or configure the key it lists",
        listed(expected)
    )]
    NotInServedRoot {
        /// Repository.
        repo: String,
        /// Role.
        role: &'static str,
        /// The key's URI (or file).
        uri: String,
        /// The key's id.
        keyid: String,
        /// The served root's version.
        root_version: u64,
        /// The key ids the served root lists for the role.
        expected: Vec<String>,
    },
    /// The served mirror root could not be read.
    #[error("repository {repo}: served mirror root {}: {reason}", path.display())]
    ServedRoot {
        /// Repository.
        repo: String,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl KeyringError {
    /// The key error inside, if that is what this is.
    pub fn key_error(&self) -> Option<&KeyError> {
        match self {
            KeyringError::Key { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn listed(ids: &[String]) -> String {
    match ids {
        [] => "no key".to_owned(),
        [one] => format!("key id {one}"),
        many => format!("key ids {}", many.join(", ")),
    }
}

/// A loaded key and the URI it came from.
struct Loaded {
    uri: String,
    key: MirrorKey,
}

fn load(repo: &str, role: &'static str, uris: &[KeyUri]) -> Result<Vec<Loaded>, KeyringError> {
    uris.iter()
        .map(|uri| {
            let signer = Signer::open(uri).map_err(|source| KeyringError::Key {
                repo: repo.to_owned(),
                role,
                source: Box::new(source),
            })?;
            tracing::info!(repo, role, key = %signer, "signing key loaded");
            let signer: Arc<dyn Sign> = Arc::new(signer);
            let key = MirrorKey::new(role, signer).map_err(|source| KeyringError::Describe {
                repo: repo.to_owned(),
                source,
            })?;
            Ok(Loaded {
                uri: uri.to_string(),
                key,
            })
        })
        .collect()
}

/// Root keys are usually offline: a root key file that does not exist (removable media
/// not mounted) is skipped with a warning, and root changes then go through the
/// ceremony. Any other failure (permissions, a bad file, an HSM refusing the PIN) stops
/// start-up as for every key.
fn load_root(repo: &str, uris: &[KeyUri]) -> Result<Vec<Loaded>, KeyringError> {
    let mut out = Vec::new();
    for uri in uris {
        match load(repo, "root", std::slice::from_ref(uri)) {
            Ok(mut k) => out.append(&mut k),
            Err(KeyringError::Key { source, .. })
                if matches!(uri, KeyUri::File(_))
                    && matches!(&*source, KeyError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound) =>
            {
                tracing::warn!(
                    repo,
                    key = %uri,
                    "root key not at hand (no such file): treated as offline; root changes need the ceremony"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Loads one key for `role` (the ceremony's `root sign`, `keys public` and the rotation
/// commands).
pub fn load_key(role: &'static str, uri: &KeyUri) -> Result<MirrorKey, KeyringError> {
    let mut k = load("-", role, std::slice::from_ref(uri))?;
    k.pop()
        .map(|l| l.key)
        .ok_or_else(|| KeyringError::ServedRoot {
            repo: "-".into(),
            path: std::path::PathBuf::from(uri.to_string()),
            reason: "no key".into(),
        })
}

fn keys(loaded: Vec<Loaded>) -> Vec<MirrorKey> {
    loaded.into_iter().map(|l| l.key).collect()
}

/// Loads every key of a repository (blocking: run it off the async runtime).
pub fn load_keys(repo: &Repository) -> Result<MirrorKeys, KeyringError> {
    let name = repo.name.as_str();
    Ok(MirrorKeys {
        root: keys(load_root(name, &repo.root_keys)?),
        root_threshold: repo.root_threshold.get(),
        snapshot: keys(load(name, "snapshot", &repo.snapshot_keys)?),
        timestamp: keys(load(name, "timestamp", &repo.timestamp_keys)?),
    })
}

/// Loads every key of a repository and checks each against the mirror root served
/// from `tree` (`<state_dir>/published/<repo>`), when one is served: each key's id
/// must be listed for its role. Blocking.
pub fn load_checked(repo: &Repository, tree: &Path) -> Result<MirrorKeys, KeyringError> {
    let name = repo.name.as_str();
    let roles = [
        ("root", &repo.root_keys),
        ("snapshot", &repo.snapshot_keys),
        ("timestamp", &repo.timestamp_keys),
    ];
    let served = served_root(name, &tree.join("metadata/root.json"))?;
    let mut out = Vec::new();
    for (role, uris) in roles {
        let loaded = if role == "root" {
            load_root(name, uris)?
        } else {
            load(name, role, uris)?
        };
        if let Some(root) = &served {
            check(name, role, &loaded, root)?;
        }
        out.push(keys(loaded));
    }
    let mut out = out.into_iter();
    Ok(MirrorKeys {
        root: out.next().unwrap_or_default(),
        root_threshold: repo.root_threshold.get(),
        snapshot: out.next().unwrap_or_default(),
        timestamp: out.next().unwrap_or_default(),
    })
}

/// The served root's `signed`, or `None` before the first publish.
fn served_root(repo: &str, path: &Path) -> Result<Option<Value>, KeyringError> {
    let err = |reason: String| KeyringError::ServedRoot {
        repo: repo.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut doc: Value = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    match doc.get_mut("signed").map(Value::take) {
        Some(signed @ Value::Object(_)) => Ok(Some(signed)),
        _ => Err(err("not a TUF metadata file".into())),
    }
}

fn check(
    repo: &str,
    role: &'static str,
    loaded: &[Loaded],
    root: &Value,
) -> Result<(), KeyringError> {
    let expected: Vec<String> = root["roles"][role]["keyids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // Every key signs; a key the served root does not list yet (being rotated in: the
    // root ceremony lists it next) is allowed beside one it lists. A snapshot or
    // timestamp role with no listed key at all would sign what no client accepts.
    let listed = |l: &Loaded| expected.iter().any(|id| id == l.key.keyid());
    for l in loaded.iter().filter(|l| !listed(l)) {
        tracing::warn!(
            repo,
            role,
            key = %l.uri,
            keyid = l.key.keyid(),
            "key not listed by the served mirror root: it signs alongside until a root lists it"
        );
    }
    if role != "root" && !loaded.iter().any(listed) {
        if let Some(l) = loaded.first() {
            return Err(KeyringError::NotInServedRoot {
                repo: repo.to_owned(),
                role,
                uri: l.uri.clone(),
                keyid: l.key.keyid().to_owned(),
                root_version: root["version"].as_u64().unwrap_or(0),
                expected,
            });
        }
    }
    Ok(())
}
