//! The client API built from a key bundle, over repositories built by the independent
//! builder: expiry grace is opt-in, per repository, per class of role and bounded on every
//! side; mirrors fail over only when unreachable; key ids are bound to key objects; no
//! mirror response makes the client panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Mem;
use jiff::{SignedDuration, Timestamp};
use tuf_mirror_client::bundle::{pins_from_root, render, Bundle, ClientPolicy, RepositoryExport};
use tuf_mirror_client::client::{ClientBuilder, ClientError, Freshness, MirrorClient, Party};
use tuf_mirror_client::{ByteStream, Error, Transport, MAX_GRACE};
use tuf_mirror_tests::builder::{PublishedRepo, TestKey, SNAPSHOT, TARGETS, TIMESTAMP};
use tuf_mirror_tests::fixtures;
use url::Url;

/// When the roles under test expire.
const E: &str = "2030-01-01T00:00:00Z";
const DAY: u64 = 86_400;

fn at(offset_secs: i64) -> Timestamp {
    E.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_secs)
}

fn mirror_url(host: &str) -> Url {
    Url::parse(&format!("http://{host}/")).unwrap()
}

/// A bundle with repositories `graced` (with `policy`) and `strict` (none), both served by
/// the repository `repo` at `http://repo.test/`.
fn bundle(repo: &PublishedRepo, policy: ClientPolicy) -> Bundle {
    let root = repo.trust_anchor();
    let (keys, threshold) = pins_from_root(root).unwrap();
    let mirrors = [mirror_url("repo.test")];
    let entry = |name, policy| RepositoryExport {
        name,
        mirrors: &mirrors,
        mirror_root: root,
        targets_keys: keys.clone(),
        threshold,
        next_targets_keys: None,
        upstream_root: None,
        policy,
    };
    let repos = [
        entry("graced", policy),
        entry("strict", ClientPolicy::default()),
    ];
    let bytes = render(None, &repos, Path::new("site.json")).unwrap();
    Bundle::from_slice(&bytes, "site.json").unwrap()
}

/// A policy with these graces (upstream targets, mirror timestamp, mirror snapshot).
fn grace(t: Option<Duration>, ts: Option<Duration>, snap: Option<Duration>) -> ClientPolicy {
    let mut p = ClientPolicy::default();
    p.upstream_targets_grace = t;
    p.mirror_timestamp_grace = ts;
    p.mirror_snapshot_grace = snap;
    p
}

fn client(b: &Bundle, name: &str, mem: &Mem, time: Timestamp) -> MirrorClient {
    MirrorClient::builder(b, name)
        .unwrap()
        .transport(Arc::new(mem.clone()))
        .dangerous_validation_time(time)
        .build()
        .unwrap()
}

fn expired_role(e: &ClientError) -> &str {
    match e.engine_error() {
        Some(Error::Expired { role, .. }) => role,
        _ => panic!("expected an expiry error, got {e:?}"),
    }
}

/// Captures what is logged at warn level on this thread while it lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(sub))
    }

    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

const APP: &str = "releases/app-1.0.tar.gz";

#[test]
fn expired_upstream_targets_need_a_grace_for_that_repository_and_within_it() {
    let mut repo = fixtures::basic();
    repo.set_expires(TARGETS, E);
    repo.set_expires("releases", E);
    let published = repo.publish();
    let mem = Mem::new(&published);
    let week = Duration::from_secs(7 * DAY);
    let b = bundle(&published, grace(Some(week), None, None));
    let week_s = 7 * DAY as i64;
    let (logs, _guard) = Logs::capture();

    // Before expiry both repositories accept; at the expiry instant neither does
    // without a grace.
    for name in ["graced", "strict"] {
        client(&b, name, &mem, at(-1)).refresh().unwrap();
    }
    let e = client(&b, "strict", &mem, at(0)).refresh().unwrap_err();
    assert_eq!(expired_role(&e), "targets");
    let log = logs.take();
    assert!(
        log.contains("expiry grace in force"),
        "the setting is logged: {log}"
    );
    assert!(!log.contains("using expired"), "no grace used yet: {log}");

    // Just inside the grace: the graced repository accepts, and says so at warn level
    // with the role, how late, and the repository.
    let mut c = client(&b, "graced", &mem, at(week_s - 1));
    c.refresh().unwrap();
    assert!(c.target_info(APP).unwrap().is_some(), "delegated roles too");
    let log = logs.take();
    for want in [
        "using expired metadata within the configured grace",
        "role=\"targets\"",
        "role=\"releases\"",
        "repository=\"graced\"",
        &format!("seconds_past_expiry={}", week_s - 1),
    ] {
        assert!(log.contains(want), "{want:?} not in {log}");
    }
    let s = c.staleness();
    assert_eq!(s.role("targets").unwrap().freshness, Freshness::InGrace);
    assert_eq!(s.role("timestamp").unwrap().freshness, Freshness::Valid);
    assert_eq!(s.worst(), Freshness::InGrace);
    assert!(s.to_string().contains("IN GRACE"), "{s}");

    // The other repository of the same bundle has no grace: refused, just after expiry.
    let e = client(&b, "strict", &mem, at(1)).refresh().unwrap_err();
    assert_eq!(expired_role(&e), "targets");
    assert_eq!(e.party(), Some(Party::Upstream));
    assert!(
        e.to_string()
            .contains("the upstream must publish a newer version"),
        "{e}"
    );
    assert!(
        e.engine_error()
            .unwrap()
            .to_string()
            .contains(E.trim_end_matches('Z')),
        "names when: {e}"
    );

    // At and past the end of the grace: refused, and the error names the grace.
    for offset in [week_s, week_s + 1] {
        let e = client(&b, "graced", &mem, at(offset))
            .refresh()
            .unwrap_err();
        assert_eq!(expired_role(&e), "targets");
        assert!(
            e.engine_error()
                .unwrap()
                .to_string()
                .contains("beyond the grace of 604800 s"),
            "{e}"
        );
    }

    // A delegated role past the grace is refused at lookup. (Targets renewed, releases
    // left expired.)
    let mut renewed = repo.clone();
    renewed.set_expires(TARGETS, "2099-01-01T00:00:00Z");
    renewed.bump_version(TARGETS);
    renewed.bump_version(SNAPSHOT);
    renewed.bump_version(TIMESTAMP);
    mem.serve(&renewed.publish());
    let mut c = client(&b, "graced", &mem, at(week_s + 1));
    c.refresh().unwrap();
    let e = c.target_info(APP).unwrap_err();
    assert_eq!(expired_role(&e), "releases");
    assert_eq!(e.party(), Some(Party::Upstream));

    // Without a bundle policy, the builder is strict.
    let r = b.repository("graced").unwrap();
    let mut plain = ClientBuilder::new(
        "graced",
        r.mirrors.clone(),
        r.mirror_root.clone(),
        r.targets_keys.clone(),
    )
    .transport(Arc::new(mem.clone()))
    .dangerous_validation_time(at(1))
    .build()
    .unwrap();
    mem.serve(&published);
    assert_eq!(expired_role(&plain.refresh().unwrap_err()), "targets");
}

#[test]
fn mirror_timestamp_and_snapshot_graces_are_separate_and_bounded() {
    let hour = 3_600i64;
    for (role, policy) in [
        (
            TIMESTAMP,
            grace(None, Some(Duration::from_secs(3_600)), None),
        ),
        (
            SNAPSHOT,
            grace(None, None, Some(Duration::from_secs(3_600))),
        ),
    ] {
        let mut repo = fixtures::basic();
        repo.set_expires(role, E);
        let published = repo.publish();
        let mem = Mem::new(&published);
        let b = bundle(&published, policy);
        client(&b, "graced", &mem, at(hour - 1)).refresh().unwrap();
        for offset in [hour, hour + 1] {
            let e = client(&b, "graced", &mem, at(offset))
                .refresh()
                .unwrap_err();
            assert_eq!(expired_role(&e), role);
            assert_eq!(e.party(), Some(Party::Mirror), "{role}");
            assert!(e.to_string().contains("the mirror must re-sign it"), "{e}");
        }
        let e = client(&b, "strict", &mem, at(1)).refresh().unwrap_err();
        assert_eq!(expired_role(&e), role);

        // A grace for upstream targets does not cover the mirror's roles.
        let b = bundle(&published, grace(Some(MAX_GRACE), None, None));
        let e = client(&b, "graced", &mem, at(1)).refresh().unwrap_err();
        assert_eq!(expired_role(&e), role);
    }
}

#[test]
fn every_grace_is_capped() {
    let published = fixtures::basic().publish();
    let b = bundle(&published, ClientPolicy::default());
    let base = MirrorClient::builder(&b, "strict").unwrap();
    let over = MAX_GRACE + Duration::from_secs(1);
    for builder in [
        base.clone().dangerous_upstream_targets_grace(over),
        base.clone().dangerous_mirror_timestamp_grace(over),
        base.clone().dangerous_mirror_snapshot_grace(over),
    ] {
        let e = builder.build().unwrap_err();
        assert!(
            matches!(&e, ClientError::Config { reason, .. } if reason.contains("exceeds the cap")),
            "{e:?}"
        );
    }
    base.dangerous_upstream_targets_grace(MAX_GRACE)
        .dangerous_mirror_timestamp_grace(MAX_GRACE)
        .dangerous_mirror_snapshot_grace(MAX_GRACE)
        .build()
        .unwrap();
    let e = MirrorClient::builder(&b, "other").unwrap_err();
    assert!(
        matches!(&e, ClientError::UnknownRepository { known, .. } if known == &["graced", "strict"]),
        "{e:?}"
    );
}

/// Serves one [`Mem`] per host; `down.test` cannot be reached.
#[derive(Clone)]
struct Hosts(Vec<(&'static str, Mem)>);

impl Transport for Hosts {
    fn fetch(&self, url: &Url) -> tuf_mirror_client::Result<ByteStream> {
        let host = url.host_str().unwrap_or_default();
        match self.0.iter().find(|(h, _)| *h == host) {
            Some((_, m)) => m.fetch(url),
            None => Err(Error::Fetch {
                url: url.to_string(),
                source: "connection refused".into(),
            }),
        }
    }
}

fn two_mirrors(first: &str) -> ClientBuilder {
    let published = fixtures::basic().publish();
    let b = bundle(&published, ClientPolicy::default());
    let r = b.repository("strict").unwrap();
    ClientBuilder::new(
        "strict",
        vec![mirror_url(first), mirror_url("repo.test")],
        r.mirror_root.clone(),
        r.targets_keys.clone(),
    )
}

#[test]
fn an_unreachable_mirror_fails_over_and_a_hostile_one_does_not() {
    let good = Mem::new(&fixtures::basic().publish());
    let mut c = two_mirrors("down.test")
        .transport(Arc::new(Hosts(vec![("repo.test", good.clone())])))
        .build()
        .unwrap();
    c.refresh().unwrap();
    assert_eq!(c.mirror().as_str(), "http://repo.test/");
    let mut out = Vec::new();
    c.download(APP, &mut out).unwrap();

    // The first mirror answers with a timestamp its root's key did not sign.
    let mut bad = fixtures::basic();
    bad.set_role_keys(TIMESTAMP, [TestKey::ed25519_from_label("intruder")], 1);
    let bad_files = bad.publish();
    let hostile = Mem::new(&fixtures::basic().publish());
    hostile.put(
        "metadata/timestamp.json",
        bad_files.get("metadata/timestamp.json").unwrap(),
    );
    let mut c = two_mirrors("evil.test")
        .transport(Arc::new(Hosts(vec![
            ("evil.test", hostile),
            ("repo.test", good),
        ])))
        .build()
        .unwrap();
    let e = c.refresh().unwrap_err();
    assert!(
        matches!(e.engine_error(), Some(Error::Threshold { role, .. }) if role == "timestamp"),
        "{e:?}"
    );
    assert_eq!(c.mirror().as_str(), "http://evil.test/");
    assert!(e.to_string().contains("http://evil.test/"), "{e}");
}

#[test]
fn a_key_id_is_bound_to_its_key_object_or_to_the_mirror_root() {
    // An upstream whose targets key id is not the hash of its key object: the mirror
    // root lists it that way, so the bundle may pin it under that id.
    let mut repo = fixtures::basic();
    let odd = TestKey::ed25519_from_label("targets").with_key_id("targets-key-1");
    repo.set_role_keys(TARGETS, [odd], 1);
    let published = repo.publish();
    let b = bundle(&published, ClientPolicy::default());
    let mem = Mem::new(&published);
    let mut c = client(&b, "strict", &mem, at(0));
    c.refresh().unwrap();
    assert!(c.target_info(APP).unwrap().is_some());

    // Under any other id it is refused, naming the file and the reason.
    let text = String::from_utf8(render_with_pin_id(&published, "targets-key-2")).unwrap();
    let e = Bundle::from_slice(text.as_bytes(), "/etc/site/bundle.json").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("key bundle /etc/site/bundle.json: "),
        "{msg}"
    );
    assert!(
        msg.contains("key id targets-key-2 does not match its key object"),
        "{msg}"
    );
}

fn render_with_pin_id(published: &PublishedRepo, id: &str) -> Vec<u8> {
    let root = published.trust_anchor();
    let (keys, threshold) = pins_from_root(root).unwrap();
    let key: serde_json::Value = serde_json::from_str(&keys[0].1).unwrap();
    let root: serde_json::Value = serde_json::from_slice(root).unwrap();
    serde_json::to_vec_pretty(&serde_json::json!({
        "format": "tuf-mirror-bundle",
        "version": 1,
        "repositories": [{
            "name": "r",
            "mirrors": ["http://repo.test/"],
            "mirror_root": root,
            "targets_keys": { "keys": { id: key }, "threshold": threshold },
        }],
    }))
    .unwrap()
}

/// Replacement bodies for a served file, each wrong in its own way.
fn hostile_bodies(good: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![
        Vec::new(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"signed\": 1, \"signatures\": []}".to_vec(),
        vec![0xff; 64],
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        b"{\"signed\": {\"version\": 18446744073709551616}, \"signatures\": []}".to_vec(),
        b"{\"signed\": {\"version\": 1e400}, \"signatures\": []}".to_vec(),
        vec![b' '; 40 << 20],
    ];
    if !good.is_empty() {
        let mut flipped = good.to_vec();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        out.push(flipped);
        out.push(good[..good.len() / 2].to_vec());
        out.push([good, good].concat());
    }
    out
}

/// Refreshes, downloads four targets (top-level, delegated, hashed bin) and reports.
fn exercise(c: &mut MirrorClient) -> bool {
    let mut ok = c.refresh().is_ok();
    for target in ["hello.txt", APP, "packages/beta.txt", "docs/readme.md"] {
        ok &= c.download(target, &mut std::io::sink()).is_ok();
    }
    let _ = c.staleness();
    ok
}

#[test]
fn no_mirror_response_makes_the_client_panic() {
    let published = fixtures::basic().publish();
    let b = bundle(&published, ClientPolicy::default());
    let mem = Mem::new(&published);
    assert!(exercise(&mut client(&b, "strict", &mem, at(0))));
    // The files those operations need; each hostile body in place of one of them must be
    // refused (and nothing may panic, whatever file is replaced).
    let needed: Vec<String> = mem
        .take_requests()
        .into_iter()
        .filter(|p| published.get(p).is_some())
        .collect();
    assert!(needed.len() >= 9, "{needed:?}");
    for path in published.files().keys() {
        let good = published.get(path).unwrap().to_vec();
        for (i, body) in hostile_bodies(&good).into_iter().enumerate() {
            let mem = Mem::new(&published);
            mem.put(path, body);
            let ok = exercise(&mut client(&b, "strict", &mem, at(0)));
            assert!(
                !(ok && needed.contains(path)),
                "{path}: hostile body {i} accepted"
            );
        }
    }
}

#[test]
fn download_streams_to_a_writer_and_staleness_reports_each_role() {
    let published = fixtures::basic().publish();
    let b = bundle(&published, ClientPolicy::default());
    let mem = Mem::new(&published);
    let mut c = client(&b, "strict", &mem, at(0));
    let mut out = Cursor::new(Vec::new());
    let info = c.download(APP, &mut out).unwrap();
    assert_eq!(out.into_inner().len() as u64, info.length);
    assert_eq!(info.role, "releases");
    let s = c.staleness();
    let names: Vec<&str> = s.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(
        names,
        ["root", "timestamp", "snapshot", "targets", "releases"]
    );
    for r in &s.roles {
        assert_eq!(r.freshness, Freshness::Valid);
        assert_eq!(r.unchanged_since, Some(at(0)), "{}", r.role);
        assert_eq!(
            r.signer,
            if ["root", "timestamp", "snapshot"].contains(&r.role.as_str()) {
                Party::Mirror
            } else {
                Party::Upstream
            }
        );
        assert_eq!(
            r.remaining,
            "2099-01-01T00:00:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .duration_since(at(0))
        );
    }
    let e = c
        .download("no/such/file", &mut std::io::sink())
        .unwrap_err();
    assert!(
        matches!(e.engine_error(), Some(Error::TargetNotFound { .. })),
        "{e:?}"
    );
    assert_eq!(e.party(), Some(Party::Caller));
}

#[test]
fn the_builder_refuses_a_broken_anchor_and_a_pin_threshold_out_of_range() {
    let published = fixtures::basic().publish();
    let b = bundle(&published, ClientPolicy::default());
    let r = b.repository("strict").unwrap();
    let mut root = r.mirror_root.clone();
    let i = root.len() / 2;
    root[i] ^= 1;
    let e = ClientBuilder::new("x", r.mirrors.clone(), root, r.targets_keys.clone())
        .build()
        .unwrap_err();
    assert!(
        matches!(e.engine_error(), Some(Error::TrustAnchor { .. })),
        "{e:?}"
    );
    assert_eq!(e.party(), Some(Party::KeyBundle));
    let pins = tuf_mirror_client::PinnedKeys::new(r.targets_keys.keys().clone(), 2);
    let e = ClientBuilder::new("x", r.mirrors.clone(), r.mirror_root.clone(), pins)
        .build()
        .unwrap_err();
    assert!(
        matches!(e.engine_error(), Some(Error::Config { .. })),
        "{e:?}"
    );
    let e = ClientBuilder::new("x", vec![], r.mirror_root.clone(), r.targets_keys.clone())
        .build()
        .unwrap_err();
    assert!(matches!(e, ClientError::Config { .. }), "{e:?}");
}

#[test]
fn a_cache_directory_keeps_the_root_chain_and_belongs_to_one_bundle_root() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Root v1 -> v3 (root and timestamp keys rotated); the bundle holds v1.
    let rotated = fixtures::load("rotated-root").unwrap();
    let b = bundle(&rotated, ClientPolicy::default());
    let mem = Mem::new(&rotated);
    let build = |b: &Bundle, mem: &Mem| {
        MirrorClient::builder(b, "strict")
            .unwrap()
            .transport(Arc::new(mem.clone()))
            .cache_dir(&cache)
            .dangerous_validation_time(at(0))
            .build()
            .unwrap()
    };
    let mut c = build(&b, &mem);
    c.refresh().unwrap();
    assert_eq!(c.updater().root().version(), 3);

    // A mirror that no longer serves versions 2 and 3 cannot take a restarted client
    // back to root v1 (whose timestamp key was replaced).
    let files: Vec<String> = rotated.files().keys().cloned().collect();
    let stripped = Mem::default();
    for f in files
        .iter()
        .filter(|f| !f.ends_with("2.root.json") && !f.ends_with("3.root.json"))
    {
        stripped.put(f, rotated.get(f).unwrap());
    }
    let mut c = build(&b, &stripped);
    assert_eq!(c.updater().root().version(), 3, "resumed from the cache");
    c.refresh().unwrap();
    assert_eq!(c.updater().root().version(), 3);

    // The same directory with another bundle root (a mirror set up again with new
    // keys) starts from that root.
    let mut other = fixtures::basic();
    for role in ["root", SNAPSHOT, TIMESTAMP] {
        other.set_role_keys(
            role,
            [TestKey::ed25519_from_label(&format!("new-{role}"))],
            1,
        );
    }
    let other = other.publish();
    let b2 = bundle(&other, ClientPolicy::default());
    let mut c = build(&b2, &Mem::new(&other));
    assert_eq!(c.updater().root().version(), 1);
    c.refresh().unwrap();
    assert!(c.target_info(APP).unwrap().is_some());

    // A directory is for one repository.
    let e = MirrorClient::builder(&b2, "graced")
        .unwrap()
        .cache_dir(&cache)
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Config { reason, .. } if reason.contains("holds repository \"strict\"")),
        "{e:?}"
    );
}
