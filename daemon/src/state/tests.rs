use std::sync::{Arc, Barrier};

use jiff::{SignedDuration, Timestamp};
use tuf_mirror_client::ErrorKind;

use super::*;

fn store() -> (tempfile::TempDir, State) {
    let tmp = tempfile::tempdir().unwrap();
    let s = State::open(&tmp.path().join("db")).unwrap();
    (tmp, s)
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn reservations_only_go_up() {
    let (tmp, s) = store();
    assert_eq!(s.high_water("r", Role::Timestamp).unwrap(), None);
    let r = s.reserve("r", Role::Timestamp, 1, [1; 32]).unwrap();
    assert_eq!((r.previous, r.retry), (None, false));
    let r = s.reserve("r", Role::Timestamp, 5, [5; 32]).unwrap();
    assert_eq!((r.previous, r.retry), (Some(1), false));
    let e = s.reserve("r", Role::Timestamp, 4, [4; 32]).unwrap_err();
    assert!(
        matches!(
            e,
            StateError::Reserved {
                version: 4,
                reserved: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Security);
    assert_eq!(
        e.to_string(),
        "repository r: timestamp version 4 refused: version 5 is already reserved"
    );
    // Roles and repositories are independent.
    s.reserve("r", Role::Snapshot, 1, [9; 32]).unwrap();
    s.reserve("other", Role::Timestamp, 1, [9; 32]).unwrap();
    assert_eq!(
        s.high_water("r", Role::Timestamp).unwrap(),
        Some(HighWater {
            version: 5,
            content_sha256: [5; 32]
        })
    );
    drop(s);
    let s = State::open(&tmp.path().join("db")).unwrap();
    assert_eq!(
        s.high_water("r", Role::Timestamp).unwrap().unwrap().version,
        5
    );
    assert_eq!(
        s.high_water("r", Role::Snapshot).unwrap().unwrap().version,
        1
    );
}

#[test]
fn the_same_version_with_the_same_content_is_a_retry() {
    let (_tmp, s) = store();
    s.reserve("r", Role::Root, 3, [3; 32]).unwrap();
    let r = s.reserve("r", Role::Root, 3, [3; 32]).unwrap();
    assert_eq!((r.version, r.previous, r.retry), (3, Some(3), true));
}

#[test]
fn the_same_version_with_other_content_is_refused() {
    let (_tmp, s) = store();
    s.reserve("r", Role::Snapshot, 7, [1; 32]).unwrap();
    let e = s.reserve("r", Role::Snapshot, 7, [2; 32]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "repository r: snapshot version 7 refused: version 7 is already reserved with \
         different content"
    );
    match e {
        StateError::Reserved {
            content_sha256,
            reserved_sha256,
            ..
        } => assert_eq!((content_sha256, reserved_sha256), ([2; 32], [1; 32])),
        e => panic!("{e:?}"),
    }
    // The mark still holds the first content.
    assert_eq!(
        s.high_water("r", Role::Snapshot)
            .unwrap()
            .unwrap()
            .content_sha256,
        [1; 32]
    );
}

#[test]
fn racing_reservations_of_one_version_grant_one_content() {
    let (_tmp, s) = store();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.reserve("r", Role::Timestamp, 1, [i; 32]).is_ok()
            })
        })
        .collect();
    let granted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(granted, 1);
}

#[test]
fn a_clock_behind_the_last_signing_is_refused() {
    let (_tmp, s) = store();
    let at = t("2030-01-01T00:00:00Z");
    s.check_clock("r", at).unwrap();
    s.record_signing("r", at).unwrap();
    s.check_clock("r", at).unwrap();
    s.check_clock("r", at + SignedDuration::from_secs(1))
        .unwrap();
    let e = s
        .check_clock("r", at - SignedDuration::from_secs(1))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "repository r: the clock says 2029-12-31T23:59:59Z, earlier than the last signing at \
         2030-01-01T00:00:00Z; refusing to sign"
    );
    assert_eq!(e.kind(), ErrorKind::Security);
    // The recorded time never moves back.
    s.record_signing("r", at - SignedDuration::from_secs(60))
        .unwrap();
    assert_eq!(s.last_signing("r").unwrap(), Some(at));
    s.check_clock("other", at - SignedDuration::from_secs(1))
        .unwrap();
}

#[test]
fn history_is_bounded_and_newest_first() {
    let (tmp, s) = store();
    let at = t("2030-01-01T00:00:00Z");
    for i in 0..(HISTORY as i64 + 5) {
        let finished = at + SignedDuration::from_secs(i);
        let record = if i % 2 == 0 {
            SyncRecord::succeeded(Some(at), finished, Some(4), vec!["targets".into()])
        } else {
            SyncRecord::failed(
                None,
                finished,
                Some(FailureKind::Retryable),
                format!("failure {i}"),
            )
        };
        s.append_sync("r", &record).unwrap();
    }
    s.append_sync("other", &SyncRecord::succeeded(None, at, None, vec![]))
        .unwrap();
    drop(s);
    let s = State::open(&tmp.path().join("db")).unwrap();
    let h = s.history("r").unwrap();
    assert_eq!(h.len(), HISTORY);
    assert_eq!(h[0].finished, at + SignedDuration::from_secs(104));
    assert_eq!(h[HISTORY - 1].finished, at + SignedDuration::from_secs(5));
    assert_eq!(
        h[0].outcome,
        SyncOutcome::Ok {
            fetched: Some(4),
            changed: vec!["targets".into()]
        }
    );
    assert_eq!(h[0].error, None);
    assert_eq!(h[1].error.as_deref(), Some("failure 103"));
    assert!(matches!(
        h[1].outcome,
        SyncOutcome::Err {
            kind: Some(FailureKind::Retryable),
            ..
        }
    ));
    assert_eq!(s.history("other").unwrap().len(), 1);
    assert_eq!(s.history("none").unwrap(), vec![]);
    // Pruned keys are gone, not only hidden.
    assert_eq!(s.history.len(), HISTORY + 1);
}

#[test]
fn published_state_round_trips() {
    let (tmp, s) = store();
    assert_eq!(s.published("r").unwrap(), None);
    let p = Published {
        root_version: 2,
        snapshot_version: 10,
        timestamp_version: 300,
        timestamp_expires: t("2030-01-02T00:00:00Z"),
        upstream_root_version: 5,
        upstream_timestamp_version: 900,
        upstream_snapshot_version: 40,
        published_at: t("2030-01-01T00:00:00Z"),
    };
    s.set_published("r", &p).unwrap();
    drop(s);
    let s = State::open(&tmp.path().join("db")).unwrap();
    assert_eq!(s.published("r").unwrap(), Some(p));
}

#[test]
fn a_database_of_a_newer_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        db.insert(FORMAT_KEY, &(FORMAT + 1).to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let e = State::open(&path).unwrap_err();
    assert!(matches!(e, StateError::NewerFormat { found, .. } if found == FORMAT + 1));
    // Left as it was: no tree was created in it.
    assert_eq!(sled::open(&path).unwrap().tree_names().len(), 1);
    assert_eq!(e.kind(), ErrorKind::Fatal);
    assert!(e.to_string().contains("written in format 3"), "{e}");
}

#[test]
fn a_record_of_a_newer_format_is_refused_naming_its_key() {
    let (_tmp, s) = store();
    s.high_water
        .insert(
            b"r\0timestamp",
            &br#"{"format":99,"record":{"version":1,"content_sha256":"","new":1}}"#[..],
        )
        .unwrap();
    let e = s.reserve("r", Role::Timestamp, 2, [0; 32]).unwrap_err();
    assert!(
        matches!(&e, StateError::NewerRecord { key, found: 99, .. } if key == "high_water/r/timestamp"),
        "{e:?}"
    );
}

#[test]
fn unreadable_records_are_errors_naming_the_key() {
    let (_tmp, s) = store();
    let cases: [(&Tree, &[u8], &[u8], &str); 5] = [
        (
            &s.high_water,
            b"r\0root",
            b"\xff garbage",
            "high_water/r/root",
        ),
        (
            &s.high_water,
            b"r\0root",
            br#"{"format":2,"record":{"version":1,"content_sha256":"abc"}}"#,
            "high_water/r/root",
        ),
        (
            &s.signing,
            b"r",
            br#"{"format":2,"record":{"at":"yesterday"}}"#,
            "signing/r",
        ),
        (
            &s.published,
            b"r",
            br#"{"format":2,"record":{"root_version":1}}"#,
            "published/r",
        ),
        (
            &s.history,
            b"r\0\0\0\0\0\0\0\0\x07",
            br#"{"format":2,"record":{"finished":"2030-01-01T00:00:00Z","outcome":"maybe"}}"#,
            "sync_history/r/7",
        ),
    ];
    for (tree, key, value, shown) in cases {
        tree.insert(key, value).unwrap();
        let e = match shown.split('/').next().unwrap() {
            "high_water" => s.high_water("r", Role::Root).map(drop).unwrap_err(),
            "signing" => s.check_clock("r", t("2030-01-01T00:00:00Z")).unwrap_err(),
            "published" => s.published("r").map(drop).unwrap_err(),
            _ => s.history("r").map(drop).unwrap_err(),
        };
        assert!(
            matches!(&e, StateError::Corrupt { key, .. } if key == shown),
            "{shown}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Fatal);
        assert!(std::error::Error::source(&e).is_some());
        tree.remove(key).unwrap();
    }
    // Records without a format key.
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = sled::open(tmp.path()).unwrap();
        db.open_tree("published")
            .unwrap()
            .insert("r", "{}")
            .unwrap();
        db.flush().unwrap();
    }
    let e = State::open(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("record format is not valid"), "{e}");
    // A format key of the wrong size.
    s.db.insert(FORMAT_KEY, &b"xx"[..]).unwrap();
    s.flush().unwrap();
    let path = s.path.clone();
    drop(s);
    let e = State::open(&path).unwrap_err();
    assert!(
        matches!(&e, StateError::Corrupt { key, .. } if key == "format"),
        "{e:?}"
    );
}

#[test]
fn names_that_cannot_be_keys_are_refused() {
    let (_tmp, s) = store();
    for name in ["", "a\0b"] {
        assert!(matches!(
            s.reserve(name, Role::Root, 1, [0; 32]),
            Err(StateError::Name { .. })
        ));
    }
}

#[test]
fn format_1_is_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let sha = hex::encode([7; 32]);
    {
        let db = sled::open(&path).unwrap();
        db.insert(FORMAT_KEY, &1u32.to_be_bytes()).unwrap();
        db.insert(
            "mark/r/timestamp",
            format!(r#"{{"format":1,"version":12,"content_sha256":"{sha}"}}"#).as_bytes(),
        )
        .unwrap();
        db.insert(
            "signed/r",
            &br#"{"format":1,"at":"2030-01-01T00:00:00Z"}"#[..],
        )
        .unwrap();
        db.insert(
            "history/r",
            &br#"[{"format":1,"finished":"2030-01-02T00:00:00Z","error":"r: unreachable"},
                  {"format":1,"finished":"2030-01-01T00:00:00Z","error":null}]"#[..],
        )
        .unwrap();
        db.flush().unwrap();
    }
    let s = State::open(&path).unwrap();
    assert_eq!(
        s.high_water("r", Role::Timestamp).unwrap(),
        Some(HighWater {
            version: 12,
            content_sha256: [7; 32]
        })
    );
    assert_eq!(
        s.last_signing("r").unwrap(),
        Some(t("2030-01-01T00:00:00Z"))
    );
    let h = s.history("r").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].error.as_deref(), Some("r: unreachable"));
    assert_eq!(h[1].error, None);
    assert_eq!(read_format(&s.db, &s.path).unwrap(), Some(FORMAT));
    assert_eq!(s.db.len(), 1, "format 1 keys are removed");
    // A later append comes after the migrated records.
    s.append_sync(
        "r",
        &SyncRecord::succeeded(None, t("2030-01-03T00:00:00Z"), None, vec![]),
    )
    .unwrap();
    assert_eq!(
        s.history("r").unwrap()[0].finished,
        t("2030-01-03T00:00:00Z")
    );
}

#[test]
fn the_ledger_maps_roles_and_errors() {
    let (_tmp, s) = store();
    let l: &dyn Ledger = &s;
    l.reserve("r", "timestamp", 2, [2; 32]).unwrap();
    assert_eq!(l.high_water("r", "timestamp").unwrap(), Some(2));
    let e = l.reserve("r", "timestamp", 2, [3; 32]).unwrap_err();
    assert!(e.to_string().contains("with different content"), "{e}");
    let e = l.high_water("r", "targets").unwrap_err();
    assert!(e.to_string().contains("not a mirror role"), "{e}");
    l.record_sync("r", t("2030-01-01T00:00:00Z"), Some("boom"))
        .unwrap();
    assert_eq!(s.history("r").unwrap()[0].error.as_deref(), Some("boom"));
}
