//! The error of this crate.
//!
//! Every variant names the key file it is about (and the role when it is known);
//! the cause is kept in `source`, never in the message. No variant holds key
//! material: what a message quotes is a path, a PEM label, an algorithm name or a
//! key id.

use crate::KeyId;
use std::fmt;
use std::path::PathBuf;

/// What a caller should do about a [`KeyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Trying again later may succeed (a signing operation failed; nothing signed
    /// was produced).
    Retryable,
    /// A missing, unreadable, unprotected or wrong key: retrying fails the same
    /// way. At start-up this stops the daemon.
    Fatal,
}

/// An error loading, checking, generating or using a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be opened, inspected, read, created or written.
    #[error("key file {}: {action} failed", path.display())]
    Io {
        /// The file (or, for `fsync of the directory`, the directory).
        path: PathBuf,
        /// What was being done: `open`, `read`, `create`, `write`, ...
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The path is not a regular file (a directory, a device, a FIFO, ...).
    #[error("key file {} is not a regular file", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },

    /// The file is larger than any private key file this crate reads.
    #[error("key file {} is larger than {max} bytes: not a PEM private key", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        max: usize,
    },

    /// Group or others may access the file.
    #[error(
        "key file {} has mode {mode:04o}: group or others can access it; \
         run `chmod 600 {}` (and check who owns it)",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file (the target, when the path is a symbolic link).
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The file holds no PEM block, or a PEM block that cannot be decoded.
    #[error("key file {}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number when there is one.
        reason: String,
        /// The base64 error, when that is the cause.
        #[source]
        source: Option<base64::DecodeSliceError>,
    },

    /// The file holds PEM, but not in a form this crate reads (an encrypted key, a
    /// public key, an OpenSSH key, several keys, ...).
    #[error("key file {} holds {what}; {hint}", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// What the file holds, e.g. `an encrypted private key`.
        what: String,
        /// What the operator can do about it.
        hint: &'static str,
    },

    /// The file holds a private key of an algorithm TUF signing here does not use.
    #[error(
        "key file {} holds {algorithm} key; supported: ed25519, ECDSA P-256 \
         (ecdsa-sha2-nistp256) and RSA 2048 to 8192 bits (rsassa-pss-sha256)",
        path.display()
    )]
    UnsupportedAlgorithm {
        /// The file.
        path: PathBuf,
        /// The algorithm, with its article: `an ECDSA P-384`, `an algorithm with OID 1.2.3`.
        algorithm: String,
    },

    /// The private key is structurally invalid or was refused by the crypto library.
    #[error("key file {}: the {algorithm} private key is invalid", path.display())]
    Rejected {
        /// The file.
        path: PathBuf,
        /// What the key claimed to be: `ed25519`, `ECDSA P-256`, `RSA`.
        algorithm: &'static str,
        /// The cause.
        #[source]
        source: aws_lc_rs::error::KeyRejected,
    },

    /// The key is not one the mirror root lists for the role it is configured for.
    #[error(
        "key file {} for role {role} has key id {actual}, but the mirror root expects {}",
        path.display(),
        ExpectedIds(expected)
    )]
    KeyIdMismatch {
        /// The file.
        path: PathBuf,
        /// The role the key was configured for.
        role: String,
        /// The key id of the key in the file.
        actual: KeyId,
        /// The key ids the mirror root lists for the role.
        expected: Vec<String>,
    },

    /// `generate` was asked to write to a path that already exists.
    #[error("key file {} already exists; refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },

    /// The crypto library failed to generate or serialize a new key.
    #[error("generating {algorithm} key for {} failed", path.display())]
    Generate {
        /// The file the key was for.
        path: PathBuf,
        /// The algorithm asked for.
        algorithm: crate::Algorithm,
        /// The cause.
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },

    /// The key id could not be computed (canonical JSON of the public key failed).
    #[error("key file {}: computing the key id failed", path.display())]
    KeyId {
        /// The file.
        path: PathBuf,
        /// The cause (boxed: tough's error is large).
        #[source]
        source: Box<tough::schema::Error>,
    },

    /// A signing operation failed.
    #[error("signing with key file {} failed", path.display())]
    Sign {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },

    /// `KeySource::write` was called: file keys are never written through tough.
    #[error(
        "key file {}: file keys are not written back through tough; create new keys with `generate`",
        path.display()
    )]
    WriteRefused {
        /// The file.
        path: PathBuf,
    },

    /// An algorithm name that [`Algorithm`](crate::Algorithm) does not know. The one
    /// variant without a file: it comes from a command line, before any file.
    #[error("unknown key algorithm {given:?}; expected one of: ed25519, ecdsa-p256, rsa-3072")]
    UnknownAlgorithm {
        /// The name given.
        given: String,
    },
}

impl KeyError {
    /// Whether trying again may help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::Sign { .. } => ErrorKind::Retryable,
            _ => ErrorKind::Fatal,
        }
    }

    /// The key file the error is about (`None` only for
    /// [`KeyError::UnknownAlgorithm`]).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            KeyError::Io { path, .. }
            | KeyError::NotRegularFile { path }
            | KeyError::TooLarge { path, .. }
            | KeyError::Permissions { path, .. }
            | KeyError::Pem { path, .. }
            | KeyError::UnsupportedFormat { path, .. }
            | KeyError::UnsupportedAlgorithm { path, .. }
            | KeyError::Rejected { path, .. }
            | KeyError::KeyIdMismatch { path, .. }
            | KeyError::AlreadyExists { path }
            | KeyError::Generate { path, .. }
            | KeyError::KeyId { path, .. }
            | KeyError::Sign { path, .. }
            | KeyError::WriteRefused { path } => Some(path),
            KeyError::UnknownAlgorithm { .. } => None,
        }
    }
}

/// Formats the expected key ids of a [`KeyError::KeyIdMismatch`].
struct ExpectedIds<'a>(&'a [String]);

impl fmt::Display for ExpectedIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("no key at all for it"),
            [one] => write!(f, "key id {one}"),
            many => write!(f, "one of the key ids {}", many.join(", ")),
        }
    }
}
