//! `tough-load`: loads a TUF repository with tough's `RepositoryLoader`, for
//! `bench/compare.sh`, which compares tough with tuf-mirror's engine and python-tuf on the
//! same files.
//!
//! `--all` loads the repository (tough loads every delegated role during `load()`) and
//! counts the roles and targets; `--target NAME --out DIR` loads it and writes one target
//! read with `read_target`. Either way one line of counts goes to stdout:
//!
//! ```text
//! roles N targets M
//! roles N targets M wrote NAME LENGTH PATH
//! ```
//!
//! URLs are `file://` (tough's default transport reads them from disk), so no HTTP is
//! measured. Note that with consistent snapshots tough fetches a target from
//! `<targets>/<sha256>.<whole target path>`, not from the spec's
//! `<targets>/<dir>/<sha256>.<basename>`: generate the repository with
//! `tuf_upstream.py init --tough-layout`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Parser;
use tough::schema::Targets;
use tough::{IntoVec as _, RepositoryLoader, TargetName};
use url::Url;

/// Load a TUF repository from local files with tough's `RepositoryLoader`.
#[derive(Parser)]
struct Args {
    /// Trusted root metadata (the trust anchor).
    #[arg(long)]
    root: PathBuf,
    /// Directory holding the repository's metadata (`N.root.json`, `timestamp.json`, ...).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Directory holding the target files (default: `../targets` next to the metadata).
    #[arg(long)]
    targets_dir: Option<PathBuf>,
    /// Load every role and count all targets.
    #[arg(long, conflicts_with = "target")]
    all: bool,
    /// Load, then read this target and write it into --out.
    #[arg(long, requires = "out")]
    target: Option<String>,
    /// Directory the target is written to.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the load time on stderr.
    #[arg(long)]
    timing: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tough-load: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tough-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if !args.all && args.target.is_none() {
        bail!("give --all or --target NAME --out DIR");
    }
    let root =
        std::fs::read(&args.root).with_context(|| format!("reading {}", args.root.display()))?;
    let metadata_url = dir_url(&args.metadata_dir)?;
    let targets_dir = match &args.targets_dir {
        Some(d) => d.clone(),
        None => args.metadata_dir.join("..").join("targets"),
    };
    let targets_url = dir_url(&targets_dir)?;

    let started = Instant::now();
    let repo = RepositoryLoader::new(&root, metadata_url.clone(), targets_url)
        .load()
        .await
        .with_context(|| format!("loading {metadata_url}"))?;
    if args.timing {
        eprintln!("TIME load {:.3}s", started.elapsed().as_secs_f64());
    }
    let (roles, targets) = count(&repo.targets().signed);
    // all_targets() walks the same tree; both must agree.
    let listed = repo.all_targets().count();
    if listed != targets {
        bail!("all_targets() gives {listed} targets, the role walk {targets}");
    }

    let Some(name) = &args.target else {
        println!("roles {roles} targets {targets}");
        return Ok(());
    };
    let Some(out) = &args.out else {
        bail!("--target needs --out");
    };
    let started = Instant::now();
    let target = TargetName::new(name.as_str()).with_context(|| format!("target name {name:?}"))?;
    let Some(stream) = repo
        .read_target(&target)
        .await
        .with_context(|| format!("fetching {name}"))?
    else {
        bail!("target {name:?} not found");
    };
    let bytes = stream
        .into_vec()
        .await
        .with_context(|| format!("reading {name}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let dest = out.join(name.replace('/', "%2F"));
    std::fs::write(&dest, &bytes).with_context(|| format!("writing {}", dest.display()))?;
    if args.timing {
        eprintln!("TIME target {:.3}s", started.elapsed().as_secs_f64());
    }
    println!(
        "roles {roles} targets {targets} wrote {name} {} {}",
        bytes.len(),
        dest.display()
    );
    Ok(())
}

/// Roles (this one included) and targets in the tree of loaded roles under `t`.
fn count(t: &Targets) -> (usize, usize) {
    let mut roles = 1;
    let mut targets = t.targets.len();
    for role in t.delegations.iter().flat_map(|d| &d.roles) {
        if let Some(child) = &role.targets {
            let (r, n) = count(&child.signed);
            roles += r;
            targets += n;
        }
    }
    (roles, targets)
}

/// `file://` URL of a directory, with the trailing slash that `Url::join` needs.
fn dir_url(dir: &Path) -> anyhow::Result<Url> {
    let abs = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    Url::from_directory_path(&abs).map_err(|()| anyhow::anyhow!("not a path: {}", abs.display()))
}
