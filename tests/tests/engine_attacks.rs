//! The attack matrix of the verification engine: each test serves a repository built by
//! the independent builder with one thing wrong, and asserts the typed error (or, for the
//! recovery cases, the success) that the check being tested produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{config, Client, Mem, NOW};
use serde_json::{json, Value};
use tuf_mirror_client::{
    DelegationMode, Error, ErrorKind, ExpiryPolicy, RoleClass, Updater, ValidationTime,
};
use tuf_mirror_tests::builder::{
    DelegatedPaths, Delegation, KeyKind, RepoBuilder, Sig, TestKey, EXPIRED, ROOT, SNAPSHOT,
    TARGETS, TIMESTAMP,
};
use tuf_mirror_tests::fixtures;

use DelegationMode::{All, Lazy};

fn key(label: &str) -> TestKey {
    TestKey::ed25519_from_label(label)
}

fn version_err(e: &Error) -> (&str, &'static str) {
    match e {
        Error::Version { role, reason, .. } => (role.as_str(), *reason),
        other => panic!("expected a version error, got {other:?}"),
    }
}

/// Publishes `repo`, refreshes a new client on it, and returns the client.
fn client_on(repo: &RepoBuilder, mode: DelegationMode) -> Client {
    let mut c = Client::new(&repo.publish(), mode);
    c.refresh().unwrap();
    c
}

fn bump_ts_snap(repo: &mut RepoBuilder) {
    repo.bump_version(SNAPSHOT);
    repo.bump_version(TIMESTAMP);
}

// ----- the happy paths the attacks start from ------------------------------------------

#[test]
fn basic_fixture_loads_lazily_and_fully_with_and_without_consistent_snapshots() {
    for (name, consistent) in [("basic", true), ("basic-no-consistent", false)] {
        let repo = fixtures::load(name).unwrap();
        let mut c = Client::new(&repo, Lazy);
        c.refresh().unwrap();
        let info = c
            .updater
            .target_info("releases/app-1.0.tar.gz")
            .unwrap()
            .unwrap();
        assert_eq!(info.role, "releases");
        let info = c.updater.target_info("packages/beta.txt").unwrap().unwrap();
        assert!(info.role.starts_with("bin-"), "{}", info.role);
        let reqs = c.mem.take_requests();
        let snap = if consistent {
            "metadata/1.snapshot.json"
        } else {
            "metadata/snapshot.json"
        };
        assert!(reqs.iter().any(|r| r == snap), "{name}: {reqs:?}");
        // Lazy: only the bins the lookups needed.
        assert!(
            reqs.iter().filter(|r| r.contains("bin-")).count() == 1,
            "{reqs:?}"
        );

        let mut all = Client::new(&repo, All);
        all.refresh().unwrap();
        assert_eq!(all.updater.roles().count(), 1 + 1 + 16, "{name}");
        let total: usize = all.updater.roles().map(|r| r.targets.len()).sum();
        assert_eq!(total, 2 + 2 + 3);
    }
}

#[test]
fn target_download_checks_length_and_every_hash() {
    let mut repo = fixtures::basic();
    repo.set_target_sha512(true);
    repo.add_target(TARGETS, "two-hashes.bin", b"0123456789".to_vec());
    let mut c = client_on(&repo, Lazy);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let info = c.updater.target_info("two-hashes.bin").unwrap().unwrap();
    assert_eq!(info.hashes.0.len(), 2);
    c.updater.download_target(&info, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");
    assert!(Updater::has_target(&info, &dest));

    // Same length, other bytes: the hash check refuses them and the old file stays.
    let mut bad = repo.clone();
    bad.set_target_bytes(TARGETS, "two-hashes.bin", b"0123456780".to_vec());
    c.mem.serve(&bad.publish());
    let e = c.updater.download_target(&info, &dest).unwrap_err();
    assert!(matches!(e, Error::Integrity { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");

    // One byte more than signed.
    bad.set_target_bytes(TARGETS, "two-hashes.bin", b"0123456789X".to_vec());
    c.mem.serve(&bad.publish());
    let e = c
        .updater
        .download_target(&info, &dir.path().join("o2"))
        .unwrap_err();
    assert!(
        e.to_string().contains("longer than the signed 10 bytes"),
        "{e}"
    );
    assert!(!dir.path().join("o2").exists());
}

// ----- rollback -------------------------------------------------------------------------

#[test]
fn timestamp_rollback_is_refused() {
    let mut repo = fixtures::basic();
    let old = repo.publish();
    repo.bump_version(TIMESTAMP);
    let mut c = client_on(&repo, Lazy);
    c.mem.serve(&old);
    let e = c.refresh().unwrap_err();
    assert_eq!(version_err(&e), ("timestamp", "timestamp rollback"));
    // Also from the stored state after a restart.
    c.restart();
    let e = c.refresh().unwrap_err();
    assert_eq!(version_err(&e), ("timestamp", "timestamp rollback"));
}

#[test]
fn snapshot_rollback_is_refused() {
    let mut repo = fixtures::basic();
    bump_ts_snap(&mut repo);
    let mut c = client_on(&repo, Lazy);
    // A fresh timestamp that lists the older snapshot.
    repo.set_version(SNAPSHOT, 1);
    repo.set_version(TIMESTAMP, 3);
    c.mem.serve(&repo.publish());
    let e = c.refresh().unwrap_err();
    assert_eq!(
        version_err(&e),
        ("snapshot", "timestamp lists an older snapshot")
    );
}

#[test]
fn targets_and_delegated_rollback_are_refused() {
    for role in [TARGETS, "releases"] {
        let mut repo = fixtures::basic();
        repo.bump_version(role);
        bump_ts_snap(&mut repo);
        let mut c = client_on(&repo, Lazy);
        repo.set_version(role, 1);
        bump_ts_snap(&mut repo);
        c.mem.serve(&repo.publish());
        let e = c.refresh().unwrap_err();
        assert_eq!(
            version_err(&e),
            (role, "snapshot lists an older version (rollback)"),
            "{role}"
        );
    }
}

#[test]
fn role_removed_from_snapshot_is_refused() {
    let mut repo = fixtures::basic();
    let mut c = client_on(&repo, Lazy);
    repo.patch_signed(SNAPSHOT, |s| {
        s["meta"].as_object_mut().unwrap().remove("releases.json");
    });
    bump_ts_snap(&mut repo);
    c.mem.serve(&repo.publish());
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::NotInSnapshot { role, reason: "removed from snapshot", .. } if role == "releases"),
        "{e:?}"
    );
}

#[test]
fn root_chain_must_be_consecutive() {
    let mut repo = fixtures::basic();
    repo.rotate_root(); // v2
                        // v2's file claims version 3.
    repo.patch_signed(ROOT, |s| s["version"] = json!(3));
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert_eq!(version_err(&e), ("root", "root chain is not consecutive"));
}

// ----- freeze ---------------------------------------------------------------------------

#[test]
fn expired_roles_are_refused_and_grace_is_bounded_per_class() {
    for role in [ROOT, TIMESTAMP, SNAPSHOT, TARGETS, "releases"] {
        let mut repo = fixtures::basic();
        repo.set_expires(role, "2026-05-31T00:00:00Z"); // a day before NOW
        let published = repo.publish();
        let mut c = Client::new(&published, Lazy);
        let e = c
            .refresh()
            .and_then(|()| c.updater.target_info("releases/app-1.0.tar.gz").map(|_| ()))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Expired { role: r, grace_secs: 0, .. } if r == role),
            "{role}: {e:?}"
        );

        // A grace of two days for that class accepts it; one for another class does not.
        let class = match role {
            ROOT => RoleClass::Root,
            TIMESTAMP => RoleClass::Timestamp,
            SNAPSHOT => RoleClass::Snapshot,
            _ => RoleClass::Targets,
        };
        let two_days = std::time::Duration::from_secs(2 * 86400);
        let mut cfg = config(Lazy);
        cfg.expiry = ExpiryPolicy::strict()
            .dangerous_with_grace(class, two_days)
            .unwrap();
        let mut c = Client::with_config(&published, cfg);
        c.refresh().unwrap();
        assert!(c
            .updater
            .target_info("releases/app-1.0.tar.gz")
            .unwrap()
            .is_some());

        let other = if class == RoleClass::Timestamp {
            RoleClass::Snapshot
        } else {
            RoleClass::Timestamp
        };
        let mut cfg = config(Lazy);
        cfg.expiry = ExpiryPolicy::strict()
            .dangerous_with_grace(other, two_days)
            .unwrap();
        let mut c = Client::with_config(&published, cfg);
        assert!(c
            .refresh()
            .and_then(|()| c.updater.target_info("releases/app-1.0.tar.gz").map(|_| ()))
            .is_err());

        // Half a day of grace is not enough for a day late.
        let mut cfg = config(Lazy);
        cfg.expiry = ExpiryPolicy::strict()
            .dangerous_with_grace(class, std::time::Duration::from_secs(43200))
            .unwrap();
        let mut c = Client::with_config(&published, cfg);
        let e = c
            .refresh()
            .and_then(|()| c.updater.target_info("releases/app-1.0.tar.gz").map(|_| ()))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Expired {
                    grace_secs: 43200,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn an_expired_timestamp_is_not_stored() {
    let mut repo = fixtures::basic();
    let mut c = client_on(&repo, Lazy);
    let before = c.updater.timestamp().unwrap().version;
    repo.bump_version(TIMESTAMP);
    repo.set_expires(TIMESTAMP, EXPIRED);
    c.mem.serve(&repo.publish());
    assert!(matches!(c.refresh(), Err(Error::Expired { .. })));
    c.restart();
    repo.set_expires(TIMESTAMP, "2099-01-01T00:00:00Z");
    repo.set_version(TIMESTAMP, before);
    c.mem.serve(&repo.publish());
    // The stored timestamp is still version `before`: serving it again is no rollback.
    c.refresh().unwrap();
}

// ----- mix and match --------------------------------------------------------------------

#[test]
fn mix_and_match_of_delegated_roles_is_refused() {
    let mut repo = fixtures::basic();
    let v1 = repo.publish();
    repo.add_target("releases", "releases/app-2.0.tar.gz", b"2.0".to_vec());
    repo.bump_version("releases");
    bump_ts_snap(&mut repo);
    let mut v2 = repo.publish();
    // The new snapshot, with the old releases bytes under the new name.
    v2.insert(
        "metadata/2.releases.json",
        v1.get("metadata/1.releases.json").unwrap().to_vec(),
    );
    let mut c = Client::new(&v2, Lazy);
    c.refresh().unwrap();
    let e = c
        .updater
        .target_info("releases/app-2.0.tar.gz")
        .unwrap_err();
    // Snapshot lists hashes and length here, so the bytes are refused first.
    assert!(
        matches!(&e, Error::Integrity { what, .. } if what == "releases"),
        "{e:?}"
    );

    // Without hashes in snapshot, the version inside catches it.
    let mut repo = fixtures::basic();
    repo.set_snapshot_meta(tuf_mirror_tests::builder::MetaOptions {
        length: false,
        hashes: false,
    });
    let v1 = repo.publish();
    repo.bump_version("releases");
    bump_ts_snap(&mut repo);
    let mut v2 = repo.publish();
    v2.insert(
        "metadata/2.releases.json",
        v1.get("metadata/1.releases.json").unwrap().to_vec(),
    );
    let mut c = Client::new(&v2, Lazy);
    c.refresh().unwrap();
    let e = c
        .updater
        .target_info("releases/app-1.0.tar.gz")
        .unwrap_err();
    assert_eq!(
        version_err(&e),
        ("releases", "differs from the version snapshot lists")
    );
}

#[test]
fn snapshot_must_match_timestamp() {
    let mut repo = fixtures::basic();
    repo.set_timestamp_meta(tuf_mirror_tests::builder::MetaOptions {
        length: false,
        hashes: false,
    });
    repo.bump_version(SNAPSHOT);
    let mut published = repo.publish();
    // 2.snapshot.json holds version 1.
    let mut one = fixtures::basic();
    one.set_timestamp_meta(tuf_mirror_tests::builder::MetaOptions {
        length: false,
        hashes: false,
    });
    published.insert(
        "metadata/2.snapshot.json",
        one.publish()
            .get("metadata/1.snapshot.json")
            .unwrap()
            .to_vec(),
    );
    let mut c = Client::new(&published, Lazy);
    let e = c.refresh().unwrap_err();
    assert_eq!(
        version_err(&e),
        (
            "snapshot",
            "snapshot differs from the version timestamp lists"
        )
    );

    // With hashes in timestamp, the bytes are refused before parsing.
    let mut repo = fixtures::basic();
    repo.bump_version(SNAPSHOT);
    let mut published = repo.publish();
    published.insert(
        "metadata/2.snapshot.json",
        fixtures::basic()
            .publish()
            .get("metadata/1.snapshot.json")
            .unwrap()
            .to_vec(),
    );
    let mut c = Client::new(&published, Lazy);
    assert!(matches!(c.refresh(), Err(Error::Integrity { .. })));
}

// ----- signatures -----------------------------------------------------------------------

fn threshold_err(e: &Error) -> (&str, usize, u64) {
    match e {
        Error::Threshold {
            role,
            valid,
            threshold,
            ..
        } => (role.as_str(), *valid, *threshold),
        other => panic!("expected a threshold error, got {other:?}"),
    }
}

#[test]
fn signatures_below_threshold_are_refused() {
    let mut repo = fixtures::basic();
    repo.set_role_keys(TARGETS, [key("t1"), key("t2")], 2);
    repo.set_signers(TARGETS, vec![Sig::Key(key("t1"))]);
    let mut c = Client::new(&repo.publish(), Lazy);
    assert_eq!(threshold_err(&c.refresh().unwrap_err()), ("targets", 1, 2));

    repo.set_signers(TARGETS, vec![Sig::Key(key("t1")), Sig::Corrupt(key("t2"))]);
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert_eq!(threshold_err(&e), ("targets", 1, 2));
    assert!(
        e.to_string().contains(key("t2").key_id()),
        "names the failing key: {e}"
    );

    repo.reset_signers(TARGETS);
    client_on(&repo, Lazy);
}

#[test]
fn duplicate_signatures_by_one_key_do_not_reach_a_threshold() {
    let mut repo = fixtures::basic();
    repo.set_role_keys(SNAPSHOT, [key("s1"), key("s2")], 2);
    repo.set_signers(SNAPSHOT, vec![Sig::Key(key("s1")), Sig::Key(key("s1"))]);
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert!(e.to_string().contains("two signatures by key id"), "{e}");

    // The same public key listed under a second key id counts once.
    let s1 = key("s1");
    let alias = s1.with_key_id("aa11");
    let mut repo = fixtures::basic();
    repo.set_role_keys(SNAPSHOT, [s1.clone(), alias.clone()], 2);
    repo.set_signers(
        SNAPSHOT,
        vec![
            Sig::Key(s1.clone()),
            Sig::AsKeyId(s1.clone(), "aa11".into()),
        ],
    );
    let mut c = Client::new(&repo.publish(), Lazy);
    assert_eq!(threshold_err(&c.refresh().unwrap_err()), ("snapshot", 1, 2));

    // A key id listed twice in a role is malformed.
    let mut repo = fixtures::basic();
    repo.patch_signed(ROOT, move |s| {
        let ids = s["roles"]["snapshot"]["keyids"].clone();
        let id = ids[0].clone();
        s["roles"]["snapshot"]["keyids"] = json!([id.clone(), id]);
        s["roles"]["snapshot"]["threshold"] = json!(2);
    });
    let published = repo.publish();
    let e = tuf_mirror_client::Updater::init(
        config(Lazy),
        std::sync::Arc::new(Mem::new(&published)),
        std::sync::Arc::new(tuf_mirror_client::MemoryStore::default()),
        published.trust_anchor(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
}

#[test]
fn a_signature_by_a_key_not_in_the_role_does_not_count() {
    let mut repo = fixtures::basic();
    // The timestamp key is in root, but not a targets key.
    let ts_key = repo.role_keys(TIMESTAMP)[0].clone();
    repo.set_signers(TARGETS, vec![Sig::Key(ts_key)]);
    let mut c = Client::new(&repo.publish(), Lazy);
    assert_eq!(threshold_err(&c.refresh().unwrap_err()), ("targets", 0, 1));

    // A delegated role signed by the top-level targets key instead of its own.
    let mut repo = fixtures::basic();
    let t_key = repo.role_keys(TARGETS)[0].clone();
    repo.set_signers("releases", vec![Sig::Key(t_key)]);
    let mut c = client_on(&repo, Lazy);
    let e = c
        .updater
        .target_info("releases/app-1.0.tar.gz")
        .unwrap_err();
    assert_eq!(threshold_err(&e), ("releases", 0, 1));
}

#[test]
fn root_update_needs_old_and_new_thresholds() {
    // Signed only by the new key: the old root's threshold is missed.
    let mut repo = fixtures::basic();
    repo.rotate_role_keys(ROOT, [key("root-new")], 1);
    repo.set_signers(ROOT, vec![Sig::Key(key("root-new"))]);
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::Threshold { role, delegator, .. } if role == "root" && delegator == "root"),
        "{e:?}"
    );

    // Signed only by the old key: the new root's own threshold is missed.
    let mut repo = fixtures::basic();
    let old = repo.role_keys(ROOT)[0].clone();
    repo.rotate_role_keys(ROOT, [key("root-new")], 1);
    repo.set_signers(ROOT, vec![Sig::Key(old)]);
    let mut c = Client::new(&repo.publish(), Lazy);
    assert_eq!(threshold_err(&c.refresh().unwrap_err()), ("root", 0, 1));

    // Both: accepted, and the chain is followed to the end.
    let mut repo = fixtures::basic();
    repo.rotate_role_keys(ROOT, [key("root-new")], 1);
    repo.rotate_root();
    let c = client_on(&repo, Lazy);
    assert_eq!(c.updater.root().version(), 3);
}

#[test]
fn unsupported_key_types_load_but_never_verify() {
    // An extra root key of an unknown type is harmless.
    let mut repo = fixtures::basic();
    let odd = key("odd").with_public_json(
        json!({"keytype": "sphincs", "scheme": "sphincs-shake", "keyval": {"public": "00"}}),
    );
    repo.add_role_key(TIMESTAMP, &odd);
    client_on(&repo, Lazy);

    // A role whose only key is of an unknown type cannot be satisfied.
    let mut repo = fixtures::basic();
    repo.set_role_keys(TIMESTAMP, [odd.clone()], 1);
    repo.set_signers(
        TIMESTAMP,
        vec![Sig::AsKeyId(key("odd"), odd.key_id().to_owned())],
    );
    let mut c = Client::new(&repo.publish(), Lazy);
    assert_eq!(
        threshold_err(&c.refresh().unwrap_err()),
        ("timestamp", 0, 1)
    );
}

#[test]
fn every_supported_key_type_verifies() {
    let mut repo = fixtures::basic();
    repo.set_role_keys(ROOT, [TestKey::generate(KeyKind::Rsa3072)], 1);
    repo.set_role_keys(TIMESTAMP, [TestKey::generate(KeyKind::EcdsaP256)], 1);
    repo.set_role_keys(SNAPSHOT, [TestKey::generate(KeyKind::EcdsaP384)], 1);
    repo.set_role_keys(TARGETS, [TestKey::generate(KeyKind::Rsa2048)], 1);
    let c = client_on(&repo, All);
    assert_eq!(c.updater.roles().count(), 18);
}

// ----- fast-forward recovery -----------------------------------------------------------

#[test]
fn fast_forward_recovery_after_a_timestamp_key_rotation() {
    let mut repo = fixtures::basic();
    repo.set_version(TIMESTAMP, 50);
    let mut c = client_on(&repo, Lazy);
    // The repository rotates the timestamp key and starts timestamp over at 1.
    repo.rotate_role_keys(TIMESTAMP, [key("timestamp-2")], 1);
    repo.set_version(TIMESTAMP, 1);
    let published = repo.publish();
    // Without the key rotation, the same thing is a rollback.
    let mut no_rotation = fixtures::basic();
    no_rotation.set_version(TIMESTAMP, 1);
    c.mem.serve(&no_rotation.publish());
    assert!(matches!(c.refresh(), Err(Error::Version { .. })));
    // In the same process and after a restart.
    c.mem.serve(&published);
    c.refresh().unwrap();
    assert_eq!(c.updater.timestamp().unwrap().version, 1);
    let mut c2 = Client::new(&fixtures::basic().publish(), Lazy);
    let mut repo50 = fixtures::basic();
    repo50.set_version(TIMESTAMP, 50);
    c2.mem.serve(&repo50.publish());
    c2.refresh().unwrap();
    c2.mem.serve(&published);
    c2.restart();
    c2.refresh().unwrap();
    assert_eq!(c2.updater.timestamp().unwrap().version, 1);
}

#[test]
fn fast_forward_recovery_after_a_snapshot_key_rotation() {
    let mut repo = fixtures::basic();
    repo.set_version(SNAPSHOT, 40);
    repo.bump_version(TIMESTAMP);
    let mut c = client_on(&repo, Lazy);
    repo.rotate_role_keys(SNAPSHOT, [key("snapshot-2")], 1);
    repo.set_version(SNAPSHOT, 1);
    repo.bump_version(TIMESTAMP);
    // Timestamp lists snapshot 1 < 40: still a rollback while the timestamp key is the same.
    c.mem.serve(&repo.publish());
    let e = c.refresh().unwrap_err();
    assert_eq!(
        version_err(&e),
        ("snapshot", "timestamp lists an older snapshot")
    );
}

// ----- endless data, malformed input ----------------------------------------------------

#[test]
fn endless_data_stops_at_the_limit() {
    use tuf_mirror_tests::server::{Behavior, TestServer};
    let repo = fixtures::basic().publish();
    let server = TestServer::start(repo.shared());
    server.set_behavior("metadata/timestamp.json", Behavior::EndlessBody);
    let mut cfg = config(Lazy);
    cfg.metadata_base = format!("{}metadata/", server.url()).parse().unwrap();
    let store = std::sync::Arc::new(tuf_mirror_client::MemoryStore::default());
    let mut u = Updater::init(
        cfg.clone(),
        std::sync::Arc::new(tuf_mirror_client::HttpTransport::default()),
        store,
        repo.trust_anchor(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = u.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { limit, .. } if *limit == cfg.limits.timestamp),
        "{e:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // A metadata file longer than snapshot says is cut at that length.
    let mut repo = fixtures::basic();
    let published = repo.publish();
    let mut bytes = published.get("metadata/1.releases.json").unwrap().to_vec();
    bytes.extend_from_slice(&[b' '; 4096]);
    repo.set_raw_bytes("releases", None);
    let mut c = client_on(&repo, Lazy);
    c.mem.put("metadata/1.releases.json", bytes);
    let e = c
        .updater
        .target_info("releases/app-1.0.tar.gz")
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[test]
fn a_listed_length_never_raises_the_limit() {
    use tuf_mirror_tests::server::{Behavior, TestServer};
    let mut repo = fixtures::basic();
    repo.patch_signed(SNAPSHOT, |s| {
        s["meta"]["releases.json"]["length"] = json!(1u64 << 40);
        s["meta"]["releases.json"]
            .as_object_mut()
            .unwrap()
            .remove("hashes");
    });
    let published = repo.publish();
    let server = TestServer::start(published.shared());
    server.set_behavior("metadata/1.releases.json", Behavior::EndlessBody);
    let mut cfg = config(Lazy);
    cfg.metadata_base = format!("{}metadata/", server.url()).parse().unwrap();
    cfg.limits.targets = 100_000;
    let mut u = Updater::init(
        cfg,
        std::sync::Arc::new(tuf_mirror_client::HttpTransport::default()),
        std::sync::Arc::new(tuf_mirror_client::MemoryStore::default()),
        published.trust_anchor(),
    )
    .unwrap();
    u.refresh().unwrap();
    let e = u.target_info("releases/app-1.0.tar.gz").unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { limit: 100_000, .. }),
        "{e:?}"
    );
}

#[test]
fn malformed_metadata_is_a_typed_error() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"{not json".to_vec()),
        ("not utf-8", vec![0xff, 0xfe, b'{', b'}']),
        ("array", b"[]".to_vec()),
        ("no signatures", br#"{"signed": {}}"#.to_vec()),
        ("wrong type", br#"{"signed": {"_type": "snapshot", "spec_version": "1.0.31", "version": 2, "expires": "2099-01-01T00:00:00Z", "meta": {}}, "signatures": []}"#.to_vec()),
        ("string version", br#"{"signed": {"_type": "timestamp", "spec_version": "1.0.31", "version": "2", "expires": "2099-01-01T00:00:00Z", "meta": {}}, "signatures": []}"#.to_vec()),
        ("float", br#"{"signed": {"_type": "timestamp", "spec_version": "1.0.31", "version": 2, "expires": "2099-01-01T00:00:00Z", "meta": {"snapshot.json": {"version": 1.5}}}, "signatures": []}"#.to_vec()),
        ("bad date", br#"{"signed": {"_type": "timestamp", "spec_version": "1.0.31", "version": 2, "expires": "tomorrow", "meta": {}}, "signatures": []}"#.to_vec()),
        ("spec 2", br#"{"signed": {"_type": "timestamp", "spec_version": "2.0.0", "version": 2, "expires": "2099-01-01T00:00:00Z", "meta": {}}, "signatures": []}"#.to_vec()),
        ("deep", format!("{}{}", "[".repeat(10000), "]".repeat(10000)).into_bytes()),
    ];
    let repo = fixtures::basic().publish();
    for (what, bytes) in cases {
        let mut c = Client::new(&repo, Lazy);
        c.mem.put("metadata/timestamp.json", bytes);
        let e = c.refresh().unwrap_err();
        assert!(
            matches!(&e, Error::Malformed { role, .. } if role == "timestamp"),
            "{what}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Security, "{what}");
    }
}

#[test]
fn duplicate_json_keys_are_refused() {
    // Two "version" members: which one counts would depend on the parser.
    let mut repo = fixtures::basic();
    let published = repo.publish();
    let text =
        String::from_utf8(published.get("metadata/timestamp.json").unwrap().to_vec()).unwrap();
    let forged = text.replacen("\"version\": 1", "\"version\": 1, \"version\": 7", 1);
    assert_ne!(text, forged);
    repo.set_raw_bytes(TIMESTAMP, Some(forged.into_bytes()));
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert!(e.to_string().contains("duplicate key"), "{e}");
}

// ----- hostile names --------------------------------------------------------------------

#[test]
fn hostile_role_names_are_refused_or_encoded() {
    for (name, refused) in [
        ("../escape", false),
        ("/absolute", false),
        ("a\u{0}b", true),
        ("line\nbreak", true),
        (&*"x".repeat(300), true),
    ] {
        let mut repo = fixtures::basic();
        repo.add_delegation(
            TARGETS,
            Delegation::new(name, [key("h")], DelegatedPaths::paths(&["h/*"])),
        );
        repo.add_target(name, "h/file", b"h".to_vec());
        let mut c = client_on(&repo, Lazy);
        let r = c.updater.target_info("h/file");
        if refused {
            let e = r.unwrap_err();
            assert!(
                matches!(&e, Error::BadName { what: "role", .. }),
                "{name:?}: {e:?}"
            );
        } else {
            assert_eq!(r.unwrap().unwrap().role, name);
            let enc = tuf_mirror_client::names::encode_role(name);
            assert!(!enc.contains('/'));
            assert!(c
                .mem
                .take_requests()
                .contains(&format!("metadata/1.{enc}.json")));
        }
    }
    // Delegating to a top-level name makes the delegating role malformed.
    let mut repo = fixtures::basic();
    repo.patch_signed(TARGETS, |s| {
        s["delegations"]["roles"][0]["name"] = json!("snapshot");
    });
    let mut c = Client::new(&repo.publish(), Lazy);
    let e = c.refresh().unwrap_err();
    assert!(e.to_string().contains("top-level role"), "{e}");
}

#[test]
fn hostile_target_paths_are_refused() {
    let long = "d/".repeat(2100) + "f";
    let seg = "x".repeat(200);
    for path in [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "nul\u{0}",
        "back\\slash",
        &long,
        &seg,
    ] {
        let mut repo = fixtures::basic();
        repo.patch_signed(TARGETS, {
            let path = path.to_owned();
            move |s| {
                s["targets"][path.as_str()] = json!({"length": 1, "hashes": {"sha256": "00"}});
            }
        });
        // A mirror loading everything refuses the whole role.
        let mut c = Client::new(&repo.publish(), All);
        let e = c.refresh().unwrap_err();
        assert!(
            matches!(&e, Error::BadName { what: "target", .. }),
            "{path:?}: {e:?}"
        );
        // A client refuses to look it up.
        let mut c = client_on(&repo, Lazy);
        let e = c.updater.target_info(path).unwrap_err();
        assert!(
            matches!(&e, Error::BadName { what: "target", .. }),
            "{path:?}: {e:?}"
        );
    }
}

#[test]
fn a_target_path_cannot_send_the_download_to_another_host() {
    let mut repo = fixtures::basic();
    repo.add_target(TARGETS, "https:evil.example/x", b"x".to_vec());
    let mut c = client_on(&repo, Lazy);
    let info = c
        .updater
        .target_info("https:evil.example/x")
        .unwrap()
        .unwrap();
    let url = c.updater.target_url(&info).unwrap();
    assert_eq!(url.host_str(), Some("repo.test"), "{url}");
    assert!(
        url.path().starts_with("/targets/https%3Aevil.example/"),
        "{url}"
    );
}

// ----- where tough goes wrong -----------------------------------------------------------

#[test]
fn unrecognized_fields_in_delegated_role_entries_are_signed_over() {
    let mut repo = fixtures::basic();
    repo.patch_signed(TARGETS, |s| {
        for r in s["delegations"]["roles"].as_array_mut().unwrap() {
            r["x-vendor-field"] = json!({"note": "allowed by the specification"});
        }
        s["delegations"]["x-extra"] = json!(1);
    });
    let c = client_on(&repo, All);
    assert_eq!(c.updater.roles().count(), 18);
    // And the unknown field is covered by the signature: changing it after signing fails.
    let mut repo2 = repo.clone();
    repo2.patch_envelope(TARGETS, |e| {
        e["signed"]["delegations"]["roles"][0]["x-vendor-field"] = json!("changed");
    });
    let mut c = Client::new(&repo2.publish(), Lazy);
    assert_eq!(threshold_err(&c.refresh().unwrap_err()).0, "targets");
}

#[test]
fn a_delegated_role_missing_from_snapshot_fails_for_that_role_only() {
    let mut repo = fixtures::basic();
    repo.patch_signed(SNAPSHOT, |s| {
        s["meta"].as_object_mut().unwrap().remove("releases.json");
    });
    let mut c = client_on(&repo, Lazy);
    // Targets under other roles are still found...
    assert!(c.updater.target_info("hello.txt").unwrap().is_some());
    assert!(c
        .updater
        .target_info("packages/alpha.txt")
        .unwrap()
        .is_some());
    // ...and the missing role is an error naming it, not "no targets".
    let e = c
        .updater
        .target_info("releases/app-1.0.tar.gz")
        .unwrap_err();
    assert!(
        matches!(&e, Error::NotInSnapshot { role, .. } if role == "releases"),
        "{e:?}"
    );
    // A mirror loading every role refuses the whole upstream state.
    let mut c = Client::new(&repo.publish(), All);
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::NotInSnapshot { role, .. } if role == "releases"),
        "{e:?}"
    );
}

// ----- delegation semantics -------------------------------------------------------------

#[test]
fn a_terminating_delegation_deeper_down_stops_backtracking() {
    // targets -> [a (non-terminating), b]; a -> [c (terminating)]. A path all three
    // match is searched in a, then c, and never in b.
    let mut repo = fixtures::basic();
    repo.add_delegation(
        TARGETS,
        Delegation::new("a", [key("a")], DelegatedPaths::paths(&["s/*"])),
    );
    repo.add_delegation(
        TARGETS,
        Delegation::new("b", [key("b")], DelegatedPaths::paths(&["s/*"])),
    );
    repo.add_delegation(
        "a",
        Delegation::new("c", [key("c")], DelegatedPaths::paths(&["s/*"])).terminating(true),
    );
    repo.add_target("b", "s/x", b"x".to_vec());
    let mut c = client_on(&repo, Lazy);
    assert_eq!(c.updater.target_info("s/x").unwrap(), None);
    let reqs = c.mem.take_requests();
    assert!(
        reqs.iter().any(|r| r.ends_with(".c.json")) && !reqs.iter().any(|r| r.ends_with(".b.json")),
        "{reqs:?}"
    );
}

#[test]
fn terminating_delegations_stop_the_search() {
    let mut repo = fixtures::basic();
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "first",
            [key("first")],
            DelegatedPaths::paths(&["shared/*"]),
        )
        .terminating(true),
    );
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "second",
            [key("second")],
            DelegatedPaths::paths(&["shared/*"]),
        ),
    );
    repo.add_target("second", "shared/x", b"x".to_vec());
    let mut c = client_on(&repo, Lazy);
    assert_eq!(c.updater.target_info("shared/x").unwrap(), None);
    // Non-terminating: the search goes on to the next role.
    let mut repo = fixtures::basic();
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "first",
            [key("first")],
            DelegatedPaths::paths(&["shared/*"]),
        ),
    );
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "second",
            [key("second")],
            DelegatedPaths::paths(&["shared/*"]),
        ),
    );
    repo.add_target("second", "shared/x", b"x".to_vec());
    let mut c = client_on(&repo, Lazy);
    assert_eq!(
        c.updater.target_info("shared/x").unwrap().unwrap().role,
        "second"
    );
}

#[test]
fn delegation_cycles_and_the_visit_limit_end_the_walk() {
    let mut repo = fixtures::basic();
    repo.add_delegation(
        TARGETS,
        Delegation::new("a", [key("a")], DelegatedPaths::paths(&["*"])),
    );
    repo.add_delegation(
        "a",
        Delegation::new("b", [key("b")], DelegatedPaths::paths(&["*"])),
    );
    repo.add_delegation(
        "b",
        Delegation::new("a", [key("a")], DelegatedPaths::paths(&["*"])),
    );
    let mut c = client_on(&repo, Lazy);
    assert_eq!(c.updater.target_info("nothing").unwrap(), None);
    let mut c = client_on(&repo, All);
    assert!(c.updater.target_info("nothing").unwrap().is_none());

    // A chain longer than the lookup limit is cut.
    let mut repo = fixtures::basic();
    let mut parent = TARGETS.to_owned();
    for i in 0..40 {
        let name = format!("chain-{i}");
        repo.add_delegation(
            &parent,
            Delegation::new(&name, [key("chain")], DelegatedPaths::paths(&["deep/*"])),
        );
        parent = name;
    }
    repo.add_target(&parent, "deep/x", b"x".to_vec());
    let mut c = client_on(&repo, Lazy);
    assert_eq!(c.updater.target_info("deep/x").unwrap(), None);
    let mut cfg = config(Lazy);
    cfg.limits.max_lookup_roles = 64;
    let mut c = Client::with_config(&repo.publish(), cfg);
    c.refresh().unwrap();
    assert!(c.updater.target_info("deep/x").unwrap().is_some());
}

/// targets delegates to p1 and p2, which both delegate to `shared` (signed by "good").
fn diamond(p1: &[&str], p2: &[&str], shared: &[&str]) -> RepoBuilder {
    let mut repo = fixtures::basic();
    for (name, paths) in [("p1", p1), ("p2", p2)] {
        repo.add_delegation(
            TARGETS,
            Delegation::new(name, [key(name)], DelegatedPaths::paths(paths)),
        );
        repo.add_delegation(
            name,
            Delegation::new("shared", [key("good")], DelegatedPaths::paths(shared)),
        );
    }
    repo
}

/// Makes `parent`'s first delegation name a key that did not sign the delegated role.
fn delegate_first_role_to_another_key(repo: &mut RepoBuilder, parent: &str) {
    repo.patch_signed(parent, |s| {
        let other = TestKey::ed25519_from_label("other");
        let id = other.key_id().to_owned();
        s["delegations"]["keys"] = json!({ id.clone(): other.public_json().clone() });
        s["delegations"]["roles"][0]["keyids"] = json!([id]);
    });
}

#[test]
fn a_role_delegated_twice_is_verified_against_each_delegator() {
    let mut repo = diamond(&["*"], &["*"], &["*"]);
    // p2 delegates the same role to another key, which did not sign it.
    delegate_first_role_to_another_key(&mut repo, "p2");
    let mut c = Client::new(&repo.publish(), All);
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::Threshold { role, delegator, .. } if role == "shared" && delegator == "p2"),
        "{e:?}"
    );
}

#[test]
fn a_cached_role_is_verified_against_the_delegator_of_each_lookup() {
    let mut repo = diamond(&["a/*"], &["b/*"], &["*/*"]);
    repo.add_target("shared", "a/x", b"x".to_vec());
    repo.add_target("shared", "b/y", b"y".to_vec());
    let good = repo.clone();
    delegate_first_role_to_another_key(&mut repo, "p2");
    let mut c = client_on(&repo, Lazy);
    assert_eq!(
        c.updater.target_info("a/x").unwrap().unwrap().role,
        "shared"
    );
    // Reached through p2, whose keys did not sign it: refused although it is cached.
    let e = c.updater.target_info("b/y").unwrap_err();
    assert!(
        matches!(&e, Error::Threshold { role, delegator, .. } if role == "shared" && delegator == "p2"),
        "{e:?}"
    );
    // With p2 delegating to the right key, both lookups succeed.
    let mut c = client_on(&good, Lazy);
    assert!(c.updater.target_info("a/x").unwrap().is_some());
    assert!(c.updater.target_info("b/y").unwrap().is_some());
}

#[test]
fn a_reencoded_file_is_refused_when_snapshot_lists_its_length_or_hashes() {
    // The same signed content re-encoded: signatures still verify, the bytes differ.
    for (length, hashes) in [(true, false), (false, true)] {
        let mut repo = fixtures::basic();
        repo.set_snapshot_meta(tuf_mirror_tests::builder::MetaOptions { length, hashes });
        let published = repo.publish();
        let v: Value =
            serde_json::from_slice(published.get("metadata/1.releases.json").unwrap()).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        let mut c = Client::new(&published, Lazy);
        c.refresh().unwrap();
        c.mem.put("metadata/1.releases.json", compact.clone());
        let e = c
            .updater
            .target_info("releases/app-1.0.tar.gz")
            .unwrap_err();
        let want = if length { "length" } else { "sha256" };
        assert!(
            matches!(&e, Error::Integrity { what, reason, .. } if what == "releases" && reason.contains(want)),
            "{e:?}"
        );
        // With neither listed, the re-encoded file is the same signed content.
        let mut repo = fixtures::basic();
        repo.set_snapshot_meta(tuf_mirror_tests::builder::MetaOptions {
            length: false,
            hashes: false,
        });
        let mut c = client_on(&repo, Lazy);
        c.mem.put("metadata/1.releases.json", compact);
        assert!(c
            .updater
            .target_info("releases/app-1.0.tar.gz")
            .unwrap()
            .is_some());
    }
}

#[test]
fn succinct_hash_bins_resolve_through_two_hops() {
    let repo = fixtures::load("succinct").unwrap();
    let mut c = Client::new(&repo, Lazy);
    c.refresh().unwrap();
    for p in ["packages/alpha.txt", "packages/delta.txt"] {
        let info = c.updater.target_info(p).unwrap().unwrap();
        assert!(info.role.starts_with("bin-"), "{}", info.role);
    }
    let mut c = Client::new(&repo, All);
    c.refresh().unwrap();
    assert_eq!(c.updater.roles().count(), 1 + 16);
}

// ----- all-roles mode is incremental ----------------------------------------------------

#[test]
fn all_roles_refresh_fetches_only_what_changed() {
    let mut repo = fixtures::basic();
    let mut c = client_on(&repo, All);
    assert_eq!(c.updater.stats().fetched.len(), 2 + 1 + 1 + 16);
    // Nothing new: only timestamp is asked for.
    c.mem.take_requests();
    c.refresh().unwrap();
    assert_eq!(
        c.mem.take_requests(),
        ["metadata/2.root.json", "metadata/timestamp.json"]
    );
    // One bin changes.
    let bin = "bin-3";
    repo.add_target(bin, "packages/new.txt", b"n".to_vec());
    repo.bump_version(bin);
    bump_ts_snap(&mut repo);
    c.mem.serve(&repo.publish());
    c.refresh().unwrap();
    assert_eq!(c.updater.stats().fetched, ["timestamp", "snapshot", bin]);
    assert_eq!(c.updater.stats().reused, 1 + 16);
    // A new process reads the rest from its store instead of fetching it.
    c.restart();
    c.refresh().unwrap();
    assert_eq!(c.updater.stats().fetched, ["timestamp"]);
    assert_eq!(c.updater.stats().from_store, 18);
}

#[test]
fn validation_time_is_explicit() {
    let repo = fixtures::basic().publish();
    let mut cfg = config(Lazy);
    cfg.time = ValidationTime::At("2100-01-01T00:00:00Z".parse().unwrap());
    let mut c = Client::with_config(&repo, cfg);
    assert!(matches!(c.refresh(), Err(Error::Expired { role, .. }) if role == "root"));
    let _ = NOW;
    let _: Value = json!(null);
}
