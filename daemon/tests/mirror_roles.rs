//! The mirror's own roles over an upstream verified by the engine: a mirror root that
//! lists the upstream targets keys verbatim, a snapshot over the exact upstream bytes,
//! a timestamp; then the engine (plain and pinned) and python-tuf's ngclient, holding
//! only the mirror's root version 1, download through the assembled tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use aws_lc_rs::signature::Ed25519KeyPair;
use tough::sign::Sign;
use tuf_mirror_client::key::KeyJson;
use tuf_mirror_client::names::encode_role;
use tuf_mirror_client::{
    DelegationMode, DirStore, FileTransport, MemoryStore, PinnedKeys, TargetsTrust, Updater,
    UpdaterConfig,
};
use tuf_mirror_daemon::cycle::UpstreamView;
use tuf_mirror_daemon::mirror::{
    root_signed, sign, snapshot_signed, timestamp_signed, MirrorKey, MirrorKeys,
};
use tuf_mirror_daemon::publish::{Publication, Tree};
use tuf_mirror_tests::{fixtures, peers};
use url::Url;

fn key(role: &'static str, seed: u8) -> MirrorKey {
    let signer: Arc<dyn Sign> = Arc::new(Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap());
    MirrorKey::new(role, signer).unwrap()
}

fn dir_url(p: &Path) -> Url {
    Url::from_directory_path(p).unwrap()
}

/// Verifies the upstream in `up` (all roles) and writes a mirror tree to `out`.
async fn build_mirror(up: &Path, out: &Path, expires_in_days: i64) -> Updater {
    let mut cfg = UpdaterConfig::new(dir_url(&up.join("metadata")));
    cfg.mode = DelegationMode::All;
    let anchor = std::fs::read(up.join("root.json")).unwrap();
    let mut upstream = Updater::init(
        cfg,
        Arc::new(FileTransport),
        Arc::new(MemoryStore::default()),
        &anchor,
    )
    .unwrap();
    upstream.refresh().unwrap();

    let keys = MirrorKeys {
        root: vec![key("root", 1)],
        root_threshold: 1,
        snapshot: vec![key("snapshot", 2)],
        timestamp: vec![key("timestamp", 3)],
    };
    let exp = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * expires_in_days);
    let root = sign(
        "root",
        root_signed(1, exp, &keys, &UpstreamView::of(&upstream, vec![])).unwrap(),
        &keys.root.iter().collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let snapshot = sign(
        "snapshot",
        snapshot_signed(1, exp, upstream.roles().map(|r| &**r)),
        &[&keys.snapshot[0]],
    )
    .await
    .unwrap();
    let timestamp = sign(
        "timestamp",
        timestamp_signed(1, exp, &snapshot.meta()),
        &[&keys.timestamp[0]],
    )
    .await
    .unwrap();

    let roles: Vec<_> = upstream.roles().cloned().collect();
    Tree::new(out)
        .publish(&Publication {
            roles: roles
                .iter()
                .map(|r| (r.name.as_str(), r.version, &*r.bytes))
                .collect(),
            roots: vec![&root],
            snapshot: Some(&snapshot),
            timestamp: Some(&timestamp),
            ..Default::default()
        })
        .unwrap();
    copy_dir(&up.join("targets"), &out.join("targets"));
    upstream
}

/// The `basic` fixture as an upstream directory, with its trust anchor as `root.json`.
fn write_upstream(up: &Path) {
    let repo = fixtures::load("basic").unwrap();
    repo.write_to(up).unwrap();
    std::fs::write(up.join("root.json"), repo.trust_anchor()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn client(mirror: &Path, trust: TargetsTrust, store: &Path) -> Updater {
    let mut cfg = UpdaterConfig::new(dir_url(&mirror.join("metadata")));
    cfg.targets_base = Some(dir_url(&mirror.join("targets")));
    cfg.targets_trust = trust;
    let anchor = std::fs::read(mirror.join("metadata/1.root.json")).unwrap();
    let mut u = Updater::init(
        cfg,
        Arc::new(FileTransport),
        Arc::new(DirStore::new(store).unwrap()),
        &anchor,
    )
    .unwrap();
    u.refresh().unwrap();
    u
}

const PATHS: [&str; 3] = ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"];

#[tokio::test]
async fn clients_of_the_mirror_download_upstream_targets_with_the_upstream_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    write_upstream(&up);
    let mirror = tmp.path().join("mirror");
    let upstream = build_mirror(&up, &mirror, 7).await;

    // Targets and delegated metadata are the upstream's bytes.
    for r in upstream.roles() {
        let name = format!("{}.{}.json", r.version, encode_role(&r.name));
        assert_eq!(
            std::fs::read(mirror.join("metadata").join(&name)).unwrap(),
            std::fs::read(up.join("metadata").join(&name)).unwrap(),
            "{name}"
        );
    }

    // The engine as a plain client of the mirror, and pinned to the upstream targets keys.
    let up_root = upstream.root();
    let t = up_root.role("targets");
    let pinned: HashMap<String, KeyJson> = t
        .keyids
        .iter()
        .map(|id| (id.clone(), up_root.signed.keys[id].clone()))
        .collect();
    for (i, trust) in [
        TargetsTrust::FromRoot,
        TargetsTrust::Pinned(PinnedKeys::new(pinned, t.threshold)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = client(&mirror, trust, &tmp.path().join(format!("c{i}")));
        for p in PATHS {
            let info = c.target_info(p).unwrap().unwrap();
            let dest = tmp.path().join(format!("c{i}-{}", encode_role(p)));
            c.download_target(&info, &dest).unwrap();
        }
    }

    // python-tuf's ngclient, holding only the mirror's root v1.
    let out = Command::new(peers::python())
        .arg(peers::script("tuf_client.py"))
        .args([
            "--metadata-url",
            "http://mirror.test/metadata/",
            "--targets-url",
            "http://mirror.test/targets/",
        ])
        .arg("--root")
        .arg(mirror.join("metadata/1.root.json"))
        .arg("--file-fetcher")
        .arg(&mirror)
        .args(PATHS)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        PATHS.len(),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_pin_that_differs_from_the_mirror_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    write_upstream(&up);
    let mirror = tmp.path().join("mirror");
    build_mirror(&up, &mirror, 7).await;
    // Pin a key the upstream never used.
    let other = key("targets", 9);
    let json: KeyJson =
        serde_json::from_value(serde_json::to_value(other_key(&other)).unwrap()).unwrap();
    let pins = PinnedKeys::new(HashMap::from([(other.keyid().to_owned(), json)]), 1);
    let mut cfg = UpdaterConfig::new(dir_url(&mirror.join("metadata")));
    cfg.targets_trust = TargetsTrust::Pinned(pins);
    let anchor = std::fs::read(mirror.join("metadata/1.root.json")).unwrap();
    let mut u = Updater::init(
        cfg,
        Arc::new(FileTransport),
        Arc::new(MemoryStore::default()),
        &anchor,
    )
    .unwrap();
    let e = u.refresh().unwrap_err();
    assert!(matches!(e, tuf_mirror_client::Error::Pin { .. }), "{e:?}");
    assert!(e.to_string().contains("update the key bundle"), "{e}");
}

fn other_key(k: &MirrorKey) -> serde_json::Value {
    let _ = k;
    let kp = Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
    serde_json::to_value(kp.tuf_key()).unwrap()
}
