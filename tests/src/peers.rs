//! Where the independent peers (python-tuf, tuf-js) are installed.
//!
//! `scripts/install-test-deps.sh` puts python-tuf in `<workspace>/.venv` and tuf-js in
//! `<workspace>/.tools/node`; `TUF_MIRROR_PYTHON` and `TUF_MIRROR_NODE_PATH` override.
//! A missing peer fails the test that needs it: a peer test that does not run must not
//! count as a pass.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A Python interpreter with python-tuf installed.
pub fn python() -> PathBuf {
    let p = std::env::var_os("TUF_MIRROR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python-tuf peer missing at {}: run scripts/install-test-deps.sh (or set TUF_MIRROR_PYTHON)",
        p.display()
    );
    p
}

/// `NODE_PATH` holding tuf-js.
pub fn node_path() -> PathBuf {
    let p = std::env::var_os("TUF_MIRROR_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/node/node_modules"));
    assert!(
        p.join("tuf-js").exists(),
        "tuf-js peer missing under {}: run scripts/install-test-deps.sh (or set TUF_MIRROR_NODE_PATH)",
        p.display()
    );
    p
}

/// A script of `tests/peers/`.
pub fn script(name: &str) -> PathBuf {
    workspace().join("tests/peers").join(name)
}
