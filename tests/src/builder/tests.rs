//! Unit tests of the builder: everything is checked with aws-lc-rs over `olpc-cjson` bytes,
//! independently of how the builder produced it.

use std::collections::BTreeSet;

use aws_lc_rs::digest::{digest, SHA256};
use serde_json::{json, Value};

use super::*;

/// Signatures in `envelope` that verify over the canonical `signed` with a key `repo` knows,
/// by key id.
fn valid_keyids(repo: &RepoBuilder, envelope: &Value) -> BTreeSet<String> {
    let message = canonical(&envelope["signed"]);
    let mut ids = BTreeSet::new();
    for sig in envelope["signatures"].as_array().unwrap() {
        let id = sig["keyid"].as_str().unwrap();
        let bytes = hex::decode(sig["sig"].as_str().unwrap()).unwrap();
        if repo.key(id).is_some_and(|k| k.verify(&message, &bytes)) {
            ids.insert(id.to_owned());
        }
    }
    ids
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes))
}

/// Checks that `keyids` meets the threshold listed for `role` in the delegating body.
fn meets(entry: &Value, valid: &BTreeSet<String>) -> bool {
    let listed: BTreeSet<String> = entry["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    valid.intersection(&listed).count() as u64 >= entry["threshold"].as_u64().unwrap()
}

fn basic() -> RepoBuilder {
    crate::fixtures::basic()
}

#[test]
fn every_role_verifies_with_the_keys_its_delegator_lists() {
    let repo = basic();
    let published = repo.publish();
    let root = published.json("metadata/1.root.json");
    for role in [ROOT, TIMESTAMP, SNAPSHOT, TARGETS] {
        let envelope = published.json(&repo.metadata_path(role));
        assert_eq!(envelope["signed"]["_type"], role);
        assert_eq!(envelope["signed"]["spec_version"], SPEC_VERSION);
        assert_eq!(envelope["signed"]["expires"], DEFAULT_EXPIRES);
        let valid = valid_keyids(&repo, &envelope);
        assert!(meets(&root["signed"]["roles"][role], &valid), "{role}");
        for id in &valid {
            assert_eq!(
                root["signed"]["keys"][id],
                *repo.key(id).unwrap().public_json()
            );
        }
    }
    let targets = published.json("metadata/1.targets.json");
    let delegations = &targets["signed"]["delegations"];
    let roles = delegations["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 17);
    assert_eq!(roles[0]["name"], "releases");
    assert_eq!(roles[0]["paths"], json!(["releases/*"]));
    assert_eq!(roles[0]["terminating"], false);
    for entry in roles {
        let name = entry["name"].as_str().unwrap();
        let envelope = published.json(&format!("metadata/1.{name}.json"));
        let valid = valid_keyids(&repo, &envelope);
        assert!(meets(entry, &valid), "{name}");
        for id in &valid {
            assert_eq!(
                delegations["keys"][id],
                *repo.key(id).unwrap().public_json()
            );
        }
    }
    // Two delegation keys: releases and the shared bins key.
    assert_eq!(delegations["keys"].as_object().unwrap().len(), 2);
}

#[test]
fn key_ids_hash_the_canonical_public_key() {
    let key = TestKey::ed25519_from_label("x");
    let public = key.public_json();
    assert_eq!(public["keytype"], "ed25519");
    assert_eq!(public["scheme"], "ed25519");
    assert_eq!(public["keyval"]["public"].as_str().unwrap().len(), 64);
    assert_eq!(public.as_object().unwrap().len(), 3);
    assert_eq!(key.key_id(), sha256_hex(&canonical(public)));
    assert_eq!(
        key.key_id(),
        TestKey::ed25519_from_label("x").key_id(),
        "seeded keys are stable"
    );
    let seeded = TestKey::ed25519_from_seed([7; 32]);
    assert_ne!(seeded.key_id(), key.key_id());
    assert_eq!(
        seeded.sign(b"m"),
        TestKey::ed25519_from_seed([7; 32]).sign(b"m")
    );

    let hostile = key.with_key_id("00");
    assert_eq!(hostile.key_id(), "00");
    assert_eq!(hostile.public_json(), public);
    let mut extra = public.clone();
    extra["keyid_hash_algorithms"] = json!(["sha256", "sha512"]);
    let extended = key.with_public_json(extra.clone());
    assert_eq!(extended.key_id(), sha256_hex(&canonical(&extra)));
    assert!(extended.verify(b"m", &key.sign(b"m")));
}

#[test]
fn ecdsa_and_rsa_keys_sign_and_are_published_as_pem() {
    for (kind, keytype, scheme) in [
        (KeyKind::EcdsaP256, "ecdsa", "ecdsa-sha2-nistp256"),
        (KeyKind::EcdsaP384, "ecdsa", "ecdsa-sha2-nistp384"),
        (KeyKind::Rsa2048, "rsa", "rsassa-pss-sha256"),
    ] {
        let key = TestKey::generate(kind);
        let public = key.public_json();
        assert_eq!(public["keytype"], keytype);
        assert_eq!(public["scheme"], scheme);
        let pem = public["keyval"]["public"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(key.key_id(), sha256_hex(&canonical(public)));
        let sig = key.sign(b"message");
        assert!(key.verify(b"message", &sig), "{kind:?}");
        assert!(!key.verify(b"massage", &sig), "{kind:?}");
        if keytype == "ecdsa" {
            assert_eq!(sig[0], 0x30, "ASN.1 DER SEQUENCE");
        } else {
            assert_eq!(sig.len(), 256);
        }

        // A repository whose targets key is of this kind verifies.
        let mut repo = RepoBuilder::new();
        repo.set_role_keys(TARGETS, [key.clone()], 1);
        let published = repo.publish();
        let envelope = published.json("metadata/1.targets.json");
        assert_eq!(
            valid_keyids(&repo, &envelope),
            BTreeSet::from([key.key_id().to_owned()])
        );
    }
}

#[test]
fn publish_is_deterministic_and_not_canonical() {
    let a = basic().publish();
    let b = basic().publish();
    assert_eq!(a, b);
    for (path, bytes) in a.files() {
        if !path.starts_with("metadata/") {
            continue;
        }
        let value: Value = serde_json::from_slice(bytes).unwrap();
        assert_ne!(*bytes, canonical(&value), "{path}");
        assert_eq!(*bytes, pretty(&value), "{path}");
        assert!(bytes.starts_with(b"{\n \"signatures\": [\n  {\n   \"keyid\": "));
    }
    let mut repo = basic();
    repo.set_format(OutputFormat::Canonical);
    let canonical_repo = repo.publish();
    let root = canonical_repo.get("metadata/1.root.json").unwrap();
    assert_eq!(root, canonical(&serde_json::from_slice(root).unwrap()));
    repo.set_format(OutputFormat::Compact);
    assert!(!repo
        .publish()
        .get("metadata/1.root.json")
        .unwrap()
        .contains(&b'\n'));
    // Same signatures whatever the format: only the envelope's serialization changes.
    assert_eq!(
        canonical_repo.json("metadata/1.root.json"),
        a.json("metadata/1.root.json")
    );
}

#[test]
fn snapshot_and_timestamp_describe_the_served_bytes() {
    let repo = basic();
    let published = repo.publish();
    let snapshot_path = repo.metadata_path(SNAPSHOT);
    assert_eq!(snapshot_path, "metadata/1.snapshot.json");
    let timestamp = published.json("metadata/timestamp.json");
    let snapshot_bytes = published.get(&snapshot_path).unwrap();
    assert_eq!(
        timestamp["signed"]["meta"],
        json!({"snapshot.json": {
            "version": 1,
            "length": snapshot_bytes.len(),
            "hashes": {"sha256": sha256_hex(snapshot_bytes)},
        }})
    );
    let meta = published.json(&snapshot_path)["signed"]["meta"].clone();
    let meta = meta.as_object().unwrap();
    assert_eq!(meta.len(), 1 + 1 + 16);
    for (file, entry) in meta {
        let role = file.strip_suffix(".json").unwrap();
        let bytes = published.get(&repo.metadata_path(role)).unwrap();
        assert_eq!(entry["version"], 1);
        assert_eq!(entry["length"], bytes.len());
        assert_eq!(entry["hashes"]["sha256"], sha256_hex(bytes));
    }

    let mut repo = basic();
    repo.set_snapshot_meta(MetaOptions {
        length: false,
        hashes: false,
    });
    repo.set_timestamp_meta(MetaOptions {
        length: true,
        hashes: false,
    });
    repo.set_version(TARGETS, 4);
    let published = repo.publish();
    let snapshot = published.json("metadata/1.snapshot.json");
    assert_eq!(
        snapshot["signed"]["meta"]["targets.json"],
        json!({"version": 4})
    );
    assert!(published.get("metadata/4.targets.json").is_some());
    let timestamp = published.json("metadata/timestamp.json");
    assert_eq!(
        timestamp["signed"]["meta"]["snapshot.json"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["length", "version"]
    );
}

#[test]
fn file_names_follow_consistent_snapshot() {
    let mut repo = basic();
    repo.add_delegation(
        TARGETS,
        Delegation::new(
            "a/b c%d",
            [TestKey::ed25519_from_label("odd")],
            DelegatedPaths::paths(&["odd/*"]),
        ),
    );
    repo.set_version("a/b c%d", 3);
    repo.set_serve_root_json(true);
    let consistent = repo.publish();
    let hello =
        consistent.json("metadata/1.targets.json")["signed"]["targets"]["hello.txt"].clone();
    let hash = hello["hashes"]["sha256"].as_str().unwrap();
    let paths: BTreeSet<&str> = consistent.files().keys().map(String::as_str).collect();
    for expected in [
        "metadata/1.root.json".to_owned(),
        "metadata/root.json".to_owned(),
        "metadata/timestamp.json".to_owned(),
        "metadata/1.snapshot.json".to_owned(),
        "metadata/1.targets.json".to_owned(),
        "metadata/1.releases.json".to_owned(),
        "metadata/1.bin-a.json".to_owned(),
        "metadata/3.a%2Fb%20c%25d.json".to_owned(),
        format!("targets/{hash}.hello.txt"),
    ] {
        assert!(paths.contains(expected.as_str()), "{expected}");
    }
    assert!(paths
        .iter()
        .any(|p| p.starts_with("targets/releases/") && p.ends_with(".app-1.0.tar.gz")));
    let meta = consistent.json("metadata/1.snapshot.json")["signed"]["meta"].clone();
    assert_eq!(meta["a/b c%d.json"]["version"], 3);
    assert_eq!(
        consistent.get("metadata/root.json"),
        consistent.get("metadata/1.root.json")
    );
    assert_eq!(
        consistent.trust_anchor(),
        consistent.get("metadata/1.root.json").unwrap()
    );

    repo.set_consistent_snapshot(false);
    repo.set_target_sha512(true);
    repo.add_target(TARGETS, "two/hashes.txt", b"two".to_vec());
    let plain = repo.publish();
    for expected in [
        "metadata/snapshot.json",
        "metadata/targets.json",
        "metadata/releases.json",
        "metadata/a%2Fb%20c%25d.json",
        "targets/hello.txt",
        "targets/releases/app-1.0.tar.gz",
        "targets/two/hashes.txt",
    ] {
        assert!(plain.get(expected).is_some(), "{expected}");
    }
    assert!(plain.get("metadata/1.snapshot.json").is_none());

    repo.set_consistent_snapshot(true);
    let urls = repo.target_urls(TARGETS, "two/hashes.txt");
    assert_eq!(urls.len(), 2);
    let both = repo.publish();
    for url in &urls {
        assert_eq!(both.get(url), Some(&b"two"[..]), "{url}");
    }
    let info = both.json("metadata/1.targets.json")["signed"]["targets"]["two/hashes.txt"].clone();
    assert_eq!(info["length"], 3);
    assert_eq!(info["hashes"].as_object().unwrap().len(), 2);
}

#[test]
fn signing_plans() {
    let extra = TestKey::ed25519_from_label("not-listed");
    let mut repo = RepoBuilder::new();
    let targets_key = repo.role_keys(TARGETS)[0].clone();
    let targets_id = targets_key.key_id().to_owned();

    repo.set_signers(
        TARGETS,
        vec![
            Sig::RoleKeys,
            Sig::Key(targets_key.clone()),
            Sig::Key(extra.clone()),
            Sig::Corrupt(targets_key.clone()),
            Sig::AsKeyId(extra.clone(), targets_id.clone()),
            Sig::Raw(json!({"keyid": "zz", "sig": 5})),
        ],
    );
    repo.add_private_key(&extra);
    let envelope = repo.publish().json("metadata/1.targets.json");
    let sigs = envelope["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 6);
    let message = canonical(&envelope["signed"]);
    let verifies = |i: usize, key: &TestKey| {
        key.verify(
            &message,
            &hex::decode(sigs[i]["sig"].as_str().unwrap()).unwrap(),
        )
    };
    assert_eq!(
        sigs[0], sigs[1],
        "ed25519 signatures are deterministic duplicates"
    );
    assert!(verifies(0, &targets_key));
    assert_eq!(sigs[2]["keyid"], extra.key_id());
    assert!(verifies(2, &extra));
    assert_eq!(sigs[3]["keyid"], targets_id);
    assert!(!verifies(3, &targets_key));
    assert_eq!(sigs[4]["keyid"], targets_id);
    assert!(verifies(4, &extra) && !verifies(4, &targets_key));
    assert_eq!(sigs[5], json!({"keyid": "zz", "sig": 5}));

    repo.set_signers(TARGETS, Vec::new());
    assert_eq!(
        repo.publish().json("metadata/1.targets.json")["signatures"],
        json!([])
    );
    repo.reset_signers(TARGETS);

    // Patched before signing: covered. After: not covered.
    repo.patch_signed(TARGETS, |signed| signed["custom_field"] = json!({"x": [1]}));
    let envelope = repo.publish().json("metadata/1.targets.json");
    assert_eq!(envelope["signed"]["custom_field"], json!({"x": [1]}));
    assert_eq!(valid_keyids(&repo, &envelope).len(), 1);
    let mut forged = envelope["signed"].clone();
    forged["targets"]["evil"] = json!({"length": 1, "hashes": {"sha256": "00"}});
    repo.replace_signed_after_signing(TARGETS, forged.clone());
    let envelope = repo.publish().json("metadata/1.targets.json");
    assert_eq!(envelope["signed"], forged);
    assert!(valid_keyids(&repo, &envelope).is_empty());

    repo.clear_tampering(TARGETS);
    repo.set_raw_bytes(TARGETS, Some(b"not json".to_vec()));
    let published = repo.publish();
    assert_eq!(
        published.get("metadata/1.targets.json"),
        Some(&b"not json"[..])
    );
    assert_eq!(
        published.json("metadata/1.snapshot.json")["signed"]["meta"]["targets.json"]["length"],
        8
    );
}

#[test]
fn root_rotation_signs_with_old_and_new_keys() {
    let mut repo = RepoBuilder::new();
    let old = repo.role_keys(ROOT)[0].clone();
    let new_a = TestKey::ed25519_from_label("new-a");
    let new_b = TestKey::ed25519_from_label("new-b");
    assert_eq!(repo.rotate_root(), 2);
    repo.set_role_keys(ROOT, [new_a.clone(), new_b.clone()], 2);
    assert_eq!(repo.root_versions(), 2);
    let published = repo.publish();
    let v1 = published.json("metadata/1.root.json");
    let v2 = published.json("metadata/2.root.json");
    assert_eq!(v1["signed"]["version"], 1);
    assert_eq!(v2["signed"]["version"], 2);
    let valid = valid_keyids(&repo, &v2);
    assert!(meets(&v1["signed"]["roles"]["root"], &valid));
    assert!(meets(&v2["signed"]["roles"]["root"], &valid));
    assert_eq!(valid.len(), 3);
    // The old root key is no longer listed in v2.
    assert!(v2["signed"]["keys"].get(old.key_id()).is_none());
    assert_eq!(v2["signed"]["keys"].as_object().unwrap().len(), 5);

    // Signed by the new keys only: v1's threshold is not met.
    repo.set_signers(ROOT, vec![Sig::Key(new_a.clone()), Sig::Key(new_b.clone())]);
    let v2 = repo.publish().json("metadata/2.root.json");
    let valid = valid_keyids(&repo, &v2);
    assert!(!meets(&v1["signed"]["roles"]["root"], &valid));
    assert!(meets(&v2["signed"]["roles"]["root"], &valid));

    // v3 after freezing v2: v2's plan stays as it was.
    repo.rotate_root();
    let published = repo.publish();
    assert_eq!(published.json("metadata/2.root.json"), v2);
    let v3 = published.json("metadata/3.root.json");
    assert_eq!(
        valid_keyids(&repo, &v3),
        BTreeSet::from([new_a.key_id().to_owned(), new_b.key_id().to_owned()])
    );
    assert_eq!(
        published.trust_anchor(),
        published.get("metadata/1.root.json").unwrap()
    );
}

#[test]
fn rotating_top_level_keys_makes_a_new_root() {
    let mut repo = RepoBuilder::new();
    let new_key = TestKey::ed25519_from_label("targets-new");
    repo.rotate_role_keys(TARGETS, [new_key.clone()], 1);
    assert_eq!(repo.version(ROOT), 2);
    assert_eq!(repo.version(TARGETS), 2);
    let published = repo.publish();
    let root = published.json("metadata/2.root.json");
    assert_eq!(
        root["signed"]["roles"]["targets"]["keyids"],
        json!([new_key.key_id()])
    );
    let targets = published.json("metadata/2.targets.json");
    assert_eq!(
        valid_keyids(&repo, &targets),
        BTreeSet::from([new_key.key_id().to_owned()])
    );
    let old_root = published.json("metadata/1.root.json");
    assert_ne!(
        old_root["signed"]["roles"]["targets"],
        root["signed"]["roles"]["targets"]
    );

    repo.add_role_key(TIMESTAMP, &TestKey::ed25519_from_label("ts-2"));
    repo.set_threshold(TIMESTAMP, 2);
    assert_eq!(repo.listed_keyids(TIMESTAMP).len(), 2);
    assert_eq!(repo.threshold(TIMESTAMP), Some(2));
    let timestamp = repo.publish().json("metadata/timestamp.json");
    assert_eq!(timestamp["signatures"].as_array().unwrap().len(), 2);
    let first = repo.listed_keyids(TIMESTAMP)[0].clone();
    repo.remove_role_key(TIMESTAMP, &first);
    assert_eq!(repo.listed_keyids(TIMESTAMP).len(), 1);
    assert!(repo.signed(ROOT)["keys"].get(&first).is_none());
}

#[test]
fn delegations_can_be_added_rotated_and_removed() {
    let mut repo = basic();
    let releases_old = repo.role_keys("releases");
    assert_eq!(repo.delegator_of("releases").as_deref(), Some(TARGETS));
    let nested_key = TestKey::ed25519_from_label("nested");
    repo.add_delegation(
        "releases",
        Delegation::new(
            "releases/nested",
            [nested_key.clone()],
            DelegatedPaths::paths(&["releases/n/*"]),
        )
        .threshold(1)
        .terminating(true),
    );
    assert_eq!(
        repo.delegator_of("releases/nested").as_deref(),
        Some("releases")
    );
    let entry = &repo.signed("releases")["delegations"]["roles"][0];
    assert_eq!(entry["terminating"], true);

    let rotated = TestKey::ed25519_from_label("releases-2");
    repo.rotate_role_keys("releases", [rotated.clone()], 1);
    assert_eq!(repo.version(TARGETS), 2);
    assert_eq!(repo.version("releases"), 2);
    let keys = repo.signed(TARGETS)["delegations"]["keys"].clone();
    assert!(keys.get(rotated.key_id()).is_some());
    assert!(keys.get(releases_old[0].key_id()).is_none());
    let published = repo.publish();
    let releases = published.json("metadata/2.releases.json");
    assert_eq!(
        valid_keyids(&repo, &releases),
        BTreeSet::from([rotated.key_id().to_owned()])
    );

    repo.remove_delegation(TARGETS, "releases");
    assert!(!repo.has_role("releases"));
    assert!(
        repo.has_role("releases/nested"),
        "roles left without a delegator stay"
    );
    let keys = repo.signed(TARGETS)["delegations"]["keys"].clone();
    assert!(keys.get(rotated.key_id()).is_none());
    assert_eq!(keys.as_object().unwrap().len(), 1, "the bins key stays");
    let published = repo.publish();
    assert!(published.get("metadata/2.releases.json").is_none());
    assert!(published.json("metadata/1.snapshot.json")["signed"]["meta"]
        .get("releases.json")
        .is_none());
}

#[test]
fn hashed_bins_hold_the_paths_whose_hash_they_cover() {
    let repo = basic();
    let targets = repo.signed(TARGETS);
    let bins: Vec<&Value> = targets["delegations"]["roles"].as_array().unwrap()[1..]
        .iter()
        .collect();
    assert_eq!(bins.len(), 16);
    let mut seen = 0;
    for (i, bin) in bins.iter().enumerate() {
        let name = bin["name"].as_str().unwrap();
        assert_eq!(name, format!("bin-{i:x}"));
        assert_eq!(bin["path_hash_prefixes"], json!([format!("{i:x}")]));
        assert!(bin.get("paths").is_none());
        for path in repo.signed(name)["targets"].as_object().unwrap().keys() {
            assert!(
                sha256_hex(path.as_bytes()).starts_with(&format!("{i:x}")),
                "{path}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 3);
}

#[test]
fn succinct_bins_follow_tap_15() {
    let repo = crate::fixtures::succinct();
    let delegations = &repo.signed(TARGETS)["delegations"];
    assert!(
        delegations.get("roles").is_none(),
        "roles and succinct_roles are exclusive"
    );
    let succinct = &delegations["succinct_roles"];
    assert_eq!(succinct["bit_length"], 4);
    assert_eq!(succinct["name_prefix"], "bin");
    assert_eq!(succinct["threshold"], 1);
    let key_id = succinct["keyids"][0].as_str().unwrap();
    assert!(delegations["keys"].get(key_id).is_some());
    let published = repo.publish();
    let mut seen = 0;
    for i in 0..16u32 {
        let name = format!("bin-{i:x}");
        assert_eq!(repo.delegator_of(&name).as_deref(), Some(TARGETS));
        let envelope = published.json(&format!("metadata/1.{name}.json"));
        assert!(meets(succinct, &valid_keyids(&repo, &envelope)));
        for path in envelope["signed"]["targets"].as_object().unwrap().keys() {
            let hash = digest(&SHA256, path.as_bytes());
            assert_eq!(u32::from(hash.as_ref()[0] >> 4), i, "{path}");
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
    assert!(repo.delegator_of("bin-10").is_none());

    // Rotating a bin's keys rotates all bins.
    let mut repo = repo;
    let new_key = TestKey::ed25519_from_label("succinct-2");
    repo.rotate_role_keys("bin-3", [new_key.clone()], 1);
    assert_eq!(repo.version("bin-0"), 2);
    assert_eq!(repo.version("bin-f"), 2);
    assert_eq!(repo.version(TARGETS), 2);
    assert_eq!(
        repo.signed(TARGETS)["delegations"]["succinct_roles"]["keyids"],
        json!([new_key.key_id()])
    );
    assert_eq!(
        repo.signed(TARGETS)["delegations"]["keys"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn any_field_can_be_anything() {
    let mut repo = RepoBuilder::new();
    repo.signed_mut(TARGETS)["version"] = json!("one");
    repo.signed_mut(TARGETS)["unknown"] = json!({"nested": [null, "\u{202e}"]});
    repo.signed_mut(ROOT)["roles"]["mirror"] = json!({"keyids": [], "threshold": 0});
    repo.patch_envelope(TIMESTAMP, |envelope| envelope["signatures"] = json!("none"));
    let published = repo.publish();
    // A non-numeric version publishes under version 0.
    let targets = published.json("metadata/0.targets.json");
    assert_eq!(targets["signed"]["version"], "one");
    assert_eq!(targets["signed"]["unknown"]["nested"][1], "\u{202e}");
    let raw =
        String::from_utf8(published.get("metadata/0.targets.json").unwrap().to_vec()).unwrap();
    assert!(
        raw.contains("\\u202e"),
        "non-ASCII is escaped like python-tuf"
    );
    assert_eq!(
        published.json("metadata/timestamp.json")["signatures"],
        "none"
    );
    assert_eq!(
        published.json("metadata/1.root.json")["signed"]["roles"]["mirror"]["threshold"],
        0
    );
}
