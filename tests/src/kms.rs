//! A KMS-compatible server for the `awskms:` tests: moto's server through
//! `tests/peers/kms_server.py`, which makes its Sign behave as AWS KMS does (see that
//! script). It listens on a free 127.0.0.1 port and is stopped by its PID when dropped.
//! moto and boto3 are in `.venv` (`tests/peers/requirements.txt`, installed by
//! `scripts/install-test-deps.sh`).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers;

/// A running server.
pub struct KmsServer {
    child: Child,
    port: u16,
}

impl KmsServer {
    /// Starts the server and waits (30 s at most) until it accepts connections. Sets
    /// test credentials in this process's environment (`AWS_ACCESS_KEY_ID=testing`,
    /// no config files, no instance metadata), which the server accepts.
    pub fn start() -> KmsServer {
        set_test_credentials();
        let port = free_port();
        let mut child = Command::new(peers::python())
            .arg(peers::script("kms_server.py"))
            .args(["serve", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kms_server.py");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!(
                    "kms_server.py exited ({status}): {err}\nmoto and boto3 come from \
                     tests/peers/requirements.txt: run scripts/install-test-deps.sh"
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kms_server.py did not listen on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        KmsServer { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a SIGN_VERIFY key of `spec` (`ECC_NIST_P256`, `RSA_3072`, ...); returns
    /// its key id.
    pub fn create_key(&self, spec: &str) -> String {
        let out = Command::new("timeout")
            .arg("60")
            .arg(peers::python())
            .arg(peers::script("kms_server.py"))
            .args(["create-key", "--endpoint", &self.endpoint(), "--spec", spec])
            .output()
            .expect("run kms_server.py create-key");
        assert!(
            out.status.success(),
            "create-key {spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The `awskms:` URI of `key_id` on this server.
    pub fn uri(&self, key_id: &str) -> String {
        format!(
            "awskms:///{key_id}?region=us-east-1&endpoint={}",
            self.endpoint()
        )
    }

    /// Stops the server (by its PID) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KmsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Credentials the server accepts, and no source that would reach beyond this machine.
pub fn set_test_credentials() {
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(name, value);
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
