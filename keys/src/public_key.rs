//! Public keys of keys held elsewhere (a PKCS#11 token, a KMS), as TUF key objects,
//! and the signature encodings those devices use.
//!
//! TUF key objects are written the way tough and securesystemslib both read them:
//! ed25519 as hex, ECDSA P-256 and RSA as PEM `SubjectPublicKeyInfo` (keytypes
//! `ecdsa` and `rsa`). A key is checked after it is opened by signing a fixed
//! message and verifying the signature here ([`verify`]): a token whose public key
//! object belongs to another key, or a service whose RSA-PSS salt length is not the
//! digest length, is refused at start-up instead of publishing signatures no
//! client accepts.

use std::collections::HashMap;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use tough::schema::key::{
    EcdsaKey, EcdsaScheme, Ed25519Key, Ed25519Scheme, Key, RsaKey, RsaScheme,
};

use crate::pkcs8::{self, expect, INTEGER, OCTET_STRING, SEQUENCE};
use crate::KeyType;

/// DER tag of a BIT STRING.
#[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
const BIT_STRING: u8 = 0x03;

/// What [`verify`] signs when a key is opened.
pub(crate) const CHECK_MESSAGE: &[u8] = b"tuf-mirror: signing key check";

/// A TUF key object for an uncompressed P-256 point (`04 || X || Y`).
pub(crate) fn ecdsa_p256(point: Vec<u8>) -> Key {
    Key::Ecdsa {
        keyval: EcdsaKey {
            public: point.into(),
            _extra: HashMap::new(),
        },
        scheme: EcdsaScheme::EcdsaSha2Nistp256,
        _extra: HashMap::new(),
    }
}

/// A TUF key object for a 32-byte Ed25519 public key.
pub(crate) fn ed25519(public: Vec<u8>) -> Key {
    Key::Ed25519 {
        keyval: Ed25519Key {
            public: public.into(),
            _extra: HashMap::new(),
        },
        scheme: Ed25519Scheme::Ed25519,
        _extra: HashMap::new(),
    }
}

/// A TUF key object for an RSA public key given as PKCS#1 `RSAPublicKey` DER.
pub(crate) fn rsa(pkcs1: Vec<u8>) -> Key {
    Key::Rsa {
        keyval: RsaKey {
            public: pkcs1.into(),
            _extra: HashMap::new(),
        },
        scheme: RsaScheme::RsassaPssSha256,
        _extra: HashMap::new(),
    }
}

/// The size in bits of the modulus of a PKCS#1 `RSAPublicKey`.
pub(crate) fn rsa_bits(pkcs1: &[u8]) -> Option<usize> {
    let (key, _) = expect(pkcs1, SEQUENCE)?;
    let (modulus, _) = expect(key, INTEGER)?;
    let modulus = strip_leading_zeros(modulus);
    let first = *modulus.first()?;
    Some(modulus.len() * 8 - first.leading_zeros() as usize)
}

/// PKCS#1 `RSAPublicKey` DER from the big-endian modulus and public exponent.
pub(crate) fn rsa_pkcs1(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = der_integer(modulus);
    body.extend(der_integer(exponent));
    der(SEQUENCE, &body)
}

/// The key type and TUF key object of a DER `SubjectPublicKeyInfo` (what KMS
/// `GetPublicKey` returns). Supported: ECDSA P-256, Ed25519, RSA of 2048 bits or more.
#[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
pub(crate) fn from_spki(spki: &[u8]) -> Result<(KeyType, Key), String> {
    let malformed = || "the public key is not a DER SubjectPublicKeyInfo".to_owned();
    let (info, _) = expect(spki, SEQUENCE).ok_or_else(malformed)?;
    let (identifier, rest) = expect(info, SEQUENCE).ok_or_else(malformed)?;
    let (bits, _) = expect(rest, BIT_STRING).ok_or_else(malformed)?;
    let (0, key) = bits
        .split_first()
        .map(|(u, k)| (*u, k))
        .ok_or_else(malformed)?
    else {
        return Err(malformed());
    };
    let (oid, parameters) = expect(identifier, pkcs8::OID).ok_or_else(malformed)?;
    match oid {
        pkcs8::EC_PUBLIC_KEY => {
            let curve = expect(parameters, pkcs8::OID).map(|(c, _)| c);
            if curve != Some(pkcs8::P256) {
                let what = match curve {
                    Some(c) => match pkcs8::curve_algorithm(c) {
                        pkcs8::KeyAlgorithm::Other(name) => name,
                        _ => "an ECDSA".to_owned(),
                    },
                    None => "an EC key without a named curve".to_owned(),
                };
                return Err(format!("{what} key; only ECDSA P-256 is supported"));
            }
            ec_point(key)
                .map(|p| (KeyType::EcdsaP256, ecdsa_p256(p)))
                .ok_or_else(|| "the P-256 public point is malformed".to_owned())
        }
        pkcs8::ED25519 if key.len() == 32 => Ok((KeyType::Ed25519, ed25519(key.to_vec()))),
        pkcs8::RSA_ENCRYPTION => {
            let bits = rsa_bits(key).ok_or("the RSA public key is malformed")?;
            check_rsa_bits(bits)?;
            Ok((KeyType::Rsa { bits }, rsa(key.to_vec())))
        }
        other => Err(format!(
            "a key of algorithm {}; supported: ECDSA P-256, Ed25519, RSA",
            pkcs8::dotted(other)
        )),
    }
}

/// Refuses RSA moduli TUF verifiers here do not take (2048 to 8192 bits).
pub(crate) fn check_rsa_bits(bits: usize) -> Result<(), String> {
    if (2048..=8192).contains(&bits) {
        Ok(())
    } else {
        Err(format!(
            "an RSA key of {bits} bits; supported: 2048 to 8192 bits"
        ))
    }
}

/// An uncompressed P-256 point, given raw or wrapped in a DER OCTET STRING (PKCS#11
/// `CKA_EC_POINT` is the latter; some tokens return the former).
pub(crate) fn ec_point(value: &[u8]) -> Option<Vec<u8>> {
    let is_point = |p: &[u8]| p.len() == 65 && p[0] == 0x04;
    if is_point(value) {
        return Some(value.to_vec());
    }
    let (inner, rest) = expect(value, OCTET_STRING)?;
    (rest.is_empty() && is_point(inner)).then(|| inner.to_vec())
}

/// A 32-byte Ed25519 public key, raw or wrapped in a DER OCTET STRING.
pub(crate) fn ed25519_point(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() == 32 {
        return Some(value.to_vec());
    }
    let (inner, rest) = expect(value, OCTET_STRING)?;
    (rest.is_empty() && inner.len() == 32).then(|| inner.to_vec())
}

/// An ECDSA signature as the ASN.1 DER `Ecdsa-Sig-Value` TUF uses, from the raw
/// `r || s` PKCS#11 returns.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    Some(der(SEQUENCE, &body))
}

/// Checks `sig` over `msg` with the key object `key`, as TUF clients verify it.
pub(crate) fn verify(key: &Key, msg: &[u8], sig: &[u8]) -> bool {
    let (algorithm, public): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) = match key {
        Key::Ed25519 { keyval, .. } => (&signature::ED25519, keyval.public.to_vec()),
        Key::Ecdsa { keyval, .. } | Key::EcdsaOld { keyval, .. } => {
            (&signature::ECDSA_P256_SHA256_ASN1, keyval.public.to_vec())
        }
        Key::Rsa { keyval, .. } => (&signature::RSA_PSS_2048_8192_SHA256, keyval.public.to_vec()),
    };
    UnparsedPublicKey::new(algorithm, public)
        .verify(msg, sig)
        .is_ok()
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let value = strip_leading_zeros(value);
    let mut contents = Vec::with_capacity(value.len() + 1);
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(value);
    der(INTEGER, &contents)
}

/// A DER element.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// Whether `input` is one DER element and nothing else (for tests).
#[cfg(test)]
fn single(input: &[u8]) -> bool {
    crate::pkcs8::tlv(input).is_some_and(|(_, _, rest)| rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    };

    #[test]
    fn raw_ecdsa_signatures_become_der_that_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let key = ecdsa_p256(pair.public_key().as_ref().to_vec());
        for _ in 0..32 {
            // Some signatures have r or s with the top bit set or a leading zero byte.
            let raw = pair.sign(&rng, b"msg").unwrap();
            let der = ecdsa_raw_to_der(raw.as_ref()).unwrap();
            assert!(single(&der));
            assert!(verify(&key, b"msg", &der));
            assert!(!verify(&key, b"other", &der));
        }
        assert_eq!(ecdsa_raw_to_der(&[1, 2, 3]), None);
    }

    #[test]
    fn spki_of_each_supported_type() {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate().unwrap();
        let ed_spki = ed.public_key().as_der().unwrap();
        let (ty, key) = from_spki(ed_spki.as_ref()).unwrap();
        assert_eq!(ty, KeyType::Ed25519);
        assert!(verify(&key, b"m", ed.sign(b"m").as_ref()));

        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
        )
        .unwrap();
        let ec_spki = ec.public_key().as_der().unwrap();
        let (ty, key) = from_spki(ec_spki.as_ref()).unwrap();
        assert_eq!(ty, KeyType::EcdsaP256);
        assert!(verify(&key, b"m", ec.sign(&rng, b"m").unwrap().as_ref()));

        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let rsa_spki = rsa.public_key().as_der().unwrap();
        let (ty, key) = from_spki(rsa_spki.as_ref()).unwrap();
        assert_eq!(ty, KeyType::Rsa { bits: 2048 });
        let mut sig = vec![0; rsa.public_modulus_len()];
        rsa.sign(&signature::RSA_PSS_SHA256, &rng, b"m", &mut sig)
            .unwrap();
        assert!(verify(&key, b"m", &sig));
        // The same key object as tough's own signer describes.
        assert_eq!(
            key.key_id().unwrap(),
            tough::sign::Sign::tuf_key(&rsa).key_id().unwrap()
        );
        assert_eq!(
            from_spki(ec_spki.as_ref()).unwrap().1.key_id().unwrap(),
            tough::sign::Sign::tuf_key(&ec).key_id().unwrap()
        );
    }

    #[test]
    fn rsa_from_modulus_and_exponent_is_the_same_key() {
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs1 = rsa.public_key().as_ref().to_vec();
        let (body, _) = expect(&pkcs1, SEQUENCE).unwrap();
        let (n, rest) = expect(body, INTEGER).unwrap();
        let (e, _) = expect(rest, INTEGER).unwrap();
        assert_eq!(rsa_pkcs1(n, e), pkcs1);
        assert_eq!(rsa_pkcs1(strip_leading_zeros(n), e), pkcs1);
        assert_eq!(rsa_bits(&pkcs1), Some(2048));
    }

    #[test]
    fn unsupported_spki_is_named() {
        // P-384 SubjectPublicKeyInfo (header only matters).
        let mut p384 = vec![0x30, 0x76, 0x30, 0x10, 0x06, 0x07];
        p384.extend([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        p384.extend([0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
        p384.extend([0x03, 0x62, 0x00]);
        p384.extend([0x04; 97]);
        assert!(from_spki(&p384).unwrap_err().contains("P-384"));
        assert!(from_spki(b"junk")
            .unwrap_err()
            .contains("SubjectPublicKeyInfo"));
    }

    #[test]
    fn points_raw_or_wrapped() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(ec_point(&point).unwrap(), point);
        assert_eq!(ec_point(&wrapped).unwrap(), point);
        assert_eq!(ec_point(&point[..64]), None);
        let mut ed = vec![0x04, 32];
        ed.extend([9u8; 32]);
        assert_eq!(ed25519_point(&ed).unwrap(), vec![9u8; 32]);
        assert_eq!(ed25519_point(&[9u8; 32]).unwrap(), vec![9u8; 32]);
        assert_eq!(ed25519_point(&[9u8; 31]), None);
    }
}
