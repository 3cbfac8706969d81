//! Public keys and signature checks.
//!
//! Key objects are `{"keytype", "scheme", "keyval": {"public"}}` as in the TUF
//! specification. Supported: `ed25519` (hex), `ecdsa-sha2-nistp256` and
//! `ecdsa-sha2-nistp384` (PEM SubjectPublicKeyInfo, or hex as go-tuf writes),
//! `rsassa-pss-sha256` (PEM). A key of any other type is kept, so that metadata
//! listing it still loads, but no signature by it ever counts.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;

/// A key object as it appears in metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyJson {
    /// `keytype`.
    pub keytype: String,
    /// `scheme`.
    pub scheme: String,
    /// `keyval`.
    pub keyval: KeyVal,
}

/// `keyval` of a key object.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyVal {
    /// The public part.
    pub public: String,
}

/// A parsed public key, ready to verify signatures.
pub struct PublicKey {
    keytype: String,
    scheme: String,
    public: String,
    verifier: Option<ParsedPublicKey>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("keytype", &self.keytype)
            .field("scheme", &self.scheme)
            .field("supported", &self.verifier.is_some())
            .finish()
    }
}

impl PublicKey {
    /// Parses a key object. Never fails: an unsupported or undecodable key is kept
    /// as a key that verifies nothing (see [`PublicKey::is_supported`]).
    pub fn from_json(key: &KeyJson) -> Self {
        let verifier = algorithm(&key.keytype, &key.scheme)
            .and_then(|alg| decode_public(&key.keytype, &key.keyval.public).map(|b| (alg, b)))
            .and_then(|(alg, bytes)| ParsedPublicKey::new(alg, bytes).ok());
        PublicKey {
            keytype: key.keytype.clone(),
            scheme: key.scheme.clone(),
            public: key.keyval.public.trim().to_owned(),
            verifier,
        }
    }

    /// Whether this key can verify signatures at all.
    pub fn is_supported(&self) -> bool {
        self.verifier.is_some()
    }

    /// The public key as written (trimmed): two key ids with the same public key are
    /// one key for thresholds.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// `keytype/scheme`, for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.keytype, self.scheme)
    }

    /// Checks `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verifier
            .as_ref()
            .is_some_and(|v| v.verify_sig(msg, sig).is_ok())
    }
}

fn algorithm(keytype: &str, scheme: &str) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (keytype, scheme) {
        ("ed25519", "ed25519") => &signature::ED25519,
        ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        ("ecdsa" | "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384") => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        ("rsa", "rsassa-pss-sha256") => &signature::RSA_PSS_2048_8192_SHA256,
        _ => return None,
    })
}

fn decode_public(keytype: &str, public: &str) -> Option<Vec<u8>> {
    let public = public.trim();
    if public.starts_with("-----BEGIN") {
        let pem = pem::parse(public).ok()?;
        (pem.tag() == "PUBLIC KEY").then(|| pem.into_contents())
    } else if keytype != "rsa" {
        hex::decode(public).ok()
    } else {
        None
    }
}

/// The TUF key id of a key object written as `text`: the hex sha256 of its canonical
/// JSON, every field included (TUF 1.0, section 4.2, `KEYID`).
pub fn key_id(text: &str) -> Result<String, crate::canonical::CanonicalError> {
    let canonical = crate::canonical::canonicalize(text)?;
    Ok(hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical).as_ref(),
    ))
}

/// Keys of a delegating role, by key id.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, PublicKey>,
}

impl KeyRing {
    /// Parses every key of a `keys` object.
    pub fn new(keys: &HashMap<String, KeyJson>) -> Self {
        KeyRing {
            keys: keys
                .iter()
                .map(|(id, k)| (id.clone(), PublicKey::from_json(k)))
                .collect(),
        }
    }

    /// The key with this id.
    pub fn get(&self, keyid: &str) -> Option<&PublicKey> {
        self.keys.get(keyid)
    }

    /// Whether a key id is present.
    pub fn contains(&self, keyid: &str) -> bool {
        self.keys.contains_key(keyid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    #[test]
    fn ed25519_and_ecdsa_verify_and_reject() {
        let kp = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let key = PublicKey::from_json(&KeyJson {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: hex::encode(kp.public_key().as_ref()),
            },
        });
        let sig = kp.sign(b"msg");
        assert!(key.verify(b"msg", sig.as_ref()));
        assert!(!key.verify(b"msh", sig.as_ref()));

        let rng = SystemRandom::new();
        for (alg, scheme) in [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                "ecdsa-sha2-nistp256",
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                "ecdsa-sha2-nistp384",
            ),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
            // Hex of the uncompressed point, as go-tuf writes it.
            let key = PublicKey::from_json(&KeyJson {
                keytype: "ecdsa".into(),
                scheme: scheme.into(),
                keyval: KeyVal {
                    public: hex::encode(kp.public_key().as_ref()),
                },
            });
            let sig = kp.sign(&rng, b"msg").unwrap();
            assert!(key.verify(b"msg", sig.as_ref()), "{scheme}");
            assert!(!key.verify(b"other", sig.as_ref()), "{scheme}");
        }
    }

    #[test]
    fn unsupported_keys_load_but_verify_nothing() {
        let key = PublicKey::from_json(&KeyJson {
            keytype: "sphincs".into(),
            scheme: "sphincs-shake".into(),
            keyval: KeyVal {
                public: "00".into(),
            },
        });
        assert!(!key.is_supported());
        assert!(!key.verify(b"m", b"s"));
        let bad_hex = PublicKey::from_json(&KeyJson {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: "zz".into(),
            },
        });
        assert!(!bad_hex.is_supported());
    }
}
