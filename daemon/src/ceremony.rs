//! The root ceremony for offline root keys: prepare the next mirror root, let each key
//! holder add one signature, check both thresholds (TUF 5.3.4), and hand the result to
//! the daemon through `<state_dir>/incoming/<repo>/root.json`, which it publishes at its
//! next cycle together with a new snapshot and timestamp.
//!
//! A prepared root is a file `{"signatures": [...], "signed": {...}}`; its `signed` is
//! the served root's roles with the requested changes and the targets role of the newest
//! upstream root, so an upstream targets-key rotation is followed by the same steps.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use serde_json::{json, Value};
use tuf_mirror_client::key::{KeyJson, PublicKey};

use crate::mirror::{self, MirrorKey};

/// Errors of the ceremony.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// A root file is not what it should be.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which file or document.
        what: String,
        /// Why.
        reason: String,
    },
    /// A change cannot be applied.
    #[error("{0}")]
    Change(String),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] mirror::MirrorError),
    /// A threshold is not met.
    #[error("root version {version} is not signed enough: {report}")]
    Threshold {
        /// The new root's version.
        version: u64,
        /// Both counts.
        report: String,
    },
}

/// One change to the next root.
#[derive(Debug, Clone)]
pub enum Change {
    /// List this key (a TUF key object) as a root key.
    AddRootKey(Value),
    /// Stop listing this root key id.
    RemoveRootKey(String),
    /// Set the root threshold.
    RootThreshold(u64),
    /// Replace the timestamp keys.
    TimestampKeys(Vec<Value>),
    /// Replace the snapshot keys.
    SnapshotKeys(Vec<Value>),
}

/// The TUF key id of a key object: sha256 of its canonical form.
pub fn key_id(key: &Value) -> String {
    hex::encode(digest::digest(&digest::SHA256, &mirror::canonical(key)))
}

fn malformed(what: &str, reason: impl Into<String>) -> CeremonyError {
    CeremonyError::Malformed {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

fn ids(role: &Value) -> Vec<String> {
    role["keyids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Applies `changes` to a root's `signed`; returns one line per change made.
pub fn apply(signed: &mut Value, changes: &[Change]) -> Result<Vec<String>, CeremonyError> {
    let mut said = Vec::new();
    for c in changes {
        match c {
            Change::AddRootKey(key) => {
                let id = key_id(key);
                signed["keys"][&id] = key.clone();
                let mut root_ids = ids(&signed["roles"]["root"]);
                if root_ids.contains(&id) {
                    return Err(CeremonyError::Change(format!(
                        "root key {id} is already listed"
                    )));
                }
                root_ids.push(id.clone());
                signed["roles"]["root"]["keyids"] = json!(root_ids);
                said.push(format!("root key {id} added"));
            }
            Change::RemoveRootKey(id) => {
                let mut root_ids = ids(&signed["roles"]["root"]);
                let before = root_ids.len();
                root_ids.retain(|k| k != id);
                if root_ids.len() == before {
                    return Err(CeremonyError::Change(format!(
                        "root key {id} is not listed"
                    )));
                }
                signed["roles"]["root"]["keyids"] = json!(root_ids);
                said.push(format!("root key {id} removed"));
            }
            Change::RootThreshold(t) => {
                signed["roles"]["root"]["threshold"] = json!(t);
                said.push(format!("root threshold {t}"));
            }
            Change::TimestampKeys(keys) | Change::SnapshotKeys(keys) => {
                let role = if matches!(c, Change::TimestampKeys(_)) {
                    "timestamp"
                } else {
                    "snapshot"
                };
                if keys.is_empty() {
                    return Err(CeremonyError::Change(format!(
                        "{role} needs at least one key"
                    )));
                }
                let new_ids: Vec<String> = keys.iter().map(key_id).collect();
                for (id, k) in new_ids.iter().zip(keys) {
                    signed["keys"][id] = k.clone();
                }
                said.push(format!(
                    "{role} keys {} (were {})",
                    new_ids.join(", "),
                    ids(&signed["roles"][role]).join(", ")
                ));
                signed["roles"][role] = json!({ "keyids": new_ids, "threshold": 1 });
            }
        }
    }
    let root_ids = ids(&signed["roles"]["root"]);
    let threshold = signed["roles"]["root"]["threshold"].as_u64().unwrap_or(0);
    if threshold == 0 || threshold > root_ids.len() as u64 {
        return Err(CeremonyError::Change(format!(
            "root threshold {threshold} with {} root key(s): it must be between 1 and the number of keys",
            root_ids.len()
        )));
    }
    // Key objects no role lists any more go.
    let listed: HashSet<String> = ["root", "snapshot", "timestamp", "targets"]
        .iter()
        .flat_map(|r| ids(&signed["roles"][*r]))
        .collect();
    if let Some(keys) = signed["keys"].as_object_mut() {
        keys.retain(|id, _| listed.contains(id));
    }
    Ok(said)
}

/// A prepared, unsigned root file.
pub fn unsigned(signed: Value) -> Value {
    json!({ "signatures": [], "signed": signed })
}

/// Adds (or replaces) the signature of `key` over the document's `signed`.
pub async fn add_signature(doc: &mut Value, key: &MirrorKey) -> Result<(), CeremonyError> {
    let signed = doc
        .get("signed")
        .cloned()
        .ok_or_else(|| malformed("root file", "no \"signed\""))?;
    let one = mirror::sign("root", signed, &[key]).await?;
    let signed_doc: Value =
        serde_json::from_slice(&one.bytes).map_err(|e| malformed("signature", e.to_string()))?;
    let new_sig = signed_doc["signatures"][0].clone();
    let sigs = doc["signatures"]
        .as_array_mut()
        .ok_or_else(|| malformed("root file", "\"signatures\" is not a list"))?;
    sigs.retain(|s| s["keyid"].as_str() != Some(key.keyid()));
    sigs.push(new_sig);
    Ok(())
}

/// How many of a root's root keys signed a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// Version of the root whose root role counts.
    pub version: u64,
    /// Its root threshold.
    pub threshold: u64,
    /// Key ids whose signature verifies (one per distinct public key).
    pub signed_by: Vec<String>,
    /// Its root key ids that did not sign.
    pub missing: Vec<String>,
}

impl Count {
    /// Whether the threshold is met.
    pub fn met(&self) -> bool {
        self.signed_by.len() as u64 >= self.threshold
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of the {} needed by root version {} (signed: {}; not signed: {})",
            self.signed_by.len(),
            self.threshold,
            self.version,
            if self.signed_by.is_empty() {
                "none".into()
            } else {
                self.signed_by.join(", ")
            },
            if self.missing.is_empty() {
                "none".into()
            } else {
                self.missing.join(", ")
            },
        )
    }
}

/// Counts the signatures of `doc` (a parsed root file) made by the root keys of
/// `authority` (a root's `signed`), over the canonical form of `doc`'s `signed`.
pub fn count(authority: &Value, doc: &Value) -> Count {
    let msg = mirror::canonical(&doc["signed"]);
    let role_ids = ids(&authority["roles"]["root"]);
    let mut seen_keys = HashSet::new();
    let mut signed_by = Vec::new();
    for sig in doc["signatures"].as_array().into_iter().flatten() {
        let (Some(id), Some(hexsig)) = (sig["keyid"].as_str(), sig["sig"].as_str()) else {
            continue;
        };
        if !role_ids.iter().any(|r| r == id) || signed_by.iter().any(|s| s == id) {
            continue;
        }
        let Ok(kj) = serde_json::from_value::<KeyJson>(authority["keys"][id].clone()) else {
            continue;
        };
        let key = PublicKey::from_json(&kj);
        let Ok(raw) = hex::decode(hexsig) else {
            continue;
        };
        if key.verify(&msg, &raw) && seen_keys.insert(key.public().to_owned()) {
            signed_by.push(id.to_owned());
        }
    }
    let missing = role_ids
        .iter()
        .filter(|r| !signed_by.contains(r))
        .cloned()
        .collect();
    Count {
        version: authority["version"].as_u64().unwrap_or(0),
        threshold: authority["roles"]["root"]["threshold"]
            .as_u64()
            .unwrap_or(u64::MAX),
        signed_by,
        missing,
    }
}

/// Both counts of TUF 5.3.4 for a new root following `old` (the served root file).
#[derive(Debug, Clone)]
pub struct Check {
    /// The new root's version.
    pub version: u64,
    /// Signatures by the served root's root keys.
    pub old: Count,
    /// Signatures by the new root's own root keys.
    pub new: Count,
    /// The new root file.
    pub doc: Value,
}

impl Check {
    /// Both thresholds met.
    pub fn met(&self) -> bool {
        self.old.met() && self.new.met()
    }

    /// The refusal, when a threshold is not met.
    pub fn require(&self) -> Result<(), CeremonyError> {
        if self.met() {
            return Ok(());
        }
        Err(CeremonyError::Threshold {
            version: self.version,
            report: format!("current root: {}; new root: {}", self.old, self.new),
        })
    }
}

/// Parses a root file.
pub fn parse(bytes: &[u8], what: &str) -> Result<Value, CeremonyError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| malformed(what, e.to_string()))?;
    if v["signed"]["_type"] != "root" {
        return Err(malformed(
            what,
            "not a root (\"signed\"._type is not \"root\")",
        ));
    }
    if !v["signatures"].is_array() {
        return Err(malformed(what, "no \"signatures\" list"));
    }
    Ok(v)
}

/// Checks a new root file against the served one: version N+1 and both thresholds.
pub fn check(served: &[u8], new: &[u8]) -> Result<Check, CeremonyError> {
    let old = parse(served, "the served root")?;
    check_parsed(&old["signed"], parse(new, "the new root")?)
}

/// [`check`] on documents already parsed: the served root's `signed` and the new root
/// file (kept in the result).
pub fn check_parsed(served: &Value, new: Value) -> Result<Check, CeremonyError> {
    let served_version = served["version"].as_u64().unwrap_or(0);
    let version = new["signed"]["version"].as_u64().unwrap_or(0);
    if version != served_version + 1 {
        return Err(malformed(
            "the new root",
            format!("version {version} does not follow the served root version {served_version}"),
        ));
    }
    Ok(Check {
        version,
        old: count(served, &new),
        new: count(&new["signed"], &new),
        doc: new,
    })
}

/// Where `root publish` leaves a checked root for the daemon: beside the published
/// trees, never inside one (`<state_dir>/incoming/<repo>/root.json`, the tree being
/// `<state_dir>/published/<repo>`).
pub fn incoming_path(tree: &Path) -> PathBuf {
    let repo = tree.file_name().map(ToOwned::to_owned).unwrap_or_default();
    tree.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("incoming")
        .join(repo)
        .join("root.json")
}

/// The key objects a role lists in a root's `signed`.
pub fn role_key_ids(signed: &Value, role: &str) -> Vec<String> {
    ids(&signed["roles"][role])
}

/// The newest `<N>.root.json` in `dir`; `None` when it holds none or does not exist.
pub fn newest_root_in(dir: &Path) -> std::io::Result<Option<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut newest: Option<(u64, PathBuf)> = None;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".root.json"))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        if newest.as_ref().is_none_or(|(n, _)| v > *n) {
            newest = Some((v, entry.path()));
        }
    }
    Ok(newest)
}

/// The newest upstream root the daemon verified for `repo`, looking in its chain store
/// (`<state_dir>/upstream/<repo>/roots/`, which also holds roots the mirror root cannot
/// follow yet) and in the republished `<state_dir>/published/<repo>/upstream/`.
pub fn newest_upstream_root(state_dir: &Path, repo: &str) -> Option<(u64, PathBuf)> {
    [
        state_dir.join("upstream").join(repo).join("roots"),
        state_dir.join("published").join(repo).join("upstream"),
    ]
    .iter()
    .filter_map(|d| newest_root_in(d).ok().flatten())
    .max_by_key(|(v, _)| *v)
}

/// A role's key ids (sorted) and threshold in a root's `signed`.
pub fn role_keys(signed: &Value, role: &str) -> (Vec<String>, u64) {
    let mut ids = role_key_ids(signed, role);
    ids.sort();
    (
        ids,
        signed["roles"][role]["threshold"].as_u64().unwrap_or(0),
    )
}

/// What changed in the roles' keys and thresholds from one root's `signed` to the next,
/// one line per role that changed.
pub fn role_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for role in ["root", "snapshot", "timestamp", "targets"] {
        let (a, b) = (role_keys(old, role), role_keys(new, role));
        if a != b {
            out.push(format!(
                "{role} keys [{}] threshold {} -> [{}] threshold {}",
                a.0.join(", "),
                a.1,
                b.0.join(", "),
                b.1
            ));
        }
    }
    out
}
