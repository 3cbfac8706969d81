//! Publishing: file names and URLs, snapshot and timestamp `meta`, and [`PublishedRepo`], the
//! files a static server would serve by relative URL path.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest::{digest, SHA256};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::{MetaOptions, RepoBuilder, ROOT, SNAPSHOT, TIMESTAMP};
use crate::server::FileMap;

/// The files of a published repository, keyed by relative URL path (`metadata/1.root.json`,
/// `targets/<dir>/<sha256>.<name>`), plus the trust anchor (the first root) that clients start
/// from.
///
/// A plain map: tests may insert, replace or remove any file before serving it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedRepo {
    files: BTreeMap<String, Vec<u8>>,
    trust_anchor: Vec<u8>,
}

impl PublishedRepo {
    pub(crate) fn new(files: BTreeMap<String, Vec<u8>>, trust_anchor: Vec<u8>) -> PublishedRepo {
        PublishedRepo {
            files,
            trust_anchor,
        }
    }

    /// This repository with `trust_anchor` as the root clients start from.
    pub fn with_trust_anchor(mut self, trust_anchor: impl Into<Vec<u8>>) -> PublishedRepo {
        self.trust_anchor = trust_anchor.into();
        self
    }

    /// All files, sorted by path.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Bytes of the root a client starts from (the oldest root version published).
    pub fn trust_anchor(&self) -> &[u8] {
        &self.trust_anchor
    }

    /// Bytes of the file at `path`.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// The file at `path` parsed as JSON.
    ///
    /// # Panics
    /// If there is no such file or it is not JSON.
    pub fn json(&self, path: &str) -> Value {
        let bytes = self
            .get(path)
            .unwrap_or_else(|| panic!("published repository has no {path}"));
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.to_owned(), bytes.into());
    }

    /// Removes a file.
    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.files.remove(path)
    }

    /// Adds every file of `newer`, replacing files with the same path (a repository that keeps
    /// old versioned files while publishing new ones). The trust anchor stays.
    pub fn merge(&mut self, newer: &PublishedRepo) {
        for (path, bytes) in &newer.files {
            self.files.insert(path.clone(), bytes.clone());
        }
    }

    /// The files as the map a [`crate::server::TestServer`] serves, each path under `prefix`
    /// (`""` for the server root, `"repo/"` for a sub-directory).
    pub fn server_map(&self, prefix: &str) -> HashMap<String, Vec<u8>> {
        self.files
            .iter()
            .map(|(path, bytes)| (format!("{prefix}{path}"), bytes.clone()))
            .collect()
    }

    /// [`PublishedRepo::server_map`] at the server root, shared for
    /// [`crate::server::TestServer::start`].
    pub fn shared(&self) -> FileMap {
        Arc::new(RwLock::new(self.server_map("")))
    }

    /// Writes every file under `dir` (creating directories).
    ///
    /// # Errors
    /// I/O errors, and `InvalidInput` for a path that is absolute or has `.`/`..`/empty
    /// components (hostile target paths are served, never written outside `dir`).
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        for (path, bytes) in &self.files {
            let dest = safe_join(dir, path)?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&dest, bytes)?;
        }
        Ok(())
    }
}

/// Characters python-tuf leaves unescaped in a role name (`urllib.parse.quote(name, "")`).
const ROLE_NAME_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// A role name as it appears in a metadata file name and URL (percent-encoded like python-tuf).
pub fn encode_role_name(name: &str) -> String {
    utf8_percent_encode(name, ROLE_NAME_ESCAPES).to_string()
}

fn meta_entry(version: u64, bytes: &[u8], options: MetaOptions) -> Value {
    let mut entry = json!({ "version": version });
    if options.length {
        entry["length"] = json!(bytes.len());
    }
    if options.hashes {
        entry["hashes"] = json!({"sha256": hex::encode(digest(&SHA256, bytes))});
    }
    entry
}

impl RepoBuilder {
    /// The URL path `role` is published at in its current version.
    pub fn metadata_path(&self, role: &str) -> String {
        match role {
            ROOT => format!("metadata/{}.root.json", self.root.version()),
            TIMESTAMP => "metadata/timestamp.json".to_owned(),
            _ if self.consistent_snapshot() => format!(
                "metadata/{}.{}.json",
                self.version(role),
                encode_role_name(role)
            ),
            _ => format!("metadata/{}.json", encode_role_name(role)),
        }
    }

    /// The URL paths the target `path` of `role` is served at (one per listed hash with
    /// consistent snapshots, else `targets/<path>`).
    pub fn target_urls(&self, role: &str, path: &str) -> Vec<String> {
        let Some(info) = self
            .doc(role)
            .signed
            .get("targets")
            .and_then(|t| t.get(path))
        else {
            return Vec::new();
        };
        if !self.consistent_snapshot() {
            return vec![format!("targets/{path}")];
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        info.get("hashes")
            .and_then(Value::as_object)
            .map(|hashes| {
                hashes
                    .values()
                    .filter_map(Value::as_str)
                    .map(|hash| format!("targets/{dir}{hash}.{name}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Signs every role and returns the files to serve.
    ///
    /// Root: every version as `metadata/N.root.json` (and `metadata/root.json` if asked).
    /// Targets roles: `metadata/N.<role>.json` (or `<role>.json` without consistent snapshots).
    /// Snapshot: `meta` lists every targets role over its served bytes. Timestamp: `meta` lists
    /// the snapshot. Target files whose bytes were given, at [`RepoBuilder::target_urls`].
    pub fn publish(&self) -> PublishedRepo {
        let mut files = BTreeMap::new();

        let mut roots: Vec<(u64, Vec<u8>)> = self
            .root_history
            .iter()
            .map(|frozen| {
                let bytes = match &frozen.raw_bytes {
                    Some(bytes) => bytes.clone(),
                    None => self.format.encode(&frozen.envelope),
                };
                (frozen.version, bytes)
            })
            .collect();
        roots.push((
            self.root.version(),
            self.render(ROOT, &self.root, None).bytes,
        ));
        for (version, bytes) in &roots {
            files.insert(format!("metadata/{version}.root.json"), bytes.clone());
        }
        let newest_root = roots.last().map(|r| r.1.clone()).unwrap_or_default();
        if self.serve_root_json {
            files.insert("metadata/root.json".to_owned(), newest_root);
        }
        let trust_anchor = roots.swap_remove(0).1;

        let mut snapshot_meta = Map::new();
        for (name, doc) in &self.roles {
            if name == TIMESTAMP || name == SNAPSHOT {
                continue;
            }
            let bytes = self.render(name, doc, None).bytes;
            snapshot_meta.insert(
                format!("{name}.json"),
                meta_entry(doc.version(), &bytes, self.snapshot_meta),
            );
            files.insert(self.metadata_path(name), bytes);
            for ((role, path), content) in self.target_files.range((name.clone(), String::new())..)
            {
                if role != name {
                    break;
                }
                for url in self.target_urls(role, path) {
                    files.insert(url, content.clone());
                }
            }
        }

        let mut timestamp_meta = Map::new();
        if let Some(doc) = self.roles.get(SNAPSHOT) {
            let bytes = self
                .render(SNAPSHOT, doc, Some(Value::Object(snapshot_meta)))
                .bytes;
            timestamp_meta.insert(
                "snapshot.json".to_owned(),
                meta_entry(doc.version(), &bytes, self.timestamp_meta),
            );
            files.insert(self.metadata_path(SNAPSHOT), bytes);
        }
        if let Some(doc) = self.roles.get(TIMESTAMP) {
            let bytes = self
                .render(TIMESTAMP, doc, Some(Value::Object(timestamp_meta)))
                .bytes;
            files.insert(self.metadata_path(TIMESTAMP), bytes);
        }

        PublishedRepo::new(files, trust_anchor)
    }
}

/// `dir/path` if `path` is a plain relative path.
fn safe_join(dir: &Path, path: &str) -> io::Result<PathBuf> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to write {path:?} outside the output directory"),
        )
    };
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return Err(invalid());
    }
    let relative = Path::new(path);
    if path.split('/').any(str::is_empty)
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(invalid());
    }
    Ok(dir.join(relative))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn write_to_refuses_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "../x",
            "/etc/x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "",
        ] {
            let mut repo = PublishedRepo::default();
            repo.insert(bad, b"x".to_vec());
            let err = repo.write_to(dir.path()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        let mut repo = PublishedRepo::default();
        repo.insert("metadata/1.a%2Fb.json", b"{}".to_vec());
        repo.write_to(dir.path()).unwrap();
        assert_eq!(
            fs::read(dir.path().join("metadata/1.a%2Fb.json")).unwrap(),
            b"{}"
        );
    }
}
