#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use super::*;

/// A committed root (the `basic` fixture's trust anchor): its targets role has one key.
fn fixture_root() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/basic/root.json");
    std::fs::read(p).unwrap()
}

fn export(policy: ClientPolicy) -> Vec<u8> {
    let root = fixture_root();
    let (keys, threshold) = pins_from_root(&root).unwrap();
    let mirrors = [Url::parse("http://mirror.example:8080/r/").unwrap()];
    let repo = RepositoryExport {
        name: "r",
        mirrors: &mirrors,
        mirror_root: &root,
        targets_keys: keys,
        threshold,
        next_targets_keys: None,
        upstream_root: Some(&root),
        policy,
    };
    render(Some("test"), &[repo], Path::new("b.json")).unwrap()
}

fn value() -> Value {
    serde_json::from_slice(&export(ClientPolicy::default())).unwrap()
}

fn parse_value(v: &Value) -> Result<Bundle, BundleError> {
    Bundle::from_slice(v.to_string().as_bytes(), "b.json")
}

fn invalid_reason(v: &Value) -> (String, String) {
    match parse_value(v) {
        Err(BundleError::Invalid { at, reason, .. }) => (at, reason),
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn an_exported_bundle_round_trips_with_the_exact_root_bytes() {
    let bytes = export(ClientPolicy::default());
    let b = Bundle::from_slice(&bytes, "b.json").unwrap();
    assert_eq!(b.comment(), Some("test"));
    let r = b.repository("r").unwrap();
    let root = fixture_root();
    // The served bytes are embedded as written (only the final newline trimmed).
    assert_eq!(r.mirror_root, root.trim_ascii_end());
    assert_eq!(r.mirror_root_version, 1);
    assert_eq!(r.mirrors[0].as_str(), "http://mirror.example:8080/r/");
    assert_eq!(r.targets_keys.threshold(), 1);
    assert_eq!(r.targets_keys.keys().len(), 1);
    assert_eq!(r.upstream_root.as_deref(), Some(root.trim_ascii_end()));
    assert_eq!(r.policy, ClientPolicy::default());
    // Reformatted (as by jq), the root still verifies: signatures cover the canonical
    // form of `signed`, not the layout.
    let compact = value().to_string();
    let b2 = Bundle::from_slice(compact.as_bytes(), "b.json").unwrap();
    let r2 = b2.repository("r").unwrap();
    assert_ne!(r2.mirror_root, r.mirror_root);
    TrustedRoot::anchor(&r2.mirror_root, "reformatted").unwrap();
}

#[test]
fn another_format_or_version_is_refused() {
    let mut v = value();
    v["version"] = json!(2);
    let e = parse_value(&v).unwrap_err();
    assert!(
        matches!(e, BundleError::Version { ref version, .. } if version == "2"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "key bundle b.json has format version 2; this library reads version 1 only"
    );
    // A newer version with fields this one does not know is refused for its version.
    v["new_field"] = json!(true);
    assert!(matches!(parse_value(&v), Err(BundleError::Version { .. })));
    let mut v = value();
    v["version"] = json!("1");
    assert!(matches!(parse_value(&v), Err(BundleError::Version { .. })));
    let mut v = value();
    v["format"] = json!("tuf-mirror-bundles");
    assert!(matches!(parse_value(&v), Err(BundleError::Format { .. })));
    v.as_object_mut().unwrap().remove("format");
    assert!(matches!(parse_value(&v), Err(BundleError::Format { .. })));
    let e = Bundle::from_slice(b"[1]", "b.json").unwrap_err();
    assert!(matches!(e, BundleError::Malformed { .. }), "{e:?}");
    let e = Bundle::load("/nonexistent/bundle.json").unwrap_err();
    assert!(matches!(e, BundleError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/bundle.json"), "{e}");
}

#[test]
fn unknown_fields_and_duplicate_keys_are_refused() {
    for path in [
        &["extra"][..],
        &["repositories", "0", "extra"],
        &["repositories", "0", "targets_keys", "extra"],
        &["repositories", "0", "policy", "extra"],
        &["repositories", "0", "policy", "grace", "root"],
        &["repositories", "0", "policy", "limits", "max_roles"],
    ] {
        let mut v = value();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => {
                    if at.get(*p).is_none() {
                        at[*p] = json!({});
                    }
                    &mut at[*p]
                }
            };
        }
        at[path[path.len() - 1]] = json!(1);
        let e = parse_value(&v).unwrap_err();
        assert!(
            matches!(&e, BundleError::Malformed { reason, .. } if reason.contains("unknown field")),
            "{path:?}: {e:?}"
        );
    }
    let text = String::from_utf8(export(ClientPolicy::default())).unwrap();
    let dup = text.replacen("\"version\": 1,", "\"version\": 1, \"version\": 1,", 1);
    let e = Bundle::from_slice(dup.as_bytes(), "b.json").unwrap_err();
    assert!(
        matches!(&e, BundleError::Malformed { reason, .. } if reason.contains("duplicate")),
        "{e:?}"
    );
}

#[test]
fn keys_and_threshold_are_checked() {
    let mut v = value();
    v["repositories"][0]["targets_keys"]["keys"] = json!({});
    let (at, reason) = invalid_reason(&v);
    assert_eq!(at, "repositories[0] (\"r\").targets_keys");
    assert_eq!(reason, "lists no key");
    for t in [0, 2] {
        let mut v = value();
        v["repositories"][0]["targets_keys"]["threshold"] = json!(t);
        assert!(invalid_reason(&v)
            .1
            .contains(&format!("threshold {t} with 1 key")));
    }
    // A key id that is not its key object's.
    let mut v = value();
    let keys = v["repositories"][0]["targets_keys"]["keys"]
        .as_object_mut()
        .unwrap();
    let (id, key) = keys
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    keys.remove(&id);
    keys.insert("00".repeat(32), key.clone());
    assert!(invalid_reason(&v)
        .1
        .contains("does not match its key object"));
    // The same public key under two ids (one of them a wrong one) is refused too.
    let mut v = value();
    let mut other = key.clone();
    other["x-extra"] = json!("field");
    let other_id = crate::key::key_id(&other.to_string()).unwrap();
    let keys = v["repositories"][0]["targets_keys"]["keys"]
        .as_object_mut()
        .unwrap();
    keys.insert(other_id, other);
    assert!(invalid_reason(&v).1.contains("are the same public key"));
    // A key type the engine cannot verify with.
    let mut v = value();
    let odd = json!({"keytype": "sphincs", "scheme": "sphincs", "keyval": {"public": "00"}});
    let odd_id = crate::key::key_id(&odd.to_string()).unwrap();
    v["repositories"][0]["targets_keys"]["keys"] = json!({ odd_id: odd });
    assert!(invalid_reason(&v).1.contains("cannot verify signatures"));
}

#[test]
fn anchors_mirrors_and_names_are_checked() {
    // A root whose signature no longer matches.
    let mut v = value();
    v["repositories"][0]["mirror_root"]["signed"]["version"] = json!(2);
    let (at, reason) = invalid_reason(&v);
    assert!(at.ends_with("mirror_root"), "{at}");
    assert!(reason.contains("not a usable trust anchor"), "{reason}");
    let mut v = value();
    v["repositories"][0]["upstream_root"] = json!({"signed": {}});
    assert!(invalid_reason(&v).0.ends_with("upstream_root"));
    for (mirrors, want) in [
        (json!([]), "lists no mirror URL"),
        (json!(["ftp://m/r/"]), "only http, https and file"),
        (json!(["http://u:p@m/r/"]), "credentials"),
        (json!(["http://m/r/?x=1"]), "no query"),
        (json!(["http://m/r", "http://m/r/"]), "listed twice"),
    ] {
        let mut v = value();
        v["repositories"][0]["mirrors"] = mirrors;
        let (_, reason) = invalid_reason(&v);
        assert!(reason.contains(want), "{reason}");
    }
    let mut v = value();
    v["repositories"][0]["name"] = json!("../x");
    assert!(invalid_reason(&v).1.contains("not a repository name"));
    let mut v = value();
    let r = v["repositories"][0].clone();
    v["repositories"].as_array_mut().unwrap().push(r);
    assert!(invalid_reason(&v).1.contains("used twice"));
    let mut v = value();
    v["repositories"] = json!([]);
    assert!(invalid_reason(&v).1.contains("no repository"));
}

#[test]
fn grace_is_absent_by_default_explicit_and_capped() {
    let b = parse_value(&value()).unwrap();
    assert_eq!(b.repositories()[0].policy.upstream_targets_grace, None);
    let policy = ClientPolicy {
        upstream_targets_grace: Some(Duration::from_secs(7 * 86_400)),
        mirror_timestamp_grace: Some(Duration::from_secs(3_600)),
        ..ClientPolicy::default()
    };
    let v: Value = serde_json::from_slice(&export(policy.clone())).unwrap();
    assert_eq!(
        v["repositories"][0]["policy"]["grace"],
        json!({"upstream_targets": "7d", "mirror_timestamp": "1h"})
    );
    assert_eq!(parse_value(&v).unwrap().repositories()[0].policy, policy);
    let mut v = value();
    v["repositories"][0]["policy"] = json!({"grace": {"mirror_snapshot": "90d"}});
    let p = parse_value(&v).unwrap().repositories()[0].policy.clone();
    assert_eq!(p.mirror_snapshot_grace, Some(crate::MAX_GRACE));
    v["repositories"][0]["policy"] = json!({"grace": {"mirror_snapshot": "90d1s"}});
    let (at, reason) = invalid_reason(&v);
    assert!(at.ends_with("policy.grace.mirror_snapshot"), "{at}");
    assert!(reason.contains("above the cap of 90d"), "{reason}");
    v["repositories"][0]["policy"] = json!({"grace": {"upstream_targets": "7"}});
    assert!(invalid_reason(&v).1.contains("no unit"));
    v["repositories"][0]["policy"] = json!({"grace": {"upstream_targets": "0s"}});
    assert_eq!(
        parse_value(&v).unwrap().repositories()[0]
            .policy
            .upstream_targets_grace,
        None
    );
    v["repositories"][0]["policy"] = json!({"limits": {"targets": 1024, "max_root_updates": 3}});
    let l = parse_value(&v).unwrap().repositories()[0]
        .policy
        .limits
        .clone();
    assert_eq!((l.targets, l.max_root_updates, l.root), (1024, 3, 1 << 20));
    v["repositories"][0]["policy"] = json!({"limits": {"targets": 0}});
    assert!(invalid_reason(&v).1.contains("at least 1"));
}
