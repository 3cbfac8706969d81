//! The daemon signing with keys on a SoftHSM2 token and (with the `aws-kms` feature) in
//! a KMS-compatible server, both started by the tests on this machine: the served tree
//! verifies with the engine and with python-tuf's ngclient; a restart checks each key
//! against the served root; a wrong PIN, a key the served root does not list and an
//! unreachable KMS stop start-up with the role and URI named; a KMS that goes away
//! mid-run fails the cycle and leaves the served state as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::MemLedger;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tuf_mirror_client::{FileTransport, MemoryStore, Updater, UpdaterConfig};
use tuf_mirror_config::Config;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::keyring::KeyringError;
use tuf_mirror_daemon::service::{display_chain, published_dir, Service, ServiceError};
use tuf_mirror_tests::softhsm::{write_private, SoftHsm, PIN};
use tuf_mirror_tests::{fixtures, peers};
use url::Url;

/// Writes `DIR/config.toml` for repository `r` over the upstream in `DIR/up`, with
/// these key URIs, and loads it.
fn config(dir: &Path, root: &[String], snapshot: &str, timestamp: &str) -> Config {
    let list = |uris: &[String]| {
        uris.iter()
            .map(|u| format!("{u:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        r#"[server]
state_dir = "{d}/state"
[[repository]]
name = "r"
upstream_metadata = "{d}/up/metadata"
upstream_targets = "{d}/up/targets"
upstream_root = "{d}/up/root.json"
root_keys = [{root}]
root_threshold = {threshold}
snapshot_keys = [{snapshot:?}]
timestamp_keys = [{timestamp:?}]
"#,
        d = dir.display(),
        root = list(root),
        threshold = root.len(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(path).unwrap()
}

fn open(config: &Config) -> Result<Service, ServiceError> {
    Service::open(
        config,
        Arc::new(MemLedger::default()),
        Arc::new(SystemClock),
    )
}

fn tree(config: &Config) -> PathBuf {
    published_dir(&config.server.state_dir).join("r")
}

/// A file key for `role` in `DIR/k`.
fn file_key(dir: &Path, name: &str, algorithm: tuf_mirror_keys::Algorithm) -> String {
    std::fs::create_dir_all(dir.join("k")).unwrap();
    let path = dir.join("k").join(format!("{name}.pem"));
    tuf_mirror_keys::generate(algorithm, &path).unwrap();
    format!("file:{}", path.display())
}

/// The engine, holding only the mirror's root version 1, refreshes and downloads
/// `targets`.
fn engine_downloads(tree: &Path, targets: &[&str], out: &Path) {
    let url = |p: &Path| Url::from_directory_path(p).unwrap();
    let mut cfg = UpdaterConfig::new(url(&tree.join("metadata")));
    cfg.targets_base = Some(url(&tree.join("targets")));
    let anchor = std::fs::read(tree.join("metadata/1.root.json")).unwrap();
    let mut u = Updater::init(
        cfg,
        Arc::new(FileTransport),
        Arc::new(MemoryStore::default()),
        &anchor,
    )
    .unwrap();
    u.refresh().unwrap();
    std::fs::create_dir_all(out).unwrap();
    for (i, t) in targets.iter().enumerate() {
        let info = u.target_info(t).unwrap().unwrap();
        u.download_target(&info, &out.join(i.to_string())).unwrap();
    }
}

/// python-tuf's ngclient, holding only the mirror's root version 1, downloads `targets`.
fn python_downloads(tree: &Path, targets: &[&str]) {
    let out = Command::new(peers::python())
        .arg(peers::script("tuf_client.py"))
        .args(["--metadata-url", "http://m.test/metadata/"])
        .args(["--targets-url", "http://m.test/targets/"])
        .arg("--root")
        .arg(tree.join("metadata/1.root.json"))
        .arg("--file-fetcher")
        .arg(tree)
        .args(targets)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.lines().filter(|l| l.starts_with("OK ")).count(),
        targets.len(),
        "{s}"
    );
}

/// The key object the served root lists for `role` (its only key).
fn served_key(tree: &Path, role: &str) -> serde_json::Value {
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("metadata/root.json")).unwrap()).unwrap();
    let id = root["signed"]["roles"][role]["keyids"][0].as_str().unwrap();
    root["signed"]["keys"][id].clone()
}

const TARGETS: [&str; 3] = ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_signed_on_softhsm_verifies_with_the_engine_and_python_tuf() {
    let hsm = SoftHsm::shared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::load("basic").unwrap(), dir);
    // Root: Ed25519 on the token; snapshot: RSA-3072; timestamp: ECDSA P-256.
    let cfg = config(
        dir,
        &[hsm.uri("ed25519")],
        &hsm.uri("rsa3072"),
        &hsm.uri("p256"),
    );
    let service = open(&cfg).unwrap();
    let o = service.sync("r").await.unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (Some(1), Some(1), 1));
    let o = service.resign("r").await.unwrap();
    assert_eq!(o.timestamp, 2);

    let tree = tree(&cfg);
    for (role, keytype, scheme) in [
        ("root", "ed25519", "ed25519"),
        ("snapshot", "rsa", "rsassa-pss-sha256"),
        ("timestamp", "ecdsa", "ecdsa-sha2-nistp256"),
    ] {
        let key = served_key(&tree, role);
        assert_eq!(key["keytype"], keytype, "{role}: {key}");
        assert_eq!(key["scheme"], scheme, "{role}: {key}");
    }
    let (t, out) = (tree.clone(), dir.join("engine"));
    tokio::task::spawn_blocking(move || {
        engine_downloads(&t, &TARGETS, &out);
        python_downloads(&t, &TARGETS);
    })
    .await
    .unwrap();

    // A restart checks the keys against the served root, and re-signing goes on.
    drop(service);
    let service = open(&cfg).unwrap();
    assert_eq!(service.resign("r").await.unwrap().timestamp, 3);
    let t = tree.clone();
    tokio::task::spawn_blocking(move || python_downloads(&t, &TARGETS))
        .await
        .unwrap();
}

#[test]
fn a_wrong_pin_stops_start_up_naming_role_uri_and_login() {
    let hsm = SoftHsm::shared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::load("basic").unwrap(), dir);
    let wrong = dir.join("wrong.pin");
    write_private(&wrong, "0000-not-the-pin\n");
    let root = file_key(dir, "root", tuf_mirror_keys::Algorithm::Ed25519);
    let snapshot = file_key(dir, "snapshot", tuf_mirror_keys::Algorithm::Ed25519);
    let cfg = config(dir, &[root], &snapshot, &hsm.other_token_uri(&wrong));
    let err = open(&cfg).err().expect("a wrong PIN must stop start-up");
    let text = display_chain(&err);
    assert!(text.contains("repository r: timestamp key"), "{text}");
    assert!(
        text.contains("pkcs11:token=tuf-mirror-other;object=p256"),
        "{text}"
    );
    assert!(text.contains("login failed"), "{text}");
    assert!(
        !text.contains("0000-not-the-pin") && !text.contains(PIN),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("0000-not-the-pin"));
    assert!(!tree(&cfg).join("metadata/timestamp.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_served_root_does_not_list_stops_start_up() {
    let hsm = SoftHsm::shared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::load("basic").unwrap(), dir);
    let root = file_key(dir, "root", tuf_mirror_keys::Algorithm::Ed25519);
    let snapshot = file_key(dir, "snapshot", tuf_mirror_keys::Algorithm::EcdsaP256);
    let cfg = config(
        dir,
        std::slice::from_ref(&root),
        &snapshot,
        &hsm.uri("p256"),
    );
    let service = open(&cfg).unwrap();
    service.sync("r").await.unwrap();
    drop(service);
    let served_ts = served_key(&tree(&cfg), "timestamp");

    // Another key for timestamp: refused with the role, the URI and both ids.
    let cfg = config(dir, &[root], &snapshot, &hsm.uri("rsa3072"));
    let err = open(&cfg)
        .err()
        .expect("an unlisted key must stop start-up");
    let text = display_chain(&err);
    assert!(
        matches!(
            &err,
            ServiceError::Keys(KeyringError::NotInServedRoot {
                role: "timestamp",
                ..
            })
        ),
        "{text}"
    );
    assert!(text.contains("object=rsa3072"), "{text}");
    let ServiceError::Keys(KeyringError::NotInServedRoot {
        keyid, expected, ..
    }) = &err
    else {
        unreachable!()
    };
    assert!(
        text.contains(keyid.as_str()) && text.contains(&expected[0]),
        "{text}"
    );
    assert_eq!(served_key(&tree(&cfg), "timestamp"), served_ts);
}

#[cfg(feature = "aws-kms")]
mod kms {
    use super::*;
    use tuf_mirror_tests::builder::{RepoBuilder, TestKey, TARGETS as TARGETS_ROLE};
    use tuf_mirror_tests::kms::{free_port, KmsServer};

    /// An upstream with 64 hashed bins: its mirror snapshot is over 4 KiB.
    fn big_upstream(dir: &Path) {
        let mut repo = RepoBuilder::new();
        repo.add_target(TARGETS_ROLE, "hello.txt", b"hello".to_vec());
        let bins = repo.add_hashed_bins(
            TARGETS_ROLE,
            "bin-",
            64,
            [TestKey::ed25519_from_label("bins")],
            1,
        );
        for p in ["packages/alpha.txt", "packages/beta.txt"] {
            repo.add_target(&bins.role_for(p), p, p.as_bytes().to_vec());
        }
        common::write_upstream(&repo.publish(), dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mirror_signed_in_kms_verifies_and_a_kms_outage_publishes_nothing() {
        let mut server = KmsServer::start();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        big_upstream(dir);
        let root = file_key(dir, "root", tuf_mirror_keys::Algorithm::Ed25519);
        // Snapshot: ECDSA P-256 (over 4 KiB: signed as a digest); timestamp: RSA-3072
        // through tough-kms.
        let snapshot = server.uri(&server.create_key("ECC_NIST_P256"));
        let timestamp = server.uri(&server.create_key("RSA_3072"));
        let cfg = config(dir, &[root], &snapshot, &timestamp);
        let c = cfg.clone();
        let service = tokio::task::spawn_blocking(move || open(&c))
            .await
            .unwrap()
            .unwrap();
        service.sync("r").await.unwrap();
        assert_eq!(service.resign("r").await.unwrap().timestamp, 2);

        let tree = tree(&cfg);
        let snap: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tree.join("metadata/1.snapshot.json")).unwrap())
                .unwrap();
        let canonical = olpc_cjson_len(&snap["signed"]);
        assert!(
            canonical > 4096,
            "snapshot signed part is {canonical} bytes"
        );
        assert_eq!(served_key(&tree, "snapshot")["keytype"], "ecdsa");
        assert_eq!(served_key(&tree, "timestamp")["keytype"], "rsa");
        let targets = ["hello.txt", "packages/alpha.txt", "packages/beta.txt"];
        let (t, out) = (tree.clone(), dir.join("engine"));
        tokio::task::spawn_blocking(move || {
            engine_downloads(&t, &targets, &out);
            python_downloads(&t, &targets);
        })
        .await
        .unwrap();

        // The KMS goes away: the cycle fails naming role and URI; nothing changes.
        server.stop();
        let before = std::fs::read(tree.join("metadata/timestamp.json")).unwrap();
        let err = service.resign("r").await.unwrap_err();
        let text = display_chain(&err);
        assert!(text.contains("signing timestamp version 3"), "{text}");
        assert!(text.contains(&timestamp), "{text}");
        assert_eq!(
            std::fs::read(tree.join("metadata/timestamp.json")).unwrap(),
            before
        );
        assert!(!tree.join("metadata/3.timestamp.json").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_kms_leaves_the_service_up_and_each_cycle_names_role_and_uri() {
        tuf_mirror_tests::kms::set_test_credentials();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        common::write_upstream(&fixtures::load("basic").unwrap(), dir);
        let root = file_key(dir, "root", tuf_mirror_keys::Algorithm::Ed25519);
        let timestamp = file_key(dir, "timestamp", tuf_mirror_keys::Algorithm::Ed25519);
        let snapshot = format!(
            "awskms:///alias/snapshot?region=us-east-1&endpoint=http://127.0.0.1:{}",
            free_port()
        );
        let cfg = config(dir, &[root], &snapshot, &timestamp);
        // Start-up goes on (the published tree, if any, is served as it stands)...
        let c = cfg.clone();
        let service = tokio::task::spawn_blocking(move || open(&c))
            .await
            .unwrap()
            .expect("a KMS that does not answer must not stop the service");
        // ...and every cycle tries the key again, failing with the role and the URI.
        for _ in 0..2 {
            let err = service.sync("r").await.unwrap_err();
            let text = display_chain(&err);
            assert!(text.contains("repository r: snapshot key"), "{text}");
            assert!(text.contains("awskms:///alias/snapshot"), "{text}");
            assert!(text.contains("GetPublicKey failed"), "{text}");
        }
        assert!(!tree(&cfg).join("metadata/timestamp.json").exists());
    }

    /// The length of the canonical JSON of `v` (what the signature covers).
    fn olpc_cjson_len(v: &serde_json::Value) -> usize {
        tuf_mirror_client::canonical::canonicalize(&v.to_string())
            .unwrap()
            .len()
    }
}

#[cfg(not(feature = "aws-kms"))]
#[test]
fn awskms_uris_need_the_aws_kms_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::load("basic").unwrap(), dir);
    let root = file_key(dir, "root", tuf_mirror_keys::Algorithm::Ed25519);
    let timestamp = file_key(dir, "timestamp", tuf_mirror_keys::Algorithm::Ed25519);
    let cfg = config(
        dir,
        &[root],
        "awskms:///alias/snapshot?region=eu-west-1",
        &timestamp,
    );
    let text = display_chain(&open(&cfg).err().expect("refused"));
    assert!(text.contains("repository r: snapshot key"), "{text}");
    assert!(text.contains("awskms:///alias/snapshot"), "{text}");
    assert!(text.contains("aws-kms feature"), "{text}");
}
