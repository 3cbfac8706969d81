//! `tuf-mirror`: the mirror daemon and its one-shot commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod commands;
mod root_commands;

/// Mirror TUF repositories into firewalled and air-gapped sites: verify each upstream,
/// republish its targets metadata byte for byte, re-sign root, snapshot and timestamp
/// with the mirror's keys, and serve the result over HTTP.
#[derive(Parser, Debug)]
#[command(name = "tuf-mirror", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service: sync and re-sign every repository on its schedules and serve
    /// the published trees over HTTP, until SIGTERM or SIGINT.
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Verify the upstream of one repository and publish the mirror's first state
    /// (mirror root version 1), then exit.
    Init {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The repository.
        #[arg(long)]
        repo: String,
    },
    /// One sync pass (verify the upstream, mirror targets, publish), then exit.
    Sync {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only this repository.
        #[arg(long)]
        repo: Option<String>,
    },
    /// One re-sign pass over the served state, then exit.
    Resign {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only this repository.
        #[arg(long)]
        repo: Option<String>,
    },
    /// What each repository serves (versions, expiries) and how its last syncs went.
    Status {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the audit log (every signature, publish and import, hash-chained) and
    /// check its chain; fails, naming the entry, when it was altered. Works beside a
    /// running daemon.
    Audit {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only this repository's entries (the whole chain is checked).
        #[arg(long)]
        repo: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a throwaway upstream, mirror it, re-sign every few seconds and serve it on
    /// 127.0.0.1, printing client commands to try.
    Demo {
        /// Port to serve on (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep the demo's files here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Load and check a configuration file and the keys it names, then exit.
    CheckConfig {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The mirror root: the ceremony for offline root keys, and rotations.
    Root {
        #[command(subcommand)]
        command: RootCommand,
    },
    /// The key bundle clients are configured with.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
}

#[derive(Subcommand, Debug)]
enum RootCommand {
    /// Write the next mirror root, unsigned: the served root's roles with the changes
    /// given, and the targets keys of the newest upstream root.
    Prepare {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        changes: root_commands::Changes,
    },
    /// Add one signature to a prepared root with one key (a key URI).
    Sign {
        /// The prepared root file (updated in place).
        #[arg(long)]
        file: PathBuf,
        /// The key URI (`file:`, `pkcs11:`, `awskms:`).
        #[arg(long)]
        key: String,
    },
    /// Check that the thresholds of the served root and of the new root are both met,
    /// then hand the new root to the daemon, which publishes it with a new snapshot and
    /// timestamp (at once when no daemon runs).
    Publish {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// The signed root file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Prepare the next root with the changes given (rotate the timestamp or snapshot
    /// key, add or remove a root key, change the threshold), sign it with the root keys
    /// at hand, and publish it when both thresholds are met; otherwise leave it in
    /// `--out` for the ceremony.
    Rotate {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// Where the prepared root is kept.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        changes: root_commands::Changes,
    },
}

#[derive(Subcommand, Debug)]
enum BundleCommand {
    /// Write the key bundle for one or every repository from what the daemon serves
    /// (newest mirror root, its targets keys as pins, newest upstream root). Reads only
    /// the published tree: works while the daemon runs.
    Export {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only this repository (default: every repository).
        #[arg(long)]
        repo: Option<String>,
        /// The bundle file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Base URL clients reach the mirror's HTTP server at (repeatable, in order of
        /// preference); each repository is at `<URL><repo>/`. Default:
        /// `http://<listen>/` from the configuration.
        #[arg(long = "mirror-url", value_name = "URL")]
        mirror_urls: Vec<url::Url>,
        /// DANGEROUS: clients accept expired upstream targets and delegated roles this
        /// long past expiry (e.g. 7d; at most 90d). Default: strict.
        #[arg(long, value_name = "DURATION")]
        dangerous_upstream_targets_grace: Option<String>,
        /// DANGEROUS: clients accept the mirror's expired timestamp this long (a daemon
        /// that is down). Default: strict.
        #[arg(long, value_name = "DURATION")]
        dangerous_mirror_timestamp_grace: Option<String>,
        /// DANGEROUS: clients accept the mirror's expired snapshot this long. Default:
        /// strict.
        #[arg(long, value_name = "DURATION")]
        dangerous_mirror_snapshot_grace: Option<String>,
        /// A note for the people handling the file (kept in the bundle's `comment`).
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Print the TUF key object and key id of a key (its public part), for
    /// `root prepare --add-root-key`.
    Public {
        /// The key URI.
        #[arg(long)]
        key: String,
    },
    /// Generate a private key file (mode 0600) and print its TUF key id.
    Generate {
        /// ed25519, ecdsa-p256 or rsa-3072.
        #[arg(long)]
        algorithm: tuf_mirror_keys::Algorithm,
        /// The file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuf-mirror: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config } => runtime()?.block_on(commands::serve(&config)),
        Command::Init { config, repo } => {
            runtime()?.block_on(commands::once(&config, Some(repo), commands::Pass::Sync))
        }
        Command::Sync { config, repo } => {
            runtime()?.block_on(commands::once(&config, repo, commands::Pass::Sync))
        }
        Command::Resign { config, repo } => {
            runtime()?.block_on(commands::once(&config, repo, commands::Pass::Resign))
        }
        Command::Demo { port, dir } => runtime()?.block_on(commands::demo(port, dir)),
        Command::Status { config, json } => commands::status(&config, json),
        Command::Audit { config, repo, json } => commands::audit(&config, repo.as_deref(), json),
        Command::CheckConfig { config } => check_config(&config),
        Command::Bundle {
            command:
                BundleCommand::Export {
                    config,
                    repo,
                    out,
                    mirror_urls,
                    dangerous_upstream_targets_grace,
                    dangerous_mirror_timestamp_grace,
                    dangerous_mirror_snapshot_grace,
                    comment,
                },
        } => commands::bundle_export(&commands::ExportArgs {
            config,
            repo,
            out,
            mirror_urls,
            graces: [
                dangerous_upstream_targets_grace,
                dangerous_mirror_timestamp_grace,
                dangerous_mirror_snapshot_grace,
            ],
            comment,
        }),
        Command::Keys {
            command: KeysCommand::Public { key },
        } => root_commands::keys_public(&key),
        Command::Root { command } => match command {
            RootCommand::Prepare {
                config,
                repo,
                out,
                changes,
            } => root_commands::prepare(&config, &repo, &changes, &out),
            RootCommand::Sign { file, key } => {
                runtime()?.block_on(root_commands::sign(&file, &key))
            }
            RootCommand::Publish { config, repo, file } => {
                runtime()?.block_on(root_commands::publish(&config, &repo, &file))
            }
            RootCommand::Rotate {
                config,
                repo,
                out,
                changes,
            } => runtime()?.block_on(root_commands::rotate(&config, &repo, &changes, &out)),
        },
        Command::Keys {
            command: KeysCommand::Generate { algorithm, out },
        } => {
            let id = tuf_mirror_keys::generate(algorithm, &out)
                .with_context(|| format!("generating {algorithm} key {}", out.display()))?;
            println!("{id}");
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn check_config(path: &std::path::Path) -> Result<()> {
    let config = tuf_mirror_config::Config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let published = tuf_mirror_daemon::service::published_dir(&config.server.state_dir);
    for repo in &config.repositories {
        let tree = published.join(repo.name.as_str());
        let keys = tuf_mirror_daemon::keyring::load_checked(repo, &tree)?;
        println!(
            "{}: root {} key(s), threshold {}; snapshot {}; timestamp {}",
            repo.name.as_str(),
            keys.root.len(),
            keys.root_threshold,
            keys.snapshot.len(),
            keys.timestamp.len()
        );
    }
    println!("{}: ok", path.display());
    Ok(())
}
