#!/usr/bin/env bash
# bench/serve.sh: requests/s of tuf-mirror's HTTP server against nginx serving the same
# files, on loopback, alternating, with wrk (2 threads, 50 connections). A load check, not
# a test: it prints a table and the ratio, and fails only when a tool is missing or a
# server does not start. Installs nothing.
#
# Env:
#   SERVE_BENCH_DIR       where the tree, nginx's files and the logs go
#                         (default /tmp/tuf-mirror-serve-bench, recreated)
#   SERVE_BENCH_ROUNDS    rounds per file; each round runs nginx then ours (default 2)
#   SERVE_BENCH_SECONDS   seconds per wrk run (default 10)
#   SERVE_BENCH_NGINX_PORT, SERVE_BENCH_MIRROR_PORT   loopback ports (8190, 8191)
#   SERVE_BENCH_CACHE_TTL_MS  the server's in-memory cache lifetime (default: its own, 1 s;
#                         0 measures the path that reads the disk on every request)
#   CARGO_TARGET_DIR      honoured by cargo
#
# The files: a 534-byte timestamp.json and a 57,000-byte metadata file (the size of a bin
# in a 100,000-target, 256-bin repository). While it runs, timestamp.json is replaced by
# rename every second, as a re-sign does, and errors are counted. The mirror side is the
# daemon's `serve_bench` example (release build, two runtime workers); it stops by itself
# after the run even if this script is killed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SERVE_BENCH_DIR:-/tmp/tuf-mirror-serve-bench}
ROUNDS=${SERVE_BENCH_ROUNDS:-2}
SECS=${SERVE_BENCH_SECONDS:-10}
NGINX_PORT=${SERVE_BENCH_NGINX_PORT:-8190}
MIRROR_PORT=${SERVE_BENCH_MIRROR_PORT:-8191}

missing=()
for tool in wrk nginx cargo curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "bench/serve.sh: missing: ${missing[*]}" >&2
  echo "  (Debian: apt-get install -y wrk nginx curl; cargo from rustup)" >&2
  exit 1
fi

rm -rf "$DIR"
mkdir -p "$DIR/published/r/metadata" "$DIR/nginx/logs"
chmod 755 "$DIR" "$DIR/published" "$DIR/published/r" "$DIR/published/r/metadata"
# Contents do not matter to either server; sizes do.
python3 - "$DIR/published/r/metadata" <<'PY' 2>/dev/null || {
import json, sys, os
d = sys.argv[1]
ts = {"signatures": [{"keyid": "a" * 64, "sig": "b" * 128}],
      "signed": {"_type": "timestamp", "expires": "2030-01-01T00:00:00Z",
                 "meta": {"snapshot.json": {"version": 1234}}, "spec_version": "1.0.31",
                 "version": 98765}}
open(os.path.join(d, "timestamp.json"), "w").write(json.dumps(ts, indent=1).ljust(534))
open(os.path.join(d, "3.bins-0a.json"), "w").write(("x" * 99 + "\n") * 570)
PY
  head -c 534 /dev/zero | tr '\0' ' ' >"$DIR/published/r/metadata/timestamp.json"
  head -c 57000 /dev/zero | tr '\0' 'x' >"$DIR/published/r/metadata/3.bins-0a.json"
}
chmod 644 "$DIR"/published/r/metadata/*
FILES=(r/metadata/timestamp.json r/metadata/3.bins-0a.json)

echo "building the daemon's serve_bench example (release, incremental)..." >&2
(cd "$REPO" && cargo build --release -p tuf-mirror-daemon --example serve_bench)
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/serve_bench
if [[ ! -x $BIN ]]; then
  echo "bench/serve.sh: could not find $BIN" >&2
  exit 1
fi

cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  types { application/json json; }
  client_body_temp_path $DIR/nginx/body;
  proxy_temp_path $DIR/nginx/proxy;
  fastcgi_temp_path $DIR/nginx/fastcgi;
  uwsgi_temp_path $DIR/nginx/uwsgi;
  scgi_temp_path $DIR/nginx/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; root $DIR/published; }
}
CONF

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

nginx -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/logs/error.log" &
PIDS+=($!)
total=$(((ROUNDS * ${#FILES[@]} * 2) * (SECS + 2) + 60))
env TUF_MIRROR_BENCH_LISTEN=127.0.0.1:$MIRROR_PORT TUF_MIRROR_BENCH_TREE=$DIR/published \
  TUF_MIRROR_BENCH_SECONDS=$total RUST_LOG=warn \
  ${SERVE_BENCH_CACHE_TTL_MS:+TUF_MIRROR_BENCH_CACHE_TTL_MS=$SERVE_BENCH_CACHE_TTL_MS} \
  "$BIN" >"$DIR/mirror.log" 2>&1 &
PIDS+=($!)

wait_up() {
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/serve.sh: nothing answers $1 (logs in $DIR)" >&2
  exit 1
}
wait_up "http://127.0.0.1:$NGINX_PORT/${FILES[0]}"
wait_up "http://127.0.0.1:$MIRROR_PORT/${FILES[0]}"

# A stand-in for re-signing: a new timestamp.json every second, renamed into place.
(
  md=$DIR/published/r/metadata
  end=$((SECONDS + total))
  while ((SECONDS < end)); do
    sleep 1
    cp "$md/timestamp.json" "$md/.tmp-ts" && mv -f "$md/.tmp-ts" "$md/timestamp.json"
  done
) &
PIDS+=($!)

# run_wrk URL: prints "requests/s errors"
run_wrk() {
  local out rps errs
  out=$(wrk -t2 -c50 -d"${SECS}s" "$1")
  echo "$out" >>"$DIR/wrk.log"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  echo "$rps $errs"
}

echo "| file | bytes | round | nginx req/s | tuf-mirror req/s | ratio | errors (nginx/ours) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
for f in "${FILES[@]}"; do
  size=$(stat -c %s "$DIR/published/$f")
  for round in $(seq "$ROUNDS"); do
    read -r n_rps n_err < <(run_wrk "http://127.0.0.1:$NGINX_PORT/$f")
    read -r m_rps m_err < <(run_wrk "http://127.0.0.1:$MIRROR_PORT/$f")
    ratio=$(awk -v m="$m_rps" -v n="$n_rps" 'BEGIN {printf "%.2f", m / n}')
    echo "| ${f##*/} | $size | $round | $n_rps | $m_rps | $ratio | $n_err/$m_err |"
  done
done
echo
echo "$(date -u +%FT%TZ), $(nproc) cores, cache ttl ${SERVE_BENCH_CACHE_TTL_MS:-1000} ms, timestamp.json replaced every second, $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), wrk -t2 -c50 -d${SECS}s on loopback; wrk output in $DIR/wrk.log"
