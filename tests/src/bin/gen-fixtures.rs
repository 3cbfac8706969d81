//! Writes the fixture repositories under `tests/fixtures/` (or `--out`), or with `--check`
//! verifies that the committed ones are what the generator produces.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;
use tuf_mirror_tests::fixtures::{self, FixtureCase};

/// Generate the tuf-mirror test fixture repositories.
#[derive(Parser)]
struct Args {
    /// Directory to write the cases into (default: this crate's `fixtures/`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these cases (repeatable; default: all).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Compare with what is in the directory instead of writing; exit 1 on any difference.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gen-fixtures: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let out = args.out.unwrap_or_else(fixtures::fixtures_dir);
    let mut selected: Vec<FixtureCase> = Vec::new();
    for case in fixtures::cases() {
        if args.cases.is_empty() || args.cases.iter().any(|c| c == case.name) {
            selected.push(case);
        }
    }
    for name in &args.cases {
        if fixtures::case(name).is_none() {
            bail!("no fixture case {name:?}");
        }
    }
    let scratch = tempfile::tempdir().context("create a scratch directory")?;
    let mut clean = true;
    for case in selected {
        let repo = case.publish();
        if args.check {
            fixtures::write_case(scratch.path(), case.name, &repo)
                .with_context(|| format!("write {} to a scratch directory", case.name))?;
            let diffs =
                fixtures::compare_trees(&out.join(case.name), &scratch.path().join(case.name))
                    .with_context(|| format!("compare {}", case.name))?;
            for diff in &diffs {
                println!("{}: {diff}", case.name);
            }
            clean &= diffs.is_empty();
        } else {
            fixtures::write_case(&out, case.name, &repo)
                .with_context(|| format!("write {} under {}", case.name, out.display()))?;
            println!("{}: {} files", case.name, repo.files().len() + 1);
        }
    }
    Ok(clean)
}
