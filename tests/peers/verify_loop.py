#!/usr/bin/env python3
"""verify_loop.py: python-tuf's ngclient verifying a served mirror tree again and again.

  verify_loop.py ROOT_V1.json TARGET [TARGET ...]

Reads one tree directory per line on stdin (a static tree: <dir>/metadata/..., <dir>/targets/...),
and for each runs a cold ngclient refresh from ROOT_V1.json (a fresh metadata directory), then
looks up every TARGET (loading the delegated roles that hold it) and checks the file's length and
hashes, reading files directly (tuf_client.FileFetcher). Prints one line per tree, flushed:

    OK <timestamp version> <snapshot version>
    ERROR <ExceptionClass>: <message>

One process for many checks, so that a crash test can verify the tree after every kill without
paying python's start-up each time.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tuf.ngclient import Updater  # noqa: E402

from tuf_client import FileFetcher  # noqa: E402


def check(tree: str, root: bytes, targets: list[str]) -> str:
    with tempfile.TemporaryDirectory() as md, tempfile.TemporaryDirectory() as td:
        up = Updater(
            metadata_dir=md,
            metadata_base_url="http://mirror.test/metadata/",
            target_base_url="http://mirror.test/targets/",
            target_dir=td,
            fetcher=FileFetcher(tree),
            bootstrap=root,
        )
        up.refresh()
        for t in targets:
            info = up.get_targetinfo(t)
            if info is None:
                return f"ERROR TargetNotFound: {t}"
            up.download_target(info)
        ts = up._trusted_set.timestamp.version  # noqa: SLF001
        snap = up._trusted_set.snapshot.version  # noqa: SLF001
        return f"OK {ts} {snap}"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        root = f.read()
    targets = sys.argv[2:]
    for line in sys.stdin:
        tree = line.strip()
        if not tree:
            continue
        try:
            out = check(tree, root, targets)
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            out = f"ERROR {type(e).__name__}: {e}"
        print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
