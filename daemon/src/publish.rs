//! The only writer of the served tree (DESIGN.md sections 5 and 6).
//!
//! Every file goes to a temporary name in its directory, is fsynced and renamed into
//! place. Versioned names are written once: an existing one must already hold the
//! same bytes. The files clients start from are written last, `timestamp.json` and
//! then `root.json`, so a crash or a full disk at any point leaves clients seeing the
//! previous state, complete.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tuf_mirror_client::names::encode_role;

use crate::mirror::SignedDoc;

/// Errors writing the tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A file could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A versioned file exists with other bytes: a version would change content.
    #[error("{path} already exists with different content; refusing to replace a versioned file")]
    Conflict {
        /// The file.
        path: PathBuf,
    },
}

/// One repository's served tree, `<published>/<repo>/`.
#[derive(Debug, Clone)]
pub struct Tree {
    dir: PathBuf,
}

/// What one publish writes.
#[derive(Debug, Default)]
pub struct Publication<'a> {
    /// Upstream targets roles: (name, version, bytes as received).
    pub roles: Vec<(&'a str, u64, &'a [u8])>,
    /// The upstream root chain, oldest first: (version, bytes).
    pub upstream_roots: Vec<(u64, &'a [u8])>,
    /// The newest verified upstream snapshot (version, bytes) and timestamp bytes.
    pub upstream_snapshot: Option<(u64, &'a [u8])>,
    /// The newest verified upstream timestamp bytes.
    pub upstream_timestamp: Option<&'a [u8]>,
    /// New mirror root versions, oldest first.
    pub roots: Vec<&'a SignedDoc>,
    /// The mirror snapshot, if a new one was signed.
    pub snapshot: Option<&'a SignedDoc>,
    /// The mirror timestamp.
    pub timestamp: Option<&'a SignedDoc>,
}

impl Tree {
    /// The tree at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Tree { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `metadata/<version>.<encoded role>.json`.
    pub fn role_path(&self, role: &str, version: u64) -> PathBuf {
        self.dir
            .join("metadata")
            .join(format!("{version}.{}.json", encode_role(role)))
    }

    /// Writes a publication in the crash-safe order.
    pub fn publish(&self, p: &Publication<'_>) -> Result<(), PublishError> {
        // Each file is fsynced before its rename; the directories that gained names are
        // fsynced once, before the files clients start from are replaced.
        let mut dirs = Dirs::default();
        // 1. Upstream targets and delegated roles, versioned, untouched.
        for (name, version, bytes) in &p.roles {
            write_versioned_in(&self.role_path(name, *version), bytes, &mut dirs)?;
        }
        // 2. The upstream's own chain and state, for upstream-anchored clients.
        let up = self.dir.join("upstream");
        for (version, bytes) in &p.upstream_roots {
            write_versioned_in(&up.join(format!("{version}.root.json")), bytes, &mut dirs)?;
        }
        if let Some((version, bytes)) = p.upstream_snapshot {
            write_versioned_in(
                &up.join(format!("{version}.snapshot.json")),
                bytes,
                &mut dirs,
            )?;
        }
        // 3. Mirror roots and snapshot, versioned.
        let md = self.dir.join("metadata");
        for root in &p.roots {
            write_versioned_in(
                &md.join(format!("{}.root.json", root.version)),
                &root.bytes,
                &mut dirs,
            )?;
        }
        if let Some(s) = p.snapshot {
            write_versioned_in(
                &md.join(format!("{}.snapshot.json", s.version)),
                &s.bytes,
                &mut dirs,
            )?;
        }
        dirs.sync()?;
        // 4. What clients start from, last: the upstream timestamp right before the
        // mirror's (an upstream-anchored client requires the mirror snapshot to list
        // what the upstream snapshot does, so a failure in step 3 must leave both
        // timestamps as they were), then the mirror timestamp, then root.
        if let Some(bytes) = p.upstream_timestamp {
            write_current(&up.join("timestamp.json"), bytes)?;
        }
        if let Some(t) = p.timestamp {
            write_current(&md.join("timestamp.json"), &t.bytes)?;
        }
        if let Some(root) = p.roots.last() {
            write_current(&md.join("root.json"), &root.bytes)?;
        }
        Ok(())
    }
}

/// Directories whose entries changed and are not yet durable.
#[derive(Default)]
struct Dirs(Vec<PathBuf>);

impl Dirs {
    fn add(&mut self, dir: &Path) {
        if !self.0.iter().any(|d| d == dir) {
            self.0.push(dir.to_owned());
        }
    }

    fn sync(&mut self) -> Result<(), PublishError> {
        for dir in self.0.drain(..) {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&dir))?;
        }
        Ok(())
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a versioned file once; an existing file must hold the same bytes.
pub fn write_versioned(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let mut dirs = Dirs::default();
    write_versioned_in(path, bytes, &mut dirs)?;
    dirs.sync()
}

fn write_versioned_in(path: &Path, bytes: &[u8], dirs: &mut Dirs) -> Result<(), PublishError> {
    match fs::read(path) {
        Ok(existing) if existing == bytes => return Ok(()),
        Ok(_) => {
            return Err(PublishError::Conflict {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    replace(path, bytes, dirs)
}

/// Replaces a file atomically and durably: temporary file, fsync, rename, fsync of
/// the directory.
pub fn write_current(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    let mut dirs = Dirs::default();
    replace(path, bytes, &mut dirs)?;
    dirs.sync()
}

/// Temporary file, fsync, rename; the directory is left to `dirs`.
fn replace(path: &Path, bytes: &[u8], dirs: &mut Dirs) -> Result<(), PublishError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dirs.0.iter().any(|d| d == dir) {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    dirs.add(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u64, text: &str) -> SignedDoc {
        SignedDoc {
            version,
            bytes: text.as_bytes().to_vec(),
            content_sha256: [0; 32],
        }
    }

    #[test]
    fn versioned_files_never_change_content() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("metadata/1.targets.json");
        write_versioned(&p, b"a").unwrap();
        write_versioned(&p, b"a").unwrap();
        assert!(matches!(
            write_versioned(&p, b"b"),
            Err(PublishError::Conflict { .. })
        ));
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn layout_and_encoded_names() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = Tree::new(tmp.path().join("repo"));
        let (root, snap, ts) = (doc(1, "r1"), doc(3, "s3"), doc(9, "t9"));
        tree.publish(&Publication {
            roles: vec![("targets", 2, b"t2"), ("a/b", 1, b"ab1")],
            upstream_roots: vec![(1, b"u1"), (2, b"u2")],
            upstream_snapshot: Some((5, b"us5")),
            upstream_timestamp: Some(b"ut"),
            roots: vec![&root],
            snapshot: Some(&snap),
            timestamp: Some(&ts),
        })
        .unwrap();
        let d = tmp.path().join("repo");
        for (f, want) in [
            ("metadata/2.targets.json", "t2"),
            ("metadata/1.a%2Fb.json", "ab1"),
            ("metadata/1.root.json", "r1"),
            ("metadata/root.json", "r1"),
            ("metadata/3.snapshot.json", "s3"),
            ("metadata/timestamp.json", "t9"),
            ("upstream/2.root.json", "u2"),
            ("upstream/5.snapshot.json", "us5"),
            ("upstream/timestamp.json", "ut"),
        ] {
            assert_eq!(fs::read_to_string(d.join(f)).unwrap(), want, "{f}");
        }
        let leftovers: Vec<_> = fs::read_dir(d.join("metadata"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_failure_before_the_timestamp_leaves_the_served_state() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = Tree::new(tmp.path().join("repo"));
        let (root, s1, t1) = (doc(1, "r1"), doc(1, "s1"), doc(1, "t1"));
        tree.publish(&Publication {
            roles: vec![("targets", 1, b"x1")],
            upstream_timestamp: Some(b"ut1"),
            roots: vec![&root],
            snapshot: Some(&s1),
            timestamp: Some(&t1),
            ..Default::default()
        })
        .unwrap();
        // The next publish hits a conflicting versioned file half-way.
        let (s2, t2) = (doc(2, "s2"), doc(2, "t2"));
        let e = tree
            .publish(&Publication {
                roles: vec![("targets", 2, b"x2"), ("targets", 1, b"other bytes")],
                upstream_timestamp: Some(b"ut2"),
                snapshot: Some(&s2),
                timestamp: Some(&t2),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(e, PublishError::Conflict { .. }), "{e:?}");
        let d = tmp.path().join("repo/metadata");
        assert_eq!(fs::read_to_string(d.join("timestamp.json")).unwrap(), "t1");
        assert!(!d.join("2.snapshot.json").exists());
        // So does a conflict on the mirror snapshot, after the upstream files: the
        // upstream timestamp still matches the mirror timestamp served.
        fs::write(d.join("3.snapshot.json"), "taken").unwrap();
        let (s3, t3) = (doc(3, "s3"), doc(3, "t3"));
        let e = tree
            .publish(&Publication {
                upstream_snapshot: Some((2, b"us2")),
                upstream_timestamp: Some(b"ut2"),
                snapshot: Some(&s3),
                timestamp: Some(&t3),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(e, PublishError::Conflict { .. }), "{e:?}");
        assert_eq!(fs::read_to_string(d.join("timestamp.json")).unwrap(), "t1");
        let up = tmp.path().join("repo/upstream/timestamp.json");
        assert_eq!(fs::read_to_string(up).unwrap(), "ut1");
    }
}
