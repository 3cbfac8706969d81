#!/usr/bin/env bash
# bench/compare.sh: tuf-mirror's engine (tuf-fetch) against python-tuf's ngclient and
# tough's RepositoryLoader, on the same generated repositories, in the same run.
# See bench/README.md for what each row measures and the caveats.
#
# Env:
#   BENCH_DIR            cache of the generated repositories (default /tmp/tuf-mirror-bench)
#   BENCH_SCRATCH        where the clients' metadata caches go (default $BENCH_DIR/scratch)
#   BENCH_RUNS           runs per measurement, median shown (default 3)
#   BENCH_BINS           bin counts to test (default "256 4096")
#   BENCH_SKIP_TOUGH_4096=1   do not run tough on the 4096-bin repository (~50-60 s a load)
#   BENCH_RESULTS        markdown file written (default bench/RESULTS.md)
#   BENCH_APPEND=1       append to BENCH_RESULTS instead of replacing it
#   BENCH_NO_BUILD=1     do not run cargo build (binaries must already be there)
#   BENCH_KEEP=1         keep the clients' caches in BENCH_SCRATCH after the run
#   CARGO_TARGET_DIR     where cargo puts the release binaries (default ./target)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/tuf-mirror-bench}
SCRATCH=${BENCH_SCRATCH:-$BENCH_DIR/scratch}
RUNS=${BENCH_RUNS:-3}
read -r -a BINS <<<"${BENCH_BINS:-256 4096}"
RESULTS=${BENCH_RESULTS:-$REPO/bench/RESULTS.md}
NTARGETS=100000
NFILES=20
SEED=tuf-mirror-bench
TARGET=pkgs/pkg-0000003.tar.gz
TARGET_CONTENT=$'synthetic target 3\n'   # what tuf_upstream.py puts in synthetic target 3
MAX_AGE=$((20 * 3600))                   # generated timestamp.json expires after 24 h

PY=$REPO/.venv/bin/python
UPSTREAM=$REPO/tests/peers/tuf_upstream.py
NGCLIENT=$REPO/tests/peers/tuf_client.py
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
TUF_FETCH=$BIN/tuf-fetch
TOUGH_LOAD=$BIN/tough-load
export RUST_BACKTRACE=0

log() { echo "compare.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------------------ prerequisites
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package 'time')"
if [[ ! -x $PY ]]; then
  log ".venv missing: running scripts/install-test-deps.sh"
  "$REPO/scripts/install-test-deps.sh"
fi
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building release binaries"
  (cd "$REPO" && cargo build --release --quiet -p tuf-mirror-client --bin tuf-fetch \
    -p tuf-mirror-tests --bin tough-load)
fi
[[ -x $TUF_FETCH && -x $TOUGH_LOAD ]] || die "no $TUF_FETCH or $TOUGH_LOAD"

# ------------------------------------------------------------------ repositories (cached)
# --tough-layout: tough fetches targets/<sha256>.<whole path>, not the spec's
# targets/<dir>/<sha256>.<basename>; the option stores the real files at both places.
# --seed: same keys every time.
generate() {
  local n=$1 dir=$BENCH_DIR/bins$1
  local args=(--targets "$NTARGETS" --bins "$n" --files "$NFILES" --tough-layout --seed "$SEED")
  local stamp=$dir/.bench-stamp
  if [[ -f $stamp ]] && [[ $(head -1 "$stamp") == "${args[*]}" ]] &&
     (($(date +%s) - $(sed -n 2p "$stamp") < MAX_AGE)); then
    return
  fi
  log "generating $dir (${args[*]})"
  mkdir -p "$BENCH_DIR"
  "$PY" "$UPSTREAM" init "$dir" "${args[@]}" --force >"$BENCH_DIR/init-$n.log"
  printf '%s\n%s\n' "${args[*]}" "$(date +%s)" >"$stamp"
}
for n in "${BINS[@]}"; do generate "$n"; done

# ------------------------------------------------------------------ measuring
# Nothing is deleted while measuring: on ext4, creating files shortly (up to 5 min) after
# many were deleted is slow (the kernel skips recently deleted inodes), and that would
# penalise whichever client runs next. The clients' caches are removed after the report.
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/log"
DATA=$SCRATCH/data.txt
: >"$DATA"

# timed KEY NAME CMD...: run CMD once; stdout to log/NAME.out, stderr to log/NAME.err.
# Records "KEY wall_us peak_rss_kib %e": wall from the ns clock (%e has 10 ms steps, too
# coarse for the sub-10 ms runs), peak RSS from /usr/bin/time.
timed() {
  local key=$1 out=$SCRATCH/log/$2; shift 2
  local t0 t1 e m
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%e %M' -o "$out.time" "$@" >"$out.out" 2>"$out.err"; then
    log "FAILED ($key): $*"; tail -5 "$out.err" >&2; exit 1
  fi
  t1=$(date +%s%N)
  read -r e m <"$out.time"
  echo "$key $(((t1 - t0) / 1000)) $m $e" >>"$DATA"
  LAST=$out.out
}

# expect WHAT GOT WANT
expect() { [[ $2 == "$3" ]] || die "count mismatch, $1: got '$2', expected '$3'"; }

ours_counts() { sed -nE 's/^([0-9]+) roles, ([0-9]+) targets$/\1 \2/p' "$1"; }
ng_counts() { sed -nE 's/^OK walk-all roles=([0-9]+) targets=([0-9]+)$/\1 \2/p' "$1"; }
tough_counts() { sed -nE 's/^roles ([0-9]+) targets ([0-9]+).*/\1 \2/p' "$1"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
WANT_SHA=$(printf '%s' "$TARGET_CONTENT" | sha256sum | cut -d' ' -f1)
# the single file tuf-fetch / tough-load wrote into a fresh output directory
only_file() { local f=("$1"/*); [[ ${#f[@]} == 1 && -f ${f[0]} ]] || die "$1: not one file"; echo "${f[0]}"; }

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COUNTS=""
for n in "${BINS[@]}"; do
  R=$BENCH_DIR/bins$n
  META=file://$R/repo/metadata/
  TGTS=file://$R/repo/targets/
  want=""   # "roles targets", from the first client that answers
  for ((i = 1; i <= RUNS; i++)); do
    log "$n bins, run $i/$RUNS"
    tough_now=1
    if ((n >= 4096)) && { [[ ${BENCH_SKIP_TOUGH_4096:-0} == 1 ]] || ((i > 1)); }; then tough_now=0; fi

    # --- cold full load: every role
    md=$SCRATCH/ours-full-$n-$i
    "$TUF_FETCH" --metadata-dir "$md" init "$R/root.json"
    timed "full:ours:$n" "full-ours-$n-$i" "$TUF_FETCH" --metadata-url "$META" --metadata-dir "$md" list
    got=$(ours_counts "$LAST"); want=${want:-$got}; expect "ours full $n" "$got" "$want"
    # warm: the same again on the metadata dir just filled, nothing changed upstream
    timed "warm:ours:$n" "warm-ours-$n-$i" "$TUF_FETCH" --metadata-url "$META" --metadata-dir "$md" list
    expect "ours warm $n" "$(ours_counts "$LAST")" "$want"

    timed "full:ngclient:$n" "full-ng-$n-$i" "$PY" "$NGCLIENT" --metadata-url http://files/metadata/ \
      --targets-url http://files/targets/ --root "$R/root.json" --cache "$SCRATCH/ng-full-$n-$i" \
      --file-fetcher "$R/repo" --walk-all
    expect "ngclient full $n" "$(ng_counts "$LAST")" "$want"

    if ((tough_now)); then
      timed "full:tough:$n" "full-tough-$n-$i" "$TOUGH_LOAD" --root "$R/root.json" \
        --metadata-dir "$R/repo/metadata" --all
      expect "tough full $n" "$(tough_counts "$LAST")" "$want"
    fi

    # --- cold refresh + one target
    md=$SCRATCH/ours-one-$n-$i
    "$TUF_FETCH" --metadata-dir "$md" init "$R/root.json"
    timed "one:ours:$n" "one-ours-$n-$i" "$TUF_FETCH" --metadata-url "$META" --metadata-dir "$md" \
      --target-base-url "$TGTS" --target-dir "$SCRATCH/out-ours-$n-$i" --target-name "$TARGET" download
    expect "ours target sha $n" "$(sha_of "$(only_file "$SCRATCH/out-ours-$n-$i")")" "$WANT_SHA"

    timed "one:ngclient:$n" "one-ng-$n-$i" "$PY" "$NGCLIENT" --metadata-url http://files/metadata/ \
      --targets-url http://files/targets/ --root "$R/root.json" --cache "$SCRATCH/ng-one-$n-$i" \
      --file-fetcher "$R/repo" "$TARGET"
    expect "ngclient target sha $n" "$(awk -v t="$TARGET" '$1 == "OK" && $2 == t {print $4}' "$LAST")" "$WANT_SHA"

    if ((tough_now)); then
      timed "one:tough:$n" "one-tough-$n-$i" "$TOUGH_LOAD" --root "$R/root.json" \
        --metadata-dir "$R/repo/metadata" --target "$TARGET" --out "$SCRATCH/out-tough-$n-$i"
      expect "tough target sha $n" "$(sha_of "$(only_file "$SCRATCH/out-tough-$n-$i")")" "$WANT_SHA"
    fi
  done

  # --- reload after a change upstream: copies of the repository get 1 and 10 new targets
  # (tuf_upstream.py bump: each lands in its hashed bin, so 1 and 10 bins change); every run
  # starts from a copy of a metadata dir that trusts the unchanged repository.
  base=$SCRATCH/ours-full-$n-1
  read -r roles ntargets <<<"$want"
  for add in 1 10; do
    up=$SCRATCH/upstream-$n-add$add
    cp -a "$R" "$up"
    "$PY" "$UPSTREAM" bump "$up" --add "$add" >"$SCRATCH/log/bump-$n-$add.out"
    grep -q "^added $add targets; $add bins re-signed" "$SCRATCH/log/bump-$n-$add.out" ||
      die "bump $n --add $add: $(head -1 "$SCRATCH/log/bump-$n-$add.out")"
    for ((i = 1; i <= RUNS; i++)); do
      md=$SCRATCH/ours-chg$add-$n-$i
      cp -a "$base" "$md"
      timed "chg$add:ours:$n" "chg$add-ours-$n-$i" "$TUF_FETCH" \
        --metadata-url "file://$up/repo/metadata/" --metadata-dir "$md" list
      expect "ours after +$add $n" "$(ours_counts "$LAST")" "$roles $((ntargets + add))"
    done
  done
  COUNTS+="- $n bins: every client counted $roles roles and $ntargets targets; "
  COUNTS+="after the changes, tuf-fetch counted $((ntargets + 1)) and $((ntargets + 10))."$'\n'
done
ELAPSED=$(($(date +%s) - START))

# ------------------------------------------------------------------ report
REPORT=$(python3 "$REPO/bench/report.py" "$DATA" "${BINS[@]}")
read -r _ SCALE NG_SCALE <<<"$(tail -1 <<<"$REPORT")"
TABLE=$(sed '$d' <<<"$REPORT")
if [[ $SCALE == - ]]; then
  SCALE_LINE="4096-bin / 256-bin ratio of our cold full load: not measured (needs BENCH_BINS with 256 and 4096)."
elif awk -v s="$SCALE" 'BEGIN { exit !(s <= 1.5) }'; then
  SCALE_LINE="4096-bin / 256-bin ratio of our cold full load: **${SCALE}x** (target: within 1.5x): met (ngclient: ${NG_SCALE}x)."
else
  SCALE_LINE="4096-bin / 256-bin ratio of our cold full load: **${SCALE}x** (target: within 1.5x): **not met** (ngclient: ${NG_SCALE}x)."
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
scratch_fs=$(df -PT "$SCRATCH" | awk 'NR == 2 { print $2 }')
rev=$(git -C "$REPO" rev-parse --short HEAD)
git -C "$REPO" diff --quiet HEAD -- client-lib 2>/dev/null || rev+=" + uncommitted changes in client-lib"
tough_v=$(awk '/^name = "tough"$/ { getline; gsub(/"/, "", $3); print $3 }' "$REPO/Cargo.lock")
ng_v=$("$PY" -c 'import tuf, securesystemslib; print(f"tuf {tuf.__version__}, securesystemslib {securesystemslib.__version__}")')
py_v=$("$PY" -c 'import sys; print(sys.version.split()[0])')

{
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r); load average at start: $LOAD_START"
  echo "- versions: tuf-mirror $rev ($("$TUF_FETCH" --version)), $(rustc -V 2>/dev/null || echo rustc ?);" \
    "tough $tough_v (via tests/src/bin/tough-load.rs); python-tuf ngclient: $ng_v, Python $py_v"
  echo "- repositories: tests/peers/tuf_upstream.py init --targets $NTARGETS --bins N --files $NFILES" \
    "--tough-layout --seed $SEED; files read through file:// (tuf-fetch, tough) and" \
    "tuf_client.py --file-fetcher (ngclient); client caches on $scratch_fs ($SCRATCH)"
  echo "- median of $RUNS runs (fewer where noted); wall time from the ns clock, peak RSS from" \
    "/usr/bin/time %M; the whole run took ${ELAPSED} s"
  echo
  echo "$TABLE"
  echo
  echo "$SCALE_LINE"
  echo
  echo "Counts checked:"
  echo
  printf '%s' "$COUNTS"
  echo "- the target $TARGET came out with sha256 $WANT_SHA from every client."
  echo
} >"$SCRATCH/results.md"

if [[ ${BENCH_APPEND:-0} == 1 && -f $RESULTS ]]; then
  cat "$SCRATCH/results.md" >>"$RESULTS"
else
  { echo "# Benchmark results (bench/compare.sh)"; echo; cat "$SCRATCH/results.md"; } >"$RESULTS"
fi
cat "$SCRATCH/results.md"
if [[ ${BENCH_KEEP:-0} != 1 ]]; then
  find "$SCRATCH" -mindepth 1 -maxdepth 1 -type d ! -name log -exec rm -rf {} +
fi
log "written to $RESULTS; raw logs in $SCRATCH/log"
