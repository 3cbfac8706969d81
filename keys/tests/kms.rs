//! KMS keys on a real KMS-compatible server (moto, through `tests/peers/kms_server.py`,
//! on 127.0.0.1): ECDSA P-256 and RSA keys sign messages below and above 4 KiB (RAW
//! and DIGEST) and the signatures verify with the public key; an alias works; an
//! unreachable endpoint and an unsupported key type give errors naming the URI.
#![cfg(feature = "aws-kms")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use common::{chain, open, verifies};
use tough::sign::Sign;
use tuf_mirror_keys::{ErrorKind, KeyError, KeyType, KmsStep, Signer};
use tuf_mirror_tests::kms::{free_port, set_test_credentials, KmsServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_and_rsa_keys_sign_raw_and_digest_messages() {
    let server = KmsServer::start();
    let rng = SystemRandom::new();
    for (spec, expected) in [
        ("ECC_NIST_P256", KeyType::EcdsaP256),
        ("RSA_3072", KeyType::Rsa { bits: 3072 }),
    ] {
        let id = server.create_key(spec);
        let uri = server.uri(&id);
        let key = tokio::task::spawn_blocking(move || open(&uri))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(key, Signer::Kms(_)));
        assert_eq!(key.key_type(), expected);
        let public = key.tuf_key();
        // 4096 bytes is the longest RAW message; 4097 goes as a digest.
        for len in [10, 4096, 4097, 50_000] {
            let msg = vec![b'k'; len];
            let sig = key.sign(&msg, &rng).await.unwrap();
            assert!(verifies(&public, &msg, &sig), "{spec} {len}");
            assert!(!verifies(&public, &msg[1..], &sig), "{spec} {len}");
        }
        assert!(format!("{key:?}").contains(&id));
    }
}

#[test]
fn keys_open_by_alias_and_unsupported_types_are_named() {
    let server = KmsServer::start();
    let id = server.create_key("ECC_NIST_P256");
    let out = std::process::Command::new(tuf_mirror_tests::peers::python())
        .arg(tuf_mirror_tests::peers::script("kms_server.py"))
        .args(["create-key", "--endpoint", &server.endpoint()])
        .args(["--spec", "ECC_NIST_P256", "--alias", "alias/mirror-ts"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let by_alias = open(&server.uri("alias/mirror-ts")).unwrap();
    assert_eq!(by_alias.key_type(), KeyType::EcdsaP256);
    assert_ne!(by_alias.key_id(), open(&server.uri(&id)).unwrap().key_id());

    let p384 = server.create_key("ECC_NIST_P384");
    let err = open(&server.uri(&p384)).unwrap_err();
    let text = chain(&err);
    assert!(
        matches!(
            &err,
            KeyError::Kms {
                step: KmsStep::KeyType { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("ECC_NIST_P384") && text.contains(&p384),
        "{text}"
    );
}

#[test]
fn an_unreachable_endpoint_is_a_retryable_error_naming_the_uri() {
    set_test_credentials();
    let port = free_port();
    let uri = format!("awskms:///alias/nowhere?region=us-east-1&endpoint=http://127.0.0.1:{port}");
    let start = Instant::now();
    let err = open(&uri).unwrap_err();
    let text = chain(&err);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("GetPublicKey failed"), "{text}");
    assert!(
        text.contains(&format!("endpoint=http://127.0.0.1:{port}")),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Retryable, "{text}");
}
