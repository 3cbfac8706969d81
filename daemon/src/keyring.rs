//! The mirror's signing keys, loaded from the key URIs of the configuration.
//!
//! Only `file:` keys are loaded for now; `awskms:` and `pkcs11:` URIs parse in the
//! configuration and are refused here with the URI and role named, until their signers
//! exist.

use std::sync::Arc;

use tough::sign::Sign;
use tuf_mirror_config::{KeyUri, Repository};
use tuf_mirror_keys::FileKey;

use crate::mirror::{MirrorError, MirrorKey, MirrorKeys};

/// Errors loading a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The key file could not be used.
    #[error("repository {repo}: {role} key")]
    File {
        /// Repository.
        repo: String,
        /// Role.
        role: &'static str,
        /// Cause (names the file).
        #[source]
        source: Box<tuf_mirror_keys::KeyError>,
    },
    /// This kind of key URI has no signer yet.
    #[error("repository {repo}: {role} key {uri}: this kind of key is not supported yet")]
    Unsupported {
        /// Repository.
        repo: String,
        /// Role.
        role: &'static str,
        /// The URI (never holds a secret: PINs come from a file).
        uri: String,
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
}

fn load(repo: &str, role: &'static str, uris: &[KeyUri]) -> Result<Vec<MirrorKey>, KeyringError> {
    uris.iter()
        .map(|uri| {
            let signer: Arc<dyn Sign> = match uri {
                KeyUri::File(path) => {
                    Arc::new(FileKey::load(path).map_err(|source| KeyringError::File {
                        repo: repo.to_owned(),
                        role,
                        source: Box::new(source),
                    })?)
                }
                other => {
                    return Err(KeyringError::Unsupported {
                        repo: repo.to_owned(),
                        role,
                        uri: other.to_string(),
                    })
                }
            };
            MirrorKey::new(role, signer).map_err(|source| KeyringError::Describe {
                repo: repo.to_owned(),
                source,
            })
        })
        .collect()
}

/// Root keys are usually offline: a root key file that does not exist (removable media
/// not mounted) is skipped with a warning, and root changes then go through the
/// ceremony. Any other failure (permissions, a bad file) stops start-up as for every key.
fn load_root(repo: &str, uris: &[KeyUri]) -> Result<Vec<MirrorKey>, KeyringError> {
    let mut out = Vec::new();
    for uri in uris {
        match load(repo, "root", std::slice::from_ref(uri)) {
            Ok(mut k) => out.append(&mut k),
            Err(KeyringError::File { source, .. })
                if matches!(&*source, tuf_mirror_keys::KeyError::Io { source, .. }
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

/// Loads one key for `role` (the ceremony's `root sign` and the rotation commands).
pub fn load_key(role: &'static str, uri: &KeyUri) -> Result<MirrorKey, KeyringError> {
    let mut k = load("-", role, std::slice::from_ref(uri))?;
    k.pop().ok_or_else(|| KeyringError::Unsupported {
        repo: "-".into(),
        role,
        uri: uri.to_string(),
    })
}

/// Loads every key of a repository (blocking: run it off the async runtime).
pub fn load_keys(repo: &Repository) -> Result<MirrorKeys, KeyringError> {
    let name = repo.name.as_str();
    Ok(MirrorKeys {
        root: load_root(name, &repo.root_keys)?,
        root_threshold: repo.root_threshold.get(),
        snapshot: load(name, "snapshot", &repo.snapshot_keys)?,
        timestamp: load(name, "timestamp", &repo.timestamp_keys)?,
    })
}
