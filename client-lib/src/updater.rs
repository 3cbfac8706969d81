//! The TUF 1.0 client workflow (specification section 5), with the trust inputs as
//! parameters: where the targets keys come from, expiry policy, limits, and whether
//! delegated roles load lazily or all at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use url::Url;

use crate::anchor::{Upstream, UpstreamAnchor};
use crate::error::{Error, Result};
use crate::key::{KeyJson, KeyRing};
use crate::names::encode_role;
use crate::policy::{ExpiryPolicy, Limits, RoleClass, ValidationTime};
use crate::schema::{Common, MetaFile, RootSigned, SnapshotSigned, TargetsSigned, TimestampSigned};
use crate::store::MetadataStore;
use crate::transport::{fetch_limited, Transport};
use crate::trusted::{TrustedRoot, TrustedSnapshot, TrustedTargets, TrustedTimestamp};
use crate::verify::{check_meta_file, open, Authority};

/// Where the keys of the top-level targets role come from.
#[derive(Debug, Clone, Default)]
pub enum TargetsTrust {
    /// From the trusted root, as in plain TUF.
    #[default]
    FromRoot,
    /// From a pinned set, whatever the root says (the root must list the same keys).
    Pinned(PinnedKeys),
    /// From the upstream's own root, followed from a pinned upstream root through the
    /// chain the mirror republishes; every targets role must also be the version the
    /// upstream's own snapshot lists (see [`UpstreamAnchor`]).
    UpstreamAnchored(UpstreamAnchor),
}

/// Pinned targets keys: key objects by id, and a threshold; optionally the set the
/// upstream is rotating to ([`PinnedKeys::with_next`]).
#[derive(Debug, Clone)]
pub struct PinnedKeys {
    keys: HashMap<String, KeyJson>,
    threshold: u64,
    ids_cache: Vec<String>,
    next: Option<Box<PinnedKeys>>,
}

/// How delegated targets roles are loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DelegationMode {
    /// Only the roles a target lookup visits (TUF 5.6.7), as a client does.
    #[default]
    Lazy,
    /// Every delegated role, verified on each refresh, as a mirror needs. Roles whose
    /// snapshot entry did not change since the last refresh are not fetched again.
    All,
}

/// Settings of an [`Updater`].
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Base URL of metadata (ends with `/`).
    pub metadata_base: Url,
    /// Base URL of target files (ends with `/`), if targets are downloaded.
    pub targets_base: Option<Url>,
    /// Size limits.
    pub limits: Limits,
    /// Expiry policy.
    pub expiry: ExpiryPolicy,
    /// Source of the targets keys.
    pub targets_trust: TargetsTrust,
    /// Lazy or all delegated roles.
    pub mode: DelegationMode,
    /// Time to validate at.
    pub time: ValidationTime,
    /// Parallel fetches in all-roles mode.
    pub workers: usize,
}

impl UpdaterConfig {
    /// Defaults for a repository at `metadata_base`.
    pub fn new(metadata_base: Url) -> Self {
        UpdaterConfig {
            metadata_base: dir_url(metadata_base),
            targets_base: None,
            limits: Limits::default(),
            expiry: ExpiryPolicy::strict(),
            targets_trust: TargetsTrust::FromRoot,
            mode: DelegationMode::Lazy,
            time: ValidationTime::Now,
            workers: 8,
        }
    }
}

/// Makes sure a base URL ends with `/` so that joins append.
pub fn dir_url(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// What the last refresh did, for reports and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshStats {
    /// Metadata files fetched from the remote (role names; roots as `N.root`).
    pub fetched: Vec<String>,
    /// Roles verified from the local store instead of fetched.
    pub from_store: usize,
    /// Roles kept from memory unchanged.
    pub reused: usize,
}

/// A target as signed metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// Path.
    pub path: String,
    /// Length.
    pub length: u64,
    /// Hashes.
    pub hashes: crate::schema::Hashes,
    /// `custom` as written, if any.
    pub custom: Option<String>,
    /// The role that lists it.
    pub role: String,
}

/// The verification engine: one repository, one trusted state.
pub struct Updater {
    pub(crate) config: UpdaterConfig,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) pinned: Option<(KeyRing, PinnedKeys)>,
    /// Which pinned set the root lists (0: the current one, 1: the next one).
    pin_set: usize,
    /// The upstream's trusted state, in upstream-anchored mode.
    pub(crate) upstream: Option<Upstream>,
    pub(crate) root: TrustedRoot,
    pub(crate) timestamp: Option<TrustedTimestamp>,
    pub(crate) snapshot: Option<TrustedSnapshot>,
    /// Whether snapshot passed its final checks in the current refresh.
    pub(crate) snapshot_final: bool,
    pub(crate) roles: HashMap<String, Arc<TrustedTargets>>,
    /// (child, delegator instance) pairs whose signatures verified.
    pub(crate) edges: HashSet<(String, u64)>,
    pub(crate) stats: RefreshStats,
    pub(crate) now: Timestamp,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("metadata_base", &self.config.metadata_base.as_str())
            .field("root_version", &self.root.version())
            .field("roles", &self.roles.len())
            .finish_non_exhaustive()
    }
}

impl Updater {
    /// Starts from the root in `store` (TUF 5.2: the trusted root, verified by itself).
    pub fn new(
        config: UpdaterConfig,
        transport: Arc<dyn Transport>,
        store: Arc<dyn MetadataStore>,
    ) -> Result<Self> {
        let bytes = store.load("root")?.ok_or_else(|| Error::TrustAnchor {
            file: "root.json".into(),
            reason: "no trusted root in the metadata store".into(),
        })?;
        Self::with_root(config, transport, store, &bytes, false)
    }

    /// Starts from `root_bytes` as the trust anchor and stores it, replacing any
    /// stored state (TUF 5.2, first run).
    pub fn init(
        config: UpdaterConfig,
        transport: Arc<dyn Transport>,
        store: Arc<dyn MetadataStore>,
        root_bytes: &[u8],
    ) -> Result<Self> {
        Self::with_root(config, transport, store, root_bytes, true)
    }

    fn with_root(
        config: UpdaterConfig,
        transport: Arc<dyn Transport>,
        store: Arc<dyn MetadataStore>,
        root_bytes: &[u8],
        persist: bool,
    ) -> Result<Self> {
        let anchor = |e: Error| Error::TrustAnchor {
            file: "root.json".into(),
            reason: e.to_string(),
        };
        let o = open::<RootSigned>(root_bytes, "root", "root", "trusted root").map_err(anchor)?;
        let (body, checked) = o.split();
        let root = TrustedRoot::from_parts(body, &checked, root_bytes).map_err(anchor)?;
        // 5.2: the trust anchor must be signed by a threshold of its own root keys.
        checked.verify(&root.authority("root")).map_err(anchor)?;
        if persist {
            store.store("root", root_bytes)?;
        }
        let mut upstream = None;
        let pinned = match &config.targets_trust {
            TargetsTrust::FromRoot => None,
            TargetsTrust::UpstreamAnchored(anchor) => {
                upstream = Some(Upstream::start(
                    anchor,
                    &config.metadata_base,
                    &*store,
                    persist,
                )?);
                None
            }
            TargetsTrust::Pinned(p) => {
                let mut all = HashMap::new();
                for set in p.sets() {
                    if set.threshold == 0 || (set.keys.len() as u64) < set.threshold {
                        return Err(Error::Config {
                            reason: format!(
                                "pinned targets keys: threshold {} with {} key(s)",
                                set.threshold,
                                set.keys.len()
                            ),
                        });
                    }
                    all.extend(set.keys.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                Some((KeyRing::new(&all), p.clone()))
            }
        };
        Ok(Updater {
            now: config.time.resolve(),
            config,
            transport,
            store,
            pinned,
            pin_set: 0,
            upstream,
            root,
            timestamp: None,
            snapshot: None,
            snapshot_final: false,
            roles: HashMap::new(),
            edges: HashSet::new(),
            stats: RefreshStats::default(),
        })
    }

    /// The trusted root.
    pub fn root(&self) -> &TrustedRoot {
        &self.root
    }

    /// The trusted timestamp, after a refresh.
    pub fn timestamp(&self) -> Option<&TrustedTimestamp> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, after a refresh.
    pub fn snapshot(&self) -> Option<&TrustedSnapshot> {
        self.snapshot.as_ref()
    }

    /// A verified targets role held in memory.
    pub fn role(&self, name: &str) -> Option<&Arc<TrustedTargets>> {
        self.roles.get(name)
    }

    /// Every verified targets role held in memory.
    pub fn roles(&self) -> impl Iterator<Item = &Arc<TrustedTargets>> {
        self.roles.values()
    }

    /// What the last refresh fetched and reused.
    pub fn stats(&self) -> &RefreshStats {
        &self.stats
    }

    pub(crate) fn meta_url(&self, file: &str) -> Result<Url> {
        self.config
            .metadata_base
            .join(file)
            .map_err(|e| Error::Config {
                reason: format!("cannot join {file:?} to the metadata URL: {e}"),
            })
    }

    /// Sets the time the next refresh validates expiry against.
    pub fn set_time(&mut self, time: ValidationTime) {
        self.config.time = time;
    }

    /// Runs the client workflow: root chain, timestamp, snapshot, targets, and in
    /// all-roles mode every delegated role.
    pub fn refresh(&mut self) -> Result<()> {
        self.now = self.config.time.resolve();
        self.stats = RefreshStats::default();
        self.snapshot_final = false;
        let span = tracing::debug_span!("refresh", base = %self.config.metadata_base);
        let _g = span.enter();
        self.update_root()?;
        self.update_timestamp()?;
        self.update_snapshot()?;
        self.update_upstream()?;
        self.load_targets("targets", None)?;
        if self.config.mode == DelegationMode::All {
            self.load_all_roles()?;
        }
        Ok(())
    }

    /// TUF 5.3: follow the root chain, one version at a time.
    fn update_root(&mut self) -> Result<()> {
        for _ in 0..self.config.limits.max_root_updates {
            let next = self.root.version() + 1;
            let file = format!("{next}.root.json");
            let url = self.meta_url(&file)?;
            // 5.3.3: fetch N+1; its absence ends the chain.
            let bytes = match fetch_limited(&*self.transport, &url, self.config.limits.root) {
                Ok(b) => b,
                Err(Error::NotFound { .. }) => break,
                Err(e) => return Err(e),
            };
            let url_s = url.to_string();
            let o = open::<RootSigned>(&bytes, "root", "root", &url_s)?;
            // 5.3.4: signed by a threshold of the trusted root's root keys...
            o.verify(&self.root.authority("root"))?;
            let (body, checked) = o.split();
            let new = TrustedRoot::from_parts(body, &checked, &bytes)?;
            // ...and by a threshold of its own root keys.
            checked.verify(&new.authority("root"))?;
            // 5.3.5: exactly the next version.
            if new.version() != next {
                return Err(Error::Version {
                    role: "root".into(),
                    file: url_s,
                    expected: next,
                    got: new.version(),
                    reason: "root chain is not consecutive",
                });
            }
            // 5.3.7/5.3.8: persist, trust.
            self.store.store("root", &bytes)?;
            self.stats.fetched.push(format!("{next}.root"));
            // 5.3.11: rotated timestamp or snapshot keys invalidate what they signed
            // (fast-forward recovery).
            if self.root.role_keys_changed(&new, "timestamp") {
                self.timestamp = None;
                self.snapshot = None;
            }
            if self.root.role_keys_changed(&new, "snapshot") {
                self.snapshot = None;
            }
            if matches!(self.config.targets_trust, TargetsTrust::FromRoot)
                && self.root.role_keys_changed(&new, "targets")
            {
                self.roles.clear();
            }
            self.root = new;
            tracing::info!(version = next, "updated root");
        }
        // 5.3.10: freeze protection on the final root (after persisting it).
        self.config
            .expiry
            .check(RoleClass::Root, "root", self.root.expires, self.now)?;
        self.check_pin_against_root()
    }

    /// The root must list the pinned keys and threshold for targets (or those of the
    /// next set, during a rotation), so that stock clients of the same repository verify
    /// the same targets. Sets which pinned set verifies targets.
    fn check_pin_against_root(&mut self) -> Result<()> {
        let Some((_, pin)) = &self.pinned else {
            return Ok(());
        };
        let role = self.root.role("targets");
        let root_ids: HashSet<&String> = role.keyids.iter().collect();
        let matching = pin.sets().position(|set| {
            let ids: HashSet<&String> = set.keys.keys().collect();
            ids == root_ids && role.threshold == set.threshold
        });
        if let Some(i) = matching {
            self.pin_set = i;
            return Ok(());
        }
        let pin_ids: HashSet<&String> = pin.keys.keys().collect();
        let mut missing: Vec<_> = pin_ids.difference(&root_ids).map(|s| s.as_str()).collect();
        let mut extra: Vec<_> = root_ids.difference(&pin_ids).map(|s| s.as_str()).collect();
        missing.sort_unstable();
        extra.sort_unstable();
        let next = pin.next().map_or(String::new(), |n| {
            format!(
                " nor the next pinned set ([{}], threshold {})",
                n.ids().join(", "),
                n.threshold
            )
        });
        Err(Error::Pin {
            reason: format!(
                "root version {} lists targets keys differing from the pins (not in root: [{}]; \
                 not pinned: [{}]; threshold root {} vs pinned {}){next}: if the upstream rotated \
                 its targets keys, update the key bundle; otherwise the mirror is misbehaving",
                self.root.version(),
                missing.join(", "),
                extra.join(", "),
                role.threshold,
                pin.threshold
            ),
        })
    }

    /// The mirror's timestamp and snapshot again (upstream-anchored mode, when they
    /// did not agree with the upstream's).
    pub(crate) fn refresh_mirror_state(&mut self) -> Result<()> {
        self.update_timestamp()?;
        self.update_snapshot()
    }

    /// TUF 5.4: timestamp.
    fn update_timestamp(&mut self) -> Result<()> {
        if self.timestamp.is_none() {
            // The stored timestamp is the rollback reference if it still verifies
            // with the current root; expiry does not matter for that.
            if let Some(bytes) = self.store.load("timestamp")? {
                match self.open_timestamp(&bytes, "stored timestamp.json") {
                    Ok(t) => self.timestamp = Some(t),
                    Err(e) => tracing::debug!(error = %e, "stored timestamp not usable"),
                }
            }
        }
        let url = self.meta_url("timestamp.json")?;
        let url_s = url.to_string();
        // 5.4.1
        let bytes = fetch_limited(&*self.transport, &url, self.config.limits.timestamp)?;
        self.stats.fetched.push("timestamp".into());
        // 5.4.2
        let new = self.open_timestamp(&bytes, &url_s)?;
        if let Some(old) = &self.timestamp {
            // 5.4.3.1: no rollback of timestamp.
            if new.version < old.version {
                return Err(Error::Version {
                    role: "timestamp".into(),
                    file: url_s,
                    expected: old.version,
                    got: new.version,
                    reason: "timestamp rollback",
                });
            }
            if new.version == old.version {
                // Nothing new; keep the trusted one.
                return self.config.expiry.check(
                    RoleClass::Timestamp,
                    "timestamp",
                    old.expires,
                    self.now,
                );
            }
            // 5.4.3.2: no rollback of snapshot.
            if new.snapshot.version < old.snapshot.version {
                return Err(Error::Version {
                    role: "snapshot".into(),
                    file: url_s,
                    expected: old.snapshot.version,
                    got: new.snapshot.version,
                    reason: "timestamp lists an older snapshot",
                });
            }
        }
        // 5.4.4: freeze protection; an expired timestamp is neither trusted nor kept.
        self.config
            .expiry
            .check(RoleClass::Timestamp, "timestamp", new.expires, self.now)?;
        // 5.4.5
        self.store.store("timestamp", &bytes)?;
        self.timestamp = Some(new);
        Ok(())
    }

    fn open_timestamp(&self, bytes: &[u8], file: &str) -> Result<TrustedTimestamp> {
        let o = open::<TimestampSigned>(bytes, "timestamp", "timestamp", file)?;
        o.verify(&self.root.authority("timestamp"))?;
        TrustedTimestamp::from_opened(o, bytes)
    }

    fn open_snapshot(&self, bytes: &[u8], file: &str) -> Result<TrustedSnapshot> {
        let o = open::<SnapshotSigned>(bytes, "snapshot", "snapshot", file)?;
        o.verify(&self.root.authority("snapshot"))?;
        TrustedSnapshot::from_opened(o, bytes)
    }

    fn snapshot_is_final(&self, s: &TrustedSnapshot, meta: &MetaFile) -> Result<()> {
        // 5.5.4: the version timestamp lists.
        if s.version != meta.version {
            return Err(Error::Version {
                role: "snapshot".into(),
                file: "snapshot.json".into(),
                expected: meta.version,
                got: s.version,
                reason: "snapshot differs from the version timestamp lists",
            });
        }
        // 5.5.6
        self.config
            .expiry
            .check(RoleClass::Snapshot, "snapshot", s.expires, self.now)
    }

    /// TUF 5.5: snapshot.
    fn update_snapshot(&mut self) -> Result<()> {
        let Some(ts) = &self.timestamp else {
            return Err(Error::Config {
                reason: "snapshot before timestamp".into(),
            });
        };
        let meta = ts.snapshot.clone();
        if self.snapshot.is_none() {
            if let Some(bytes) = self.store.load("snapshot")? {
                match self.open_snapshot(&bytes, "stored snapshot.json") {
                    Ok(s) => self.snapshot = Some(s),
                    Err(e) => tracing::debug!(error = %e, "stored snapshot not usable"),
                }
            }
        }
        if let Some(s) = &self.snapshot {
            if self.snapshot_is_final(s, &meta).is_ok() {
                self.snapshot_final = true;
                return Ok(());
            }
        }
        let file = if self.root.signed.consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_owned()
        };
        let url = self.meta_url(&file)?;
        let url_s = url.to_string();
        // 5.5.1
        // A listed length is exact (5.5.2) but never raises the configured limit: a
        // hostile or broken signer cannot make the engine read without bound.
        let limit = meta.length.map_or(self.config.limits.snapshot, |l| {
            l.min(self.config.limits.snapshot)
        });
        let bytes = fetch_limited(&*self.transport, &url, limit)?;
        // 5.5.2
        check_meta_file(&meta, &bytes, "snapshot", &url_s)?;
        // 5.5.3
        let new = self.open_snapshot(&bytes, &url_s)?;
        // 5.5.5: no role removed, none rolled back.
        if let Some(old) = &self.snapshot {
            for (name, m) in &old.meta {
                match new.meta.get(name) {
                    None => {
                        return Err(Error::NotInSnapshot {
                            role: name.trim_end_matches(".json").to_owned(),
                            snapshot_version: new.version,
                            reason: "removed from snapshot",
                        })
                    }
                    Some(n) if n.version < m.version => {
                        return Err(Error::Version {
                            role: name.trim_end_matches(".json").to_owned(),
                            file: url_s,
                            expected: m.version,
                            got: n.version,
                            reason: "snapshot lists an older version (rollback)",
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        // 5.5.4, 5.5.6
        let mut new = new;
        self.snapshot_is_final(&new, &meta).map_err(|e| match e {
            Error::Version {
                role,
                expected,
                got,
                reason,
                ..
            } => Error::Version {
                role,
                file: url_s.clone(),
                expected,
                got,
                reason,
            },
            e => e,
        })?;
        // 5.5.7
        self.store.store("snapshot", &bytes)?;
        self.stats.fetched.push("snapshot".into());
        // Roles whose entry changed are no longer trusted in memory.
        let keep = |name: &String, r: &mut Arc<TrustedTargets>| {
            new.role_meta(name).is_some_and(|m| r.matches_meta(m))
        };
        self.roles.retain(keep);
        new.meta.shrink_to_fit();
        self.snapshot = Some(new);
        self.snapshot_final = true;
        Ok(())
    }

    /// The signature authority for `child` given by `parent` (None = top-level
    /// targets, from the root, the pins or the upstream root), with a fingerprint of
    /// the parent bytes.
    pub(crate) fn authority<'s>(
        &'s self,
        child: &str,
        parent: Option<&'s TrustedTargets>,
    ) -> Result<(Authority<'s>, u64)> {
        match parent {
            None => Ok(match (&self.pinned, &self.upstream) {
                // The pins never change within an updater: instance 0.
                (Some((ring, pin)), _) => {
                    let set = pin.sets().nth(self.pin_set).unwrap_or(pin);
                    (
                        Authority {
                            name: "pinned targets keys",
                            keyids: pin_ids(set),
                            threshold: set.threshold,
                            ring,
                        },
                        self.pin_set as u64,
                    )
                }
                (None, Some(up)) => (crate::anchor::authority(&up.root, "targets"), up.root.id),
                (None, None) => (self.root.authority("targets"), self.root.id),
            }),
            Some(p) => p
                .delegations
                .as_ref()
                .and_then(|d| d.authority_for(&p.name, child))
                .map(|a| (a, p.id))
                .ok_or_else(|| {
                    Error::malformed(
                        &p.name,
                        "delegations",
                        format!("does not delegate to {child}"),
                    )
                }),
        }
    }

    /// TUF 5.6 for one role: from memory, else the store, else the remote.
    pub(crate) fn load_targets(
        &mut self,
        name: &str,
        parent: Option<&Arc<TrustedTargets>>,
    ) -> Result<Arc<TrustedTargets>> {
        if !self.snapshot_final {
            return Err(Error::Config {
                reason: "targets before a final snapshot".into(),
            });
        }
        let parent = parent.cloned();
        let meta = {
            let s = self.snapshot.as_ref().ok_or_else(|| Error::Config {
                reason: "targets before snapshot".into(),
            })?;
            s.role_meta(name)
                .cloned()
                .ok_or_else(|| Error::NotInSnapshot {
                    role: name.to_owned(),
                    snapshot_version: s.version,
                    reason: "delegated but not listed",
                })?
        };
        let (_, fp) = self.authority(name, parent.as_deref())?;
        if let Some(r) = self.roles.get(name).cloned() {
            let upstream_ok = self.upstream.as_ref().is_none_or(|u| u.still_listed(&r));
            if r.matches_meta(&meta) && upstream_ok {
                if !self.edges.contains(&(name.to_owned(), fp)) {
                    let (auth, _) = self.authority(name, parent.as_deref())?;
                    let o = open::<Common<'_>>(&r.bytes, name, "targets", "verified copy")?;
                    o.verify(&auth)?;
                    self.edges.insert((name.to_owned(), fp));
                }
                self.check_targets_expiry(name, r.expires)?;
                self.stats.reused += 1;
                return Ok(r);
            }
        }
        let loaded = self.fetch_role(name, parent.as_deref(), &meta)?;
        Ok(self.admit(name.to_owned(), fp, loaded))
    }

    /// Trusts a role just verified against delegator instance `parent_id`.
    pub(crate) fn admit(
        &mut self,
        name: String,
        parent_id: u64,
        loaded: LoadedRole,
    ) -> Arc<TrustedTargets> {
        let r = Arc::new(loaded.role);
        if loaded.fetched {
            self.stats.fetched.push(name.clone());
        } else {
            self.stats.from_store += 1;
        }
        self.roles.insert(name.clone(), r.clone());
        self.edges.insert((name, parent_id));
        r
    }

    /// Loads `name` from the store if a valid copy is there, else fetches it; verifies
    /// it fully. Takes `&self` so that all-roles mode can run it on several threads.
    pub(crate) fn fetch_role(
        &self,
        name: &str,
        parent: Option<&TrustedTargets>,
        meta: &MetaFile,
    ) -> Result<LoadedRole> {
        let (auth, _) = self.authority(name, parent)?;
        if parent.is_some() {
            crate::names::check_role_name(name)?;
        }
        if let Some(bytes) = self.store.load(name)? {
            match self.verify_role(&bytes, name, &auth, meta, "stored copy") {
                Ok(role) => {
                    return Ok(LoadedRole {
                        role,
                        fetched: false,
                    })
                }
                Err(e) => tracing::debug!(role = name, error = %e, "stored copy not usable"),
            }
        }
        let enc = encode_role(name);
        let file = if self.root.signed.consistent_snapshot {
            format!("{}.{enc}.json", meta.version)
        } else {
            format!("{enc}.json")
        };
        let url = self.meta_url(&file)?;
        let url_s = url.to_string();
        let limit = meta.length.map_or(self.config.limits.targets, |l| {
            l.min(self.config.limits.targets)
        });
        let bytes = fetch_limited(&*self.transport, &url, limit)?;
        let role = self.verify_role(&bytes, name, &auth, meta, &url_s)?;
        self.store.store(name, &bytes)?;
        Ok(LoadedRole {
            role,
            fetched: true,
        })
    }

    /// TUF 5.6.2 to 5.6.6 on the bytes of one targets role.
    fn verify_role(
        &self,
        bytes: &[u8],
        name: &str,
        auth: &Authority<'_>,
        meta: &MetaFile,
        file: &str,
    ) -> Result<TrustedTargets> {
        // 5.6.2
        check_meta_file(meta, bytes, name, file)?;
        if let Some(up) = &self.upstream {
            // Upstream-anchored: the bytes the upstream snapshot lists, where it does.
            up.check_role_bytes(name, meta.version, bytes, file)?;
        }
        // 5.6.3
        let o = open::<TargetsSigned>(bytes, name, "targets", file)?;
        o.verify(auth)?;
        // 5.6.4
        if o.version != meta.version {
            return Err(Error::Version {
                role: name.to_owned(),
                file: file.to_owned(),
                expected: meta.version,
                got: o.version,
                reason: "differs from the version snapshot lists",
            });
        }
        if let Some(up) = &self.upstream {
            up.check_role_version(name, o.version, file)?;
        }
        // 5.6.5
        self.check_targets_expiry(name, o.expires)?;
        let t = TrustedTargets::from_opened(o, bytes, name)?;
        if self.config.mode == DelegationMode::All {
            // A mirror republishes every path: refuse names that could escape.
            for path in t.targets.keys() {
                crate::names::check_target_path(path)?;
            }
        }
        Ok(t)
    }
}

impl Updater {
    /// 5.6.5: freeze protection on a targets role, with the targets grace, or in
    /// upstream-anchored mode with the upstream grace (the role is upstream-signed).
    fn check_targets_expiry(&self, name: &str, expires: Timestamp) -> Result<()> {
        match &self.upstream {
            Some(up) => up.check_expiry(RoleClass::Targets, name, expires, self.now),
            None => self
                .config
                .expiry
                .check(RoleClass::Targets, name, expires, self.now),
        }
    }
}

/// A role loaded by [`Updater::fetch_role`].
pub(crate) struct LoadedRole {
    pub role: TrustedTargets,
    pub fetched: bool,
}

fn pin_ids(pin: &PinnedKeys) -> &[String] {
    pin.ids()
}

impl PinnedKeys {
    /// Pins `keys` with `threshold`.
    pub fn new(keys: HashMap<String, KeyJson>, threshold: u64) -> Self {
        let mut ids: Vec<String> = keys.keys().cloned().collect();
        ids.sort();
        PinnedKeys {
            keys,
            threshold,
            ids_cache: ids,
            next: None,
        }
    }

    /// Also accepts `next` (the keys and threshold an upstream targets-key rotation
    /// moves to): the mirror root must list exactly one of the two sets, and targets
    /// must be signed by a threshold of that set. A bundle carrying both keeps clients
    /// working across the rotation; a root listing anything else is still refused.
    pub fn with_next(mut self, next: PinnedKeys) -> Self {
        self.next = Some(Box::new(PinnedKeys { next: None, ..next }));
        self
    }

    /// The set a rotation moves to, if any.
    pub fn next(&self) -> Option<&PinnedKeys> {
        self.next.as_deref()
    }

    /// The current set, then the next one.
    fn sets(&self) -> impl Iterator<Item = &PinnedKeys> {
        std::iter::once(self).chain(self.next.as_deref())
    }

    fn ids(&self) -> &[String] {
        &self.ids_cache
    }

    /// The pinned keys by id.
    pub fn keys(&self) -> &HashMap<String, KeyJson> {
        &self.keys
    }

    /// The threshold.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }
}
