//! Shared by the signer tests: open a key URI, verify a signature as TUF clients do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use tough::schema::key::Key;
use tuf_mirror_config::KeyUri;
use tuf_mirror_keys::{KeyError, Signer};

/// Opens the key `uri` names.
pub fn open(uri: &str) -> Result<Signer, KeyError> {
    Signer::open(&uri.parse::<KeyUri>().unwrap())
}

/// Whether `sig` is a valid signature of `msg` by the public key `key`.
pub fn verifies(key: &Key, msg: &[u8], sig: &[u8]) -> bool {
    let (alg, public): (&'static dyn VerificationAlgorithm, Vec<u8>) = match key {
        Key::Ed25519 { keyval, .. } => (&signature::ED25519, keyval.public.to_vec()),
        Key::Ecdsa { keyval, .. } => (&signature::ECDSA_P256_SHA256_ASN1, keyval.public.to_vec()),
        Key::Rsa { keyval, .. } => (&signature::RSA_PSS_2048_8192_SHA256, keyval.public.to_vec()),
        other => panic!("unexpected key {other:?}"),
    };
    UnparsedPublicKey::new(alg, public).verify(msg, sig).is_ok()
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
