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
    let mut all = Map::new();
    let targets = upstream_targets(upstream, &mut all)?;
    let roles = json!({
        "root": role_keys(&keys.root, keys.root_threshold, &mut all),
        "snapshot": role_keys(&keys.snapshot, 1, &mut all),
        "timestamp": role_keys(&keys.timestamp, 1, &mut all),
        "targets": targets,
    });
    Ok(root_doc(version, expires, all, roles))
}

/// The next mirror root's `signed` after `base` (the `signed` of the root served now):
/// its root, snapshot and timestamp roles with their key objects, and the targets role
/// of the newest upstream root. Root keys that are offline stay listed.
pub fn next_root_signed(
    base: &Value,
    version: u64,
    expires: Timestamp,
    upstream: &UpstreamView,
) -> Result<Value, MirrorError> {
    let mut all = Map::new();
    let targets = upstream_targets(upstream, &mut all)?;
    let mut roles = Map::new();
    for role in ["root", "snapshot", "timestamp"] {
        let r = &base["roles"][role];
        let ids = r["keyids"].as_array().cloned().unwrap_or_default();
        for id in ids.iter().filter_map(Value::as_str) {
            let key = base["keys"].get(id).ok_or_else(|| MirrorError::Upstream {
                version: upstream.root_version,
                reason: format!(
                    "the served mirror root lists {role} key {id} without its key object"
                ),
            })?;
            all.insert(id.to_owned(), key.clone());
        }
        roles.insert(
            role.to_owned(),
            json!({ "keyids": ids, "threshold": r["threshold"].clone() }),
        );
    }
    roles.insert("targets".into(), targets);
    Ok(root_doc(version, expires, all, Value::Object(roles)))
}

/// The upstream root's targets role, its key objects copied into `all` verbatim.
fn upstream_targets(
    upstream: &UpstreamView,
    all: &mut Map<String, Value>,
) -> Result<Value, MirrorError> {
    let up_err = |reason: String| MirrorError::Upstream {
        version: upstream.root_version,
        reason,
    };
    let raw: Value =
        serde_json::from_slice(&upstream.root_bytes).map_err(|e| up_err(e.to_string()))?;
    let up_targets = &upstream.targets;
    for id in &up_targets.keyids {
        let key = raw["signed"]["keys"]
            .get(id)
            .ok_or_else(|| up_err(format!("targets key {id} is not in its keys")))?;
        all.insert(id.clone(), key.clone());
    }
    Ok(json!({ "keyids": up_targets.keyids, "threshold": up_targets.threshold }))
}

fn root_doc(version: u64, expires: Timestamp, keys: Map<String, Value>, roles: Value) -> Value {
    json!({
        "_type": "root",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires_string(expires),
        "consistent_snapshot": true,
        "keys": keys,
        "roles": roles,
    })
}

/// One snapshot entry: version, length and sha256 of the exact bytes served.
pub fn meta_entry(version: u64, bytes: &[u8]) -> Value {
    let m = FileMeta::of(version, bytes);
    json!({
        "version": m.version,
        "length": m.length,
        "hashes": { "sha256": hex::encode(m.sha256) },
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
pub fn timestamp_signed(version: u64, expires: Timestamp, snapshot: &FileMeta) -> Value {
    json!({
        "_type": "timestamp",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires_string(expires),
        "meta": { "snapshot.json": {
            "version": snapshot.version,
            "length": snapshot.length,
            "hashes": { "sha256": hex::encode(snapshot.sha256) },
        } },
    })
}

/// What a snapshot or timestamp entry says of a file: version, length and the sha256
/// of the exact bytes served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Role version.
    pub version: u64,
    /// Length in bytes.
    pub length: u64,
    /// sha256 of the bytes.
    pub sha256: [u8; 32],
}

impl FileMeta {
    /// The entry for `bytes` at `version`.
    pub fn of(version: u64, bytes: &[u8]) -> Self {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
        FileMeta {
            version,
            length: bytes.len() as u64,
            sha256,
        }
    }
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

impl SignedDoc {
    /// Its snapshot or timestamp entry.
    pub fn meta(&self) -> FileMeta {
        FileMeta::of(self.version, &self.bytes)
    }
}

/// A role's `signed` in canonical form, ready to be reserved and signed.
#[derive(Debug, Clone)]
pub struct Unsigned {
    role: &'static str,
    version: u64,
    signed: Value,
    msg: Vec<u8>,
    content_sha256: [u8; 32],
}

impl Unsigned {
    /// The canonical form of `signed` (of `role`) and its sha256.
    pub fn new(role: &'static str, signed: Value) -> Self {
        let version = signed["version"].as_u64().unwrap_or(0);
        let msg = canonical(&signed);
        let mut content_sha256 = [0u8; 32];
        content_sha256.copy_from_slice(digest::digest(&digest::SHA256, &msg).as_ref());
        Unsigned {
            role,
            version,
            signed,
            msg,
            content_sha256,
        }
    }

    /// The version being signed.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The sha256 of the canonical `signed` (what a version number is bound to).
    pub fn content_sha256(&self) -> [u8; 32] {
        self.content_sha256
    }

    /// The document's `signed`.
    pub fn signed(&self) -> &Value {
        &self.signed
    }

    /// The document's `signed`.
    pub fn into_signed(self) -> Value {
        self.signed
    }
}

/// The canonical JSON form (OLPC, as TUF signs it) of a document built by this module:
/// object keys sorted by their bytes, no whitespace, strings with only `"` and `\\`
/// escaped, integers only (a float, which nothing here builds, yields an empty form that
/// no signature verifies).
pub(crate) fn canonical(signed: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    if write_canonical(signed, &mut out).is_none() {
        out.clear();
    }
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Option<()> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                out.extend_from_slice(n.as_i64()?.to_string().as_bytes());
            }
        }
        Value::String(s) => write_canonical_str(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(e, out)?;
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // Already sorted unless serde_json keeps insertion order; sorting sorted
            // input is linear.
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_str(k, out);
                out.push(b':');
                write_canonical(&m[k.as_str()], out)?;
            }
            out.push(b'}');
        }
    }
    Some(())
}

fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Signs `signed` (of `role`) with every key in `keys`.
pub async fn sign(
    role: &'static str,
    signed: Value,
    keys: &[&MirrorKey],
) -> Result<SignedDoc, MirrorError> {
    sign_unsigned(&Unsigned::new(role, signed), keys).await
}

/// Signs a prepared document with every key in `keys` (each distinct key once). The
/// root is written as indented JSON for the people who read it; snapshot and timestamp,
/// which only programs read and which re-signing rewrites often, as compact JSON.
pub async fn sign_unsigned(u: &Unsigned, keys: &[&MirrorKey]) -> Result<SignedDoc, MirrorError> {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        signatures: &'a [Value],
        signed: &'a Value,
    }
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
            .sign(&u.msg, &rng)
            .await
            .map_err(|source| MirrorError::Sign {
                role: u.role,
                version: u.version,
                keyid: k.keyid.clone(),
                source,
            })?;
        signatures.push(json!({ "keyid": k.keyid, "sig": hex::encode(sig) }));
    }
    let doc = Envelope {
        signatures: &signatures,
        signed: &u.signed,
    };
    let mut out = if u.role == "root" {
        serde_json::to_vec_pretty(&doc)
    } else {
        serde_json::to_vec(&doc)
    }
    .unwrap_or_default();
    out.push(b'\n');
    Ok(SignedDoc {
        version: u.version,
        bytes: out,
        content_sha256: u.content_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuf_mirror_client::canonical::canonicalize;

    #[test]
    fn the_canonical_writer_matches_the_engine_encoder() {
        let docs = [
            json!({"b": 1, "a": [true, false, null, -3, 18446744073709551615u64], "": {}}),
            json!({"k\"ey": "va\\lue", "ctl": "a\nb\u{1}c\t", "uni": "é😀\u{7f}", "z": []}),
            json!({"Z": 1, "a": 2, "é": 3, "e": {"y": {"x": [[], [{}]]}}}),
        ];
        for d in docs {
            let ours = canonical(&d);
            let engine = canonicalize(&d.to_string()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&engine)
            );
        }
        assert!(canonical(&json!({"f": 1.5})).is_empty());
    }
}
