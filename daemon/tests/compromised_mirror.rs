//! A compromised mirror against pinned clients.
//!
//! The daemon syncs an upstream and publishes; `bundle export` writes the key bundle;
//! then the attacker, holding the mirror's root, snapshot and timestamp keys (the ones
//! the daemon signs with), rewrites the served tree with freshly signed mirror metadata.
//! A client built from the bundle rejects each attack with the engine's typed error and
//! says who has to act. In the first case python-tuf's ngclient, trusting only the
//! mirror's root, downloads the attacker's file: that is what pinning prevents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::Ed25519KeyPair;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};
use tough::sign::Sign;
use tuf_mirror_client::bundle::{Bundle, ClientPolicy};
use tuf_mirror_client::client::{ClientError, MirrorClient, Party};
use tuf_mirror_client::Error;
use tuf_mirror_config::Config;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::export::export_bundle;
use tuf_mirror_daemon::keyring::load_keys;
use tuf_mirror_daemon::mirror::{
    expires_string, meta_entry, sign, snapshot_from_meta, timestamp_signed, MirrorKey, MirrorKeys,
    SignedDoc,
};
use tuf_mirror_daemon::service::{published_dir, Service};
use tuf_mirror_daemon::state::State;
use tuf_mirror_tests::builder::{RepoBuilder, TestKey, SNAPSHOT, TARGETS, TIMESTAMP};
use tuf_mirror_tests::{fixtures, peers};
use url::Url;

/// A synced mirror of an upstream, its bundle, and the mirror's keys in the attacker's
/// hands.
struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: Config,
    service: Service,
    /// `<state>/published/r`: the tree the mirror serves.
    tree: PathBuf,
    bundle: Bundle,
    keys: MirrorKeys,
}

async fn site(upstream: &RepoBuilder) -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    common::write_upstream(&upstream.publish(), &dir);
    common::generate_keys(&dir);
    let config = common::config(&dir, "");
    std::fs::create_dir_all(&config.server.state_dir).unwrap();
    let state = State::open(&config.server.state_dir.join("state.redb")).unwrap();
    let service = Service::open(&config, Arc::new(state), Arc::new(SystemClock)).unwrap();
    service.sync("r").await.unwrap();
    let published = published_dir(&config.server.state_dir);
    let base = Url::from_directory_path(&published).unwrap();
    let out = dir.join("bundle.json");
    let bytes = export_bundle(
        &config,
        Some("r"),
        &[base],
        &ClientPolicy::default(),
        None,
        &out,
    )
    .unwrap();
    std::fs::write(&out, bytes).unwrap();
    let bundle = Bundle::load(&out).unwrap();
    let keys = load_keys(&config.repositories[0]).unwrap();
    Site {
        tree: published.join("r"),
        _tmp: tmp,
        dir,
        config,
        service,
        bundle,
        keys,
    }
}

fn in_a_day() -> String {
    expires_string(Timestamp::now() + SignedDuration::from_hours(24))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, b))
}

fn evil_key() -> MirrorKey {
    let signer: Arc<dyn Sign> = Arc::new(Ed25519KeyPair::from_seed_unchecked(&[0xe7; 32]).unwrap());
    MirrorKey::new("targets", signer).unwrap()
}

impl Site {
    fn client(&self, cache: &str) -> MirrorClient {
        MirrorClient::builder(&self.bundle, "r")
            .unwrap()
            .cache_dir(self.dir.join(cache))
            .build()
            .unwrap()
    }

    fn meta(&self, file: &str) -> PathBuf {
        self.tree.join("metadata").join(file)
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.meta(file)).unwrap()
    }

    fn json(&self, file: &str) -> Value {
        serde_json::from_slice(&self.read(file)).unwrap()
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.meta(file), bytes).unwrap();
    }

    /// Publishes a new mirror root: the served one, edited, with the next version,
    /// signed by the mirror's root keys.
    async fn new_root(&self, edit: impl FnOnce(&mut Value)) {
        let mut signed = self.json("root.json")["signed"].clone();
        let version = signed["version"].as_u64().unwrap() + 1;
        signed["version"] = json!(version);
        signed["expires"] = json!(in_a_day());
        edit(&mut signed);
        let keys: Vec<&MirrorKey> = self.keys.root.iter().collect();
        let doc = sign("root", signed, &keys).await.unwrap();
        self.write(&format!("{version}.root.json"), &doc.bytes);
        self.write("root.json", &doc.bytes);
    }

    /// Publishes a fresh snapshot (the served meta, edited) and timestamp, signed by the
    /// mirror's snapshot and timestamp keys.
    async fn new_snapshot(&self, edit: impl FnOnce(&mut Map<String, Value>)) {
        let ts = self.json("timestamp.json");
        let snap_version = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let mut meta = self.json(&format!("{snap_version}.snapshot.json"))["signed"]["meta"]
            .as_object()
            .unwrap()
            .clone();
        edit(&mut meta);
        let exp: Timestamp = in_a_day().parse().unwrap();
        let snapshot = sign(
            "snapshot",
            snapshot_from_meta(snap_version + 1, exp, Value::Object(meta)),
            &[&self.keys.snapshot[0]],
        )
        .await
        .unwrap();
        self.write(
            &format!("{}.snapshot.json", snap_version + 1),
            &snapshot.bytes,
        );
        let ts_version = ts["signed"]["version"].as_u64().unwrap() + 1;
        let timestamp = sign(
            "timestamp",
            timestamp_signed(ts_version, exp, &snapshot.meta()),
            &[&self.keys.timestamp[0]],
        )
        .await
        .unwrap();
        self.write("timestamp.json", &timestamp.bytes);
    }

    /// Writes a targets role as `<version>.<name>.json` and returns its snapshot entry.
    fn put_role(&self, name: &str, doc: &SignedDoc) -> (String, Value) {
        self.write(&format!("{}.{name}.json", doc.version), &doc.bytes);
        (format!("{name}.json"), meta_entry(doc.version, &doc.bytes))
    }
}

fn engine_error(e: &ClientError) -> &Error {
    e.engine_error()
        .unwrap_or_else(|| panic!("not an update error: {e:?}"))
}

fn evil_targets(signed: &Value, evil: &[u8]) -> Value {
    let mut s = signed.clone();
    s["version"] = json!(s["version"].as_u64().unwrap() + 1);
    s["targets"]["hello.txt"] = json!({
        "length": evil.len(),
        "hashes": { "sha256": sha256_hex(evil) },
    });
    s
}

/// (a) The attacker signs a new mirror root listing its own targets key, and targets
/// signed by that key listing its own `hello.txt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_targets_key_in_a_new_mirror_root_is_refused_by_the_pins() {
    let site = site(&fixtures::basic()).await;
    let mut warm = site.client("warm");
    warm.refresh().unwrap();

    let evil = evil_key();
    site.new_root(|r| {
        r["keys"][evil.keyid()] = evil.public().clone();
        r["roles"]["targets"] = json!({ "keyids": [evil.keyid()], "threshold": 1 });
    })
    .await;
    let payload = b"attacker's hello\n".to_vec();
    let targets = sign(
        "targets",
        evil_targets(&site.json("1.targets.json")["signed"], &payload),
        &[&evil],
    )
    .await
    .unwrap();
    let entry = site.put_role("targets", &targets);
    site.new_snapshot(|m| {
        m.insert(entry.0, entry.1);
    })
    .await;
    let file = site
        .tree
        .join(format!("targets/{}.hello.txt", sha256_hex(&payload)));
    std::fs::write(&file, &payload).unwrap();

    // A pinned client, new or one that refreshed before, refuses the new root.
    for mut c in [site.client("cold"), warm] {
        let e = c.refresh().unwrap_err();
        assert!(matches!(engine_error(&e), Error::Pin { .. }), "{e:?}");
        assert_eq!(e.party(), Some(Party::KeyBundle));
        let msg = format!("{}: {}", e, engine_error(&e));
        assert!(msg.contains("update the key bundle"), "{msg}");
        assert!(msg.contains("the mirror is misbehaving"), "{msg}");
        assert!(msg.contains(evil.keyid()), "names the unpinned key: {msg}");
    }

    // The same engine trusting the mirror root for targets takes the attacker's file...
    let mut unpinned = MirrorClient::builder(&site.bundle, "r")
        .unwrap()
        .dangerous_trust_mirror_for_targets()
        .build()
        .unwrap();
    let mut got = Vec::new();
    unpinned.download("hello.txt", &mut got).unwrap();
    assert_eq!(got, payload);

    // ...and so does python-tuf's ngclient, holding only the mirror's root.
    let root = site.dir.join("bundle-root.json");
    std::fs::write(&root, &site.bundle.repository("r").unwrap().mirror_root).unwrap();
    let out = Command::new(peers::python())
        .arg(peers::script("tuf_client.py"))
        .args([
            "--metadata-url",
            "http://mirror.test/r/metadata/",
            "--targets-url",
            "http://mirror.test/r/targets/",
        ])
        .arg("--root")
        .arg(&root)
        .arg("--file-fetcher")
        .arg(published_dir(&site.config.server.state_dir))
        .arg("hello.txt")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!("OK hello.txt {} {}", payload.len(), sha256_hex(&payload));
    assert!(
        stdout.contains(&want),
        "ngclient did not take the attacker's file: {stdout}"
    );
}

/// (b) A delegated role with a changed target, under a fresh snapshot; the attacker can
/// only sign it with keys it holds, which the delegating upstream role does not list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modified_delegated_role_is_refused() {
    let site = site(&fixtures::basic()).await;
    let mut c = site.client("c");
    c.refresh().unwrap();
    let mut signed = site.json("1.releases.json")["signed"].clone();
    signed["version"] = json!(2);
    signed["targets"]["releases/app-1.0.tar.gz"] = json!({
        "length": 4, "hashes": { "sha256": sha256_hex(b"evil") },
    });
    let doc = sign("releases", signed, &[&site.keys.snapshot[0]])
        .await
        .unwrap();
    let entry = site.put_role("releases", &doc);
    site.new_snapshot(|m| {
        m.insert(entry.0, entry.1);
    })
    .await;
    c.refresh().unwrap();
    let e = c.target_info("releases/app-1.0.tar.gz").unwrap_err();
    assert!(
        matches!(engine_error(&e), Error::Threshold { role, delegator, valid: 0, .. }
            if role == "releases" && delegator == "targets"),
        "{e:?}"
    );
    assert_eq!(e.party(), Some(Party::Mirror));
    assert!(e.to_string().contains("the upstream did not sign"), "{e}");
}

/// (c) The attacker hides a delegation: re-signing targets without it (with keys it
/// holds), or dropping the delegated role from a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_delegation_is_refused() {
    let site = site(&fixtures::basic()).await;
    let mut c = site.client("c");
    c.refresh().unwrap();

    // Dropped from the snapshot: a client that saw it refuses the snapshot, a new one
    // refuses the lookup that needs it.
    site.new_snapshot(|m| {
        m.remove("releases.json");
    })
    .await;
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(engine_error(&e), Error::NotInSnapshot { role, reason: "removed from snapshot", .. }
            if role == "releases"),
        "{e:?}"
    );
    assert_eq!(e.party(), Some(Party::Mirror));
    let mut cold = site.client("cold");
    cold.refresh().unwrap();
    let e = cold.target_info("releases/app-1.0.tar.gz").unwrap_err();
    assert!(
        matches!(engine_error(&e), Error::NotInSnapshot { role, reason: "delegated but not listed", .. }
            if role == "releases"),
        "{e:?}"
    );

    // Removed from targets, which the attacker must then sign itself.
    let mut signed = site.json("1.targets.json")["signed"].clone();
    signed["version"] = json!(2);
    signed["delegations"]["roles"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["name"] != "releases");
    let doc = sign("targets", signed, &[&site.keys.root[0]])
        .await
        .unwrap();
    let entry = site.put_role("targets", &doc);
    let releases = meta_entry(1, &site.read("1.releases.json"));
    site.new_snapshot(|m| {
        m.insert(entry.0, entry.1);
        m.insert("releases.json".into(), releases);
    })
    .await;
    for mut client in [site.client("cold2"), site.client("c")] {
        let e = client.refresh().unwrap_err();
        assert!(
            matches!(engine_error(&e), Error::Threshold { role, delegator, valid: 0, .. }
                if role == "targets" && delegator == "pinned targets keys"),
            "{e:?}"
        );
        assert_eq!(e.party(), Some(Party::Mirror));
    }
}

/// (d) The target file is replaced, same length or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_target_file_is_refused() {
    let site = site(&fixtures::basic()).await;
    let mut c = site.client("c");
    let info = c.target_info("releases/app-1.0.tar.gz").unwrap().unwrap();
    let name = format!(
        "targets/releases/{}.app-1.0.tar.gz",
        hex::encode(info.hashes.sha256().unwrap())
    );
    let path = site.tree.join(name);
    let good = std::fs::read(&path).unwrap();
    let dest = site.dir.join("app.tar.gz");
    for bad in [vec![b'x'; good.len()], [good.as_slice(), b"!"].concat()] {
        std::fs::write(&path, &bad).unwrap();
        let e = c
            .download_to_file("releases/app-1.0.tar.gz", &dest)
            .unwrap_err();
        assert!(
            matches!(engine_error(&e), Error::Integrity { what, .. } if what == "releases/app-1.0.tar.gz"),
            "{e:?}"
        );
        assert_eq!(e.party(), Some(Party::Mirror));
        assert!(!dest.exists(), "nothing written on failure");
        let mut sink = Vec::new();
        let e = c
            .download("releases/app-1.0.tar.gz", &mut sink)
            .unwrap_err();
        assert!(matches!(engine_error(&e), Error::Integrity { .. }), "{e:?}");
    }
    std::fs::write(&path, &good).unwrap();
    c.download_to_file("releases/app-1.0.tar.gz", &dest)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), good);
}

/// (e) After the upstream published targets version 2, the attacker serves version 1
/// (still upstream-signed) under a fresh snapshot and timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_targets_version_under_a_fresh_timestamp_is_refused() {
    let mut upstream = fixtures::basic();
    let site = site(&upstream).await;
    upstream.add_target(TARGETS, "new.txt", b"new".to_vec());
    upstream.bump_version(TARGETS);
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    common::write_upstream(&upstream.publish(), &site.dir);
    site.service.sync("r").await.unwrap();
    let mut c = site.client("c");
    assert!(c.target_info("new.txt").unwrap().is_some());
    assert_eq!(c.updater().role("targets").unwrap().version, 2);

    let old = meta_entry(1, &site.read("1.targets.json"));
    site.new_snapshot(|m| {
        m.insert("targets.json".into(), old);
    })
    .await;
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(engine_error(&e), Error::Version { role, expected: 2, got: 1, reason, .. }
            if role == "targets" && *reason == "snapshot lists an older version (rollback)"),
        "{e:?}"
    );
    assert_eq!(e.party(), Some(Party::Mirror));
    // The rollback state survives a restart: the cache directory holds it.
    let mut again = site.client("c");
    let e = again.refresh().unwrap_err();
    assert!(matches!(engine_error(&e), Error::Version { .. }), "{e:?}");
}

/// (f) A mirror root that drops one of two pinned upstream targets keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_root_that_drops_a_pinned_key_is_refused() {
    let mut upstream = fixtures::basic();
    let second = TestKey::ed25519_from_label("targets-2");
    upstream.add_role_key(TARGETS, &second);
    let site = site(&upstream).await;
    let pins = &site.bundle.repository("r").unwrap().targets_keys;
    assert_eq!(pins.keys().len(), 2, "the bundle pins both upstream keys");
    let mut c = site.client("c");
    c.refresh().unwrap();

    site.new_root(|r| {
        r["roles"]["targets"]["keyids"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k != second.key_id());
    })
    .await;
    for mut client in [site.client("cold"), c] {
        let e = client.refresh().unwrap_err();
        assert!(matches!(engine_error(&e), Error::Pin { .. }), "{e:?}");
        assert_eq!(e.party(), Some(Party::KeyBundle));
        let msg = engine_error(&e).to_string();
        assert!(
            msg.contains(&format!("not in root: [{}]", second.key_id())),
            "{msg}"
        );
    }
}

/// The unmodified mirror, for contrast: the same clients succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_honest_mirror_serves_pinned_clients() {
    let site = site(&fixtures::basic()).await;
    let mut c = site.client("c");
    c.refresh().unwrap();
    for p in ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"] {
        let mut out = Vec::new();
        let info = c.download(p, &mut out).unwrap();
        assert_eq!(out.len() as u64, info.length, "{p}");
    }
    let s = c.staleness();
    assert_eq!(s.role("timestamp").unwrap().signer, Party::Mirror);
    assert_eq!(s.role("targets").unwrap().signer, Party::Upstream);
    assert!(s.role("releases").is_some());
}
