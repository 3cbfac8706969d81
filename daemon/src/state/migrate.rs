//! Format 1 -> 2.
//!
//! Format 1 kept everything in sled's default tree as JSON: `mark/<repo>/<role>` ->
//! `{format, version, content_sha256}`, `signed/<repo>` -> `{format, at}` and
//! `history/<repo>` -> an array of `{format, finished, error}`, newest first. The
//! migration can be cut short by a crash at any point and run again: the format 2
//! trees are cleared first, the format key is changed only after they are flushed,
//! and the format 1 keys are removed last.

use jiff::Timestamp;
use serde::Deserialize;

use super::record::{self, MarkRecord, SigningRecord, Undecodable};
use super::{State, StateError, SyncOutcome, SyncRecord, FORMAT, FORMAT_KEY};

const V1_PREFIXES: [&str; 3] = ["mark/", "signed/", "history/"];

#[derive(Deserialize)]
struct Mark1 {
    version: u64,
    content_sha256: String,
}

#[derive(Deserialize)]
struct Signed1 {
    at: Timestamp,
}

#[derive(Deserialize)]
struct Sync1 {
    finished: Timestamp,
    error: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(
    state: &State,
    key: &str,
    bytes: &[u8],
) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| state.undecodable(key, Undecodable::Bad(e.into())))
}

pub(super) fn from_v1(state: &State) -> Result<(), StateError> {
    for (name, tree) in [
        (super::HIGH_WATER_TREE, &state.high_water),
        (super::SIGNING_TREE, &state.signing),
        (super::PUBLISHED_TREE, &state.published),
        (super::HISTORY_TREE, &state.history),
    ] {
        state.db_write(name, || tree.clear())?;
    }
    for item in state.db.iter() {
        let (k, v) = item.map_err(|source| state.db_err("*".into(), "reading", source))?;
        if k.as_ref() == FORMAT_KEY {
            continue;
        }
        let key = String::from_utf8_lossy(&k).into_owned();
        if let Some(rest) = key.strip_prefix("mark/") {
            let (repo, role) = rest
                .rsplit_once('/')
                .and_then(|(repo, role)| Some((repo, role.parse().ok()?)))
                .ok_or_else(|| state.corrupt(&key, "not mark/<repo>/<role>".into()))?;
            let m: Mark1 = parse(state, &key, &v)?;
            record::sha256_from_hex(&m.content_sha256).map_err(|e| state.undecodable(&key, e))?;
            let (new_key, shown) = super::role_key(repo, role)?;
            let bytes = state.encode(
                &shown,
                &MarkRecord {
                    version: m.version,
                    content_sha256: m.content_sha256,
                },
            )?;
            state.db_write(&shown, || state.high_water.insert(new_key, bytes))?;
        } else if let Some(repo) = key.strip_prefix("signed/") {
            let s: Signed1 = parse(state, &key, &v)?;
            let shown = format!("{}/{repo}", super::SIGNING_TREE);
            let bytes = state.encode(&shown, &SigningRecord { at: s.at })?;
            let new_key = super::repo_key(repo)?;
            state.db_write(&shown, || state.signing.insert(new_key, bytes))?;
        } else if let Some(repo) = key.strip_prefix("history/") {
            let h: Vec<Sync1> = parse(state, &key, &v)?;
            for s in h.into_iter().rev() {
                let outcome = match s.error {
                    None => SyncOutcome::Ok {
                        fetched: None,
                        changed: Vec::new(),
                    },
                    Some(message) => SyncOutcome::Err {
                        kind: None,
                        message,
                    },
                };
                state.append_sync(repo, &SyncRecord::new(None, s.finished, outcome))?;
            }
        } else {
            return Err(state.corrupt(&key, "not a format 1 key".into()));
        }
    }
    state.flush()?;
    state.db_write("format", || {
        state.db.insert(FORMAT_KEY, &FORMAT.to_be_bytes())
    })?;
    state.flush()?;
    drop_v1_keys(state)
}

/// Removes what is left of format 1 in the default tree (after a migration that a
/// crash cut short once the format key was written).
pub(super) fn drop_v1_keys(state: &State) -> Result<(), StateError> {
    let old = state
        .db
        .iter()
        .keys()
        .filter(|k| !matches!(k, Ok(k) if !V1_PREFIXES.iter().any(|p| k.starts_with(p.as_bytes()))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| state.db_err("*".into(), "reading", source))?;
    if old.is_empty() {
        return Ok(());
    }
    for k in old {
        state.db_write(&String::from_utf8_lossy(&k), || state.db.remove(&k))?;
    }
    state.flush()
}
