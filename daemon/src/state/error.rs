//! The error of the state store.

use std::path::PathBuf;

use jiff::Timestamp;
use tuf_mirror_client::ErrorKind;

use super::{Role, FORMAT};

/// An error of the state store. Every variant names the database, the record key or
/// the repository and role it is about; the cause is kept in `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// sled could not open (or recover) the database.
    #[error("state store {}: opening failed", path.display())]
    Open {
        /// The database directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// sled failed to read, write or flush.
    #[error("state store {}: {action} {key} failed", path.display())]
    Db {
        /// The database directory.
        path: PathBuf,
        /// The record (or tree) concerned; `*` for a flush of everything.
        key: String,
        /// `reading`, `writing`, `flushing`, ...
        action: &'static str,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// The database was written by a newer format than this build reads.
    #[error(
        "state store {}: written in format {found}, this build reads formats up to {FORMAT}; \
         refusing to open it (run the newer build, or restore a backup)",
        path.display()
    )]
    NewerFormat {
        /// The database directory.
        path: PathBuf,
        /// The format found.
        found: u32,
    },
    /// One record carries a format newer than this build reads.
    #[error("state store {}: record {key} has format {found}, newer than {FORMAT}", path.display())]
    NewerRecord {
        /// The database directory.
        path: PathBuf,
        /// The record's key.
        key: String,
        /// The format found.
        found: u32,
    },
    /// A record cannot be decoded (or, never seen, encoded).
    #[error("state store {}: record {key} is not valid", path.display())]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// The record's key.
        key: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A repository name that cannot be a key (empty, or holding a NUL byte).
    #[error("repository {repo:?}: not usable as a state key (empty or holding a NUL byte)")]
    Name {
        /// The name.
        repo: String,
    },
    /// A role name other than `root`, `snapshot` or `timestamp`.
    #[error("repository {repo}: {role:?} is not a mirror role (root, snapshot, timestamp)")]
    UnknownRole {
        /// Repository.
        repo: String,
        /// The name given.
        role: String,
    },
    /// The version would go backwards, or be signed twice with different content.
    #[error(
        "repository {repo}: {role} version {version} refused: version {reserved} is already \
         reserved{}",
        if version == reserved { " with different content" } else { "" }
    )]
    Reserved {
        /// Repository.
        repo: String,
        /// Role.
        role: Role,
        /// The version asked for.
        version: u64,
        /// The sha256 of the content asked for.
        content_sha256: [u8; 32],
        /// The high-water mark.
        reserved: u64,
        /// The sha256 of the content reserved at the high-water mark.
        reserved_sha256: [u8; 32],
    },
    /// The wall clock is earlier than the last signing time.
    #[error(
        "repository {repo}: the clock says {now}, earlier than the last signing at {last}; \
         refusing to sign"
    )]
    ClockBehind {
        /// Repository.
        repo: String,
        /// The time given as now.
        now: Timestamp,
        /// The last signing time.
        last: Timestamp,
    },
}

impl StateError {
    /// What to do about it.
    ///
    /// - `Security` for a refused reservation (a version would be signed twice with
    ///   different content, or go backwards: a bug, or a restored backup) and for a
    ///   clock behind the last signing time: alert, keep serving the last good state.
    /// - `Retryable` for a failed read, write or flush (an I/O error such as a full
    ///   disk may clear), unless sled reports corruption or a bug.
    /// - `Fatal` for the rest: the database does not open, is from a newer format or
    ///   holds an unreadable record, or a name is unusable.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StateError::Reserved { .. } | StateError::ClockBehind { .. } => ErrorKind::Security,
            StateError::Db { source, .. } => match source {
                sled::Error::Io(_) => ErrorKind::Retryable,
                _ => ErrorKind::Fatal,
            },
            StateError::Open { .. }
            | StateError::NewerFormat { .. }
            | StateError::NewerRecord { .. }
            | StateError::Corrupt { .. }
            | StateError::Name { .. }
            | StateError::UnknownRole { .. } => ErrorKind::Fatal,
        }
    }
}
