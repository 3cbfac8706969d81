//! The daemon as a TUF client of one upstream repository: the engine in all-roles
//! mode, the upstream root as trust anchor, targets keys from that root, and the
//! repository's bounded grace; its trusted state (rollback protection) under
//! `<state_dir>/upstream/<repo>/trusted/`, and every upstream root version it ever
//! verified under `<state_dir>/upstream/<repo>/roots/` (the chain the mirror republishes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tuf_mirror_client::{
    DelegationMode, DirStore, Error as EngineError, ExpiryPolicy, FileTransport, HttpTransport,
    MetadataStore, RoleClass, Transport, Updater, UpdaterConfig,
};
use tuf_mirror_config::Source;
use url::Url;

/// Where a source's files are fetched from.
pub fn transport_for(source: &Source) -> Result<(Url, Arc<dyn Transport>), EngineError> {
    match source {
        Source::Http(url) => Ok((url.clone(), Arc::new(HttpTransport::default()))),
        Source::Dir(path) => {
            let url = Url::from_directory_path(path).map_err(|()| EngineError::Config {
                reason: format!("{} is not an absolute directory", path.display()),
            })?;
            Ok((url, Arc::new(FileTransport)))
        }
        other => Err(EngineError::Config {
            reason: format!("unsupported upstream source {other:?}"),
        }),
    }
}

/// The engine's store for the upstream, which also keeps each root version it is given
/// (the engine stores every root of the chain, in order, as it verifies them).
#[derive(Debug)]
pub struct ChainStore {
    trusted: DirStore,
    roots: PathBuf,
}

impl ChainStore {
    /// The stores of repository `repo` under `state_dir`.
    pub fn open(state_dir: &Path, repo: &str) -> Result<Self, EngineError> {
        let base = state_dir.join("upstream").join(repo);
        let roots = base.join("roots");
        std::fs::create_dir_all(&roots).map_err(|e| EngineError::Io {
            path: roots.clone(),
            source: e,
        })?;
        Ok(ChainStore {
            trusted: DirStore::new(base.join("trusted"))?,
            roots,
        })
    }

    /// Every upstream root version kept, oldest first.
    pub fn chain(&self) -> Result<Vec<(u64, Vec<u8>)>, EngineError> {
        let io = |e| EngineError::Io {
            path: self.roots.clone(),
            source: e,
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.roots).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = name
                .strip_suffix(".root.json")
                .and_then(|v| v.parse::<u64>().ok())
            {
                out.push((v, std::fs::read(entry.path()).map_err(io)?));
            }
        }
        out.sort_by_key(|(v, _)| *v);
        Ok(out)
    }
}

fn root_version(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v["signed"]["version"].as_u64()
}

impl MetadataStore for ChainStore {
    fn load(&self, role: &str) -> tuf_mirror_client::Result<Option<Vec<u8>>> {
        self.trusted.load(role)
    }

    fn store(&self, role: &str, bytes: &[u8]) -> tuf_mirror_client::Result<()> {
        if role == "root" {
            if let Some(v) = root_version(bytes) {
                let path = self.roots.join(format!("{v}.root.json"));
                crate::publish::write_current(&path, bytes).map_err(|e| EngineError::Io {
                    path,
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
        }
        self.trusted.store(role, bytes)
    }
}

/// The expiry policy for an upstream: strict, or the configured grace for every role
/// (stale imports arrive past their timestamp, and sometimes past snapshot and targets).
pub fn upstream_expiry(grace: Option<Duration>) -> Result<ExpiryPolicy, EngineError> {
    let mut p = ExpiryPolicy::strict();
    if let Some(g) = grace {
        for class in [
            RoleClass::Root,
            RoleClass::Timestamp,
            RoleClass::Snapshot,
            RoleClass::Targets,
        ] {
            p = p.dangerous_with_grace(class, g)?;
        }
    }
    Ok(p)
}

/// An engine on an upstream, resuming from its trusted state or starting from the
/// trust anchor file.
pub fn updater(
    metadata: &Source,
    anchor: &Path,
    store: Arc<ChainStore>,
    grace: Option<Duration>,
) -> Result<Updater, EngineError> {
    let (base, transport) = transport_for(metadata)?;
    let mut config = UpdaterConfig::new(base);
    config.mode = DelegationMode::All;
    config.expiry = upstream_expiry(grace)?;
    if store.load("root")?.is_some() {
        return Updater::new(config, transport, store);
    }
    let bytes = std::fs::read(anchor).map_err(|e| EngineError::Io {
        path: anchor.to_owned(),
        source: e,
    })?;
    // The anchor is root version 1 of the chain kept for republishing, unless the
    // operator started from a later version.
    let u = Updater::init(config, transport, store.clone(), &bytes)?;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_applies_to_every_role_and_stays_capped() {
        let p = upstream_expiry(Some(Duration::from_secs(3600))).unwrap();
        for c in [
            RoleClass::Root,
            RoleClass::Timestamp,
            RoleClass::Snapshot,
            RoleClass::Targets,
        ] {
            assert_eq!(p.grace(c), Duration::from_secs(3600));
        }
        assert!(upstream_expiry(Some(tuf_mirror_client::MAX_GRACE * 2)).is_err());
        assert_eq!(upstream_expiry(None).unwrap(), ExpiryPolicy::strict());
    }

    #[test]
    fn the_root_chain_is_kept_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ChainStore::open(tmp.path(), "r").unwrap();
        for v in [2u64, 1, 3] {
            let doc = format!(r#"{{"signed":{{"version":{v}}},"signatures":[]}}"#);
            s.store("root", doc.as_bytes()).unwrap();
        }
        let versions: Vec<u64> = s.chain().unwrap().into_iter().map(|(v, _)| v).collect();
        assert_eq!(versions, [1, 2, 3]);
        assert!(s
            .load("root")
            .unwrap()
            .unwrap()
            .starts_with(br#"{"signed":{"version":3"#));
    }
}
