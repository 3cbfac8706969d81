#!/usr/bin/env bash
# The one test command of tuf-mirror (CI runs it through .ci/run):
#
#   scripts/test-all.sh
#
# Works from a fresh clone on a fresh Debian machine when run as root (it installs what
# the tests need through scripts/install-test-deps.sh) and exits non-zero as soon as any
# step fails. Steps, in order:
#   1. scripts/install-test-deps.sh   Debian packages, .venv (python-tuf), .tools/node (tuf-js)
#   2. cargo fmt --all -- --check
#   3. cargo clippy --workspace --all-targets -- -D warnings, then again with the aws-kms
#      feature (awskms: keys through the AWS SDK), and its docs
#   4. RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
#   5. cargo build --manifest-path fuzz/Cargo.toml    (only if fuzz/Cargo.toml exists)
#   6. tests/peers/selftest.sh        the reference peers against small python-tuf repos
#   7. cargo test --workspace --doc   doc tests (nextest does not run them)
#   8. cargo build of tuf-fetch (run by the ceremony and rotation tests), then
#      cargo nextest run --workspace  (cargo test --workspace when nextest is missing)
#   9. the signer tests again with the aws-kms feature (the KMS tests run only there)
# The test runs come last so that the output ends with the test summary.
#
# The Rust tests find the peers through TUF_MIRROR_PYTHON (.venv/bin/python) and
# TUF_MIRROR_NODE_PATH (.tools/node/node_modules), exported here.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

START=$SECONDS
STEP=
STEP_START=$SECONDS

# step NAME: print a header, and the time the previous step took
step() {
  if [[ -n $STEP ]]; then
    echo "---- $STEP: ok ($((SECONDS - STEP_START)) s)"
  fi
  STEP=$1
  STEP_START=$SECONDS
  printf '\n==== %s ====\n' "$STEP"
}

finish() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '\n==== FAILED: %s (exit %s, after %s s) ====\n' "${STEP:-start}" "$rc" "$((SECONDS - START))"
  fi
}
trap finish EXIT

step "install test dependencies"
scripts/install-test-deps.sh
export TUF_MIRROR_PYTHON=$REPO/.venv/bin/python
export TUF_MIRROR_NODE_PATH=$REPO/.tools/node/node_modules
# The cargo feature that builds awskms: key support (the AWS SDK).
KMS_FEATURE=tuf-mirror-daemon/aws-kms
# The test targets of the signers: the keys crate's unit tests and its PKCS#11 and KMS
# tests, the daemon's signer and secret-leak tests.
SIGNER_TESTS=(-p tuf-mirror-keys -p tuf-mirror-daemon --lib --test pkcs11 --test kms --test signers --test secrets --test ceremony)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy -D warnings, aws-kms feature"
cargo clippy --workspace --all-targets --features "$KMS_FEATURE" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p tuf-mirror-keys -p tuf-mirror-daemon --no-deps --features "$KMS_FEATURE"

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

if [[ -f fuzz/Cargo.toml ]]; then
  step "fuzz targets build"
  cargo build --manifest-path fuzz/Cargo.toml --target-dir target
fi

step "peer tooling self-test"
tests/peers/selftest.sh

step "doc tests"
cargo test --workspace --doc

# Tests that run the client command line (ceremony, rotations) find tuf-fetch next to
# their own binary; the signer step builds only the keys and daemon packages.
step "build tuf-fetch"
cargo build -p tuf-mirror-client --bin tuf-fetch

if cargo nextest --version >/dev/null 2>&1; then
  step "signer tests with the aws-kms feature (cargo nextest)"
  cargo nextest run "${SIGNER_TESTS[@]}" --features "$KMS_FEATURE"
  step "tests (cargo nextest)"
  cargo nextest run --workspace --no-tests=warn
else
  step "signer tests with the aws-kms feature (cargo test)"
  cargo test "${SIGNER_TESTS[@]}" --features "$KMS_FEATURE"
  step "tests (cargo test)"
  cargo test --workspace
fi

step "done"
echo "all checks passed in $((SECONDS - START)) s"
