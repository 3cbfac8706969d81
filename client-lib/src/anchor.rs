//! Upstream-anchored trust: the client pins the upstream's root instead of its targets
//! keys, follows the upstream root chain the mirror republishes under `upstream/`,
//! verifies the upstream's own timestamp and snapshot there, and requires every targets
//! role the mirror serves to be the one that upstream snapshot lists.
//!
//! The mirror still vouches for liveness (its own root, timestamp and snapshot are
//! verified as in the other modes); what the targets are, which versions are current,
//! and how old that state may be are the upstream's word, under its original signatures.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use url::Url;

use crate::error::{Error, Result};
use crate::policy::{ExpiryPolicy, RoleClass};
use crate::schema::{MetaFile, RootSigned, SnapshotSigned, TimestampSigned};
use crate::transport::fetch_limited;
use crate::trusted::{TrustedRoot, TrustedSnapshot, TrustedTargets, TrustedTimestamp};
use crate::updater::Updater;
use crate::verify::{check_meta_file, open, Authority};

/// The trust input of [`TargetsTrust::UpstreamAnchored`](crate::TargetsTrust): the
/// upstream's root, where the mirror republishes the upstream's metadata, and how long
/// past expiry upstream-signed metadata may still be used.
///
/// ```
/// use std::time::Duration;
/// use tuf_mirror_client::UpstreamAnchor;
///
/// # fn main() -> Result<(), tuf_mirror_client::Error> {
/// let upstream_root = br#"{"signed": {}, "signatures": []}"#; // the upstream's root.json
/// let anchor = UpstreamAnchor::new(upstream_root)
///     .with_upstream_base("https://mirror.example/repo/upstream/".parse().unwrap())
///     .dangerous_with_upstream_grace(Duration::from_secs(14 * 24 * 3600))?;
/// assert_eq!(anchor.upstream_grace(), Duration::from_secs(14 * 24 * 3600));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UpstreamAnchor {
    root: Arc<[u8]>,
    base: Option<Url>,
    grace: Duration,
    expiry: ExpiryPolicy,
}

impl std::fmt::Debug for UpstreamAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAnchor")
            .field("root_bytes", &self.root.len())
            .field("upstream_base", &self.base.as_ref().map(Url::as_str))
            .field("upstream_grace_secs", &self.grace.as_secs())
            .finish()
    }
}

impl UpstreamAnchor {
    /// Anchors on `upstream_root`, the bytes of a root of the upstream repository
    /// (checked when the updater starts: it must be signed by a threshold of its own
    /// root keys). Upstream metadata is read from `<metadata_base>/../upstream/`, and
    /// expiry is strict.
    pub fn new(upstream_root: &[u8]) -> Self {
        UpstreamAnchor {
            root: upstream_root.into(),
            base: None,
            grace: Duration::ZERO,
            expiry: ExpiryPolicy::strict(),
        }
    }

    /// Reads the upstream's metadata (`N.root.json`, `timestamp.json`,
    /// `N.snapshot.json`) from `base` instead of `<metadata_base>/../upstream/`.
    pub fn with_upstream_base(mut self, base: Url) -> Self {
        self.base = Some(crate::updater::dir_url(base));
        self
    }

    /// Accepts upstream-signed metadata (the upstream's root, timestamp and snapshot,
    /// and every targets role) up to `grace` after it expired.
    ///
    /// **This weakens freeze protection**: whoever controls the mirror can keep the site
    /// on the upstream state it last republished for `grace` after the upstream's
    /// timestamp expired. It is the grace an air-gapped site needs because upstream
    /// copies arrive rarely; each use is logged at warn level with the role and how late
    /// it is. Capped at [`MAX_GRACE`](crate::MAX_GRACE).
    pub fn dangerous_with_upstream_grace(mut self, grace: Duration) -> Result<Self> {
        let mut p = ExpiryPolicy::strict();
        for class in [
            RoleClass::Root,
            RoleClass::Timestamp,
            RoleClass::Snapshot,
            RoleClass::Targets,
        ] {
            p = p.dangerous_with_grace(class, grace)?;
        }
        self.expiry = p;
        self.grace = grace;
        Ok(self)
    }

    /// The upstream root bytes given.
    pub fn upstream_root(&self) -> &[u8] {
        &self.root
    }

    /// The upstream base URL, if set.
    pub fn upstream_base(&self) -> Option<&Url> {
        self.base.as_ref()
    }

    /// The grace on upstream-signed metadata (zero: strict).
    pub fn upstream_grace(&self) -> Duration {
        self.grace
    }
}

/// What an upstream-anchored updater trusts of the upstream.
pub(crate) struct Upstream {
    pub anchor: UpstreamAnchor,
    pub base: Url,
    pub root: TrustedRoot,
    pub timestamp: Option<TrustedTimestamp>,
    pub snapshot: Option<TrustedSnapshot>,
    /// The mirror and upstream snapshots last found to agree.
    agreed: Option<Agreed>,
}

/// The bytes of a mirror snapshot and an upstream snapshot that agree.
struct Agreed {
    mirror: Arc<[u8]>,
    upstream: Arc<[u8]>,
}

/// Opens an upstream root, signed by a threshold of its own keys (TUF 5.2 for the
/// upstream's trust anchor, or a stored root verified before).
fn open_root(bytes: &[u8], file: &str) -> Result<TrustedRoot> {
    let o = open::<RootSigned>(bytes, "upstream root", "root", file)?;
    let (body, checked) = o.split();
    let root = TrustedRoot::from_parts(body, &checked, bytes)?;
    checked.verify(&authority(&root, "root"))?;
    Ok(root)
}

/// The keys a top-level role of the upstream is signed with, per the upstream root.
pub(crate) fn authority<'r>(root: &'r TrustedRoot, role: &str) -> Authority<'r> {
    let r = root.role(role);
    Authority {
        name: "upstream root",
        keyids: &r.keyids,
        threshold: r.threshold,
        ring: &root.ring,
    }
}

impl Upstream {
    /// The upstream state at start: the stored upstream root unless `fresh` (as
    /// [`Updater::init`] replaces the mirror root), else the anchor's.
    pub fn start(
        anchor: &UpstreamAnchor,
        metadata_base: &Url,
        store: &dyn crate::store::MetadataStore,
        fresh: bool,
    ) -> Result<Self> {
        let base = match &anchor.base {
            Some(b) => b.clone(),
            None => metadata_base
                .join("../upstream/")
                .map_err(|e| Error::Config {
                    reason: format!("cannot derive the upstream URL from {metadata_base}: {e}"),
                })?,
        };
        let stored = if fresh {
            None
        } else {
            store.load_upstream("root")?
        };
        let root = match &stored {
            Some(bytes) => open_root(bytes, "stored upstream root.json"),
            None => open_root(&anchor.root, "upstream trust anchor"),
        }
        .map_err(|e| Error::TrustAnchor {
            file: "upstream root".into(),
            reason: e.to_string(),
        })?;
        if stored.is_none() {
            store.store_upstream("root", &anchor.root)?;
        }
        Ok(Upstream {
            anchor: anchor.clone(),
            base,
            root,
            timestamp: None,
            snapshot: None,
            agreed: None,
        })
    }

    fn url(&self, file: &str) -> Result<Url> {
        self.base.join(file).map_err(|e| Error::Config {
            reason: format!("cannot join {file:?} to the upstream URL: {e}"),
        })
    }

    /// Freeze protection on upstream-signed metadata, with the upstream grace.
    pub fn check_expiry(
        &self,
        class: RoleClass,
        role: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        if now < expires {
            return Ok(());
        }
        self.anchor
            .expiry
            .check(class, &format!("upstream {role}"), expires, now)
            .map_err(|e| match e {
                Error::Expired {
                    expires,
                    grace_secs,
                    ..
                } => Error::UpstreamExpired {
                    role: role.to_owned(),
                    expires,
                    grace_secs,
                },
                e => e,
            })
    }

    /// The upstream snapshot entry for targets role `name` (a role it does not list is
    /// refused).
    fn role_meta(&self, name: &str, mirror_version: u64, file: &str) -> Result<&MetaFile> {
        let s = self.snapshot.as_ref().ok_or_else(|| Error::Config {
            reason: "targets before the upstream snapshot".into(),
        })?;
        s.role_meta(name).ok_or_else(|| Error::UpstreamMismatch {
            role: name.to_owned(),
            file: file.to_owned(),
            mirror_version,
            upstream_version: None,
            upstream_snapshot: s.version,
            reason: "the upstream snapshot does not list it",
        })
    }

    /// The bytes of targets role `name` the mirror serves, before their signature is
    /// checked: length and hashes as the upstream snapshot lists them, where it does.
    pub fn check_role_bytes(
        &self,
        name: &str,
        mirror_version: u64,
        bytes: &[u8],
        file: &str,
    ) -> Result<()> {
        let m = self.role_meta(name, mirror_version, file)?;
        // An algorithm the engine cannot compute is not a mismatch: say what it is.
        if let Some((alg, _)) = m
            .hashes
            .iter()
            .flat_map(|h| &h.0)
            .find(|(a, _)| a.digest_alg().is_none())
        {
            return Err(Error::Integrity {
                what: name.to_owned(),
                file: file.to_owned(),
                reason: format!(
                    "the upstream snapshot lists unsupported hash algorithm {}",
                    alg.name()
                ),
            });
        }
        check_meta_file(m, bytes, name, file).map_err(|_| Error::UpstreamMismatch {
            role: name.to_owned(),
            file: file.to_owned(),
            mirror_version,
            upstream_version: Some(m.version),
            upstream_snapshot: self.snapshot.as_ref().map_or(0, |s| s.version),
            reason: "its bytes differ from the length or hashes the upstream snapshot lists",
        })
    }

    /// The version inside a verified targets role: exactly the upstream snapshot's.
    pub fn check_role_version(&self, name: &str, version: u64, file: &str) -> Result<()> {
        let m = self.role_meta(name, version, file)?;
        if m.version != version {
            return Err(mismatch(name, file, version, m.version, self));
        }
        Ok(())
    }

    /// Whether a role held in memory is still the one the upstream snapshot lists.
    pub fn still_listed(&self, r: &TrustedTargets) -> bool {
        self.snapshot
            .as_ref()
            .and_then(|s| s.role_meta(&r.name))
            .is_some_and(|m| r.matches_meta(m))
    }
}

fn mismatch(name: &str, file: &str, mirror: u64, upstream: u64, up: &Upstream) -> Error {
    Error::UpstreamMismatch {
        role: name.to_owned(),
        file: file.to_owned(),
        mirror_version: mirror,
        upstream_version: Some(upstream),
        upstream_snapshot: up.snapshot.as_ref().map_or(0, |s| s.version),
        reason: if mirror < upstream {
            "older than the upstream snapshot lists (a rollback, or a mix of versions)"
        } else {
            "newer than the upstream snapshot lists"
        },
    }
}

impl Updater {
    /// The trusted upstream root (upstream-anchored mode).
    pub fn upstream_root(&self) -> Option<&TrustedRoot> {
        self.upstream.as_ref().map(|u| &u.root)
    }

    /// The trusted upstream timestamp, after a refresh (upstream-anchored mode).
    pub fn upstream_timestamp(&self) -> Option<&TrustedTimestamp> {
        self.upstream.as_ref().and_then(|u| u.timestamp.as_ref())
    }

    /// The trusted upstream snapshot, after a refresh (upstream-anchored mode).
    pub fn upstream_snapshot(&self) -> Option<&TrustedSnapshot> {
        self.upstream.as_ref().and_then(|u| u.snapshot.as_ref())
    }

    /// After the mirror's root, timestamp and snapshot: the upstream's root chain,
    /// timestamp and snapshot, and the check that the mirror's snapshot lists exactly
    /// the upstream's versions. When they differ, both timestamps are fetched once more
    /// before that is an error: a client may have read the mirror's timestamp just
    /// before the mirror published a new upstream state.
    pub(crate) fn update_upstream(&mut self) -> Result<()> {
        let Some(mut up) = self.upstream.take() else {
            return Ok(());
        };
        let r = self.upstream_steps(&mut up, true);
        self.upstream = Some(up);
        r?;
        match self.agree_with_upstream() {
            Err(e @ Error::UpstreamMismatch { .. }) => {
                tracing::info!(
                    error = %e,
                    "mirror and upstream snapshots differ; fetching both timestamps again"
                );
                self.refresh_mirror_state()?;
                let Some(mut up) = self.upstream.take() else {
                    return Ok(());
                };
                let r = self.upstream_steps(&mut up, false);
                self.upstream = Some(up);
                r?;
                self.agree_with_upstream()
            }
            r => r,
        }
    }

    fn upstream_steps(&mut self, up: &mut Upstream, with_root: bool) -> Result<()> {
        if with_root {
            self.upstream_root_chain(up)?;
            // Not required (the targets keys are the upstream root's), but a mirror whose
            // root lists other targets keys fails stock TUF clients, and the daemon never
            // publishes one: it is either behind or misbehaving.
            if self.root.role_keys_changed(&up.root, "targets") {
                tracing::warn!(
                    mirror_root = self.root.version(),
                    upstream_root = up.root.version(),
                    "the mirror root lists targets keys other than the upstream root's"
                );
            }
        }
        self.upstream_timestamp_step(up)?;
        self.upstream_snapshot_step(up)
    }

    /// TUF 5.3 on the upstream's chain, from the trusted upstream root through
    /// `upstream/N.root.json`.
    fn upstream_root_chain(&mut self, up: &mut Upstream) -> Result<()> {
        for _ in 0..self.config.limits.max_root_updates {
            let Some(next) = up.root.version().checked_add(1) else {
                break;
            };
            let url = up.url(&format!("{next}.root.json"))?;
            // 5.3.3: fetch N+1; its absence ends the chain.
            let bytes = match fetch_limited(&*self.transport, &url, self.config.limits.root) {
                Ok(b) => b,
                Err(Error::NotFound { .. }) => break,
                Err(e) => return Err(e),
            };
            let url_s = url.to_string();
            let o = open::<RootSigned>(&bytes, "upstream root", "root", &url_s)?;
            // 5.3.4: signed by a threshold of the trusted upstream root's root keys...
            o.verify(&authority(&up.root, "root"))?;
            let (body, checked) = o.split();
            let new = TrustedRoot::from_parts(body, &checked, &bytes)?;
            // ...and by a threshold of its own root keys.
            checked.verify(&authority(&new, "root"))?;
            // 5.3.5: exactly the next version.
            if new.version() != next {
                return Err(Error::Version {
                    role: "upstream root".into(),
                    file: url_s,
                    expected: next,
                    got: new.version(),
                    reason: "upstream root chain is not consecutive",
                });
            }
            // 5.3.7/5.3.8: persist, trust.
            self.store.store_upstream("root", &bytes)?;
            self.stats.fetched.push(format!("upstream/{next}.root"));
            // 5.3.11: rotated keys invalidate what they signed.
            if up.root.role_keys_changed(&new, "timestamp") {
                up.timestamp = None;
                up.snapshot = None;
            }
            if up.root.role_keys_changed(&new, "snapshot") {
                up.snapshot = None;
            }
            if up.root.role_keys_changed(&new, "targets") {
                self.roles.clear();
            }
            up.root = new;
            tracing::info!(version = next, "updated upstream root");
        }
        // 5.3.10: freeze protection on the final upstream root, with the upstream grace.
        up.check_expiry(RoleClass::Root, "root", up.root.expires, self.now)
    }

    fn open_upstream_timestamp(
        &self,
        up: &Upstream,
        bytes: &[u8],
        file: &str,
    ) -> Result<TrustedTimestamp> {
        let o = open::<TimestampSigned>(bytes, "upstream timestamp", "timestamp", file)?;
        o.verify(&authority(&up.root, "timestamp"))?;
        TrustedTimestamp::from_opened(o, bytes)
    }

    /// TUF 5.4 on `upstream/timestamp.json`, with the upstream keys and grace.
    fn upstream_timestamp_step(&mut self, up: &mut Upstream) -> Result<()> {
        if up.timestamp.is_none() {
            // The stored upstream timestamp is the rollback reference while it verifies
            // with the trusted upstream root.
            if let Some(bytes) = self.store.load_upstream("timestamp")? {
                match self.open_upstream_timestamp(up, &bytes, "stored upstream timestamp.json") {
                    Ok(t) => up.timestamp = Some(t),
                    Err(e) => tracing::debug!(error = %e, "stored upstream timestamp not usable"),
                }
            }
        }
        let url = up.url("timestamp.json")?;
        let url_s = url.to_string();
        // 5.4.1
        let bytes = fetch_limited(&*self.transport, &url, self.config.limits.timestamp)?;
        self.stats.fetched.push("upstream/timestamp".into());
        // 5.4.2
        let new = self.open_upstream_timestamp(up, &bytes, &url_s)?;
        if let Some(old) = &up.timestamp {
            // 5.4.3.1
            if new.version < old.version {
                return Err(Error::Version {
                    role: "upstream timestamp".into(),
                    file: url_s,
                    expected: old.version,
                    got: new.version,
                    reason: "upstream timestamp rollback",
                });
            }
            if new.version == old.version {
                return up.check_expiry(RoleClass::Timestamp, "timestamp", old.expires, self.now);
            }
            // 5.4.3.2
            if new.snapshot.version < old.snapshot.version {
                return Err(Error::Version {
                    role: "upstream snapshot".into(),
                    file: url_s,
                    expected: old.snapshot.version,
                    got: new.snapshot.version,
                    reason: "upstream timestamp lists an older snapshot",
                });
            }
        }
        // 5.4.4: the bound on how long the site can be kept on an old upstream state.
        up.check_expiry(RoleClass::Timestamp, "timestamp", new.expires, self.now)?;
        // 5.4.5
        self.store.store_upstream("timestamp", &bytes)?;
        up.timestamp = Some(new);
        Ok(())
    }

    fn open_upstream_snapshot(
        &self,
        up: &Upstream,
        bytes: &[u8],
        file: &str,
    ) -> Result<TrustedSnapshot> {
        let o = open::<SnapshotSigned>(bytes, "upstream snapshot", "snapshot", file)?;
        o.verify(&authority(&up.root, "snapshot"))?;
        TrustedSnapshot::from_opened(o, bytes)
    }

    /// TUF 5.5 on `upstream/V.snapshot.json`, V the version the upstream timestamp
    /// lists (the mirror republishes it under that name whatever the upstream's
    /// `consistent_snapshot`).
    fn upstream_snapshot_step(&mut self, up: &mut Upstream) -> Result<()> {
        let meta = match &up.timestamp {
            Some(t) => t.snapshot.clone(),
            None => {
                return Err(Error::Config {
                    reason: "upstream snapshot before upstream timestamp".into(),
                })
            }
        };
        if up.snapshot.is_none() {
            if let Some(bytes) = self.store.load_upstream("snapshot")? {
                match self.open_upstream_snapshot(up, &bytes, "stored upstream snapshot.json") {
                    Ok(s) => up.snapshot = Some(s),
                    Err(e) => tracing::debug!(error = %e, "stored upstream snapshot not usable"),
                }
            }
        }
        if let Some(s) = &up.snapshot {
            if s.version == meta.version
                && up
                    .check_expiry(RoleClass::Snapshot, "snapshot", s.expires, self.now)
                    .is_ok()
            {
                return Ok(());
            }
        }
        let url = up.url(&format!("{}.snapshot.json", meta.version))?;
        let url_s = url.to_string();
        // 5.5.1, with the listed length as a bound that never raises the limit.
        let limit = meta.length.map_or(self.config.limits.snapshot, |l| {
            l.min(self.config.limits.snapshot)
        });
        let bytes = fetch_limited(&*self.transport, &url, limit)?;
        // 5.5.2
        check_meta_file(&meta, &bytes, "upstream snapshot", &url_s)?;
        // 5.5.3
        let mut new = self.open_upstream_snapshot(up, &bytes, &url_s)?;
        // 5.5.5: no role removed, none rolled back.
        if let Some(old) = &up.snapshot {
            for (name, m) in &old.meta {
                let role = name.strip_suffix(".json").unwrap_or(name);
                match new.meta.get(name) {
                    None => {
                        return Err(Error::NotInSnapshot {
                            role: role.to_owned(),
                            snapshot_version: new.version,
                            reason: "removed from the upstream snapshot",
                        })
                    }
                    Some(n) if n.version < m.version => {
                        return Err(Error::Version {
                            role: role.to_owned(),
                            file: url_s,
                            expected: m.version,
                            got: n.version,
                            reason: "upstream snapshot lists an older version (rollback)",
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        // 5.5.4
        if new.version != meta.version {
            return Err(Error::Version {
                role: "upstream snapshot".into(),
                file: url_s,
                expected: meta.version,
                got: new.version,
                reason: "upstream snapshot differs from the version its timestamp lists",
            });
        }
        // 5.5.6
        up.check_expiry(RoleClass::Snapshot, "snapshot", new.expires, self.now)?;
        // 5.5.7
        self.store.store_upstream("snapshot", &bytes)?;
        self.stats.fetched.push("upstream/snapshot".into());
        new.meta.shrink_to_fit();
        up.snapshot = Some(new);
        // Roles held in memory stay only if the upstream still lists them as they are.
        self.roles.retain(|_, r| up.still_listed(r));
        Ok(())
    }

    /// Every role the mirror's snapshot lists must be listed by the upstream snapshot
    /// with the same version, and the same length and hashes where both list them.
    /// Checked once per pair of snapshots.
    fn agree_with_upstream(&mut self) -> Result<()> {
        let (Some(ms), Some(up)) = (&self.snapshot, &self.upstream) else {
            return Ok(());
        };
        let Some(us) = &up.snapshot else {
            return Ok(());
        };
        if let Some(a) = &up.agreed {
            if Arc::ptr_eq(&a.mirror, &ms.bytes) && Arc::ptr_eq(&a.upstream, &us.bytes) {
                return Ok(());
            }
        }
        // The first differing role by name, so that the error does not depend on
        // hash map order.
        let mut first: Option<(&str, &MetaFile, Option<&MetaFile>, &'static str)> = None;
        for (key, m) in &ms.meta {
            let found = match us.meta.get(key) {
                None => Some((None, "the upstream snapshot does not list it")),
                Some(u) => differs(m, u).map(|reason| (Some(u), reason)),
            };
            if let Some((u, reason)) = found {
                let name = key.strip_suffix(".json").unwrap_or(key);
                if first.is_none_or(|(f, ..)| name < f) {
                    first = Some((name, m, u, reason));
                }
            }
        }
        if let Some((name, m, u, reason)) = first {
            let file = if self.root.signed.consistent_snapshot {
                format!("{}.snapshot.json", ms.version)
            } else {
                "snapshot.json".to_owned()
            };
            let file = self.meta_url(&file)?.to_string();
            return Err(Error::UpstreamMismatch {
                role: name.to_owned(),
                file,
                mirror_version: m.version,
                upstream_version: u.map(|u| u.version),
                upstream_snapshot: us.version,
                reason,
            });
        }
        let agreed = Agreed {
            mirror: ms.bytes.clone(),
            upstream: us.bytes.clone(),
        };
        if let Some(up) = &mut self.upstream {
            up.agreed = Some(agreed);
        }
        Ok(())
    }
}

/// How a mirror snapshot entry differs from the upstream's for the same role.
fn differs(m: &MetaFile, u: &MetaFile) -> Option<&'static str> {
    if m.version < u.version {
        return Some("older than the upstream snapshot lists (a rollback, or a mix of versions)");
    }
    if m.version > u.version {
        return Some("newer than the upstream snapshot lists");
    }
    if let (Some(a), Some(b)) = (m.length, u.length) {
        if a != b {
            return Some("length differs from the upstream snapshot's");
        }
    }
    if let (Some(a), Some(b)) = (&m.hashes, &u.hashes) {
        for (alg, want) in &b.0 {
            if a.0.iter().any(|(x, got)| x == alg && got != want) {
                return Some("hash differs from the upstream snapshot's");
            }
        }
    }
    None
}
