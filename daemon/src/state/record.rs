//! What the store holds, and how a record is written: JSON
//! `{"format": N, "record": {...}}`, unknown fields refused.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A mirror role whose versions the store guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `root.json`.
    Root,
    /// `snapshot.json`.
    Snapshot,
    /// `timestamp.json`.
    Timestamp,
}

impl Role {
    /// All three.
    pub const ALL: [Role; 3] = [Role::Root, Role::Snapshot, Role::Timestamp];

    /// The TUF role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Role, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// The highest version reserved for a role, and the sha256 of the canonical bytes of
/// the `signed` content it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWater {
    /// The version.
    pub version: u64,
    /// sha256 of the canonical `signed` content.
    pub content_sha256: [u8; 32],
}

/// A granted reservation: the version may now be signed with this content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reservation {
    /// The role.
    pub role: Role,
    /// The version reserved.
    pub version: u64,
    /// sha256 of the canonical `signed` content it is bound to.
    pub content_sha256: [u8; 32],
    /// The high-water mark before the call (`None`: nothing was ever reserved).
    pub previous: Option<u64>,
    /// The same version and content were already reserved (a retry after a crash):
    /// the mark was left as it was.
    pub retry: bool,
}

/// What a repository serves, as last published (the mirror's versions) and what it
/// was built from (the upstream's verified versions: the rollback floor for the next
/// sync).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Mirror root version served.
    pub root_version: u64,
    /// Mirror snapshot version served.
    pub snapshot_version: u64,
    /// Mirror timestamp version served.
    pub timestamp_version: u64,
    /// When the served mirror timestamp expires.
    pub timestamp_expires: Timestamp,
    /// Newest verified upstream root version.
    pub upstream_root_version: u64,
    /// Newest verified upstream timestamp version.
    pub upstream_timestamp_version: u64,
    /// Newest verified upstream snapshot version.
    pub upstream_snapshot_version: u64,
    /// When this state was published.
    pub published_at: Timestamp,
}

/// Why a failed sync failed, as a caller classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// Trying again later may succeed (unreachable upstream, I/O).
    Retryable,
    /// The upstream failed a TUF security check.
    Security,
    /// A local or configuration problem.
    Fatal,
}

impl From<tuf_mirror_client::ErrorKind> for FailureKind {
    fn from(k: tuf_mirror_client::ErrorKind) -> FailureKind {
        use tuf_mirror_client::ErrorKind as K;
        match k {
            K::Retryable => FailureKind::Retryable,
            K::Security => FailureKind::Security,
            // `Fatal`, and any kind added later: nothing suggests a retry helps.
            _ => FailureKind::Fatal,
        }
    }
}

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SyncOutcome {
    /// The upstream verified; its state is published.
    Ok {
        /// Upstream roles fetched (`None` when the caller did not count).
        fetched: Option<u64>,
        /// Upstream roles whose version changed.
        changed: Vec<String>,
    },
    /// The sync failed; the last good state kept being served.
    Err {
        /// The caller's classification (`None` when it gave none).
        kind: Option<FailureKind>,
        /// The error and its causes, on one line.
        message: String,
    },
}

/// One sync, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncRecord {
    /// When it started (`None` when the caller did not say).
    pub started: Option<Timestamp>,
    /// When it finished.
    pub finished: Timestamp,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// The failure message of `outcome`, `None` after a success (for readers that only
    /// show the text).
    pub error: Option<String>,
}

impl SyncRecord {
    /// A sync that succeeded.
    pub fn succeeded(
        started: Option<Timestamp>,
        finished: Timestamp,
        fetched: Option<u64>,
        changed: Vec<String>,
    ) -> SyncRecord {
        SyncRecord::new(started, finished, SyncOutcome::Ok { fetched, changed })
    }

    /// A sync that failed.
    pub fn failed(
        started: Option<Timestamp>,
        finished: Timestamp,
        kind: Option<FailureKind>,
        message: String,
    ) -> SyncRecord {
        SyncRecord::new(started, finished, SyncOutcome::Err { kind, message })
    }

    pub(super) fn new(
        started: Option<Timestamp>,
        finished: Timestamp,
        outcome: SyncOutcome,
    ) -> SyncRecord {
        let error = match &outcome {
            SyncOutcome::Ok { .. } => None,
            SyncOutcome::Err { message, .. } => Some(message.clone()),
        };
        SyncRecord {
            started,
            finished,
            outcome,
            error,
        }
    }
}

// Stored forms.

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkRecord {
    pub version: u64,
    pub content_sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SigningRecord {
    pub at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredSync {
    pub started: Option<Timestamp>,
    pub finished: Timestamp,
    pub outcome: SyncOutcome,
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    format: u32,
    record: &'a T,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn<T> {
    #[allow(dead_code)] // checked through `FormatOnly` first
    format: u32,
    record: T,
}

/// Why a record did not decode.
pub(super) enum Undecodable {
    Newer(u32),
    Bad(Box<dyn std::error::Error + Send + Sync>),
}

pub(super) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&EnvelopeOut {
        format: super::FORMAT,
        record,
    })
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Undecodable> {
    let f: FormatOnly = serde_json::from_slice(bytes).map_err(|e| Undecodable::Bad(e.into()))?;
    if f.format > super::FORMAT {
        return Err(Undecodable::Newer(f.format));
    }
    let e: EnvelopeIn<T> = serde_json::from_slice(bytes).map_err(|e| Undecodable::Bad(e.into()))?;
    Ok(e.record)
}

pub(super) fn sha256_from_hex(s: &str) -> Result<[u8; 32], Undecodable> {
    let mut out = [0; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| Undecodable::Bad(e.into()))?;
    Ok(out)
}
