//! The engine on repositories written by python-tuf (`tests/peers/tuf_upstream.py`),
//! an implementation nobody here wrote: consistent snapshots on and off, 100,000
//! targets in 256 hashed bins, TAP 15 succinct bins, a rotated root, a rotated targets
//! key. Needs python-tuf (scripts/install-test-deps.sh); fails without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tuf_mirror_client::{DelegationMode, DirStore, FileTransport, Updater, UpdaterConfig};
use tuf_mirror_tests::peers;
use url::Url;

/// Runs `tuf_upstream.py ARGS`.
fn upstream(args: &[&str]) {
    let out = Command::new(peers::python())
        .arg(peers::script("tuf_upstream.py"))
        .args(args)
        .output()
        .expect("run tuf_upstream.py");
    assert!(
        out.status.success(),
        "tuf_upstream.py {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn init(dir: &Path, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["init", d, "--seed", "tuf-mirror-tests"];
    args.extend_from_slice(extra);
    upstream(&args);
}

fn dir_url(p: PathBuf) -> Url {
    Url::from_directory_path(p).unwrap()
}

fn client(up: &Path, store: &Path, mode: DelegationMode) -> Updater {
    let mut c = UpdaterConfig::new(dir_url(up.join("repo/metadata")));
    c.targets_base = Some(dir_url(up.join("repo/targets")));
    c.mode = mode;
    let store = Arc::new(DirStore::new(store).unwrap());
    let anchor = std::fs::read(up.join("root.json")).unwrap();
    let mut u = Updater::init(c, Arc::new(FileTransport), store, &anchor).unwrap();
    u.refresh().unwrap();
    u
}

fn total_targets(u: &Updater) -> usize {
    u.roles().map(|r| r.targets.len()).sum()
}

/// Downloads `paths` through a lazy client and checks the bytes are the real files.
fn download_all(up: &Path, paths: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut u = client(up, &tmp.path().join("md"), DelegationMode::Lazy);
    for p in paths {
        let info = u
            .target_info(p)
            .unwrap()
            .unwrap_or_else(|| panic!("{p} not found"));
        let dest = tmp.path().join(tuf_mirror_client::names::encode_role(p));
        u.download_target(&info, &dest).unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), info.length, "{p}");
    }
}

const SOME: [&str; 3] = [
    "README.txt",
    "releases/app-1.0.tar.gz",
    "pkgs/pkg-0000003.tar.gz",
];

#[test]
fn consistent_snapshot_on_and_off() {
    for cs in ["on", "off"] {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("up");
        init(
            &up,
            &[
                "--targets",
                "2000",
                "--bins",
                "16",
                "--files",
                "5",
                "--consistent-snapshot",
                cs,
            ],
        );
        let all = client(&up, &tmp.path().join("all"), DelegationMode::All);
        assert_eq!(all.roles().count(), 1 + 1 + 16, "consistent {cs}");
        assert_eq!(all.root().signed.consistent_snapshot, cs == "on");
        // 2,000 synthetic + 2 top-level + releases' files.
        let n = total_targets(&all);
        assert!(
            n >= 2002 && all.role("releases").unwrap().targets.len() + 2002 == n,
            "{n}"
        );
        download_all(&up, &SOME);
    }
}

#[test]
fn a_hundred_thousand_targets_in_256_bins() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    init(
        &up,
        &[
            "--targets",
            "100000",
            "--bins",
            "256",
            "--files",
            "5",
            "--compact",
        ],
    );
    let started = std::time::Instant::now();
    let all = client(&up, &tmp.path().join("all"), DelegationMode::All);
    eprintln!("cold load of 258 roles: {:?}", started.elapsed());
    assert_eq!(all.roles().count(), 258);
    assert_eq!(
        total_targets(&all) - all.role("releases").unwrap().targets.len(),
        100_002
    );
    download_all(&up, &SOME);
}

#[test]
fn succinct_hash_bins() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    init(
        &up,
        &[
            "--targets",
            "3000",
            "--bins",
            "64",
            "--files",
            "5",
            "--succinct",
        ],
    );
    let all = client(&up, &tmp.path().join("all"), DelegationMode::All);
    // targets, releases, bins (the succinct delegator), 64 bins.
    assert_eq!(all.roles().count(), 3 + 64);
    download_all(&up, &SOME);
}

#[test]
fn rotated_root_and_rotated_targets_key_are_followed_cold_and_warm() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    init(&up, &["--targets", "500", "--bins", "16", "--files", "5"]);
    let warm_dir = tmp.path().join("warm");
    let warm = client(&up, &warm_dir, DelegationMode::All);
    assert_eq!(warm.root().version(), 1);
    let d = up.to_str().unwrap();
    upstream(&["rotate-targets-key", d]);
    upstream(&["rotate-root-key", d]);
    upstream(&["bump", d, "--add", "10"]);

    // Cold: a client holding only root v1.
    let cold = client(&up, &tmp.path().join("cold"), DelegationMode::All);
    assert_eq!(cold.root().version(), 3);
    // Warm: the earlier store, a new process.
    let mut c = UpdaterConfig::new(dir_url(up.join("repo/metadata")));
    c.mode = DelegationMode::All;
    let mut u = Updater::new(
        c,
        Arc::new(FileTransport),
        Arc::new(DirStore::new(&warm_dir).unwrap()),
    )
    .unwrap();
    u.refresh().unwrap();
    assert_eq!(u.root().version(), 3);
    assert_eq!(total_targets(&u), total_targets(&cold));
    assert!(u.stats().fetched.iter().any(|f| f == "targets"));
    download_all(&up, &SOME);
}
