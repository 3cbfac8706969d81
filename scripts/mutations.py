#!/usr/bin/env python3
"""Removes one security check of the engine at a time and runs the engine's tests:
every mutation must make at least one test fail. Prints one line per mutation and
exits 1 if a mutation survives. Restores every file it touched.

    scripts/mutations.py [--filter SUBSTRING]
"""
import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "client-lib" / "src"

# (name, file, text to find, replacement): each removes one check.
MUTATIONS = [
    ("threshold", "verify.rs", "if valid as u64 >= auth.threshold {\n            Ok(())", "if true {\n            Ok(())"),
    ("duplicate signature key ids", "verify.rs", "if !seen.insert(s.keyid.as_ref()) {", "if false && !seen.insert(s.keyid.as_ref()) {"),
    ("one public key under two ids", "verify.rs", "if !counted.contains(&key.public()) {", "if true {"),
    ("key id not in role", "verify.rs", "if !auth.keyids.iter().any(|k| *k == s.keyid) {", "if false {"),
    ("timestamp rollback", "updater.rs", "if new.version < old.version {", "if false {"),
    ("snapshot rollback via timestamp", "updater.rs", "if new.snapshot.version < old.snapshot.version {", "if false {"),
    ("targets rollback via snapshot", "updater.rs", "Some(n) if n.version < m.version => {", "Some(n) if false && n.version < m.version => {"),
    ("role removed from snapshot", "updater.rs", "                    None => {\n                        return Err(Error::NotInSnapshot {", "                    None if false => {\n                        return Err(Error::NotInSnapshot {"),
    ("root chain consecutive", "updater.rs", "if new.version() != next {", "if false {"),
    ("root signed by old root", "updater.rs", "o.verify(&self.root.authority(\"root\"))?;", "let _ = &self.root;"),
    ("root signed by new root", "updater.rs", "checked.verify(&new.authority(\"root\"))?;", "let _ = (&new, &checked);"),
    ("expiry", "policy.rs", "if now < expires {", "if true {"),
    ("meta length", "verify.rs", "if bytes.len() as u64 != len {", "if false {"),
    ("meta hashes", "verify.rs", "if aws_lc_rs::digest::digest(d, bytes).as_ref() != want.as_slice() {", "if false {"),
    ("targets version vs snapshot", "updater.rs", "if o.version != meta.version {", "if false {"),
    ("snapshot version vs timestamp", "updater.rs", "if s.version != meta.version {", "if false {"),
    ("endless data", "transport.rs", "if buf.len() as u64 > limit {", "if false {"),
    ("target length", "target.rs", "if self.seen > self.length {", "if false {"),
    ("target hashes", "target.rs", "if ctx.finish().as_ref() != want.as_slice() {", "if false {"),
    ("hostile target paths (mirror)", "updater.rs", "crate::names::check_target_path(path)?;", "let _ = path;"),
    ("hostile role names", "updater.rs", "crate::names::check_role_name(name)?;", "let _ = name;"),
    ("fast-forward (timestamp keys)", "updater.rs", "if self.root.role_keys_changed(&new, \"timestamp\") {", "if false {"),
    ("terminating", "walk.rs", "to_visit.clear();", "{}"),
    ("edge verified against each delegator", "updater.rs", "if !self.edges.contains(&(name.to_owned(), fp)) {", "if false {"),
    ("duplicate JSON keys", "canonical.rs", "if let Some(w) = members.windows(2).find(|w| key_of(&w[0]) == key_of(&w[1])) {", "if let Some(w) = members.windows(2).find(|_| false) {"),
    ("delegation to a top-level name", "trusted.rs", "if TOP_LEVEL.contains(&r.name.as_str()) {", "if false {"),
    ("duplicate key ids in a role", "trusted.rs", "if let Some(dup) = keyids.iter().find(|k| !seen.insert(k.as_str())) {", "if let Some(dup) = keyids.iter().find(|_| false) {"),
]


def run_tests() -> bool:
    r = subprocess.run(
        ["cargo", "test", "-q", "-p", "tuf-mirror-client", "-p", "tuf-mirror-tests",
         "--test", "engine_attacks", "--lib"],
        cwd=ROOT, capture_output=True, text=True)
    return r.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    survivors = []
    for name, file, find, repl in MUTATIONS:
        if args.filter not in name:
            continue
        path = SRC / file
        original = path.read_text()
        if original.count(find) != 1:
            print(f"STALE    {name}: pattern found {original.count(find)} times in {file}")
            survivors.append(name)
            continue
        try:
            path.write_text(original.replace(find, repl))
            passed = run_tests()
        finally:
            path.write_text(original)
        print(f"{'SURVIVED' if passed else 'killed  '} {name}")
        if passed:
            survivors.append(name)
    print(f"{len(survivors)} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
