//! `tuf-mirror`: the mirror daemon and its one-shot commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

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

fn check_config(path: &std::path::Path) -> Result<()> {
    let config = tuf_mirror_config::Config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    for repo in &config.repositories {
        let keys = tuf_mirror_daemon::keyring::load_keys(repo)?;
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
