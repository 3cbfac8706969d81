#!/usr/bin/env bash
# Self-test of the peer tooling in tests/peers: builds small upstream repositories with
# tuf_upstream.py and checks that both reference clients (python-tuf, tuf-js) accept them,
# over HTTP (127.0.0.1 only) and through --file-fetcher, follow key rotations from a warm
# cache, and refuse an expired timestamp. A few seconds; prints one line per check and
# "peers: N passed, N failed"; exit status 1 if any check failed.
#
# Env: TUF_MIRROR_PYTHON (default .venv/bin/python), TUF_MIRROR_NODE_PATH (default
# .tools/node/node_modules), both made by scripts/install-test-deps.sh.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${TUF_MIRROR_PYTHON:-$REPO/.venv/bin/python}
export NODE_PATH=${TUF_MIRROR_NODE_PATH:-$REPO/.tools/node/node_modules}
UP="$PY $HERE/tuf_upstream.py"
W=$(mktemp -d /tmp/peers-selftest.XXXXXX)
passed=0
failed=0

cleanup() {
  $UP serve-stop "$W/up" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT

# check NAME EXPECTED_RC PATTERN COMMAND...: run COMMAND (60 s at most); it passes when it
# exits with EXPECTED_RC and some line of its output matches the extended regex PATTERN
check() {
  local name=$1 want_rc=$2 pattern=$3
  shift 3
  local out rc
  out=$(timeout 60 "$@" 2>&1)
  rc=$?
  if [[ $rc -eq $want_rc ]] && grep -qE "$pattern" <<<"$out"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name (exit $rc, wanted $want_rc and /$pattern/)"
    sed 's/^/    /' <<<"$out" | tail -20
    failed=$((failed + 1))
  fi
}

# clients LABEL CACHE BASE_URL ROOT [OPTION...]: both clients, three targets, caches under
# $W/CACHE-py and $W/CACHE-js (reuse CACHE for a warm start)
TARGETS=(README.txt releases/app-1.0.tar.gz pkgs/pkg-0000002.tar.gz)
want_all_ok="^OK README.txt 17 d3239586e66e69fec1dd26472b9b352364c094111a7fd038d74ca9a59d1e6536 "
clients() {
  local label=$1 cache=$2 base=$3 root=$4
  shift 4
  check "python-tuf $label" 0 "$want_all_ok" \
    "$PY" "$HERE/tuf_client.py" --metadata-url "$base/metadata/" --targets-url "$base/targets/" \
    --root "$root" --cache "$W/$cache-py" --walk-all "$@" "${TARGETS[@]}"
  check "tuf-js $label" 0 "$want_all_ok" \
    node "$HERE/tufjs_client.cjs" --metadata-url "$base/metadata/" --targets-url "$base/targets/" \
    --root "$root" --cache "$W/$cache-js" --walk-all "$@" "${TARGETS[@]}"
}

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

$UP init "$W/up" --targets 100 --bins 4 --files 3 --seed selftest >/dev/null || exit 1
$UP serve-start "$W/up" --port "$port" >/dev/null || exit 1
clients http http "$url" "$W/up/root.json"
clients files files http://files.invalid "$W/up/root.json" --file-fetcher "$W/up/repo"

$UP rotate-targets-key "$W/up" >/dev/null && $UP rotate-root-key "$W/up" >/dev/null &&
  $UP bump "$W/up" --add 3 --release >/dev/null || exit 1
clients "http warm, rotated keys" http "$url" "$W/up/root.json"   # root v1 -> v3

$UP expire "$W/up" timestamp -60 >/dev/null || exit 1
check "python-tuf expired timestamp" 1 "^ERROR refresh ExpiredMetadataError" \
  "$PY" "$HERE/tuf_client.py" --metadata-url "$url/metadata/" --targets-url "$url/targets/" \
  --root "$W/up/root.json" README.txt
check "tuf-js expired timestamp" 1 "^ERROR refresh ExpiredMetadataError" \
  node "$HERE/tufjs_client.cjs" --metadata-url "$url/metadata/" --targets-url "$url/targets/" \
  --root "$W/up/root.json" README.txt

$UP init "$W/plain" --targets 100 --bins 4 --files 3 --succinct --meta-hashes \
  --consistent-snapshot off >/dev/null || exit 1
clients "no consistent snapshot, succinct" plain http://files.invalid "$W/plain/root.json" --file-fetcher "$W/plain/repo"

echo "peers: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
