//! The root ceremony and rotation commands: `keys public`, `root prepare`, `root sign`,
//! `root publish`, `root rotate` (see `tuf_mirror_daemon::ceremony` and docs/keys.md).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tuf_mirror_config::{Config, KeyUri, Repository};
use tuf_mirror_daemon::ceremony::{self, Change};
use tuf_mirror_daemon::cycle::UpstreamView;
use tuf_mirror_daemon::keyring;
use tuf_mirror_daemon::mirror::{self, MirrorKey};
use tuf_mirror_daemon::service::published_dir;

/// The changes a prepared root makes, as given on the command line.
#[derive(Debug, Default, clap::Args)]
pub struct Changes {
    /// Add a root key: a key URI, or a file holding a key object (`keys public`).
    #[arg(long = "add-root-key", value_name = "KEY")]
    add_root_key: Vec<String>,
    /// Stop listing a root key (its key id).
    #[arg(long = "remove-root-key", value_name = "KEYID")]
    remove_root_key: Vec<String>,
    /// The new root threshold.
    #[arg(long = "root-threshold", value_name = "N")]
    root_threshold: Option<u64>,
    /// The new timestamp key(s) (replacing the listed ones): key URIs or key files.
    #[arg(long = "timestamp-key", value_name = "KEY")]
    timestamp_key: Vec<String>,
    /// The new snapshot key(s) (replacing the listed ones): key URIs or key files.
    #[arg(long = "snapshot-key", value_name = "KEY")]
    snapshot_key: Vec<String>,
    /// How long the new root is valid (default: the repository's `expires.root`).
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
}

fn repo<'a>(config: &'a Config, name: &str) -> Result<&'a Repository> {
    config
        .repositories
        .iter()
        .find(|r| r.name.as_str() == name)
        .with_context(|| format!("no repository named {name:?} in the configuration"))
}

fn tree(config: &Config, repo: &Repository) -> PathBuf {
    published_dir(&config.server.state_dir).join(repo.name.as_str())
}

/// A key object from a key URI (its public part) or a file holding one.
fn key_object(arg: &str, role: &'static str) -> Result<Value> {
    if let Ok(uri) = KeyUri::from_str(arg) {
        if arg.contains(':') {
            let k = keyring::load_key(role, &uri)
                .map_err(|e| anyhow::anyhow!(tuf_mirror_daemon::service::display_chain(&e)))?;
            return Ok(k.public().clone());
        }
    }
    let path = Path::new(arg);
    let text = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    let v: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a key object (JSON)", path.display()))?;
    // `keys public` prints {"keyid", "key"}; a bare key object works too.
    let key = v.get("key").cloned().unwrap_or(v);
    if key.get("keytype").is_none() || key.get("keyval").is_none() {
        bail!(
            "{}: not a TUF key object (no keytype or keyval)",
            path.display()
        );
    }
    Ok(key)
}

fn changes(c: &Changes) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for k in &c.add_root_key {
        out.push(Change::AddRootKey(key_object(k, "root")?));
    }
    for id in &c.remove_root_key {
        out.push(Change::RemoveRootKey(id.clone()));
    }
    if let Some(t) = c.root_threshold {
        out.push(Change::RootThreshold(t));
    }
    if !c.timestamp_key.is_empty() {
        let keys = c
            .timestamp_key
            .iter()
            .map(|k| key_object(k, "timestamp"))
            .collect::<Result<_>>()?;
        out.push(Change::TimestampKeys(keys));
    }
    if !c.snapshot_key.is_empty() {
        let keys = c
            .snapshot_key
            .iter()
            .map(|k| key_object(k, "snapshot"))
            .collect::<Result<_>>()?;
        out.push(Change::SnapshotKeys(keys));
    }
    Ok(out)
}

/// The newest upstream root the daemon verified: from its chain store (which holds
/// roots that the mirror root cannot follow yet) or the republished `upstream/`.
fn newest_upstream(config: &Config, repo: &Repository) -> Result<UpstreamView> {
    let (version, path) = tuf_mirror_daemon::ceremony::newest_upstream_root(
        &config.server.state_dir,
        repo.name.as_str(),
    )
    .with_context(|| {
        format!(
            "no verified upstream root for repository {}",
            repo.name.as_str()
        )
    })?;
    let bytes = std::fs::read(&path)?;
    let v: Value = serde_json::from_slice(&bytes)?;
    let targets = serde_json::from_value(v["signed"]["roles"]["targets"].clone())
        .with_context(|| format!("{}: no targets role", path.display()))?;
    Ok(UpstreamView {
        root_bytes: bytes.into(),
        root_version: version,
        targets,
        roles: Vec::new(),
        snapshot: None,
        timestamp: None,
        chain: Vec::new(),
    })
}

fn served_root(tree: &Path) -> Result<Vec<u8>> {
    let p = tree.join("metadata/root.json");
    std::fs::read(&p).with_context(|| format!("reading the served root {}", p.display()))
}

/// The next root, unsigned, with `c` applied; prints what changed.
fn prepare_doc(config: &Config, repo: &Repository, c: &Changes) -> Result<Value> {
    let tree = tree(config, repo);
    let served = ceremony::parse(&served_root(&tree)?, "the served root")?;
    let version = served["signed"]["version"].as_u64().unwrap_or(0) + 1;
    let life = match &c.expires {
        Some(d) => tuf_mirror_config::parse_duration(d)
            .map_err(|e| anyhow::anyhow!("--expires {d}: {e}"))?,
        None => repo.expires.root,
    };
    let expires = jiff::Timestamp::now()
        + jiff::SignedDuration::try_from(life).unwrap_or(jiff::SignedDuration::MAX);
    let up = newest_upstream(config, repo)?;
    let mut signed = mirror::next_root_signed(&served["signed"], version, expires, &up)?;
    let mut said = ceremony::apply(&mut signed, &changes(c)?)?;
    let (old_t, new_t) = (
        ceremony::role_key_ids(&served["signed"], "targets"),
        ceremony::role_key_ids(&signed, "targets"),
    );
    if old_t != new_t {
        said.push(format!(
            "targets keys follow upstream root version {}: {} (were {})",
            up.root_version,
            new_t.join(", "),
            old_t.join(", ")
        ));
    }
    if said.is_empty() {
        said.push("no key change (a re-signed root with a new expiry)".into());
    }
    eprintln!("{}: root version {version}", repo.name.as_str());
    for line in said {
        eprintln!("  {line}");
    }
    Ok(ceremony::unsigned(signed))
}

fn write_doc(path: &Path, doc: &Value) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(doc)?;
    text.push(b'\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn read_doc(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(ceremony::parse(&bytes, &path.display().to_string())?)
}

/// `keys public`: the key object and id of a key URI.
pub fn keys_public(key: &str) -> Result<()> {
    let uri = KeyUri::from_str(key).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let k = keyring::load_key("root", &uri)
        .map_err(|e| anyhow::anyhow!(tuf_mirror_daemon::service::display_chain(&e)))?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &serde_json::json!({ "keyid": k.keyid(), "key": k.public() })
        )?
    );
    Ok(())
}

/// `root prepare`.
pub fn prepare(config: &Path, repo_name: &str, c: &Changes, out: &Path) -> Result<()> {
    let config = Config::load(config)?;
    let repo = repo(&config, repo_name)?;
    let doc = prepare_doc(&config, repo, c)?;
    write_doc(out, &doc)?;
    eprintln!(
        "written to {}; each root key holder runs `tuf-mirror root sign --file {} --key <uri>`",
        out.display(),
        out.display()
    );
    Ok(())
}

/// `root sign`: one signature.
pub async fn sign(file: &Path, key: &str) -> Result<()> {
    let mut doc = read_doc(file)?;
    let uri = KeyUri::from_str(key).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let k: MirrorKey = tokio::task::spawn_blocking(move || keyring::load_key("root", &uri))
        .await?
        .map_err(|e| anyhow::anyhow!(tuf_mirror_daemon::service::display_chain(&e)))?;
    let listed = ceremony::role_key_ids(&doc["signed"], "root");
    ceremony::add_signature(&mut doc, &k).await?;
    write_doc(file, &doc)?;
    eprintln!(
        "signed {} with {}{}",
        file.display(),
        k.keyid(),
        if listed.iter().any(|l| l == k.keyid()) {
            ""
        } else {
            " (not a root key of the new root: counts only toward the current root's threshold)"
        }
    );
    Ok(())
}

/// `root publish`: both thresholds checked, then handed to the daemon.
pub async fn publish(config_path: &Path, repo_name: &str, file: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let repo = repo(&config, repo_name)?;
    let tree = tree(&config, repo);
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let check = ceremony::check(&served_root(&tree)?, &bytes)?;
    eprintln!("current root's keys: {}", check.old);
    eprintln!("new root's keys: {}", check.new);
    check.require()?;
    let dest = ceremony::incoming_path(&tree);
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    tuf_mirror_daemon::publish::write_current(&dest, &bytes)?;
    // When no daemon holds the state store, publish now; otherwise the daemon picks it
    // up at its next cycle.
    let db = config.server.state_dir.join("state.redb");
    match tuf_mirror_daemon::state::State::open(&db) {
        Ok(state) => {
            drop(state);
            // A sync, so that a root following an upstream targets-key rotation is
            // published with the upstream state it was made for.
            crate::commands::once(
                config_path,
                Some(repo_name.to_owned()),
                crate::commands::Pass::Sync,
            )
            .await?;
            let still = dest.exists();
            if still {
                bail!(
                    "the daemon did not take root version {} (see the log above); it stays in {}",
                    check.version,
                    dest.display()
                );
            }
            eprintln!("root version {} published", check.version);
        }
        Err(_) => eprintln!(
            "root version {} handed to the running daemon ({}): it publishes it with a new \
             snapshot and timestamp at its next re-sign tick; `systemctl reload tuf-mirror` \
             makes that now",
            check.version,
            dest.display()
        ),
    }
    Ok(())
}

/// `root rotate`: prepare, sign with the root keys at hand, publish when both thresholds
/// are met; otherwise leave the file for the ceremony.
pub async fn rotate(config_path: &Path, repo_name: &str, c: &Changes, out: &Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let repo_cfg = repo(&config, repo_name)?.clone();
    let mut doc = prepare_doc(&config, &repo_cfg, c)?;
    let keys = tokio::task::spawn_blocking(move || keyring::load_keys(&repo_cfg))
        .await?
        .map_err(|e| anyhow::anyhow!(tuf_mirror_daemon::service::display_chain(&e)))?;
    for k in &keys.root {
        ceremony::add_signature(&mut doc, k).await?;
    }
    write_doc(out, &doc)?;
    let repo = repo(&config, repo_name)?;
    let check = ceremony::check(
        &served_root(&tree(&config, repo))?,
        &serde_json::to_vec(&doc)?,
    )?;
    if check.met() {
        publish(config_path, repo_name, out).await
    } else {
        eprintln!("current root's keys: {}", check.old);
        eprintln!("new root's keys: {}", check.new);
        eprintln!(
            "more root signatures are needed: each holder runs `tuf-mirror root sign --file {} --key <uri>`, then `tuf-mirror root publish --config {} --repo {repo_name} --file {}`",
            out.display(),
            config_path.display(),
            out.display()
        );
        Ok(())
    }
}
