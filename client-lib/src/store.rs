//! Where trusted metadata is kept between runs: the exact bytes received, under
//! unversioned names (`root.json`, `timestamp.json`, `<encoded role>.json`), and for
//! upstream-anchored clients the upstream's root, timestamp and snapshot apart from them.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::names::encode_role;

/// Persistence of trusted metadata. Implementations must be usable from several
/// threads at once.
pub trait MetadataStore: Send + Sync {
    /// The stored bytes of `role`, if any.
    fn load(&self, role: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces the stored bytes of `role`.
    fn store(&self, role: &str, bytes: &[u8]) -> Result<()>;

    /// The stored bytes of the upstream's top-level `role` (`root`, `timestamp`,
    /// `snapshot`), kept by an upstream-anchored client beside the mirror's roles.
    ///
    /// They must not share a name with any role [`load`](Self::load) can be asked for.
    /// The default keeps them under a name no delegated role can have (it starts with
    /// NUL, refused in role names); [`DirStore`] uses an `upstream/` subdirectory.
    fn load_upstream(&self, role: &str) -> Result<Option<Vec<u8>>> {
        self.load(&upstream_key(role))
    }

    /// Replaces the stored bytes of the upstream's top-level `role` (see
    /// [`load_upstream`](Self::load_upstream)).
    fn store_upstream(&self, role: &str, bytes: &[u8]) -> Result<()> {
        self.store(&upstream_key(role), bytes)
    }
}

/// The name the default upstream methods of [`MetadataStore`] use: a NUL first, so no
/// delegated role name (control characters are refused) can reach it.
fn upstream_key(role: &str) -> String {
    format!("\0upstream/{role}")
}

/// A directory of `<encoded role>.json` files, as python-tuf keeps them, and for an
/// upstream-anchored client `upstream/{root,timestamp,snapshot}.json`.
///
/// Top-level roles (the rollback state) go to a temporary file, fsynced and renamed
/// over the old one, so a crash leaves the old or the new file, never a torn one.
/// Delegated roles are written in place: snapshot versions protect them, and a torn
/// or lost file fails verification and is simply fetched again.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(DirStore { dir })
    }

    /// The file of `role`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_role(role)))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the upstream's top-level `role` (upstream-anchored clients).
    pub fn upstream_path(&self, role: &str) -> PathBuf {
        self.dir
            .join("upstream")
            .join(format!("{}.json", encode_role(role)))
    }
}

impl MetadataStore for DirStore {
    fn load(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(role);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn store(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(role);
        if crate::names::TOP_LEVEL.contains(&role) {
            write_atomic(&path, bytes, true)
        } else {
            // A torn delegated file fails verification next time and is fetched again;
            // skipping the temporary file halves the cost for thousands of bins.
            fs::write(&path, bytes)
        }
        .map_err(|e| Error::io(path, e))
    }

    fn load_upstream(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.upstream_path(role);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The upstream's root, timestamp and snapshot are rollback state: written
    /// through a fsynced temporary file, as the top-level roles.
    fn store_upstream(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let path = self.upstream_path(role);
        let dir = self.dir.join("upstream");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_atomic(&path, bytes, true).map_err(|e| Error::io(path, e))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Keeps metadata in memory only (tests, one-shot checks).
#[derive(Debug, Default)]
pub struct MemoryStore {
    files: Mutex<HashMap<String, Vec<u8>>>,
}

impl MetadataStore for MemoryStore {
    fn load(&self, role: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(role)
            .cloned())
    }

    fn store(&self, role: &str, bytes: &[u8]) -> Result<()> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_store_round_trips_with_encoded_names() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::new(dir.path()).unwrap();
        s.store("../x", b"abc").unwrap();
        assert!(dir.path().join("..%2Fx.json").exists());
        assert_eq!(s.load("../x").unwrap().unwrap(), b"abc");
        assert_eq!(s.load("nope").unwrap(), None);
        s.store("timestamp", b"1").unwrap();
        s.store("timestamp", b"2").unwrap();
        assert_eq!(s.load("timestamp").unwrap().unwrap(), b"2");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary files left behind");
    }

    #[test]
    fn upstream_roles_never_share_a_name_with_a_role() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirStore::new(dir.path()).unwrap();
        s.store("upstream/root", b"delegated").unwrap();
        s.store("root", b"mirror").unwrap();
        s.store_upstream("root", b"upstream").unwrap();
        assert_eq!(s.load_upstream("root").unwrap().unwrap(), b"upstream");
        assert_eq!(s.load("upstream/root").unwrap().unwrap(), b"delegated");
        assert_eq!(s.load("root").unwrap().unwrap(), b"mirror");
        assert!(dir.path().join("upstream/root.json").exists());
        assert_eq!(s.load_upstream("timestamp").unwrap(), None);

        let m = MemoryStore::default();
        m.store("upstream/root", b"delegated").unwrap();
        m.store_upstream("root", b"upstream").unwrap();
        assert_eq!(m.load_upstream("root").unwrap().unwrap(), b"upstream");
        assert_eq!(m.load("upstream/root").unwrap().unwrap(), b"delegated");
        assert!(crate::names::check_role_name(&upstream_key("root")).is_err());
    }
}
