//! Sync and re-sign costs of the daemon on a generated upstream, for `bench/daemon.sh`.
//!
//! ```text
//! daemon_bench UPSTREAM_DIR WORK_DIR [--ticks N] [--runs N] [--no-second-sync]
//! ```
//!
//! `UPSTREAM_DIR` is made by `tests/peers/tuf_upstream.py init` (`root.json`,
//! `repo/metadata/`). `WORK_DIR` must not exist: it gets the keys, the configuration and a
//! fresh state directory. In one process, it measures and prints `key=value` lines:
//!
//! 1. `first_sync_ms`: the first sync, cold (fresh state, no engine yet), then
//!    `rss_after_first_sync_kb` (VmHWM, the peak so far, from /proc/self/status).
//! 2. `resign_tick_ms_*`: `--ticks` re-sign ticks (`Service::resign`: new timestamp,
//!    verify, publish), median, min and max.
//!    `served_read_ms`: the first step of a tick alone (`Mirror::served`: read and parse
//!    the served root, snapshot and timestamp), median of `--runs`.
//! 3. `forced_snapshot_resign_ms`: what a snapshot re-sign signs (the served snapshot's
//!    meta re-signed as a new snapshot, then a timestamp over it, with `mirror::sign`),
//!    median of `--runs`; signing only, no publish. `timestamp_sign_ms`: the timestamp
//!    alone the same way.
//! 4. `tough_snapshot_sign_ms`, `tough_timestamp_sign_ms`, `tough_both_sign_ms`: tough's
//!    `SignedRole::new` on a `tough::schema::Snapshot` with the same meta entries (names,
//!    versions, lengths, sha256) and on a `Timestamp`, same ed25519 key, median of `--runs`.
//! 5. Unless `--no-second-sync`: prints `READY-FOR-CHANGE` and waits for a line on stdin
//!    (the caller changes the upstream meanwhile), then `second_sync_ms` (the same
//!    service, so the engine is kept) and `second_over_first` (ratio).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tough::editor::signed::SignedRole;
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::{Hashes, KeyHolder, Metafile, Role, RoleKeys, RoleType, Root, Snapshot};
use tuf_mirror_config::Config;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::cycle::{Ledger, Memo, Mirror};
use tuf_mirror_daemon::mirror::{self, MirrorKey, SignedDoc};
use tuf_mirror_daemon::publish::Tree;
use tuf_mirror_daemon::service::{published_dir, Service};
use tuf_mirror_daemon::state::State;
use tuf_mirror_keys::FileKey;

const REPO: &str = "bench";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn out(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
    std::io::stdout().flush().unwrap();
}

/// Nanoseconds this thread has run on a CPU (Linux schedstat): a tick's own work,
/// without the time it waits for fsync.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn config(up: &Path, work: &Path) -> Config {
    std::fs::create_dir_all(work.join("keys")).unwrap();
    for role in ["root", "snapshot", "timestamp"] {
        tuf_mirror_keys::generate(
            tuf_mirror_keys::Algorithm::Ed25519,
            &work.join(format!("keys/{role}.pem")),
        )
        .unwrap();
    }
    let text = format!(
        r#"[server]
state_dir = "{w}/state"
[[repository]]
name = "{REPO}"
upstream_metadata = "{u}/repo/metadata"
upstream_root = "{u}/root.json"
mirror_targets = false
root_keys = ["file:{w}/keys/root.pem"]
root_threshold = 1
snapshot_keys = ["file:{w}/keys/snapshot.pem"]
timestamp_keys = ["file:{w}/keys/timestamp.pem"]
"#,
        u = up.display(),
        w = work.display()
    );
    std::fs::write(work.join("config.toml"), &text).unwrap();
    Config::from_str_at(&text, work.join("config.toml")).unwrap()
}

/// The served snapshot's version, its `meta`, and the served file's bytes.
fn served_snapshot(tree: &Path) -> (u64, Value) {
    let ts: Value =
        serde_json::from_slice(&std::fs::read(tree.join("metadata/timestamp.json")).unwrap())
            .unwrap();
    let v = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap: Value = serde_json::from_slice(
        &std::fs::read(tree.join(format!("metadata/{v}.snapshot.json"))).unwrap(),
    )
    .unwrap();
    (v, snap["signed"]["meta"].clone())
}

fn tough_metafile(entry: &Value) -> Metafile {
    Metafile {
        length: entry["length"].as_u64(),
        hashes: entry["hashes"]["sha256"].as_str().map(|h| Hashes {
            sha256: Decoded::<Hex>::from(hex::decode(h).unwrap()),
            _extra: HashMap::new(),
        }),
        version: NonZeroU64::new(entry["version"].as_u64().unwrap()).unwrap(),
        _extra: HashMap::new(),
    }
}

struct Args {
    upstream: PathBuf,
    work: PathBuf,
    ticks: usize,
    runs: usize,
    second_sync: bool,
}

fn args() -> Args {
    let mut a = Args {
        upstream: PathBuf::new(),
        work: PathBuf::new(),
        ticks: 20,
        runs: 10,
        second_sync: true,
    };
    let mut pos = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--ticks" => a.ticks = it.next().unwrap().parse().unwrap(),
            "--runs" => a.runs = it.next().unwrap().parse().unwrap(),
            "--no-second-sync" => a.second_sync = false,
            _ => pos.push(PathBuf::from(x)),
        }
    }
    assert!(
        pos.len() == 2 && a.ticks > 0 && a.runs > 0,
        "usage: daemon_bench UPSTREAM_DIR WORK_DIR [--ticks N] [--runs N] [--no-second-sync]"
    );
    // absolute paths: the configuration refuses relative ones
    let cwd = std::env::current_dir().unwrap();
    a.work = cwd.join(pos.pop().unwrap());
    a.upstream = std::fs::canonicalize(pos.pop().unwrap()).unwrap();
    a
}

fn main() {
    let a = args();
    assert!(!a.work.exists(), "{} exists", a.work.display());
    let config = config(&a.upstream, &a.work);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&a, &config));
}

async fn run(a: &Args, config: &Config) {
    let state_dir = &config.server.state_dir;
    std::fs::create_dir_all(state_dir).unwrap();
    let state = State::open(&state_dir.join("state.redb")).unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(state);
    let service = Service::open(config, ledger.clone(), Arc::new(SystemClock)).unwrap();
    let tree = published_dir(state_dir).join(REPO);

    // 1. First sync, cold.
    let t = Instant::now();
    let o = service.sync(REPO).await.unwrap();
    let first = t.elapsed();
    out("first_sync_ms", format!("{:.1}", ms(first)));
    if let Some(kb) = vm_hwm_kb() {
        out("rss_after_first_sync_kb", kb);
    }
    let (snap_v, meta) = served_snapshot(&tree);
    let entries = meta.as_object().map_or(0, serde_json::Map::len);
    out("snapshot_meta_entries", entries);
    out("snapshot_version", snap_v);
    out("first_sync_timestamp_version", o.timestamp);

    // 2. Re-sign ticks: wall time, and time on the CPU (this thread runs the whole tick:
    // the future is the runtime's `block_on`, blocking parts use `block_in_place`).
    let mut ticks = Vec::with_capacity(a.ticks);
    let mut on_cpu = Vec::with_capacity(a.ticks);
    for _ in 0..a.ticks {
        let c = thread_cpu_ns();
        let t = Instant::now();
        let o = service.resign(REPO).await.unwrap();
        ticks.push(ms(t.elapsed()));
        if let (Some(c0), Some(c1)) = (c, thread_cpu_ns()) {
            on_cpu.push((c1 - c0) as f64 / 1e6);
        }
        assert_eq!(o.snapshot, None, "a tick re-signed the snapshot");
    }
    if !on_cpu.is_empty() {
        out(
            "resign_tick_cpu_ms_median",
            format!("{:.3}", median(on_cpu)),
        );
    }
    let (lo, hi) = (
        ticks.iter().copied().fold(f64::INFINITY, f64::min),
        ticks.iter().copied().fold(0.0, f64::max),
    );
    out("resign_ticks", a.ticks);
    out("resign_tick_ms_median", format!("{:.3}", median(ticks)));
    out("resign_tick_ms_min", format!("{lo:.3}"));
    out("resign_tick_ms_max", format!("{hi:.3}"));

    // Reading back what is served (`Mirror::served`: the served root, snapshot and
    // timestamp, read and parsed). The first cycle after a start does it once; later
    // ticks keep the served state in memory.
    let repo = &config.repositories[0];
    let keys = tuf_mirror_daemon::keyring::load_keys(repo).unwrap();
    let m = Mirror {
        repo,
        tree: Tree::new(&tree),
        keys: &keys,
        ledger: &*ledger,
        clock: &SystemClock,
        memo: &Memo::default(),
    };
    let mut reads = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        assert!(m.served().unwrap().is_some());
        reads.push(ms(t.elapsed()));
    }
    out("served_read_ms", format!("{:.3}", median(reads)));

    // 3. A forced snapshot re-sign: the signing work of a tick that re-signs the snapshot.
    let key = |role: &'static str| {
        let k = FileKey::load(&a.work.join(format!("keys/{role}.pem"))).unwrap();
        (MirrorKey::new(role, Arc::new(k.clone())).unwrap(), k)
    };
    let (snap_key, snap_file) = key("snapshot");
    let (ts_key, ts_file) = key("timestamp");
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let mut forced = Vec::new();
    let mut ts_only = Vec::new();
    let mut snap_doc: Option<SignedDoc> = None;
    for i in 0..a.runs {
        let v = 1000 + i as u64;
        let t = Instant::now();
        let s = mirror::sign(
            "snapshot",
            mirror::snapshot_from_meta(v, now + day * 7, meta.clone()),
            &[&snap_key],
        )
        .await
        .unwrap();
        let ts = mirror::sign(
            "timestamp",
            mirror::timestamp_signed(v, now + day, &s.meta()),
            &[&ts_key],
        )
        .await
        .unwrap();
        forced.push(ms(t.elapsed()));
        assert!(!ts.bytes.is_empty());
        let snap = snap_doc.get_or_insert(s);
        let t = Instant::now();
        let ts = mirror::sign(
            "timestamp",
            mirror::timestamp_signed(v, now + day, &snap.meta()),
            &[&ts_key],
        )
        .await
        .unwrap();
        ts_only.push(ms(t.elapsed()));
        assert!(!ts.bytes.is_empty());
    }
    out(
        "forced_snapshot_resign_ms",
        format!("{:.3}", median(forced)),
    );
    out("timestamp_sign_ms", format!("{:.3}", median(ts_only)));
    let snap_bytes = snap_doc.map(|d| d.bytes.len()).unwrap_or(0);
    out("snapshot_bytes", snap_bytes);

    // 4. tough's signing path on the same shape.
    let id = |k: &FileKey| Decoded::<Hex>::from(hex::decode(k.key_id().as_str()).unwrap());
    let role_keys = |k: &FileKey| RoleKeys {
        keyids: vec![id(k)],
        threshold: NonZeroU64::new(1).unwrap(),
        _extra: HashMap::new(),
    };
    let root = Root {
        spec_version: mirror::SPEC_VERSION.to_owned(),
        consistent_snapshot: true,
        version: NonZeroU64::new(1).unwrap(),
        expires: now + day * 365,
        keys: HashMap::from([
            (id(&snap_file), snap_file.public_key().clone()),
            (id(&ts_file), ts_file.public_key().clone()),
        ]),
        roles: HashMap::from([
            (RoleType::Snapshot, role_keys(&snap_file)),
            (RoleType::Timestamp, role_keys(&ts_file)),
        ]),
        _extra: HashMap::new(),
    };
    let holder = KeyHolder::Root(root);
    let sources: Vec<Box<dyn KeySource>> = vec![Box::new(snap_file), Box::new(ts_file)];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut tough_snap = Vec::new();
    let mut tough_ts = Vec::new();
    let mut tough_both = Vec::new();
    let spec = || mirror::SPEC_VERSION.to_owned();
    for i in 0..a.runs {
        let v = NonZeroU64::new(1000 + i as u64).unwrap();
        let t = Instant::now();
        let mut snapshot = Snapshot::new(spec(), v, now + day * 7);
        for (name, entry) in meta.as_object().unwrap() {
            snapshot.meta.insert(name.clone(), tough_metafile(entry));
        }
        let signed_snapshot = SignedRole::new(snapshot, &holder, &sources, &rng)
            .await
            .unwrap();
        let snap_done = t.elapsed();
        let t2 = Instant::now();
        let mut timestamp = tough::schema::Timestamp::new(spec(), v, now + day);
        timestamp.meta.insert(
            "snapshot.json".to_owned(),
            Metafile {
                length: Some(*signed_snapshot.length()),
                hashes: Some(Hashes {
                    sha256: Decoded::<Hex>::from(signed_snapshot.sha256().to_vec()),
                    _extra: HashMap::new(),
                }),
                version: signed_snapshot.signed().signed.version(),
                _extra: HashMap::new(),
            },
        );
        let signed_ts = SignedRole::new(timestamp, &holder, &sources, &rng)
            .await
            .unwrap();
        let ts_done = t2.elapsed();
        tough_snap.push(ms(snap_done));
        tough_ts.push(ms(ts_done));
        tough_both.push(ms(snap_done + ts_done));
        assert!(!signed_ts.buffer().is_empty());
    }
    out(
        "tough_snapshot_sign_ms",
        format!("{:.3}", median(tough_snap)),
    );
    out(
        "tough_timestamp_sign_ms",
        format!("{:.3}", median(tough_ts)),
    );
    out("tough_both_sign_ms", format!("{:.3}", median(tough_both)));

    // 5. Second sync after the caller changed the upstream.
    if a.second_sync {
        out("READY-FOR-CHANGE", "1");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
        let t = Instant::now();
        let o = service.sync(REPO).await.unwrap();
        let second = t.elapsed();
        out("second_sync_ms", format!("{:.1}", ms(second)));
        out("second_sync_snapshot", format!("{:?}", o.snapshot));
        out(
            "second_over_first",
            format!("{:.4}", second.as_secs_f64() / first.as_secs_f64()),
        );
        let (_, meta2) = served_snapshot(&tree);
        let changed = meta
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| meta2.get(k.as_str()) != Some(v))
            .count();
        let added = meta2.as_object().unwrap().len().saturating_sub(entries);
        out("roles_changed_by_second_sync", changed + added);
        if let Some(kb) = vm_hwm_kb() {
            out("rss_peak_kb", kb);
        }
    }
}
