//! `tuf-mirror bundle export`: the bundle is written from the served tree while the
//! daemon holds its state store; it carries the newest mirror root, the targets keys
//! that root lists, the newest upstream root and the mirror URLs; grace only when asked
//! for and within the cap; after an upstream targets key rotation, the old bundle's
//! clients are told to update the bundle and the re-exported one works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use tuf_mirror_client::bundle::Bundle;
use tuf_mirror_client::client::{MirrorClient, Party};
use tuf_mirror_client::Error;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::service::{published_dir, Service};
use tuf_mirror_daemon::state::State;
use tuf_mirror_tests::builder::{TestKey, SNAPSHOT, TARGETS, TIMESTAMP};
use tuf_mirror_tests::fixtures;

fn export(config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tuf-mirror"))
        .args(["bundle", "export", "--config"])
        .arg(config)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_what_the_mirror_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut upstream = fixtures::basic();
    common::write_upstream(&upstream.publish(), dir);
    common::generate_keys(dir);
    let config_path = common::write_config(dir, "");
    let config = tuf_mirror_config::Config::load(&config_path).unwrap();

    let out = dir.join("site-bundle.json");
    let out_s = out.to_str().unwrap();
    // Nothing published yet.
    let e = failed(&export(&config_path, &["--out", out_s]));
    assert!(e.contains("nothing published"), "{e}");

    std::fs::create_dir_all(&config.server.state_dir).unwrap();
    let state = State::open(&config.server.state_dir.join("state.redb")).unwrap();
    // The service keeps the state store open for the rest of the test: export does not
    // need it.
    let service = Service::open(&config, Arc::new(state), Arc::new(SystemClock)).unwrap();
    service.sync("r").await.unwrap();

    let stdout = ok(&export(&config_path, &["--out", out_s]));
    assert!(
        stdout.contains(
            "r: mirror root v1, 1 pinned targets key(s), threshold 1, mirrors http://127.0.0.1:8080/r/"
        ),
        "{stdout}"
    );
    let b = Bundle::load(&out).unwrap();
    let r = b.repository("r").unwrap();
    let tree = published_dir(&config.server.state_dir).join("r");
    let served_root = std::fs::read(tree.join("metadata/root.json")).unwrap();
    assert_eq!(r.mirror_root, served_root.trim_ascii_end());
    let upstream_root = std::fs::read(tree.join("upstream/1.root.json")).unwrap();
    assert_eq!(
        r.upstream_root.as_deref(),
        Some(upstream_root.trim_ascii_end())
    );
    let targets_key = upstream.role_keys(TARGETS)[0].key_id().to_owned();
    assert_eq!(
        r.targets_keys.keys().keys().collect::<Vec<_>>(),
        [&targets_key]
    );
    assert_eq!(r.policy.upstream_targets_grace, None, "strict by default");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // Mirror URLs and an explicit grace.
    ok(&export(
        &config_path,
        &[
            "--out",
            out_s,
            "--repo",
            "r",
            "--mirror-url",
            "https://a.example/",
            "--mirror-url",
            "https://b.example/tuf",
            "--dangerous-upstream-targets-grace",
            "7d",
        ],
    ));
    let b = Bundle::load(&out).unwrap();
    let r = b.repository("r").unwrap();
    let urls: Vec<&str> = r.mirrors.iter().map(|u| u.as_str()).collect();
    assert_eq!(urls, ["https://a.example/r/", "https://b.example/tuf/r/"]);
    assert_eq!(
        r.policy.upstream_targets_grace,
        Some(Duration::from_secs(7 * 86_400))
    );
    let e = failed(&export(
        &config_path,
        &["--out", out_s, "--dangerous-mirror-timestamp-grace", "91d"],
    ));
    assert!(e.contains("above the cap of 90d"), "{e}");
    let e = failed(&export(&config_path, &["--out", out_s, "--repo", "nope"]));
    assert!(e.contains("no repository \"nope\""), "{e}");
    let wildcard = dir.join("wildcard.toml");
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("[server]\n", "[server]\nlisten = \"0.0.0.0:8080\"\n");
    std::fs::write(&wildcard, text).unwrap();
    let e = failed(&export(&wildcard, &["--out", out_s]));
    assert!(
        e.contains("clients cannot connect to") && e.contains("--mirror-url"),
        "{e}"
    );

    // Clients of a file copy of the tree (the bundle's URLs are for the real server).
    let base = url::Url::from_directory_path(published_dir(&config.server.state_dir)).unwrap();
    let base = base.as_str();
    ok(&export(
        &config_path,
        &["--out", out_s, "--mirror-url", base],
    ));
    let old = Bundle::load(&out).unwrap();
    let mut c = MirrorClient::builder(&old, "r").unwrap().build().unwrap();
    c.refresh().unwrap();

    // The upstream rotates its targets key; the daemon (root keys online) publishes
    // mirror root v2 listing the new key.
    let new_key = TestKey::ed25519_from_label("targets-2");
    upstream.rotate_role_keys(TARGETS, [new_key.clone()], 1);
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    common::write_upstream(&upstream.publish(), dir);
    let o = service.sync("r").await.unwrap();
    assert_eq!(o.root, Some(2));

    // Clients of the old bundle are told to update it (or that the mirror misbehaves).
    let mut c = MirrorClient::builder(&old, "r").unwrap().build().unwrap();
    let e = c.refresh().unwrap_err();
    assert!(matches!(e.engine_error(), Some(Error::Pin { .. })), "{e:?}");
    assert_eq!(e.party(), Some(Party::KeyBundle));

    // The re-exported bundle has root v2 and pins the new key; its clients succeed.
    let stdout = ok(&export(
        &config_path,
        &["--out", out_s, "--mirror-url", base],
    ));
    assert!(stdout.contains("mirror root v2"), "{stdout}");
    let new = Bundle::load(&out).unwrap();
    let r = new.repository("r").unwrap();
    assert_eq!(
        r.targets_keys.keys().keys().collect::<Vec<_>>(),
        [new_key.key_id()]
    );
    let mut c = MirrorClient::builder(&new, "r").unwrap().build().unwrap();
    c.refresh().unwrap();
    assert!(c.target_info("hello.txt").unwrap().is_some());
}
