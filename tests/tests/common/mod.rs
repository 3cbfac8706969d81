//! An in-memory repository the engine fetches from, and a client on it.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, RwLock};

use tuf_mirror_client::{
    ByteStream, DelegationMode, Error, MemoryStore, Result, Transport, Updater, UpdaterConfig,
    ValidationTime,
};
use tuf_mirror_tests::builder::PublishedRepo;
use url::Url;

/// Serves a [`PublishedRepo`] from memory and records the paths asked for.
#[derive(Clone, Default)]
pub struct Mem {
    files: Arc<RwLock<BTreeMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mem {
    pub fn new(repo: &PublishedRepo) -> Self {
        let m = Mem::default();
        m.serve(repo);
        m
    }

    /// Replaces what is served.
    pub fn serve(&self, repo: &PublishedRepo) {
        *self.files.write().unwrap() = repo.files().clone();
    }

    /// Serves `bytes` at `path`.
    pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.files
            .write()
            .unwrap()
            .insert(path.to_owned(), bytes.into());
    }

    /// The paths fetched since the last call.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

impl Transport for Mem {
    fn fetch(&self, url: &Url) -> Result<ByteStream> {
        let path = url.path().trim_start_matches('/').to_owned();
        self.requests.lock().unwrap().push(path.clone());
        match self.files.read().unwrap().get(&path) {
            Some(b) => Ok(Box::new(Cursor::new(b.clone()))),
            None => Err(Error::NotFound {
                url: url.to_string(),
            }),
        }
    }
}

/// Validation time of every test: fixtures expire in 2099, expired ones in 2000.
pub const NOW: &str = "2026-06-01T00:00:00Z";

pub fn config(mode: DelegationMode) -> UpdaterConfig {
    let mut c = UpdaterConfig::new(Url::parse("http://repo.test/metadata/").unwrap());
    c.targets_base = Some(Url::parse("http://repo.test/targets/").unwrap());
    c.mode = mode;
    c.time = ValidationTime::At(NOW.parse().unwrap());
    c
}

/// A client trusting `repo`'s first root, with its own store.
pub struct Client {
    pub mem: Mem,
    pub store: Arc<MemoryStore>,
    pub config: UpdaterConfig,
    pub updater: Updater,
}

impl Client {
    pub fn new(repo: &PublishedRepo, mode: DelegationMode) -> Self {
        Self::with_config(repo, config(mode))
    }

    pub fn with_config(repo: &PublishedRepo, config: UpdaterConfig) -> Self {
        let mem = Mem::new(repo);
        let store = Arc::new(MemoryStore::default());
        let updater = Updater::init(
            config.clone(),
            Arc::new(mem.clone()),
            store.clone(),
            repo.trust_anchor(),
        )
        .unwrap();
        Client {
            mem,
            store,
            config,
            updater,
        }
    }

    /// A new process on the same store (no state in memory).
    pub fn restart(&mut self) {
        self.updater = Updater::new(
            self.config.clone(),
            Arc::new(self.mem.clone()),
            self.store.clone(),
        )
        .unwrap();
    }

    pub fn refresh(&mut self) -> Result<()> {
        self.updater.refresh()
    }
}
