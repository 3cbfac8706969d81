//! The key bundle: the one file a site's security team hands to every client.
//!
//! A bundle is JSON (`docs/bundle.md` is the reference). Per repository it holds the
//! name, the mirror's base URLs, the mirror's root (the trust anchor clients chain
//! forward from), the pinned upstream targets keys with their threshold, optionally the
//! upstream's root, and the client policy (expiry grace per class of role, size
//! limits):
//!
//! ```json
//! {
//!   "format": "tuf-mirror-bundle",
//!   "version": 1,
//!   "repositories": [{
//!     "name": "internal",
//!     "mirrors": ["http://mirror.site.example:8080/internal/"],
//!     "mirror_root": { "signatures": ["…"], "signed": { "_type": "root", "…": "…" } },
//!     "targets_keys": { "keys": { "<key id>": { "keytype": "ed25519", "…": "…" } }, "threshold": 1 },
//!     "policy": { "grace": { "upstream_targets": "7d" } }
//!   }]
//! }
//! ```
//!
//! [`Bundle::load`] refuses, naming the file and the reason, anything it does not fully
//! understand: another `format`, another `version`, an unknown field anywhere, duplicate
//! JSON keys, a mirror root that is not a self-signed root, pinned keys that are missing,
//! unusable, or listed under an id that does not match them, a threshold out of range, a
//! grace above the cap ([`crate::MAX_GRACE`]).

mod duration;
mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use crate::canonical::canonicalize;
use crate::key::{key_id, KeyJson, PublicKey};
use crate::policy::{Limits, MAX_GRACE};
use crate::trusted::TrustedRoot;
use crate::updater::{dir_url, PinnedKeys};

pub use duration::{parse_duration, BundleDuration};
pub use write::{pins_from_root, render, RepositoryExport};

/// The value of `format` in every key bundle.
pub const FORMAT: &str = "tuf-mirror-bundle";

/// The format version this library reads and writes.
pub const VERSION: u64 = 1;

/// Why a key bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file could not be read.
    #[error("cannot read key bundle {}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or JSON of another shape (including an unknown field).
    #[error("key bundle {} is malformed: {reason}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What is wrong, with the line and column when the JSON parser gives them.
        reason: String,
    },
    /// `format` is missing or is not `tuf-mirror-bundle`.
    #[error("{} is not a tuf-mirror key bundle: {reason}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// What `format` holds instead.
        reason: String,
    },
    /// A format version this library does not read.
    #[error(
        "key bundle {} has format version {version}; this library reads version {VERSION} only",
        file.display()
    )]
    Version {
        /// The file.
        file: PathBuf,
        /// The version found (as written).
        version: String,
    },
    /// A field holds a value that is refused.
    #[error("key bundle {}: {at}: {reason}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where, as a path such as `repositories[0] ("internal").targets_keys`.
        at: String,
        /// Why.
        reason: String,
    },
}

/// A parsed, checked key bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    file: PathBuf,
    comment: Option<String>,
    repositories: Vec<BundleRepository>,
}

/// One repository of a bundle.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BundleRepository {
    /// The repository name (the first path segment the mirror serves it under).
    pub name: String,
    /// Base URLs of the repository on its mirrors, in order of preference, each ending
    /// with `/`; metadata is under `metadata/`, targets under `targets/`.
    pub mirrors: Vec<Url>,
    /// The mirror root document (the trust anchor), as written in the bundle; verified
    /// as a root signed by its own root keys.
    pub mirror_root: Vec<u8>,
    /// Its version.
    pub mirror_root_version: u64,
    /// The pinned upstream targets keys and threshold.
    pub targets_keys: PinnedKeys,
    /// The upstream's root document, if the bundle carries it (for upstream-anchored
    /// clients); verified as a root signed by its own root keys.
    pub upstream_root: Option<Vec<u8>>,
    /// The client policy.
    pub policy: ClientPolicy,
}

/// What a bundle sets for a repository's clients besides trust: expiry grace per class
/// of role (absent = strict) and size limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientPolicy {
    /// How long past expiry upstream-signed roles (targets and delegated roles) are
    /// still accepted.
    pub upstream_targets_grace: Option<Duration>,
    /// How long past expiry the mirror's timestamp is still accepted (a mirror daemon
    /// that is down).
    pub mirror_timestamp_grace: Option<Duration>,
    /// How long past expiry the mirror's snapshot is still accepted.
    pub mirror_snapshot_grace: Option<Duration>,
    /// Size limits.
    pub limits: Limits,
}

impl Bundle {
    /// Reads and checks the bundle at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| BundleError::Read {
            file: path.to_owned(),
            source,
        })?;
        Bundle::from_slice(&bytes, path)
    }

    /// Parses and checks `bytes`; `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: impl Into<PathBuf>) -> Result<Bundle, BundleError> {
        parse(bytes, file.into())
    }

    /// The file it was read from, as given.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The free-text `comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Every repository, in file order.
    pub fn repositories(&self) -> &[BundleRepository] {
        &self.repositories
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&BundleRepository> {
        self.repositories.iter().find(|r| r.name == name)
    }
}

/// Only `format` and `version`, read first so that a newer bundle is refused for its
/// version rather than for a field this version does not know.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u64,
    #[serde(default)]
    comment: Option<String>,
    repositories: Vec<RawRepository>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    name: String,
    mirrors: Vec<String>,
    mirror_root: Box<RawValue>,
    targets_keys: RawPins,
    #[serde(default)]
    next_targets_keys: Option<RawPins>,
    #[serde(default)]
    upstream_root: Option<Box<RawValue>>,
    #[serde(default)]
    policy: RawPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPins {
    keys: BTreeMap<String, Box<RawValue>>,
    threshold: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    grace: RawGrace,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGrace {
    upstream_targets: Option<String>,
    mirror_timestamp: Option<String>,
    mirror_snapshot: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    root: Option<u64>,
    timestamp: Option<u64>,
    snapshot: Option<u64>,
    targets: Option<u64>,
    max_root_updates: Option<u32>,
    max_lookup_roles: Option<usize>,
}

/// The raw key objects of a root, to compare pinned keys with byte for byte.
#[derive(Deserialize)]
struct RootKeys {
    signed: RootKeysSigned,
}

#[derive(Deserialize)]
struct RootKeysSigned {
    keys: BTreeMap<String, Box<RawValue>>,
}

fn parse(bytes: &[u8], file: PathBuf) -> Result<Bundle, BundleError> {
    let malformed = |reason: String| BundleError::Malformed {
        file: file.clone(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let header: Header =
        serde_json::from_str(text).map_err(|e| malformed(format!("not a JSON object: {e}")))?;
    match &header.format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(BundleError::Format {
                file,
                reason: format!("format is {other}, expected {FORMAT:?}"),
            })
        }
        None => {
            return Err(BundleError::Format {
                file,
                reason: format!("no \"format\" field (expected {FORMAT:?})"),
            })
        }
    }
    match &header.version {
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(BundleError::Version {
                file,
                version: v.to_string(),
            })
        }
        None => {
            return Err(BundleError::Version {
                file,
                version: "(none)".into(),
            })
        }
    }
    // Duplicate keys would make the file mean two things; canonical JSON refuses them
    // (and non-integer numbers, which no field takes).
    canonicalize(text).map_err(|e| malformed(e.to_string()))?;
    let raw: RawBundle = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let invalid = |at: String, reason: String| BundleError::Invalid {
        file: file.clone(),
        at,
        reason,
    };
    if raw.repositories.is_empty() {
        return Err(invalid("repositories".into(), "lists no repository".into()));
    }
    let mut names = HashSet::new();
    let mut repositories = Vec::with_capacity(raw.repositories.len());
    for (i, r) in raw.repositories.into_iter().enumerate() {
        let at = format!("repositories[{i}] ({:?})", r.name);
        let repo = repository(r, &at, &file).map_err(|(field, reason)| {
            invalid(
                if field.is_empty() {
                    at.clone()
                } else {
                    format!("{at}.{field}")
                },
                reason,
            )
        })?;
        if !names.insert(repo.name.clone()) {
            return Err(invalid(at, "the name is used twice".into()));
        }
        repositories.push(repo);
    }
    Ok(Bundle {
        file,
        comment: raw.comment,
        repositories,
    })
}

type FieldError = (&'static str, String);

fn repository(r: RawRepository, at: &str, file: &Path) -> Result<BundleRepository, FieldError> {
    check_name(&r.name).map_err(|e| ("name", e))?;
    let mirrors = mirrors(&r.mirrors).map_err(|e| ("mirrors", e))?;
    let where_ = |field: &str| format!("{} {at}.{field}", file.display());
    let root_text = r.mirror_root.get();
    let root = TrustedRoot::anchor(root_text.as_bytes(), &where_("mirror_root"))
        .map_err(|e| ("mirror_root", format!("not a usable trust anchor: {e}")))?;
    let root_keys: RootKeys = serde_json::from_str(root_text)
        .map_err(|e| ("mirror_root", format!("keys unreadable: {e}")))?;
    let mut targets_keys = pins(&r.targets_keys, &[&root_keys]).map_err(|e| ("targets_keys", e))?;
    let upstream_root = match &r.upstream_root {
        None => None,
        Some(u) => {
            TrustedRoot::anchor(u.get().as_bytes(), &where_("upstream_root"))
                .map_err(|e| ("upstream_root", format!("not a usable root: {e}")))?;
            Some(u.get().as_bytes().to_vec())
        }
    };
    if let Some(next) = &r.next_targets_keys {
        // The keys a rotation moves to are listed by the upstream root, not (yet) by
        // the mirror root.
        let upstream_keys: Option<RootKeys> = r
            .upstream_root
            .as_ref()
            .and_then(|u| serde_json::from_str(u.get()).ok());
        let roots: Vec<&RootKeys> = std::iter::once(&root_keys)
            .chain(upstream_keys.as_ref())
            .collect();
        let next = pins(next, &roots).map_err(|e| ("next_targets_keys", e))?;
        targets_keys = targets_keys.with_next(next);
    }
    let policy = policy(&r.policy)?;
    Ok(BundleRepository {
        name: r.name,
        mirrors,
        mirror_root_version: root.version(),
        mirror_root: root_text.as_bytes().to_vec(),
        targets_keys,
        upstream_root,
        policy,
    })
}

/// The daemon's repository-name grammar: `[a-z0-9][a-z0-9._-]{0,62}`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = b
        .first()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
        && b.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a repository name: 1 to 63 of a-z, 0-9, \".\", \"_\", \"-\", \
             starting with a letter or digit"
        ))
    }
}

fn mirrors(list: &[String]) -> Result<Vec<Url>, String> {
    if list.is_empty() {
        return Err("lists no mirror URL".into());
    }
    let mut out: Vec<Url> = Vec::with_capacity(list.len());
    for text in list {
        let u = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https" | "file") {
            return Err(format!("{text:?}: only http, https and file URLs are used"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("{text:?}: credentials do not belong in a bundle"));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(format!("{text:?}: a base URL has no query or fragment"));
        }
        let u = dir_url(u);
        if out.contains(&u) {
            return Err(format!("{text:?} is listed twice"));
        }
        out.push(u);
    }
    Ok(out)
}

/// Checks the pinned keys: at least one, each a usable key object whose id is its TUF
/// key id, or the id the bundle's mirror root lists it under (upstreams that compute
/// key ids another way; the mirror root copies them verbatim); no public key twice; a
/// threshold from 1 to the number of keys.
fn pins(raw: &RawPins, roots: &[&RootKeys]) -> Result<PinnedKeys, String> {
    if raw.keys.is_empty() {
        return Err("lists no key".into());
    }
    if raw.threshold == 0 || raw.threshold > raw.keys.len() as u64 {
        return Err(format!(
            "threshold {} with {} key(s): it must be from 1 to the number of keys",
            raw.threshold,
            raw.keys.len()
        ));
    }
    let mut keys = HashMap::with_capacity(raw.keys.len());
    let mut publics: HashMap<String, &str> = HashMap::new();
    for (id, text) in &raw.keys {
        let text = text.get();
        let json: KeyJson =
            serde_json::from_str(text).map_err(|e| format!("key {id}: not a key object: {e}"))?;
        let public = PublicKey::from_json(&json);
        if !public.is_supported() {
            return Err(format!(
                "key {id}: {} with this public key cannot verify signatures (supported: \
                 ed25519, ecdsa-sha2-nistp256/384, rsassa-pss-sha256)",
                public.describe()
            ));
        }
        let computed = key_id(text).map_err(|e| format!("key {id}: {e}"))?;
        if &computed != id {
            let same_in_root = roots.iter().any(|root| {
                root.signed
                    .keys
                    .get(id)
                    .is_some_and(|r| canonicalize(r.get()).ok() == canonicalize(text).ok())
            });
            if !same_in_root {
                return Err(format!(
                    "key id {id} does not match its key object (whose key id is {computed}) \
                     and the mirror root does not list this key under it"
                ));
            }
        }
        if let Some(other) = publics.insert(public.public().to_owned(), id) {
            return Err(format!(
                "keys {other} and {id} are the same public key: a threshold counts keys, not ids"
            ));
        }
        keys.insert(id.clone(), json);
    }
    Ok(PinnedKeys::new(keys, raw.threshold))
}

fn grace(text: &Option<String>, field: &'static str) -> Result<Option<Duration>, FieldError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let d = parse_duration(text).map_err(|e| (field, e))?;
    if d > MAX_GRACE {
        return Err((
            field,
            format!(
                "{text} is above the cap of {} on any grace",
                BundleDuration(MAX_GRACE)
            ),
        ));
    }
    Ok((!d.is_zero()).then_some(d))
}

fn policy(raw: &RawPolicy) -> Result<ClientPolicy, FieldError> {
    let g = &raw.grace;
    let l = &raw.limits;
    let mut limits = Limits::default();
    let sizes = [
        (l.root, &mut limits.root, "policy.limits.root"),
        (
            l.timestamp,
            &mut limits.timestamp,
            "policy.limits.timestamp",
        ),
        (l.snapshot, &mut limits.snapshot, "policy.limits.snapshot"),
        (l.targets, &mut limits.targets, "policy.limits.targets"),
    ];
    for (value, slot, field) in sizes {
        if let Some(v) = value {
            if v == 0 {
                return Err((field, "must be at least 1 byte".into()));
            }
            *slot = v;
        }
    }
    if let Some(v) = l.max_root_updates {
        if v == 0 {
            return Err((
                "policy.limits.max_root_updates",
                "must be at least 1".into(),
            ));
        }
        limits.max_root_updates = v;
    }
    if let Some(v) = l.max_lookup_roles {
        if v == 0 {
            return Err((
                "policy.limits.max_lookup_roles",
                "must be at least 1".into(),
            ));
        }
        limits.max_lookup_roles = v;
    }
    Ok(ClientPolicy {
        upstream_targets_grace: grace(&g.upstream_targets, "policy.grace.upstream_targets")?,
        mirror_timestamp_grace: grace(&g.mirror_timestamp, "policy.grace.mirror_timestamp")?,
        mirror_snapshot_grace: grace(&g.mirror_snapshot, "policy.grace.mirror_snapshot")?,
        limits,
    })
}

#[cfg(test)]
mod tests;
