//! The client API: one repository of a key bundle, verified end to end.
//!
//! A [`MirrorClient`] holds the mirror's root as trust anchor and the pinned upstream
//! targets keys; it cannot be built without both ([`MirrorClient::builder`] takes them
//! from a [`Bundle`], [`ClientBuilder::new`] directly). Everything that weakens it is
//! named `dangerous_*`. It refreshes (failing over to the next mirror URL when one
//! cannot be reached), looks targets up, downloads them to a writer or a file, and
//! reports how stale each role is.
//!
//! ```no_run
//! use tuf_mirror_client::bundle::Bundle;
//! use tuf_mirror_client::client::MirrorClient;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = Bundle::load("/etc/site/tuf-bundle.json")?;
//! let mut client = MirrorClient::builder(&bundle, "internal")?
//!     .cache_dir("/var/lib/app/tuf/internal")
//!     .build()?;
//! client.refresh()?;
//! client.download_to_file("releases/app-1.0.tar.gz", "/tmp/app-1.0.tar.gz".as_ref())?;
//! println!("{}", client.staleness());
//! # Ok(())
//! # }
//! ```

mod error;
mod staleness;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use url::Url;

use crate::bundle::{Bundle, BundleRepository};
use crate::error::{Error, ErrorKind};
use crate::policy::{ExpiryPolicy, Limits, RoleClass, ValidationTime};
use crate::store::{DirStore, MemoryStore, MetadataStore};
use crate::target::{copy_verified, TargetVerifier};
use crate::transport::{HttpTransport, Transport};
use crate::updater::{PinnedKeys, TargetInfo, TargetsTrust, Updater, UpdaterConfig};
use crate::UpstreamAnchor;

pub use error::{ClientError, Party};
pub use staleness::{Freshness, RoleStaleness, Staleness};

/// The file in a cache directory naming the repository and the bundle root the cached
/// state grew from. Not `*.json`, so it can never be taken for a role.
const ANCHOR_FILE: &str = "bundle-anchor";

/// Settings of a [`MirrorClient`]; see [`MirrorClient::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    repository: String,
    mirrors: Vec<Url>,
    mirror_root: Vec<u8>,
    pins: PinnedKeys,
    pinned: bool,
    /// The upstream root the bundle carries, and whether to pin it instead of the keys.
    upstream_root: Option<Vec<u8>>,
    anchored: bool,
    limits: Limits,
    targets_grace: Option<Duration>,
    timestamp_grace: Option<Duration>,
    snapshot_grace: Option<Duration>,
    cache_dir: Option<PathBuf>,
    transport: Option<Arc<dyn Transport>>,
    time: ValidationTime,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("repository", &self.repository)
            .field("mirrors", &self.mirrors)
            .field("pinned", &self.pinned)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A client of `repository` on `mirrors` (base URLs, in order of preference),
    /// trusting `mirror_root` (a root document signed by its own root keys) and
    /// accepting targets metadata only when signed by a threshold of `pins`. Strict
    /// expiry, default limits, an in-memory cache.
    pub fn new(
        repository: &str,
        mirrors: Vec<Url>,
        mirror_root: impl Into<Vec<u8>>,
        pins: PinnedKeys,
    ) -> Self {
        ClientBuilder {
            repository: repository.to_owned(),
            mirrors: mirrors.into_iter().map(crate::dir_url).collect(),
            mirror_root: mirror_root.into(),
            pins,
            pinned: true,
            upstream_root: None,
            anchored: false,
            limits: Limits::default(),
            targets_grace: None,
            timestamp_grace: None,
            snapshot_grace: None,
            cache_dir: None,
            transport: None,
            time: ValidationTime::Now,
        }
    }

    /// The settings a bundle gives one of its repositories: mirrors, anchor, pins and
    /// policy (grace and limits).
    pub fn from_bundle_repository(r: &BundleRepository) -> Self {
        let mut b = ClientBuilder::new(
            &r.name,
            r.mirrors.clone(),
            r.mirror_root.clone(),
            r.targets_keys.clone(),
        );
        b.upstream_root = r.upstream_root.clone();
        b.limits = r.policy.limits.clone();
        b.targets_grace = r.policy.upstream_targets_grace;
        b.timestamp_grace = r.policy.mirror_timestamp_grace;
        b.snapshot_grace = r.policy.mirror_snapshot_grace;
        b
    }

    /// Keeps the trusted metadata in `dir` (created if missing) across runs: rollback
    /// protection survives restarts, and unchanged roles are not fetched again. One
    /// directory per repository.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Keeps the trusted metadata in memory only (the default).
    pub fn memory_cache(mut self) -> Self {
        self.cache_dir = None;
        self
    }

    /// Fetches with `transport` instead of the default HTTP(S) and `file:` transport.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Size limits (replacing the bundle's or the defaults).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// DANGEROUS: accepts targets and delegated roles (signed by the upstream) up to
    /// `grace` past their expiry. A frozen or withheld upstream then goes unnoticed
    /// that long. Capped at [`MAX_GRACE`](crate::MAX_GRACE); each use is logged at warn
    /// level with the role, how late it is and the repository.
    pub fn dangerous_upstream_targets_grace(mut self, grace: Duration) -> Self {
        self.targets_grace = Some(grace);
        self
    }

    /// DANGEROUS: accepts the mirror's timestamp up to `grace` past its expiry (a mirror
    /// daemon that is down). Freeze protection is weakened by that much. Capped and
    /// logged like [`ClientBuilder::dangerous_upstream_targets_grace`].
    pub fn dangerous_mirror_timestamp_grace(mut self, grace: Duration) -> Self {
        self.timestamp_grace = Some(grace);
        self
    }

    /// DANGEROUS: accepts the mirror's snapshot up to `grace` past its expiry. Capped
    /// and logged like [`ClientBuilder::dangerous_upstream_targets_grace`].
    pub fn dangerous_mirror_snapshot_grace(mut self, grace: Duration) -> Self {
        self.snapshot_grace = Some(grace);
        self
    }

    /// DANGEROUS: verifies targets metadata with the keys the mirror root lists instead
    /// of the pinned ones, as a stock TUF client does. A mirror whose root keys are
    /// compromised can then serve any targets it likes; this is what pinning prevents.
    pub fn dangerous_trust_mirror_for_targets(mut self) -> Self {
        self.pinned = false;
        self
    }

    /// Pins the upstream's own root (the bundle's `upstream_root`) instead of its targets
    /// keys: the client follows the upstream root chain the mirror republishes under
    /// `upstream/`, takes the targets keys from it (an upstream targets-key rotation
    /// needs no new bundle), and holds every targets role to the upstream's own snapshot,
    /// within the upstream-targets grace on the upstream's timestamp (docs/engine.md,
    /// "upstream-anchored"). Fails at `build` when the bundle carries no upstream root.
    pub fn upstream_anchored(mut self) -> Self {
        self.anchored = true;
        self
    }

    /// [`ClientBuilder::upstream_anchored`] with an upstream root given here.
    pub fn upstream_anchored_with(mut self, upstream_root: impl Into<Vec<u8>>) -> Self {
        self.upstream_root = Some(upstream_root.into());
        self.anchored = true;
        self
    }

    /// DANGEROUS: validates expiry at `time` instead of the wall clock (tests, audits
    /// of an old state). A time in the past accepts metadata that has expired.
    pub fn dangerous_validation_time(mut self, time: Timestamp) -> Self {
        self.time = ValidationTime::At(time);
        self
    }

    /// Checks the settings, loads or initialises the trusted state, and returns the
    /// client (nothing is fetched yet).
    pub fn build(self) -> Result<MirrorClient, ClientError> {
        let repo = self.repository.clone();
        let config_err = |reason: String| ClientError::Config {
            repository: repo.clone(),
            reason,
        };
        let Some(first) = self.mirrors.first().cloned() else {
            return Err(config_err("no mirror URL".into()));
        };
        let mut expiry = ExpiryPolicy::strict().for_repository(&self.repository);
        for (class, grace, what) in [
            (RoleClass::Targets, self.targets_grace, "upstream targets"),
            (
                RoleClass::Timestamp,
                self.timestamp_grace,
                "mirror timestamp",
            ),
            (RoleClass::Snapshot, self.snapshot_grace, "mirror snapshot"),
        ] {
            let Some(grace) = grace.filter(|g| !g.is_zero()) else {
                continue;
            };
            expiry = expiry
                .dangerous_with_grace(class, grace)
                .map_err(|e| config_err(e.to_string()))?;
            tracing::warn!(
                repository = %self.repository,
                class = what,
                grace_secs = grace.as_secs(),
                "expiry grace in force"
            );
        }
        if !self.pinned {
            tracing::warn!(
                repository = %self.repository,
                "targets keys not pinned: trusting the mirror root for targets"
            );
        }
        let mut base = UpdaterConfig::new(first.clone());
        base.limits = self.limits.clone();
        base.expiry = expiry;
        base.time = self.time;
        base.targets_trust = match (self.anchored, &self.upstream_root) {
            (true, None) => return Err(config_err(
                "upstream-anchored mode needs the upstream root (the bundle has no upstream_root)"
                    .into(),
            )),
            (true, Some(up)) => {
                let mut anchor = UpstreamAnchor::new(up);
                if let Some(g) = self.targets_grace.filter(|g| !g.is_zero()) {
                    anchor = anchor
                        .dangerous_with_upstream_grace(g)
                        .map_err(|e| config_err(e.to_string()))?;
                }
                TargetsTrust::UpstreamAnchored(anchor)
            }
            (false, _) if self.pinned => TargetsTrust::Pinned(self.pins.clone()),
            (false, _) => TargetsTrust::FromRoot,
        };
        let transport = self
            .transport
            .clone()
            .unwrap_or_else(|| Arc::new(HttpTransport::default()));
        let mut client = MirrorClient {
            repository: self.repository.clone(),
            mirrors: self.mirrors.clone(),
            current: 0,
            updater: None,
            base,
            transport,
            store: Arc::new(MemoryStore::default()),
            seen: HashMap::new(),
        };
        let config = client.config_for(0)?;
        let updater = match &self.cache_dir {
            None => client.init(config, &self.mirror_root)?,
            Some(dir) => {
                let store = DirStore::new(dir).map_err(|e| config_err(e.to_string()))?;
                client.store = Arc::new(store);
                client.open_cached(config, dir, &self.mirror_root)?
            }
        };
        client.updater = Some(updater);
        Ok(client)
    }
}

/// A verified view of one repository through its mirrors (see the [module
/// documentation](self)).
pub struct MirrorClient {
    repository: String,
    mirrors: Vec<Url>,
    current: usize,
    /// Always `Some` once built; an `Option` only while building and failing over.
    updater: Option<Updater>,
    base: UpdaterConfig,
    transport: Arc<dyn Transport>,
    store: Arc<dyn MetadataStore>,
    /// Per role: the version held and when this client first saw it.
    seen: HashMap<String, (u64, Timestamp)>,
}

impl std::fmt::Debug for MirrorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorClient")
            .field("repository", &self.repository)
            .field("mirror", &self.mirror().as_str())
            .finish_non_exhaustive()
    }
}

impl MirrorClient {
    /// A builder for repository `name` of `bundle`, with the bundle's mirrors, mirror
    /// root, pins and policy.
    pub fn builder(bundle: &Bundle, name: &str) -> Result<ClientBuilder, ClientError> {
        let r = bundle
            .repository(name)
            .ok_or_else(|| ClientError::UnknownRepository {
                file: bundle.file().to_owned(),
                repository: name.to_owned(),
                known: bundle
                    .repositories()
                    .iter()
                    .map(|r| r.name.clone())
                    .collect(),
            })?;
        Ok(ClientBuilder::from_bundle_repository(r))
    }

    /// The repository name.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The base URL of the mirror in use.
    pub fn mirror(&self) -> &Url {
        &self.mirrors[self.current]
    }

    /// The engine, for inspection (trusted root, roles held, last refresh's fetches).
    pub fn updater(&self) -> &Updater {
        self.engine_ref()
    }

    fn engine_ref(&self) -> &Updater {
        // Invariant: set by `build` and by every fail-over before it returns.
        #[allow(clippy::expect_used)]
        self.updater
            .as_ref()
            .expect("a built client has an updater")
    }

    fn engine(&mut self) -> &mut Updater {
        #[allow(clippy::expect_used)]
        self.updater
            .as_mut()
            .expect("a built client has an updater")
    }

    fn config_for(&self, i: usize) -> Result<UpdaterConfig, ClientError> {
        let base = &self.mirrors[i];
        let join = |p: &str| {
            base.join(p).map_err(|e| ClientError::Config {
                repository: self.repository.clone(),
                reason: format!("cannot join {p} to mirror URL {base}: {e}"),
            })
        };
        let mut c = self.base.clone();
        c.metadata_base = join("metadata/")?;
        c.targets_base = Some(join("targets/")?);
        Ok(c)
    }

    fn fail(&self, e: Error) -> ClientError {
        ClientError::update(&self.repository, self.mirror(), e)
    }

    fn init(&self, config: UpdaterConfig, root: &[u8]) -> Result<Updater, ClientError> {
        Updater::init(config, self.transport.clone(), self.store.clone(), root)
            .map_err(|e| self.fail(e))
    }

    /// Resumes from the cached root when the cache grew from this bundle root and holds
    /// a version at least as new (so a mirror cannot roll the root back across
    /// restarts); otherwise starts from the bundle root. A directory that holds another
    /// repository is refused.
    fn open_cached(
        &self,
        config: UpdaterConfig,
        dir: &Path,
        root: &[u8],
    ) -> Result<Updater, ClientError> {
        let fingerprint = anchor_fingerprint(root);
        let marker = dir.join(ANCHOR_FILE);
        let recorded = std::fs::read_to_string(&marker).unwrap_or_default();
        let mut fields = recorded.split_whitespace();
        let (repo, anchor) = (fields.next(), fields.next());
        if let Some(other) = repo.filter(|r| *r != self.repository) {
            return Err(ClientError::Config {
                repository: self.repository.clone(),
                reason: format!(
                    "cache directory {} holds repository {other:?}: use one directory per \
                     repository",
                    dir.display()
                ),
            });
        }
        let cached = self.store.load("root").ok().flatten();
        let newer = match (cached.as_deref().and_then(root_version), root_version(root)) {
            (Some(c), Some(b)) => c >= b,
            _ => false,
        };
        if anchor == Some(fingerprint.as_str()) && newer {
            match Updater::new(config.clone(), self.transport.clone(), self.store.clone()) {
                Ok(u) => return Ok(u),
                Err(e) => {
                    tracing::warn!(error = %e, "cached root unusable, starting from the bundle")
                }
            }
        }
        let u = self.init(config, root)?;
        let text = format!("{} {fingerprint}\n", self.repository);
        crate::store::write_atomic(&marker, text.as_bytes(), true).map_err(|e| {
            ClientError::Config {
                repository: self.repository.clone(),
                reason: format!("cannot write {}: {e}", marker.display()),
            }
        })?;
        Ok(u)
    }

    /// Runs the TUF client workflow against the mirror in use: root chain, timestamp,
    /// snapshot, top-level targets (delegated roles load as lookups need them). When the
    /// mirror cannot be reached, the next one in the list is tried; a security failure
    /// is returned at once.
    pub fn refresh(&mut self) -> Result<(), ClientError> {
        let _span = tracing::info_span!("mirror_client", repository = %self.repository).entered();
        let n = self.mirrors.len();
        for attempt in 0..n {
            match self.engine().refresh() {
                Ok(()) => {
                    self.observe();
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Retryable && attempt + 1 < n => {
                    let next = (self.current + 1) % n;
                    tracing::warn!(
                        mirror = %self.mirror(),
                        next = %self.mirrors[next],
                        error = %e,
                        "mirror unusable, trying the next"
                    );
                    self.switch_to(next)?;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        // `n` is at least 1 and the last attempt returns.
        Err(ClientError::Config {
            repository: self.repository.clone(),
            reason: "no mirror URL".into(),
        })
    }

    fn switch_to(&mut self, i: usize) -> Result<(), ClientError> {
        let config = self.config_for(i)?;
        self.current = i;
        let u = Updater::new(config, self.transport.clone(), self.store.clone())
            .map_err(|e| self.fail(e))?;
        self.updater = Some(u);
        Ok(())
    }

    /// The signed description of `path` (length, hashes, the role listing it), found
    /// through the delegations trusted for it; `None` when no such role lists it.
    /// Refreshes first if this client has not.
    pub fn target_info(&mut self, path: &str) -> Result<Option<TargetInfo>, ClientError> {
        let _span = tracing::info_span!("mirror_client", repository = %self.repository).entered();
        let r = self.engine().target_info(path);
        self.observe();
        r.map_err(|e| self.fail(e))
    }

    fn require(&mut self, path: &str) -> Result<TargetInfo, ClientError> {
        self.target_info(path)?.ok_or_else(|| {
            self.fail(Error::TargetNotFound {
                path: path.to_owned(),
            })
        })
    }

    /// Streams target `path` into `out`, checking its length as it goes and its hashes
    /// at the end. **On error, discard what was written**: the bytes are only known good
    /// once this returns `Ok`. [`MirrorClient::download_to_file`] is all-or-nothing.
    pub fn download<W: Write + ?Sized>(
        &mut self,
        path: &str,
        out: &mut W,
    ) -> Result<TargetInfo, ClientError> {
        let info = self.require(path)?;
        let _span = tracing::info_span!("mirror_client", repository = %self.repository).entered();
        let engine = self.engine_ref();
        let result = (|| {
            let url = engine.target_url(&info)?;
            let url_s = url.to_string();
            let mut v = TargetVerifier::new(&info.path, info.length, &info.hashes, &url_s)?;
            let mut src = self.transport.fetch(&url)?;
            let mut out = WriteRef(out);
            copy_verified(&mut src, &mut out, &mut v, &url_s, Path::new("(writer)"))?;
            v.finish(&url_s)
        })();
        result.map_err(|e| self.fail(e))?;
        Ok(info)
    }

    /// Downloads target `path` into `dest` through a temporary file in the same
    /// directory, renamed into place once length and hashes check out; on failure
    /// `dest` is left as it was.
    pub fn download_to_file(&mut self, path: &str, dest: &Path) -> Result<TargetInfo, ClientError> {
        let info = self.require(path)?;
        let _span = tracing::info_span!("mirror_client", repository = %self.repository).entered();
        self.engine_ref()
            .download_target(&info, dest)
            .map_err(|e| self.fail(e))?;
        Ok(info)
    }

    /// How old each role held is and when it expires (see [`Staleness`]).
    pub fn staleness(&self) -> Staleness {
        let u = self.engine_ref();
        let at = self.base.time.resolve();
        let expiry = &self.base.expiry;
        let mut roles = Vec::new();
        let mut push = |role: &str, class: RoleClass, version: u64, expires: Timestamp| {
            let remaining = expires.duration_since(at);
            let grace = expiry.grace(class);
            roles.push(RoleStaleness {
                role: role.to_owned(),
                signer: if class == RoleClass::Targets {
                    Party::Upstream
                } else {
                    Party::Mirror
                },
                version,
                expires,
                remaining,
                grace,
                freshness: staleness::freshness(remaining, grace),
                unchanged_since: self
                    .seen
                    .get(role)
                    .filter(|(v, _)| *v == version)
                    .map(|(_, t)| *t),
            });
        };
        push(
            "root",
            RoleClass::Root,
            u.root().version(),
            u.root().expires,
        );
        if let Some(t) = u.timestamp() {
            push("timestamp", RoleClass::Timestamp, t.version, t.expires);
        }
        if let Some(s) = u.snapshot() {
            push("snapshot", RoleClass::Snapshot, s.version, s.expires);
        }
        let mut targets: Vec<_> = u.roles().collect();
        targets.sort_by(|a, b| (a.name != "targets", &a.name).cmp(&(b.name != "targets", &b.name)));
        for t in targets {
            push(&t.name, RoleClass::Targets, t.version, t.expires);
        }
        Staleness {
            repository: self.repository.clone(),
            mirror: self.mirror().clone(),
            at,
            roles,
        }
    }

    /// Notes the versions held now, for [`RoleStaleness::unchanged_since`].
    fn observe(&mut self) {
        let now = self.base.time.resolve();
        let Some(u) = self.updater.as_ref() else {
            return;
        };
        let mut held: Vec<(String, u64)> = vec![("root".into(), u.root().version())];
        if let Some(t) = u.timestamp() {
            held.push(("timestamp".into(), t.version));
        }
        if let Some(s) = u.snapshot() {
            held.push(("snapshot".into(), s.version));
        }
        held.extend(u.roles().map(|r| (r.name.clone(), r.version)));
        for (role, version) in held {
            let e = self.seen.entry(role).or_insert((version, now));
            if e.0 != version {
                *e = (version, now);
            }
        }
    }
}

/// `&mut W` for a possibly unsized `W`, as a `dyn Write`.
struct WriteRef<'a, W: Write + ?Sized>(&'a mut W);

impl<W: Write + ?Sized> Write for WriteRef<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The sha256 of the canonical form of a root document, hex: the same for every
/// formatting of the same signed root.
fn anchor_fingerprint(root: &[u8]) -> String {
    let text = String::from_utf8_lossy(root);
    let canonical = crate::canonical::canonicalize(&text).unwrap_or_else(|_| root.to_vec());
    hex::encode(crate::trusted::sha256(&canonical))
}

/// `signed.version` of a root document, without trusting it.
fn root_version(bytes: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct R {
        signed: V,
    }
    #[derive(serde::Deserialize)]
    struct V {
        version: u64,
    }
    serde_json::from_slice::<R>(bytes)
        .ok()
        .map(|r| r.signed.version)
}
