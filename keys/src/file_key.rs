//! A private key loaded from a PEM file, as a tough signer and key source.

use crate::pkcs8::{self, KeyAlgorithm};
use crate::{pem, secret_file, KeyError, KeyId};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PSS_SHA256,
};
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tough::key_source::KeySource;
use tough::schema::key::Key;
use tough::sign::Sign;

/// A signing key read from a PEM file: ed25519, ECDSA P-256 or RSA.
///
/// The file is parsed once, by [`FileKey::load`]; signing uses the parsed key.
/// Cloning is cheap (the key is shared). `FileKey` is a tough [`Sign`] and
/// [`KeySource`], so it can be handed to `SignedRole::new`.
///
/// # Accepted files
///
/// | PEM label | contents | algorithms |
/// |---|---|---|
/// | `PRIVATE KEY` | PKCS#8 (v1 or v2) | ed25519, ECDSA P-256, RSA |
/// | `RSA PRIVATE KEY` | PKCS#1 | RSA |
/// | `EC PRIVATE KEY` | SEC1 (an `EC PARAMETERS` block beside it is ignored) | ECDSA P-256 |
///
/// RSA keys of 2048 to 8192 bits sign `rsassa-pss-sha256`; ECDSA signatures are
/// ASN.1 DER (`ecdsa-sha2-nistp256`). ECDSA P-384 and P-521 keys are refused: tough
/// 0.24 (and so the mirror's root) has no `ecdsa-sha2-nistp384` scheme. Encrypted
/// keys are refused too: a key file is protected by its permissions.
///
/// # Security
///
/// - A file that group or others may access (`mode & 0o077 != 0`) is refused.
///   Symbolic links are followed and the mode checked is the target's (see the
///   crate documentation).
/// - The file contents, the base64 and the DER are held in buffers that are
///   zeroized when dropped; the parsed key lives in AWS-LC, which clears key
///   memory when it frees it.
/// - `Debug` and `Display` show the path, the key type and the key id only.
#[derive(Clone)]
pub struct FileKey {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    pair: KeyPair,
    public: Key,
    key_id: KeyId,
}

enum KeyPair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// The type of a loaded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519, scheme `ed25519`.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256, scheme `ecdsa-sha2-nistp256`.
    EcdsaP256,
    /// RSA, scheme `rsassa-pss-sha256`.
    Rsa {
        /// The modulus size in bits.
        bits: usize,
    },
}

impl KeyType {
    /// The TUF signature scheme the key signs with.
    pub fn scheme(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyType::Rsa { .. } => "rsassa-pss-sha256",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Ed25519 => f.write_str("ed25519"),
            KeyType::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyType::Rsa { bits } => write!(f, "rsa-{bits}"),
        }
    }
}

impl FileKey {
    /// Reads and parses the private key file `path`.
    ///
    /// This does blocking file I/O: call it at start-up, or through
    /// `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] naming `path` when the file cannot be read, is not a
    /// regular file, may be accessed by group or others, or does not hold exactly
    /// one supported private key.
    pub fn load(path: &Path) -> Result<FileKey, KeyError> {
        let contents = secret_file::read(path)?;
        FileKey::from_pem(path, &contents)
    }

    /// Parses `text`, the PEM contents of the key file `path`.
    pub(crate) fn from_pem(path: &Path, text: &[u8]) -> Result<FileKey, KeyError> {
        let blocks = pem::decode(path, text)?;
        let block = private_key_block(path, &blocks)?;
        let pair = parse(path, block)?;
        let public = match &pair {
            KeyPair::Ed25519(pair) => pair.tuf_key(),
            KeyPair::EcdsaP256(pair) => pair.tuf_key(),
            KeyPair::Rsa(pair) => pair.tuf_key(),
        };
        let key_id = KeyId::of(&public).map_err(|source| KeyError::KeyId {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Ok(FileKey {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                pair,
                public,
                key_id,
            }),
        })
    }

    /// The file the key was read from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match &self.inner.pair {
            KeyPair::Ed25519(_) => KeyType::Ed25519,
            KeyPair::EcdsaP256(_) => KeyType::EcdsaP256,
            KeyPair::Rsa(pair) => KeyType::Rsa {
                bits: pair.public_modulus_len() * 8,
            },
        }
    }

    /// The TUF key id of the public key.
    pub fn key_id(&self) -> &KeyId {
        &self.inner.key_id
    }

    /// The public key as TUF metadata lists it (`keytype`, `scheme`, `keyval`).
    pub fn public_key(&self) -> &Key {
        &self.inner.public
    }

    /// Checks that this key is one of `expected_ids`, the key ids the mirror root
    /// lists for `role` (hex, compared case-insensitively).
    ///
    /// # Errors
    ///
    /// [`KeyError::KeyIdMismatch`], naming the file, the role, this key's id and
    /// the expected ids.
    pub fn check_expected(&self, role: &str, expected_ids: &[String]) -> Result<(), KeyError> {
        if expected_ids.iter().any(|id| self.key_id().matches(id)) {
            return Ok(());
        }
        Err(KeyError::KeyIdMismatch {
            path: self.inner.path.clone(),
            role: role.to_owned(),
            actual: self.inner.key_id.clone(),
            expected: expected_ids.to_vec(),
        })
    }

    /// Signs `msg` with the key's scheme. Runs on the calling thread: tens of
    /// microseconds for ed25519 and ECDSA plus hashing the message, a few
    /// milliseconds for RSA 3072.
    fn sign_message(&self, msg: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>, KeyError> {
        let signature = match &self.inner.pair {
            KeyPair::Ed25519(pair) => pair.try_sign(msg).map(|s| s.as_ref().to_vec()),
            KeyPair::EcdsaP256(pair) => pair.sign(rng, msg).map(|s| s.as_ref().to_vec()),
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PSS_SHA256, rng, msg, &mut signature)
                    .map(|()| signature)
            }
        };
        signature.map_err(|source| KeyError::Sign {
            path: self.inner.path.clone(),
            source,
        })
    }
}

/// The one private key block of a file; other blocks must be `EC PARAMETERS`.
fn private_key_block<'a>(
    path: &Path,
    blocks: &'a [pem::Block],
) -> Result<&'a pem::Block, KeyError> {
    let unsupported = |what: String, hint: &'static str| KeyError::UnsupportedFormat {
        path: path.to_owned(),
        what,
        hint,
    };
    let mut keys = blocks.iter().filter(|block| {
        matches!(
            block.label.as_str(),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
        )
    });
    match (keys.next(), keys.next()) {
        (Some(key), None) => return Ok(key),
        (Some(_), Some(_)) => {
            return Err(unsupported(
                format!("{} private keys", 2 + keys.count()),
                "put each key in a file of its own",
            ))
        }
        (None, _) => {}
    }
    let other = blocks
        .iter()
        .find(|block| block.label != "EC PARAMETERS")
        .or(blocks.first());
    let label = other.map_or("", |block| block.label.as_str());
    Err(match label {
        "ENCRYPTED PRIVATE KEY" => {
            unsupported("an encrypted private key".to_owned(), pem::ENCRYPTED_HINT)
        }
        "OPENSSH PRIVATE KEY" => unsupported(
            "an OpenSSH private key".to_owned(),
            "expected PKCS#8 PEM, as written by `openssl genpkey` or `tuf-mirror keys generate`",
        ),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => unsupported(
            "a public key, not a private key".to_owned(),
            "point the key setting at the private key file",
        ),
        "CERTIFICATE" => unsupported(
            "a certificate, not a private key".to_owned(),
            "point the key setting at the private key file",
        ),
        label => unsupported(
            format!("a PEM block labelled {label:?}"),
            "expected PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC1)",
        ),
    })
}

/// Parses the private key in `block` with aws-lc-rs.
fn parse(path: &Path, block: &pem::Block) -> Result<KeyPair, KeyError> {
    let der = block.der.as_slice();
    let algorithm = match block.label.as_str() {
        "PRIVATE KEY" => pkcs8::algorithm(der).ok_or_else(|| KeyError::Pem {
            path: path.to_owned(),
            reason: format!(
                "the PRIVATE KEY block of line {} is not a PKCS#8 private key",
                block.line
            ),
            source: None,
        })?,
        "RSA PRIVATE KEY" => {
            return RsaKeyPair::from_der(der)
                .map(KeyPair::Rsa)
                .map_err(rejected(path, "RSA"))
        }
        // "EC PRIVATE KEY", the only other label `private_key_block` returns.
        _ => match pkcs8::sec1_algorithm(der) {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaUnnamedCurve => {
                return EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                    .map(KeyPair::EcdsaP256)
                    .map_err(rejected(path, "ECDSA P-256"))
            }
            other => other,
        },
    };
    match algorithm {
        KeyAlgorithm::Ed25519 => Ed25519KeyPair::from_pkcs8(der)
            .map(KeyPair::Ed25519)
            .map_err(rejected(path, "ed25519")),
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaUnnamedCurve => {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                .map(KeyPair::EcdsaP256)
                .map_err(rejected(path, "ECDSA P-256"))
        }
        KeyAlgorithm::Rsa => RsaKeyPair::from_pkcs8(der)
            .map(KeyPair::Rsa)
            .map_err(rejected(path, "RSA")),
        KeyAlgorithm::Other(algorithm) => Err(KeyError::UnsupportedAlgorithm {
            path: path.to_owned(),
            algorithm,
        }),
    }
}

fn rejected<'a>(
    path: &'a Path,
    algorithm: &'static str,
) -> impl FnOnce(aws_lc_rs::error::KeyRejected) -> KeyError + 'a {
    move |source| KeyError::Rejected {
        path: path.to_owned(),
        algorithm,
        source,
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey")
            .field("path", &self.inner.path)
            .field("key_type", &self.key_type())
            .field("key_id", &self.inner.key_id.as_str())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {} ({})",
            self.key_type(),
            self.inner.key_id,
            self.inner.path.display()
        )
    }
}

#[tough::async_trait]
impl Sign for FileKey {
    fn tuf_key(&self) -> Key {
        self.inner.public.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        rng: &(dyn SecureRandom + Sync),
    ) -> Result<Vec<u8>, Box<dyn Error + Send + Sync + 'static>> {
        Ok(self.sign_message(msg, rng)?)
    }
}

/// The key was parsed by [`FileKey::load`]: `as_sign` hands out a shared
/// reference to it and never reads the file again. `write` is refused: a key
/// file is never overwritten through tough.
#[tough::async_trait]
impl KeySource for FileKey {
    async fn as_sign(&self) -> Result<Box<dyn Sign>, Box<dyn Error + Send + Sync + 'static>> {
        Ok(Box::new(self.clone()))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn Error + Send + Sync + 'static>> {
        Err(Box::new(KeyError::WriteRefused {
            path: self.inner.path.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
