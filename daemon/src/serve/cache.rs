//! Small files kept in memory for a short while after they were read.
//!
//! Handing each request's `open`/`fstat`/`read` to the blocking pool costs a thread hop
//! both ways, and that hop, not the reading, is most of the time spent on a small file
//! (bench/serve.sh: about 40% of the requests/s on a 534-byte `timestamp.json`). The
//! published tree suits a cache: versioned names are written once and never change,
//! and `timestamp.json` and `root.json` are replaced by rename. So a file read within
//! the last [`ServeConfig::cache_ttl`](super::ServeConfig::cache_ttl) is answered from
//! memory, and after that the next request for it goes to the disk again. A replaced
//! or deleted file is seen at most that long after the change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::files::Meta;

/// A file as read, with its headers.
#[derive(Clone)]
pub(super) struct Hit {
    pub meta: Arc<Meta>,
    pub bytes: Bytes,
}

struct Entry {
    hit: Hit,
    /// When the read that filled it started.
    read_at: Instant,
}

#[derive(Default)]
struct Inner {
    map: HashMap<PathBuf, Entry>,
    used: usize,
}

/// Files by path, bounded in total bytes.
pub(super) struct Cache {
    ttl: Duration,
    budget: usize,
    inner: RwLock<Inner>,
}

impl Cache {
    /// Entries live `ttl` (zero: nothing is kept); at most `budget` bytes of files.
    pub fn new(ttl: Duration, budget: usize) -> Self {
        Cache {
            ttl,
            budget,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The file at `path`, if it was read less than the time to live ago.
    pub fn get(&self, path: &Path, now: Instant) -> Option<Hit> {
        if self.ttl.is_zero() {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let entry = inner.map.get(path)?;
        (now.saturating_duration_since(entry.read_at) < self.ttl).then(|| entry.hit.clone())
    }

    /// Keeps a file read at `read_at`. When the budget is full, entries past their time
    /// to live are dropped first; if that is not enough, the file is not kept.
    pub fn insert(&self, path: PathBuf, hit: Hit, read_at: Instant) {
        let len = hit.bytes.len();
        if self.ttl.is_zero() || len > self.budget {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.map.remove(&path) {
            inner.used -= old.hit.bytes.len();
        }
        if inner.used + len > self.budget {
            let ttl = self.ttl;
            inner
                .map
                .retain(|_, e| read_at.saturating_duration_since(e.read_at) < ttl);
            inner.used = inner.map.values().map(|e| e.hit.bytes.len()).sum();
            if inner.used + len > self.budget {
                return;
            }
        }
        inner.used += len;
        inner.map.insert(path, Entry { hit, read_at });
    }

    #[cfg(test)]
    fn used(&self) -> (usize, usize) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        (inner.map.len(), inner.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: usize) -> Hit {
        Hit {
            meta: Arc::new(Meta::for_test(n as u64)),
            bytes: Bytes::from(vec![b'x'; n]),
        }
    }

    #[test]
    fn entries_expire() {
        let t0 = Instant::now();
        let c = Cache::new(Duration::from_secs(1), 100);
        c.insert("a".into(), hit(10), t0);
        assert!(c
            .get(Path::new("a"), t0 + Duration::from_millis(999))
            .is_some());
        assert!(c.get(Path::new("a"), t0 + Duration::from_secs(1)).is_none());
        assert!(c.get(Path::new("b"), t0).is_none());
        // Replacing an entry does not count it twice.
        c.insert("a".into(), hit(20), t0);
        assert_eq!(c.used(), (1, 20));
    }

    #[test]
    fn the_budget_holds() {
        let t0 = Instant::now();
        let c = Cache::new(Duration::from_secs(1), 100);
        c.insert("big".into(), hit(101), t0);
        assert_eq!(c.used(), (0, 0));
        c.insert("a".into(), hit(60), t0);
        c.insert("b".into(), hit(60), t0);
        assert_eq!(c.used(), (1, 60), "b does not fit while a is fresh");
        let later = t0 + Duration::from_secs(2);
        c.insert("b".into(), hit(60), later);
        assert_eq!(c.used(), (1, 60), "a expired and made room");
        assert!(c.get(Path::new("b"), later).is_some());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let t0 = Instant::now();
        let c = Cache::new(Duration::ZERO, 100);
        c.insert("a".into(), hit(1), t0);
        assert!(c.get(Path::new("a"), t0).is_none());
        assert_eq!(c.used(), (0, 0));
    }
}
