#!/usr/bin/env bash
# bench/daemon.sh: the daemon's sync and re-sign costs (daemon/examples/daemon_bench.rs)
# on generated upstream repositories, next to tough's signing path on the same shape.
# Writes a markdown table to bench/DAEMON-RESULTS.md. See bench/README.md.
#
# Env:
#   BENCH_DIR        cache of the generated upstreams (default /tmp/tuf-mirror-daemon-bench)
#   BENCH_SIZES      "BINS:TARGETS ..." (default "256:100000 16384:1000000")
#   BENCH_TICKS      re-sign ticks timed per repository, median shown (default 20)
#   BENCH_RUNS       runs of each signing-only measurement, median shown (default 10)
#   BENCH_REPEAT     processes per repository (each: first sync, ticks, signing, second
#                    sync); the table shows the median over them (default 3)
#   BENCH_SCRATCH    copies of the upstreams and the daemon state (default $BENCH_DIR/run)
#   BENCH_RESULTS    markdown file written (default bench/DAEMON-RESULTS.md)
#   BENCH_NO_BUILD=1 do not run cargo build (the example must already be built)
#   CARGO_TARGET_DIR where cargo puts the release build (default ./target)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/tuf-mirror-daemon-bench}
read -r -a SIZES <<<"${BENCH_SIZES:-256:100000 16384:1000000}"
TICKS=${BENCH_TICKS:-20}
RUNS=${BENCH_RUNS:-10}
REPEAT=${BENCH_REPEAT:-3}
RESULTS=${BENCH_RESULTS:-$REPO/bench/DAEMON-RESULTS.md}
SEED=bench
MAX_AGE=$((20 * 3600))   # the generated timestamp.json expires after 24 h

PY=$REPO/.venv/bin/python
PEERS=$REPO/tests/peers
EXAMPLE=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/daemon_bench
export RUST_BACKTRACE=1

log() { echo "daemon.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if [[ ! -x $PY ]]; then
  log ".venv missing: running scripts/install-test-deps.sh"
  "$REPO/scripts/install-test-deps.sh"
fi
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building the daemon_bench example (release)"
  (cd "$REPO" && cargo build --release --quiet -p tuf-mirror-daemon --example daemon_bench)
fi
[[ -x $EXAMPLE ]] || die "no $EXAMPLE"
mkdir -p "$BENCH_DIR"

# tuf_upstream.py's bin_of() rebuilds the list of every bin name for every target: with
# 16,384 bins and 1,000,000 targets that is 1.6e10 names and the generator does not finish
# in any reasonable time. This wrapper runs the same script with that list cached per
# repository object; the repositories it writes are the same.
GEN=$BENCH_DIR/gen.py
cat >"$GEN" <<'EOF'
import sys
sys.path.insert(0, sys.argv.pop(1))
import tuf_upstream as t
_bin_names = t.Repo.bin_names
def bin_names(self):
    cache = self.__dict__.setdefault("_bench_bin_names", {})
    n = self.state["bins"]
    if n not in cache:
        cache[n] = _bin_names(self)
    return cache[n]
t.Repo.bin_names = bin_names
t.main()
EOF
upstream() { "$PY" "$GEN" "$PEERS" "$@"; }

# ------------------------------------------------------------------ upstreams (cached)
declare -A GEN_TIME GEN_RSS
generate() {
  local bins=$1 targets=$2 dir=$BENCH_DIR/bins$1-$2
  local args=(--targets "$targets" --bins "$bins" --files 1 --seed "$SEED")
  local stamp=$dir/.bench-stamp
  if [[ -f $stamp ]] && [[ $(head -1 "$stamp") == "${args[*]}" ]] &&
     (($(date +%s) - $(sed -n 2p "$stamp") < MAX_AGE)); then
    GEN_TIME[$bins]=$(sed -n 3p "$stamp"); GEN_RSS[$bins]=$(sed -n 4p "$stamp")
    return
  fi
  log "generating $dir (${args[*]})"
  /usr/bin/time -f '%e %M' -o "$BENCH_DIR/gen-$bins.time" \
    "$PY" "$GEN" "$PEERS" init "$dir" "${args[@]}" --force >"$BENCH_DIR/init-$bins.log"
  read -r secs kb <"$BENCH_DIR/gen-$bins.time"
  GEN_TIME[$bins]=$secs; GEN_RSS[$bins]=$((kb / 1024))
  printf '%s\n%s\n%s\n%s\n' "${args[*]}" "$(date +%s)" "$secs" "$((kb / 1024))" >"$stamp"
}
for s in "${SIZES[@]}"; do generate "${s%%:*}" "${s##*:}"; done

# ------------------------------------------------------------------ measuring
RUN=${BENCH_SCRATCH:-$BENCH_DIR/run}
rm -rf "$RUN"
mkdir -p "$RUN"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R   # R[bins.key] = the values of the repetitions, space-separated
for rep in $(seq "$REPEAT"); do
  for s in "${SIZES[@]}"; do
    bins=${s%%:*}; targets=${s##*:}
    up=$RUN/up-$bins-$rep work=$RUN/work-$bins-$rep out=$RUN/out-$bins-$rep.txt
    # a copy: the change below must not touch the cached upstream
    cp -a "$BENCH_DIR/bins$bins-$targets" "$up"
    log "run $rep/$REPEAT, $bins bins / $targets targets: first sync, $TICKS ticks, signing, second sync"
    coproc BENCH { exec "$EXAMPLE" "$up" "$work" --ticks "$TICKS" --runs "$RUNS" 2>"$RUN/err-$bins-$rep.txt"; }
    # bash unsets BENCH and BENCH_PID when the example exits: keep copies
    pid=$BENCH_PID
    exec {rfd}<&"${BENCH[0]}" {wfd}>&"${BENCH[1]}"
    : >"$out"
    while IFS= read -r line <&"$rfd"; do
      echo "$line" >>"$out"
      [[ $line == READY-FOR-CHANGE=* ]] && break
    done
    grep -q READY-FOR-CHANGE "$out" || { cat "$RUN/err-$bins-$rep.txt" >&2; die "daemon_bench failed"; }
    upstream bump "$up" --add 1 >"$RUN/bump-$bins-$rep.txt"
    echo go >&"$wfd"
    exec {wfd}>&-
    while IFS= read -r line <&"$rfd"; do echo "$line" >>"$out"; done
    exec {rfd}<&-
    wait "$pid" || { cat "$RUN/err-$bins-$rep.txt" >&2; die "daemon_bench failed"; }
    changed=$(sed -n 's/^roles_changed_by_second_sync=//p' "$out")
    [[ $changed == 1 ]] || die "$bins bins: the change touched $changed roles, not 1"
    while IFS='=' read -r k v; do R[$bins.$k]="${R[$bins.$k]:-}${R[$bins.$k]:+ }$v"; done <"$out"
    log "$(tr '\n' ' ' <"$out")"
  done
done

# ------------------------------------------------------------------ report
commit=$(git -C "$REPO" rev-parse --short HEAD)
dirty=$(git -C "$REPO" status --porcelain --untracked-files=no | grep -q . && echo " (with local changes)" || true)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
# the median of the repetitions of every numeric key, in M[bins.key]
declare -A M
med() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for k in "${!R[@]}"; do M[$k]=$(echo "${R[$k]}" | med); done
{
  echo "# Daemon benchmark: sync and re-sign"
  echo
  echo "Written by \`bench/daemon.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC')), commit $commit$dirty."
  echo "Machine: $cpu, $(nproc) cores, $mem; load average at start $LOAD."
  echo "Release build of \`daemon/examples/daemon_bench.rs\`; ed25519 keys; $REPEAT processes per"
  echo "repository, each timing $TICKS ticks and $RUNS runs of each signing-only figure (medians"
  echo "within a process); the table shows the median over the processes."
  echo "See bench/README.md for what each row measures."
  echo
  printf '| | '; for s in "${SIZES[@]}"; do printf '%s bins, %s targets | ' "${s%%:*}" "${s##*:}"; done; echo
  printf '| --- |'; for _ in "${SIZES[@]}"; do printf ' --- |'; done; echo
  row() { local label=$1; shift; printf '| %s |' "$label"; for s in "${SIZES[@]}"; do printf ' %s |' "$("$@" "${s%%:*}")"; done; echo; }
  f() { echo "${M[$1.$K]}"; }
  K=snapshot_meta_entries; row "roles in the mirror snapshot" f
  g() { echo "${GEN_TIME[$1]} s, $(echo "${GEN_RSS[$1]}") MB"; }
  row "generating the upstream (python-tuf, not ours)" g
  all() { echo "${R[$1]}" | sed 's/ /, /g'; }
  h() { echo "${M[$1.first_sync_ms]} ms (runs: $(all "$1.first_sync_ms"))"; }; row "**first sync**, cold (fresh state)" h
  h() { echo "$(mb "${M[$1.rss_after_first_sync_kb]}") MB"; }; row "peak RSS after the first sync (VmHWM)" h
  h() { echo "**${M[$1.resign_tick_ms_median]} ms** (${M[$1.resign_tick_ms_min]}-${M[$1.resign_tick_ms_max]})"; }
  row "**re-sign tick** \`Service::resign\`, median (min-max)" h
  h() { echo "${M[$1.resign_tick_cpu_ms_median]} ms"; }; row "re-sign tick on the CPU (the rest is waiting for fsync), median" h
  h() { echo "${M[$1.served_read_ms]} ms"; }; row "reading back the served state (\`Mirror::served\`, first cycle after a start only)" h
  h() { echo "${M[$1.timestamp_sign_ms]} ms"; }; row "part of it: signing the timestamp (\`mirror::sign\`)" h
  h() { echo "${M[$1.forced_snapshot_resign_ms]} ms"; }; row "forced snapshot + timestamp signing (\`mirror::sign\`)" h
  h() { echo "${M[$1.tough_both_sign_ms]} ms"; }; row "tough \`SignedRole::new\`: snapshot + timestamp" h
  h() { echo "${M[$1.tough_snapshot_sign_ms]} / ${M[$1.tough_timestamp_sign_ms]} ms"; }; row "tough: snapshot / timestamp alone" h
  h() { echo "$(ratio "${M[$1.resign_tick_ms_median]}" "${M[$1.tough_both_sign_ms]}")"; }
  row "tick / tough snapshot+timestamp (aim: <= 0.25)" h
  h() { echo "$(ratio "${M[$1.resign_tick_cpu_ms_median]}" "${M[$1.tough_both_sign_ms]}")"; }
  row "tick on the CPU / tough snapshot+timestamp" h
  h() { echo "$(ratio "${M[$1.forced_snapshot_resign_ms]}" "${M[$1.tough_both_sign_ms]}")"; }
  row "forced snapshot re-sign / tough snapshot+timestamp" h
  h() { echo "${M[$1.second_sync_ms]} ms (runs: $(all "$1.second_sync_ms"))"; }; row "**second sync**, one bin changed (same process)" h
  pct() { awk -v r="$1" 'BEGIN { printf "%.1f%%", r * 100 }'; }
  h() { local p=() r; for r in ${R[$1.second_over_first]}; do p+=("$(pct "$r")"); done
        echo "**$(pct "${M[$1.second_over_first]}")** (runs: $(echo "${p[*]}" | sed 's/ /, /g'))"; }
  row "second / first sync (aim: < 5%)" h
  h() { echo "$(mb "${M[$1.rss_peak_kb]}") MB"; }; row "peak RSS at the end" h
  echo
  echo "Raw output of the example, every run:"
  echo
  for rep in $(seq "$REPEAT"); do
    for s in "${SIZES[@]}"; do
      echo "- run $rep, ${s%%:*} bins: \`$(grep -v READY "$RUN/out-${s%%:*}-$rep.txt" | tr '\n' ' ' | sed 's/ $//')\`"
    done
  done
} >"$RESULTS"
log "wrote $RESULTS"
cat "$RESULTS"
