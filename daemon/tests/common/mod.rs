//! A one-repository daemon setup shared by the daemon's tests: the upstream in `DIR/up`,
//! file keys in `DIR/k`, state in `DIR/state`.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tuf_mirror_config::Config;
use tuf_mirror_tests::builder::PublishedRepo;

/// Writes `repo` as the upstream, with its trust anchor at `DIR/up/root.json`.
pub fn write_upstream(repo: &PublishedRepo, dir: &Path) {
    repo.write_to(&dir.join("up")).unwrap();
    std::fs::write(dir.join("up/root.json"), repo.trust_anchor()).unwrap();
}

/// Generates the mirror's root, snapshot and timestamp keys (ed25519 files).
pub fn generate_keys(dir: &Path) {
    std::fs::create_dir_all(dir.join("k")).unwrap();
    for role in ["root", "snapshot", "timestamp"] {
        let path = dir.join(format!("k/{role}.pem"));
        tuf_mirror_keys::generate(tuf_mirror_keys::Algorithm::Ed25519, &path).unwrap();
    }
}

/// Writes `DIR/config.toml` for repository `r` (plus `extra` lines in its table).
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        r#"[server]
state_dir = "{d}/state"
[[repository]]
name = "r"
upstream_metadata = "{d}/up/metadata"
upstream_targets = "{d}/up/targets"
upstream_root = "{d}/up/root.json"
root_keys = ["file:{d}/k/root.pem"]
root_threshold = 1
snapshot_keys = ["file:{d}/k/snapshot.pem"]
timestamp_keys = ["file:{d}/k/timestamp.pem"]
{extra}
"#,
        d = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// [`write_config`], loaded.
pub fn config(dir: &Path, extra: &str) -> Config {
    Config::load(write_config(dir, extra)).unwrap()
}

/// Runs `tuf-mirror ARGS` with `RUST_LOG=warn`.
pub fn tuf_mirror(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tuf-mirror"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// [`tuf_mirror`], which must succeed: its stdout and stderr together.
pub fn tuf_mirror_ok(args: &[&str]) -> String {
    let o = tuf_mirror(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "tuf-mirror {args:?}: {text}");
    text
}

/// The workspace's `tuf-fetch`, next to the test's binary (built by `cargo nextest run
/// --workspace`, or `cargo build -p tuf-mirror-client --bin tuf-fetch`).
pub fn tuf_fetch() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("tuf-fetch");
    assert!(
        p.exists(),
        "{} missing: build it with `cargo build -p tuf-mirror-client --bin tuf-fetch`",
        p.display()
    );
    p
}

/// A ledger in memory that grants every reservation (the tests using it are about
/// serving, signers and logs, not about version bookkeeping; `cycle.rs` has a strict one).
#[derive(Default)]
pub struct MemLedger(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl tuf_mirror_daemon::cycle::Ledger for MemLedger {
    fn high_water(
        &self,
        repo: &str,
        role: &str,
    ) -> Result<Option<u64>, tuf_mirror_daemon::cycle::CycleError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&format!("{repo}/{role}"))
            .copied())
    }
    fn reserve(
        &self,
        repo: &str,
        role: &str,
        version: u64,
        _c: [u8; 32],
    ) -> Result<(), tuf_mirror_daemon::cycle::CycleError> {
        self.0
            .lock()
            .unwrap()
            .insert(format!("{repo}/{role}"), version);
        Ok(())
    }
    fn check_clock(
        &self,
        _r: &str,
        _n: jiff::Timestamp,
    ) -> Result<(), tuf_mirror_daemon::cycle::CycleError> {
        Ok(())
    }
    fn record_signing(
        &self,
        _r: &str,
        _n: jiff::Timestamp,
    ) -> Result<(), tuf_mirror_daemon::cycle::CycleError> {
        Ok(())
    }
}
