//! Target files: copied from the upstream into the served tree, checked on the way.
//!
//! Every target listed by a verified role is fetched from the upstream (at its consistent
//! name when the upstream root says `consistent_snapshot`, else at its path), streamed
//! through [`TargetVerifier`] (the signed length and every listed hash, TUF 5.7.3) into a
//! temporary file beside its destination, fsynced, and renamed to its first mirror name,
//! `targets/<dir>/<hash>.<name>`. Its other hash names are hard links to it (copies where
//! the file system refuses links). The mirror root always says `consistent_snapshot`, and
//! clients differ in the hash they name files by (python-tuf the first listed, tough
//! sha256), hence one name per listed hash (DESIGN.md section 5).
//!
//! A mirror name embeds a hash and only ever receives a verified file, by rename or link;
//! so a target whose names all exist is not fetched again, and no failure (missing upstream
//! file, wrong length or hash, I/O error, full disk) leaves unverified bytes at a mirror
//! name. These are the rules of [`crate::publish`], applied here because target files are
//! streamed rather than held in memory.
//!
//! **Failure policy.** One target that cannot be mirrored fails the whole call: a snapshot
//! over roles that list it would send clients to a file the mirror cannot serve, so the
//! caller must keep serving (and re-signing) its last good view. The other targets are
//! still copied, so the next sync does not fetch them again, and every failure is named in
//! [`TargetsError::Failed`] with its URL and cause. After [`MAX_FAILURES`] failures no new
//! target is started: a full disk or an unreachable upstream fails them all alike.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use tuf_mirror_client::names::check_target_path;
use tuf_mirror_client::schema::{Hashes, TargetDesc};
use tuf_mirror_client::{
    copy_verified, Error as EngineError, ErrorKind, TargetVerifier, Transport, TrustedTargets,
    Updater,
};
use tuf_mirror_config::Source;
use url::Url;

use crate::upstream::transport_for;

/// Failures after which no new target is started.
pub const MAX_FAILURES: usize = 100;

/// Failed target paths shown in an error message; all are in [`TargetsError::Failed`].
const SHOWN_IN_MESSAGE: usize = 5;

/// Prefix of temporary files, which the server never answers for.
const TMP_PREFIX: &str = ".tmp-";

/// What [`mirror_targets`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetsReport {
    /// Targets fetched, verified and placed under all their names.
    pub copied: usize,
    /// Bytes fetched for them.
    pub bytes: u64,
    /// Targets whose mirror names all existed already.
    pub skipped: usize,
}

/// One target that could not be mirrored.
#[derive(Debug, thiserror::Error)]
#[error("target {path:?} from {}", url.as_ref().map_or("(no URL)", Url::as_str))]
pub struct TargetFailure {
    /// The target path, as the upstream lists it.
    pub path: String,
    /// Where it was fetched from, when the path made a URL.
    pub url: Option<Url>,
    /// Why: `NotFound`/`Fetch` (upstream), `Integrity` (length or hash), `BadName`,
    /// `Io` (local).
    #[source]
    pub source: EngineError,
}

/// Errors of [`mirror_targets`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TargetsError {
    /// The upstream targets source cannot be used at all.
    Unusable {
        /// The source, as configured.
        upstream: String,
        /// Why.
        source: Box<EngineError>,
    },
    /// Some targets could not be mirrored; the others were.
    Failed {
        /// Each failure, sorted by path.
        failures: Vec<TargetFailure>,
        /// Distinct targets listed by the verified roles.
        total: usize,
        /// Targets not tried once [`MAX_FAILURES`] was reached.
        not_attempted: usize,
    },
    /// A directory of the tree could not be made durable after the copies.
    Sync {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

impl std::fmt::Display for TargetsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetsError::Unusable { upstream, .. } => {
                write!(f, "upstream targets source {upstream} is unusable")
            }
            TargetsError::Failed {
                failures,
                total,
                not_attempted,
            } => {
                write!(
                    f,
                    "{} of {total} target(s) could not be mirrored",
                    failures.len()
                )?;
                if *not_attempted > 0 {
                    write!(
                        f,
                        " ({not_attempted} not attempted after too many failures)"
                    )?;
                }
                let names: Vec<String> = failures
                    .iter()
                    .take(SHOWN_IN_MESSAGE)
                    .map(|t| format!("{:?}", t.path))
                    .collect();
                write!(f, ": {}", names.join(", "))?;
                if failures.len() > SHOWN_IN_MESSAGE {
                    write!(f, " and {} more", failures.len() - SHOWN_IN_MESSAGE)?;
                }
                Ok(())
            }
            TargetsError::Sync { dir, .. } => write!(f, "cannot fsync {}", dir.display()),
        }
    }
}

impl std::error::Error for TargetsError {
    /// The cause; for [`TargetsError::Failed`], the first failure (all are in the variant).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TargetsError::Unusable { source, .. } => Some(&**source),
            TargetsError::Failed { failures, .. } => failures
                .first()
                .map(|t| t as &(dyn std::error::Error + 'static)),
            TargetsError::Sync { source, .. } => Some(source),
        }
    }
}

impl TargetsError {
    /// What to do about it: `Security` when any target failed its length or hashes (the
    /// upstream serves files its metadata does not sign: alert), else `Fatal` for a local
    /// or configuration problem, else `Retryable` (the upstream was missing files or
    /// unreachable).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TargetsError::Unusable { source, .. } => source.kind(),
            TargetsError::Sync { .. } => ErrorKind::Fatal,
            TargetsError::Failed { failures, .. } => {
                let kinds: Vec<ErrorKind> = failures.iter().map(|t| t.source.kind()).collect();
                if kinds.contains(&ErrorKind::Security) {
                    ErrorKind::Security
                } else if kinds.contains(&ErrorKind::Fatal) {
                    ErrorKind::Fatal
                } else {
                    ErrorKind::Retryable
                }
            }
        }
    }
}

/// `(dir, name)` of a checked target path; `dir` is empty at the top.
fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Where the upstream serves target `path` under the directory URL `base`:
/// `dir/<first listed hash>.<name>` when the upstream root has `consistent_snapshot`
/// (TUF 5.7.2), else the path itself. Segments are percent-encoded like
/// [`Updater::target_url`] does, and appended rather than resolved, so no path
/// (`https:host/x`, say) can name another host. The path is checked first
/// ([`check_target_path`]): upstream paths are untrusted.
pub fn upstream_target_url(
    base: &Url,
    path: &str,
    hashes: &Hashes,
    consistent: bool,
) -> Result<Url, EngineError> {
    check_target_path(path)?;
    let mut url = base.clone();
    {
        let mut segs = url.path_segments_mut().map_err(|()| EngineError::Config {
            reason: format!("{base} cannot be a base URL for targets"),
        })?;
        segs.pop_if_empty();
        let (dir, name) = split_path(path);
        if !dir.is_empty() {
            segs.extend(dir.split('/'));
        }
        if consistent {
            let hash = hashes.first_hex().ok_or_else(|| no_hashes(path))?;
            segs.push(&format!("{hash}.{name}"));
        } else {
            segs.push(name);
        }
    }
    Ok(url)
}

/// The mirror's names for target `path` in the tree at `tree_dir`:
/// `targets/<dir>/<hash>.<name>` for every listed hash, in the order listed (the first is
/// where a verified copy is renamed to; the others are linked to it). The path is
/// checked first ([`check_target_path`]).
pub fn mirror_target_paths(
    tree_dir: &Path,
    path: &str,
    hashes: &Hashes,
) -> Result<Vec<PathBuf>, EngineError> {
    check_target_path(path)?;
    let (dir, name) = split_path(path);
    let mut parent = tree_dir.join("targets");
    parent.extend(dir.split('/').filter(|s| !s.is_empty()));
    let mut out: Vec<PathBuf> = Vec::with_capacity(hashes.0.len());
    for (_, digest) in &hashes.0 {
        let p = parent.join(format!("{}.{name}", hex::encode(digest)));
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(no_hashes(path));
    }
    Ok(out)
}

fn no_hashes(path: &str) -> EngineError {
    EngineError::Integrity {
        what: path.to_owned(),
        file: String::new(),
        reason: "no hashes listed".into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies every target of every role `updater` verified from `upstream_targets` into the
/// tree at `tree_dir`, with at most `workers` fetches at a time. Targets listed twice with
/// the same length and hashes are fetched once. See the module documentation for the
/// failure policy: any failure is an error, after the other targets were copied.
pub fn mirror_targets(
    updater: &Updater,
    upstream_targets: &Source,
    tree_dir: &Path,
    workers: usize,
) -> Result<TargetsReport, TargetsError> {
    mirror_roles(
        updater.roles().map(|r| &**r),
        updater.root().signed.consistent_snapshot,
        upstream_targets,
        tree_dir,
        workers,
    )
}

/// [`mirror_targets`] for the targets of some roles only (those that changed since the
/// last successful copy); `consistent` is the upstream root's `consistent_snapshot`.
pub fn mirror_roles<'a>(
    roles: impl IntoIterator<Item = &'a TrustedTargets>,
    consistent: bool,
    upstream_targets: &Source,
    tree_dir: &Path,
    workers: usize,
) -> Result<TargetsReport, TargetsError> {
    let (base, transport) =
        transport_for(upstream_targets).map_err(|source| TargetsError::Unusable {
            upstream: upstream_targets.to_string(),
            source: Box::new(source),
        })?;
    let mut seen = HashSet::new();
    let mut jobs: Vec<(&str, &TargetDesc)> = Vec::new();
    for role in roles {
        for (path, desc) in &role.targets {
            if seen.insert((path.as_str(), desc.length, &desc.hashes.0)) {
                jobs.push((path, desc));
            }
        }
    }
    jobs.sort_by(|a, b| a.0.cmp(b.0));
    let copier = Copier {
        base,
        transport: &*transport,
        consistent,
        tree_dir,
    };
    let total = jobs.len();
    let next = AtomicUsize::new(0);
    let attempted = AtomicUsize::new(0);
    let copied = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failures: Mutex<Vec<TargetFailure>> = Mutex::new(Vec::new());
    let failed = AtomicUsize::new(0);
    let dirs: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, 64).min(total) {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) >= MAX_FAILURES {
                    break;
                }
                let Some(&(path, desc)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                attempted.fetch_add(1, Ordering::Relaxed);
                match copier.one(path, desc) {
                    Ok(None) => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(dir)) => {
                        copied.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(desc.length, Ordering::Relaxed);
                        dirs.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(dir);
                    }
                    Err(f) => {
                        tracing::warn!(
                            path = f.path,
                            url = f.url.as_ref().map(Url::as_str),
                            error = %crate::service::display_chain(&f.source),
                            "target not mirrored"
                        );
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(*f);
                    }
                }
            });
        }
    });
    // What was copied is made durable even when something failed: it is correct, and the
    // next sync relies on it being there.
    sync_dirs(
        tree_dir,
        dirs.into_inner().unwrap_or_else(PoisonError::into_inner),
    )?;
    let mut failures = failures
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if !failures.is_empty() {
        failures.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(TargetsError::Failed {
            failures,
            total,
            not_attempted: total - attempted.into_inner(),
        });
    }
    let report = TargetsReport {
        copied: copied.into_inner(),
        bytes: bytes.into_inner(),
        skipped: skipped.into_inner(),
    };
    tracing::info!(
        copied = report.copied,
        bytes = report.bytes,
        skipped = report.skipped,
        "target files mirrored"
    );
    Ok(report)
}

/// The fixed inputs of one copy.
struct Copier<'a> {
    base: Url,
    transport: &'a dyn Transport,
    consistent: bool,
    tree_dir: &'a Path,
}

impl Copier<'_> {
    /// Mirrors one target: `None` when its names all exist, else the directory written.
    fn one(&self, path: &str, desc: &TargetDesc) -> Result<Option<PathBuf>, Box<TargetFailure>> {
        let fail = |url: Option<&Url>, source| {
            Box::new(TargetFailure {
                path: path.to_owned(),
                url: url.cloned(),
                source,
            })
        };
        let names =
            mirror_target_paths(self.tree_dir, path, &desc.hashes).map_err(|e| fail(None, e))?;
        if names.iter().all(|n| n.is_file()) {
            return Ok(None);
        }
        let url = upstream_target_url(&self.base, path, &desc.hashes, self.consistent)
            .map_err(|e| fail(None, e))?;
        self.copy(&url, path, desc, &names)
            .map_err(|e| fail(Some(&url), e))
            .map(Some)
    }

    /// Fetch, verify into a temporary file, fsync, rename to the first name, link the
    /// others. The temporary file is removed on any error (it is dropped).
    fn copy(
        &self,
        url: &Url,
        path: &str,
        desc: &TargetDesc,
        names: &[PathBuf],
    ) -> Result<PathBuf, EngineError> {
        let url_s = url.to_string();
        let Some((first, others)) = names.split_first() else {
            return Err(no_hashes(path));
        };
        let dir = first.parent().unwrap_or(self.tree_dir);
        let mut verifier = TargetVerifier::new(path, desc.length, &desc.hashes, &url_s)?;
        let mut src = self.transport.fetch(url)?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        copy_verified(&mut src, tmp.as_file_mut(), &mut verifier, &url_s, first)?;
        verifier.finish(&url_s)?;
        tmp.as_file().sync_all().map_err(io_err(first))?;
        tmp.persist(first).map_err(|e| io_err(first)(e.error))?;
        for other in others {
            link_or_copy(first, other)?;
        }
        Ok(dir.to_owned())
    }
}

/// Gives the verified file `from` a second name `to` in the same directory.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), EngineError> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        // Put there by another listing of the same hash: a mirror name only ever holds
        // the bytes its hash names.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            tracing::debug!(from = %from.display(), error = %e, "hard link refused, copying");
            let dir = to.parent().unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempfile_in(dir)
                .map_err(io_err(dir))?;
            let mut src = File::open(from).map_err(io_err(from))?;
            io::copy(&mut src, tmp.as_file_mut()).map_err(io_err(to))?;
            tmp.as_file().sync_all().map_err(io_err(to))?;
            tmp.persist(to).map_err(|e| io_err(to)(e.error))?;
            Ok(())
        }
    }
}

/// Fsyncs each directory written and its ancestors up to `tree_dir` (some were created),
/// so the renames and links survive a crash before the snapshot listing them is written.
fn sync_dirs(tree_dir: &Path, written: BTreeSet<PathBuf>) -> Result<(), TargetsError> {
    let mut all = BTreeSet::new();
    for dir in written {
        let mut cur = Some(dir.as_path());
        while let Some(d) = cur.filter(|d| d.starts_with(tree_dir)) {
            if !all.insert(d.to_owned()) {
                break;
            }
            cur = d.parent();
        }
    }
    for dir in all {
        if let Err(source) = File::open(&dir).and_then(|d| d.sync_all()) {
            return Err(TargetsError::Sync { dir, source });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuf_mirror_client::schema::HashAlg;

    fn hashes() -> Hashes {
        Hashes(vec![
            (HashAlg::Sha512, vec![0xab; 64]),
            (HashAlg::Sha256, vec![0x01; 32]),
        ])
    }

    #[test]
    fn upstream_urls_follow_the_upstream_naming_and_stay_under_the_base() {
        let base: Url = "https://up.example/repo/targets/".parse().unwrap();
        let h512 = "ab".repeat(64);
        let u = upstream_target_url(&base, "a b/c#d.txt", &hashes(), true).unwrap();
        assert_eq!(
            u.as_str(),
            format!("https://up.example/repo/targets/a%20b/{h512}.c%23d.txt")
        );
        let u = upstream_target_url(&base, "top.txt", &hashes(), false).unwrap();
        assert_eq!(u.as_str(), "https://up.example/repo/targets/top.txt");
        // Resolved as a reference, these would leave the base.
        for path in ["https:evil.example/x", "x:y", "a%2F..%2F..%2Fx"] {
            let u = upstream_target_url(&base, path, &hashes(), false).unwrap();
            assert!(
                u.as_str().starts_with("https://up.example/repo/targets/"),
                "{u}"
            );
        }
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ""] {
            assert!(
                upstream_target_url(&base, bad, &hashes(), true).is_err(),
                "{bad}"
            );
        }
        let dir: Url = "file:///srv/import/targets/".parse().unwrap();
        let u = upstream_target_url(&dir, "d/x", &hashes(), false).unwrap();
        assert_eq!(u.as_str(), "file:///srv/import/targets/d/x");
    }

    #[test]
    fn one_mirror_name_per_listed_hash_first_listed_first() {
        let tree = Path::new("/srv/tree/r");
        let names = mirror_target_paths(tree, "d/e/x.tar.gz", &hashes()).unwrap();
        assert_eq!(
            names,
            [
                tree.join(format!("targets/d/e/{}.x.tar.gz", "ab".repeat(64))),
                tree.join(format!("targets/d/e/{}.x.tar.gz", "01".repeat(32))),
            ]
        );
        let names = mirror_target_paths(tree, "x", &hashes()).unwrap();
        assert_eq!(
            names[1],
            tree.join(format!("targets/{}.x", "01".repeat(32)))
        );
        assert!(mirror_target_paths(tree, "../x", &hashes()).is_err());
        assert!(mirror_target_paths(tree, "x", &Hashes::default()).is_err());
    }

    #[test]
    fn the_kind_of_a_failed_sync_is_its_worst_failure() {
        let f = |source| TargetFailure {
            path: "p".into(),
            url: None,
            source,
        };
        let failed = |failures| TargetsError::Failed {
            failures,
            total: 9,
            not_attempted: 0,
        };
        let e = failed(vec![f(EngineError::NotFound { url: "u".into() })]);
        assert_eq!(e.kind(), ErrorKind::Retryable);
        let e = failed(vec![
            f(EngineError::NotFound { url: "u".into() }),
            f(no_hashes("p")),
        ]);
        assert_eq!(e.kind(), ErrorKind::Security);
        assert!(e.to_string().starts_with("2 of 9 target(s)"), "{e}");
    }
}
