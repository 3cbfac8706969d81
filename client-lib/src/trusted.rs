//! Verified metadata: what the engine holds after each check passed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_lc_rs::digest;
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::key::KeyRing;
use crate::names::TOP_LEVEL;
use crate::schema::{
    DelegatedRole, MetaFile, RoleKeys, RootSigned, SnapshotSigned, SuccinctRoles, TargetDesc,
    TargetsSigned, TimestampSigned,
};
use crate::verify::{Authority, Opened};

/// A number naming one verified instance of a role within this process, so that a
/// child verified against it is not taken as verified against another instance with
/// the same name and version.
pub(crate) fn instance_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// sha256 of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

fn check_role_keys(
    role: &str,
    file: &str,
    who: &str,
    keyids: &[String],
    threshold: u64,
) -> Result<()> {
    if threshold == 0 {
        return Err(Error::malformed(role, file, format!("{who}: threshold 0")));
    }
    let mut seen = HashSet::with_capacity(keyids.len());
    if let Some(dup) = keyids.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(Error::malformed(
            role,
            file,
            format!("{who}: key id {dup} listed twice"),
        ));
    }
    Ok(())
}

/// A verified root.
#[derive(Debug)]
pub struct TrustedRoot {
    /// Bytes as received.
    pub bytes: Arc<[u8]>,
    /// sha256 of the bytes.
    pub sha256: [u8; 32],
    /// The signed part.
    pub signed: RootSigned,
    /// Parsed keys.
    pub ring: KeyRing,
    /// Expiry.
    pub expires: Timestamp,
    pub(crate) id: u64,
}

impl TrustedRoot {
    /// Parses an opened root (signatures are checked by the caller).
    pub(crate) fn from_parts(signed: RootSigned, o: &Opened<'_, ()>, bytes: &[u8]) -> Result<Self> {
        for name in TOP_LEVEL {
            let Some(r) = signed.roles.get(name) else {
                return Err(Error::malformed(o.role, o.file, format!("no {name} role")));
            };
            check_role_keys(o.role, o.file, name, &r.keyids, r.threshold)?;
        }
        let ring = KeyRing::new(&signed.keys);
        Ok(TrustedRoot {
            bytes: bytes.into(),
            sha256: sha256(bytes),
            signed,
            ring,
            expires: o.expires,
            id: instance_id(),
        })
    }

    /// Verifies `bytes` as a trust anchor (TUF 5.2): a well-formed root signed by a
    /// threshold of its own root keys. Expiry is not checked: an anchor may be old, the
    /// client chains forward from it. `file` names it in errors.
    pub fn anchor(bytes: &[u8], file: &str) -> Result<TrustedRoot> {
        let o = crate::verify::open::<RootSigned>(bytes, "root", "root", file)?;
        let (body, checked) = o.split();
        let root = TrustedRoot::from_parts(body, &checked, bytes)?;
        checked.verify(&root.authority("root"))?;
        Ok(root)
    }

    /// Keys and threshold of a top-level role (present: checked at parse).
    pub fn role(&self, name: &str) -> &RoleKeys {
        static EMPTY: RoleKeys = RoleKeys {
            keyids: Vec::new(),
            threshold: u64::MAX,
        };
        self.signed.roles.get(name).unwrap_or(&EMPTY)
    }

    pub(crate) fn authority(&self, name: &str) -> Authority<'_> {
        let r = self.role(name);
        Authority {
            name: "root",
            keyids: &r.keyids,
            threshold: r.threshold,
            ring: &self.ring,
        }
    }

    /// Version.
    pub fn version(&self) -> u64 {
        self.signed.version
    }

    /// Whether the keys or threshold of `role` differ in `other`.
    pub(crate) fn role_keys_changed(&self, other: &TrustedRoot, role: &str) -> bool {
        let (a, b) = (self.role(role), other.role(role));
        if a.threshold != b.threshold {
            return true;
        }
        let sa: HashSet<_> = a.keyids.iter().collect();
        let sb: HashSet<_> = b.keyids.iter().collect();
        sa != sb
            || a.keyids.iter().any(|k| {
                self.signed.keys.get(k).map(|j| &j.keyval.public)
                    != other.signed.keys.get(k).map(|j| &j.keyval.public)
            })
    }
}

/// A verified timestamp.
#[derive(Debug)]
pub struct TrustedTimestamp {
    /// Bytes as received.
    pub bytes: Arc<[u8]>,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Timestamp,
    /// The `snapshot.json` entry.
    pub snapshot: MetaFile,
}

impl TrustedTimestamp {
    pub(crate) fn from_opened(o: Opened<'_, TimestampSigned>, bytes: &[u8]) -> Result<Self> {
        let (signed, o) = o.split();
        let snapshot = signed
            .meta
            .get("snapshot.json")
            .cloned()
            .ok_or_else(|| Error::malformed(o.role, o.file, "no snapshot.json in meta"))?;
        if snapshot.version == 0 {
            return Err(Error::malformed(o.role, o.file, "snapshot version 0"));
        }
        Ok(TrustedTimestamp {
            bytes: bytes.into(),
            version: signed.version,
            expires: o.expires,
            snapshot,
        })
    }
}

/// A verified snapshot.
#[derive(Debug)]
pub struct TrustedSnapshot {
    /// Bytes as received.
    pub bytes: Arc<[u8]>,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Timestamp,
    /// `<role>.json` entries.
    pub meta: HashMap<String, MetaFile>,
}

impl TrustedSnapshot {
    pub(crate) fn from_opened(o: Opened<'_, SnapshotSigned>, bytes: &[u8]) -> Result<Self> {
        let (signed, o) = o.split();
        if let Some((name, _)) = signed.meta.iter().find(|(_, m)| m.version == 0) {
            return Err(Error::malformed(
                o.role,
                o.file,
                format!("{name} version 0"),
            ));
        }
        Ok(TrustedSnapshot {
            bytes: bytes.into(),
            version: signed.version,
            expires: o.expires,
            meta: signed.meta,
        })
    }

    /// The entry for a targets role.
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        // Keys are `<role>.json` with the role name unencoded.
        let mut key = String::with_capacity(role.len() + 5);
        key.push_str(role);
        key.push_str(".json");
        self.meta.get(&key)
    }
}

/// Delegations of a verified targets role.
#[derive(Debug)]
pub struct TrustedDelegations {
    /// Keys.
    pub ring: KeyRing,
    /// Explicit roles, in order.
    pub roles: Vec<DelegatedRole>,
    /// Position of each role in `roles`.
    index: HashMap<String, usize>,
    /// TAP 15 bins.
    pub succinct: Option<SuccinctRoles>,
}

impl TrustedDelegations {
    /// Keys and threshold this delegation gives `child`, if it delegates to it.
    pub(crate) fn authority_for<'s>(
        &'s self,
        parent: &'s str,
        child: &str,
    ) -> Option<Authority<'s>> {
        if let Some(s) = &self.succinct {
            return crate::names::succinct_has_bin(s, child).then_some(Authority {
                name: parent,
                keyids: &s.keyids,
                threshold: s.threshold,
                ring: &self.ring,
            });
        }
        let r = self.roles.get(*self.index.get(child)?)?;
        Some(Authority {
            name: parent,
            keyids: &r.keyids,
            threshold: r.threshold,
            ring: &self.ring,
        })
    }
}

/// A verified targets role (top-level or delegated).
#[derive(Debug)]
pub struct TrustedTargets {
    /// Role name.
    pub name: String,
    /// Bytes as received.
    pub bytes: Arc<[u8]>,
    sha256: std::sync::OnceLock<[u8; 32]>,
    pub(crate) id: u64,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Timestamp,
    /// Targets by path.
    pub targets: HashMap<String, TargetDesc>,
    /// Delegations.
    pub delegations: Option<TrustedDelegations>,
}

impl TrustedTargets {
    pub(crate) fn from_opened(
        o: Opened<'_, TargetsSigned>,
        bytes: &[u8],
        name: &str,
    ) -> Result<Self> {
        let (signed, o) = o.split();
        let delegations = match signed.delegations {
            None => None,
            Some(d) => {
                let roles = match (d.roles, &d.succinct_roles) {
                    (Some(_), Some(_)) => {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            "delegations has both roles and succinct_roles",
                        ))
                    }
                    (None, None) => {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            "delegations has neither roles nor succinct_roles",
                        ))
                    }
                    (roles, _) => roles.unwrap_or_default(),
                };
                let mut names = HashSet::with_capacity(roles.len());
                for r in &roles {
                    if !names.insert(r.name.as_str()) {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            format!("role {:?} delegated twice", r.name),
                        ));
                    }
                    if TOP_LEVEL.contains(&r.name.as_str()) {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            format!("delegation to top-level role {:?}", r.name),
                        ));
                    }
                    if r.paths.is_some() && r.path_hash_prefixes.is_some() {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            format!("role {:?} has both paths and path_hash_prefixes", r.name),
                        ));
                    }
                    check_role_keys(o.role, o.file, &r.name, &r.keyids, r.threshold)?;
                }
                if let Some(s) = &d.succinct_roles {
                    if !(1..=32).contains(&s.bit_length) {
                        return Err(Error::malformed(
                            o.role,
                            o.file,
                            format!("succinct_roles bit_length {}", s.bit_length),
                        ));
                    }
                    check_role_keys(o.role, o.file, "succinct_roles", &s.keyids, s.threshold)?;
                }
                let index = roles
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.name.clone(), i))
                    .collect();
                Some(TrustedDelegations {
                    ring: KeyRing::new(&d.keys),
                    roles,
                    index,
                    succinct: d.succinct_roles,
                })
            }
        };
        Ok(TrustedTargets {
            name: name.to_owned(),
            bytes: bytes.into(),
            sha256: std::sync::OnceLock::new(),
            id: instance_id(),
            version: signed.version,
            expires: o.expires,
            targets: signed.targets,
            delegations,
        })
    }

    /// sha256 of the bytes (computed once, when first asked for).
    pub fn sha256(&self) -> &[u8; 32] {
        self.sha256.get_or_init(|| sha256(&self.bytes))
    }

    /// Whether the bytes still match a snapshot entry (version, and sha256 if listed).
    pub(crate) fn matches_meta(&self, m: &MetaFile) -> bool {
        if m.version != self.version {
            return false;
        }
        if let Some(len) = m.length {
            if len != self.bytes.len() as u64 {
                return false;
            }
        }
        match &m.hashes {
            None => true,
            Some(h) => h.0.iter().all(|(alg, want)| match alg.digest_alg() {
                Some(d) if *d == digest::SHA256 => self.sha256().as_slice() == want.as_slice(),
                Some(d) => digest::digest(d, &self.bytes).as_ref() == want.as_slice(),
                None => false,
            }),
        }
    }
}
