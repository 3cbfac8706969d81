//! PKCS#11 keys on a real SoftHSM2 token (made by the test, see
//! `tuf_mirror_tests::softhsm`): each key type signs and the signature verifies with
//! the public key the token reports; a wrong PIN, an unprotected PIN file, a missing
//! token, key or module give errors that name the URI and what failed, never the PIN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aws_lc_rs::rand::SystemRandom;
use common::{chain, open, verifies};
use tough::sign::Sign;
use tuf_mirror_keys::{ErrorKind, KeyError, KeyType, Pkcs11Step, Signer};
use tuf_mirror_tests::softhsm::{write_private, SoftHsm, MODULE, PIN, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_type_signs_short_and_long_messages() {
    let hsm = SoftHsm::shared();
    let rng = SystemRandom::new();
    for (label, expected) in [
        ("p256", KeyType::EcdsaP256),
        ("ed25519", KeyType::Ed25519),
        ("rsa3072", KeyType::Rsa { bits: 3072 }),
    ] {
        let key = open(&hsm.uri(label)).unwrap();
        assert!(matches!(key, Signer::Pkcs11(_)));
        assert_eq!(key.key_type(), expected, "{label}");
        let public = key.tuf_key();
        assert_eq!(
            key.key_id().as_str(),
            hex::encode(public.key_id().unwrap()),
            "{label}"
        );
        for len in [10, 5000, 100_000] {
            let msg = vec![b'x'; len];
            let sig = key.sign(&msg, &rng).await.unwrap();
            assert!(verifies(&public, &msg, &sig), "{label} {len}");
            assert!(!verifies(&public, &msg[1..], &sig), "{label} {len}");
        }
        // Neither Debug nor Display holds the PIN.
        for text in [format!("{key:?}"), key.to_string()] {
            assert!(text.contains("token=tuf-mirror-test"), "{text}");
            assert!(!text.contains(PIN), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sign_concurrently_outside_and_inside_a_runtime() {
    let hsm = SoftHsm::shared();
    let key = open(&hsm.uri("p256")).unwrap();
    let public = key.tuf_key();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let msg = vec![i; 100];
            (
                msg.clone(),
                key.sign(&msg, &SystemRandom::new()).await.unwrap(),
            )
        }));
    }
    for t in tasks {
        let (msg, sig) = t.await.unwrap();
        assert!(verifies(&public, &msg, &sig));
    }
}

#[test]
fn a_wrong_pin_is_a_login_error_naming_the_uri_not_the_pin() {
    let hsm = SoftHsm::shared();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pin");
    write_private(&wrong, "wrong-pin-31337\n");
    let err = open(&hsm.other_token_uri(&wrong)).unwrap_err();
    let text = chain(&err);
    assert!(
        matches!(
            &err,
            KeyError::Pkcs11 {
                step: Pkcs11Step::Login,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("login failed"), "{text}");
    assert!(
        text.contains("pkcs11:token=tuf-mirror-other;object=p256"),
        "{text}"
    );
    assert!(text.contains("PIN is incorrect"), "{text}");
    assert!(
        !text.contains("wrong-pin-31337") && !text.contains(PIN),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("wrong-pin-31337"));
    assert_eq!(err.kind(), ErrorKind::Fatal);
}

#[test]
fn a_pin_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let hsm = SoftHsm::shared();
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("open.pin");
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = open(&hsm.uri_with_pin("p256", &pin)).unwrap_err();
        let text = chain(&err);
        assert!(matches!(err, KeyError::PinFile { .. }), "{text}");
        assert!(
            text.contains("PIN file") && text.contains("chmod 600"),
            "{text}"
        );
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
        assert!(!text.contains(PIN), "{text}");
    }
}

#[test]
fn missing_token_key_and_module_are_named() {
    let hsm = SoftHsm::shared();
    let pin = hsm.pin_file.display();
    let cases = [
        (
            format!("pkcs11:token=nope;object=p256?module-path={MODULE}&pin-source={pin}"),
            "no token matches; tokens present:",
        ),
        (
            format!("pkcs11:token={TOKEN};object=nope?module-path={MODULE}&pin-source={pin}"),
            "no private key matches",
        ),
        (
            format!(
                "pkcs11:token={TOKEN};object=p256?module-path=/nonexistent/p11.so&pin-source={pin}"
            ),
            "loading the PKCS#11 module failed",
        ),
        (
            format!("pkcs11:token={TOKEN};object=p256?module-path={MODULE}"),
            "not logged in",
        ),
    ];
    for (uri, expected) in cases {
        let err = open(&uri).unwrap_err();
        let text = chain(&err);
        assert!(text.contains(expected), "{uri}: {text}");
        assert!(text.contains("pkcs11 key pkcs11:"), "{text}");
        assert!(!text.contains(PIN), "{text}");
    }
    // The token list helps whoever mistyped the label.
    let err = open(&format!(
        "pkcs11:token=nope;object=p256?module-path={MODULE}&pin-source={pin}"
    ))
    .unwrap_err();
    assert!(chain(&err).contains("\"tuf-mirror-test\""));
}
