//! `tuf-fetch`: a small TUF client on the tuf-mirror engine.
//!
//! It speaks the client protocol of the tuf-conformance suite (options before the
//! sub-command): `init TRUSTED_ROOT`, `refresh`, `download`; and `list`, which loads
//! every delegated role and prints what the repository holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
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
    #[arg(long)]
    metadata_url: Option<Url>,
    /// Directory holding the trusted metadata (created if missing).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Target to download (repeatable; fetched in order).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory the targets are written to.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the target files.
    #[arg(long)]
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
    let store = Arc::new(DirStore::new(&cli.metadata_dir)?);
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
