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

    /// A PKCS#11 key could not be opened or used.
    #[error("pkcs11 key {uri}: {step}")]
    Pkcs11 {
        /// The key URI (it holds no PIN, only where the PIN file is).
        uri: String,
        /// What failed.
        step: Pkcs11Step,
        /// The PKCS#11 error, when the module returned one.
        #[source]
        source: Option<cryptoki::error::Error>,
    },

    /// The PIN file of a PKCS#11 key could not be used (unreadable, readable by
    /// group or others, empty, not UTF-8).
    #[error("pkcs11 key {uri}: the PIN file {} cannot be used", pin_source.display())]
    PinFile {
        /// The key URI.
        uri: String,
        /// The PIN file.
        pin_source: PathBuf,
        /// Why (a [`KeyError::Permissions`], [`KeyError::Io`], ...).
        #[source]
        source: Box<KeyError>,
    },

    /// A KMS key could not be opened or used.
    #[error("awskms key {uri}: {step}")]
    Kms {
        /// The key URI (credentials never are in it).
        uri: String,
        /// What failed.
        step: KmsStep,
        /// Whether trying again may help (the service was unreachable or busy).
        retryable: bool,
        /// The SDK error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A key URI of a kind this build cannot open.
    #[error("key {uri}: {reason}")]
    Unsupported {
        /// The key URI.
        uri: String,
        /// Why, and what to do about it.
        reason: &'static str,
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
            KeyError::Pkcs11 { step, source, .. } => match (step, source) {
                (Pkcs11Step::Sign | Pkcs11Step::OpenSession, _) => ErrorKind::Retryable,
                (_, Some(cryptoki::error::Error::Pkcs11(rv, _))) if transient(*rv) => {
                    ErrorKind::Retryable
                }
                _ => ErrorKind::Fatal,
            },
            KeyError::Kms {
                retryable: true, ..
            } => ErrorKind::Retryable,
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
            KeyError::UnknownAlgorithm { .. }
            | KeyError::Pkcs11 { .. }
            | KeyError::PinFile { .. }
            | KeyError::Kms { .. }
            | KeyError::Unsupported { .. } => None,
        }
    }

    /// The URI of the PKCS#11 or KMS key the error is about.
    pub fn uri(&self) -> Option<&str> {
        match self {
            KeyError::Pkcs11 { uri, .. }
            | KeyError::PinFile { uri, .. }
            | KeyError::Kms { uri, .. }
            | KeyError::Unsupported { uri, .. } => Some(uri),
            _ => None,
        }
    }
}

/// PKCS#11 return values that say the device or session went away, not that the
/// key or the PIN is wrong.
fn transient(rv: cryptoki::error::RvError) -> bool {
    use cryptoki::error::RvError;
    matches!(
        rv,
        RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionClosed
            | RvError::SessionCount
            | RvError::SessionHandleInvalid
            | RvError::GeneralError
            | RvError::FunctionFailed
            | RvError::HostMemory
    )
}

/// What failed with a PKCS#11 key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pkcs11Step {
    /// Loading or initializing the module (`module-path`).
    LoadModule,
    /// Listing the slots and tokens.
    ListTokens,
    /// No token matches the URI; the labels of the tokens present.
    TokenNotFound {
        /// Labels of the tokens that are there.
        present: Vec<String>,
    },
    /// More than one token matches the URI.
    SeveralTokens {
        /// How many.
        count: usize,
    },
    /// Opening a session on the token.
    OpenSession,
    /// Logging in: the PIN is wrong, locked, or the token refused it.
    Login,
    /// Searching for the key.
    FindKey,
    /// No private key matches `object` / `id`.
    KeyNotFound {
        /// Whether the session is logged in (private keys are usually invisible
        /// without login).
        logged_in: bool,
    },
    /// More than one private key matches.
    SeveralKeys {
        /// How many.
        count: usize,
    },
    /// Reading the key's attributes or its public key.
    PublicKey {
        /// What is missing or malformed.
        reason: String,
    },
    /// The key is of a type or size TUF signing here does not use.
    KeyType {
        /// What the key is.
        found: String,
    },
    /// Signing.
    Sign,
    /// The key signed, but the signature does not verify with its public key.
    SelfCheck,
}

impl fmt::Display for Pkcs11Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkcs11Step::LoadModule => f.write_str("loading the PKCS#11 module failed"),
            Pkcs11Step::ListTokens => f.write_str("listing the tokens failed"),
            Pkcs11Step::TokenNotFound { present } if present.is_empty() => {
                f.write_str("no token matches, and the module shows no token at all")
            }
            Pkcs11Step::TokenNotFound { present } => {
                write!(f, "no token matches; tokens present: {present:?}")
            }
            Pkcs11Step::SeveralTokens { count } => write!(
                f,
                "{count} tokens match; add serial= or slot-id= to choose one"
            ),
            Pkcs11Step::OpenSession => f.write_str("opening a session failed"),
            Pkcs11Step::Login => {
                f.write_str("login failed (wrong PIN, locked PIN, or the token refused it)")
            }
            Pkcs11Step::FindKey => f.write_str("searching for the key failed"),
            Pkcs11Step::KeyNotFound { logged_in: true } => {
                f.write_str("no private key matches object= / id=")
            }
            Pkcs11Step::KeyNotFound { logged_in: false } => f.write_str(
                "no private key matches object= / id= (not logged in: private keys usually \
                 need a PIN; add pin-source=)",
            ),
            Pkcs11Step::SeveralKeys { count } => write!(
                f,
                "{count} private keys match; name the key by both object= and id="
            ),
            Pkcs11Step::PublicKey { reason } => write!(f, "reading the public key: {reason}"),
            Pkcs11Step::KeyType { found } => write!(
                f,
                "the key is {found}; supported: ECDSA P-256, Ed25519, RSA 2048 to 8192 bits"
            ),
            Pkcs11Step::Sign => f.write_str("signing failed"),
            Pkcs11Step::SelfCheck => f.write_str(
                "a test signature does not verify with the key's public key (is the public \
                 key object of another key?)",
            ),
        }
    }
}

/// What failed with a KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KmsStep {
    /// `GetPublicKey` failed (unreachable endpoint, no credentials, unknown key, ...).
    GetPublicKey,
    /// The key is not a signing key of a supported type.
    KeyType {
        /// What the key is (`KeySpec`, `KeyUsage`).
        found: String,
    },
    /// Setting up tough-kms's RSA signer failed.
    RsaSigner,
    /// `Sign` failed.
    Sign,
    /// The key signed, but the signature does not verify with its public key (a
    /// KMS-compatible service whose RSA-PSS salt is not 32 bytes, for one).
    SelfCheck,
}

impl fmt::Display for KmsStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmsStep::GetPublicKey => f.write_str("GetPublicKey failed"),
            KmsStep::KeyType { found } => write!(
                f,
                "the key is {found}; supported: SIGN_VERIFY keys of spec ECC_NIST_P256 \
                 (ECDSA_SHA_256) and RSA_2048/3072/4096 (RSASSA_PSS_SHA_256)"
            ),
            KmsStep::RsaSigner => f.write_str("setting up the RSA signer failed"),
            KmsStep::Sign => f.write_str("Sign failed"),
            KmsStep::SelfCheck => f.write_str(
                "a test signature does not verify with the key's public key (RSA-PSS salt \
                 length other than 32 bytes?)",
            ),
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
