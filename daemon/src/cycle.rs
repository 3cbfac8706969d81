//! One sign-and-publish cycle for one repository: decide which mirror roles need a new
//! version, reserve each version durably, sign, verify the candidate state as a client
//! would, and publish it in the crash-safe order.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

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
use crate::mirror::{self, MirrorKeys, SignedDoc};
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
    fn from_served(mirror_root: &[u8]) -> Self {
        let v: Value = serde_json::from_slice(mirror_root).unwrap_or_default();
        let targets: RoleKeys = serde_json::from_value(v["signed"]["roles"]["targets"].clone())
            .unwrap_or(RoleKeys {
                keyids: Vec::new(),
                threshold: u64::MAX,
            });
        UpstreamView {
            root_bytes: Arc::from(mirror_root),
            root_version: 0,
            targets,
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

/// What the mirror serves now, read back from its own tree.
#[derive(Debug, Clone)]
pub struct Served {
    /// Newest mirror root: version, expiry, raw bytes.
    pub root: (u64, Timestamp, Vec<u8>),
    /// Current snapshot: version, expiry, its `meta`.
    pub snapshot: (u64, Timestamp, Value),
    /// Current timestamp version.
    pub timestamp: u64,
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
}

fn doc_fields(bytes: &[u8]) -> Option<(u64, Timestamp, Value)> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let signed = v.get("signed")?;
    let version = signed.get("version")?.as_u64()?;
    let expires: Timestamp = signed.get("expires")?.as_str()?.parse().ok()?;
    Some((version, expires, signed.clone()))
}

fn dur(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Mirror<'_> {
    fn name(&self) -> String {
        self.repo.name.as_str().to_owned()
    }

    /// Reads what is served now; `None` before the first publish.
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
        let (rv, rexp, _) = doc_fields(&root).ok_or_else(|| bad("root.json"))?;
        let (tv, _, tsigned) = doc_fields(&ts).ok_or_else(|| bad("timestamp.json"))?;
        let sv = tsigned["meta"]["snapshot.json"]["version"]
            .as_u64()
            .ok_or_else(|| bad("timestamp.json"))?;
        let sname = format!("{sv}.snapshot.json");
        let sbytes = read(&sname)?.ok_or_else(|| bad(&sname))?;
        let (_, sexp, ssigned) = doc_fields(&sbytes).ok_or_else(|| bad(&sname))?;
        Ok(Some(Served {
            root: (rv, rexp, root),
            snapshot: (sv, sexp, ssigned["meta"].clone()),
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

    fn next_version(&self, role: &str, served: Option<u64>) -> Result<u64, CycleError> {
        let hw = self.ledger.high_water(self.repo.name.as_str(), role)?;
        Ok(served.unwrap_or(0).max(hw.unwrap_or(0)) + 1)
    }

    async fn sign_new(
        &self,
        role: &'static str,
        signed: Value,
        keys: &[&mirror::MirrorKey],
    ) -> Result<SignedDoc, CycleError> {
        let version = signed["version"].as_u64().unwrap_or(0);
        // DESIGN 6.2: the version is recorded, and flushed, before it is signed.
        self.ledger.reserve(
            self.repo.name.as_str(),
            role,
            version,
            mirror::content_sha256(&signed),
        )?;
        mirror::sign(role, signed, keys)
            .await
            .map_err(|source| CycleError::Sign {
                repo: self.name(),
                source,
            })
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
        let repo = self.repo.name.as_str();
        let now = self.clock.now();
        self.ledger.check_clock(repo, now)?;
        let served = self.served()?;
        let from_served;
        let up = match (fresh_up, &served) {
            (Some(up), _) => up,
            (None, Some(s)) => {
                from_served = UpstreamView::from_served(&s.root.2);
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

        // Root.
        let mut roots: Vec<SignedDoc> = Vec::new();
        let wanted_targets = up.targets.clone();
        let root_needed = match &served {
            None => true,
            Some(s) => {
                let v: Value = serde_json::from_slice(&s.root.2).unwrap_or_default();
                let t = &v["signed"]["roles"]["targets"];
                let mut ids: Vec<String> =
                    serde_json::from_value(t["keyids"].clone()).unwrap_or_default();
                ids.sort();
                let mut want = wanted_targets.keyids.clone();
                want.sort();
                ids != want
                    || t["threshold"].as_u64() != Some(wanted_targets.threshold)
                    || s.root.1.duration_since(now) < dur(exp.root) / 4
            }
        };
        if root_needed {
            if (self.keys.root.len() as u64) < self.keys.root_threshold {
                out.root_signature_needed = true;
            } else {
                let version = self.next_version("root", served.as_ref().map(|s| s.root.0))?;
                let signed = mirror::root_signed(version, now + dur(exp.root), self.keys, up)
                    .map_err(|source| CycleError::Sign {
                        repo: self.name(),
                        source,
                    })?;
                let keys: Vec<_> = self.keys.root.iter().collect();
                roots.push(self.sign_new("root", signed, &keys).await?);
                out.root = Some(version);
            }
        }

        // Snapshot.
        let roles = &up.roles;
        let meta = match (fresh_up, &served) {
            (None, Some(s)) => s.snapshot.2.clone(),
            _ => mirror::snapshot_signed(0, now, roles.iter().map(|r| &**r))["meta"].take(),
        };
        let snapshot_needed = match &served {
            None => true,
            Some(s) => {
                s.snapshot.2 != meta || s.snapshot.1.duration_since(now) < dur(exp.snapshot) / 2
            }
        };
        let snapshot = if snapshot_needed {
            let version = self.next_version("snapshot", served.as_ref().map(|s| s.snapshot.0))?;
            let signed = mirror::snapshot_from_meta(version, now + dur(exp.snapshot), meta);
            let keys: Vec<_> = self.keys.snapshot.iter().collect();
            out.snapshot = Some(version);
            Some(self.sign_new("snapshot", signed, &keys).await?)
        } else {
            None
        };
        let snapshot_for_ts = match &snapshot {
            Some(s) => s.clone(),
            None => {
                let v = served.as_ref().map_or(0, |s| s.snapshot.0);
                let bytes =
                    std::fs::read(self.tree.dir().join(format!("metadata/{v}.snapshot.json")))
                        .map_err(|e| {
                            self.served_err(&self.tree.dir().join("metadata"), &e.to_string())
                        })?;
                SignedDoc {
                    version: v,
                    bytes,
                    content_sha256: [0; 32],
                }
            }
        };

        // Timestamp.
        let tv = self.next_version("timestamp", served.as_ref().map(|s| s.timestamp))?;
        let signed = mirror::timestamp_signed(tv, now + dur(exp.timestamp), &snapshot_for_ts);
        let keys: Vec<_> = self.keys.timestamp.iter().collect();
        let timestamp = self.sign_new("timestamp", signed, &keys).await?;
        out.timestamp = tv;
        out.timestamp_expires = Some(now + dur(exp.timestamp));
        self.ledger.record_signing(repo, now)?;

        let publication = Publication {
            roles: roles
                .iter()
                .map(|r| (r.name.as_str(), r.version, &*r.bytes))
                .collect(),
            upstream_roots: up.chain.iter().map(|(v, b)| (*v, &**b)).collect(),
            upstream_snapshot: up.snapshot.as_ref().map(|(v, b)| (*v, &**b)),
            upstream_timestamp: up.timestamp.as_deref(),
            roots: roots.iter().collect(),
            snapshot: snapshot.as_ref(),
            timestamp: Some(&timestamp),
        };
        self.verify(&publication, served.as_ref(), now)?;
        self.tree
            .publish(&publication)
            .map_err(|source| CycleError::Publish {
                repo: self.name(),
                source,
            })?;
        tracing::info!(repo, root = ?out.root, snapshot = ?out.snapshot, timestamp = tv, "published");
        Ok(out)
    }

    /// Verifies the candidate state with the engine, as a client holding the root
    /// served now (or the new root version 1) would, before anything is written: the
    /// root chain, timestamp, snapshot and targets. The delegated roles are the bytes
    /// the upstream engine verified against the same delegations, and the snapshot lists
    /// their hashes computed over those bytes, so they are not verified twice: a cycle
    /// costs what changed, not the size of the repository.
    fn verify(
        &self,
        p: &Publication<'_>,
        served: Option<&Served>,
        now: Timestamp,
    ) -> Result<(), CycleError> {
        let mut files: HashMap<String, Arc<[u8]>> = HashMap::new();
        for (name, version, bytes) in &p.roles {
            files.insert(
                format!(
                    "metadata/{version}.{}.json",
                    tuf_mirror_client::names::encode_role(name)
                ),
                Arc::from(*bytes),
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
        let anchor: Vec<u8> = match (served, p.roots.first()) {
            (Some(s), _) => s.root.2.clone(),
            (None, Some(r)) => r.bytes.clone(),
            (None, None) => return Ok(()),
        };
        let overlay = Overlay {
            dir: self.tree.dir().to_owned(),
            files,
        };
        let base =
            Url::parse("http://mirror.invalid/metadata/").map_err(|e| CycleError::State {
                repo: self.name(),
                reason: e.to_string(),
            })?;
        let mut config = UpdaterConfig::new(base);
        config.time = ValidationTime::At(now);
        config.mode = DelegationMode::Lazy;
        let verify_err = |source: tuf_mirror_client::Error| CycleError::Verify {
            repo: self.name(),
            source: Box::new(source),
        };
        let mut u = Updater::init(
            config,
            Arc::new(overlay),
            Arc::new(MemoryStore::default()),
            &anchor,
        )
        .map_err(verify_err)?;
        u.refresh().map_err(verify_err)
    }
}

/// The served tree with the candidate files laid over it.
struct Overlay {
    dir: PathBuf,
    files: HashMap<String, Arc<[u8]>>,
}

impl Transport for Overlay {
    fn fetch(&self, url: &Url) -> tuf_mirror_client::Result<ByteStream> {
        let rel = url.path().trim_start_matches('/');
        if let Some(b) = self.files.get(rel) {
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
