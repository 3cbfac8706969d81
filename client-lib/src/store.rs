//! Where trusted metadata is kept between runs: the exact bytes received, under
//! unversioned names (`root.json`, `timestamp.json`, `<encoded role>.json`).

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
}

/// A directory of `<encoded role>.json` files, as python-tuf keeps them.
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
}
