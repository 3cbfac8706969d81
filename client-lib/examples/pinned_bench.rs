//! What pinning costs: pinned against unpinned refreshes of the same repository, in one
//! process, alternating, so both see the same machine state.
//!
//! ```text
//! cargo run --release -p tuf-mirror-client --example pinned_bench -- DIR [RUNS] [TARGET]
//! ```
//!
//! DIR is a repository made by `tests/peers/tuf_upstream.py init` (`DIR/root.json`,
//! `DIR/repo/metadata/`, `DIR/repo/targets/`); its root plays the mirror root, and its
//! targets keys the pins (they are the keys the root lists, as for a mirror). Measured:
//!
//! - client: a cold [`MirrorClient`] (memory cache) refreshes and downloads TARGET, pinned
//!   against `dangerous_trust_mirror_for_targets`;
//! - engine, all roles: a cold [`Updater`] loads every delegated role, with
//!   `TargetsTrust::Pinned` against `TargetsTrust::FromRoot`.
//!
//! Prints one markdown table row per measurement: median and minimum of RUNS (default
//! 31) runs of each, and the pinned / unpinned ratio of the medians.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tuf_mirror_client::bundle::pins_from_root;
use tuf_mirror_client::client::ClientBuilder;
use tuf_mirror_client::key::KeyJson;
use tuf_mirror_client::{
    DelegationMode, FileTransport, MemoryStore, PinnedKeys, TargetsTrust, Updater, UpdaterConfig,
};
use url::Url;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn pins(root: &[u8]) -> Result<PinnedKeys> {
    let (keys, threshold) = pins_from_root(root)?;
    let mut map = HashMap::new();
    for (id, text) in keys {
        map.insert(id, serde_json::from_str::<KeyJson>(&text)?);
    }
    Ok(PinnedKeys::new(map, threshold))
}

fn client_run(
    repo: &Url,
    root: &[u8],
    pins: &PinnedKeys,
    pinned: bool,
    target: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let mut b = ClientBuilder::new("bench", vec![repo.clone()], root.to_vec(), pins.clone());
    if !pinned {
        b = b.dangerous_trust_mirror_for_targets();
    }
    let mut c = b.build()?;
    c.refresh()?;
    let info = c.download(target, &mut std::io::sink())?;
    let elapsed = start.elapsed();
    assert!(info.length > 0);
    Ok(elapsed)
}

fn engine_run(repo: &Url, root: &[u8], pins: &PinnedKeys, pinned: bool) -> Result<Duration> {
    let start = Instant::now();
    let mut config = UpdaterConfig::new(repo.join("metadata/")?);
    config.mode = DelegationMode::All;
    config.targets_trust = if pinned {
        TargetsTrust::Pinned(pins.clone())
    } else {
        TargetsTrust::FromRoot
    };
    let mut u = Updater::init(
        config,
        Arc::new(FileTransport),
        Arc::new(MemoryStore::default()),
        root,
    )?;
    u.refresh()?;
    let elapsed = start.elapsed();
    assert!(u.roles().count() > 1);
    Ok(elapsed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: pinned_bench DIR [RUNS] [TARGET]")?,
    );
    let runs: usize = args.next().map_or(Ok(31), |r| r.parse())?;
    let target = args
        .next()
        .unwrap_or_else(|| "pkgs/pkg-0000003.tar.gz".to_owned());
    let root = std::fs::read(dir.join("root.json"))?;
    let repo = Url::from_directory_path(Path::new(&dir).join("repo").canonicalize()?)
        .map_err(|()| "repository path is not absolute")?;
    let pins = pins(&root)?;

    // One warm-up of each, not counted.
    client_run(&repo, &root, &pins, true, &target)?;
    engine_run(&repo, &root, &pins, true)?;

    let (mut cp, mut cu, mut ep, mut eu) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        // Alternate which goes first.
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for pinned in order {
            let d = client_run(&repo, &root, &pins, pinned, &target)?;
            if pinned {
                cp.push(d)
            } else {
                cu.push(d)
            }
        }
        for pinned in order {
            let d = engine_run(&repo, &root, &pins, pinned)?;
            if pinned {
                ep.push(d)
            } else {
                eu.push(d)
            }
        }
    }
    println!("| measurement | pinned (median, min) | unpinned (median, min) | pinned / unpinned |");
    println!("| --- | --- | --- | --- |");
    for (what, p, u) in [
        ("client: cold refresh + 1 target", cp, cu),
        ("engine: cold load, every role", ep, eu),
    ] {
        let (pmin, umin) = (
            *p.iter().min().ok_or("no runs")?,
            *u.iter().min().ok_or("no runs")?,
        );
        let (pm, um) = (median(p), median(u));
        println!(
            "| {what} | {}, {} | {}, {} | {:.3} |",
            ms(pm),
            ms(pmin),
            ms(um),
            ms(umin),
            pm.as_secs_f64() / um.as_secs_f64()
        );
    }
    Ok(())
}
