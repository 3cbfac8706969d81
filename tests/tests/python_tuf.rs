//! python-tuf's ngclient, an independent TUF 1.0 client, loads every committed fixture
//! repository from a [`TestServer`] and downloads every target. This cross-checks the builder
//! (signing, canonical JSON, file layout, hashed and succinct bins) and the server.
//!
//! Needs python-tuf (see [`tuf_mirror_tests::peers::python`]); fails when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::process::Command;

use tuf_mirror_tests::builder::{
    DelegatedPaths, Delegation, KeyKind, PublishedRepo, RepoBuilder, Sig, TestKey, ROOT, SNAPSHOT,
    TARGETS, TIMESTAMP,
};
use tuf_mirror_tests::fixtures;
use tuf_mirror_tests::server::TestServer;

const CLIENT: &str = r#"
import inspect, os, sys
from tuf.api import exceptions
from tuf.ngclient import Updater

metadata_dir, url, target_dir, *paths = sys.argv[1:]
extra = {}
if "bootstrap" in inspect.signature(Updater.__init__).parameters:
    with open(os.path.join(metadata_dir, "root.json"), "rb") as f:
        extra["bootstrap"] = f.read()
updater = Updater(
    metadata_dir=metadata_dir,
    metadata_base_url=url + "metadata/",
    target_dir=target_dir,
    target_base_url=url + "targets/",
    **extra,
)
try:
    updater.refresh()
    for path in paths:
        info = updater.get_targetinfo(path)
        if info is None:
            print("missing target", path)
            sys.exit(3)
        updater.download_target(info, os.path.join(target_dir, path.replace("/", "_")))
except exceptions.ExpiredMetadataError as e:
    print("expired:", e)
    sys.exit(2)
print("ok", len(paths))
"#;

#[test]
fn python_tuf_loads_every_fixture() {
    let python = tuf_mirror_tests::peers::python();
    for case in fixtures::cases() {
        let builder = (case.build)();
        let mut paths = BTreeSet::new();
        for role in builder.role_names() {
            if role == TIMESTAMP || role == SNAPSHOT {
                continue;
            }
            if let Some(targets) = builder.signed(&role)["targets"].as_object() {
                paths.extend(targets.keys().cloned());
            }
        }
        let repo = fixtures::load(case.name).expect("committed fixture");
        let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let run = run_client(python.as_os_str(), &repo, &path_refs);
        if case.name == "expired-timestamp" {
            assert_eq!(run.code, Some(2), "{}: {}", case.name, run.output);
            continue;
        }
        assert_eq!(
            run.code,
            Some(0),
            "{}: {}\n{:#?}",
            case.name,
            run.output,
            run.requests
        );
        assert_eq!(
            run.output.trim(),
            format!("ok {}", paths.len()),
            "{}",
            case.name
        );

        // The root chain was walked to its end, then timestamp, snapshot and targets fetched.
        let roots = builder.version(ROOT);
        let mut expected: Vec<String> = (2..=roots + 1)
            .map(|v| format!("metadata/{v}.root.json"))
            .collect();
        expected.push("metadata/timestamp.json".into());
        expected.push(builder.metadata_path(SNAPSHOT));
        expected.push(builder.metadata_path(TARGETS));
        assert_eq!(
            run.requests[..expected.len()],
            expected[..],
            "{}",
            case.name
        );
        for path in &paths {
            let name = path.replace('/', "_");
            let downloaded = &run.downloads[&name];
            let served = builder
                .role_names()
                .iter()
                .find_map(|role| {
                    builder
                        .target_urls(role, path)
                        .first()
                        .and_then(|url| repo.get(url))
                })
                .unwrap();
            assert_eq!(downloaded, served, "{}: {path}", case.name);
        }
    }
}

/// What one run of the python-tuf client did.
struct Run {
    code: Option<i32>,
    output: String,
    requests: Vec<String>,
    /// Downloaded files by target path with `/` replaced by `_`.
    downloads: BTreeMap<String, Vec<u8>>,
}

/// Runs the python-tuf client against `repo` served by a fresh server, downloading `paths`.
fn run_client(python: &OsStr, repo: &PublishedRepo, paths: &[&str]) -> Run {
    let server = TestServer::start(repo.shared());
    let work = tempfile::tempdir().unwrap();
    let metadata_dir = work.path().join("metadata");
    let target_dir = work.path().join("targets");
    fs::create_dir_all(&metadata_dir).unwrap();
    fs::create_dir_all(&target_dir).unwrap();
    fs::write(metadata_dir.join("root.json"), repo.trust_anchor()).unwrap();
    let output = Command::new(python)
        .arg("-c")
        .arg(CLIENT)
        .arg(&metadata_dir)
        .arg(server.url())
        .arg(&target_dir)
        .args(paths)
        .output()
        .expect("run python");
    Run {
        code: output.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        requests: server.requests(),
        downloads: fixtures::read_tree(&target_dir).unwrap(),
    }
}

#[test]
fn python_tuf_accepts_every_key_type_and_encoded_role_names() {
    let python = tuf_mirror_tests::peers::python();
    let mut repo = RepoBuilder::new();
    repo.set_role_keys(ROOT, [TestKey::generate(KeyKind::Rsa3072)], 1);
    repo.set_role_keys(TIMESTAMP, [TestKey::generate(KeyKind::EcdsaP256)], 1);
    repo.set_role_keys(SNAPSHOT, [TestKey::generate(KeyKind::EcdsaP384)], 1);
    repo.set_role_keys(TARGETS, [TestKey::generate(KeyKind::Rsa2048)], 1);
    let odd = "a/b c%d~é";
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            odd,
            [TestKey::ed25519_from_label("odd")],
            DelegatedPaths::paths(&["odd/*"]),
        ),
    );
    repo.add_target(odd, "odd/file.txt", b"odd".to_vec());
    let run = run_client(python.as_os_str(), &repo.publish(), &["odd/file.txt"]);
    assert_eq!(run.code, Some(0), "{}\n{:#?}", run.output, run.requests);
    assert!(
        run.requests
            .contains(&"metadata/1.a%2Fb%20c%25d~%C3%A9.json".to_owned()),
        "{:#?}",
        run.requests
    );
    assert_eq!(run.downloads["odd_file.txt"], b"odd");

    // A corrupt timestamp signature is refused.
    let key = repo.role_keys(TIMESTAMP)[0].clone();
    repo.set_signers(TIMESTAMP, vec![Sig::Corrupt(key)]);
    let run = run_client(python.as_os_str(), &repo.publish(), &[]);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(
        run.output.contains("UnsignedMetadataError"),
        "{}",
        run.output
    );
}
