#!/usr/bin/env bash
# Install what scripts/test-all.sh and the peer tests need. Idempotent: every step checks
# whether its result (at the right version) is already there and skips itself, so a second
# run takes a few seconds.
#
#   1. Debian packages, only when one is missing and only as root (apt-get update once,
#      then install): faketime, time, curl, openssl; softhsm2 and opensc (the PKCS#11
#      signing tests: SoftHSM2's module and softhsm2-util, OpenSC's pkcs11-tool);
#      python3-venv if python3 cannot make a venv; nodejs and npm if there is no `node`.
#   2. .venv at the repo root: python-tuf, moto[server] and boto3 and friends, pinned in
#      tests/peers/requirements.txt (used by tests/peers/tuf_upstream.py, tuf_client.py and
#      kms_server.py, the KMS-compatible server of the awskms: signing tests).
#   3. .tools/node: tuf-js (npm), used by tests/peers/tufjs_client.cjs.
#   4. checks that cargo has rustfmt and clippy (adds them with rustup if it can).
#
# Env: PYTHON (interpreter for the venv, default python3).
# The tests find the results through TUF_MIRROR_PYTHON=$REPO/.venv/bin/python and
# TUF_MIRROR_NODE_PATH=$REPO/.tools/node/node_modules (test-all.sh exports both).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQS=$REPO/tests/peers/requirements.txt
VENV=$REPO/.venv
NODE_PREFIX=$REPO/.tools/node
TUF_JS_VERSION=4.1.0
PYTHON=${PYTHON:-python3}
START=$SECONDS

log() { echo "install-test-deps: $*"; }

# ---------------------------------------------------------------- 1. Debian packages
missing=()
command -v faketime >/dev/null || missing+=(faketime)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
{ command -v softhsm2-util >/dev/null && [[ -e /usr/lib/softhsm/libsofthsm2.so ]]; } || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null || missing+=(opensc)
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
if ! command -v node >/dev/null; then missing+=(nodejs npm); fi

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "WARNING: missing ${missing[*]}; as root run: apt-get install -y ${missing[*]}" >&2
  fi
else
  log "Debian packages: present"
fi

# -------------------------------------------------------------------- 2. python venv
# Exit 0 when every pin of requirements.txt is installed at its version.
venv_ok() {
  [[ -x $VENV/bin/python ]] || return 1
  "$VENV/bin/python" - "$REQS" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        if version(name) != want:
            sys.exit(1)
PY
}

if venv_ok; then
  log "python venv: present ($VENV)"
else
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"   # absent, or broken (e.g. the interpreter it was made from went away)
  fi
  if [[ ! -x $VENV/bin/python ]]; then
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  log "installing $(grep -v '^#' "$REQS" | xargs) into $VENV"
  "$VENV/bin/python" -m pip install --no-input -q --disable-pip-version-check -r "$REQS"
  venv_ok || { log "ERROR: $VENV does not hold the versions pinned in $REQS" >&2; exit 1; }
fi

# ------------------------------------------------------------------------- 3. tuf-js
tufjs_version() {
  node -e 'process.stdout.write(require(process.argv[1]).version)' \
    "$NODE_PREFIX/node_modules/tuf-js/package.json" 2>/dev/null || true
}
if ! command -v node >/dev/null; then
  log "WARNING: no node; tufjs_client.cjs cannot run" >&2
elif [[ $(tufjs_version) == "$TUF_JS_VERSION" ]]; then
  log "tuf-js $TUF_JS_VERSION: present ($NODE_PREFIX)"
else
  # tuf-js 4.x declares node ^20.17 || >=22.9
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);
           process.exit(a>22||(a===22&&b>=9)||(a===20&&b>=17)?0:1)' ||
    log "WARNING: node $(node --version) is older than tuf-js $TUF_JS_VERSION asks for" >&2
  log "installing tuf-js@$TUF_JS_VERSION into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --save-exact --loglevel=error \
    "tuf-js@$TUF_JS_VERSION" >/dev/null
  [[ $(tufjs_version) == "$TUF_JS_VERSION" ]] ||
    { log "ERROR: tuf-js $TUF_JS_VERSION not found in $NODE_PREFIX after npm install" >&2; exit 1; }
fi

# ------------------------------------------------------------------- 4. cargo tools
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    component=$([[ $tool == fmt ]] && echo rustfmt || echo clippy)
    log "cargo $tool missing; trying: rustup component add $component"
    rustup component add "$component" ||
      { log "ERROR: cargo $tool is not available" >&2; exit 1; }
  fi
done

log "done in $((SECONDS - START)) s"
