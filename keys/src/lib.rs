//! Signing keys of the tuf-mirror daemon, as tough key sources.
//!
//! The mirror signs its own root, snapshot and timestamp roles. This crate holds
//! the keys that do it: private keys in PEM files ([`FileKey`]), keys on a PKCS#11
//! token ([`Pkcs11Key`]), keys in AWS KMS or a KMS-compatible service (`KmsKey`,
//! with the `aws-kms` feature), all opened from a key URI by [`Signer::open`]; and
//! [`generate`] to make new key files (it backs `tuf-mirror keys generate`).
//!
//! ```no_run
//! use std::path::Path;
//! use tuf_mirror_keys::{generate, Algorithm, FileKey};
//!
//! # fn main() -> Result<(), tuf_mirror_keys::KeyError> {
//! let id = generate(Algorithm::Ed25519, Path::new("/etc/tuf-mirror/keys/timestamp.pem"))?;
//! println!("{id}");
//!
//! // At start-up: load each key and check it against the mirror root.
//! let key = FileKey::load(Path::new("/etc/tuf-mirror/keys/timestamp.pem"))?;
//! key.check_expected("timestamp", &[id.to_string()])?;
//! // `key` is a `tough::key_source::KeySource` and a `tough::sign::Sign`.
//! # Ok(())
//! # }
//! ```
//!
//! # Key files
//!
//! - PEM, one private key per file: PKCS#8 `PRIVATE KEY` (ed25519, ECDSA P-256,
//!   RSA), PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY` (P-256). `openssl
//!   genpkey -algorithm ed25519`, `openssl genpkey -algorithm EC -pkeyopt
//!   ec_paramgen_curve:P-256` and `openssl genrsa 3072` all write files this crate
//!   reads. Encrypted keys, OpenSSH keys and ECDSA P-384/P-521 keys are refused with
//!   an error saying so.
//! - **Permissions**: a file that group or others may access (any bit of
//!   `0o077`) is refused with an error naming the file, its mode and the `chmod`
//!   that fixes it. Kubernetes secret volumes need `defaultMode: 0400`.
//! - **Symbolic links are followed.** Secret volumes are links, and operators rotate
//!   a key by re-pointing one; a link's own mode means nothing on Linux. The checks
//!   apply to the file the path resolves to, on the very descriptor that is read.
//!   Who may replace the link is decided by the directory that holds it: keep key
//!   directories writable by their owner only.
//! - Files larger than 64 KiB, and anything but a regular file, are refused.
//!
//! # Secrets
//!
//! No `Debug` or `Display` output, and no error, contains key material: they show
//! paths, PEM labels, algorithm names and key ids (which are public). The file
//! contents, base64 and DER are held in buffers that are allocated once and
//! zeroized on drop ([`zeroize`]); the parsed key lives inside AWS-LC, which
//! clears key memory when it frees it. This crate logs nothing.
//!
//! # Platform
//!
//! Unix only: the protection of key files is their Unix mode.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(not(unix))]
compile_error!("tuf-mirror-keys protects key files with Unix permissions: Unix only");

mod error;
mod file_key;
mod generate;
mod key_id;
#[cfg(feature = "aws-kms")]
mod kms;
mod pem;
mod pkcs11;
mod pkcs8;
mod public_key;
mod secret_file;
mod signer;

pub use error::{ErrorKind, KeyError, KmsStep, Pkcs11Step};
pub use file_key::{FileKey, KeyType};
pub use generate::{generate, Algorithm};
pub use key_id::KeyId;
#[cfg(feature = "aws-kms")]
pub use kms::{KmsKey, MAX_RAW_MESSAGE};
pub use pkcs11::Pkcs11Key;
pub use signer::Signer;

/// An error and its causes on one line (for tests).
#[cfg(test)]
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
