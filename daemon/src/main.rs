//! `tuf-mirror`: the mirror daemon and its one-shot commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod commands;

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
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
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
        Command::CheckConfig { config } => check_config(&config),
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
