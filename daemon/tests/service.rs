//! The service end to end: a sync verifies the upstream, mirrors its target files and
//! publishes; the HTTP server serves it; python-tuf's ngclient and tuf-js, holding only
//! the mirror's root version 1, download top-level, delegated and hashed-bin targets;
//! the served targets metadata is the upstream's bytes; a hostile upstream publishes
//! nothing and the last good state stays served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::MemLedger;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tuf_mirror_config::Config;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::serve::{self, HealthHandle, ServeConfig};
use tuf_mirror_daemon::service::{published_dir, Service, ServiceError};
use tuf_mirror_tests::builder::{Sig, TestKey, SNAPSHOT, TIMESTAMP};
use tuf_mirror_tests::{fixtures, peers};

fn setup(dir: &Path) -> Config {
    setup_with(dir, &fixtures::load("basic").unwrap(), "")
}

fn setup_with(dir: &Path, repo: &tuf_mirror_tests::builder::PublishedRepo, extra: &str) -> Config {
    common::write_upstream(repo, dir);
    common::generate_keys(dir);
    common::config(dir, extra)
}

const TARGETS: [&str; 3] = ["hello.txt", "releases/app-1.0.tar.gz", "packages/beta.txt"];

fn run_peer(mut cmd: Command, base: &str, root: &Path) -> String {
    let out = cmd
        .args([
            "--metadata-url",
            &format!("{base}/metadata/"),
            "--targets-url",
            &format!("{base}/targets/"),
        ])
        .arg("--root")
        .arg(root)
        .args(TARGETS)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.lines().filter(|l| l.starts_with("OK ")).count(),
        TARGETS.len(),
        "{s}"
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_clients_download_through_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = setup(dir);
    let service = Service::open(
        &config,
        Arc::new(MemLedger::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let o = service.sync("r").await.unwrap();
    assert_eq!((o.root, o.snapshot, o.timestamp), (Some(1), Some(1), 1));

    // Targets metadata and delegated roles are the upstream's bytes.
    let tree = published_dir(&config.server.state_dir).join("r");
    for f in ["1.targets.json", "1.releases.json", "1.bin-3.json"] {
        assert_eq!(
            std::fs::read(tree.join("metadata").join(f)).unwrap(),
            std::fs::read(dir.join("up/metadata").join(f)).unwrap(),
            "{f}"
        );
    }

    let server = serve::bind(ServeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        published_dir(&config.server.state_dir),
    ))
    .await
    .unwrap();
    let base = format!("http://{}/r", server.local_addr());
    let stop = CancellationToken::new();
    let http = tokio::spawn(server.run(
        HealthHandle::new(["r".to_owned()]),
        stop.clone().cancelled_owned(),
    ));
    let root = tree.join("metadata/1.root.json");

    let b = base.clone();
    let r = root.clone();
    tokio::task::spawn_blocking(move || {
        let mut py = Command::new(peers::python());
        py.arg(peers::script("tuf_client.py"));
        run_peer(py, &b, &r);
        let mut js = Command::new("node");
        js.arg(peers::script("tufjs_client.cjs"))
            .env("NODE_PATH", peers::node_path());
        run_peer(js, &b, &r);
    })
    .await
    .unwrap();

    // A hostile upstream (a timestamp signed by a key it does not list) publishes nothing.
    let before = std::fs::read(tree.join("metadata/timestamp.json")).unwrap();
    let mut bad = fixtures::basic();
    bad.bump_version(SNAPSHOT);
    bad.bump_version(TIMESTAMP);
    bad.set_signers(
        TIMESTAMP,
        vec![Sig::Key(TestKey::ed25519_from_label("intruder"))],
    );
    bad.publish().write_to(&dir.join("up")).unwrap();
    let e = service.sync("r").await.unwrap_err();
    assert!(matches!(e, ServiceError::Upstream { .. }), "{e:?}");
    let msg = tuf_mirror_daemon::service::display_chain(&e);
    assert!(
        msg.contains("repository r") && msg.contains("timestamp"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(tree.join("metadata/timestamp.json")).unwrap(),
        before
    );
    // Re-signing of the last good state goes on, and clients still succeed.
    let o = service.resign("r").await.unwrap();
    assert_eq!(o.timestamp, 2);
    let (b, r) = (base.clone(), root.clone());
    tokio::task::spawn_blocking(move || {
        let mut py = Command::new(peers::python());
        py.arg(peers::script("tuf_client.py"));
        run_peer(py, &b, &r);
    })
    .await
    .unwrap();

    // tough's RepositoryLoader (the library behind tuftool), over HTTP.
    for t in TARGETS {
        let bytes = tough_read(&root, &base, t).await;
        let want = std::fs::read(dir.join("up/targets").join(spec_name(t))).unwrap();
        assert_eq!(bytes, want, "{t}");
    }

    stop.cancel();
    http.await.unwrap();
}

/// `dir/<sha256>.<name>` of a target of the `basic` fixture (its upstream files).
fn spec_name(target: &str) -> String {
    let repo = fixtures::load("basic").unwrap();
    let (d, n) = target.rsplit_once('/').unwrap_or(("", target));
    let prefix = if d.is_empty() {
        String::new()
    } else {
        format!("{d}/")
    };
    repo.files()
        .keys()
        .find_map(|k| {
            let rest = k.strip_prefix("targets/")?.strip_prefix(&prefix)?;
            (rest.ends_with(&format!(".{n}")) && rest.len() == 65 + n.len())
                .then(|| format!("{prefix}{rest}"))
        })
        .unwrap()
}

/// A tough transport over HTTP (tough's own needs its `http` feature and reqwest).
#[derive(Debug, Clone)]
struct HttpForTough;

#[async_trait::async_trait]
impl tough::Transport for HttpForTough {
    async fn fetch(&self, url: url::Url) -> Result<tough::TransportStream, tough::TransportError> {
        use tough::{TransportError, TransportErrorKind};
        let u = url.to_string();
        let got = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, TransportError> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let resp = agent
                .get(&u)
                .call()
                .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, &u, e))?;
            if resp.status() == 404 || resp.status() == 403 {
                return Err(TransportError::new(TransportErrorKind::FileNotFound, &u));
            }
            resp.into_body()
                .read_to_vec()
                .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, &u, e))
        })
        .await
        .map_err(|e| {
            tough::TransportError::new_with_cause(tough::TransportErrorKind::Other, url.as_str(), e)
        })??;
        let stream = futures::stream::once(async move { Ok(bytes::Bytes::from(got)) });
        Ok(Box::pin(stream))
    }
}

async fn tough_read(root: &Path, base: &str, target: &str) -> Vec<u8> {
    use tough::IntoVec;
    let anchor = std::fs::read(root).unwrap();
    let repo = tough::RepositoryLoader::new(
        &anchor,
        format!("{base}/metadata/").parse().unwrap(),
        format!("{base}/targets/").parse().unwrap(),
    )
    .transport(HttpForTough)
    .load()
    .await
    .unwrap();
    let name = tough::TargetName::new(target).unwrap();
    repo.read_target(&name)
        .await
        .unwrap()
        .unwrap()
        .into_vec()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_long_expired_is_mirrored_within_the_grace_and_clients_succeed() {
    // The upstream's timestamp expired ten days ago, as a copy carried into the site.
    let mut up = fixtures::basic();
    let expired = Timestamp::now() - jiff::SignedDuration::from_hours(24 * 10);
    up.set_expires(
        TIMESTAMP,
        &expired.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let published = up.publish();

    // Without a grace: refused, nothing published.
    let tmp = tempfile::tempdir().unwrap();
    let config = setup_with(tmp.path(), &published, "");
    let service = Service::open(
        &config,
        Arc::new(MemLedger::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let e = service.sync("r").await.unwrap_err();
    assert!(
        tuf_mirror_daemon::service::display_chain(&e).contains("timestamp metadata expired"),
        "{e:?}"
    );
    assert!(!published_dir(&config.server.state_dir)
        .join("r/metadata/timestamp.json")
        .exists());

    // With a 30-day grace: mirrored, and clients of the mirror see a fresh timestamp.
    let tmp = tempfile::tempdir().unwrap();
    let config = setup_with(tmp.path(), &published, "upstream_grace = \"30d\"");
    let service = Service::open(
        &config,
        Arc::new(MemLedger::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    service.sync("r").await.unwrap();
    let tree = published_dir(&config.server.state_dir).join("r");
    let root = tree.join("metadata/1.root.json");
    tokio::task::spawn_blocking(move || {
        let mut py = Command::new(peers::python());
        py.arg(peers::script("tuf_client.py"))
            .arg("--file-fetcher")
            .arg(&tree);
        run_peer(py, "http://mirror.test", &root);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upstreams_publish_nothing_and_are_reported() {
    let mut up = fixtures::basic();
    up.bump_version(TIMESTAMP);
    let mut cases: Vec<(&str, tuf_mirror_tests::builder::PublishedRepo, &str)> = Vec::new();
    // A rolled-back upstream: the timestamp goes back to version 1.
    cases.push((
        "rollback",
        fixtures::basic().publish(),
        "timestamp rollback",
    ));
    // A hostile target path in a new targets version.
    let mut hostile = up.clone();
    hostile.patch_signed(tuf_mirror_tests::builder::TARGETS, |s| {
        s["targets"]["../../etc/passwd"] =
            serde_json::json!({"length": 1, "hashes": {"sha256": "00"}});
    });
    hostile.bump_version(tuf_mirror_tests::builder::TARGETS);
    hostile.bump_version(SNAPSHOT);
    hostile.bump_version(TIMESTAMP);
    cases.push((
        "hostile target path",
        hostile.publish(),
        "refused target name",
    ));
    // Stale beyond grace (none configured).
    let mut stale = up.clone();
    stale.bump_version(TIMESTAMP);
    stale.set_expires(TIMESTAMP, "2001-01-01T00:00:00Z");
    cases.push(("stale", stale.publish(), "timestamp metadata expired"));
    for (what, repo, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let config = setup_with(dir, &up.publish(), "");
        let service = Service::open(
            &config,
            Arc::new(MemLedger::default()),
            Arc::new(SystemClock),
        )
        .unwrap();
        service.sync("r").await.unwrap();
        let ts = published_dir(&config.server.state_dir).join("r/metadata/timestamp.json");
        let served = std::fs::read(&ts).unwrap();
        repo.write_to(&dir.join("up")).unwrap();
        let e = service.sync("r").await.unwrap_err();
        let msg = tuf_mirror_daemon::service::display_chain(&e);
        assert!(
            msg.contains("repository r") && msg.contains(want),
            "{what}: {msg}"
        );
        assert_eq!(
            std::fs::read(&ts).unwrap(),
            served,
            "{what}: nothing published"
        );
        // The last good state is still re-signed.
        assert!(service.resign("r").await.is_ok(), "{what}");
    }
    // Unreachable: a closed port on loopback.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut cfg = setup_with(tmp2.path(), &fixtures::load("basic").unwrap(), "");
    cfg.repositories[0].upstream_metadata =
        tuf_mirror_config::Source::Http("http://127.0.0.1:9/metadata/".parse().unwrap());
    let service =
        Service::open(&cfg, Arc::new(MemLedger::default()), Arc::new(SystemClock)).unwrap();
    let e = service.sync("r").await.unwrap_err();
    let msg = tuf_mirror_daemon::service::display_chain(&e);
    assert!(msg.contains("127.0.0.1:9"), "{msg}");
    match e {
        ServiceError::Upstream { source, .. } => {
            assert_eq!(source.kind(), tuf_mirror_client::ErrorKind::Retryable)
        }
        other => panic!("{other:?}"),
    }
}
