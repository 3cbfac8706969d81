//! `tuf-mirror`: the mirror daemon. Its sub-commands (serve, sync, resign, status, keys,
//! demo) arrive with the daemon; this binary only reports its version for now.

use clap::Parser;

/// The tuf-mirror daemon.
#[derive(Parser, Debug)]
#[command(name = "tuf-mirror", version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("tuf-mirror: the daemon sub-commands are not implemented yet; see README.md");
    std::process::exit(2);
}
