//! An upstream targets-key rotation end to end, once with the mirror's root key online
//! (the daemon follows at the next sync) and once through the ceremony (the daemon holds
//! the new upstream state back until the root is signed). Pinned clients whose bundle
//! holds the old and the new keys never fail; a bundle with the old keys only is told
//! to update once the mirror root follows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{tuf_fetch, tuf_mirror_ok as ok};
use serde_json::{json, Value};
use tuf_mirror_client::bundle::Bundle;
use tuf_mirror_client::client::{MirrorClient, Party};
use tuf_mirror_client::Error;
use tuf_mirror_tests::builder::{RepoBuilder, TestKey, SNAPSHOT, TARGETS, TIMESTAMP};
use tuf_mirror_tests::fixtures;

struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    upstream: RepoBuilder,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let upstream = fixtures::basic();
        common::write_upstream(&upstream.publish(), &dir);
        common::generate_keys(&dir);
        let config = common::write_config(&dir, "");
        Site {
            _tmp: tmp,
            dir,
            config,
            upstream,
        }
    }

    fn cfg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    fn sync(&self) -> String {
        ok(&["sync", "--config", self.cfg()])
    }

    /// `bundle export` with the tree's file URL as the mirror.
    fn export(&self, name: &str) -> PathBuf {
        let out = self.dir.join(name);
        let base = url::Url::from_directory_path(self.dir.join("state/published")).unwrap();
        ok(&[
            "bundle",
            "export",
            "--config",
            self.cfg(),
            "--out",
            out.to_str().unwrap(),
            "--mirror-url",
            base.as_str(),
        ]);
        out
    }

    /// The upstream moves its targets key to `new` and adds a target.
    fn rotate(&mut self, new: &TestKey) {
        self.upstream.rotate_role_keys(TARGETS, [new.clone()], 1);
        self.upstream
            .add_target(TARGETS, "after.txt", b"after the rotation".to_vec());
        self.upstream.bump_version(SNAPSHOT);
        self.upstream.bump_version(TIMESTAMP);
        common::write_upstream(&self.upstream.publish(), &self.dir);
    }
}

/// `bundle` with `next` added as the keys the upstream rotates to.
fn with_next(bundle: &Path, next: &TestKey, out: &Path) -> PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    v["repositories"][0]["next_targets_keys"] =
        json!({ "keys": { next.key_id(): next.public_json() }, "threshold": 1 });
    std::fs::write(out, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    out.to_owned()
}

/// A pinned client of `bundle` with its cache in `cache`: refreshes and reads `target`.
fn pinned(
    bundle: &Path,
    cache: &Path,
    target: &str,
) -> Result<Vec<u8>, tuf_mirror_client::client::ClientError> {
    let b = Bundle::load(bundle).unwrap();
    let mut c = MirrorClient::builder(&b, "r")?.cache_dir(cache).build()?;
    c.refresh()?;
    let mut out = Vec::new();
    c.download(target, &mut out)?;
    Ok(out)
}

fn assert_told_to_update(e: &tuf_mirror_client::client::ClientError) {
    assert!(matches!(e.engine_error(), Some(Error::Pin { .. })), "{e:?}");
    assert_eq!(e.party(), Some(Party::KeyBundle));
}

#[test]
fn with_the_root_key_online_the_mirror_follows_and_old_and_new_bundles_keep_working() {
    let mut site = Site::new();
    site.sync();
    let new_key = TestKey::ed25519_from_label("targets-2");
    let old_only = site.export("old.json");
    let both = with_next(&old_only, &new_key, &site.dir.join("both.json"));
    let cache = site.dir.join("cache-both");
    assert!(!pinned(&both, &cache, "hello.txt").unwrap().is_empty());
    site.rotate(&new_key);
    let out = site.sync();
    assert!(!out.contains("root signature needed"), "{out}");
    // The bundle holding both keys: the cached client and a fresh one follow.
    assert_eq!(
        pinned(&both, &cache, "after.txt").unwrap(),
        b"after the rotation"
    );
    assert_eq!(
        pinned(&both, &site.dir.join("cache-fresh"), "after.txt").unwrap(),
        b"after the rotation"
    );
    // The old keys only: told to update the bundle.
    let e = pinned(&old_only, &site.dir.join("cache-old"), "hello.txt").unwrap_err();
    assert_told_to_update(&e);
}

#[test]
fn through_the_ceremony_the_new_state_waits_and_old_and_new_bundles_never_fail() {
    let mut site = Site::new();
    site.sync();
    let old_only = site.export("old.json");
    let cache_old = site.dir.join("cache-old");
    pinned(&old_only, &cache_old, "hello.txt").unwrap();
    // The root key goes offline; the upstream rotates.
    let offline = site.dir.join("offline-root.pem");
    std::fs::rename(site.dir.join("k/root.pem"), &offline).unwrap();
    let new_key = TestKey::ed25519_from_label("targets-2");
    site.rotate(&new_key);
    let out = site.sync();
    assert!(out.contains("(root signature needed)"), "{out}");
    // Exported now, the bundle pins the current keys and the ones the upstream moved to.
    let both = site.export("both.json");
    let b = Bundle::load(&both).unwrap();
    let next = b.repository("r").unwrap().targets_keys.next().unwrap();
    assert_eq!(next.keys().keys().collect::<Vec<_>>(), [new_key.key_id()]);
    let cache_both = site.dir.join("cache-both");
    // While the new state waits, both bundles read the old one.
    let e = pinned(&both, &cache_both, "after.txt").unwrap_err();
    assert!(
        matches!(e.engine_error(), Some(Error::TargetNotFound { .. })),
        "not yet published, and not a trust failure: {e:?}"
    );
    pinned(&both, &cache_both, "hello.txt").unwrap();
    pinned(&old_only, &cache_old, "hello.txt").unwrap();

    // The ceremony publishes the root that follows the upstream.
    let next_root = site.dir.join("next.json");
    let n = next_root.to_str().unwrap();
    ok(&[
        "root",
        "prepare",
        "--config",
        site.cfg(),
        "--repo",
        "r",
        "--out",
        n,
    ]);
    ok(&[
        "root",
        "sign",
        "--file",
        n,
        "--key",
        &format!("file:{}", offline.display()),
    ]);
    ok(&[
        "root",
        "publish",
        "--config",
        site.cfg(),
        "--repo",
        "r",
        "--file",
        n,
    ]);

    // The bundle with both keys goes on, cached and fresh; the old one is told to update.
    assert_eq!(
        pinned(&both, &cache_both, "after.txt").unwrap(),
        b"after the rotation"
    );
    assert_eq!(
        pinned(&both, &site.dir.join("cache-fresh"), "after.txt").unwrap(),
        b"after the rotation"
    );
    let e = pinned(&old_only, &cache_old, "hello.txt").unwrap_err();
    assert_told_to_update(&e);
}

#[test]
fn upstream_anchored_clients_follow_the_rotation_with_the_bundle_unchanged() {
    let mut site = Site::new();
    site.sync();
    let bundle = site.export("bundle.json");
    let dir = site.dir.clone();
    let anchored = |cache: &str, target: &str| {
        let b = Bundle::load(&bundle).unwrap();
        let mut c = MirrorClient::builder(&b, "r")
            .unwrap()
            .upstream_anchored()
            .cache_dir(dir.join(cache))
            .build()
            .unwrap();
        c.refresh()?;
        let mut out = Vec::new();
        c.download(target, &mut out)?;
        Ok::<_, tuf_mirror_client::client::ClientError>(out)
    };
    assert!(!anchored("cache-a", "hello.txt").unwrap().is_empty());
    site.rotate(&TestKey::ed25519_from_label("targets-2"));
    site.sync();
    // Same bundle: the anchored clients follow (cached and fresh); the pinned one is
    // told to update its bundle.
    assert_eq!(
        anchored("cache-a", "after.txt").unwrap(),
        b"after the rotation"
    );
    assert_eq!(
        anchored("cache-b", "after.txt").unwrap(),
        b"after the rotation"
    );
    assert_told_to_update(&pinned(&bundle, &site.dir.join("cache-p"), "hello.txt").unwrap_err());
    // The command-line front of the same.
    let out_dir = site.dir.join("dl");
    let o = Command::new(tuf_fetch())
        .arg("--bundle")
        .arg(&bundle)
        .args([
            "--repo",
            "r",
            "--upstream-anchored",
            "--target-name",
            "after.txt",
        ])
        .arg("--target-dir")
        .arg(&out_dir)
        .arg("download")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(written.len(), 1);
    // A bundle without an upstream root cannot be used that way.
    let mut v: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    v["repositories"][0]
        .as_object_mut()
        .unwrap()
        .remove("upstream_root");
    let no_up = site.dir.join("no-upstream.json");
    std::fs::write(&no_up, serde_json::to_vec(&v).unwrap()).unwrap();
    let b = Bundle::load(&no_up).unwrap();
    let e = MirrorClient::builder(&b, "r")
        .unwrap()
        .upstream_anchored()
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("upstream-anchored mode needs the upstream root"),
        "{e}"
    );
}
