//! The roles the mirror signs: root, snapshot and timestamp.
//!
//! They are built as JSON and signed over their canonical form (the engine's own
//! encoder, the one it verifies with), so that the mirror root can carry the upstream
//! targets key objects verbatim, whatever fields they hold, and the published bytes
//! verify with every TUF client. Targets and delegated roles are never built here:
//! they are the upstream's bytes.

use std::sync::Arc;

use aws_lc_rs::digest;
use jiff::Timestamp;
use serde_json::{json, Map, Value};
use tough::sign::Sign;
use tuf_mirror_client::canonical::canonicalize;
use tuf_mirror_client::TrustedTargets;

use crate::cycle::UpstreamView;

/// The specification version the mirror writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// Errors building or signing a mirror role.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// A signer's public key could not be turned into a TUF key object or id.
    #[error("the {role} key cannot be described as a TUF key")]
    PublicKey {
        /// Role the key signs.
        role: &'static str,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A signer failed.
    #[error("signing {role} version {version} with key {keyid} failed")]
    Sign {
        /// Role.
        role: &'static str,
        /// Version being signed.
        version: u64,
        /// Key id.
        keyid: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The upstream root lacks what the mirror root must copy.
    #[error("upstream root version {version}: {reason}")]
    Upstream {
        /// Upstream root version.
        version: u64,
        /// What is missing.
        reason: String,
    },
    /// Not enough keys for a role.
    #[error("{role}: {available} key(s) for a threshold of {threshold}")]
    Threshold {
        /// Role.
        role: &'static str,
        /// Keys given.
        available: usize,
        /// Threshold.
        threshold: u64,
    },
}

/// One key of the mirror: a signer, its key id and its public key object.
#[derive(Clone)]
pub struct MirrorKey {
    signer: Arc<dyn Sign>,
    keyid: String,
    public: Value,
}

impl std::fmt::Debug for MirrorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorKey")
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

impl MirrorKey {
    /// Describes `signer` for `role`: key id = sha256 of its canonical key object.
    pub fn new(role: &'static str, signer: Arc<dyn Sign>) -> Result<Self, MirrorError> {
        let key = signer.tuf_key();
        let err = |source: Box<dyn std::error::Error + Send + Sync>| MirrorError::PublicKey {
            role,
            source,
        };
        let public = serde_json::to_value(&key).map_err(|e| err(Box::new(e)))?;
        let keyid = hex::encode(key.key_id().map_err(|e| err(Box::new(e)))?);
        Ok(MirrorKey {
            signer,
            keyid,
            public,
        })
    }

    /// The key id.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The public key object, as the mirror root lists it.
    pub fn public(&self) -> &Value {
        &self.public
    }
}

/// The mirror's keys per role.
#[derive(Debug, Clone)]
pub struct MirrorKeys {
    /// Root keys (those online; offline ones join through the ceremony).
    pub root: Vec<MirrorKey>,
    /// Root threshold.
    pub root_threshold: u64,
    /// Snapshot keys.
    pub snapshot: Vec<MirrorKey>,
    /// Timestamp keys.
    pub timestamp: Vec<MirrorKey>,
}

/// Expiry in the form every TUF client parses (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn expires_string(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn role_keys(keys: &[MirrorKey], threshold: u64, all: &mut Map<String, Value>) -> Value {
    let mut ids: Vec<&str> = keys.iter().map(MirrorKey::keyid).collect();
    ids.sort_unstable();
    ids.dedup();
    for k in keys {
        all.insert(k.keyid.clone(), k.public.clone());
    }
    json!({ "keyids": ids, "threshold": threshold })
}

/// The mirror root's `signed`: the mirror's root, snapshot and timestamp keys, and the
/// upstream's targets role with its key objects copied verbatim from the upstream root
/// (same ids, same threshold), so that stock clients verify upstream targets too.
pub fn root_signed(
    version: u64,
    expires: Timestamp,
    keys: &MirrorKeys,
    upstream: &UpstreamView,
) -> Result<Value, MirrorError> {
    if (keys.root.len() as u64) < keys.root_threshold || keys.root_threshold == 0 {
        return Err(MirrorError::Threshold {
            role: "root",
            available: keys.root.len(),
            threshold: keys.root_threshold,
        });
    }
    let up_err = |reason: String| MirrorError::Upstream {
        version: upstream.root_version,
        reason,
    };
    let raw: Value =
        serde_json::from_slice(&upstream.root_bytes).map_err(|e| up_err(e.to_string()))?;
    let up_targets = &upstream.targets;
    let mut all = Map::new();
    for id in &up_targets.keyids {
        let key = raw["signed"]["keys"]
            .get(id)
            .ok_or_else(|| up_err(format!("targets key {id} is not in its keys")))?;
        all.insert(id.clone(), key.clone());
    }
    let roles = json!({
        "root": role_keys(&keys.root, keys.root_threshold, &mut all),
        "snapshot": role_keys(&keys.snapshot, 1, &mut all),
        "timestamp": role_keys(&keys.timestamp, 1, &mut all),
        "targets": { "keyids": up_targets.keyids, "threshold": up_targets.threshold },
    });
    Ok(json!({
        "_type": "root",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires_string(expires),
        "consistent_snapshot": true,
        "keys": all,
        "roles": roles,
    }))
}

/// One snapshot entry: version, length and sha256 of the exact bytes served.
pub fn meta_entry(version: u64, bytes: &[u8]) -> Value {
    json!({
        "version": version,
        "length": bytes.len(),
        "hashes": { "sha256": hex::encode(digest::digest(&digest::SHA256, bytes)) },
    })
}

/// The mirror snapshot's `signed`, listing every targets role served.
pub fn snapshot_signed<'a>(
    version: u64,
    expires: Timestamp,
    roles: impl IntoIterator<Item = &'a TrustedTargets>,
) -> Value {
    // Each role's sha256 is computed once per verified instance and cached there, so a
    // cycle costs a hash only for the roles that changed.
    let meta: Map<String, Value> = roles
        .into_iter()
        .map(|r| {
            let entry = json!({
                "version": r.version,
                "length": r.bytes.len(),
                "hashes": { "sha256": hex::encode(r.sha256()) },
            });
            (format!("{}.json", r.name), entry)
        })
        .collect();
    snapshot_from_meta(version, expires, Value::Object(meta))
}

/// A snapshot's `signed` with a given `meta` (a re-signed snapshot keeps its meta).
pub fn snapshot_from_meta(version: u64, expires: Timestamp, meta: Value) -> Value {
    json!({
        "_type": "snapshot",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires_string(expires),
        "meta": meta,
    })
}

/// The mirror timestamp's `signed`, listing the snapshot served.
pub fn timestamp_signed(version: u64, expires: Timestamp, snapshot: &SignedDoc) -> Value {
    json!({
        "_type": "timestamp",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires_string(expires),
        "meta": { "snapshot.json": meta_entry(snapshot.version, &snapshot.bytes) },
    })
}

/// A signed document as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDoc {
    /// Role version.
    pub version: u64,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// sha256 of the canonical `signed` part (what a version number is bound to).
    pub content_sha256: [u8; 32],
}

/// The sha256 of the canonical form of `signed`.
pub fn content_sha256(signed: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, &canonical(signed)).as_ref());
    out
}

fn canonical(signed: &Value) -> Vec<u8> {
    // A Value serializes to valid JSON with integers only, which always has a
    // canonical form.
    canonicalize(&signed.to_string()).unwrap_or_default()
}

/// Signs `signed` (of `role`) with every key in `keys`, as pretty JSON with a newline.
pub async fn sign(
    role: &'static str,
    signed: Value,
    keys: &[&MirrorKey],
) -> Result<SignedDoc, MirrorError> {
    let version = signed["version"].as_u64().unwrap_or(0);
    let msg = canonical(&signed);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut signatures = Vec::with_capacity(keys.len());
    let mut seen: Vec<&str> = Vec::new();
    for k in keys {
        if seen.contains(&k.keyid.as_str()) {
            continue;
        }
        seen.push(&k.keyid);
        let sig = k
            .signer
            .sign(&msg, &rng)
            .await
            .map_err(|source| MirrorError::Sign {
                role,
                version,
                keyid: k.keyid.clone(),
                source,
            })?;
        signatures.push(json!({ "keyid": k.keyid, "sig": hex::encode(sig) }));
    }
    let mut out = Vec::with_capacity(msg.len() * 2);
    out.extend_from_slice(
        serde_json::to_string_pretty(&json!({ "signatures": signatures, "signed": signed }))
            .unwrap_or_default()
            .as_bytes(),
    );
    out.push(b'\n');
    let mut content = [0u8; 32];
    content.copy_from_slice(digest::digest(&digest::SHA256, &msg).as_ref());
    Ok(SignedDoc {
        version,
        bytes: out,
        content_sha256: content,
    })
}
