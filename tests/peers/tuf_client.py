#!/usr/bin/env python3
"""tuf_client.py: an independent TUF client for tuf-mirror's tests (python-tuf's ngclient).

  tuf_client.py --metadata-url URL --targets-url URL --root ROOT.json [options] [TARGET ...]

Refreshes once (root chain, timestamp, snapshot, targets), then for every TARGET looks it up
through the delegation tree, downloads it (hash-prefixed file name when the root says
consistent_snapshot) unless it is already cached, checks it, and prints one line:

    OK <target> <length> <sha256> <local path>
    ERROR <target> <ExceptionClass>: <message>

A failed refresh prints `ERROR refresh <ExceptionClass>: <message>`. With no TARGET only the
refresh is done and `OK refresh cache=<dir>` is printed. Exit status: 0 when every line is
OK, 1 after any ERROR, 2 for a usage error. The same contract is kept by tufjs_client.cjs.

Options:
  --cache DIR          metadata and target cache (default: a new temporary directory, i.e.
                       a cold start; pass the same DIR again for a warm start)
  --walk-all           after the refresh, load every delegated targets role (breadth first
                       over roles and succinct_roles; uses ngclient's private
                       Updater._load_targets) and print `OK walk-all roles=N targets=M`
  --file-fetcher DIR   read every URL from local files instead of HTTP: DIR stands for the
                       document root of the server, i.e. <scheme>://<host>/<path> is read
                       from DIR/<path> (percent-decoded first, as a static HTTP server does;
                       the path as written is tried next). A missing file is an HTTP 404.
                       Lets benchmarks compare clients on the same files without a server.
  --no-hash-prefix     UpdaterConfig.prefix_targets_with_hash = False
  --info-only          look the targets up, do not download them
  --timing             print `TIME <phase> <seconds>s` lines to stderr
  --max-root-rotations N, --targets-max-length BYTES, --snapshot-max-length BYTES
                       the UpdaterConfig limits of the same names
  -v                   ngclient debug logging (shows every URL fetched)

Needs tuf==7.0.1 (tests/peers/requirements.txt; scripts/install-test-deps.sh puts it in
.venv, so run it as .venv/bin/python tests/peers/tuf_client.py ...).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import Targets
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

CHUNK = 64 * 1024


class FileFetcher(FetcherInterface):
    """Serves ngclient's downloads from a local directory tree instead of HTTP."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self.fetches = 0
        self.bytes = 0

    def _candidates(self, url: str) -> Iterator[str]:
        path = urlsplit(url).path
        for p in (unquote(path), path):
            full = os.path.realpath(os.path.join(self.root, p.lstrip("/")))
            if full == self.root or not full.startswith(self.root + os.sep):
                continue  # outside DIR: as good as missing
            yield full

    def _fetch(self, url: str) -> Iterator[bytes]:
        for path in self._candidates(url):
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed by the generator below
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            self.fetches += 1
            return self._chunks(f)
        raise DownloadHTTPError(f"{url}: no such file under {self.root}", 404)

    def _chunks(self, f) -> Iterator[bytes]:
        with f:
            while chunk := f.read(CHUNK):
                self.bytes += len(chunk)
                yield chunk


def err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def walk_all(up: Updater) -> tuple[int, int]:
    """Load every delegated targets role reachable from the top-level targets."""
    roles = ntargets = 0
    queue = deque([("targets", "root")])
    seen = set()
    while queue:
        role, parent = queue.popleft()
        if role in seen:
            continue
        seen.add(role)
        t: Targets = up._load_targets(role, parent)  # private API, stable since tuf 1.0
        roles += 1
        ntargets += len(t.targets)
        if t.delegations is not None:
            if t.delegations.roles:
                queue.extend((r, role) for r in t.delegations.roles)
            if t.delegations.succinct_roles is not None:
                queue.extend((r, role) for r in t.delegations.succinct_roles.get_roles())
    return roles, ntargets


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metadata-url", required=True)
    p.add_argument("--targets-url", required=True)
    p.add_argument("--root", required=True, help="trusted root.json (the trust anchor)")
    p.add_argument("--cache", help="cache directory (default: new temporary directory)")
    p.add_argument("--walk-all", action="store_true", help="load every delegated role")
    p.add_argument("--file-fetcher", metavar="DIR", help="read URLs from files under DIR")
    p.add_argument("--no-hash-prefix", action="store_true")
    p.add_argument("--info-only", action="store_true")
    p.add_argument("--timing", action="store_true", help="TIME lines on stderr")
    p.add_argument("--max-root-rotations", type=int)
    p.add_argument("--targets-max-length", type=int)
    p.add_argument("--snapshot-max-length", type=int)
    p.add_argument("-v", action="store_true", help="debug logging")
    p.add_argument("targets", nargs="*")
    return p.parse_args()


def main() -> int:
    a = parse_args()
    if a.v:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    if a.file_fetcher and not os.path.isdir(a.file_fetcher):
        print(f"--file-fetcher {a.file_fetcher}: not a directory", file=sys.stderr)
        return 2

    cache = a.cache or tempfile.mkdtemp(prefix="tuf-client-")
    mdir = os.path.join(cache, "metadata")
    tdir = os.path.join(cache, "targets")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(tdir, exist_ok=True)

    cfg = UpdaterConfig()
    if a.no_hash_prefix:
        cfg.prefix_targets_with_hash = False
    if a.max_root_rotations is not None:
        cfg.max_root_rotations = a.max_root_rotations
    if a.targets_max_length is not None:
        cfg.targets_max_length = a.targets_max_length
    if a.snapshot_max_length is not None:
        cfg.snapshot_max_length = a.snapshot_max_length
    fetcher = FileFetcher(a.file_fetcher) if a.file_fetcher else None

    def timing(what: str, t0: float) -> None:
        if a.timing:
            print(f"TIME {what} {time.monotonic() - t0:.3f}s", file=sys.stderr)

    t_start = time.monotonic()
    try:
        with open(a.root, "rb") as f:
            root_bytes = f.read()
        up = Updater(metadata_dir=mdir, metadata_base_url=a.metadata_url, target_dir=tdir,
                     target_base_url=a.targets_url, fetcher=fetcher, config=cfg,
                     bootstrap=root_bytes)
        up.refresh()
    except Exception as e:  # noqa: BLE001 - report exactly what failed
        print(f"ERROR refresh {err(e)}")
        return 1
    timing("refresh", t_start)
    if not a.targets:
        print(f"OK refresh cache={cache}")

    rc = 0
    if a.walk_all:
        t0 = time.monotonic()
        try:
            roles, n = walk_all(up)
            print(f"OK walk-all roles={roles} targets={n}")
        except Exception as e:  # noqa: BLE001
            print(f"ERROR walk-all {err(e)}")
            rc = 1
        timing("walk-all", t0)

    for name in a.targets:
        t0 = time.monotonic()
        try:
            info = up.get_targetinfo(name)
            if info is None:
                print(f"ERROR {name} TargetNotFound: {name} not found in any targets role")
                rc = 1
            elif a.info_only:
                print(f"OK {name} {info.length} {info.hashes.get('sha256', '-')} (info only)")
            else:
                path = up.find_cached_target(info) or up.download_target(info)
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                print(f"OK {name} {info.length} {digest} {path}")
        except Exception as e:  # noqa: BLE001
            print(f"ERROR {name} {err(e)}")
            rc = 1
        timing(f"target {name}", t0)

    timing("total", t_start)
    if a.timing and fetcher is not None:
        print(f"TIME file-fetcher files={fetcher.fetches} bytes={fetcher.bytes}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
