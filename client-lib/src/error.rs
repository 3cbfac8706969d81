//! Errors of the verification engine.
//!
//! Every variant names what it is about (role, file or URL, key id) and keeps the
//! cause in `source`, never in the message. Callers branch on [`Error::kind`].

use std::path::PathBuf;

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The network or the remote failed; trying again later may succeed.
    Retryable,
    /// The remote served something that fails a TUF security check (signature,
    /// threshold, rollback, freeze, hash, length). Alert, keep the last good state.
    Security,
    /// Malformed input or a local problem (bad trust anchor, I/O, usage); retrying
    /// the same thing will fail the same way.
    Fatal,
}

/// A metadata role, as named in errors.
pub type RoleName = String;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transport failed to fetch a URL.
    #[error("failed to fetch {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The remote answered that the file does not exist.
    #[error("{url} not found")]
    NotFound {
        /// The URL.
        url: String,
    },
    /// The remote sent more bytes than allowed.
    #[error("{url} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A metadata file is not valid JSON of the expected shape.
    #[error("{role} metadata from {file} is malformed: {reason}")]
    Malformed {
        /// The role.
        role: RoleName,
        /// Where the bytes came from (URL or path).
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Fewer valid signatures than the threshold.
    #[error(
        "{role} metadata from {file} has {valid} valid signature(s) from distinct keys of its \
         delegator {delegator}, threshold is {threshold}{}",
        fmt_keyids(rejected)
    )]
    Threshold {
        /// The role.
        role: RoleName,
        /// Where the bytes came from.
        file: String,
        /// The role whose keys were used.
        delegator: RoleName,
        /// Distinct keys whose signature verified.
        valid: usize,
        /// Required.
        threshold: u64,
        /// Key ids of the role whose signatures were present but did not verify.
        rejected: Vec<String>,
    },
    /// A version number that is not the one expected (rollback or mismatch).
    #[error("{role} metadata from {file}: {reason} (expected version {expected}, got {got})")]
    Version {
        /// The role.
        role: RoleName,
        /// Where the bytes came from.
        file: String,
        /// Expected version (or lowest acceptable one).
        expected: u64,
        /// Version found.
        got: u64,
        /// Rollback, mismatch with snapshot or timestamp, root chain gap.
        reason: &'static str,
    },
    /// A role expired (freeze protection).
    #[error("{role} metadata expired at {expires}{}", grace_note(*grace_secs))]
    Expired {
        /// The role.
        role: RoleName,
        /// Its expiry.
        expires: String,
        /// The grace in force, in seconds (0 = strict).
        grace_secs: u64,
    },
    /// Length or hash of a file differs from what signed metadata says.
    #[error("{what} from {file}: {reason}")]
    Integrity {
        /// The role or target.
        what: String,
        /// Where the bytes came from.
        file: String,
        /// Length or which hash.
        reason: String,
    },
    /// A role that snapshot must list is not listed (or was removed).
    #[error("{role} is not listed in snapshot {snapshot_version}: {reason}")]
    NotInSnapshot {
        /// The role.
        role: RoleName,
        /// Snapshot version.
        snapshot_version: u64,
        /// Detail.
        reason: &'static str,
    },
    /// A role or target name that could escape a directory or is otherwise unusable.
    #[error("refused {what} name {name:?}: {reason}")]
    BadName {
        /// "role" or "target".
        what: &'static str,
        /// The name (escaped by Debug).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A delegation walk went over the configured limit.
    #[error("delegation graph under {role} exceeds {limit} roles")]
    TooManyRoles {
        /// Where the walk was.
        role: RoleName,
        /// The limit.
        limit: usize,
    },
    /// The root chain has more updates than allowed.
    #[error("root chain exceeds {limit} updates in one refresh")]
    TooManyRootUpdates {
        /// The limit.
        limit: u32,
    },
    /// The trust anchor itself is unusable.
    #[error("trusted root {file} is unusable: {reason}")]
    TrustAnchor {
        /// File or description.
        file: String,
        /// Why.
        reason: String,
    },
    /// The pinned targets keys do not match or do not verify.
    #[error("targets pin: {reason}")]
    Pin {
        /// What does not match and who must act.
        reason: String,
    },
    /// Upstream-anchored mode: a targets role the mirror serves (or lists in its
    /// snapshot) is not the one the upstream's own snapshot lists.
    #[error(
        "{role} served by the mirror ({file}) does not match upstream snapshot \
         {upstream_snapshot}: {reason} (mirror: version {mirror_version}; upstream: {})",
        fmt_upstream_version(*upstream_version)
    )]
    UpstreamMismatch {
        /// The targets role.
        role: RoleName,
        /// The mirror file (role or snapshot) where the mismatch was found.
        file: String,
        /// The version the mirror serves or lists.
        mirror_version: u64,
        /// The version the upstream snapshot lists (`None`: not listed).
        upstream_version: Option<u64>,
        /// The upstream snapshot version compared with.
        upstream_snapshot: u64,
        /// Version, length or hash, or not listed.
        reason: &'static str,
    },
    /// Upstream-anchored mode: metadata signed by the upstream (its root, timestamp,
    /// snapshot, or a targets role) expired longer ago than the upstream grace.
    #[error(
        "upstream {role} metadata expired at {expires}{}: the upstream must sign a new one \
         and the mirror fetch it",
        grace_note(*grace_secs)
    )]
    UpstreamExpired {
        /// The upstream role.
        role: RoleName,
        /// Its expiry.
        expires: String,
        /// The upstream grace in force, in seconds (0 = strict).
        grace_secs: u64,
    },
    /// A target the caller asked for is not in any role that may list it.
    #[error("target {path:?} not found")]
    TargetNotFound {
        /// The path.
        path: String,
    },
    /// The caller used the API wrongly (e.g. a grace above the cap).
    #[error("invalid configuration: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// Local file I/O failed.
    #[error("I/O error on {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn fmt_keyids(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(
            "; signatures that did not verify: key id(s) {}",
            ids.join(", ")
        )
    }
}

fn fmt_upstream_version(v: Option<u64>) -> String {
    match v {
        Some(v) => format!("version {v}"),
        None => "not listed".to_owned(),
    }
}

fn grace_note(grace_secs: u64) -> String {
    if grace_secs == 0 {
        String::new()
    } else {
        format!(" (beyond the grace of {grace_secs} s)")
    }
}

impl Error {
    /// Whether a caller should retry, alert, or give up.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Fetch { .. } | Error::NotFound { .. } => ErrorKind::Retryable,
            Error::Threshold { .. }
            | Error::Version { .. }
            | Error::Expired { .. }
            | Error::Integrity { .. }
            | Error::NotInSnapshot { .. }
            | Error::Pin { .. }
            | Error::UpstreamMismatch { .. }
            | Error::UpstreamExpired { .. }
            | Error::TooLarge { .. }
            | Error::TooManyRoles { .. }
            | Error::TooManyRootUpdates { .. }
            | Error::BadName { .. }
            | Error::Malformed { .. } => ErrorKind::Security,
            Error::TrustAnchor { .. }
            | Error::TargetNotFound { .. }
            | Error::Config { .. }
            | Error::Io { .. } => ErrorKind::Fatal,
        }
    }

    pub(crate) fn malformed(role: &str, file: &str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            role: role.to_owned(),
            file: file.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_role_file_and_keys() {
        let e = Error::Threshold {
            role: "bins-0a".into(),
            file: "http://x/1.bins-0a.json".into(),
            delegator: "targets".into(),
            valid: 0,
            threshold: 1,
            rejected: vec!["abcd".into()],
        };
        let s = e.to_string();
        assert!(s.contains("bins-0a") && s.contains("1.bins-0a.json") && s.contains("abcd"));
        assert_eq!(e.kind(), ErrorKind::Security);
        let e = Error::NotFound { url: "u".into() };
        assert_eq!(e.kind(), ErrorKind::Retryable);
    }
}
