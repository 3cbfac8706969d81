//! A SoftHSM2 token with signing keys, for the PKCS#11 tests.
//!
//! SoftHSM2 is a library, not a server: the token is a directory named by the
//! `SOFTHSM2_CONF` file, which the module reads once, when it is initialized. So a
//! process has one token: [`SoftHsm::shared`] makes it on first use (in a temporary
//! directory, removed when the process exits normally) and points `SOFTHSM2_CONF` of
//! this process at it. Keys are made with OpenSC's `pkcs11-tool` (Debian `opensc`),
//! the token with `softhsm2-util` (Debian `softhsm2`); `scripts/install-test-deps.sh`
//! installs both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Debian path of the SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's label.
pub const TOKEN: &str = "tuf-mirror-test";
/// The user PIN: distinctive, so that a test can search logs for it.
pub const PIN: &str = "pin-Q7v3Zk9W";
/// A second token, with one P-256 key (`p256`, id 01), that no test logs in to with
/// the right PIN: PKCS#11 login state is per token and process, so a wrong PIN is
/// only refused on a token not logged in already.
pub const OTHER_TOKEN: &str = "tuf-mirror-other";
/// The security officer PIN.
const SO_PIN: &str = "so-pin-88213377";

/// The keys on the token: (label, CKA_ID, pkcs11-tool key type).
pub const KEYS: [(&str, u8, &str); 3] = [
    ("p256", 0x01, "EC:prime256v1"),
    ("ed25519", 0x02, "EC:edwards25519"),
    ("rsa3072", 0x03, "rsa:3072"),
];

/// The token of this process.
pub struct SoftHsm {
    dir: PathBuf,
    /// A PIN file holding [`PIN`], mode 0600.
    pub pin_file: PathBuf,
}

impl SoftHsm {
    /// The token of this process, made on first use with [`KEYS`] on it.
    pub fn shared() -> &'static SoftHsm {
        static HSM: OnceLock<SoftHsm> = OnceLock::new();
        HSM.get_or_init(SoftHsm::create)
    }

    fn create() -> SoftHsm {
        for (tool, package) in [("softhsm2-util", "softhsm2"), ("pkcs11-tool", "opensc")] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "{tool} missing: run scripts/install-test-deps.sh (Debian package {package})"
            );
        }
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} missing: run scripts/install-test-deps.sh (Debian package softhsm2)"
        );
        let dir = std::env::temp_dir().join(format!("tuf-mirror-softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).expect("token directory");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                dir.join("tokens").display()
            ),
        )
        .expect("softhsm2.conf");
        // Before any PKCS#11 use in this process: the module reads it at C_Initialize.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        run(Command::new("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ]));
        for (label, id, key_type) in KEYS {
            run(Command::new("pkcs11-tool").args([
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                label,
                "--id",
                &format!("{id:02x}"),
            ]));
        }
        run(Command::new("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            OTHER_TOKEN,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ]));
        run(Command::new("pkcs11-tool").args([
            "--module",
            MODULE,
            "--token-label",
            OTHER_TOKEN,
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "p256",
            "--id",
            "01",
        ]));
        let pin_file = dir.join("user.pin");
        write_private(&pin_file, &format!("{PIN}\n"));
        SoftHsm { dir, pin_file }
    }

    /// The directory holding the configuration, tokens and PIN file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A `pkcs11:` URI of the key labelled `object`, with the PIN read from `pin_file`.
    pub fn uri_with_pin(&self, object: &str, pin_file: &Path) -> String {
        format!(
            "pkcs11:token={TOKEN};object={object};type=private?module-path={MODULE}&pin-source={}",
            pin_file.display()
        )
    }

    /// A `pkcs11:` URI of the P-256 key of [`OTHER_TOKEN`], with the PIN of `pin_file`.
    pub fn other_token_uri(&self, pin_file: &Path) -> String {
        format!(
            "pkcs11:token={OTHER_TOKEN};object=p256?module-path={MODULE}&pin-source={}",
            pin_file.display()
        )
    }

    /// A `pkcs11:` URI of the key labelled `object`, with the right PIN file.
    pub fn uri(&self, object: &str) -> String {
        self.uri_with_pin(object, &self.pin_file)
    }
}

/// Writes `text` to `path` with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Runs a tool, bounded by `timeout 60`, and fails with its output if it fails.
fn run(cmd: &mut Command) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = Command::new("timeout")
        .arg("60")
        .arg(&program)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
