//! The committed fixture repositories (`tests/fixtures/<case>/`) and their generator.
//!
//! Every case is built by a [`RepoBuilder`] from fixed ed25519 seeds and fixed dates, so its
//! bytes never change; a unit test regenerates all cases and compares them with the committed
//! files. Layout of a case directory: `root.json` (the trust anchor, root version 1), and the
//! served tree `metadata/...`, `targets/...`.
//!
//! Regenerate with `cargo run -p tuf-mirror-tests --bin gen-fixtures`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::builder::{
    DelegatedPaths, Delegation, PublishedRepo, RepoBuilder, TestKey, EXPIRED, ROOT, SNAPSHOT,
    TARGETS, TIMESTAMP,
};

/// One fixture repository.
#[derive(Clone, Copy, Debug)]
pub struct FixtureCase {
    /// Directory name under `tests/fixtures/`.
    pub name: &'static str,
    /// What the case is, in one line.
    pub summary: &'static str,
    /// The builder in its final state (tests can take it and change it further).
    pub build: fn() -> RepoBuilder,
}

impl FixtureCase {
    /// The published repository of this case.
    pub fn publish(&self) -> PublishedRepo {
        (self.build)().publish()
    }
}

/// All cases, in the order the README lists them.
pub fn cases() -> Vec<FixtureCase> {
    vec![
        FixtureCase {
            name: "basic",
            summary: "consistent snapshot; top-level targets, delegated role `releases` \
                      (`releases/*`) and 16 classic hash bins `bin-0`..`bin-f`",
            build: basic,
        },
        FixtureCase {
            name: "basic-no-consistent",
            summary: "`basic` with consistent_snapshot false",
            build: basic_no_consistent,
        },
        FixtureCase {
            name: "rotated-root",
            summary: "root v1 -> v2 (root key replaced) -> v3 (two root keys, threshold 2, \
                      timestamp key replaced)",
            build: rotated_root,
        },
        FixtureCase {
            name: "rotated-targets-key",
            summary: "root v2 replaces the targets key; targets v2 is signed by the new key",
            build: rotated_targets_key,
        },
        FixtureCase {
            name: "succinct",
            summary: "TAP 15 succinct hash bins from targets: bit_length 4, bins `bin-0`..`bin-f`",
            build: succinct,
        },
        FixtureCase {
            name: "expired-timestamp",
            summary: "a small valid repository whose timestamp expired on 2000-01-01",
            build: expired_timestamp,
        },
    ]
}

/// The case called `name`.
pub fn case(name: &str) -> Option<FixtureCase> {
    cases().into_iter().find(|c| c.name == name)
}

/// `tests/fixtures` of this crate's source tree.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn key(label: &str) -> TestKey {
    TestKey::ed25519_from_label(label)
}

/// Small target files with fixed contents.
fn content(path: &str) -> Vec<u8> {
    format!("fixture target {path}\n").into_bytes()
}

/// `basic`: see [`cases`].
pub fn basic() -> RepoBuilder {
    let mut repo = RepoBuilder::new();
    repo.add_target(TARGETS, "hello.txt", content("hello.txt"));
    repo.add_target_with_custom(
        TARGETS,
        "docs/readme.md",
        content("docs/readme.md"),
        json!({"note": "custom is opaque to TUF"}),
    );
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "releases",
            [key("releases")],
            DelegatedPaths::paths(&["releases/*"]),
        ),
    );
    for path in ["releases/app-1.0.tar.gz", "releases/app-1.1.tar.gz"] {
        repo.add_target("releases", path, content(path));
    }
    let bins = repo.add_hashed_bins(TARGETS, "bin-", 16, [key("bins")], 1);
    for path in [
        "packages/alpha.txt",
        "packages/beta.txt",
        "packages/gamma.txt",
    ] {
        repo.add_target(&bins.role_for(path), path, content(path));
    }
    repo
}

/// `basic-no-consistent`: see [`cases`].
pub fn basic_no_consistent() -> RepoBuilder {
    let mut repo = basic();
    repo.set_consistent_snapshot(false);
    repo
}

/// A repository with two top-level targets and nothing else.
fn small() -> RepoBuilder {
    let mut repo = RepoBuilder::new();
    repo.add_target(TARGETS, "hello.txt", content("hello.txt"));
    repo.add_target(TARGETS, "dir/file.bin", content("dir/file.bin"));
    repo
}

/// `rotated-root`: see [`cases`].
pub fn rotated_root() -> RepoBuilder {
    let mut repo = small();
    // v2: signed by the old key (v1's threshold) and the new key (v2's threshold).
    repo.rotate_role_keys(ROOT, [key("root-2")], 1);
    // v3: signed by root-2 and both new keys.
    repo.rotate_root();
    repo.set_role_keys(ROOT, [key("root-3a"), key("root-3b")], 2);
    repo.set_role_keys(TIMESTAMP, [key("timestamp-3")], 1);
    repo.bump_version(TIMESTAMP);
    repo
}

/// `rotated-targets-key`: see [`cases`].
pub fn rotated_targets_key() -> RepoBuilder {
    let mut repo = small();
    repo.rotate_role_keys(TARGETS, [key("targets-2")], 1);
    repo.bump_version(SNAPSHOT);
    repo.bump_version(TIMESTAMP);
    repo
}

/// `succinct`: see [`cases`].
pub fn succinct() -> RepoBuilder {
    let mut repo = RepoBuilder::new();
    repo.add_target(TARGETS, "hello.txt", content("hello.txt"));
    let bins = repo.add_succinct_bins(TARGETS, "bin", 4, [key("succinct-bins")], 1);
    for path in [
        "packages/alpha.txt",
        "packages/beta.txt",
        "packages/gamma.txt",
        "packages/delta.txt",
    ] {
        repo.add_target(&bins.role_for(path), path, content(path));
    }
    repo
}

/// `expired-timestamp`: see [`cases`].
pub fn expired_timestamp() -> RepoBuilder {
    let mut repo = small();
    repo.set_expires(TIMESTAMP, EXPIRED);
    repo
}

/// Writes `repo` as case `name` under `out` (`out/<name>/root.json`, `out/<name>/metadata/..`,
/// `out/<name>/targets/..`), removing whatever that directory held before.
///
/// # Errors
/// I/O errors.
pub fn write_case(out: &Path, name: &str, repo: &PublishedRepo) -> io::Result<()> {
    let dir = out.join(name);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    repo.write_to(&dir)?;
    fs::write(dir.join("root.json"), repo.trust_anchor())
}

/// Every file under `dir`, by path relative to `dir` with `/` separators.
///
/// # Errors
/// I/O errors, and `InvalidData` for a file name that is not UTF-8.
pub fn read_tree(dir: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else {
                let relative = path
                    .strip_prefix(base)
                    .ok()
                    .and_then(Path::to_str)
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("{path:?}"))
                    })?;
                out.insert(relative.replace('\\', "/"), fs::read(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// The committed files of case `name` as a [`PublishedRepo`] (served tree plus trust anchor).
///
/// # Errors
/// I/O errors, and `NotFound` when the case has no `root.json`.
pub fn load(name: &str) -> io::Result<PublishedRepo> {
    let mut files = read_tree(&fixtures_dir().join(name))?;
    let anchor = files.remove("root.json").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("fixture {name} has no root.json"),
        )
    })?;
    let mut repo = PublishedRepo::default();
    for (path, bytes) in files {
        repo.insert(&path, bytes);
    }
    Ok(repo.with_trust_anchor(anchor))
}

/// Differences between the trees under `expected` and `actual`, one line each (empty when
/// they are byte-identical).
///
/// # Errors
/// I/O errors reading either tree.
pub fn compare_trees(expected: &Path, actual: &Path) -> io::Result<Vec<String>> {
    let expected = read_tree(expected)?;
    let actual = read_tree(actual)?;
    let mut diffs = Vec::new();
    for (path, bytes) in &expected {
        match actual.get(path) {
            None => diffs.push(format!("missing: {path}")),
            Some(other) if other != bytes => diffs.push(format!("differs: {path}")),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.push(format!("unexpected: {path}"));
    }
    Ok(diffs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn committed_fixtures_are_byte_stable() {
        let out = tempfile::tempdir().unwrap();
        for case in cases() {
            write_case(out.path(), case.name, &case.publish()).unwrap();
        }
        let diffs = compare_trees(&fixtures_dir(), out.path())
            .unwrap()
            .into_iter()
            // The README is hand-written.
            .filter(|d| d != "missing: README.md")
            .collect::<Vec<_>>();
        assert!(
            diffs.is_empty(),
            "fixtures differ from the generator; run `cargo run -p tuf-mirror-tests --bin \
             gen-fixtures` and review:\n{}",
            diffs.join("\n")
        );
    }

    #[test]
    fn load_returns_what_publish_gives() {
        let case = case("basic").unwrap();
        assert_eq!(load(case.name).unwrap(), case.publish());
    }
}
