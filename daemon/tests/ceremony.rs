//! The root ceremony with 2-of-3 root keys, one of them at hand on the daemon's host and
//! two held offline: rotate the timestamp key, then a root key. python-tuf's ngclient and
//! `tuf-fetch`, each holding only the mirror's root version 1, follow both; a root short
//! of a threshold is refused with the counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{tuf_fetch, tuf_mirror as run, tuf_mirror_ok as ok};
use serde_json::Value;
use tuf_mirror_tests::{fixtures, peers};

fn generate(path: &Path) -> String {
    tuf_mirror_keys::generate(tuf_mirror_keys::Algorithm::Ed25519, path)
        .unwrap()
        .as_str()
        .to_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn signed(tree: &Path, version: u64) -> Value {
    let v: Value = serde_json::from_slice(
        &std::fs::read(tree.join(format!("metadata/{version}.root.json"))).unwrap(),
    )
    .unwrap();
    v["signed"].clone()
}

fn ids(signed: &Value, role: &str) -> Vec<String> {
    let mut v: Vec<String> = signed["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// python-tuf's ngclient, trusting only root version 1, downloads through the tree.
fn python_follows(tree: &Path, target: &str) {
    let out = Command::new(peers::python())
        .arg(peers::script("tuf_client.py"))
        .args(["--metadata-url", "http://m.test/metadata/"])
        .args(["--targets-url", "http://m.test/targets/"])
        .arg("--root")
        .arg(tree.join("metadata/1.root.json"))
        .arg("--file-fetcher")
        .arg(tree)
        .arg(target)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python-tuf: {text}");
    assert!(text.contains(&format!("OK {target}")), "{text}");
}

/// `tuf-fetch`, trusting only root version 1 (a fresh metadata directory each time),
/// downloads `target` and reports the mirror root version it ends on.
fn tuf_fetch_follows(tree: &Path, scratch: &Path, target: &str, expect_root: u64) {
    let md = scratch.join(format!("tf-md-{expect_root}"));
    let dl = scratch.join(format!("tf-dl-{expect_root}"));
    std::fs::create_dir_all(&dl).unwrap();
    let url = |sub: &str| format!("file://{}/{sub}/", tree.display());
    let base = |c: &mut Command| {
        c.args(["--metadata-url", &url("metadata")])
            .arg("--metadata-dir")
            .arg(&md);
    };
    let mut c = Command::new(tuf_fetch());
    base(&mut c);
    c.arg("init").arg(tree.join("metadata/1.root.json"));
    assert!(c.status().unwrap().success());
    let mut c = Command::new(tuf_fetch());
    base(&mut c);
    c.args(["--target-name", target])
        .args(["--target-base-url", &url("targets")])
        .arg("--target-dir")
        .arg(&dl)
        .arg("download");
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "tuf-fetch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let trusted: Value =
        serde_json::from_slice(&std::fs::read(md.join("root.json")).unwrap()).unwrap();
    assert_eq!(trusted["signed"]["version"], expect_root);
    assert_eq!(
        std::fs::read_dir(&dl).unwrap().count(),
        1,
        "tuf-fetch wrote no target"
    );
}

#[test]
fn a_two_of_three_ceremony_rotates_the_timestamp_key_then_a_root_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::basic().publish(), dir);
    common::generate_keys(dir);
    // Three root keys, 2 of 3 needed. Only root-1 stays on the daemon's host; the others
    // are held elsewhere (here: another directory the config does not point to).
    let offline = dir.join("offline");
    std::fs::create_dir_all(&offline).unwrap();
    let k = dir.join("k");
    let r1 = generate(&k.join("root-1.pem"));
    let r2 = generate(&k.join("root-2.pem"));
    let r3 = generate(&k.join("root-3.pem"));
    let extra = format!(
        "root_keys = [\"file:{k}/root-1.pem\", \"file:{k}/root-2.pem\", \"file:{k}/root-3.pem\"]\nroot_threshold = 2\n",
        k = k.display()
    );
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(common::write_config(dir, ""))
        .unwrap()
        .replace(
            &format!(
                "root_keys = [\"file:{}/k/root.pem\"]\nroot_threshold = 1\n",
                dir.display()
            ),
            &extra,
        );
    std::fs::write(&config, text).unwrap();
    let cfg = s(&config);
    // Root version 1 needs the threshold at hand.
    ok(&["sync", "--config", cfg]);
    let tree = dir.join("state/published/r");
    assert_eq!(ids(&signed(&tree, 1), "root").len(), 3);
    for n in [2, 3] {
        std::fs::rename(
            k.join(format!("root-{n}.pem")),
            offline.join(format!("root-{n}.pem")),
        )
        .unwrap();
    }
    python_follows(&tree, "hello.txt");

    // 1. The timestamp key. The new key is configured beside the old one first, so
    //    that every timestamp verifies before and after the new root.
    let ts2 = generate(&k.join("timestamp-2.pem"));
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!(
            "timestamp_keys = [\"file:{}/k/timestamp.pem\"]",
            dir.display()
        ),
        &format!(
            "timestamp_keys = [\"file:{d}/k/timestamp.pem\", \"file:{d}/k/timestamp-2.pem\"]",
            d = dir.display()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let next = dir.join("next-root.json");
    let ts2_uri = format!("file:{}", k.join("timestamp-2.pem").display());
    let out = ok(&[
        "root",
        "rotate",
        "--config",
        cfg,
        "--repo",
        "r",
        "--out",
        s(&next),
        "--timestamp-key",
        &ts2_uri,
    ]);
    // root-1 alone: 1 of 2 for both roots; nothing is published yet.
    assert!(out.contains("1 of the 2 needed by root version 1"), "{out}");
    assert!(out.contains("more root signatures are needed"), "{out}");
    assert!(!tree.join("metadata/2.root.json").exists());
    // publish refuses it with the counts.
    let o = run(&[
        "root",
        "publish",
        "--config",
        cfg,
        "--repo",
        "r",
        "--file",
        s(&next),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("root version 2 is not signed enough"), "{err}");
    assert!(err.contains(&format!("signed: {r1}")), "{err}");
    // The holder of root-2 signs on their machine, then the root is published.
    let r2_uri = format!("file:{}", offline.join("root-2.pem").display());
    ok(&["root", "sign", "--file", s(&next), "--key", &r2_uri]);
    let out = ok(&[
        "root",
        "publish",
        "--config",
        cfg,
        "--repo",
        "r",
        "--file",
        s(&next),
    ]);
    assert!(out.contains("root version 2 published"), "{out}");
    let v2 = signed(&tree, 2);
    assert_eq!(ids(&v2, "timestamp"), [ts2]);
    assert_eq!(ids(&v2, "root"), ids(&signed(&tree, 1), "root"));
    python_follows(&tree, "hello.txt");
    tuf_fetch_follows(&tree, dir, "hello.txt", 2);

    // 2. A root key: root-3 leaves, root-4 joins, still 2 of 3.
    let r4 = generate(&offline.join("root-4.pem"));
    let pub4 = dir.join("root-4.pub.json");
    let r4_uri = format!("file:{}", offline.join("root-4.pem").display());
    std::fs::write(&pub4, ok(&["keys", "public", "--key", &r4_uri]).as_bytes()).unwrap();
    let next3 = dir.join("next-root-3.json");
    ok(&[
        "root",
        "prepare",
        "--config",
        cfg,
        "--repo",
        "r",
        "--out",
        s(&next3),
        "--add-root-key",
        s(&pub4),
        "--remove-root-key",
        &r3,
    ]);
    let r1_uri = format!("file:{}", k.join("root-1.pem").display());
    for uri in [&r1_uri, &r2_uri] {
        ok(&["root", "sign", "--file", s(&next3), "--key", uri]);
    }
    let out = ok(&[
        "root",
        "publish",
        "--config",
        cfg,
        "--repo",
        "r",
        "--file",
        s(&next3),
    ]);
    assert!(out.contains("root version 3 published"), "{out}");
    let v3 = signed(&tree, 3);
    let mut want = vec![r1.clone(), r2, r4];
    want.sort();
    assert_eq!(ids(&v3, "root"), want);
    assert!(
        v3["keys"].get(&r3).is_none(),
        "the removed key's object stays"
    );
    python_follows(&tree, "hello.txt");
    tuf_fetch_follows(&tree, dir, "hello.txt", 3);

    // The audit log holds the three root versions.
    let log: Value = serde_json::from_str(&ok(&["audit", "--config", cfg, "--json"])).unwrap();
    let roots: Vec<u64> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sign" && e["role"] == "root")
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(roots, [1, 2, 3]);
    let rotations: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rotation")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert!(
        rotations[0].starts_with("root v2 (root handed in by the ceremony): timestamp keys"),
        "{rotations:?}"
    );
    assert!(
        rotations[1].contains("-> [") && rotations[1].contains("root keys"),
        "{rotations:?}"
    );
}

#[test]
fn an_upstream_targets_key_rotation_waits_for_the_ceremony_while_the_old_state_is_served() {
    use tuf_mirror_tests::builder::{TestKey, SNAPSHOT, TARGETS, TIMESTAMP};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut upstream = fixtures::basic();
    common::write_upstream(&upstream.publish(), dir);
    common::generate_keys(dir);
    let config = common::write_config(dir, "");
    let cfg = s(&config);
    ok(&["sync", "--config", cfg]);
    let tree = dir.join("state/published/r");
    // The root key goes offline.
    let offline = dir.join("offline-root.pem");
    std::fs::rename(dir.join("k/root.pem"), &offline).unwrap();

    // The upstream rotates its targets key and adds a target.
    upstream.rotate_role_keys(TARGETS, [TestKey::ed25519_from_label("targets-2")], 1);
    upstream.add_target(TARGETS, "after.txt", b"after".to_vec());
    upstream.bump_version(SNAPSHOT);
    upstream.bump_version(TIMESTAMP);
    common::write_upstream(&upstream.publish(), dir);
    let out = ok(&["sync", "--config", cfg]);
    assert!(out.contains("(root signature needed)"), "{out}");
    // The new upstream state is held back: the old one is served and re-signed.
    assert!(!tree.join("metadata/2.root.json").exists());
    assert!(!tree.join("upstream/2.root.json").exists());
    python_follows(&tree, "hello.txt");
    let status = ok(&["status", "--config", cfg]);
    assert!(
        status.contains("root signature needed for repository r: upstream root version 2 changed the targets keys"),
        "{status}"
    );
    let json: Value = serde_json::from_str(&ok(&["status", "--config", cfg, "--json"])).unwrap();
    assert_eq!(json["r"]["root_signature_needed"], true);
    ok(&["resign", "--config", cfg]);
    python_follows(&tree, "hello.txt");

    // The ceremony: the prepared root follows the upstream targets keys by itself.
    let next = dir.join("next.json");
    let out = ok(&[
        "root",
        "prepare",
        "--config",
        cfg,
        "--repo",
        "r",
        "--out",
        s(&next),
    ]);
    assert!(
        out.contains("targets keys follow upstream root version 2"),
        "{out}"
    );
    ok(&[
        "root",
        "sign",
        "--file",
        s(&next),
        "--key",
        &format!("file:{}", offline.display()),
    ]);
    let out = ok(&[
        "root",
        "publish",
        "--config",
        cfg,
        "--repo",
        "r",
        "--file",
        s(&next),
    ]);
    assert!(out.contains("root version 2 published"), "{out}");
    python_follows(&tree, "after.txt");
    assert!(tree.join("upstream/2.root.json").exists());
    let json: Value = serde_json::from_str(&ok(&["status", "--config", cfg, "--json"])).unwrap();
    assert_eq!(json["r"]["root_signature_needed"], false);
    assert!(json["r"]["attention"].is_null());
}

/// The ceremony with 2-of-3 root keys held three ways: a file, a key on a SoftHSM2
/// token and a key in a KMS-compatible server (both started here).
#[cfg(feature = "aws-kms")]
mod file_hsm_kms {
    use super::*;
    use tuf_mirror_tests::kms::KmsServer;
    use tuf_mirror_tests::softhsm::SoftHsm;

    fn key_id_of(uri: &str) -> String {
        let out = ok(&["keys", "public", "--key", uri]);
        let start = out.find('{').unwrap();
        let v: Value = serde_json::from_str(&out[start..]).unwrap();
        v["keyid"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_file_an_hsm_and_a_kms_key_rotate_the_timestamp_key_then_a_root_key() {
        let mut kms = KmsServer::start();
        let hsm = SoftHsm::shared();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        common::write_upstream(&fixtures::basic().publish(), dir);
        common::generate_keys(dir);
        let file_root = format!("file:{}", dir.join("k/root.pem").display());
        let hsm_root = hsm.uri("p256");
        let kms_root = kms.uri(&kms.create_key("ECC_NIST_P256"));
        let config = dir.join("config.toml");
        let text = std::fs::read_to_string(common::write_config(dir, ""))
            .unwrap()
            .replace(
                &format!("root_keys = [{file_root:?}]\nroot_threshold = 1\n"),
                &format!(
                    "root_keys = [{file_root:?}, {hsm_root:?}, {kms_root:?}]\nroot_threshold = 2\n"
                ),
            );
        std::fs::write(&config, text).unwrap();
        let cfg = s(&config);
        ok(&["sync", "--config", cfg]);
        let tree = dir.join("state/published/r");
        let v1 = signed(&tree, 1);
        let mut three = vec![
            key_id_of(&file_root),
            key_id_of(&hsm_root),
            key_id_of(&kms_root),
        ];
        three.sort();
        assert_eq!(ids(&v1, "root"), three);
        assert_eq!(v1["roles"]["root"]["threshold"], 2);

        // 1. The timestamp key: configured beside the old one, then the ceremony, where
        //    the HSM holder and the KMS holder each sign.
        let ts2 = generate(&dir.join("k/timestamp-2.pem"));
        let ts2_uri = format!("file:{}", dir.join("k/timestamp-2.pem").display());
        let ts1_uri = format!("file:{}", dir.join("k/timestamp.pem").display());
        let text = std::fs::read_to_string(&config).unwrap().replace(
            &format!("timestamp_keys = [{ts1_uri:?}]"),
            &format!("timestamp_keys = [{ts1_uri:?}, {ts2_uri:?}]"),
        );
        std::fs::write(&config, text).unwrap();
        let next = dir.join("next-2.json");
        let n = s(&next);
        ok(&[
            "root",
            "prepare",
            "--config",
            cfg,
            "--repo",
            "r",
            "--out",
            n,
            "--timestamp-key",
            &ts2_uri,
        ]);
        ok(&["root", "sign", "--file", n, "--key", &hsm_root]);
        ok(&["root", "sign", "--file", n, "--key", &kms_root]);
        let out = ok(&[
            "root", "publish", "--config", cfg, "--repo", "r", "--file", n,
        ]);
        assert!(out.contains("root version 2 published"), "{out}");
        assert_eq!(ids(&signed(&tree, 2), "timestamp"), [ts2]);
        python_follows(&tree, "hello.txt");
        tuf_fetch_follows(&tree, dir, "hello.txt", 2);

        // 2. A root key: the file key leaves, a new file key joins; the HSM and KMS
        //    holders sign (2 of the old root's 3 and 2 of the new root's 3).
        let r4 = generate(&dir.join("k/root-4.pem"));
        let r4_uri = format!("file:{}", dir.join("k/root-4.pem").display());
        let next = dir.join("next-3.json");
        let n = s(&next);
        ok(&[
            "root",
            "prepare",
            "--config",
            cfg,
            "--repo",
            "r",
            "--out",
            n,
            "--add-root-key",
            &r4_uri,
            "--remove-root-key",
            &key_id_of(&file_root),
        ]);
        ok(&["root", "sign", "--file", n, "--key", &hsm_root]);
        ok(&["root", "sign", "--file", n, "--key", &kms_root]);
        let out = ok(&[
            "root", "publish", "--config", cfg, "--repo", "r", "--file", n,
        ]);
        assert!(out.contains("root version 3 published"), "{out}");
        let mut want = vec![r4, key_id_of(&hsm_root), key_id_of(&kms_root)];
        want.sort();
        assert_eq!(ids(&signed(&tree, 3), "root"), want);
        python_follows(&tree, "hello.txt");
        tuf_fetch_follows(&tree, dir, "hello.txt", 3);
        kms.stop();
    }
}
