//! `tuf-fetch`: a small TUF client on the tuf-mirror engine.
//!
//! It speaks the client protocol of the tuf-conformance suite (options before the
//! sub-command): `init TRUSTED_ROOT`, `refresh`, `download`; and `list`, which loads
//! every delegated role and prints what the repository holds.
//!
//! With `--bundle B [--repo R]` it is a client of a tuf-mirror mirror instead, configured
//! by the site's key bundle (mirror URLs, mirror root, pinned targets keys, policy):
//! `refresh`, `download`, `info` (a target's signed length and hashes) and `staleness`
//! (how old each role is and when it expires). `--metadata-dir` is then an optional
//! cache directory (memory only without it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tuf_mirror_client::bundle::Bundle;
use tuf_mirror_client::client::{Freshness, MirrorClient};
use tuf_mirror_client::{
    names::encode_role, DelegationMode, DirStore, ExpiryPolicy, HttpTransport, RoleClass, Updater,
    UpdaterConfig,
};
use url::Url;

#[derive(Parser, Debug)]
#[command(
    name = "tuf-fetch",
    version,
    about = "Verify a TUF repository and download targets"
)]
struct Cli {
    /// Base URL of the repository's metadata (http, https or file).
    #[arg(long, conflicts_with = "bundle")]
    metadata_url: Option<Url>,
    /// Directory holding the trusted metadata (created if missing). Required without
    /// --bundle; with it, an optional cache directory for the repository.
    #[arg(long)]
    metadata_dir: Option<PathBuf>,
    /// The site's key bundle: be a pinned client of a tuf-mirror mirror.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The repository of the bundle (may be left out when the bundle has only one).
    #[arg(long, value_name = "NAME", requires = "bundle")]
    repo: Option<String>,
    /// (--bundle) Pin the bundle's upstream root instead of its targets keys: follow the
    /// upstream's own root chain, timestamp and snapshot the mirror republishes.
    #[arg(long, requires = "bundle")]
    upstream_anchored: bool,
    /// Target to download (repeatable; fetched in order).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory the targets are written to.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the target files.
    #[arg(long, conflicts_with = "bundle")]
    target_base_url: Option<Url>,
    /// Load and verify every delegated role on refresh (as a mirror does).
    #[arg(long)]
    all_roles: bool,
    /// DANGEROUS: accept expired targets and delegated roles up to this many seconds
    /// past expiry (capped; each use is logged).
    #[arg(long, value_name = "SECONDS")]
    dangerous_targets_grace: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Trust TRUSTED_ROOT: copy it into the metadata directory (no network).
    Init {
        /// The root metadata to trust.
        trusted_root: PathBuf,
    },
    /// Update the trusted metadata from the repository.
    Refresh,
    /// Refresh, then download each --target-name into --target-dir.
    Download,
    /// Refresh with every delegated role and print the targets.
    List,
    /// (--bundle) Print each --target-name's signed length, sha256 and role.
    Info,
    /// (--bundle) Refresh, then print how old each role is and when it expires; exits 2
    /// when a role is past its expiry (within a grace or not).
    Staleness,
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("tuf-fetch: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(bundle) = cli.bundle.clone() {
        return run_bundle(cli, &bundle);
    }
    let Some(metadata_dir) = cli.metadata_dir.clone() else {
        bail!("--metadata-dir is required (or --bundle)");
    };
    let store = Arc::new(DirStore::new(&metadata_dir)?);
    if let Command::Init { trusted_root } = &cli.command {
        let bytes = std::fs::read(trusted_root)
            .with_context(|| format!("reading {}", trusted_root.display()))?;
        let config = UpdaterConfig::new(Url::parse("file:///nonexistent/")?);
        Updater::init(config, Arc::new(HttpTransport::default()), store, &bytes)?;
        return Ok(());
    }
    let Some(metadata_url) = cli.metadata_url.clone() else {
        bail!("--metadata-url is required");
    };
    let mut config = UpdaterConfig::new(metadata_url);
    config.targets_base = cli.target_base_url.clone().map(tuf_mirror_client::dir_url);
    if cli.all_roles || matches!(cli.command, Command::List) {
        config.mode = DelegationMode::All;
    }
    if let Some(secs) = cli.dangerous_targets_grace {
        config.expiry = ExpiryPolicy::strict()
            .dangerous_with_grace(RoleClass::Targets, Duration::from_secs(secs))?;
    }
    let started = Instant::now();
    let mut updater = Updater::new(config, Arc::new(HttpTransport::default()), store)?;
    updater.refresh()?;
    let stats = updater.stats();
    tracing::info!(
        root = updater.root().version(),
        roles = updater.roles().count(),
        fetched = stats.fetched.len(),
        from_store = stats.from_store,
        reused = stats.reused,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "refreshed"
    );
    match cli.command {
        Command::Info | Command::Staleness => bail!("info and staleness need --bundle"),
        Command::Init { .. } | Command::Refresh => Ok(()),
        Command::List => {
            let mut n = 0usize;
            for role in updater.roles() {
                n += role.targets.len();
            }
            println!("{} roles, {n} targets", updater.roles().count());
            Ok(())
        }
        Command::Download => {
            let Some(dir) = &cli.target_dir else {
                bail!("--target-dir is required for download");
            };
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for name in &cli.target_names {
                download(&mut updater, name, dir)?;
            }
            Ok(())
        }
    }
}

fn download(updater: &mut Updater, name: &str, dir: &Path) -> Result<()> {
    let Some(info) = updater.target_info(name)? else {
        bail!("target {name:?} not found in any role trusted for it");
    };
    let dest = dir.join(encode_role(name));
    if Updater::has_target(&info, &dest) {
        tracing::info!(target = name, "already downloaded");
        return Ok(());
    }
    updater
        .download_target(&info, &dest)
        .with_context(|| format!("downloading {name}"))?;
    println!("{} {} {}", name, info.length, dest.display());
    Ok(())
}

/// A pinned client of the repository `--repo` of the key bundle.
fn run_bundle(cli: Cli, path: &Path) -> Result<()> {
    let bundle = Bundle::load(path)?;
    let name = match (&cli.repo, bundle.repositories()) {
        (Some(r), _) => r.clone(),
        (None, [only]) => only.name.clone(),
        (None, all) => bail!(
            "{} has {} repositories: choose one with --repo ({})",
            path.display(),
            all.len(),
            all.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut builder = MirrorClient::builder(&bundle, &name)?;
    if let Some(dir) = &cli.metadata_dir {
        builder = builder.cache_dir(dir);
    }
    if let Some(secs) = cli.dangerous_targets_grace {
        builder = builder.dangerous_upstream_targets_grace(Duration::from_secs(secs));
    }
    if cli.upstream_anchored {
        builder = builder.upstream_anchored();
    }
    let mut client = builder.build()?;
    match cli.command {
        Command::Init { .. } | Command::List => {
            bail!("init and list are not used with --bundle (the bundle is the trust anchor)")
        }
        Command::Refresh => client.refresh()?,
        Command::Download => {
            let Some(dir) = &cli.target_dir else {
                bail!("--target-dir is required for download");
            };
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            client.refresh()?;
            for target in &cli.target_names {
                let dest = dir.join(encode_role(target));
                let info = match client.target_info(target)? {
                    Some(info) if Updater::has_target(&info, &dest) => info,
                    _ => client.download_to_file(target, &dest)?,
                };
                println!("{} {} {}", target, info.length, dest.display());
            }
        }
        Command::Info => {
            client.refresh()?;
            for target in &cli.target_names {
                let Some(info) = client.target_info(target)? else {
                    bail!("target {target:?} not found in any role trusted for it");
                };
                let sha256 = info.hashes.sha256().map(hex_string).unwrap_or_default();
                println!(
                    "{} {} sha256:{} role:{}",
                    target, info.length, sha256, info.role
                );
            }
        }
        Command::Staleness => {
            // The report is printed even when the refresh fails: it shows what is held.
            let refreshed = client.refresh();
            let report = client.staleness();
            print!("{report}");
            refreshed?;
            if report.worst() != Freshness::Valid {
                std::process::exit(2);
            }
        }
    }
    Ok(())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
