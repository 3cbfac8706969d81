//! The audit log: every signature (with its key ids), publish and import is recorded by
//! the one-shot commands as by the service, `tuf-mirror audit` prints it beside the
//! records' chain check, and an entry altered in the database is reported by number.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde_json::Value;
use tuf_mirror_tests::fixtures;

fn mirror(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tuf-mirror"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("USER", "auditor")
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn key_id(dir: &Path, role: &str) -> String {
    let k = tuf_mirror_keys::FileKey::load(&dir.join(format!("k/{role}.pem"))).unwrap();
    k.key_id().as_str().to_owned()
}

#[test]
fn signatures_publishes_and_imports_are_chained_and_an_altered_entry_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::basic().publish(), dir);
    common::generate_keys(dir);
    let config = common::write_config(dir, "");
    ok(mirror(&config, &["sync"]));
    ok(mirror(&config, &["resign"]));

    let log: Value = serde_json::from_str(&ok(mirror(&config, &["audit", "--json"]))).unwrap();
    assert_eq!(log["chain"], "intact");
    let entries = log["entries"].as_array().unwrap();
    let what: Vec<(String, Option<String>, Option<u64>)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["role"].as_str().map(str::to_owned),
                e["version"].as_u64(),
            )
        })
        .collect();
    let s = |a: &str, r: Option<&str>, v: Option<u64>| (a.to_owned(), r.map(str::to_owned), v);
    assert_eq!(
        what,
        [
            s("sign", Some("root"), Some(1)),
            s("sign", Some("snapshot"), Some(1)),
            s("sign", Some("timestamp"), Some(1)),
            s("publish", None, None),
            s("import", None, None),
            s("sign", Some("timestamp"), Some(2)),
        ]
    );
    for (e, role) in [
        (0, "root"),
        (1, "snapshot"),
        (2, "timestamp"),
        (5, "timestamp"),
    ] {
        assert_eq!(entries[e]["keyids"], serde_json::json!([key_id(dir, role)]));
        assert_eq!(entries[e]["repo"], "r");
        assert!(entries[e]["actor"]
            .as_str()
            .unwrap()
            .starts_with("auditor (uid "));
    }
    assert_eq!(entries[0]["prev"], "");
    assert_eq!(log["head"].as_str().unwrap().len(), 64);
    let text = ok(mirror(&config, &["audit", "--repo", "r"]));
    assert!(
        text.contains("audit log intact: 6 entries (6 shown)"),
        "{text}"
    );
    assert!(text.contains("r sign auditor (uid"), "{text}");

    // Someone edits entry 2 in the database (a snapshot signing made to look like
    // another version): entry 3 no longer chains to it.
    let db_path = dir.join("state/state.redb");
    {
        let db = redb::Database::create(&db_path).unwrap();
        let table_def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("audit");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table_def).unwrap();
            let mut e: Value = serde_json::from_slice(t.get(2).unwrap().unwrap().value()).unwrap();
            assert_eq!(e["role"], "snapshot");
            e["version"] = 7.into();
            t.insert(2, serde_json::to_vec(&e).unwrap().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let o = mirror(&config, &["audit"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("audit entry 3 does not chain to entry 2"),
        "{err}"
    );
    assert!(err.contains("the log was altered"), "{err}");

    // An entry removed from the middle leaves a gap.
    {
        let db = redb::Database::create(&db_path).unwrap();
        let table_def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("audit");
        let txn = db.begin_write().unwrap();
        txn.open_table(table_def).unwrap().remove(4).unwrap();
        txn.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert_eq!(r.open_table(table_def).unwrap().len().unwrap(), 5);
    }
    let o = mirror(&config, &["audit", "--json"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("audit entry 3"), "{err}");
}
