//! Signing keys for test repositories.
//!
//! Ed25519 keys come from fixed 32-byte seeds, and ed25519 signatures are deterministic, so a
//! repository signed only with them is byte-stable. ECDSA (P-256, P-384) and RSA-PSS keys are
//! generated at run time for key-type tests; their signatures differ from run to run.
//!
//! Public keys are written as securesystemslib writes them: ed25519 as hex of the raw 32 bytes,
//! ECDSA and RSA as a PEM `SubjectPublicKeyInfo`. A key id is the hex SHA-256 of the canonical
//! JSON of the public key object.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};
use base64::Engine as _;
use serde_json::{json, Value};

use super::json::canonical;

/// The algorithm of a [`TestKey`], with the TUF `keytype` and `scheme` it is published under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `ed25519` / `ed25519`.
    Ed25519,
    /// `ecdsa` / `ecdsa-sha2-nistp256`, signatures ASN.1 DER.
    EcdsaP256,
    /// `ecdsa` / `ecdsa-sha2-nistp384`, signatures ASN.1 DER.
    EcdsaP384,
    /// `rsa` / `rsassa-pss-sha256`, 2048-bit modulus.
    Rsa2048,
    /// `rsa` / `rsassa-pss-sha256`, 3072-bit modulus.
    Rsa3072,
}

impl KeyKind {
    /// The TUF `keytype` field.
    pub fn keytype(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => "ecdsa",
            KeyKind::Rsa2048 | KeyKind::Rsa3072 => "rsa",
        }
    }

    /// The TUF `scheme` field.
    pub fn scheme(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::EcdsaP256 => "ecdsa-sha2-nistp256",
            KeyKind::EcdsaP384 => "ecdsa-sha2-nistp384",
            KeyKind::Rsa2048 | KeyKind::Rsa3072 => "rsassa-pss-sha256",
        }
    }
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct Inner {
    kind: KeyKind,
    /// Shared between a key and its hostile variants (the key pairs are not all `Clone`).
    signer: Arc<Signer>,
    public: Value,
    key_id: String,
}

/// A private signing key together with the public key object and key id it is published under.
///
/// Cheap to clone (shared). [`TestKey::with_public_json`] and [`TestKey::with_key_id`] make
/// hostile variants that sign with the same private key but are published differently.
#[derive(Clone)]
pub struct TestKey {
    inner: Arc<Inner>,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kind", &self.inner.kind)
            .field("key_id", &self.inner.key_id)
            .finish_non_exhaustive()
    }
}

/// The key id TUF derives from a public key object: hex SHA-256 of its canonical JSON.
pub fn key_id_of(public: &Value) -> String {
    hex::encode(digest(&SHA256, &canonical(public)))
}

/// PEM text of a DER `SubjectPublicKeyInfo`, with LF line endings and 64-column lines.
fn spki_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

impl TestKey {
    fn from_signer(kind: KeyKind, signer: Signer) -> TestKey {
        let public = match &signer {
            Signer::Ed25519(pair) => hex::encode(pair.public_key().as_ref()),
            Signer::Ecdsa(pair) => spki_pem(
                AsDer::<PublicKeyX509Der>::as_der(pair.public_key())
                    .expect("aws-lc encodes a public key it generated")
                    .as_ref(),
            ),
            Signer::Rsa(pair) => spki_pem(
                AsDer::<PublicKeyX509Der>::as_der(pair.public_key())
                    .expect("aws-lc encodes a public key it generated")
                    .as_ref(),
            ),
        };
        let public = json!({
            "keytype": kind.keytype(),
            "scheme": kind.scheme(),
            "keyval": {"public": public},
        });
        let key_id = key_id_of(&public);
        TestKey {
            inner: Arc::new(Inner {
                kind,
                signer: Arc::new(signer),
                public,
                key_id,
            }),
        }
    }

    /// An ed25519 key from a fixed 32-byte seed (byte-stable).
    pub fn ed25519_from_seed(seed: [u8; 32]) -> TestKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("a 32-byte seed is always a valid ed25519 seed");
        TestKey::from_signer(KeyKind::Ed25519, Signer::Ed25519(pair))
    }

    /// An ed25519 key whose seed is the SHA-256 of `"tuf-mirror-tests key: " + label`
    /// (byte-stable; the same label always gives the same key).
    pub fn ed25519_from_label(label: &str) -> TestKey {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(
            digest(&SHA256, format!("tuf-mirror-tests key: {label}").as_bytes()).as_ref(),
        );
        TestKey::ed25519_from_seed(seed)
    }

    /// A fresh random key of `kind` (not byte-stable; ed25519 too).
    pub fn generate(kind: KeyKind) -> TestKey {
        let signer = match kind {
            KeyKind::Ed25519 => Signer::Ed25519(
                Ed25519KeyPair::generate().expect("aws-lc generates an ed25519 key"),
            ),
            KeyKind::EcdsaP256 => Signer::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .expect("aws-lc generates a P-256 key"),
            ),
            KeyKind::EcdsaP384 => Signer::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)
                    .expect("aws-lc generates a P-384 key"),
            ),
            KeyKind::Rsa2048 => Signer::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048).expect("aws-lc generates an RSA key"),
            ),
            KeyKind::Rsa3072 => Signer::Rsa(
                RsaKeyPair::generate(KeySize::Rsa3072).expect("aws-lc generates an RSA key"),
            ),
        };
        TestKey::from_signer(kind, signer)
    }

    /// The algorithm of this key.
    pub fn kind(&self) -> KeyKind {
        self.inner.kind
    }

    /// The key id this key is listed and signs under.
    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    /// The public key object as it appears in `keys` of root or of `delegations`.
    pub fn public_json(&self) -> &Value {
        &self.inner.public
    }

    /// The public key in the form aws-lc-rs verifies with: raw 32 bytes (ed25519), the
    /// uncompressed SEC1 point (ECDSA) or a PKCS#1 `RSAPublicKey` DER (RSA).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &*self.inner.signer {
            Signer::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Ecdsa(pair) => pair.public_key().as_ref().to_vec(),
            Signer::Rsa(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `message` (already canonical bytes) with this key's scheme.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &*self.inner.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .expect("aws-lc signs with an ECDSA key it generated")
                .as_ref()
                .to_vec(),
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PSS_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .expect("aws-lc signs with an RSA key it generated");
                sig
            }
        }
    }

    /// Verifies `sig` over `message` with this key's public key (aws-lc-rs), as an independent
    /// check of what the builder produced.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let public = self.public_key_bytes();
        let alg: &dyn signature::VerificationAlgorithm = match self.inner.kind {
            KeyKind::Ed25519 => &signature::ED25519,
            KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyKind::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyKind::Rsa2048 | KeyKind::Rsa3072 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(alg, public)
            .verify(message, sig)
            .is_ok()
    }

    /// The same private key published as `public` (any JSON, e.g. with extra fields or a
    /// wrong key type); the key id is recomputed from `public`.
    pub fn with_public_json(&self, public: Value) -> TestKey {
        let key_id = key_id_of(&public);
        self.replace(public, key_id)
    }

    /// The same private key and public object, listed and signing under `key_id` (which then
    /// does not match the hash of the key).
    pub fn with_key_id(&self, key_id: &str) -> TestKey {
        self.replace(self.inner.public.clone(), key_id.to_owned())
    }

    fn replace(&self, public: Value, key_id: String) -> TestKey {
        TestKey {
            inner: Arc::new(Inner {
                kind: self.inner.kind,
                signer: Arc::clone(&self.inner.signer),
                public,
                key_id,
            }),
        }
    }
}
