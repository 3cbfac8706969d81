//! Writing a key bundle (`tuf-mirror bundle export` and tests).
//!
//! Documents are embedded as written: the mirror root's exact bytes appear in the bundle
//! (as a JSON value, so the security team can read it), and key objects are copied as
//! the root lists them. Every bundle written is parsed back before it is returned, so
//! nothing is written that [`Bundle::load`](super::Bundle::load) would refuse.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use url::Url;

use super::{Bundle, BundleDuration, BundleError, ClientPolicy, FORMAT, VERSION};
use crate::policy::Limits;

/// One repository to write into a bundle.
#[derive(Debug, Clone)]
pub struct RepositoryExport<'a> {
    /// Name.
    pub name: &'a str,
    /// Base URLs on the mirrors (`<base>/metadata/`, `<base>/targets/`).
    pub mirrors: &'a [Url],
    /// The mirror root document, as served.
    pub mirror_root: &'a [u8],
    /// Pinned keys: key id and key object (JSON text).
    pub targets_keys: Vec<(String, String)>,
    /// Pinned threshold.
    pub threshold: u64,
    /// The keys and threshold an upstream targets-key rotation moves to, when one is
    /// under way (the mirror root still lists the current ones).
    pub next_targets_keys: Option<(Vec<(String, String)>, u64)>,
    /// The upstream root document, if carried.
    pub upstream_root: Option<&'a [u8]>,
    /// Client policy.
    pub policy: ClientPolicy,
}

#[derive(Deserialize)]
struct Root<'a> {
    #[serde(borrow)]
    signed: RootSigned<'a>,
}

#[derive(Deserialize)]
struct RootSigned<'a> {
    #[serde(borrow)]
    keys: BTreeMap<String, &'a RawValue>,
    roles: BTreeMap<String, Role>,
}

#[derive(Deserialize)]
struct Role {
    keyids: Vec<String>,
    threshold: u64,
}

/// The targets keys (id and key object as written) and threshold a root lists: what a
/// bundle pins for a mirror whose root this is.
pub fn pins_from_root(root: &[u8]) -> Result<(Vec<(String, String)>, u64), String> {
    let text = std::str::from_utf8(root).map_err(|e| format!("not UTF-8: {e}"))?;
    let r: Root<'_> = serde_json::from_str(text).map_err(|e| format!("not a root: {e}"))?;
    let role = r
        .signed
        .roles
        .get("targets")
        .ok_or("the root has no targets role")?;
    let mut keys = Vec::with_capacity(role.keyids.len());
    for id in &role.keyids {
        let key = r
            .signed
            .keys
            .get(id)
            .ok_or_else(|| format!("targets key {id} is not among the root's keys"))?;
        keys.push((id.clone(), key.get().to_owned()));
    }
    Ok((keys, role.threshold))
}

#[derive(Serialize)]
struct Out<'a> {
    format: &'static str,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    repositories: Vec<OutRepository<'a>>,
}

#[derive(Serialize)]
struct OutRepository<'a> {
    name: &'a str,
    mirrors: Vec<&'a str>,
    mirror_root: Box<RawValue>,
    targets_keys: OutPins,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_targets_keys: Option<OutPins>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_root: Option<Box<RawValue>>,
    policy: OutPolicy,
}

#[derive(Serialize)]
struct OutPins {
    keys: BTreeMap<String, Box<RawValue>>,
    threshold: u64,
}

#[derive(Serialize)]
struct OutPolicy {
    grace: BTreeMap<&'static str, String>,
    limits: BTreeMap<&'static str, u64>,
}

fn raw(text: &[u8], what: &str, name: &str) -> Result<Box<RawValue>, BundleError> {
    let s = String::from_utf8(text.to_vec()).map_err(|e| invalid(name, what, e.to_string()))?;
    RawValue::from_string(s.trim().to_owned()).map_err(|e| invalid(name, what, e.to_string()))
}

fn invalid(name: &str, what: &str, reason: String) -> BundleError {
    BundleError::Invalid {
        file: "(bundle being written)".into(),
        at: format!("{name}.{what}"),
        reason,
    }
}

fn out_policy(p: &ClientPolicy) -> OutPolicy {
    let mut grace = BTreeMap::new();
    for (field, value) in [
        ("upstream_targets", p.upstream_targets_grace),
        ("mirror_timestamp", p.mirror_timestamp_grace),
        ("mirror_snapshot", p.mirror_snapshot_grace),
    ] {
        if let Some(d) = value {
            grace.insert(field, BundleDuration(d).to_string());
        }
    }
    // Only limits that differ from the library's defaults are written.
    let d = Limits::default();
    let l = &p.limits;
    let mut limits = BTreeMap::new();
    for (field, value, default) in [
        ("root", l.root, d.root),
        ("timestamp", l.timestamp, d.timestamp),
        ("snapshot", l.snapshot, d.snapshot),
        ("targets", l.targets, d.targets),
        (
            "max_root_updates",
            u64::from(l.max_root_updates),
            u64::from(d.max_root_updates),
        ),
        (
            "max_lookup_roles",
            l.max_lookup_roles as u64,
            d.max_lookup_roles as u64,
        ),
    ] {
        if value != default {
            limits.insert(field, value);
        }
    }
    OutPolicy { grace, limits }
}

/// Renders a bundle (pretty JSON, newline-terminated) and checks it by parsing it back;
/// `file` names it in errors.
pub fn render(
    comment: Option<&str>,
    repositories: &[RepositoryExport<'_>],
    file: &Path,
) -> Result<Vec<u8>, BundleError> {
    let mut out = Out {
        format: FORMAT,
        version: VERSION,
        comment,
        repositories: Vec::with_capacity(repositories.len()),
    };
    for r in repositories {
        let mut keys = BTreeMap::new();
        for (id, key) in &r.targets_keys {
            keys.insert(id.clone(), raw(key.as_bytes(), "targets_keys", r.name)?);
        }
        let next_targets_keys = match &r.next_targets_keys {
            None => None,
            Some((next, threshold)) => {
                let mut keys = BTreeMap::new();
                for (id, key) in next {
                    keys.insert(
                        id.clone(),
                        raw(key.as_bytes(), "next_targets_keys", r.name)?,
                    );
                }
                Some(OutPins {
                    keys,
                    threshold: *threshold,
                })
            }
        };
        out.repositories.push(OutRepository {
            name: r.name,
            mirrors: r.mirrors.iter().map(Url::as_str).collect(),
            mirror_root: raw(r.mirror_root, "mirror_root", r.name)?,
            targets_keys: OutPins {
                keys,
                threshold: r.threshold,
            },
            next_targets_keys,
            upstream_root: r
                .upstream_root
                .map(|u| raw(u, "upstream_root", r.name))
                .transpose()?,
            policy: out_policy(&r.policy),
        });
    }
    let mut bytes = serde_json::to_vec_pretty(&out).map_err(|e| BundleError::Malformed {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Bundle::from_slice(&bytes, file)?;
    Ok(bytes)
}
