//! The daemon's view of an upstream: all roles verified, the root chain kept, state
//! resumed across restarts, a stale import accepted only within the configured grace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tuf_mirror_config::Source;
use tuf_mirror_daemon::upstream::{updater, ChainStore};
use tuf_mirror_tests::builder::TIMESTAMP;
use tuf_mirror_tests::fixtures;

fn write(repo: &tuf_mirror_tests::builder::PublishedRepo, up: &Path) {
    repo.write_to(up).unwrap();
    std::fs::write(up.join("root.json"), repo.trust_anchor()).unwrap();
}

#[test]
fn the_upstream_root_chain_is_kept_for_republishing_and_state_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    write(&fixtures::load("rotated-root").unwrap(), &up);
    let state = tmp.path().join("state");
    let store = Arc::new(ChainStore::open(&state, "r").unwrap());
    let src = Source::Dir(up.join("metadata"));
    let mut u = updater(&src, &up.join("root.json"), store.clone(), None).unwrap();
    u.refresh().unwrap();
    let chain: Vec<u64> = store.chain().unwrap().into_iter().map(|(v, _)| v).collect();
    assert_eq!(chain, [1, 2, 3]);
    assert_eq!(
        store.chain().unwrap()[2].1,
        std::fs::read(up.join("metadata/3.root.json")).unwrap(),
        "kept byte for byte"
    );
    // A restart resumes from the trusted state, not from the anchor.
    let mut u = updater(&src, Path::new("/nonexistent/anchor.json"), store, None).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.root().version(), 3);
}

#[test]
fn a_stale_import_needs_the_configured_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    let mut repo = fixtures::basic();
    // The timestamp expired an hour ago: typical of a bundle carried into the site.
    let expired = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    repo.set_expires(
        TIMESTAMP,
        &expired.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    write(&repo.publish(), &up);
    let src = Source::Dir(up.join("metadata"));
    let store = Arc::new(ChainStore::open(&tmp.path().join("s1"), "r").unwrap());
    let e = updater(&src, &up.join("root.json"), store, None)
        .unwrap()
        .refresh()
        .unwrap_err();
    assert!(
        matches!(e, tuf_mirror_client::Error::Expired { ref role, .. } if role == "timestamp"),
        "{e:?}"
    );
    let store = Arc::new(ChainStore::open(&tmp.path().join("s2"), "r").unwrap());
    let mut u = updater(
        &src,
        &up.join("root.json"),
        store,
        Some(Duration::from_secs(2 * 3600)),
    )
    .unwrap();
    u.refresh().unwrap();
    assert_eq!(u.roles().count(), 18);
    let store = Arc::new(ChainStore::open(&tmp.path().join("s3"), "r").unwrap());
    let e = updater(
        &src,
        &up.join("root.json"),
        store,
        Some(Duration::from_secs(1800)),
    )
    .unwrap()
    .refresh()
    .unwrap_err();
    assert!(
        matches!(e, tuf_mirror_client::Error::Expired { .. }),
        "{e:?}"
    );
}
