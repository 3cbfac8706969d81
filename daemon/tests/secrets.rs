//! No secret reaches a log line or a `Debug` output: a sync and a re-sign with file keys
//! (Ed25519 and P-256), a SoftHSM2 key and (with the `aws-kms` feature) a KMS key, with
//! every tracing event at TRACE level captured, plus the `Debug` and `Display` of the
//! configuration, the loaded keys and the errors of a wrong PIN and an open PIN file,
//! hold none of: the PEM body lines of the key files, the private scalars (hex, either
//! case, or base64), the PIN, the AWS secret access key.
//!
//! One test in this file: it installs the process-wide tracing subscriber (signing runs
//! on other threads than the test's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::MemLedger;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tuf_mirror_config::{Config, KeyUri};
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::keyring::load_keys;
use tuf_mirror_daemon::service::{display_chain, Service};
use tuf_mirror_keys::{Algorithm, Signer};
use tuf_mirror_tests::fixtures;
use tuf_mirror_tests::softhsm::{write_private, SoftHsm, PIN};

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The secrets of a PEM key file: its base64 body lines and the private scalar (found
/// after the DER prefix that precedes it in aws-lc's PKCS#8 output).
fn file_secrets(path: &Path, prefix: &[u8]) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let at = der
        .windows(prefix.len())
        .position(|w| w == prefix)
        .unwrap_or_else(|| panic!("no private scalar in {}", path.display()))
        + prefix.len();
    let scalar = &der[at..at + 32];
    out.push(hex::encode(scalar));
    out.push(hex::encode_upper(scalar));
    out.push(base64::engine::general_purpose::STANDARD.encode(scalar));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let hsm = SoftHsm::shared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::write_upstream(&fixtures::load("basic").unwrap(), dir);
    std::fs::create_dir_all(dir.join("k")).unwrap();
    let (ed, p256) = (dir.join("k/root-ed.pem"), dir.join("k/root-p256.pem"));
    tuf_mirror_keys::generate(Algorithm::Ed25519, &ed).unwrap();
    tuf_mirror_keys::generate(Algorithm::EcdsaP256, &p256).unwrap();
    // PKCS#8 Ed25519: OCTET STRING { OCTET STRING (32) }; SEC1 inside PKCS#8 P-256:
    // version 1, then OCTET STRING (32).
    let mut secrets = file_secrets(&ed, &[0x04, 0x22, 0x04, 0x20]);
    secrets.extend(file_secrets(&p256, &[0x02, 0x01, 0x01, 0x04, 0x20]));
    secrets.push(PIN.to_owned());

    #[cfg(feature = "aws-kms")]
    let server = tuf_mirror_tests::kms::KmsServer::start();
    #[cfg(feature = "aws-kms")]
    let timestamp = {
        let uri = server.uri(&server.create_key("ECC_NIST_P256"));
        // The server takes any credentials: use one worth searching for.
        let secret = "aws-secret-Hq83Nd02Lx7";
        std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
        secrets.push(secret.to_owned());
        uri
    };
    #[cfg(not(feature = "aws-kms"))]
    let timestamp = {
        let path = dir.join("k/timestamp.pem");
        tuf_mirror_keys::generate(Algorithm::EcdsaP256, &path).unwrap();
        secrets.extend(file_secrets(&path, &[0x02, 0x01, 0x01, 0x04, 0x20]));
        format!("file:{}", path.display())
    };

    let text = format!(
        r#"[server]
state_dir = "{d}/state"
[[repository]]
name = "r"
upstream_metadata = "{d}/up/metadata"
upstream_targets = "{d}/up/targets"
upstream_root = "{d}/up/root.json"
root_keys = ["file:{ed}", "file:{p256}"]
root_threshold = 2
snapshot_keys = [{snapshot:?}]
timestamp_keys = [{timestamp:?}]
"#,
        d = dir.display(),
        ed = ed.display(),
        p256 = p256.display(),
        snapshot = hsm.uri("p256"),
    );
    std::fs::write(dir.join("config.toml"), text).unwrap();
    let config = Config::load(dir.join("config.toml")).unwrap();
    let mut shown = vec![format!("{config:?}")];

    let c = config.clone();
    let service = tokio::task::spawn_blocking(move || {
        Service::open(&c, Arc::new(MemLedger::default()), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap();
    service.sync("r").await.unwrap();
    service.resign("r").await.unwrap();

    let repo = config.repositories[0].clone();
    let keys = tokio::task::spawn_blocking(move || load_keys(&repo).unwrap())
        .await
        .unwrap();
    shown.push(format!("{keys:?}"));
    let repo = &config.repositories[0];
    for uri in repo
        .root_keys
        .iter()
        .chain(&repo.snapshot_keys)
        .chain(&repo.timestamp_keys)
    {
        let u = uri.clone();
        let signer = tokio::task::spawn_blocking(move || Signer::open(&u).unwrap())
            .await
            .unwrap();
        shown.push(format!("{signer:?} {signer}"));
    }

    // Errors: a wrong PIN (on the token nobody logged in to) and a PIN file others can read.
    let wrong = dir.join("wrong.pin");
    write_private(&wrong, "wrong-pin-5521\n");
    secrets.push("wrong-pin-5521".to_owned());
    let open_pin = dir.join("open.pin");
    std::fs::write(&open_pin, format!("{PIN}\n")).unwrap();
    for uri in [
        hsm.other_token_uri(&wrong),
        hsm.uri_with_pin("p256", &open_pin),
    ] {
        let uri: KeyUri = uri.parse().unwrap();
        let err = tokio::task::spawn_blocking(move || Signer::open(&uri).unwrap_err())
            .await
            .unwrap();
        tracing::error!(error = %display_chain(&err), "key error");
        shown.push(format!("{err:?} {}", display_chain(&err)));
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("signing key loaded"),
        "the subscriber captured nothing useful:\n{logs}"
    );
    let everything = format!("{logs}\n{}", shown.join("\n"));
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "secret {:?}... found in the logs or Debug output",
            &secret[..6]
        );
    }
    assert!(secrets.len() >= 10, "{}", secrets.len());
}
