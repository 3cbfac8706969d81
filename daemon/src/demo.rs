//! `tuf-mirror demo`: a throwaway upstream whose timestamp expires within minutes,
//! mirrored, re-signed every few seconds and served on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::signature::Ed25519KeyPair;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use tough::sign::Sign;

use crate::mirror::{self, MirrorKey, SignedDoc};

/// Target files of the demo upstream: (path, contents).
pub const DEMO_TARGETS: [(&str, &str); 3] = [
    ("README.txt", "tuf-mirror demo: a top-level target\n"),
    (
        "releases/app-1.0.tar.gz",
        "tuf-mirror demo: a target of the delegated role `releases`\n",
    ),
    ("releases/app-1.1.tar.gz", "tuf-mirror demo: another one\n"),
];

fn key(seed: &[u8; 32]) -> std::io::Result<MirrorKey> {
    let kp = Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let signer: Arc<dyn Sign> = Arc::new(kp);
    MirrorKey::new("upstream", signer).map_err(|e| std::io::Error::other(e.to_string()))
}

fn target_entry(contents: &str) -> Value {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, contents.as_bytes());
    json!({ "length": contents.len(), "hashes": { "sha256": hex::encode(hash) } })
}

fn keyref(k: &MirrorKey) -> Value {
    json!({ "keyids": [k.keyid()], "threshold": 1 })
}

fn keyobj(k: &MirrorKey) -> std::io::Result<Value> {
    Ok(k.public().clone())
}

/// Writes a small upstream TUF repository (consistent snapshots, a delegated role) to
/// `dir`: `dir/root.json` (the trust anchor), `dir/metadata/`, `dir/targets/`. Its
/// timestamp expires `timestamp_life` from now. Fresh random seeds: throwaway keys.
pub async fn write_upstream(dir: &Path, timestamp_life: SignedDuration) -> std::io::Result<()> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut seeds = [[0u8; 32]; 5];
    for s in &mut seeds {
        aws_lc_rs::rand::SecureRandom::fill(&rng, s)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    let [root, targets, snapshot, timestamp, releases] = seeds.map(|s| key(&s));
    let (root, targets, snapshot, timestamp, releases) =
        (root?, targets?, snapshot?, timestamp?, releases?);
    let now = Timestamp::now();
    let long = mirror::expires_string(now + SignedDuration::from_hours(24 * 365));
    let md = dir.join("metadata");
    std::fs::create_dir_all(&md)?;
    let write = |name: String, doc: &SignedDoc| std::fs::write(md.join(name), &doc.bytes);
    let sign = |role: &'static str, v: Value, k: &MirrorKey| {
        let k = k.clone();
        async move {
            mirror::sign(role, v, &[&k])
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
    };

    let root_doc = sign(
        "root",
        json!({
            "_type": "root", "spec_version": mirror::SPEC_VERSION, "version": 1, "expires": long,
            "consistent_snapshot": true,
            "keys": {
                root.keyid(): keyobj(&root)?, targets.keyid(): keyobj(&targets)?,
                snapshot.keyid(): keyobj(&snapshot)?, timestamp.keyid(): keyobj(&timestamp)?,
            },
            "roles": { "root": keyref(&root), "targets": keyref(&targets),
                       "snapshot": keyref(&snapshot), "timestamp": keyref(&timestamp) },
        }),
        &root,
    )
    .await?;
    write("1.root.json".into(), &root_doc)?;
    std::fs::write(dir.join("root.json"), &root_doc.bytes)?;

    let (top, rel): (Vec<_>, Vec<_>) = DEMO_TARGETS
        .iter()
        .partition(|(p, _)| !p.starts_with("releases/"));
    let entries = |list: &[&(&str, &str)]| -> Value {
        list.iter()
            .map(|(p, c)| ((*p).to_owned(), target_entry(c)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let targets_doc = sign(
        "targets",
        json!({
            "_type": "targets", "spec_version": mirror::SPEC_VERSION, "version": 1, "expires": long,
            "targets": entries(&top),
            "delegations": {
                "keys": { releases.keyid(): keyobj(&releases)? },
                "roles": [{ "name": "releases", "keyids": [releases.keyid()], "threshold": 1,
                            "terminating": true, "paths": ["releases/*"] }],
            },
        }),
        &targets,
    )
    .await?;
    write("1.targets.json".into(), &targets_doc)?;
    let releases_doc = sign(
        "targets",
        json!({
            "_type": "targets", "spec_version": mirror::SPEC_VERSION, "version": 1, "expires": long,
            "targets": entries(&rel),
        }),
        &releases,
    )
    .await?;
    write("1.releases.json".into(), &releases_doc)?;

    let snapshot_doc = sign(
        "snapshot",
        mirror::snapshot_from_meta(
            1,
            now + SignedDuration::from_hours(24 * 365),
            json!({
                "targets.json": mirror::meta_entry(1, &targets_doc.bytes),
                "releases.json": mirror::meta_entry(1, &releases_doc.bytes),
            }),
        ),
        &snapshot,
    )
    .await?;
    write("1.snapshot.json".into(), &snapshot_doc)?;
    let ts = sign(
        "timestamp",
        mirror::timestamp_signed(1, now + timestamp_life, &snapshot_doc.meta()),
        &timestamp,
    )
    .await?;
    write("timestamp.json".into(), &ts)?;

    for (path, contents) in DEMO_TARGETS {
        let hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            contents.as_bytes(),
        ));
        let (d, name) = path.rsplit_once('/').unwrap_or(("", path));
        let target_dir = dir.join("targets").join(d);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("{hash}.{name}")), contents)?;
    }
    Ok(())
}
