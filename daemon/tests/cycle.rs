//! Sign-and-publish cycles over an upstream: first publish, re-sign ticks, upstream
//! changes, a targets-key rotation with online root keys, version bookkeeping, the clock
//! check, and a candidate that fails verification publishing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::Ed25519KeyPair;
use jiff::{SignedDuration, Timestamp};
use tough::sign::Sign;
use tuf_mirror_client::Updater;
use tuf_mirror_config::{Config, Source};
use tuf_mirror_daemon::clock::{Clock, FixedClock};
use tuf_mirror_daemon::cycle::{CycleError, Ledger, Memo, Mirror, UpstreamView};
use tuf_mirror_daemon::mirror::{MirrorKey, MirrorKeys};
use tuf_mirror_daemon::publish::Tree;
use tuf_mirror_daemon::upstream::{updater, ChainStore};
use tuf_mirror_tests::builder::{RepoBuilder, TestKey, ROOT, SNAPSHOT, TARGETS, TIMESTAMP};
use tuf_mirror_tests::{fixtures, peers};

#[derive(Default)]
struct MemLedger {
    marks: Mutex<HashMap<String, (u64, [u8; 32])>>,
    last: Mutex<Option<Timestamp>>,
}

impl Ledger for MemLedger {
    fn high_water(&self, repo: &str, role: &str) -> Result<Option<u64>, CycleError> {
        Ok(self
            .marks
            .lock()
            .unwrap()
            .get(&format!("{repo}/{role}"))
            .map(|m| m.0))
    }
    fn reserve(
        &self,
        repo: &str,
        role: &str,
        version: u64,
        content: [u8; 32],
    ) -> Result<(), CycleError> {
        let mut m = self.marks.lock().unwrap();
        let key = format!("{repo}/{role}");
        match m.get(&key) {
            Some((v, c)) if *v > version || (*v == version && *c != content) => {
                Err(CycleError::State {
                    repo: repo.into(),
                    reason: format!("{role} version {version} already reserved"),
                })
            }
            _ => {
                m.insert(key, (version, content));
                Ok(())
            }
        }
    }
    fn check_clock(&self, repo: &str, now: Timestamp) -> Result<(), CycleError> {
        match *self.last.lock().unwrap() {
            Some(last) if now < last => Err(CycleError::State {
                repo: repo.into(),
                reason: "clock behind".into(),
            }),
            _ => Ok(()),
        }
    }
    fn record_signing(&self, _repo: &str, now: Timestamp) -> Result<(), CycleError> {
        *self.last.lock().unwrap() = Some(now);
        Ok(())
    }
}

fn mkey(role: &'static str, seed: u8) -> MirrorKey {
    let s: Arc<dyn Sign> = Arc::new(Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap());
    MirrorKey::new(role, s).unwrap()
}

fn keys() -> MirrorKeys {
    MirrorKeys {
        root: vec![mkey("root", 1)],
        root_threshold: 1,
        snapshot: vec![mkey("snapshot", 2)],
        timestamp: vec![mkey("timestamp", 3)],
    }
}

fn config(dir: &Path) -> Config {
    common::config(dir, "")
}

fn write_up(repo: &RepoBuilder, dir: &Path) {
    common::write_upstream(&repo.publish(), dir);
}

fn refreshed(dir: &Path, chain: &Arc<ChainStore>) -> Updater {
    let mut u = updater(
        &Source::Dir(dir.join("up/metadata")),
        &dir.join("up/root.json"),
        chain.clone(),
        None,
    )
    .unwrap();
    u.refresh().unwrap();
    u
}

fn served_snapshot_meta(tree: &Path) -> serde_json::Value {
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("metadata/timestamp.json")).unwrap())
            .unwrap();
    let v = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tree.join(format!("metadata/{v}.snapshot.json"))).unwrap(),
    )
    .unwrap();
    s["signed"]["meta"].clone()
}

fn python_downloads(tree: &Path, targets: &[&str]) -> String {
    python_downloads_at(tree, targets, None)
}

/// Runs python-tuf's client, under faketime at `at` if given.
fn python_downloads_at(tree: &Path, targets: &[&str], at: Option<Timestamp>) -> String {
    let mut cmd = match at {
        Some(t) => {
            let mut c = std::process::Command::new("faketime");
            c.arg(t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                .arg(peers::python());
            c.env("TZ", "UTC");
            c
        }
        None => std::process::Command::new(peers::python()),
    };
    let out = cmd
        .arg(peers::script("tuf_client.py"))
        .args([
            "--metadata-url",
            "http://m.test/metadata/",
            "--targets-url",
            "http://m.test/targets/",
        ])
        .arg("--root")
        .arg(tree.join("metadata/1.root.json"))
        .arg("--file-fetcher")
        .arg(tree)
        .args(["--info-only"])
        .args(targets)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[tokio::test]
async fn publish_resign_sync_and_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut upstream = fixtures::basic();
    write_up(&upstream, dir);
    let cfg = config(dir);
    let repo = &cfg.repositories[0];
    let keys = keys();
    let ledger = MemLedger::default();
    let t0: Timestamp = Timestamp::now();
    let clock = FixedClock::new(t0);
    let tree_dir = dir.join("published/r");
    let m = Mirror {
        repo,
        tree: Tree::new(&tree_dir),
        keys: &keys,
        ledger: &ledger,
        clock: &clock,
        memo: &Memo::default(),
    };
    let chain = Arc::new(ChainStore::open(&dir.join("state"), "r").unwrap());

    // First publish: root, snapshot and timestamp version 1.
    let up = refreshed(dir, &chain);
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (Some(1), Some(1), 1));
    python_downloads(
        &tree_dir,
        &["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"],
    );
    assert!(tree_dir.join("upstream/1.root.json").exists());

    // A re-sign tick an hour later: only a new timestamp.
    clock.set(t0 + SignedDuration::from_hours(1));
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (None, None, 2));

    // The upstream adds a target: new snapshot.
    upstream.add_target("releases", "releases/app-2.0.tar.gz", b"two".to_vec());
    upstream.bump_version("releases");
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    write_up(&upstream, dir);
    let up = refreshed(dir, &chain);
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (None, Some(2), 3));
    let s = python_downloads(&tree_dir, &["releases/app-2.0.tar.gz"]);
    assert!(s.contains("OK releases/app-2.0.tar.gz"), "{s}");

    // The upstream rotates its targets key: a new mirror root with the new key.
    upstream.rotate_role_keys(TARGETS, [TestKey::ed25519_from_label("targets-2")], 1);
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    write_up(&upstream, dir);
    let up = refreshed(dir, &chain);
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!(o.root, Some(2));
    assert!(!o.root_signature_needed);
    python_downloads(&tree_dir, &["hello.txt", "releases/app-2.0.tar.gz"]);
    assert!(tree_dir.join("upstream/2.root.json").exists());

    // The upstream rotates its root key: the mirror root stays (it lists the same
    // targets keys), the new upstream root is republished for upstream-anchored
    // clients, and clients of the mirror go on.
    upstream.rotate_role_keys(ROOT, [TestKey::ed25519_from_label("root-2")], 1);
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    write_up(&upstream, dir);
    let up = refreshed(dir, &chain);
    assert_eq!(up.root().version(), 3);
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!((o.root, o.snapshot), (None, None));
    assert_eq!(
        std::fs::read(tree_dir.join("upstream/3.root.json")).unwrap(),
        std::fs::read(dir.join("up/metadata/3.root.json")).unwrap()
    );
    python_downloads(&tree_dir, &["hello.txt", "releases/app-2.0.tar.gz"]);

    // A version reserved but never published (a crash) is skipped, never reused.
    ledger.reserve("r", "timestamp", 9, [7; 32]).unwrap();
    let o = m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .unwrap();
    assert_eq!(o.timestamp, 10);

    // Re-sign ticks without an upstream view (a restart while the upstream is away).
    clock.set(t0 + SignedDuration::from_hours(2));
    let o = m.resign().await.unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (None, None, 11));
    // Days later the snapshot nears expiry (7 days by default): re-signed, same content.
    let meta_before = served_snapshot_meta(&tree_dir);
    clock.set(t0 + SignedDuration::from_hours(24 * 5));
    let o = m.resign().await.unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (None, Some(4), 12));
    assert_eq!(served_snapshot_meta(&tree_dir), meta_before);
    let s = python_downloads_at(
        &tree_dir,
        &["releases/app-2.0.tar.gz"],
        Some(t0 + SignedDuration::from_hours(24 * 5)),
    );
    assert!(s.contains("OK releases/app-2.0.tar.gz"), "{s}");

    // Nine days on, versions superseded for longer than the retention (7 days by
    // default) are gone; root versions and what the current snapshot names stay, and
    // clients go on.
    let nine_days = t0 + SignedDuration::from_hours(24 * 9);
    clock.set(nine_days);
    m.resign().await.unwrap();
    let md = tree_dir.join("metadata");
    assert!(!md.join("1.snapshot.json").exists());
    assert!(!md.join("1.releases.json").exists());
    assert!(md.join("2.releases.json").exists());
    assert!(md.join("1.root.json").exists() && md.join("2.root.json").exists());
    assert!(tree_dir.join("upstream/1.root.json").exists());
    let s = python_downloads_at(
        &tree_dir,
        &["releases/app-2.0.tar.gz", "hello.txt"],
        Some(nine_days),
    );
    assert!(s.contains("OK releases/app-2.0.tar.gz"), "{s}");

    // The clock stepped back: nothing is signed.
    clock.set(t0);
    assert!(m
        .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
        .await
        .is_err());
}

#[tokio::test]
async fn a_candidate_that_does_not_verify_publishes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_up(&fixtures::basic(), dir);
    let cfg = config(dir);
    let repo = &cfg.repositories[0];
    let keys = keys();
    let ledger = MemLedger::default();
    let clock = FixedClock::new(Timestamp::now());
    let tree_dir = dir.join("published/r");
    let chain = Arc::new(ChainStore::open(&dir.join("state"), "r").unwrap());
    let up = refreshed(dir, &chain);
    Mirror {
        repo,
        tree: Tree::new(&tree_dir),
        keys: &keys,
        ledger: &ledger,
        clock: &clock,
        memo: &Memo::default(),
    }
    .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
    .await
    .unwrap();
    let before = std::fs::read(tree_dir.join("metadata/timestamp.json")).unwrap();
    // The configuration now names another timestamp key, which the served root does not list.
    let mut wrong = keys.clone();
    wrong.timestamp = vec![mkey("timestamp", 42)];
    let e = Mirror {
        repo,
        tree: Tree::new(&tree_dir),
        keys: &wrong,
        ledger: &ledger,
        clock: &clock,
        memo: &Memo::default(),
    }
    .cycle(&UpstreamView::of(&up, chain.chain().unwrap()))
    .await
    .unwrap_err();
    assert!(matches!(e, CycleError::Verify { .. }), "{e:?}");
    assert_eq!(
        std::fs::read(tree_dir.join("metadata/timestamp.json")).unwrap(),
        before
    );
}

#[tokio::test]
async fn a_publish_interrupted_after_the_new_root_file_serves_that_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_up(&fixtures::basic(), dir);
    let cfg = config(dir);
    let repo = &cfg.repositories[0];
    let keys = keys();
    let ledger = MemLedger::default();
    let clock = FixedClock::new(Timestamp::now());
    let tree_dir = dir.join("published/r");
    let chain = Arc::new(ChainStore::open(&dir.join("state"), "r").unwrap());
    let up = refreshed(dir, &chain);
    let view = UpstreamView::of(&up, chain.chain().unwrap());
    let (first, after_restart) = (Memo::default(), Memo::default());
    let m = |memo| Mirror {
        repo,
        tree: Tree::new(&tree_dir),
        keys: &keys,
        ledger: &ledger,
        clock: &clock,
        memo,
    };
    m(&first).cycle(&view).await.unwrap();
    // Root version 2 reached the tree, `root.json` did not (a crash in between).
    let v1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree_dir.join("metadata/1.root.json")).unwrap())
            .unwrap();
    let signed = tuf_mirror_daemon::mirror::next_root_signed(
        &v1["signed"],
        2,
        clock.now() + SignedDuration::from_hours(24 * 365),
        &view,
    )
    .unwrap();
    let root_keys: Vec<_> = keys.root.iter().collect();
    let v2 = tuf_mirror_daemon::mirror::sign("root", signed, &root_keys)
        .await
        .unwrap();
    std::fs::write(tree_dir.join("metadata/2.root.json"), &v2.bytes).unwrap();
    // After a restart (nothing remembered), root 2 is what is served and root.json says so.
    let o = m(&after_restart).resign().await.unwrap();
    assert_eq!(o.root, None);
    assert_eq!(
        std::fs::read(tree_dir.join("metadata/root.json")).unwrap(),
        v2.bytes
    );
    python_downloads(&tree_dir, &["hello.txt"]);
}
