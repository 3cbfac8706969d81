//! Crash safety: `tuf-mirror sync` and `resign` are killed with SIGKILL at random moments,
//! over and over, while the upstream changes now and then. After every kill the served
//! tree must verify with python-tuf's ngclient (holding only the mirror's root version
//! 1), the next run must succeed, and no version of timestamp.json or of any versioned
//! file may ever appear with two different contents.
//!
//! `TUF_MIRROR_CRASH_CYCLES` sets the number of kills (default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_lc_rs::digest;
use tuf_mirror_tests::builder::{RepoBuilder, SNAPSHOT, TIMESTAMP};
use tuf_mirror_tests::{fixtures, peers};

const TARGETS: [&str; 3] = ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"];

fn write_up(repo: &RepoBuilder, dir: &Path) {
    common::write_upstream(&repo.publish(), dir);
}

fn setup(dir: &Path) -> PathBuf {
    common::generate_keys(dir);
    common::write_config(dir, "")
}

fn mirror(config: &Path, what: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tuf-mirror"));
    c.args([what, "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Every versioned file of the tree and timestamp.json, with the sha256 of its bytes.
fn snapshot_files(tree: &Path, seen: &mut HashMap<String, [u8; 32]>) {
    let mut stack = vec![tree.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                continue;
            }
            let versioned = name
                .split('.')
                .next()
                .is_some_and(|v| v.parse::<u64>().is_ok());
            let key = if name == "timestamp.json" {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                format!("{}#v{}", p.display(), v["signed"]["version"])
            } else if versioned {
                p.display().to_string()
            } else {
                continue;
            };
            let mut h = [0u8; 32];
            h.copy_from_slice(
                digest::digest(&digest::SHA256, &std::fs::read(&p).unwrap()).as_ref(),
            );
            if let Some(old) = seen.insert(key.clone(), h) {
                assert_eq!(old, h, "{key} changed content");
            }
        }
    }
}

#[test]
fn killed_at_random_moments_the_served_tree_always_verifies() {
    let cycles: usize = std::env::var("TUF_MIRROR_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut upstream = fixtures::basic();
    write_up(&upstream, dir);
    let config = setup(dir);
    let started = std::time::Instant::now();
    let out = mirror(&config, "sync").output().unwrap();
    // Kills are spread over the time of a whole first sync (later runs are quicker): every
    // phase, and some after the end.
    let span_us = (started.elapsed().as_micros() as u64).max(1_000);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = dir.join("state/published/r");

    let mut verifier = Command::new(peers::python())
        .arg(peers::script("verify_loop.py"))
        .arg(tree.join("metadata/1.root.json"))
        .args(TARGETS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_py = verifier.stdin.take().unwrap();
    let mut from_py = BufReader::new(verifier.stdout.take().unwrap());
    let mut verify = |label: &str| {
        writeln!(to_py, "{}", tree.display()).unwrap();
        let mut line = String::new();
        from_py.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("OK "),
            "{label}: python-tuf refused the served tree: {line}"
        );
    };

    let mut seen = HashMap::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed_mid_run = 0;
    for i in 0..cycles {
        if i % 10 == 5 {
            // The upstream moves on: a new target in a bin, new snapshot and timestamp.
            let bin = format!("bin-{:x}", i % 16);
            upstream.add_target(
                &bin,
                &format!("packages/n{i}.txt"),
                format!("n{i}").into_bytes(),
            );
            upstream.bump_version(&bin);
            upstream.bump_version(SNAPSHOT);
            upstream.bump_version(TIMESTAMP);
            write_up(&upstream, dir);
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let what = if i % 3 == 0 { "sync" } else { "resign" };
        let mut child = mirror(&config, what).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng % span_us));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        verify(&format!("after kill {i} ({what})"));
        snapshot_files(&tree, &mut seen);
    }
    // And the next runs complete.
    for what in ["sync", "resign"] {
        let out = mirror(&config, what).output().unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    verify("at the end");
    snapshot_files(&tree, &mut seen);
    drop(to_py);
    let _ = verifier.wait();
    eprintln!(
        "{cycles} kills, {killed_mid_run} while running, {} versioned files checked",
        seen.len()
    );
    assert!(
        killed_mid_run * 8 > cycles,
        "too few kills landed mid-run: {killed_mid_run}/{cycles}"
    );
}
