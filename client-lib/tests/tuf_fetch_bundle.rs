//! `tuf-fetch --bundle`: the shell front of the client API, on the committed `basic`
//! fixture as the mirror.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tuf_mirror_client::bundle::{pins_from_root, render, ClientPolicy, RepositoryExport};
use url::Url;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/basic")
        .canonicalize()
        .unwrap()
}

/// A bundle with repositories `names`, all served by the fixture.
fn write_bundle(out: &Path, names: &[&str]) {
    let root = std::fs::read(fixture().join("root.json")).unwrap();
    let (keys, threshold) = pins_from_root(&root).unwrap();
    let mirrors = [Url::from_directory_path(fixture()).unwrap()];
    let repos: Vec<_> = names
        .iter()
        .map(|name| RepositoryExport {
            name,
            mirrors: &mirrors,
            mirror_root: &root,
            targets_keys: keys.clone(),
            threshold,
            next_targets_keys: None,
            upstream_root: None,
            policy: ClientPolicy::default(),
        })
        .collect();
    std::fs::write(out, render(None, &repos, out).unwrap()).unwrap();
}

fn tuf_fetch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tuf-fetch"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn downloads_reports_and_looks_up_through_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("bundle.json");
    write_bundle(&b, &["r"]);
    let b = b.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();

    let o = tuf_fetch(&[
        "--bundle",
        b,
        "--metadata-dir",
        cache,
        "--target-name",
        "releases/app-1.0.tar.gz",
        "--target-dir",
        out_s,
        "download",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let got = std::fs::read(out.join("releases%2Fapp-1.0.tar.gz")).unwrap();
    assert_eq!(got, b"fixture target releases/app-1.0.tar.gz\n");
    assert!(Path::new(cache).join("root.json").exists());

    let o = tuf_fetch(&[
        "--bundle",
        b,
        "--repo",
        "r",
        "--target-name",
        "hello.txt",
        "info",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("hello.txt 25 sha256:fa49d77a8a928d18"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("role:targets"), "{stdout}");

    let o = tuf_fetch(&["--bundle", b, "--metadata-dir", cache, "staleness"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert!(stdout.contains(&format!("  {role} ")), "{stdout}");
    }
    assert!(stdout.contains("signed by mirror") && stdout.contains("signed by upstream"));

    let o = tuf_fetch(&["--bundle", b, "--target-name", "no/such", "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not found"), "{}", text(&o).1);
}

#[test]
fn a_bundle_it_does_not_understand_is_refused_with_the_file_and_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("bundle.json");
    write_bundle(&b, &["r", "s"]);
    let bs = b.to_str().unwrap();

    let o = tuf_fetch(&["--bundle", bs, "refresh"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("choose one with --repo (r, s)"),
        "{}",
        text(&o).1
    );
    let o = tuf_fetch(&["--bundle", bs, "--repo", "t", "refresh"]);
    assert!(
        text(&o).1.contains("repository \"t\" is not in key bundle"),
        "{}",
        text(&o).1
    );
    let o = tuf_fetch(&["--bundle", bs, "--repo", "s", "refresh"]);
    assert!(o.status.success(), "{}", text(&o).1);

    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
    v["version"] = serde_json::json!(7);
    std::fs::write(&b, v.to_string()).unwrap();
    let o = tuf_fetch(&["--bundle", bs, "--repo", "r", "refresh"]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!("key bundle {bs} has format version 7; this library reads version 1 only");
    assert!(text(&o).1.contains(&want), "{}", text(&o).1);

    v["version"] = serde_json::json!(1);
    v["repositories"][0]["targets_keys"]["keys"] = serde_json::json!({});
    std::fs::write(&b, v.to_string()).unwrap();
    let o = tuf_fetch(&["--bundle", bs, "--repo", "r", "refresh"]);
    let want = format!("key bundle {bs}: repositories[0] (\"r\").targets_keys: lists no key");
    assert!(text(&o).1.contains(&want), "{}", text(&o).1);

    std::fs::write(&b, "{\"format\": \"tuf-mirror-bundle\", \"version\": 1,").unwrap();
    let o = tuf_fetch(&["--bundle", bs, "refresh"]);
    assert!(
        text(&o)
            .1
            .contains(&format!("key bundle {bs} is malformed")),
        "{}",
        text(&o).1
    );

    let o = tuf_fetch(&["--bundle", bs, "--metadata-url", "http://x/", "refresh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses --metadata-url with --bundle"
    );
}
