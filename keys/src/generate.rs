//! New key files.

use crate::{pem, FileKey, KeyError, KeyId};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// The algorithm of a key made by [`generate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 (`ed25519`): small, fast, deterministic signatures. The default choice.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256 (`ecdsa-p256`), for sites that require NIST curves.
    EcdsaP256,
    /// RSA 3072 signing RSASSA-PSS with SHA-256 (`rsa-3072`).
    Rsa3072,
}

impl Algorithm {
    /// Every algorithm, in the order of the documentation.
    pub const ALL: [Algorithm; 3] = [Algorithm::Ed25519, Algorithm::EcdsaP256, Algorithm::Rsa3072];

    /// The name used on the command line: `ed25519`, `ecdsa-p256`, `rsa-3072`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Rsa3072 => "rsa-3072",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Algorithm, KeyError> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| KeyError::UnknownAlgorithm {
                given: s.to_owned(),
            })
    }
}

/// Generates a new private key and writes it to `out` as PKCS#8 PEM
/// (`-----BEGIN PRIVATE KEY-----`, PKCS#8 v1, the form `openssl genpkey` writes),
/// with mode 0600. Returns the key id of the key written.
///
/// `out` must not exist: an existing file is never overwritten. The file is
/// fsynced, and so is its directory. If writing fails, the partial file is
/// removed. The PEM text is parsed back before it is written, by the code that
/// [`FileKey::load`] uses, so the id returned is the id the file loads with.
///
/// Blocking; RSA 3072 generation takes up to a few seconds.
///
/// # Errors
///
/// [`KeyError::AlreadyExists`] if `out` exists; otherwise an I/O or generation
/// error naming `out`.
pub fn generate(algorithm: Algorithm, out: &Path) -> Result<KeyId, KeyError> {
    let failed = |source| KeyError::Generate {
        path: out.to_owned(),
        algorithm,
        source,
    };
    // Each DER document zeroizes itself when dropped.
    let pem = match algorithm {
        Algorithm::Ed25519 => {
            let der = Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(failed)?;
            pem::encode("PRIVATE KEY", der.as_ref())
        }
        Algorithm::EcdsaP256 => {
            let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(failed)?;
            pem::encode("PRIVATE KEY", der.as_ref())
        }
        Algorithm::Rsa3072 => {
            let der = RsaKeyPair::generate(KeySize::Rsa3072)
                .and_then(|pair| pair.as_der())
                .map_err(failed)?;
            pem::encode("PRIVATE KEY", der.as_ref())
        }
    }
    .ok_or_else(|| failed(aws_lc_rs::error::Unspecified))?;
    let key = FileKey::from_pem(out, &pem)?;
    write_new(out, &pem)?;
    Ok(key.key_id().clone())
}

/// Creates `path` with mode 0600 and writes `contents`, durably.
fn write_new(path: &Path, contents: &Zeroizing<Vec<u8>>) -> Result<(), KeyError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io {
            path,
            action,
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            ErrorKind::AlreadyExists => KeyError::AlreadyExists {
                path: path.to_owned(),
            },
            _ => io("create", path)(source),
        })?;
    let written = file
        // The umask may have cleared bits of 0600 (never added any): set it exactly.
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        // Best effort: the write error is the one to report.
        let _ = std::fs::remove_file(path);
        return Err(io("write", path)(source));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io("fsync of the directory", dir))
}
