//! Upstream-anchored clients of a mirror: they pin the upstream root, follow the upstream
//! chain, timestamp and snapshot the daemon republishes under `upstream/`, and require every
//! targets role the mirror serves to be the one the upstream snapshot lists.
//!
//! The upstream is built with the test builder, mirrored by the daemon's own cycle; a
//! compromised mirror is played by signing with the mirror's keys directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::Ed25519KeyPair;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tough::sign::Sign;
use tuf_mirror_client::key::KeyJson;
use tuf_mirror_client::{
    ByteStream, DelegationMode, DirStore, Error, ErrorKind, ExpiryPolicy, FileTransport,
    MemoryStore, MetadataStore, PinnedKeys, RoleClass, TargetsTrust, Transport, Updater,
    UpdaterConfig, UpstreamAnchor, ValidationTime, MAX_GRACE,
};
use tuf_mirror_config::{Config, Source};
use tuf_mirror_daemon::clock::FixedClock;
use tuf_mirror_daemon::cycle::{Memo, Mirror, UpstreamView};
use tuf_mirror_daemon::mirror::{self, MirrorKey, MirrorKeys};
use tuf_mirror_daemon::publish::{write_current, write_versioned, Tree};
use tuf_mirror_daemon::state::State;
use tuf_mirror_daemon::upstream::{updater, ChainStore};
use tuf_mirror_tests::builder::{
    canonical, MetaOptions, RepoBuilder, Sig, TestKey, ROOT, SNAPSHOT, TARGETS, TIMESTAMP,
};
use tuf_mirror_tests::fixtures;
use url::Url;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn mkey(role: &'static str, seed: u8) -> MirrorKey {
    let s: Arc<dyn Sign> = Arc::new(Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap());
    MirrorKey::new(role, s).unwrap()
}

/// An upstream, the daemon mirroring it, and its served tree.
struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    upstream: RepoBuilder,
    config: Config,
    keys: MirrorKeys,
    ledger: State,
    clock: FixedClock,
    memo: Memo,
    chain: Arc<ChainStore>,
    /// The daemon's grace on the upstream.
    grace: Option<Duration>,
}

impl Site {
    fn new(upstream: RepoBuilder) -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let config = common::config(&dir, "");
        let ledger = State::open(&dir.join("ledger.redb")).unwrap();
        let chain = Arc::new(ChainStore::open(&dir.join("state"), "r").unwrap());
        Site {
            _tmp: tmp,
            dir,
            upstream,
            config,
            keys: MirrorKeys {
                root: vec![mkey("root", 1)],
                root_threshold: 1,
                snapshot: vec![mkey("snapshot", 2)],
                timestamp: vec![mkey("timestamp", 3)],
            },
            ledger,
            clock: FixedClock::new(Timestamp::now()),
            memo: Memo::default(),
            chain,
            grace: None,
        }
    }

    fn tree(&self) -> PathBuf {
        self.dir.join("published/r")
    }

    /// The upstream's root version 1: what the key bundle pins.
    fn upstream_anchor_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("up/root.json")).unwrap()
    }

    /// The upstream publishes its current state; the daemon verifies it and publishes.
    async fn sync(&self) {
        common::write_upstream(&self.upstream.publish(), &self.dir);
        let mut up = updater(
            &Source::Dir(self.dir.join("up/metadata")),
            &self.dir.join("up/root.json"),
            self.chain.clone(),
            self.grace,
        )
        .unwrap();
        up.refresh().unwrap();
        self.mirror()
            .cycle(&UpstreamView::of(&up, self.chain.chain().unwrap()))
            .await
            .unwrap();
    }

    fn mirror(&self) -> Mirror<'_> {
        Mirror {
            repo: &self.config.repositories[0],
            tree: Tree::new(self.tree()),
            keys: &self.keys,
            ledger: &self.ledger,
            clock: &self.clock,
            memo: &self.memo,
        }
    }

    fn config(&self, trust: TargetsTrust) -> UpdaterConfig {
        let mut cfg =
            UpdaterConfig::new(Url::from_directory_path(self.tree().join("metadata")).unwrap());
        cfg.targets_trust = trust;
        cfg
    }

    /// A client holding the mirror's root version 1, starting afresh.
    fn client_with(
        &self,
        cfg: UpdaterConfig,
        store: Arc<dyn MetadataStore>,
    ) -> Result<Updater, Error> {
        let anchor = std::fs::read(self.tree().join("metadata/1.root.json")).unwrap();
        Updater::init(cfg, Arc::new(FileTransport), store, &anchor)
    }

    fn client(&self, trust: TargetsTrust) -> Updater {
        self.client_with(self.config(trust), Arc::new(MemoryStore::default()))
            .unwrap()
    }

    /// A fresh upstream-anchored client's refresh.
    fn anchored_refresh(&self, anchor: UpstreamAnchor) -> Result<Updater, Error> {
        let mut c = self.client(TargetsTrust::UpstreamAnchored(anchor));
        c.refresh().map(|()| c)
    }

    /// A compromised mirror: signs, with the mirror's own keys, a new snapshot whose meta is
    /// the served one changed by `edit`, and a timestamp for it.
    async fn resign_snapshot(&self, edit: impl FnOnce(&mut Value, &Path)) {
        let md = self.tree().join("metadata");
        let ts: Value = read_json(&md.join("timestamp.json"));
        let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let tv = ts["signed"]["version"].as_u64().unwrap();
        let served: Value = read_json(&md.join(format!("{sv}.snapshot.json")));
        let mut meta = served["signed"]["meta"].clone();
        edit(&mut meta, &md);
        let exp = Timestamp::now() + SignedDuration::from_hours(24);
        let snapshot = mirror::sign(
            "snapshot",
            mirror::snapshot_from_meta(sv + 1, exp, meta),
            &[&self.keys.snapshot[0]],
        )
        .await
        .unwrap();
        let timestamp = mirror::sign(
            "timestamp",
            mirror::timestamp_signed(tv + 1, exp, &snapshot.meta()),
            &[&self.keys.timestamp[0]],
        )
        .await
        .unwrap();
        write_versioned(
            &md.join(format!("{}.snapshot.json", sv + 1)),
            &snapshot.bytes,
        )
        .unwrap();
        write_current(&md.join("timestamp.json"), &timestamp.bytes).unwrap();
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A mirror snapshot entry for the served file `metadata/<version>.<role>.json`.
fn entry(md: &Path, role: &str, version: u64) -> Value {
    let bytes = std::fs::read(md.join(format!("{version}.{role}.json"))).unwrap();
    json!({
        "version": version,
        "length": bytes.len(),
        "hashes": {"sha256": hex::encode(digest::digest(&digest::SHA256, &bytes))},
    })
}

/// The upstream's targets keys, as a key bundle pins them.
fn pins_of(upstream: &RepoBuilder) -> PinnedKeys {
    let keys: HashMap<String, KeyJson> = upstream
        .role_keys(TARGETS)
        .iter()
        .map(|k| {
            (
                k.key_id().to_owned(),
                serde_json::from_value(k.public_json().clone()).unwrap(),
            )
        })
        .collect();
    PinnedKeys::new(keys, 1)
}

fn content(path: &str) -> Vec<u8> {
    format!("content of {path}\n").into_bytes()
}

const PATHS: [&str; 3] = ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"];

fn finds(u: &mut Updater, paths: &[&str]) {
    for p in paths {
        assert!(u.target_info(p).unwrap().is_some(), "{p}");
    }
}

#[tokio::test]
async fn an_upstream_targets_key_rotation_reaches_anchored_clients_with_the_same_bundle() {
    let mut site = Site::new(fixtures::basic());
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    let store_dir = site.dir.join("client-a");
    let anchored_cfg = site.config(TargetsTrust::UpstreamAnchored(anchor.clone()));
    let store = || -> Arc<dyn MetadataStore> { Arc::new(DirStore::new(&store_dir).unwrap()) };
    let mut a = site.client_with(anchored_cfg.clone(), store()).unwrap();
    a.refresh().unwrap();
    finds(&mut a, &PATHS);
    assert_eq!(a.upstream_root().unwrap().version(), 1);
    assert!(store_dir.join("upstream/timestamp.json").exists());
    let mut pinned = site.client(TargetsTrust::Pinned(pins_of(&site.upstream)));
    pinned.refresh().unwrap();

    // The upstream rotates its targets key; the daemon (online root keys) follows with
    // mirror root version 2.
    site.upstream
        .rotate_role_keys(TARGETS, [TestKey::ed25519_from_label("targets-2")], 1);
    site.upstream
        .add_target(TARGETS, "after-rotation.txt", content("after-rotation.txt"));
    site.upstream.bump_version(SNAPSHOT);
    site.upstream.bump_version(TIMESTAMP);
    site.sync().await;
    assert!(site.tree().join("upstream/2.root.json").exists());

    // The same updater, a new process resuming from its store, and a fresh client: all
    // with the bundle unchanged (upstream root version 1).
    a.refresh().unwrap();
    assert_eq!(a.upstream_root().unwrap().version(), 2);
    assert_eq!(a.role("targets").unwrap().version, 2);
    finds(&mut a, &["after-rotation.txt", "releases/app-1.0.tar.gz"]);
    let mut resumed = Updater::new(anchored_cfg.clone(), Arc::new(FileTransport), store()).unwrap();
    assert_eq!(resumed.upstream_root().unwrap().version(), 2);
    resumed.refresh().unwrap();
    finds(&mut resumed, &["after-rotation.txt"]);
    let mut fresh = site.anchored_refresh(anchor.clone()).unwrap();
    assert!(
        fresh
            .stats()
            .fetched
            .contains(&"upstream/2.root".to_owned()),
        "{:?}",
        fresh.stats()
    );
    finds(&mut fresh, &PATHS);

    // Every role at once, as a mirror of the mirror would load them.
    let mut all_cfg = anchored_cfg;
    all_cfg.mode = DelegationMode::All;
    let mut all = site
        .client_with(all_cfg, Arc::new(MemoryStore::default()))
        .unwrap();
    all.refresh().unwrap();
    assert_eq!(all.roles().count(), 2 + 16);

    // For contrast: a client pinned to the old targets key needs a new bundle.
    let e = pinned.refresh().unwrap_err();
    assert!(matches!(e, Error::Pin { .. }), "{e:?}");
}

#[tokio::test]
async fn a_mirror_that_substitutes_the_targets_keys_is_rejected() {
    // An upstream whose snapshot lists versions only (python-tuf's default), so that the
    // targets signature is the only check a same-version substitute meets.
    let mut upstream = fixtures::basic();
    upstream.set_snapshot_meta(MetaOptions {
        length: false,
        hashes: false,
    });
    let site = Site::new(upstream);
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    let md = site.tree().join("metadata");

    // The compromised mirror signs root version 2 naming its own targets key, and serves
    // a targets version 1 of its own, signed with it.
    let attacker = TestKey::ed25519_from_label("mirror-made-targets");
    let mut root = read_json(&md.join("1.root.json"))["signed"].clone();
    root["version"] = json!(2);
    root["keys"][attacker.key_id()] = attacker.public_json().clone();
    root["roles"]["targets"] = json!({"keyids": [attacker.key_id()], "threshold": 1});
    let root = mirror::sign("root", root, &[&site.keys.root[0]])
        .await
        .unwrap();
    write_versioned(&md.join("2.root.json"), &root.bytes).unwrap();
    let mut targets = read_json(&md.join("1.targets.json"))["signed"].clone();
    targets["targets"]["evil.txt"] = json!({"length": 4, "hashes": {"sha256": "00".repeat(32)}});
    let sig = attacker.sign(&canonical(&targets));
    let envelope = json!({
        "signatures": [{"keyid": attacker.key_id(), "sig": hex::encode(sig)}],
        "signed": targets,
    });
    std::fs::write(
        md.join("1.targets.json"),
        serde_json::to_vec(&envelope).unwrap(),
    )
    .unwrap();
    site.resign_snapshot(|meta, md| meta["targets.json"] = entry(md, "targets", 1))
        .await;

    // A client that takes the targets keys from the mirror's root is fooled.
    let mut plain = site.client(TargetsTrust::FromRoot);
    plain.refresh().unwrap();
    assert!(plain.target_info("evil.txt").unwrap().is_some());
    // An upstream-anchored one checks targets against the upstream root's keys.
    let e = site.anchored_refresh(anchor).unwrap_err();
    match &e {
        Error::Threshold {
            role, delegator, ..
        } => assert_eq!(
            (role.as_str(), delegator.as_str()),
            ("targets", "upstream root")
        ),
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_forged_upstream_root_is_rejected() {
    let site = Site::new(fixtures::basic());
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    let next = site.tree().join("upstream/2.root.json");

    // Version 2 signed by a key that is no upstream root key, naming itself the root key
    // and its own targets key.
    let attacker = TestKey::ed25519_from_label("attacker-root");
    let mut forged = site.upstream.clone();
    forged.rotate_root();
    forged.set_role_keys(ROOT, [attacker.clone()], 1);
    forged.set_role_keys(
        TARGETS,
        [TestKey::ed25519_from_label("attacker-targets")],
        1,
    );
    forged.set_signers(ROOT, vec![Sig::Key(attacker)]);
    std::fs::write(&next, forged.publish().get("metadata/2.root.json").unwrap()).unwrap();
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    match &e {
        Error::Threshold {
            role, file, valid, ..
        } => {
            assert_eq!(role, "upstream root");
            assert!(file.ends_with("/upstream/2.root.json"), "{file}");
            assert_eq!(*valid, 0);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Security);

    // A genuine version 2 with one byte of what is signed changed.
    let mut genuine = site.upstream.clone();
    genuine.rotate_root();
    let bytes = genuine
        .publish()
        .get("metadata/2.root.json")
        .unwrap()
        .to_vec();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("2099-01-01T00:00:00Z"));
    std::fs::write(&next, text.replacen("2099-01-01", "2098-01-01", 1)).unwrap();
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::Threshold { role, .. } if role == "upstream root"),
        "{e:?}"
    );

    // A genuine root served under the wrong version.
    genuine.rotate_root();
    std::fs::write(
        &next,
        genuine.publish().get("metadata/3.root.json").unwrap(),
    )
    .unwrap();
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::Version { role, expected: 2, got: 3, .. } if role == "upstream root"),
        "{e:?}"
    );

    // The genuine version 2 passes.
    std::fs::write(
        &next,
        genuine.publish().get("metadata/2.root.json").unwrap(),
    )
    .unwrap();
    site.anchored_refresh(anchor).unwrap();

    // A forged trust anchor (a root not signed by its own keys) does not start.
    let mut bad = site.upstream.clone();
    bad.set_signers(ROOT, vec![Sig::Key(TestKey::ed25519_from_label("nobody"))]);
    let bad_root = bad.publish().get("metadata/1.root.json").unwrap().to_vec();
    let e = site
        .client_with(
            site.config(TargetsTrust::UpstreamAnchored(UpstreamAnchor::new(
                &bad_root,
            ))),
            Arc::new(MemoryStore::default()),
        )
        .unwrap_err();
    assert!(matches!(e, Error::TrustAnchor { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Fatal);
}

#[tokio::test]
async fn a_mirror_serving_roles_other_than_the_upstream_snapshot_lists_is_rejected() {
    let mut site = Site::new(fixtures::basic());
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    let up_ts_v1 = std::fs::read(site.tree().join("upstream/timestamp.json")).unwrap();

    // Upstream version 2 of targets and of the delegated role `releases`.
    site.upstream
        .add_target("releases", "releases/app-2.0.tar.gz", content("app-2.0"));
    site.upstream.bump_version("releases");
    site.upstream
        .add_target(TARGETS, "new.txt", content("new.txt"));
    site.upstream.bump_version(TARGETS);
    site.upstream.bump_version(SNAPSHOT);
    site.upstream.bump_version(TIMESTAMP);
    site.sync().await;
    let store = Arc::new(MemoryStore::default());
    let mut seen_v2 = site
        .client_with(
            site.config(TargetsTrust::UpstreamAnchored(anchor.clone())),
            store.clone(),
        )
        .unwrap();
    seen_v2.refresh().unwrap();
    finds(&mut seen_v2, &["releases/app-2.0.tar.gz", "new.txt"]);

    // A compromised mirror re-signs its snapshot to list releases version 1 again.
    site.resign_snapshot(|meta, md| meta["releases.json"] = entry(md, "releases", 1))
        .await;
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    match &e {
        Error::UpstreamMismatch {
            role,
            mirror_version,
            upstream_version,
            upstream_snapshot,
            ..
        } => {
            assert_eq!(role, "releases");
            assert_eq!((*mirror_version, *upstream_version), (1, Some(2)));
            assert_eq!(*upstream_snapshot, 2);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::Security);
    // A client pinned to the targets keys has no way to see it: it loses app-2.0 silently.
    let mut pinned = site.client(TargetsTrust::Pinned(pins_of(&site.upstream)));
    pinned.refresh().unwrap();
    assert!(pinned
        .target_info("releases/app-2.0.tar.gz")
        .unwrap()
        .is_none());

    // Mix and match: the old top-level targets with the new releases.
    site.resign_snapshot(|meta, md| {
        meta["releases.json"] = entry(md, "releases", 2);
        meta["targets.json"] = entry(md, "targets", 1);
    })
    .await;
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamMismatch { role, mirror_version: 1, upstream_version: Some(2), .. } if role == "targets"),
        "{e:?}"
    );

    // A role the upstream snapshot does not list.
    site.resign_snapshot(|meta, md| {
        meta["targets.json"] = entry(md, "targets", 2);
        meta["ghost.json"] = entry(md, "releases", 1);
    })
    .await;
    let e = site.anchored_refresh(anchor.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamMismatch { role, upstream_version: None, .. } if role == "ghost"),
        "{e:?}"
    );

    // The version the upstream lists, re-encoded: same signature, other bytes, which the
    // mirror lists without hashes. Refused on lookup, where the upstream snapshot's
    // hashes are checked.
    let md = site.tree().join("metadata");
    let original = std::fs::read(md.join("2.releases.json")).unwrap();
    let v: Value = serde_json::from_slice(&original).unwrap();
    std::fs::write(md.join("2.releases.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    site.resign_snapshot(|meta, _| {
        meta.as_object_mut().unwrap().remove("ghost.json");
        meta["releases.json"] = json!({"version": 2});
    })
    .await;
    let mut c = site.anchored_refresh(anchor.clone()).unwrap();
    let e = c.target_info("releases/app-2.0.tar.gz").unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamMismatch { role, mirror_version: 2, upstream_version: Some(2), .. } if role == "releases"),
        "{e:?}"
    );
    std::fs::write(md.join("2.releases.json"), &original).unwrap();
    finds(
        &mut site.anchored_refresh(anchor.clone()).unwrap(),
        &["releases/app-2.0.tar.gz"],
    );

    // The upstream's older timestamp, to a client that saw the newer one.
    std::fs::write(site.tree().join("upstream/timestamp.json"), &up_ts_v1).unwrap();
    let e = seen_v2.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::Version { role, expected: 2, got: 1, .. } if role == "upstream timestamp"),
        "{e:?}"
    );
    // The same from its store, in a new process.
    let mut resumed = Updater::new(
        site.config(TargetsTrust::UpstreamAnchored(anchor)),
        Arc::new(FileTransport),
        store,
    )
    .unwrap();
    let e = resumed.refresh().unwrap_err();
    assert!(
        matches!(&e, Error::Version { role, .. } if role == "upstream timestamp"),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_upstream_timestamp_expired_beyond_the_grace_is_rejected() {
    // The upstream timestamp expired ten days ago; the daemon mirrors it within its grace.
    let expired_at = Timestamp::now() - SignedDuration::from_hours(24 * 10);
    let expired_at: Timestamp = expired_at
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
        .parse()
        .unwrap();
    let mut upstream = fixtures::basic();
    upstream.set_expires(
        TIMESTAMP,
        &expired_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let mut site = Site::new(upstream);
    site.grace = Some(30 * DAY);
    site.sync().await;
    let bytes = site.upstream_anchor_bytes();
    let grace = 10 * DAY;
    let at = |offset_secs: i64| {
        ValidationTime::At(expired_at + SignedDuration::from_secs(10 * 24 * 3600 + offset_secs))
    };
    let refresh_at = |anchor: UpstreamAnchor, time: ValidationTime| {
        let mut cfg = site.config(TargetsTrust::UpstreamAnchored(anchor));
        cfg.time = time;
        let mut c = site
            .client_with(cfg, Arc::new(MemoryStore::default()))
            .unwrap();
        c.refresh().map(|()| c)
    };

    // Strict (no grace): refused, and the error says the upstream must act.
    let e = refresh_at(UpstreamAnchor::new(&bytes), at(-1)).unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamExpired { role, grace_secs: 0, .. } if role == "timestamp"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("the upstream must sign a new one"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Security);

    // A ten-day grace: accepted one second inside it, refused one second past it.
    let with_grace = UpstreamAnchor::new(&bytes)
        .dangerous_with_upstream_grace(grace)
        .unwrap();
    let mut c = refresh_at(with_grace.clone(), at(-1)).unwrap();
    finds(&mut c, &PATHS);
    let e = refresh_at(with_grace.clone(), at(1)).unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamExpired { role, grace_secs, .. } if role == "timestamp" && *grace_secs == grace.as_secs()),
        "{e:?}"
    );

    // The same with the upstream URL given explicitly; and a grace on the mirror's
    // roles does not stand in for the upstream grace.
    let explicit = with_grace
        .clone()
        .with_upstream_base(Url::from_directory_path(site.tree().join("upstream")).unwrap());
    refresh_at(explicit, at(-1)).unwrap();
    let mut cfg = site.config(TargetsTrust::UpstreamAnchored(UpstreamAnchor::new(&bytes)));
    cfg.time = at(-1);
    cfg.expiry = ExpiryPolicy::strict()
        .dangerous_with_grace(RoleClass::Timestamp, 30 * DAY)
        .unwrap();
    let mut c = site
        .client_with(cfg, Arc::new(MemoryStore::default()))
        .unwrap();
    let e = c.refresh().unwrap_err();
    assert!(matches!(e, Error::UpstreamExpired { .. }), "{e:?}");

    // The grace is capped.
    let e = UpstreamAnchor::new(&bytes)
        .dangerous_with_upstream_grace(MAX_GRACE + Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn an_expired_upstream_delegated_role_is_rejected_beyond_the_grace() {
    let expired_at: Timestamp = (Timestamp::now() - SignedDuration::from_hours(24 * 10))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
        .parse()
        .unwrap();
    let mut upstream = fixtures::basic();
    upstream.set_expires(
        "releases",
        &expired_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let mut site = Site::new(upstream);
    site.grace = Some(30 * DAY);
    site.sync().await;
    let bytes = site.upstream_anchor_bytes();
    // Strict, even with a targets grace for the mirror's view: the role is the
    // upstream's, so only the upstream grace applies.
    let mut cfg = site.config(TargetsTrust::UpstreamAnchored(UpstreamAnchor::new(&bytes)));
    cfg.expiry = ExpiryPolicy::strict()
        .dangerous_with_grace(RoleClass::Targets, 30 * DAY)
        .unwrap();
    let mut strict = site
        .client_with(cfg, Arc::new(MemoryStore::default()))
        .unwrap();
    strict.refresh().unwrap();
    finds(&mut strict, &["hello.txt"]);
    let e = strict.target_info("releases/app-1.0.tar.gz").unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamExpired { role, grace_secs: 0, .. } if role == "releases"),
        "{e:?}"
    );
    let mut lenient = site
        .anchored_refresh(
            UpstreamAnchor::new(&bytes)
                .dangerous_with_upstream_grace(11 * DAY)
                .unwrap(),
        )
        .unwrap();
    finds(&mut lenient, &["releases/app-1.0.tar.gz"]);
}

#[tokio::test]
async fn hostile_upstream_files_give_typed_errors() {
    let mut site = Site::new(fixtures::basic());
    // A second upstream root version, so that the chain has a file to corrupt.
    site.upstream.rotate_root();
    site.upstream.bump_version(TIMESTAMP);
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    site.anchored_refresh(anchor.clone()).unwrap();
    let up = site.tree().join("upstream");
    let ts_path = up.join("timestamp.json");
    let ts = std::fs::read(&ts_path).unwrap();
    let snap_path = up.join("1.snapshot.json");
    let snap = std::fs::read(&snap_path).unwrap();
    let root_path = up.join("2.root.json");
    let root2 = std::fs::read(&root_path).unwrap();
    let mirror_ts = std::fs::read(site.tree().join("metadata/timestamp.json")).unwrap();
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));

    let check = |path: &Path, bytes: &[u8], want: fn(&Error) -> bool, role: &str| {
        let original = std::fs::read(path).unwrap();
        std::fs::write(path, bytes).unwrap();
        let e = site.anchored_refresh(anchor.clone()).unwrap_err();
        assert!(want(&e), "{}: {e:?}", path.display());
        let got = match &e {
            Error::Malformed { role, .. }
            | Error::Threshold { role, .. }
            | Error::Version { role, .. } => role.as_str(),
            Error::Integrity { what, .. } => what.as_str(),
            _ => "",
        };
        assert_eq!(got, role, "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Security, "{e:?}");
        std::fs::write(path, original).unwrap();
    };
    let malformed: fn(&Error) -> bool = |e| matches!(e, Error::Malformed { .. });
    check(&ts_path, b"not json", malformed, "upstream timestamp");
    check(
        &ts_path,
        br#"{"signed": 1, "signatures": []}"#,
        malformed,
        "upstream timestamp",
    );
    check(&ts_path, nested.as_bytes(), malformed, "upstream timestamp");
    check(
        &ts_path,
        &vec![b' '; 100 << 10],
        |e| matches!(e, Error::TooLarge { .. }),
        "",
    );
    // The mirror's own timestamp is not signed by the upstream's timestamp keys.
    check(
        &ts_path,
        &mirror_ts,
        |e| matches!(e, Error::Threshold { .. }),
        "upstream timestamp",
    );
    // Another file at the snapshot's name: the length and hash in the timestamp differ.
    check(
        &snap_path,
        &ts,
        |e| matches!(e, Error::Integrity { .. }),
        "upstream snapshot",
    );
    check(&root_path, b"[]", malformed, "upstream root");
    check(&root_path, &ts, malformed, "upstream root");
    check(&root_path, nested.as_bytes(), malformed, "upstream root");
    check(&root_path, &[0xff, 0xfe, 0x00], malformed, "upstream root");

    // Missing files are retryable, not security failures.
    for path in [&ts_path, &snap_path] {
        let original = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        let e = site.anchored_refresh(anchor.clone()).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Retryable);
        std::fs::write(path, original).unwrap();
    }

    // Byte-level mutations of each upstream file never panic; whatever passes is the
    // genuine content (same versions).
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (path, original) in [(&ts_path, &ts), (&snap_path, &snap), (&root_path, &root2)] {
        for _ in 0..150 {
            let mut b = original.clone();
            let i = (next() % b.len() as u64) as usize;
            match next() % 3 {
                0 => b[i] ^= 1 << (next() % 8),
                1 => b.truncate(i),
                _ => b.insert(i, (next() % 256) as u8),
            }
            std::fs::write(path, &b).unwrap();
            if let Ok(c) = site.anchored_refresh(anchor.clone()) {
                assert_eq!(c.upstream_root().unwrap().version(), 2);
                assert_eq!(c.upstream_snapshot().unwrap().version, 1);
            }
        }
        std::fs::write(path, original).unwrap();
    }
    site.anchored_refresh(anchor).unwrap();
}

/// The local tree, except that the mirror's `timestamp.json` is `stale` for the first
/// `stale_reads` reads: a client that read it just before the mirror published.
struct Racing {
    stale: Vec<u8>,
    stale_reads: Mutex<u32>,
}

impl Transport for Racing {
    fn fetch(&self, url: &Url) -> Result<ByteStream, Error> {
        if url.path().ends_with("/metadata/timestamp.json") {
            let mut left = self.stale_reads.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Ok(Box::new(std::io::Cursor::new(self.stale.clone())));
            }
        }
        FileTransport.fetch(url)
    }
}

#[tokio::test]
async fn a_client_reading_while_the_mirror_publishes_tries_once_more() {
    let mut site = Site::new(fixtures::basic());
    site.sync().await;
    let anchor = UpstreamAnchor::new(&site.upstream_anchor_bytes());
    let stale = std::fs::read(site.tree().join("metadata/timestamp.json")).unwrap();
    site.upstream
        .add_target("releases", "releases/app-2.0.tar.gz", content("app-2.0"));
    site.upstream.bump_version("releases");
    site.upstream.bump_version(SNAPSHOT);
    site.upstream.bump_version(TIMESTAMP);
    site.sync().await;
    let client = |stale_reads: u32| {
        let transport = Racing {
            stale: stale.clone(),
            stale_reads: Mutex::new(stale_reads),
        };
        let mirror_root = std::fs::read(site.tree().join("metadata/1.root.json")).unwrap();
        Updater::init(
            site.config(TargetsTrust::UpstreamAnchored(anchor.clone())),
            Arc::new(transport),
            Arc::new(MemoryStore::default()),
            &mirror_root,
        )
        .unwrap()
    };

    // The old mirror timestamp, then the new upstream one: they differ, so both are
    // read again, and agree.
    let mut c = client(1);
    c.refresh().unwrap();
    let reads = c
        .stats()
        .fetched
        .iter()
        .filter(|f| *f == "timestamp")
        .count();
    assert_eq!(reads, 2, "{:?}", c.stats());
    finds(&mut c, &["releases/app-2.0.tar.gz"]);
    // A mirror that keeps serving the old state beside the new upstream one is refused.
    let e = client(2).refresh().unwrap_err();
    assert!(
        matches!(&e, Error::UpstreamMismatch { role, mirror_version: 1, upstream_version: Some(2), .. } if role == "releases"),
        "{e:?}"
    );
}
