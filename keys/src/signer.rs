//! Any signing key, opened from its key URI.

use std::fmt;

use aws_lc_rs::rand::SecureRandom;
use tough::schema::key::Key;
use tough::sign::Sign;
use tuf_mirror_config::KeyUri;

use crate::{FileKey, KeyError, KeyId, KeyType, Pkcs11Key};

/// A key opened from a `file:`, `pkcs11:` or (with the `aws-kms` feature) `awskms:`
/// URI. It is a tough [`Sign`]; `Debug` and `Display` show where the key is, its
/// type and key id, never key material or a PIN.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Signer {
    /// A PEM private key file.
    File(FileKey),
    /// A key on a PKCS#11 token.
    Pkcs11(Pkcs11Key),
    /// A key in AWS KMS or a KMS-compatible service.
    #[cfg(feature = "aws-kms")]
    Kms(crate::KmsKey),
}

impl Signer {
    /// Opens the key `uri` names. Blocking (file reads, PKCS#11 calls, KMS calls on
    /// a thread of its own): call it at start-up or through `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// The [`KeyError`] of the key kind, naming the file or URI; for an `awskms:`
    /// URI in a build without the `aws-kms` feature, [`KeyError::Unsupported`].
    pub fn open(uri: &KeyUri) -> Result<Signer, KeyError> {
        match uri {
            KeyUri::File(path) => FileKey::load(path).map(Signer::File),
            KeyUri::Pkcs11(key) => Pkcs11Key::open(key).map(Signer::Pkcs11),
            #[cfg(feature = "aws-kms")]
            KeyUri::AwsKms(key) => crate::KmsKey::open(key).map(Signer::Kms),
            #[cfg(not(feature = "aws-kms"))]
            KeyUri::AwsKms(_) => Err(KeyError::Unsupported {
                uri: uri.to_string(),
                reason: "this build of tuf-mirror has no KMS support; build it with the \
                         aws-kms feature (cargo build --features tuf-mirror-daemon/aws-kms)",
            }),
            _ => Err(KeyError::Unsupported {
                uri: uri.to_string(),
                reason: "this kind of key URI has no signer",
            }),
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self {
            Signer::File(k) => k.key_type(),
            Signer::Pkcs11(k) => k.key_type(),
            #[cfg(feature = "aws-kms")]
            Signer::Kms(k) => k.key_type(),
        }
    }

    /// The TUF key id of the public key.
    pub fn key_id(&self) -> &KeyId {
        match self {
            Signer::File(k) => k.key_id(),
            Signer::Pkcs11(k) => k.key_id(),
            #[cfg(feature = "aws-kms")]
            Signer::Kms(k) => k.key_id(),
        }
    }
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::File(k) => k.fmt(f),
            Signer::Pkcs11(k) => k.fmt(f),
            #[cfg(feature = "aws-kms")]
            Signer::Kms(k) => k.fmt(f),
        }
    }
}

#[tough::async_trait]
impl Sign for Signer {
    fn tuf_key(&self) -> Key {
        match self {
            Signer::File(k) => k.tuf_key(),
            Signer::Pkcs11(k) => k.tuf_key(),
            #[cfg(feature = "aws-kms")]
            Signer::Kms(k) => k.tuf_key(),
        }
    }

    async fn sign(
        &self,
        msg: &[u8],
        rng: &(dyn SecureRandom + Sync),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        match self {
            Signer::File(k) => k.sign(msg, rng).await,
            Signer::Pkcs11(k) => k.sign(msg, rng).await,
            #[cfg(feature = "aws-kms")]
            Signer::Kms(k) => k.sign(msg, rng).await,
        }
    }
}
