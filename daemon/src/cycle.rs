//! One sign-and-publish cycle for one repository: decide which mirror roles need a new
//! version, reserve each version durably, sign, verify the candidate state as a client
//! would, and publish it in the crash-safe order.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tuf_mirror_client::schema::RoleKeys;
use tuf_mirror_client::TrustedTargets;
use tuf_mirror_client::{
    ByteStream, DelegationMode, MemoryStore, Transport, Updater, UpdaterConfig, ValidationTime,
};
use tuf_mirror_config::Repository;
use url::Url;

use crate::clock::Clock;
use crate::mirror::{self, FileMeta, MirrorKeys, SignedDoc, Unsigned};
use crate::publish::{Publication, Tree};

/// Durable version bookkeeping (implemented by the state store).
pub trait Ledger: Send + Sync {
    /// Highest version ever reserved for a mirror role of a repository.
    fn high_water(&self, repo: &str, role: &str) -> Result<Option<u64>, CycleError>;
    /// Records, durably, that `version` of `role` is about to be signed with content
    /// `content_sha256`; refuses a version already reserved with other content.
    fn reserve(
        &self,
        repo: &str,
        role: &str,
        version: u64,
        content_sha256: [u8; 32],
    ) -> Result<(), CycleError>;
    /// Refuses to sign when `now` is earlier than the last signing time.
    fn check_clock(&self, repo: &str, now: Timestamp) -> Result<(), CycleError>;
    /// Records a signing time.
    fn record_signing(&self, repo: &str, now: Timestamp) -> Result<(), CycleError>;
    /// Reserves every entry as [`Ledger::reserve`] does and records `at` as the last
    /// signing time. A store should do it in one durable write; this default makes one
    /// call per entry.
    fn reserve_all(
        &self,
        repo: &str,
        at: Timestamp,
        entries: &[Reservation],
    ) -> Result<(), CycleError> {
        for r in entries {
            self.reserve(repo, r.role, r.version, r.content_sha256)?;
        }
        self.record_signing(repo, at)
    }
    /// Appends an entry to the audit log (a store keeps a tamper-evident one; the
    /// default keeps none).
    fn audit(
        &self,
        repo: &str,
        at: Timestamp,
        action: &str,
        detail: &str,
    ) -> Result<(), CycleError> {
        let _ = (repo, at, action, detail);
        Ok(())
    }
    /// Records how a sync ended (`error` is `None` on success). Kept for `status`.
    fn record_sync(
        &self,
        repo: &str,
        at: Timestamp,
        error: Option<&str>,
    ) -> Result<(), CycleError> {
        let _ = (repo, at, error);
        Ok(())
    }
}

/// A mirror role version about to be signed, with the sha256 of its canonical content
/// and the keys that will sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Role.
    pub role: &'static str,
    /// Version.
    pub version: u64,
    /// sha256 of the canonical `signed`.
    pub content_sha256: [u8; 32],
    /// Key ids of the signing keys.
    pub keyids: Vec<String>,
    /// The caller checked that no version from this one up reached the tree: a higher
    /// or equal reservation with other content may be replaced.
    pub replace_unpublished: bool,
}

impl Reservation {
    fn of(u: &Unsigned, role: &'static str, keys: &[mirror::MirrorKey]) -> Self {
        Reservation {
            role,
            version: u.version(),
            content_sha256: u.content_sha256(),
            keyids: keys.iter().map(|k| k.keyid().to_owned()).collect(),
            replace_unpublished: false,
        }
    }
}

/// Errors of a cycle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CycleError {
    /// The state store refused or failed.
    #[error("repository {repo}: {reason}")]
    State {
        /// Repository.
        repo: String,
        /// What went wrong.
        reason: String,
    },
    /// Signing failed.
    #[error("repository {repo}")]
    Sign {
        /// Repository.
        repo: String,
        /// Cause.
        #[source]
        source: mirror::MirrorError,
    },
    /// Writing the tree failed; the served state is unchanged.
    #[error("repository {repo}: publishing")]
    Publish {
        /// Repository.
        repo: String,
        /// Cause.
        #[source]
        source: crate::publish::PublishError,
    },
    /// The candidate state failed verification as a client would see it; nothing was
    /// published.
    #[error("repository {repo}: the new mirror state does not verify; nothing was published")]
    Verify {
        /// Repository.
        repo: String,
        /// Cause.
        #[source]
        source: Box<tuf_mirror_client::Error>,
    },
    /// The served tree is unreadable.
    #[error("repository {repo}: served file {path}: {reason}")]
    Served {
        /// Repository.
        repo: String,
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A verified upstream state, kept as the last good one: what a cycle republishes.
/// A failed sync leaves the previous view in place, so re-signing goes on over it.
#[derive(Debug, Clone)]
pub struct UpstreamView {
    /// The newest verified upstream root, as received.
    pub root_bytes: Arc<[u8]>,
    /// Its version.
    pub root_version: u64,
    /// Its targets role (key ids and threshold).
    pub targets: RoleKeys,
    /// Every verified targets role.
    pub roles: Vec<Arc<TrustedTargets>>,
    /// The upstream snapshot (version, bytes).
    pub snapshot: Option<(u64, Arc<[u8]>)>,
    /// The upstream timestamp bytes.
    pub timestamp: Option<Arc<[u8]>>,
    /// The upstream root chain, oldest first.
    pub chain: Vec<(u64, Arc<[u8]>)>,
}

impl UpstreamView {
    /// What a re-sign without an upstream needs: the targets role and its keys, as the
    /// mirror root being served lists them (verbatim copies of the upstream's).
    /// With the newest upstream root of the last sync, when one is remembered: a tick
    /// then still sees that the mirror root must follow an upstream key rotation.
    fn from_served(root: &ServedRoot, upstream: Option<&UpstreamRoot>) -> Self {
        let (root_bytes, root_version, targets) = match upstream {
            Some(u) => (u.bytes.clone(), u.version, u.targets.clone()),
            None => (root.bytes.clone(), 0, root.targets.clone()),
        };
        UpstreamView {
            root_bytes,
            root_version,
            targets,
            roles: Vec::new(),
            snapshot: None,
            timestamp: None,
            chain: Vec::new(),
        }
    }

    /// Nothing from upstream.
    fn empty() -> Self {
        UpstreamView {
            root_bytes: Arc::from(&[][..]),
            root_version: 0,
            targets: RoleKeys {
                keyids: Vec::new(),
                threshold: u64::MAX,
            },
            roles: Vec::new(),
            snapshot: None,
            timestamp: None,
            chain: Vec::new(),
        }
    }

    /// The state an engine verified, with the root chain kept beside it.
    pub fn of(u: &Updater, chain: Vec<(u64, Vec<u8>)>) -> Self {
        let mut roles: Vec<_> = u.roles().cloned().collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        UpstreamView {
            root_bytes: u.root().bytes.clone(),
            root_version: u.root().version(),
            targets: u.root().role("targets").clone(),
            roles,
            snapshot: u.snapshot().map(|s| (s.version, s.bytes.clone())),
            timestamp: u.timestamp().map(|t| t.bytes.clone()),
            chain: chain.into_iter().map(|(v, b)| (v, Arc::from(b))).collect(),
        }
    }
}

/// The newest mirror root served.
#[derive(Debug, Clone)]
pub struct ServedRoot {
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Timestamp,
    /// The file's bytes.
    pub bytes: Arc<[u8]>,
    /// Its targets role (the upstream's key ids and threshold).
    pub targets: RoleKeys,
    /// Its `signed`.
    pub signed: Value,
}

/// The snapshot served.
#[derive(Debug, Clone)]
pub struct ServedSnapshot {
    /// Version, length and sha256 of the file.
    pub file: FileMeta,
    /// Expiry.
    pub expires: Timestamp,
    /// Its `meta`.
    pub meta: Value,
}

/// What the mirror serves now.
#[derive(Debug, Clone)]
pub struct Served {
    /// Newest mirror root.
    pub root: ServedRoot,
    /// Current snapshot.
    pub snapshot: ServedSnapshot,
    /// Current timestamp version.
    pub timestamp: u64,
}

impl ServedRoot {
    fn parse(bytes: Arc<[u8]>) -> Option<Self> {
        let (version, expires, signed) = doc_fields(&bytes)?;
        let targets = serde_json::from_value(signed["roles"]["targets"].clone()).ok()?;
        Some(ServedRoot {
            version,
            expires,
            bytes,
            targets,
            signed,
        })
    }
}

/// What one repository's cycles keep in memory between runs, so that a re-sign tick
/// costs a timestamp and not a re-read of the tree: the served state as last
/// published, which upstream files are already on disk, and the engine that verified
/// the served state (a new candidate is verified as a client holding the previous
/// state would, fetching only what changed). Empty at start-up and after any failed
/// cycle; the next cycle then reads the served tree back once.
#[derive(Default)]
pub struct Memo(Mutex<Option<Memory>>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl Memo {
    fn take(&self) -> Option<Memory> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn put(&self, m: Memory) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(m);
    }

    /// Forgets everything: the next cycle reads the served tree back.
    pub fn clear(&self) {
        drop(self.take());
    }
}

struct Memory {
    served: Served,
    /// Upstream targets roles (name, version) whose file is in the tree.
    roles_on_disk: HashSet<(String, u64)>,
    /// Highest upstream root version in `upstream/`.
    upstream_root_on_disk: u64,
    upstream_snapshot_on_disk: Option<u64>,
    upstream_timestamp_on_disk: Option<Arc<[u8]>>,
    verifier: Option<Verifier>,
    /// When superseded versions were last pruned.
    pruned_at: Option<Timestamp>,
    /// The newest upstream root of the last sync.
    upstream_root: Option<UpstreamRoot>,
}

/// An upstream root as a tick needs it.
struct UpstreamRoot {
    version: u64,
    bytes: Arc<[u8]>,
    targets: RoleKeys,
}

impl Memory {
    fn new(served: Served) -> Self {
        Memory {
            served,
            roles_on_disk: HashSet::new(),
            upstream_root_on_disk: 0,
            upstream_snapshot_on_disk: None,
            upstream_timestamp_on_disk: None,
            verifier: None,
            pruned_at: None,
            upstream_root: None,
        }
    }
}

/// The engine that verified the served state, over the tree with candidate files
/// laid on top.
struct Verifier {
    engine: Updater,
    overlay: Arc<Overlay>,
}

/// What a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// New mirror root version, if one was signed.
    pub root: Option<u64>,
    /// New snapshot version, if one was signed.
    pub snapshot: Option<u64>,
    /// New timestamp version.
    pub timestamp: u64,
    /// Its expiry.
    pub timestamp_expires: Option<Timestamp>,
    /// The upstream targets keys changed and no online root keys could sign a new root.
    pub root_signature_needed: bool,
}

/// The daemon's parts for one repository.
pub struct Mirror<'a> {
    /// Its configuration.
    pub repo: &'a Repository,
    /// Its served tree.
    pub tree: Tree,
    /// Its keys.
    pub keys: &'a MirrorKeys,
    /// Version bookkeeping.
    pub ledger: &'a dyn Ledger,
    /// Wall time.
    pub clock: &'a dyn Clock,
    /// What its cycles keep between runs (one per repository and tree).
    pub memo: &'a Memo,
}

fn doc_fields(bytes: &[u8]) -> Option<(u64, Timestamp, Value)> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    let signed = v.get_mut("signed")?.take();
    let version = signed.get("version")?.as_u64()?;
    let expires: Timestamp = signed.get("expires")?.as_str()?.parse().ok()?;
    Some((version, expires, signed))
}

fn dur(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn same_role_keys(a: &RoleKeys, b: &RoleKeys) -> bool {
    let sorted = |k: &RoleKeys| {
        let mut ids = k.keyids.clone();
        ids.sort();
        ids
    };
    a.threshold == b.threshold && sorted(a) == sorted(b)
}

impl Mirror<'_> {
    fn name(&self) -> String {
        self.repo.name.as_str().to_owned()
    }

    /// Reads what is served now from the tree; `None` before the first publish.
    pub fn served(&self) -> Result<Option<Served>, CycleError> {
        let md = self.tree.dir().join("metadata");
        let read = |f: &str| -> Result<Option<Vec<u8>>, CycleError> {
            match std::fs::read(md.join(f)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.served_err(&md.join(f), &e.to_string())),
            }
        };
        let (Some(root), Some(ts)) = (read("root.json")?, read("timestamp.json")?) else {
            return Ok(None);
        };
        let bad = |f: &str| self.served_err(&md.join(f), "not a TUF metadata file");
        let mut root = ServedRoot::parse(Arc::from(root)).ok_or_else(|| bad("root.json"))?;
        // A publish interrupted after `<N+1>.root.json` and before `root.json`: clients
        // already walk to N+1, so N+1 is what is served; `root.json` is brought up to it.
        let mut repaired = false;
        while let Some(next) = read(&format!("{}.root.json", root.version + 1))? {
            let name = format!("{}.root.json", root.version + 1);
            root = ServedRoot::parse(Arc::from(next)).ok_or_else(|| bad(&name))?;
            repaired = true;
        }
        if repaired {
            crate::publish::write_current(&md.join("root.json"), &root.bytes).map_err(|e| {
                self.served_err(&md.join("root.json"), &crate::service::display_chain(&e))
            })?;
        }
        let (tv, _, tsigned) = doc_fields(&ts).ok_or_else(|| bad("timestamp.json"))?;
        let sv = tsigned["meta"]["snapshot.json"]["version"]
            .as_u64()
            .ok_or_else(|| bad("timestamp.json"))?;
        let sname = format!("{sv}.snapshot.json");
        let sbytes = read(&sname)?.ok_or_else(|| bad(&sname))?;
        let (_, sexp, mut ssigned) = doc_fields(&sbytes).ok_or_else(|| bad(&sname))?;
        Ok(Some(Served {
            root,
            snapshot: ServedSnapshot {
                file: FileMeta::of(sv, &sbytes),
                expires: sexp,
                meta: ssigned["meta"].take(),
            },
            timestamp: tv,
        }))
    }

    fn served_err(&self, path: &std::path::Path, reason: &str) -> CycleError {
        CycleError::Served {
            repo: self.name(),
            path: path.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn sign_err(&self, source: mirror::MirrorError) -> CycleError {
        CycleError::Sign {
            repo: self.name(),
            source,
        }
    }

    fn next_version(&self, role: &str, served: Option<u64>) -> Result<u64, CycleError> {
        let hw = self.ledger.high_water(self.repo.name.as_str(), role)?;
        Ok(served.unwrap_or(0).max(hw.unwrap_or(0)) + 1)
    }

    /// Signs and publishes a new mirror state over the verified upstream `up`: a new
    /// root when there is none, when the upstream targets keys changed (if the root
    /// keys at hand meet the threshold) or when it nears expiry; a new snapshot when
    /// its content changed or it nears expiry; a new timestamp always.
    pub async fn cycle(&self, up: &UpstreamView) -> Result<Outcome, CycleError> {
        self.run(Some(up)).await
    }

    /// A re-sign tick without an upstream view (after a restart, or while the upstream
    /// is unreachable): the served state gets a new timestamp, and a new snapshot or
    /// root with the same content when they near expiry.
    pub async fn resign(&self) -> Result<Outcome, CycleError> {
        self.run(None).await
    }

    async fn run(&self, fresh_up: Option<&UpstreamView>) -> Result<Outcome, CycleError> {
        // Whatever fails below leaves the memo empty: the next cycle starts from the
        // tree as it is on disk.
        let mem = match self.memo.take() {
            Some(m) => Some(m),
            None => self.served()?.map(Memory::new),
        };
        let (out, mem) = self.run_with(fresh_up, mem).await?;
        if let Some(m) = mem {
            self.memo.put(m);
        }
        Ok(out)
    }

    async fn run_with(
        &self,
        fresh_up: Option<&UpstreamView>,
        mut mem: Option<Memory>,
    ) -> Result<(Outcome, Option<Memory>), CycleError> {
        let repo = self.repo.name.as_str();
        let now = self.clock.now();
        self.ledger.check_clock(repo, now)?;
        let mut verifier = mem.as_mut().and_then(|m| m.verifier.take());
        let served = mem.as_ref().map(|m| &m.served);
        let from_served;
        let up = match (fresh_up, served) {
            (Some(up), _) => up,
            (None, Some(s)) => {
                from_served = UpstreamView::from_served(
                    &s.root,
                    mem.as_ref().and_then(|m| m.upstream_root.as_ref()),
                );
                &from_served
            }
            (None, None) => {
                return Err(CycleError::State {
                    repo: self.name(),
                    reason: "nothing published yet: run init or sync first".into(),
                })
            }
        };
        let exp = &self.repo.expires;
        let mut out = Outcome::default();
        let mut reservations = Vec::new();

        // Root: one handed in by the ceremony, or one the daemon signs itself when its
        // online root keys meet the threshold.
        let ceremony_root = served.and_then(|s| self.incoming_root(s));
        let mut new_root = None;
        let mut new_root_signed: Option<&Value> = None;
        if let Some(c) = &ceremony_root {
            reservations.push(Reservation {
                role: "root",
                version: c.doc.version,
                content_sha256: c.doc.content_sha256,
                keyids: c.keyids.clone(),
                replace_unpublished: false,
            });
            new_root_signed = Some(&c.signed);
            out.root = Some(c.doc.version);
        } else {
            let root_needed = served.is_none_or(|s| {
                !same_role_keys(&s.root.targets, &up.targets)
                    || s.root.expires.duration_since(now) < dur(exp.root) / 4
            });
            if root_needed {
                // After version 1 the root role is the served root's (offline keys
                // included); only its keys at hand sign.
                let (online, threshold) = match served {
                    Some(s) => {
                        let listed = crate::ceremony::role_key_ids(&s.root.signed, "root");
                        let online: Vec<_> = self
                            .keys
                            .root
                            .iter()
                            .filter(|k| listed.iter().any(|l| l == k.keyid()))
                            .cloned()
                            .collect();
                        let t = s.root.signed["roles"]["root"]["threshold"]
                            .as_u64()
                            .unwrap_or(u64::MAX);
                        (online, t)
                    }
                    None => (self.keys.root.clone(), self.keys.root_threshold),
                };
                if (online.len() as u64) < threshold {
                    if served.is_none() {
                        return Err(CycleError::State {
                            repo: self.name(),
                            reason: format!(
                                "the first mirror root needs {threshold} root key(s) at hand, {} are",
                                online.len()
                            ),
                        });
                    }
                    out.root_signature_needed = true;
                    tracing::warn!(
                        repo,
                        online = online.len(),
                        threshold,
                        "root signature needed for repository {repo}: the mirror root must change \
                         (upstream targets keys or expiry) and the root keys at hand do not meet \
                         the threshold; run the root ceremony"
                    );
                } else {
                    // Root versions must follow each other: the next one is always the
                    // served one plus one, even when a version was reserved and never
                    // reached the tree (a crash between the two): that signature never
                    // left the process, so it may be made again with other content.
                    let version = served.map_or(1, |s| s.root.version + 1);
                    let replace_unpublished = self
                        .ledger
                        .high_water(repo, "root")?
                        .is_some_and(|hw| hw >= version);
                    let expires = now + dur(exp.root);
                    let signed = match served {
                        Some(s) => mirror::next_root_signed(&s.root.signed, version, expires, up),
                        None => mirror::root_signed(version, expires, self.keys, up),
                    }
                    .map_err(|e| self.sign_err(e))?;
                    let u = Unsigned::new("root", signed);
                    let mut r = Reservation::of(&u, "root", &online);
                    r.replace_unpublished = replace_unpublished;
                    reservations.push(r);
                    new_root = Some((u, online));
                    out.root = Some(version);
                }
            }
        }
        if let Some((u, _)) = &new_root {
            new_root_signed = Some(u.signed());
        }
        // New snapshot keys (TUF 5.3.11: clients drop what the old key signed).
        let snapshot_keys_rotated = match (served, new_root_signed) {
            (Some(s), Some(n)) => {
                let ids = |v: &Value| crate::ceremony::role_keys(v, "snapshot").0;
                ids(&s.root.signed) != ids(n)
            }
            _ => false,
        };

        // The upstream rotated its targets keys and no root can follow yet: its new
        // state (signed by keys the served root does not list) is held back, and the
        // served state keeps being re-signed until the ceremony.
        let hold_upstream = out.root_signature_needed
            && served.is_some_and(|s| !same_role_keys(&s.root.targets, &up.targets));
        let publish_up = if hold_upstream { None } else { fresh_up };
        let held = UpstreamView::empty();

        // Snapshot.
        let meta = match (publish_up, served) {
            (None, Some(_)) => None,
            _ => {
                Some(mirror::snapshot_signed(0, now, up.roles.iter().map(|r| &**r))["meta"].take())
            }
        };
        let snapshot_needed = match served {
            None => true,
            Some(s) => {
                snapshot_keys_rotated
                    || meta.as_ref().is_some_and(|m| *m != s.snapshot.meta)
                    || s.snapshot.expires.duration_since(now) < dur(exp.snapshot) / 2
            }
        };
        let mut new_snapshot = None;
        if snapshot_needed {
            let version = self.next_version("snapshot", served.map(|s| s.snapshot.file.version))?;
            let meta = match (meta, served) {
                (Some(m), _) => m,
                (None, Some(s)) => s.snapshot.meta.clone(),
                (None, None) => Value::Object(serde_json::Map::new()),
            };
            let signed = mirror::snapshot_from_meta(version, now + dur(exp.snapshot), meta);
            let u = Unsigned::new("snapshot", signed);
            reservations.push(Reservation::of(&u, "snapshot", &self.keys.snapshot));
            new_snapshot = Some(u);
            out.snapshot = Some(version);
        }
        // DESIGN 6.2: every version is recorded, and flushed, before it is signed.
        let roots: Vec<SignedDoc> = match (&new_root, &ceremony_root) {
            (Some((u, online)), _) => {
                self.ledger.reserve_all(repo, now, &reservations)?;
                let keys: Vec<_> = online.iter().collect();
                vec![mirror::sign_unsigned(u, &keys)
                    .await
                    .map_err(|e| self.sign_err(e))?]
            }
            (None, Some(c)) => {
                self.ledger.reserve_all(repo, now, &reservations)?;
                vec![c.doc.clone()]
            }
            (None, None) => Vec::new(),
        };
        let snapshot = match &new_snapshot {
            Some(u) => {
                if roots.is_empty() {
                    self.ledger.reserve_all(repo, now, &reservations)?;
                }
                let keys: Vec<_> = self.keys.snapshot.iter().collect();
                let doc = mirror::sign_unsigned(u, &keys)
                    .await
                    .map_err(|e| self.sign_err(e))?;
                Some((doc.meta(), doc))
            }
            None => None,
        };
        let snapshot_unsigned = new_snapshot;
        let snapshot_meta = match (&snapshot, served) {
            (Some((m, _)), _) => *m,
            (None, Some(s)) => s.snapshot.file,
            // A cycle with nothing served always signs a snapshot.
            (None, None) => {
                return Err(CycleError::State {
                    repo: self.name(),
                    reason: "no snapshot to list in the timestamp".into(),
                })
            }
        };

        // Timestamp.
        let tv = self.next_version("timestamp", served.map(|s| s.timestamp))?;
        let ts_expires = now + dur(exp.timestamp);
        let u = Unsigned::new(
            "timestamp",
            mirror::timestamp_signed(tv, ts_expires, &snapshot_meta),
        );
        self.ledger.reserve_all(
            repo,
            now,
            &[Reservation::of(&u, "timestamp", &self.keys.timestamp)],
        )?;
        let keys: Vec<_> = self.keys.timestamp.iter().collect();
        let timestamp = mirror::sign_unsigned(&u, &keys)
            .await
            .map_err(|e| self.sign_err(e))?;
        out.timestamp = tv;
        out.timestamp_expires = Some(ts_expires);

        // What is not on disk yet.
        let on_disk = |r: &TrustedTargets| {
            mem.as_ref()
                .is_some_and(|m| m.roles_on_disk.contains(&(r.name.clone(), r.version)))
        };
        let new_roles: Vec<&Arc<TrustedTargets>> = match publish_up {
            Some(up) => up.roles.iter().filter(|r| !on_disk(r)).collect(),
            None => Vec::new(),
        };
        let up_files = publish_up.unwrap_or(&held);
        let root_floor = mem.as_ref().map_or(0, |m| m.upstream_root_on_disk);
        let up_snapshot = up_files.snapshot.as_ref().filter(|(v, _)| {
            mem.as_ref()
                .is_none_or(|m| m.upstream_snapshot_on_disk != Some(*v))
        });
        let up_timestamp = up_files.timestamp.as_ref().filter(|t| {
            mem.as_ref()
                .is_none_or(|m| m.upstream_timestamp_on_disk.as_deref() != Some(&***t))
        });
        let publication = Publication {
            roles: new_roles
                .iter()
                .map(|r| (r.name.as_str(), r.version, &*r.bytes))
                .collect(),
            upstream_roots: up_files
                .chain
                .iter()
                .filter(|(v, _)| *v > root_floor)
                .map(|(v, b)| (*v, &**b))
                .collect(),
            upstream_snapshot: up_snapshot.map(|(v, b)| (*v, &**b)),
            upstream_timestamp: up_timestamp.map(|t| &**t),
            roots: roots.iter().collect(),
            snapshot: snapshot.as_ref().map(|(_, d)| d),
            timestamp: Some(&timestamp),
        };
        if let Err(e) = self.verify(&mut verifier, &new_roles, &publication, served, now) {
            if ceremony_root.is_some() {
                // A root handed in that does not verify with the rest must not stop
                // the next ticks: it is set aside.
                self.set_aside_incoming(&e.to_string());
            }
            return Err(e);
        }
        blocking(|| self.tree.publish(&publication)).map_err(|source| CycleError::Publish {
            repo: self.name(),
            source,
        })?;
        tracing::info!(repo, root = ?out.root, snapshot = ?out.snapshot, timestamp = tv, "published");
        if ceremony_root.is_some() {
            let path = crate::ceremony::incoming_path(self.tree.dir());
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(repo, path = %path.display(), error = %e, "published the root handed in but cannot remove it");
            }
        }
        // Every signature is in the audit log with its reservation; a publish is
        // recorded when it changes more than the timestamp.
        if let (Some(s), Some(v), Some(new)) = (served, out.root, new_root_signed) {
            let changes = crate::ceremony::role_changes(&s.root.signed, new);
            if !changes.is_empty() {
                let how = if ceremony_root.is_some() {
                    "root handed in by the ceremony"
                } else {
                    "root signed with the keys at hand"
                };
                let detail = format!("root v{v} ({how}): {}", changes.join("; "));
                if let Err(e) = self.ledger.audit(repo, now, "rotation", &detail) {
                    tracing::warn!(repo, error = %crate::service::display_chain(&e), "rotation not recorded in the audit log");
                }
            }
        }
        if out.root.is_some() || out.snapshot.is_some() {
            let detail = format!(
                "root {}, snapshot {}, timestamp {tv}",
                out.root.map_or("unchanged".into(), |v| format!("v{v}")),
                out.snapshot.map_or("unchanged".into(), |v| format!("v{v}")),
            );
            if let Err(e) = self.ledger.audit(repo, now, "publish", &detail) {
                tracing::warn!(repo, error = %crate::service::display_chain(&e), "publish not recorded in the audit log");
            }
        }

        // What is served now: the memo is updated in place (the snapshot meta of a
        // large repository is not copied on every tick).
        let new_root = match roots.last() {
            Some(r) => match ServedRoot::parse(Arc::from(r.bytes.as_slice())) {
                Some(r) => Some(r),
                None => return Ok((out, None)),
            },
            None => None,
        };
        let new_snapshot = match (snapshot, snapshot_unsigned) {
            (Some((file, _)), Some(u)) => {
                let mut signed = u.into_signed();
                let expires = signed["expires"].as_str().and_then(|e| e.parse().ok());
                match expires {
                    Some(expires) => Some(ServedSnapshot {
                        file,
                        expires,
                        meta: signed["meta"].take(),
                    }),
                    None => return Ok((out, None)),
                }
            }
            _ => None,
        };
        let mut next = match (mem, new_root, new_snapshot) {
            (Some(mut m), root, snapshot) => {
                if let Some(r) = root {
                    m.served.root = r;
                }
                if let Some(s) = snapshot {
                    m.served.snapshot = s;
                }
                m.served.timestamp = tv;
                m
            }
            (None, Some(root), Some(snapshot)) => Memory::new(Served {
                root,
                snapshot,
                timestamp: tv,
            }),
            // Nothing to remember (no root could be signed yet): read back next time.
            (None, _, _) => return Ok((out, None)),
        };
        next.roles_on_disk
            .extend(new_roles.iter().map(|r| (r.name.clone(), r.version)));
        if let Some((v, _)) = up_files.chain.last() {
            next.upstream_root_on_disk = next.upstream_root_on_disk.max(*v);
        }
        if let Some((v, _)) = &up_files.snapshot {
            next.upstream_snapshot_on_disk = Some(*v);
        }
        if let Some(t) = &up_files.timestamp {
            next.upstream_timestamp_on_disk = Some(t.clone());
        }
        if fresh_up.is_some() {
            next.upstream_root = Some(UpstreamRoot {
                version: up.root_version,
                bytes: up.root_bytes.clone(),
                targets: up.targets.clone(),
            });
        }
        next.verifier = verifier;
        if next
            .pruned_at
            .is_none_or(|t| now.duration_since(t) >= PRUNE_EVERY || now < t)
        {
            next.pruned_at = Some(now);
            blocking(|| self.prune(&next, now));
        }
        Ok((out, Some(next)))
    }

    /// A root handed in by `root publish` (`ceremony::incoming_path`), when it follows
    /// the served root with both thresholds met and lists a configured snapshot and
    /// timestamp key. One that can never be used is set aside (`root.json.rejected`);
    /// one waiting for the configuration stays.
    fn incoming_root(&self, s: &Served) -> Option<IncomingRoot> {
        let repo = self.repo.name.as_str();
        let path = crate::ceremony::incoming_path(self.tree.dir());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::error!(repo, path = %path.display(), error = %e, "cannot read the root handed in");
                return None;
            }
        };
        let checked = crate::ceremony::parse(&bytes, "the root handed in")
            .and_then(|doc| crate::ceremony::check_parsed(&s.root.signed, doc))
            .and_then(|c| c.require().map(|()| c));
        let mut doc = match checked {
            Ok(c) => c.doc,
            Err(e) => {
                self.set_aside_incoming(&e.to_string());
                return None;
            }
        };
        let signed = doc["signed"].take();
        let version = signed["version"].as_u64()?;
        for (role, keys) in [
            ("snapshot", &self.keys.snapshot),
            ("timestamp", &self.keys.timestamp),
        ] {
            let listed = crate::ceremony::role_key_ids(&signed, role);
            if !keys.iter().any(|k| listed.iter().any(|l| l == k.keyid())) {
                tracing::warn!(
                    repo,
                    version,
                    role,
                    listed = ?listed,
                    "the root handed in waits: it lists {role} keys none of which is in {role}_keys; \
                     add the new key to the configuration and reload"
                );
                return None;
            }
        }
        let keyids = doc["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|sig| sig["keyid"].as_str().map(str::to_owned))
            .collect();
        let content_sha256 = Unsigned::new("root", signed.clone()).content_sha256();
        Some(IncomingRoot {
            doc: SignedDoc {
                version,
                bytes,
                content_sha256,
            },
            signed,
            keyids,
        })
    }

    fn set_aside_incoming(&self, why: &str) {
        let repo = self.repo.name.as_str();
        let path = crate::ceremony::incoming_path(self.tree.dir());
        let aside = path.with_extension("json.rejected");
        tracing::error!(repo, path = %path.display(), moved_to = %aside.display(), reason = why, "root handed in refused");
        if let Err(e) = std::fs::rename(&path, &aside) {
            tracing::error!(repo, path = %path.display(), error = %e, "cannot set the refused root aside");
        }
    }

    /// Removes versions superseded for longer than the retention (best effort: a
    /// failure is logged and the next pass tries again).
    fn prune(&self, m: &Memory, now: Timestamp) {
        let mut keep: HashMap<String, u64> = HashMap::new();
        if let Some(meta) = m.served.snapshot.meta.as_object() {
            for (file, entry) in meta {
                let role = file.strip_suffix(".json").unwrap_or(file);
                if let Some(v) = entry["version"].as_u64() {
                    keep.insert(
                        format!("{}.json", tuf_mirror_client::names::encode_role(role)),
                        v,
                    );
                }
            }
        }
        keep.insert("snapshot.json".into(), m.served.snapshot.file.version);
        let mut up_keep = HashMap::new();
        if let Some(v) = m.upstream_snapshot_on_disk {
            up_keep.insert("snapshot.json".to_owned(), v);
        }
        let now = std::time::SystemTime::from(now);
        let retention = self.repo.retention;
        for (dir, keep) in [("metadata", &keep), ("upstream", &up_keep)] {
            let path = self.tree.dir().join(dir);
            match crate::prune::prune_dir(&path, retention, now, keep) {
                Ok(p) if p.files > 0 => tracing::info!(
                    repo = self.repo.name.as_str(),
                    dir = %path.display(),
                    files = p.files,
                    bytes = p.bytes,
                    "superseded versions removed"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    repo = self.repo.name.as_str(),
                    dir = %path.display(),
                    error = %e,
                    "pruning superseded versions failed"
                ),
            }
        }
    }

    /// Verifies the candidate state with the engine, as a client holding the state
    /// served now would, before anything is written: the root chain, timestamp,
    /// snapshot and targets. The engine is kept between cycles, so it fetches only
    /// what changed. The delegated roles are the bytes the upstream engine verified
    /// against the same delegations, and the snapshot lists their hashes computed over
    /// those bytes, so they are not verified twice: a cycle costs what changed, not the
    /// size of the repository.
    fn verify(
        &self,
        slot: &mut Option<Verifier>,
        new_roles: &[&Arc<TrustedTargets>],
        p: &Publication<'_>,
        served: Option<&Served>,
        now: Timestamp,
    ) -> Result<(), CycleError> {
        let mut files: HashMap<String, Arc<[u8]>> = HashMap::new();
        for r in new_roles {
            files.insert(
                format!(
                    "metadata/{}.{}.json",
                    r.version,
                    tuf_mirror_client::names::encode_role(&r.name)
                ),
                r.bytes.clone(),
            );
        }
        for r in &p.roots {
            files.insert(
                format!("metadata/{}.root.json", r.version),
                Arc::from(r.bytes.as_slice()),
            );
        }
        if let Some(s) = p.snapshot {
            files.insert(
                format!("metadata/{}.snapshot.json", s.version),
                Arc::from(s.bytes.as_slice()),
            );
        }
        if let Some(t) = p.timestamp {
            files.insert(
                "metadata/timestamp.json".into(),
                Arc::from(t.bytes.as_slice()),
            );
        }
        let verify_err = |source: tuf_mirror_client::Error| CycleError::Verify {
            repo: self.name(),
            source: Box::new(source),
        };
        let v = match slot {
            Some(v) => v,
            None => {
                let anchor: Arc<[u8]> = match (served, p.roots.first()) {
                    (Some(s), _) => s.root.bytes.clone(),
                    (None, Some(r)) => Arc::from(r.bytes.as_slice()),
                    (None, None) => return Ok(()),
                };
                let overlay = Arc::new(Overlay {
                    dir: self.tree.dir().to_owned(),
                    files: Mutex::new(HashMap::new()),
                });
                let base = Url::parse("http://mirror.invalid/metadata/").map_err(|e| {
                    CycleError::State {
                        repo: self.name(),
                        reason: e.to_string(),
                    }
                })?;
                let mut config = UpdaterConfig::new(base);
                config.time = ValidationTime::At(now);
                config.mode = DelegationMode::Lazy;
                let engine = Updater::init(
                    config,
                    overlay.clone(),
                    Arc::new(MemoryStore::default()),
                    &anchor,
                )
                .map_err(verify_err)?;
                slot.insert(Verifier { engine, overlay })
            }
        };
        *v.overlay.lock() = files;
        v.engine.set_time(ValidationTime::At(now));
        let r = blocking(|| v.engine.refresh());
        // The engine keeps what it verified; the candidate files are on disk once
        // published, and a failed cycle drops the engine with the memo.
        v.overlay.lock().clear();
        r.map_err(verify_err)
    }
}

/// A root handed in by the ceremony, checked: the file, its `signed`, and the key ids
/// that signed it.
struct IncomingRoot {
    doc: SignedDoc,
    signed: Value,
    keyids: Vec<String>,
}

/// How often superseded versions are looked for (after a publish).
const PRUNE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// Runs blocking work (file I/O, parsing, signature checks) without stalling the
/// other tasks of a multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The served tree with the candidate files laid over it.
struct Overlay {
    dir: PathBuf,
    files: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl Overlay {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<[u8]>>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Transport for Overlay {
    fn fetch(&self, url: &Url) -> tuf_mirror_client::Result<ByteStream> {
        let rel = url.path().trim_start_matches('/');
        if let Some(b) = self.lock().get(rel) {
            return Ok(Box::new(Cursor::new(b.clone())));
        }
        // Served names keep their percent-encoding on disk, as in the URL.
        match std::fs::read(self.dir.join(rel)) {
            Ok(b) => Ok(Box::new(Cursor::new(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(tuf_mirror_client::Error::NotFound {
                    url: url.to_string(),
                })
            }
            Err(e) => Err(tuf_mirror_client::Error::Fetch {
                url: url.to_string(),
                source: Box::new(e),
            }),
        }
    }
}
