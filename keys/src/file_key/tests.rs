use super::*;
use crate::{generate, Algorithm, ErrorKind};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ED25519,
    RSA_PSS_2048_8192_SHA256,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;
use std::fs::Permissions;
use std::num::NonZeroU64;
use std::os::unix::fs::PermissionsExt;
use tough::editor::signed::SignedRole;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Timestamp};

const MESSAGE: &[u8] = b"{\"signed\":{\"_type\":\"timestamp\"}}";

/// Writes `contents` to `dir/name` with `mode`.
fn write_file(dir: &Path, name: &str, contents: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
    path
}

fn load_err(path: &Path) -> KeyError {
    FileKey::load(path).unwrap_err()
}

/// The public key bytes tough verifies with, and the algorithm it uses.
fn public_bytes(key: &Key) -> (&'static dyn VerificationAlgorithm, Vec<u8>) {
    match key {
        Key::Ed25519 { keyval, .. } => (&ED25519, keyval.public.to_vec()),
        Key::Ecdsa { keyval, .. } => (&ECDSA_P256_SHA256_ASN1, keyval.public.to_vec()),
        Key::Rsa { keyval, .. } => (&RSA_PSS_2048_8192_SHA256, keyval.public.to_vec()),
        other => panic!("unexpected key {other:?}"),
    }
}

/// Signs through tough's `Sign` and verifies the signature with aws-lc-rs.
async fn sign_and_verify(key: &FileKey) {
    let signature = Sign::sign(key, MESSAGE, &SystemRandom::new())
        .await
        .unwrap();
    let (algorithm, public) = public_bytes(key.public_key());
    UnparsedPublicKey::new(algorithm, &public)
        .verify(MESSAGE, &signature)
        .unwrap();
    UnparsedPublicKey::new(algorithm, &public)
        .verify(b"another message", &signature)
        .unwrap_err();
}

/// Signs a timestamp role with tough's `SignedRole::new` (through `KeySource`)
/// and verifies it with tough's `Root::verify_role`, which re-serializes the
/// role canonically and checks the threshold.
async fn sign_and_verify_with_tough(key: &FileKey) {
    let id = key.public_key().key_id().unwrap();
    assert_eq!(hex::encode(&id), key.key_id().as_str());
    let role_keys = RoleKeys {
        keyids: vec![id.clone()],
        threshold: NonZeroU64::MIN,
        _extra: HashMap::new(),
    };
    let expires = jiff::Timestamp::from_second(2_000_000_000).unwrap();
    let root = Root {
        spec_version: "1.0.0".to_owned(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires,
        keys: HashMap::from([(id, key.public_key().clone())]),
        roles: [
            RoleType::Root,
            RoleType::Snapshot,
            RoleType::Targets,
            RoleType::Timestamp,
        ]
        .into_iter()
        .map(|role| (role, role_keys.clone()))
        .collect(),
        _extra: HashMap::new(),
    };
    let sources: Vec<Box<dyn KeySource>> = vec![Box::new(key.clone())];
    let timestamp = Timestamp::new("1.0.0".to_owned(), NonZeroU64::MIN, expires);
    let signed = SignedRole::new(
        timestamp,
        &KeyHolder::Root(root.clone()),
        &sources,
        &SystemRandom::new(),
    )
    .await
    .unwrap();
    assert_eq!(signed.signed().signatures.len(), 1);
    root.verify_role(signed.signed()).unwrap();

    let mut tampered = signed.signed().clone();
    tampered.signed.version = NonZeroU64::new(2).unwrap();
    root.verify_role(&tampered).unwrap_err();
}

/// Generate -> load -> sign -> verify, for one algorithm. Returns the key and
/// the directory that holds its file.
async fn round_trip(algorithm: Algorithm, expected: KeyType) -> (FileKey, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{algorithm}.pem"));
    let id = generate(algorithm, &path).unwrap();

    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");

    let key = FileKey::load(&path).unwrap();
    assert_eq!(key.key_id(), &id);
    assert_eq!(key.key_type(), expected);
    assert_eq!(key.path(), path);
    assert_eq!(KeyId::of(&key.tuf_key()).unwrap(), id);
    sign_and_verify(&key).await;
    sign_and_verify_with_tough(&key).await;
    (key, dir)
}

#[tokio::test]
async fn ed25519_round_trip() {
    let (key, _dir) = round_trip(Algorithm::Ed25519, KeyType::Ed25519).await;
    assert_eq!(key.key_type().scheme(), "ed25519");
}

#[tokio::test]
async fn ecdsa_p256_round_trip() {
    let (key, _dir) = round_trip(Algorithm::EcdsaP256, KeyType::EcdsaP256).await;
    assert_eq!(key.key_type().scheme(), "ecdsa-sha2-nistp256");
}

#[tokio::test]
async fn rsa_3072_round_trip_and_the_same_key_as_pkcs1() {
    let (key, _dir) = round_trip(Algorithm::Rsa3072, KeyType::Rsa { bits: 3072 }).await;
    assert_eq!(key.key_type().scheme(), "rsassa-pss-sha256");
    assert_eq!(key.key_type().to_string(), "rsa-3072");

    // The same key as PKCS#1 `RSA PRIVATE KEY` has the same id and signs.
    let text = std::fs::read(key.path()).unwrap();
    let blocks = pem::decode(key.path(), &text).unwrap();
    let pkcs1 = pkcs8::private_key(&blocks[0].der).unwrap();
    let pkcs1_pem = pem::encode("RSA PRIVATE KEY", pkcs1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "rsa-pkcs1.pem", &pkcs1_pem, 0o600);
    let again = FileKey::load(&path).unwrap();
    assert_eq!(again.key_id(), key.key_id());
    sign_and_verify(&again).await;
}

/// Key files written by OpenSSL 3 (see `testdata/README.md`): they load, and the
/// public key tough publishes is the one `openssl pkey -pubout` printed.
#[tokio::test]
async fn openssl_key_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "ed25519.pem",
            include_str!("../../testdata/ed25519.pem"),
            include_str!("../../testdata/ed25519.pub.pem"),
            KeyType::Ed25519,
        ),
        (
            "ec-p256.pem",
            include_str!("../../testdata/ec-p256.pem"),
            include_str!("../../testdata/ec-p256.pub.pem"),
            KeyType::EcdsaP256,
        ),
        (
            "ec-p256-sec1.pem",
            include_str!("../../testdata/ec-p256-sec1.pem"),
            include_str!("../../testdata/ec-p256.pub.pem"),
            KeyType::EcdsaP256,
        ),
        (
            "rsa-2048-pkcs1.pem",
            include_str!("../../testdata/rsa-2048-pkcs1.pem"),
            include_str!("../../testdata/rsa-2048.pub.pem"),
            KeyType::Rsa { bits: 2048 },
        ),
    ];
    let mut ids = Vec::new();
    for (name, private, public, key_type) in cases {
        let path = write_file(dir.path(), name, private.as_bytes(), 0o600);
        let key = FileKey::load(&path).unwrap();
        assert_eq!(key.key_type(), key_type, "{name}");
        // A SubjectPublicKeyInfo ends with the raw key (ed25519), the point
        // (ECDSA) or the PKCS#1 RSAPublicKey (RSA): what tough's keyval holds.
        let spki = pem::decode(Path::new(name), public.as_bytes()).unwrap();
        let (_, tuf_public) = public_bytes(key.public_key());
        assert!(spki[0].der.ends_with(&tuf_public), "{name}");
        sign_and_verify(&key).await;
        ids.push(key.key_id().clone());
    }
    assert_eq!(ids[1], ids[2], "PKCS#8 and SEC1 files of one EC key");
}

#[test]
fn unsupported_key_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            include_str!("../../testdata/ec-p384.pem"),
            "holds an ECDSA P-384 key; supported: ed25519, ECDSA P-256",
        ),
        (
            include_str!("../../testdata/ed25519-encrypted.pem"),
            "holds an encrypted private key; keys are read unencrypted",
        ),
        (
            include_str!("../../testdata/ed25519.pub.pem"),
            "holds a public key, not a private key",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "holds an OpenSSH private key",
        ),
        (
            "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n",
            "holds a PEM block labelled \"FOO\"",
        ),
    ];
    for (index, (text, expected)) in cases.into_iter().enumerate() {
        let path = write_file(dir.path(), &format!("{index}.pem"), text.as_bytes(), 0o600);
        let message = load_err(&path).to_string();
        assert!(message.starts_with(&format!("key file {}", path.display())));
        assert!(message.contains(expected), "{message}");
    }

    let two = [
        include_str!("../../testdata/ed25519.pem"),
        include_str!("../../testdata/ec-p256.pem"),
    ]
    .concat();
    let path = write_file(dir.path(), "two.pem", two.as_bytes(), 0o600);
    let message = load_err(&path).to_string();
    assert!(message.contains("holds 2 private keys; put each key in a file of its own"));
}

#[test]
fn garbage_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let not_pkcs8 = pem::encode("PRIVATE KEY", &random[..100]).unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("empty", b"", "no PEM block found"),
        ("binary", &random, "no PEM block found"),
        ("text", b"timestamp key goes here\n", "no PEM block found"),
        (
            "not-pkcs8",
            &not_pkcs8,
            "the PRIVATE KEY block of line 1 is not a PKCS#8 private key",
        ),
        (
            "truncated",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKhy\n",
            "has no -----END line",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = write_file(dir.path(), name, contents, 0o600);
        let error = load_err(&path);
        let message = error.to_string();
        assert!(message.starts_with(&format!("key file {}: ", path.display())));
        assert!(message.contains(expected), "{name}: {message}");
        assert_eq!(error.kind(), ErrorKind::Fatal);
    }

    // A damaged RSA key: aws-lc-rs's reason is the source.
    let text = include_str!("../../testdata/rsa-2048-pkcs1.pem");
    let mut der = pem::decode(Path::new("x"), text.as_bytes()).unwrap()[0]
        .der
        .to_vec();
    der[100] ^= 0x55;
    let damaged = pem::encode("RSA PRIVATE KEY", &der).unwrap();
    let path = write_file(dir.path(), "damaged.pem", &damaged, 0o600);
    let error = load_err(&path);
    assert_eq!(
        error.to_string(),
        format!(
            "key file {}: the RSA private key is invalid",
            path.display()
        )
    );
    assert!(std::error::Error::source(&error).is_some());

    let big = vec![b'A'; secret_file::MAX_KEY_FILE_LEN + 1];
    let path = write_file(dir.path(), "big.pem", &big, 0o600);
    assert!(load_err(&path)
        .to_string()
        .contains("is larger than 65536 bytes"));

    let missing = dir.path().join("missing.pem");
    let error = load_err(&missing);
    assert!(matches!(&error, KeyError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound));
    assert_eq!(
        error.to_string(),
        format!("key file {}: open failed", missing.display())
    );
    assert_eq!(error.path(), Some(missing.as_path()));

    for not_a_file in [dir.path(), Path::new("/dev/null")] {
        let message = load_err(not_a_file).to_string();
        assert!(message.ends_with("is not a regular file"), "{message}");
    }
}

#[test]
fn files_group_or_others_can_access_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../testdata/ed25519.pem").as_bytes();
    for mode in [0o640, 0o604, 0o660, 0o644, 0o610, 0o601] {
        let path = write_file(dir.path(), &format!("{mode:o}.pem"), text, mode);
        let error = load_err(&path);
        assert!(matches!(error, KeyError::Permissions { mode: m, .. } if m == mode));
        assert_eq!(
            error.to_string(),
            format!(
                "key file {} has mode {mode:04o}: group or others can access it; \
                 run `chmod 600 {}` (and check who owns it)",
                path.display(),
                path.display()
            )
        );
    }
    for mode in [0o600, 0o400] {
        let path = write_file(dir.path(), &format!("{mode:o}.pem"), text, mode);
        FileKey::load(&path).unwrap();
    }
}

#[test]
fn symlinks_are_followed_and_the_target_mode_checked() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../testdata/ed25519.pem").as_bytes();
    let private = write_file(dir.path(), "private.pem", text, 0o600);
    let open = write_file(dir.path(), "open.pem", text, 0o644);
    let link = dir.path().join("link.pem");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let key = FileKey::load(&link).unwrap();
    assert_eq!(key.path(), link);

    let open_link = dir.path().join("open-link.pem");
    std::os::unix::fs::symlink(&open, &open_link).unwrap();
    assert!(matches!(
        load_err(&open_link),
        KeyError::Permissions { mode: 0o644, .. }
    ));
}

#[test]
fn check_expected_names_file_role_and_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../testdata/ed25519.pem").as_bytes();
    let path = write_file(dir.path(), "timestamp.pem", text, 0o600);
    let key = FileKey::load(&path).unwrap();
    let id = key.key_id().to_string();

    key.check_expected("timestamp", &["00".repeat(32), id.clone()])
        .unwrap();
    key.check_expected("timestamp", &[id.to_uppercase()])
        .unwrap();

    let other = "ab".repeat(32);
    let error = key
        .check_expected("timestamp", std::slice::from_ref(&other))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "key file {} for role timestamp has key id {id}, but the mirror root expects key id {other}",
            path.display()
        )
    );
    let two = key
        .check_expected("snapshot", &[other.clone(), "cd".repeat(32)])
        .unwrap_err()
        .to_string();
    assert!(two.ends_with(&format!(
        "expects one of the key ids {other}, {}",
        "cd".repeat(32)
    )));
    let none = key.check_expected("root", &[]).unwrap_err().to_string();
    assert!(none.ends_with("but the mirror root expects no key at all for it"));
}

/// No representation of the private key appears in `Debug`, `Display` or errors.
#[test]
fn debug_and_display_hold_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
        let path = dir.path().join(format!("{algorithm}.pem"));
        generate(algorithm, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let key = FileKey::load(&path).unwrap();

        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let base64 = body.concat();
        let der = STANDARD.decode(&base64).unwrap();
        // The private scalar or seed sits in the DER; look for any 8-byte window.
        let mut secrets: Vec<String> = body.iter().map(|l| l.to_string()).collect();
        secrets.push(base64.clone());
        for window in der.windows(8) {
            secrets.push(hex::encode(window));
            secrets.push(STANDARD.encode(window));
            secrets.push(format!("{window:?}").trim_matches(['[', ']']).to_owned());
        }

        let mut outputs = vec![
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{key}"),
            format!("{:?}", key.key_id()),
        ];
        let mismatch = key.check_expected("timestamp", &[]).unwrap_err();
        outputs.push(format!("{mismatch}"));
        outputs.push(format!("{mismatch:?}"));
        let chmod = {
            std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
            load_err(&path)
        };
        outputs.push(format!("{chmod:?}"));

        assert_eq!(
            format!("{key:?}"),
            format!(
                "FileKey {{ path: {path:?}, key_type: {:?}, key_id: {:?}, .. }}",
                key.key_type(),
                key.key_id().as_str()
            )
        );
        for output in &outputs {
            for secret in &secrets {
                assert!(
                    !output.contains(secret.as_str()),
                    "{output} contains {secret}"
                );
            }
        }
    }
}

#[tokio::test]
async fn key_source_hands_out_the_parsed_key_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../testdata/ec-p256.pem").as_bytes();
    let path = write_file(dir.path(), "snapshot.pem", text, 0o600);
    let key = FileKey::load(&path).unwrap();
    // The file is not read again: removing it changes nothing.
    std::fs::remove_file(&path).unwrap();
    let signer = KeySource::as_sign(&key).await.unwrap();
    assert_eq!(&signer.tuf_key(), key.public_key());
    let signature = signer.sign(MESSAGE, &SystemRandom::new()).await.unwrap();
    let (algorithm, public) = public_bytes(key.public_key());
    UnparsedPublicKey::new(algorithm, &public)
        .verify(MESSAGE, &signature)
        .unwrap();

    let error = KeySource::write(&key, "-----BEGIN PRIVATE KEY-----", "00")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("file keys are not written back"));
    assert!(!path.exists());
}

#[test]
fn generate_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "existing.pem", b"keep me", 0o600);
    let error = generate(Algorithm::Ed25519, &path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "key file {} already exists; refusing to overwrite it",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");

    let nowhere = dir.path().join("no-such-dir").join("k.pem");
    let error = generate(Algorithm::Ed25519, &nowhere).unwrap_err();
    assert!(matches!(
        error,
        KeyError::Io {
            action: "create",
            ..
        }
    ));
}

#[test]
fn algorithm_names() {
    for algorithm in Algorithm::ALL {
        assert_eq!(
            algorithm.to_string().parse::<Algorithm>().unwrap(),
            algorithm
        );
    }
    assert_eq!("RSA-3072".parse::<Algorithm>().unwrap(), Algorithm::Rsa3072);
    assert_eq!(
        "rsa".parse::<Algorithm>().unwrap_err().to_string(),
        "unknown key algorithm \"rsa\"; expected one of: ed25519, ecdsa-p256, rsa-3072"
    );
}
