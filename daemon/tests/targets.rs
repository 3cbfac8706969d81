//! Target files copied from a verified upstream into the mirror's tree: one name per
//! listed hash, nothing fetched twice, and a tampered or missing upstream file refused
//! with nothing left at its mirror names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest::{digest, SHA256, SHA512};
use tuf_mirror_client::schema::HashAlg;
use tuf_mirror_client::{
    DelegationMode, Error as EngineError, ErrorKind, FileTransport, MemoryStore, Updater,
    UpdaterConfig,
};
use tuf_mirror_config::Source;
use tuf_mirror_daemon::targets::{
    mirror_target_paths, mirror_targets, upstream_target_url, TargetsError, TargetsReport,
};
use tuf_mirror_tests::builder::{PublishedRepo, TARGETS};
use tuf_mirror_tests::fixtures;
use url::Url;

/// Targets in the `basic` fixture: two top-level, two delegated, three in hash bins.
const BASIC_TARGETS: usize = 7;

struct Upstream {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    tree: PathBuf,
    updater: Updater,
}

impl Upstream {
    /// Writes `repo` to a temporary upstream directory and verifies it in all-roles mode.
    fn new(repo: &PublishedRepo) -> Upstream {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("up");
        repo.write_to(&dir).unwrap();
        std::fs::write(dir.join("root.json"), repo.trust_anchor()).unwrap();
        let mut cfg = UpdaterConfig::new(Url::from_directory_path(dir.join("metadata")).unwrap());
        cfg.mode = DelegationMode::All;
        let mut updater = Updater::init(
            cfg,
            Arc::new(FileTransport),
            Arc::new(MemoryStore::default()),
            repo.trust_anchor(),
        )
        .unwrap();
        updater.refresh().unwrap();
        let tree = tmp.path().join("published/r");
        Upstream {
            _tmp: tmp,
            dir,
            tree,
            updater,
        }
    }

    fn source(&self) -> Source {
        Source::Dir(self.dir.join("targets"))
    }

    fn mirror(&self, workers: usize) -> Result<TargetsReport, TargetsError> {
        mirror_targets(&self.updater, &self.source(), &self.tree, workers)
    }

    /// Every (path, length, hashes) the verified roles list.
    fn targets(&self) -> Vec<(String, u64, tuf_mirror_client::schema::Hashes)> {
        let mut out: Vec<_> = self
            .updater
            .roles()
            .flat_map(|r| {
                r.targets
                    .iter()
                    .map(|(p, d)| (p.clone(), d.length, d.hashes.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The upstream file of target `path`.
    fn upstream_file(&self, path: &str) -> PathBuf {
        let (_, _, hashes) = self.targets().into_iter().find(|t| t.0 == path).unwrap();
        let base = Url::from_directory_path(self.dir.join("targets")).unwrap();
        let consistent = self.updater.root().signed.consistent_snapshot;
        upstream_target_url(&base, path, &hashes, consistent)
            .unwrap()
            .to_file_path()
            .unwrap()
    }

    fn names(&self, path: &str) -> Vec<PathBuf> {
        let (_, _, hashes) = self.targets().into_iter().find(|t| t.0 == path).unwrap();
        mirror_target_paths(&self.tree, path, &hashes).unwrap()
    }

    /// Each target is under each of its hash names, with the upstream's bytes.
    fn assert_all_mirrored(&self) {
        for (path, length, hashes) in self.targets() {
            let want = std::fs::read(self.upstream_file(&path)).unwrap();
            let names = mirror_target_paths(&self.tree, &path, &hashes).unwrap();
            assert_eq!(names.len(), hashes.0.len(), "{path}");
            for name in names {
                let got = std::fs::read(&name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
                assert_eq!(got, want, "{name:?}");
                assert_eq!(got.len() as u64, length);
                for (alg, value) in &hashes.0 {
                    let alg = match alg {
                        HashAlg::Sha256 => &SHA256,
                        HashAlg::Sha512 => &SHA512,
                        other => panic!("unexpected {other:?}"),
                    };
                    assert_eq!(digest(alg, &got).as_ref(), value.as_slice(), "{name:?}");
                }
            }
        }
        assert_eq!(temporary_files(&self.tree), Vec::<PathBuf>::new());
    }
}

/// Leftover temporary files anywhere under `dir`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(temporary_files(&e.path()));
        } else if e.file_name().to_string_lossy().starts_with(".tmp-") {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn every_target_lands_under_its_hash_name_and_a_second_run_copies_nothing() {
    let up = Upstream::new(&fixtures::load("basic").unwrap());
    assert_eq!(up.targets().len(), BASIC_TARGETS);
    let report = up.mirror(4).unwrap();
    let bytes: u64 = up.targets().iter().map(|t| t.1).sum();
    assert_eq!(
        report,
        TargetsReport {
            copied: BASIC_TARGETS,
            bytes,
            skipped: 0
        }
    );
    up.assert_all_mirrored();
    // The spec's consistent layout, as clients ask for it.
    let hello = up.names("hello.txt");
    assert_eq!(hello[0].parent().unwrap(), up.tree.join("targets"));
    assert!(up.names("releases/app-1.0.tar.gz")[0].starts_with(up.tree.join("targets/releases")));

    let again = up.mirror(4).unwrap();
    assert_eq!(
        again,
        TargetsReport {
            copied: 0,
            bytes: 0,
            skipped: BASIC_TARGETS
        }
    );
}

#[test]
fn a_tampered_upstream_file_is_refused_and_nothing_is_left_at_its_name() {
    let up = Upstream::new(&fixtures::load("basic").unwrap());
    let file = up.upstream_file("hello.txt");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();

    let e = up.mirror(3).unwrap_err();
    let TargetsError::Failed {
        ref failures,
        total,
        not_attempted,
    } = e
    else {
        panic!("{e:?}");
    };
    assert_eq!(
        (failures.len(), total, not_attempted),
        (1, BASIC_TARGETS, 0)
    );
    let f = &failures[0];
    assert_eq!(f.path, "hello.txt");
    assert_eq!(f.url.as_ref().unwrap().to_file_path().unwrap(), file);
    assert!(
        matches!(&f.source, EngineError::Integrity { what, reason, .. }
            if what == "hello.txt" && reason.contains("sha256")),
        "{:?}",
        f.source
    );
    assert_eq!(e.kind(), ErrorKind::Security);
    assert!(e.to_string().contains("\"hello.txt\""), "{e}");
    for name in up.names("hello.txt") {
        assert!(!name.exists(), "{name:?}");
    }
    assert_eq!(temporary_files(&up.tree), Vec::<PathBuf>::new());
    // The other targets were copied, and are not fetched again once the upstream is fixed.
    std::fs::write(&file, &good).unwrap();
    let report = up.mirror(3).unwrap();
    assert_eq!((report.copied, report.skipped), (1, BASIC_TARGETS - 1));
    up.assert_all_mirrored();
}

#[test]
fn a_missing_or_short_upstream_file_is_refused_and_named() {
    let up = Upstream::new(&fixtures::load("basic").unwrap());
    let missing = up.upstream_file("releases/app-1.0.tar.gz");
    std::fs::remove_file(&missing).unwrap();
    let short = up.upstream_file("packages/beta.txt");
    let bytes = std::fs::read(&short).unwrap();
    std::fs::write(&short, &bytes[..bytes.len() - 1]).unwrap();

    let e = up.mirror(2).unwrap_err();
    let TargetsError::Failed { ref failures, .. } = e else {
        panic!("{e:?}");
    };
    let paths: Vec<&str> = failures.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["packages/beta.txt", "releases/app-1.0.tar.gz"]);
    assert!(
        matches!(&failures[1].source, EngineError::NotFound { url }
            if url.ends_with(&missing.file_name().unwrap().to_string_lossy().to_string())),
        "{:?}",
        failures[1].source
    );
    assert!(
        matches!(&failures[0].source, EngineError::Integrity { reason, .. }
            if reason.contains("signed length")),
        "{:?}",
        failures[0].source
    );
    assert_eq!(
        e.kind(),
        ErrorKind::Security,
        "a short file is an integrity failure"
    );
    for path in ["releases/app-1.0.tar.gz", "packages/beta.txt"] {
        for name in up.names(path) {
            assert!(!name.exists(), "{name:?}");
        }
    }
    assert_eq!(temporary_files(&up.tree), Vec::<PathBuf>::new());

    // Only missing files: the upstream may simply not have them yet.
    std::fs::write(&short, &bytes).unwrap();
    let e = up.mirror(2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retryable, "{e}");
}

#[test]
fn an_upstream_without_consistent_snapshots_is_read_at_plain_paths() {
    let up = Upstream::new(&fixtures::load("basic-no-consistent").unwrap());
    assert!(!up.updater.root().signed.consistent_snapshot);
    assert_eq!(
        up.upstream_file("releases/app-1.1.tar.gz"),
        up.dir.join("targets/releases/app-1.1.tar.gz")
    );
    let report = up.mirror(8).unwrap();
    assert_eq!((report.copied, report.skipped), (BASIC_TARGETS, 0));
    up.assert_all_mirrored();
}

#[test]
fn a_target_listing_sha256_and_sha512_gets_both_names() {
    let mut repo = fixtures::basic();
    repo.set_target_sha512(true);
    repo.add_target(
        TARGETS,
        "two/hashes.txt",
        b"listed with two hashes\n".to_vec(),
    );
    let up = Upstream::new(&repo.publish());
    let names = up.names("two/hashes.txt");
    assert_eq!(names.len(), 2);
    let report = up.mirror(1).unwrap();
    assert_eq!(report.copied, BASIC_TARGETS + 1);
    up.assert_all_mirrored();
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (
            std::fs::metadata(&names[0]).unwrap(),
            std::fs::metadata(&names[1]).unwrap(),
        );
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "hard-linked");
    }
    // A target with one of its names missing is fetched again and completed.
    std::fs::remove_file(&names[1]).unwrap();
    let report = up.mirror(2).unwrap();
    assert_eq!((report.copied, report.skipped), (1, BASIC_TARGETS));
    up.assert_all_mirrored();
}

#[test]
fn an_unusable_source_is_one_error() {
    let up = Upstream::new(&fixtures::load("basic").unwrap());
    let e = mirror_targets(
        &up.updater,
        &Source::Dir(PathBuf::from("relative/dir")),
        &up.tree,
        2,
    )
    .unwrap_err();
    assert!(matches!(e, TargetsError::Unusable { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Fatal);
}
