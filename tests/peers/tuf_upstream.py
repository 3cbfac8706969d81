#!/usr/bin/env python3
"""tuf_upstream.py: a TUF 1.0 upstream repository for tuf-mirror's tests.

Built with python-tuf's Metadata API (tuf==7.0.1, securesystemslib==1.6.0; see
scripts/install-test-deps.sh, which puts them in .venv). Test keys only: every private key
is written unencrypted next to the repository.

Layout of DIR (everything is written by this script):

  DIR/keys/<name>.pem     unencrypted PKCS#8 Ed25519 private keys
  DIR/state.json          which key signs which role, current version of every role, options
  DIR/root.json           trust anchor for clients: root v1, never changes
  DIR/repo/metadata/      N.root.json for every root version, root.json (newest root),
                          timestamp.json, and for targets, snapshot, releases, bins, bins-XX:
                            consistent snapshot on:  N.<role>.json (every version kept)
                            consistent snapshot off: <role>.json   (overwritten)
  DIR/repo/targets/       the real target files:
                            consistent snapshot on:  <dir>/<sha256>.<basename>
                            consistent snapshot off: <dir>/<basename>

Serve it with any static HTTP server rooted at DIR/repo, e.g. the serve-start sub-command
(python3 -m http.server --bind 127.0.0.1); then the metadata URL is
http://127.0.0.1:PORT/metadata/ and the targets URL http://127.0.0.1:PORT/targets/.

The repository made by `init`:
  * root: keys root1, root2, root3, threshold 2, signed by root1 and root2 only;
    targets, snapshot, timestamp: one key each. Ed25519 everywhere.
  * top-level targets: README.txt and top/config.json (real files), delegating to
      - "releases" (own key, paths ["releases/*"], terminating, 3 real files), and
      - --bins hashed bins holding --targets synthetic targets pkgs/pkg-NNNNNNN.tar.gz,
        all signed by one "bins" key. Classic (default): targets -> bins-XX with
        path_hash_prefixes (PEP 458, one hop). --succinct: targets -> "bins"
        (paths ["pkgs/*"]) -> bins-XX through TAP 15 succinct_roles (two hops).
  * synthetic target i holds b"synthetic target <i>\\n", so any of them can be
    materialised later; only the first --files of them are written as real files.
  * JSON is python-tuf's indented form (not canonical, not compact) unless --compact,
    so anything that re-serialises metadata instead of copying bytes changes hashes.

Sub-commands:
  init DIR [--targets N] [--bins N] [--files N] [--succinct] [--meta-hashes] [--compact]
           [--consistent-snapshot on|off] [--tough-layout] [--seed TEXT] [--force]
      --meta-hashes     length and sha256 in snapshot and timestamp meta, not just versions
      --consistent-snapshot off
                        root says consistent_snapshot=false: metadata other than root and
                        target files are stored under unversioned, unprefixed names
      --tough-layout    also store each real target whose path has a directory at
                        targets/<sha256>.<dir>/<name>, which is where tough/tuftool fetch
                        it (tough prefixes the whole path, the spec only the basename)
      --seed TEXT       derive every key (including later rotated ones) from TEXT, so
                        key ids are the same on every run; default: random keys
  rotate-targets-key DIR   new targets key: root v+1 (root threshold), targets v+1 signed by
                           the new key, snapshot v+1, timestamp v+1
  rotate-root-key DIR      replace the first root key by a new one: root v+1 signed by the old
                           threshold and by the new one
  bump DIR [--add N] [--release] [--all-bins] [--timestamp-only]
                           add N synthetic targets (their bins v+1; --all-bins: every bin v+1),
                           --release: one new file in "releases" (v+1); then snapshot v+1
                           and timestamp v+1. --timestamp-only: only timestamp v+1
  expire DIR ROLE SECONDS  re-sign ROLE (root, targets, releases, snapshot or timestamp) with
                           expiry now+SECONDS (negative: already expired), then snapshot and
                           timestamp as needed so the repository stays consistent
  info DIR                 print versions, paths and options
  serve-start DIR [--port P] / serve-stop DIR
                           python3 -m http.server on 127.0.0.1 rooted at DIR/repo, in the
                           background (pid in DIR/http.pid, log in DIR/http.log)

Clock: expiry dates count from the wall clock, or from TUF_UPSTREAM_NOW if set (RFC 3339
such as 2030-01-01T00:00:00Z, or Unix seconds). With --seed and TUF_UPSTREAM_NOW the same
commands give byte-identical repositories (Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

# Default lifetimes, in seconds.
LIFETIME = {
    "root": 365 * 86400,
    "targets": 365 * 86400,
    "releases": 365 * 86400,
    "bins": 365 * 86400,
    "snapshot": 7 * 86400,
    "timestamp": 86400,
}
TOP_LEVEL = ("root", "targets", "snapshot", "timestamp")


def now() -> datetime:
    fixed = os.environ.get("TUF_UPSTREAM_NOW")
    if fixed:
        if fixed.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(fixed), UTC)
        return datetime.fromisoformat(fixed.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC).replace(microsecond=0)


def expiry(seconds: int) -> datetime:
    return now() + timedelta(seconds=seconds)


def lifetime(role: str) -> int:
    return LIFETIME["bins"] if role.startswith("bins") else LIFETIME[role]


def write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Repo:
    """One repository directory: keys, state and the published tree."""

    def __init__(self, d: str):
        self.dir = os.path.abspath(d)
        self.keydir = os.path.join(self.dir, "keys")
        self.metadir = os.path.join(self.dir, "repo", "metadata")
        self.tgtdir = os.path.join(self.dir, "repo", "targets")
        self.state_file = os.path.join(self.dir, "state.json")
        self.state: dict = {}
        self._signers: dict[str, CryptoSigner] = {}

    # ------------------------------------------------------------------ state
    def load(self) -> Repo:
        try:
            with open(self.state_file) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            sys.exit(f"{self.dir} is not a repository made by tuf_upstream.py init")
        self.state.setdefault("consistent_snapshot", True)
        return self

    def save(self) -> None:
        data = json.dumps(self.state, indent=1, sort_keys=True).encode()
        write_atomic(self.state_file, data)

    @property
    def consistent(self) -> bool:
        return bool(self.state.get("consistent_snapshot", True))

    @property
    def versions(self) -> dict[str, int]:
        return self.state["versions"]

    # ------------------------------------------------------------------- keys
    def new_key(self, name: str) -> SSlibKey:
        seed = self.state.get("seed")
        if seed is None:
            priv = Ed25519PrivateKey.generate()
        else:
            material = hashlib.sha256(f"tuf-upstream:{seed}:{name}".encode()).digest()
            priv = Ed25519PrivateKey.from_private_bytes(material)
        pem = priv.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomic(os.path.join(self.keydir, f"{name}.pem"), pem)
        return self.pub(name)

    def signer(self, name: str) -> CryptoSigner:
        if name not in self._signers:
            with open(os.path.join(self.keydir, f"{name}.pem"), "rb") as f:
                priv = serialization.load_pem_private_key(f.read(), password=None)
            self._signers[name] = CryptoSigner(priv, SSlibKey.from_crypto(priv.public_key()))
        return self._signers[name]

    def pub(self, name: str) -> SSlibKey:
        return self.signer(name).public_key

    def fresh_key_name(self, prefix: str) -> str:
        self.state["key_serial"] += 1
        return f"{prefix}-{self.state['key_serial']}"

    # ----------------------------------------------------------- metadata I/O
    def meta_path(self, role: str, version: int) -> str:
        """Where version `version` of `role` is stored (root: its versioned copy)."""
        if role == "timestamp":
            return os.path.join(self.metadir, "timestamp.json")
        if role == "root" or self.consistent:
            return os.path.join(self.metadir, f"{version}.{role}.json")
        return os.path.join(self.metadir, f"{role}.json")

    def read(self, role: str) -> Metadata:
        return Metadata.from_file(self.meta_path(role, self.versions.get(role, 0)))

    def write(self, role: str, md: Metadata, signers: list[str]) -> bytes:
        """Sign `md` with `signers` (key names), store it, record its version."""
        md.signatures.clear()
        for s in signers:
            md.sign(self.signer(s), append=True)
        data = md.to_bytes(JSONSerializer(compact=self.state.get("compact", False)))
        version = md.signed.version
        write_atomic(self.meta_path(role, version), data)
        if role == "root":
            # spec: every root version stays available as N.root.json, whatever
            # consistent_snapshot says; root.json is a convenience copy of the newest
            write_atomic(os.path.join(self.metadir, "root.json"), data)
        self.versions[role] = version
        return data

    def metafile(self, role: str) -> MetaFile:
        version = self.versions[role]
        if not self.state.get("meta_hashes"):
            return MetaFile(version=version)
        with open(self.meta_path(role, version), "rb") as f:
            data = f.read()
        return MetaFile(version=version, length=len(data),
                        hashes={"sha256": hashlib.sha256(data).hexdigest()})

    def write_target_file(self, tpath: str, content: bytes) -> TargetFile:
        tf = TargetFile.from_data(tpath, content, ["sha256"])
        sha = tf.hashes["sha256"]
        d, base = os.path.split(tpath)
        name = f"{sha}.{base}" if self.consistent else base
        write_atomic(os.path.join(self.tgtdir, d, name), content)
        if self.consistent and self.state.get("tough_layout") and d:
            # tough/tuftool fetch <sha256>.<whole target path>
            write_atomic(os.path.join(self.tgtdir, f"{sha}.{tpath}"), content)
        return tf

    def resign(self, role: str, md: Metadata, signers: list[str] | None = None,
               expires: datetime | None = None) -> None:
        """Version+1 of an existing role with a fresh expiry."""
        md.signed.version += 1
        md.signed.expires = expires or expiry(lifetime(role))
        self.write(role, md, signers or self.keys_of(role))

    def keys_of(self, role: str) -> list[str]:
        """Names of the keys that sign `role` (every hashed bin uses the "bins" keys)."""
        return self.state["keys"].get(role) or self.state["keys"]["bins"]

    # ------------------------------------------------------------ hashed bins
    @property
    def bits(self) -> int:
        return int(math.log2(self.state["bins"]))

    def bin_names(self) -> list[str]:
        # same names as TAP 15 succinct_roles with prefix "bins": bins-<hex, bits/4 digits>
        width = max(1, math.ceil(self.bits / 4))
        return [f"bins-{i:0{width}x}" for i in range(self.state["bins"])]

    def bin_of(self, tpath: str) -> str:
        h = int(hashlib.sha256(tpath.encode()).hexdigest()[:8], 16)
        return self.bin_names()[h >> (32 - self.bits)]

    def bin_prefixes(self, i: int) -> list[str]:
        plen = max(1, math.ceil(self.bits / 4))
        per = 16 ** plen // self.state["bins"]
        return [f"{p:0{plen}x}" for p in range(i * per, (i + 1) * per)]

    @staticmethod
    def synthetic(i: int) -> tuple[str, bytes]:
        return f"pkgs/pkg-{i:07d}.tar.gz", f"synthetic target {i}\n".encode()

    def delegated_roles(self) -> list[str]:
        return ["releases"] + (["bins"] if self.state["succinct"] else []) + self.bin_names()

    # --------------------------------------------------------------- cascades
    def new_snapshot(self, expires: datetime | None = None) -> None:
        meta = {f"{r}.json": self.metafile(r) for r in ["targets"] + self.delegated_roles()}
        snap = Snapshot(version=self.versions.get("snapshot", 0) + 1,
                        expires=expires or expiry(LIFETIME["snapshot"]), meta=meta)
        self.write("snapshot", Metadata(snap), self.state["keys"]["snapshot"])

    def new_timestamp(self, expires: datetime | None = None) -> None:
        ts = Timestamp(version=self.versions.get("timestamp", 0) + 1,
                       expires=expires or expiry(LIFETIME["timestamp"]),
                       snapshot_meta=self.metafile("snapshot"))
        self.write("timestamp", Metadata(ts), self.state["keys"]["timestamp"])

    def new_snapshot_and_timestamp(self) -> None:
        self.new_snapshot()
        self.new_timestamp()


# ----------------------------------------------------------------- commands
def cmd_init(a: argparse.Namespace) -> None:
    r = Repo(a.dir)
    if os.path.isdir(r.dir) and os.listdir(r.dir):
        if not a.force:
            sys.exit(f"{r.dir} is not empty (use --force)")
        shutil.rmtree(r.dir)
    if a.bins < 1 or a.bins & (a.bins - 1) or a.bins > 65536:
        sys.exit("--bins must be a power of 2 between 1 and 65536")
    if a.succinct and a.bins < 2:
        sys.exit("--succinct needs --bins >= 2")
    consistent = a.consistent_snapshot == "on"
    if a.tough_layout and not consistent:
        print("note: --tough-layout has no effect without consistent snapshots", file=sys.stderr)
    t0 = time.monotonic()
    for d in (r.keydir, r.metadir, r.tgtdir):
        os.makedirs(d, exist_ok=True)
    r.state = {
        "versions": {}, "bins": a.bins, "succinct": a.succinct, "meta_hashes": a.meta_hashes,
        "compact": a.compact, "consistent_snapshot": consistent, "tough_layout": a.tough_layout,
        "targets_count": a.targets, "files": a.files, "seed": a.seed, "key_serial": 0,
        "keys": {"root": ["root1", "root2", "root3"], "targets": ["targets"],
                 "snapshot": ["snapshot"], "timestamp": ["timestamp"],
                 "releases": ["releases"], "bins": ["bins"]},
        "root_signers": ["root1", "root2"],
    }
    for k in ("root1", "root2", "root3", "targets", "snapshot", "timestamp", "releases", "bins"):
        r.new_key(k)

    root = Root(expires=expiry(LIFETIME["root"]), consistent_snapshot=consistent)
    for role in TOP_LEVEL:
        for k in r.state["keys"][role]:
            root.add_key(r.pub(k), role)
    root.roles["root"].threshold = 2
    r.write("root", Metadata(root), r.state["root_signers"])
    shutil.copyfile(r.meta_path("root", 1), os.path.join(r.dir, "root.json"))

    # "releases": a delegated role with its own key and real files
    rnd = random.Random(1234)
    rel = Targets(version=1, expires=expiry(LIFETIME["releases"]))
    for name, content in (("releases/app-1.0.tar.gz", rnd.randbytes(65536)),
                          ("releases/app-1.1.tar.gz", rnd.randbytes(100000)),
                          ("releases/NOTES.txt", b"release notes\n")):
        rel.targets[name] = r.write_target_file(name, content)
    r.write("releases", Metadata(rel), r.state["keys"]["releases"])

    # synthetic targets in hashed bins
    bins = {b: Targets(version=1, expires=expiry(LIFETIME["bins"])) for b in r.bin_names()}
    for i in range(a.targets):
        tpath, content = Repo.synthetic(i)
        if i < a.files:
            tf = r.write_target_file(tpath, content)
        else:
            tf = TargetFile(len(content), {"sha256": hashlib.sha256(content).hexdigest()}, tpath)
        bins[r.bin_of(tpath)].targets[tpath] = tf
    for b, t in bins.items():
        r.write(b, Metadata(t), r.state["keys"]["bins"])

    # top-level targets and its delegations
    targets = Targets(version=1, expires=expiry(LIFETIME["targets"]))
    targets.targets["README.txt"] = r.write_target_file("README.txt", b"top-level target\n")
    targets.targets["top/config.json"] = r.write_target_file("top/config.json", b'{"a": 1}\n')
    rel_key, bins_key = r.pub("releases"), r.pub("bins")
    keys = {rel_key.keyid: rel_key, bins_key.keyid: bins_key}
    roles = {"releases": DelegatedRole("releases", [rel_key.keyid], 1, True,
                                       paths=["releases/*"])}
    if a.succinct:
        roles["bins"] = DelegatedRole("bins", [bins_key.keyid], 1, False, paths=["pkgs/*"])
        index = Targets(version=1, expires=expiry(LIFETIME["bins"]))
        index.delegations = Delegations(
            keys={bins_key.keyid: bins_key},
            succinct_roles=SuccinctRoles([bins_key.keyid], 1, r.bits, "bins"))
        r.write("bins", Metadata(index), r.state["keys"]["bins"])
    else:
        for i, b in enumerate(r.bin_names()):
            roles[b] = DelegatedRole(b, [bins_key.keyid], 1, False,
                                     path_hash_prefixes=r.bin_prefixes(i))
    targets.delegations = Delegations(keys=keys, roles=roles)
    r.write("targets", Metadata(targets), r.state["keys"]["targets"])

    r.new_snapshot_and_timestamp()
    r.save()
    print(f"initialised {r.dir} in {time.monotonic() - t0:.1f}s: {a.targets} synthetic targets "
          f"in {a.bins} bins ({'succinct' if a.succinct else 'path_hash_prefixes'}), "
          f"{min(a.files, a.targets)} of them real files, consistent_snapshot={consistent}")
    info(r)


def cmd_rotate_targets_key(a: argparse.Namespace) -> None:
    r = Repo(a.dir).load()
    new = r.fresh_key_name("targets")
    r.new_key(new)
    root = r.read("root")
    for k in r.state["keys"]["targets"]:
        root.signed.revoke_key(r.pub(k).keyid, "targets")
    root.signed.add_key(r.pub(new), "targets")
    r.resign("root", root, r.state["root_signers"])
    r.state["keys"]["targets"] = [new]
    r.resign("targets", r.read("targets"), [new])
    r.new_snapshot_and_timestamp()
    r.save()
    print(f"targets key rotated to {new} ({r.pub(new).keyid})")
    info(r)


def cmd_rotate_root_key(a: argparse.Namespace) -> None:
    r = Repo(a.dir).load()
    new = r.fresh_key_name("root")
    r.new_key(new)
    old = list(r.state["keys"]["root"])
    victim, keeper = r.state["root_signers"][0], r.state["root_signers"][1]
    root = r.read("root")
    root.signed.revoke_key(r.pub(victim).keyid, "root")
    root.signed.add_key(r.pub(new), "root")
    # the new root must satisfy the old threshold (victim + keeper) and its own (new + keeper)
    signers = [victim, keeper, new]
    r.resign("root", root, signers)
    r.state["keys"]["root"] = [new if k == victim else k for k in old]
    r.state["root_signers"] = [new, keeper]
    r.new_snapshot_and_timestamp()  # not required by the spec; keeps everything fresh
    r.save()
    print(f"root key {victim} replaced by {new}; root v{root.signed.version} signed by "
          f"{', '.join(signers)}")
    info(r)


def cmd_bump(a: argparse.Namespace) -> None:
    r = Repo(a.dir).load()
    if a.timestamp_only:
        r.new_timestamp()
        r.save()
        info(r)
        return
    changed: dict[str, Metadata] = {}
    start = r.state["targets_count"]
    for i in range(start, start + a.add):
        tpath, content = Repo.synthetic(i)
        b = r.bin_of(tpath)
        if b not in changed:
            changed[b] = r.read(b)
        changed[b].signed.targets[tpath] = r.write_target_file(tpath, content)
    r.state["targets_count"] = start + a.add
    if a.all_bins:
        for b in r.bin_names():
            if b not in changed:
                changed[b] = r.read(b)
    for b, md in changed.items():
        r.resign(b, md)
    if a.release:
        md = r.read("releases")
        n = len(md.signed.targets)
        name = f"releases/app-2.{n}.tar.gz"
        md.signed.targets[name] = r.write_target_file(name, f"release 2.{n}\n".encode())
        r.resign("releases", md)
        print(f"added {name} to releases")
    r.new_snapshot_and_timestamp()
    r.save()
    print(f"added {a.add} targets; {len(changed)} bins re-signed")
    info(r)


def cmd_expire(a: argparse.Namespace) -> None:
    r = Repo(a.dir).load()
    exp = now() + timedelta(seconds=a.seconds)
    if a.role == "timestamp":
        r.new_timestamp(exp)
    elif a.role == "snapshot":
        r.new_snapshot(exp)
        r.new_timestamp()
    elif a.role in ("targets", "releases"):
        r.resign(a.role, r.read(a.role), expires=exp)
        r.new_snapshot_and_timestamp()
    elif a.role == "root":
        r.resign("root", r.read("root"), r.state["root_signers"], expires=exp)
    else:
        sys.exit("ROLE must be root, targets, releases, snapshot or timestamp")
    r.save()
    print(f"{a.role} now expires {exp.isoformat()}")
    info(r)


def cmd_serve_start(a: argparse.Namespace) -> None:
    r = Repo(a.dir)
    pidf = os.path.join(r.dir, "http.pid")
    if os.path.exists(pidf):
        sys.exit(f"{pidf} exists: already serving? run serve-stop first")
    # HTTP/1.0 (the default): with keep-alive, http.server serialises clients badly
    with open(os.path.join(r.dir, "http.log"), "ab") as log:
        p = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                              "--directory", os.path.join(r.dir, "repo"), str(a.port)],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    with open(pidf, "w") as f:
        f.write(str(p.pid))
    url = f"http://127.0.0.1:{a.port}"
    for _ in range(50):  # bounded: about 10 s
        try:
            with urllib.request.urlopen(f"{url}/metadata/1.root.json", timeout=2) as resp:
                resp.read()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if p.poll() is not None:
                os.unlink(pidf)
                sys.exit(f"http.server exited with {p.returncode}; see {r.dir}/http.log")
            time.sleep(0.2)
    else:
        p.terminate()
        os.unlink(pidf)
        sys.exit("http.server did not answer within 10 s")
    print(f"serving {r.dir}/repo on {url}/ (pid {p.pid})")
    print(f"  metadata URL {url}/metadata/  targets URL {url}/targets/  "
          f"trusted root {r.dir}/root.json")


def cmd_serve_stop(a: argparse.Namespace) -> None:
    r = Repo(a.dir)
    pidf = os.path.join(r.dir, "http.pid")
    if not os.path.exists(pidf):
        print("not serving")
        return
    with open(pidf) as f:
        pid = int(f.read())
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except FileNotFoundError:
        print(f"pid {pid} already gone")
    else:
        if b"http.server" in cmdline:  # never signal a recycled pid
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            print(f"stopped http.server pid {pid}")
        else:
            print(f"pid {pid} is not our http.server; not signalled")
    os.unlink(pidf)


def info(r: Repo) -> None:
    v = r.versions
    bins = [b for b in v if b.startswith("bins-")]
    line = ", ".join(f"{k}={v[k]}" for k in ("root", "targets", "snapshot", "timestamp",
                                             "releases", "bins") if k in v)
    if bins:
        line += f", bins-XX: {len(bins)} roles, max v{max(v[b] for b in bins)}"
    print("versions: " + line)
    print(f"trusted root: {r.dir}/root.json   metadata dir: {r.metadir}   "
          f"targets dir: {r.tgtdir}")


def cmd_info(a: argparse.Namespace) -> None:
    r = Repo(a.dir).load()
    info(r)
    shown = ("consistent_snapshot", "bins", "succinct", "targets_count", "files", "meta_hashes",
             "compact", "tough_layout", "seed", "keys", "root_signers")
    print(json.dumps({k: r.state.get(k) for k in shown}, indent=1))
    print(json.dumps({"keyids": {name: r.pub(name).keyid for name in
                                 sorted({k for ks in r.state["keys"].values() for k in ks})}},
                     indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)

    s = sp.add_parser("init", help="create a repository")
    s.add_argument("dir")
    s.add_argument("--targets", type=int, default=1000, help="synthetic targets (default 1000)")
    s.add_argument("--bins", type=int, default=16, help="hashed bins, a power of 2 (default 16)")
    s.add_argument("--files", type=int, default=5,
                   help="write real files for the first N synthetic targets (default 5)")
    s.add_argument("--succinct", action="store_true", help="TAP 15 succinct hashed bins")
    s.add_argument("--meta-hashes", action="store_true",
                   help="length and sha256 in snapshot and timestamp meta")
    s.add_argument("--compact", action="store_true", help="compact JSON instead of indented")
    s.add_argument("--consistent-snapshot", choices=("on", "off"), default="on",
                   help="on (default): versioned metadata and hash-prefixed targets")
    s.add_argument("--tough-layout", action="store_true",
                   help="also store targets at targets/<sha256>.<dir>/<name> (tough's form)")
    s.add_argument("--seed", help="derive all keys from this text (reproducible key ids)")
    s.add_argument("--force", action="store_true", help="wipe DIR first")
    s.set_defaults(fn=cmd_init)

    for name, fn, text in (("rotate-targets-key", cmd_rotate_targets_key, "new targets key"),
                           ("rotate-root-key", cmd_rotate_root_key, "replace one root key"),
                           ("info", cmd_info, "print versions and options"),
                           ("serve-stop", cmd_serve_stop, "stop serve-start's server")):
        s = sp.add_parser(name, help=text)
        s.add_argument("dir")
        s.set_defaults(fn=fn)

    s = sp.add_parser("bump", help="add targets, new snapshot and timestamp")
    s.add_argument("dir")
    s.add_argument("--add", type=int, default=10)
    s.add_argument("--release", action="store_true")
    s.add_argument("--timestamp-only", action="store_true")
    s.add_argument("--all-bins", action="store_true")
    s.set_defaults(fn=cmd_bump)

    s = sp.add_parser("expire", help="re-sign a role with a given expiry")
    s.add_argument("dir")
    s.add_argument("role", choices=("root", "targets", "releases", "snapshot", "timestamp"))
    s.add_argument("seconds", type=int, help="expiry relative to now; negative = expired")
    s.set_defaults(fn=cmd_expire)

    s = sp.add_parser("serve-start", help="serve DIR/repo on 127.0.0.1 in the background")
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=8001)
    s.set_defaults(fn=cmd_serve_start)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
