#!/usr/bin/env bash
# bench/pinned.sh: what pinning the targets keys costs a client. Pinned against unpinned
# refreshes of the same generated repository, in one process, alternating (see
# client-lib/examples/pinned_bench.rs); appends a section to bench/RESULTS.md.
#
# Env:
#   BENCH_DIR        cache of the generated repositories (default /tmp/tuf-mirror-bench,
#                    shared with compare.sh)
#   BENCH_BINS       bin count of the repository (default 256)
#   BENCH_RUNS       runs of each measurement (default 51)
#   BENCH_RESULTS    markdown file appended to (default bench/RESULTS.md; "-" prints only)
#   BENCH_NO_BUILD=1 do not run cargo build
#   CARGO_TARGET_DIR where cargo puts the release binaries (default ./target)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/tuf-mirror-bench}
BINS=${BENCH_BINS:-256}
RUNS=${BENCH_RUNS:-51}
RESULTS=${BENCH_RESULTS:-$REPO/bench/RESULTS.md}
PY=$REPO/.venv/bin/python
UPSTREAM=$REPO/tests/peers/tuf_upstream.py
EXE=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/pinned_bench
MAX_AGE=$((20 * 3600))   # generated timestamp.json expires after 24 h

log() { echo "pinned.sh: $*" >&2; }

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building the example"
  (cd "$REPO" && cargo build --release --quiet -p tuf-mirror-client --example pinned_bench)
fi

# The same repository as compare.sh (same arguments, same cache and stamp).
dir=$BENCH_DIR/bins$BINS
args=(--targets 100000 --bins "$BINS" --files 20 --tough-layout --seed tuf-mirror-bench)
stamp=$dir/.bench-stamp
if ! { [[ -f $stamp ]] && [[ $(head -1 "$stamp") == "${args[*]}" ]] &&
       (($(date +%s) - $(sed -n 2p "$stamp") < MAX_AGE)); }; then
  log "generating $dir"
  mkdir -p "$BENCH_DIR"
  "$PY" "$UPSTREAM" init "$dir" "${args[@]}" --force >"$BENCH_DIR/init-$BINS.log"
  printf '%s\n%s\n' "${args[*]}" "$(date +%s)" >"$stamp"
fi

load=$(cut -d' ' -f1-3 /proc/loadavg)
table=$("$EXE" "$dir" "$RUNS")
rev=$(git -C "$REPO" rev-parse --short HEAD)
section=$(
  echo "## Pinned against unpinned refresh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- bench/pinned.sh: client-lib/examples/pinned_bench.rs on tests/peers/tuf_upstream.py" \
    "init ${args[*]} (files read through file://, metadata kept in memory)"
  echo "- machine: $(nproc) CPUs, Linux $(uname -r); load average at start: $load; tuf-mirror $rev"
  echo "- $RUNS runs of each, pinned and unpinned alternating; median and minimum"
  echo
  echo "$table"
)
echo "$section"
if [[ $RESULTS != - ]]; then
  printf '\n%s\n' "$section" >>"$RESULTS"
  log "appended to $RESULTS"
fi
