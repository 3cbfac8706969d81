//! Durable daemon state in sled: the only module that touches it.
//!
//! What is kept is small; metadata and target bytes live in the published tree. Per
//! repository, one sled tree per kind of record:
//!
//! | tree | key | record |
//! |---|---|---|
//! | `high_water` | `repo` NUL `role` | [`HighWater`]: highest version reserved for signing, and the sha256 of its content |
//! | `signing` | `repo` | the last signing time |
//! | `published` | `repo` | [`Published`]: mirror versions served, upstream versions verified |
//! | `sync_history` | `repo` NUL id (u64, big-endian, from `generate_id`) | [`SyncRecord`], newest [`HISTORY`] kept |
//! | `audit` | reserved | the hash-chained audit log (issue 5): not written yet |
//!
//! The default tree holds `format`, the database's format (u32, big-endian). Every
//! record is JSON `{"format": N, "record": {...}}` with unknown fields refused. A
//! database or a record of a newer format than [`FORMAT`] is refused, not misread; a
//! record that does not decode is an error naming its key. Format 1 databases (one
//! tree, `mark/...`, `signed/...`, `history/...` keys) are migrated on open.
//!
//! sled 0.34 is from 2021 and calls itself beta, so every write returns only after
//! `flush`: when [`State::reserve`] returns, the reservation survives a crash of the
//! process (the SIGKILL test in this module checks that; power loss is down to sled's
//! fsync). Concurrent reservations of one role are serialized by compare-and-swap.
//!
//! The API is synchronous and a call may fsync: async callers use
//! `tokio::task::spawn_blocking`.

mod error;
mod migrate;
mod record;

#[cfg(test)]
mod crash;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::{IVec, Tree};

pub use error::StateError;
pub use record::{FailureKind, HighWater, Published, Reservation, Role, SyncOutcome, SyncRecord};
use record::{MarkRecord, SigningRecord, StoredSync, Undecodable};

use crate::cycle::{CycleError, Ledger};

/// The format this build writes, and the newest it reads.
pub const FORMAT: u32 = 2;

/// Sync records kept per repository.
pub const HISTORY: usize = 100;

/// sled's page cache size. Its default is much larger than this small store needs.
pub const CACHE_CAPACITY: u64 = 16 << 20;

const FORMAT_KEY: &[u8] = b"format";
const HIGH_WATER_TREE: &str = "high_water";
const SIGNING_TREE: &str = "signing";
const PUBLISHED_TREE: &str = "published";
const HISTORY_TREE: &str = "sync_history";
/// Reserved for the hash-chained audit log (issue 5); nothing opens it yet.
#[allow(dead_code)]
const AUDIT_TREE: &str = "audit";

/// The daemon's state store. Cheap to clone (one database underneath).
#[derive(Debug, Clone)]
pub struct State {
    db: sled::Db,
    high_water: Tree,
    signing: Tree,
    published: Tree,
    history: Tree,
    path: PathBuf,
}

impl State {
    /// Opens the store at `path` (a directory), creating it when absent, migrating a
    /// format 1 database, refusing a newer one.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(|source| StateError::Open {
                path: path.to_owned(),
                source,
            })?;
        // The format is checked before any tree is opened: opening creates trees, and
        // a database of a newer format is left as it is.
        let format = read_format(&db, path)?;
        match format {
            Some(found) if found > FORMAT => {
                return Err(StateError::NewerFormat {
                    path: path.to_owned(),
                    found,
                })
            }
            Some(found) if found != 1 && found != FORMAT => {
                return Err(corrupt(path, "format", format!("unknown format {found}")));
            }
            Some(_) => {}
            None => {
                db.insert(FORMAT_KEY, &FORMAT.to_be_bytes())
                    .and_then(|_| db.flush())
                    .map_err(|source| StateError::Db {
                        path: path.to_owned(),
                        key: "format".into(),
                        action: "writing",
                        source,
                    })?;
            }
        }
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StateError::Db {
                path: path.to_owned(),
                key: name.to_owned(),
                action: "opening",
                source,
            })
        };
        let state = State {
            high_water: tree(HIGH_WATER_TREE)?,
            signing: tree(SIGNING_TREE)?,
            published: tree(PUBLISHED_TREE)?,
            history: tree(HISTORY_TREE)?,
            db,
            path: path.to_owned(),
        };
        if format == Some(1) {
            migrate::from_v1(&state)?;
        } else {
            migrate::drop_v1_keys(&state)?;
        }
        Ok(state)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StateError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|source| self.db_err("*".into(), "flushing", source))
    }

    // Reservations.

    /// The highest version reserved for `role` of `repo`, with its content hash.
    pub fn high_water(&self, repo: &str, role: Role) -> Result<Option<HighWater>, StateError> {
        let (key, shown) = role_key(repo, role)?;
        Ok(self.read_mark(&key, &shown)?.map(|(_, m)| m))
    }

    /// Reserves `version` of `role` for `repo`, bound to `content_sha256` (the sha256 of
    /// the canonical `signed` content about to be signed), and flushes before it
    /// returns (DESIGN 6.2).
    ///
    /// Granted when `version` is above the high-water mark, or equal to it with the
    /// same content (a retry after a crash: nothing is written, the flush still
    /// happens). Refused otherwise with [`StateError::Reserved`]: a version number is
    /// never signed twice with different content.
    pub fn reserve(
        &self,
        repo: &str,
        role: Role,
        version: u64,
        content_sha256: [u8; 32],
    ) -> Result<Reservation, StateError> {
        let (key, shown) = role_key(repo, role)?;
        let new = self.encode(
            &shown,
            &MarkRecord {
                version,
                content_sha256: hex::encode(content_sha256),
            },
        )?;
        loop {
            let current = self.read_mark(&key, &shown)?;
            let previous = current.as_ref().map(|(_, m)| *m);
            let retry = match previous {
                None => false,
                Some(m) if version > m.version => false,
                Some(m) if version == m.version && content_sha256 == m.content_sha256 => true,
                Some(m) => {
                    return Err(StateError::Reserved {
                        repo: repo.to_owned(),
                        role,
                        version,
                        content_sha256,
                        reserved: m.version,
                        reserved_sha256: m.content_sha256,
                    })
                }
            };
            if !retry {
                let old = current.as_ref().map(|(bytes, _)| bytes);
                let swapped = self.db_write(&shown, || {
                    self.high_water
                        .compare_and_swap(&key, old, Some(new.as_slice()))
                })?;
                if swapped.is_err() {
                    // Another reservation of this role came first: decide again.
                    continue;
                }
            }
            self.flush()?;
            return Ok(Reservation {
                role,
                version,
                content_sha256,
                previous: previous.map(|m| m.version),
                retry,
            });
        }
    }

    fn read_mark(&self, key: &[u8], shown: &str) -> Result<Option<(IVec, HighWater)>, StateError> {
        let Some((bytes, m)) = self.read::<MarkRecord>(&self.high_water, key, shown)? else {
            return Ok(None);
        };
        let content_sha256 =
            record::sha256_from_hex(&m.content_sha256).map_err(|e| self.undecodable(shown, e))?;
        Ok(Some((
            bytes,
            HighWater {
                version: m.version,
                content_sha256,
            },
        )))
    }

    // Signing time.

    /// The last signing time recorded for `repo`.
    pub fn last_signing(&self, repo: &str) -> Result<Option<Timestamp>, StateError> {
        let key = repo_key(repo)?;
        let shown = format!("{SIGNING_TREE}/{repo}");
        Ok(self
            .read::<SigningRecord>(&self.signing, &key, &shown)?
            .map(|(_, s)| s.at))
    }

    /// Refuses ([`StateError::ClockBehind`]) when `now` is earlier than the last
    /// signing time of `repo` (DESIGN 6.6).
    pub fn check_clock(&self, repo: &str, now: Timestamp) -> Result<(), StateError> {
        match self.last_signing(repo)? {
            Some(last) if now < last => Err(StateError::ClockBehind {
                repo: repo.to_owned(),
                now,
                last,
            }),
            _ => Ok(()),
        }
    }

    /// Records that `repo` signed at `at`, durably. The time kept never moves back: an
    /// `at` earlier than the one recorded leaves it.
    pub fn record_signing(&self, repo: &str, at: Timestamp) -> Result<(), StateError> {
        let key = repo_key(repo)?;
        let shown = format!("{SIGNING_TREE}/{repo}");
        let new = self.encode(&shown, &SigningRecord { at })?;
        loop {
            let current = self.read::<SigningRecord>(&self.signing, &key, &shown)?;
            if matches!(&current, Some((_, s)) if s.at >= at) {
                break;
            }
            let old = current.as_ref().map(|(bytes, _)| bytes);
            let swapped = self.db_write(&shown, || {
                self.signing
                    .compare_and_swap(&key, old, Some(new.as_slice()))
            })?;
            if swapped.is_ok() {
                break;
            }
        }
        self.flush()
    }

    // Published state.

    /// What `repo` last published.
    pub fn published(&self, repo: &str) -> Result<Option<Published>, StateError> {
        let key = repo_key(repo)?;
        let shown = format!("{PUBLISHED_TREE}/{repo}");
        Ok(self.read(&self.published, &key, &shown)?.map(|(_, p)| p))
    }

    /// Records what `repo` published, durably.
    pub fn set_published(&self, repo: &str, published: &Published) -> Result<(), StateError> {
        let key = repo_key(repo)?;
        let shown = format!("{PUBLISHED_TREE}/{repo}");
        let bytes = self.encode(&shown, published)?;
        self.db_write(&shown, || self.published.insert(key, bytes))?;
        self.flush()
    }

    // Sync history.

    /// Appends a sync record for `repo`, keeping the newest [`HISTORY`], durably.
    pub fn append_sync(&self, repo: &str, record: &SyncRecord) -> Result<(), StateError> {
        let prefix = history_prefix(repo)?;
        let shown = format!("{HISTORY_TREE}/{repo}");
        let id = self.db_write(&shown, || self.db.generate_id())?;
        let bytes = self.encode(
            &shown,
            &StoredSync {
                started: record.started,
                finished: record.finished,
                outcome: record.outcome.clone(),
            },
        )?;
        let mut key = prefix.clone();
        key.extend_from_slice(&id.to_be_bytes());
        self.db_write(&shown, || self.history.insert(key, bytes))?;
        let old = self
            .history
            .scan_prefix(&prefix)
            .keys()
            .rev()
            .skip(HISTORY)
            .collect::<Result<Vec<IVec>, _>>()
            .map_err(|source| self.db_err(shown.clone(), "reading", source))?;
        for k in old {
            self.db_write(&shown, || self.history.remove(k))?;
        }
        self.flush()
    }

    /// Sync records of `repo`, newest first (at most [`HISTORY`]).
    pub fn history(&self, repo: &str) -> Result<Vec<SyncRecord>, StateError> {
        let prefix = history_prefix(repo)?;
        let mut out = Vec::new();
        for item in self.history.scan_prefix(&prefix).rev().take(HISTORY) {
            let (k, v) = item.map_err(|source| {
                self.db_err(format!("{HISTORY_TREE}/{repo}"), "reading", source)
            })?;
            let shown = history_shown(repo, &k);
            let s: StoredSync = record::decode(&v).map_err(|e| self.undecodable(&shown, e))?;
            out.push(SyncRecord::new(s.started, s.finished, s.outcome));
        }
        Ok(out)
    }

    // Plumbing.

    fn read<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        key: &[u8],
        shown: &str,
    ) -> Result<Option<(IVec, T)>, StateError> {
        let Some(bytes) = tree
            .get(key)
            .map_err(|source| self.db_err(shown.to_owned(), "reading", source))?
        else {
            return Ok(None);
        };
        let value = record::decode(&bytes).map_err(|e| self.undecodable(shown, e))?;
        Ok(Some((bytes, value)))
    }

    fn encode<T: Serialize>(&self, shown: &str, value: &T) -> Result<Vec<u8>, StateError> {
        record::encode(value).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            key: shown.to_owned(),
            source: e.into(),
        })
    }

    fn db_write<T>(
        &self,
        shown: &str,
        f: impl FnOnce() -> sled::Result<T>,
    ) -> Result<T, StateError> {
        f().map_err(|source| self.db_err(shown.to_owned(), "writing", source))
    }

    fn db_err(&self, key: String, action: &'static str, source: sled::Error) -> StateError {
        StateError::Db {
            path: self.path.clone(),
            key,
            action,
            source,
        }
    }

    fn corrupt(&self, key: &str, reason: String) -> StateError {
        corrupt(&self.path, key, reason)
    }

    fn undecodable(&self, shown: &str, e: Undecodable) -> StateError {
        match e {
            Undecodable::Newer(found) => StateError::NewerRecord {
                path: self.path.clone(),
                key: shown.to_owned(),
                found,
            },
            Undecodable::Bad(source) => StateError::Corrupt {
                path: self.path.clone(),
                key: shown.to_owned(),
                source,
            },
        }
    }
}

/// The database's format; `None` for a new, empty database.
fn read_format(db: &sled::Db, path: &Path) -> Result<Option<u32>, StateError> {
    let db_err = |key: String, source| StateError::Db {
        path: path.to_owned(),
        key,
        action: "reading",
        source,
    };
    let Some(v) = db
        .get(FORMAT_KEY)
        .map_err(|source| db_err("format".into(), source))?
    else {
        let mut empty = db.is_empty();
        for name in db.tree_names() {
            let shown = String::from_utf8_lossy(&name).into_owned();
            let tree = db
                .open_tree(&name)
                .map_err(|source| db_err(shown, source))?;
            empty &= tree.is_empty();
        }
        return if empty {
            Ok(None)
        } else {
            Err(corrupt(
                path,
                "format",
                "missing, while the database holds records".into(),
            ))
        };
    };
    let bytes = <[u8; 4]>::try_from(v.as_ref())
        .map_err(|_| corrupt(path, "format", format!("{} bytes, not 4", v.len())))?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

fn corrupt(path: &Path, key: &str, reason: String) -> StateError {
    StateError::Corrupt {
        path: path.to_owned(),
        key: key.to_owned(),
        source: reason.into(),
    }
}

fn repo_key(repo: &str) -> Result<Vec<u8>, StateError> {
    if repo.is_empty() || repo.contains('\0') {
        return Err(StateError::Name {
            repo: repo.to_owned(),
        });
    }
    Ok(repo.as_bytes().to_vec())
}

fn role_key(repo: &str, role: Role) -> Result<(Vec<u8>, String), StateError> {
    let mut key = repo_key(repo)?;
    key.push(0);
    key.extend_from_slice(role.as_str().as_bytes());
    Ok((key, format!("{HIGH_WATER_TREE}/{repo}/{role}")))
}

fn history_prefix(repo: &str) -> Result<Vec<u8>, StateError> {
    let mut key = repo_key(repo)?;
    key.push(0);
    Ok(key)
}

fn history_shown(repo: &str, key: &[u8]) -> String {
    let id = key
        .len()
        .checked_sub(8)
        .and_then(|at| <[u8; 8]>::try_from(&key[at..]).ok())
        .map_or_else(|| hex::encode(key), |b| u64::from_be_bytes(b).to_string());
    format!("{HISTORY_TREE}/{repo}/{id}")
}

// The cycle's view of the store.

fn cycle_err(repo: &str, e: &StateError) -> CycleError {
    CycleError::State {
        repo: repo.to_owned(),
        reason: crate::service::display_chain(e),
    }
}

fn ledger_role(repo: &str, role: &str) -> Result<Role, CycleError> {
    role.parse().map_err(|()| {
        cycle_err(
            repo,
            &StateError::UnknownRole {
                repo: repo.to_owned(),
                role: role.to_owned(),
            },
        )
    })
}

impl Ledger for State {
    fn high_water(&self, repo: &str, role: &str) -> Result<Option<u64>, CycleError> {
        State::high_water(self, repo, ledger_role(repo, role)?)
            .map(|m| m.map(|m| m.version))
            .map_err(|e| cycle_err(repo, &e))
    }

    fn reserve(
        &self,
        repo: &str,
        role: &str,
        version: u64,
        content_sha256: [u8; 32],
    ) -> Result<(), CycleError> {
        State::reserve(
            self,
            repo,
            ledger_role(repo, role)?,
            version,
            content_sha256,
        )
        .map(drop)
        .map_err(|e| cycle_err(repo, &e))
    }

    fn check_clock(&self, repo: &str, now: Timestamp) -> Result<(), CycleError> {
        State::check_clock(self, repo, now).map_err(|e| cycle_err(repo, &e))
    }

    fn record_signing(&self, repo: &str, now: Timestamp) -> Result<(), CycleError> {
        State::record_signing(self, repo, now).map_err(|e| cycle_err(repo, &e))
    }

    fn record_sync(
        &self,
        repo: &str,
        at: Timestamp,
        error: Option<&str>,
    ) -> Result<(), CycleError> {
        let record = match error {
            None => SyncRecord::succeeded(None, at, None, Vec::new()),
            Some(message) => SyncRecord::failed(None, at, None, message.to_owned()),
        };
        self.append_sync(repo, &record)
            .map_err(|e| cycle_err(repo, &e))
    }
}
