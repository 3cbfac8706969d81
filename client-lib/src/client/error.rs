//! Errors of the client API: the engine's [`Error`] with the repository, the mirror and
//! who has to act.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind};
use crate::names::TOP_LEVEL;

/// Who has to act on a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Party {
    /// The mirror's operators: a role the mirror signs (root, timestamp, snapshot) has
    /// expired, or the mirror serves something that fails verification (misbehaving or
    /// compromised).
    Mirror,
    /// The upstream: a role it signs (targets or a delegated role) has expired; it must
    /// publish a newer version for the mirror to sync.
    Upstream,
    /// The security team that issues the key bundle: the mirror root in it is unusable,
    /// or the mirror root's targets keys differ from the pins (then, unless the upstream
    /// rotated its targets keys, the mirror is misbehaving; the message says both).
    KeyBundle,
    /// Nobody in particular: the mirror could not be reached or lacked a file; retry.
    Network,
    /// The caller: a local problem (I/O, usage) or a target no trusted role lists.
    Caller,
}

/// Errors of [`MirrorClient`](super::MirrorClient) and its builder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The bundle has no repository of that name.
    #[error(
        "repository {repository:?} is not in key bundle {} (it has: {})",
        file.display(),
        known.join(", ")
    )]
    UnknownRepository {
        /// The bundle file.
        file: PathBuf,
        /// The name asked for.
        repository: String,
        /// The names the bundle has.
        known: Vec<String>,
    },
    /// A client setting is refused (a grace above the cap, no mirror URL, an unusable
    /// cache directory).
    #[error("repository {repository}: {reason}")]
    Config {
        /// The repository.
        repository: String,
        /// Why.
        reason: String,
    },
    /// An update from the mirror (refresh, target lookup or download) failed: the
    /// mirror could not be reached, or what it served failed verification.
    #[error("repository {repository} at {mirror}: {}", advice(source).1)]
    Update {
        /// The repository.
        repository: String,
        /// The mirror's base URL.
        mirror: String,
        /// Who has to act.
        party: Party,
        /// What the engine found (boxed: it is large, and errors travel in `Result`s).
        #[source]
        source: Box<Error>,
    },
}

impl ClientError {
    pub(crate) fn update(repository: &str, mirror: &url::Url, source: Error) -> Self {
        ClientError::Update {
            repository: repository.to_owned(),
            mirror: mirror.to_string(),
            party: advice(&source).0,
            source: Box::new(source),
        }
    }

    /// Whether a caller should retry, alert, or give up (as [`Error::kind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Update { source, .. } => source.kind(),
            ClientError::UnknownRepository { .. } | ClientError::Config { .. } => ErrorKind::Fatal,
        }
    }

    /// Who has to act, for an update failure.
    pub fn party(&self) -> Option<Party> {
        match self {
            ClientError::Update { party, .. } => Some(*party),
            _ => None,
        }
    }

    /// The engine's error, for an update failure: match on it for the exact check
    /// that failed.
    pub fn engine_error(&self) -> Option<&Error> {
        match self {
            ClientError::Update { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Whether the mirror signs `role` (root, timestamp, snapshot); the upstream signs the
/// others (targets and delegated roles).
pub(crate) fn mirror_signs(role: &str) -> bool {
    TOP_LEVEL.contains(&role) && role != "targets"
}

/// Who has to act on `e`, and what to tell them.
pub(crate) fn advice(e: &Error) -> (Party, String) {
    use Party::*;
    match e {
        Error::Expired { role, .. } if role == "root" => (
            Mirror,
            "the mirror root has expired: the mirror's root keys must sign a new version".into(),
        ),
        Error::Expired { role, .. } if mirror_signs(role) => (
            Mirror,
            format!(
                "{role} is signed by the mirror and has expired: the mirror must re-sign it \
                 (is its daemon running?)"
            ),
        ),
        Error::Expired { role, .. } => (
            Upstream,
            format!(
                "{role} is signed by the upstream and has expired: the upstream must publish \
                 a newer version, and the mirror sync it"
            ),
        ),
        Error::Pin { .. } => (
            KeyBundle,
            "the mirror root's targets keys differ from the pinned ones: if the upstream \
             rotated its targets keys, the security team must issue an updated key bundle; \
             otherwise the mirror is misbehaving"
                .into(),
        ),
        Error::Threshold { role, .. } if !mirror_signs(role) => (
            Mirror,
            format!(
                "{role} is not signed by the keys trusted for it: the mirror serves targets \
                 metadata the upstream did not sign (misbehaving or compromised)"
            ),
        ),
        Error::Threshold { role, .. } => (
            Mirror,
            format!("{role} is not signed by the mirror's keys: the mirror is misbehaving"),
        ),
        Error::Version { .. } | Error::NotInSnapshot { .. } => (
            Mirror,
            "the mirror serves a rolled-back or inconsistent state: the mirror is misbehaving"
                .into(),
        ),
        Error::Integrity { .. } => (
            Mirror,
            "the mirror serves bytes that differ from what signed metadata lists: the mirror \
             is misbehaving"
                .into(),
        ),
        Error::Fetch { .. } | Error::NotFound { .. } => (
            Network,
            "the mirror could not be reached or lacks a file: retry later, or check the \
             mirror URL"
                .into(),
        ),
        Error::TrustAnchor { .. } => (
            KeyBundle,
            "the mirror root given as the trust anchor is unusable: the security team must \
             issue a new key bundle"
                .into(),
        ),
        Error::TargetNotFound { .. } => (Caller, "no role trusted for it lists the target".into()),
        Error::Config { .. } | Error::Io { .. } => (Caller, "a local problem".into()),
        e if e.kind() == ErrorKind::Security => (
            Mirror,
            "the mirror serves metadata this client refuses: the mirror is misbehaving".into(),
        ),
        _ => (Caller, "the update failed".into()),
    }
}
