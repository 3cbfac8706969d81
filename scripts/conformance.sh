#!/usr/bin/env bash
# Run the tuf-conformance client test suite against a TUF client executable.
#
#   TUF_CONFORMANCE_GIT=/path/to/git-dir scripts/conformance.sh [CLIENT_EXE|python-tuf] [pytest args...]
#
#   CLIENT_EXE   a client implementing the suite's CLI protocol (CLIENT-CLI.md in the suite:
#                `--metadata-dir DIR init ROOT`, `--metadata-url URL --metadata-dir DIR
#                refresh`, `... --target-name P --target-dir D --target-base-url U download`)
#   python-tuf   (the default) the suite's own python-tuf client, as a reference run;
#                expect 113 tests: 112 passed, 1 xfailed, in 1.5 to 3.5 minutes on 2 cores
#   pytest args  passed on to pytest, e.g. `-k test_unsigned_metadata -rA` or `-x`
#
# The suite (GitHub theupdateframework/tuf-conformance) is not published as a package.
# TUF_CONFORMANCE_GIT names a git directory of it (bare or not); its HEAD is exported with
# `git archive` to $TUF_CONFORMANCE_DIR/src, outside this repository: its code is never
# to be committed here. Without TUF_CONFORMANCE_GIT an earlier export is reused.
#
# Env:    TUF_CONFORMANCE_DIR  work directory (default /tmp/tuf-conformance):
#                              src/ the suite, venv/ its python (versions pinned by the
#                              suite's pyproject.toml), bin/ the entrypoint wrapper,
#                              out/ report.json (pytest-json-report), pytest.log, dump/
#                              (repository versions served in each test)
#         TUF_CONFORMANCE_XFAILS  expected failures of CLIENT_EXE (default
#                              client-lib/conformance.xfails, if it exists): test names,
#                              groups or group[param], one per line
# Needs:  python3 >= 3.11 with venv, pip access to the package registry, and faketime
#         (scripts/install-test-deps.sh installs it).
# Exit:   pytest's status (0 all passed or xfailed as expected, 1 some failed), 2 usage.
#
# Pitfalls handled here: the suite splits --entrypoint on spaces and looks for expected
# failures in "<entrypoint>.xfails", so the client is always called through a one-word
# wrapper script in bin/ with the xfails file next to it; the suite's static tests run
# the client under `faketime`, which the wrapper passes on (LD_PRELOAD is inherited).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${TUF_CONFORMANCE_DIR:-/tmp/tuf-conformance}
SRC=$BASE/src
VENV=$BASE/venv
BIN=$BASE/bin
OUT=$BASE/out
XFAILS=${TUF_CONFORMANCE_XFAILS:-$REPO/client-lib/conformance.xfails}
CLIENT=${1:-python-tuf}
shift || true
START=$SECONDS

die() { echo "conformance.sh: $*" >&2; exit 2; }
log() { echo "conformance.sh: $*"; }

mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd)
case "$BASE/" in "$REPO"/*) die "TUF_CONFORMANCE_DIR must be outside the repository ($REPO)" ;; esac

# ------------------------------------------------------------------- the suite's source
if [[ -n ${TUF_CONFORMANCE_GIT:-} ]]; then
  commit=$(git --git-dir="$TUF_CONFORMANCE_GIT" rev-parse --verify HEAD) ||
    die "TUF_CONFORMANCE_GIT=$TUF_CONFORMANCE_GIT is not a git directory with a HEAD"
  if [[ $(cat "$SRC/.exported-commit" 2>/dev/null) != "$commit" ]]; then
    log "exporting tuf-conformance ${commit:0:12} to $SRC"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    git --git-dir="$TUF_CONFORMANCE_GIT" archive HEAD | tar -x -C "$SRC"
    echo "$commit" >"$SRC/.exported-commit"
  fi
elif [[ ! -f $SRC/pyproject.toml ]]; then
  die "no suite at $SRC: set TUF_CONFORMANCE_GIT to a git directory of tuf-conformance"
fi
version=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$SRC/tuf_conformance/__init__.py" 2>/dev/null || true)
log "suite: tuf-conformance ${version:-?} ($(head -c 12 "$SRC/.exported-commit" 2>/dev/null || echo 'commit unknown'))"

command -v faketime >/dev/null ||
  die "faketime is missing: run scripts/install-test-deps.sh as root (or apt-get install faketime)"

# ------------------------------------------- venv with the versions the suite pins
# The suite is run from its source tree (python -m pytest puts it on sys.path), so only
# its dependencies are installed: no build backend needed.
deps=$(python3 - "$SRC/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
) || die "cannot read the dependencies from $SRC/pyproject.toml (python3 >= 3.11 needed)"
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null ||
  [[ $(cat "$VENV/.installed-deps" 2>/dev/null) != "$deps" ]]; then
  log "creating $VENV with: $(tr '\n' ' ' <<<"$deps")"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  mapfile -t dep_list <<<"$deps"
  "$VENV/bin/python" -m pip install --no-input -q --disable-pip-version-check "${dep_list[@]}"
  echo "$deps" >"$VENV/.installed-deps"
fi

# ----------------------------------------------------------- one-word entrypoint
mkdir -p "$BIN"
if [[ $CLIENT == python-tuf ]]; then
  EP=$BIN/python-tuf
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$VENV/bin/python" \
    "$SRC/clients/python-tuf/python_tuf.py" >"$EP"
  cp "$SRC/clients/python-tuf/python_tuf.py.xfails" "$EP.xfails"
else
  [[ -f $CLIENT && -x $CLIENT ]] || die "client $CLIENT is not an executable file"
  exe=$(realpath "$CLIENT")
  EP=$BIN/client
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$exe" >"$EP"
  if [[ -f $XFAILS ]]; then
    cp "$XFAILS" "$EP.xfails"
    log "expected failures: $XFAILS ($(grep -cv '^\s*\(#\|$\)' "$XFAILS") entries)"
  else
    rm -f "$EP.xfails"
  fi
fi
chmod +x "$EP"
log "client: $CLIENT (entrypoint $EP)"

# -------------------------------------------------------------------------- run
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$SRC"
set +e
timeout 1800 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tuf_conformance \
  --entrypoint "$EP" --repository-dump-dir "$OUT/dump" \
  --json-report --json-report-file="$OUT/report.json" "$@" >"$OUT/pytest.log" 2>&1
rc=$?
set -e

# pytest's summary: the failures (if any) and its closing line, then the counts
if grep -q 'short test summary info' "$OUT/pytest.log"; then
  sed -n '/short test summary info/,$p' "$OUT/pytest.log" | tail -n 80
else
  tail -n 1 "$OUT/pytest.log"
fi
"$VENV/bin/python" - "$OUT/report.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
counts = ", ".join(f"{s[k]} {k}" for k in ("passed", "failed", "xfailed", "xpassed",
                                            "skipped", "error") if s.get(k))
print(f"tuf-conformance: {s.get('total', 0)} tests: {counts} ({r['duration']:.0f} s)")
PY
log "exit $rc after $((SECONDS - START)) s; report $OUT/report.json, log $OUT/pytest.log"
exit $rc
