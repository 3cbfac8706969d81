//! `tuf-mirror bundle export`: the key bundle a site's security team hands to clients,
//! written from what the daemon serves.
//!
//! Only the published tree is read (no state store, no keys), so an export works while
//! the daemon runs. Per repository:
//!
//! - the mirror root: the newest one served (`metadata/root.json`). Clients start from
//!   it and chain forward through the newer versions the mirror publishes later;
//! - the pins: the targets keys and threshold that root lists, which are the upstream's
//!   own key objects, copied verbatim by the daemon;
//! - the upstream root: the newest upstream root served (`upstream/<N>.root.json`), for
//!   upstream-anchored clients;
//! - the mirror URLs: `<base><repo>/` for each base URL given (default
//!   `http://<listen>/`);
//! - the policy given (no grace unless asked for).

use std::path::{Path, PathBuf};

use tuf_mirror_client::bundle::{
    pins_from_root, render, BundleError, ClientPolicy, RepositoryExport,
};
use tuf_mirror_config::Config;
use url::Url;

use crate::service::published_dir;

/// Why a bundle could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The configuration has no repository of that name.
    #[error("no repository {name:?} in the configuration")]
    UnknownRepository {
        /// The name asked for.
        name: String,
    },
    /// The repository has nothing published yet.
    #[error("repository {repo}: nothing published at {} (run tuf-mirror init or sync first)", path.display())]
    NotPublished {
        /// Repository.
        repo: String,
        /// The file looked for.
        path: PathBuf,
    },
    /// A served file could not be read.
    #[error("repository {repo}: cannot read {}", path.display())]
    Read {
        /// Repository.
        repo: String,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The served mirror root does not give pins.
    #[error("repository {repo}: the served mirror root {}: {reason}", path.display())]
    Root {
        /// Repository.
        repo: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No mirror URL was given and the listen address is not one clients can use.
    #[error(
        "the daemon listens on {listen}, which clients cannot connect to: give the URL they \
         reach the mirror at with --mirror-url"
    )]
    NoMirrorUrl {
        /// The listen address.
        listen: std::net::SocketAddr,
    },
    /// A mirror URL cannot be a base URL.
    #[error("mirror URL {url}: {reason}")]
    MirrorUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The bundle built would be refused by clients.
    #[error("the bundle built is invalid")]
    Bundle(#[source] BundleError),
}

/// The default mirror base URL: `http://<listen>/`, unless the daemon listens on an
/// unspecified address (`0.0.0.0`, `[::]`).
pub fn default_base(config: &Config) -> Result<Url, ExportError> {
    let listen = config.server.listen;
    if listen.ip().is_unspecified() {
        return Err(ExportError::NoMirrorUrl { listen });
    }
    Url::parse(&format!("http://{listen}/")).map_err(|e| ExportError::MirrorUrl {
        url: listen.to_string(),
        reason: e.to_string(),
    })
}

/// The bundle for `repo` (or every repository) of `config`, with the repository URLs
/// `<base><repo>/` for each of `bases`, and `policy` for every repository.
pub fn export_bundle(
    config: &Config,
    repo: Option<&str>,
    bases: &[Url],
    policy: &ClientPolicy,
    comment: Option<&str>,
    out: &Path,
) -> Result<Vec<u8>, ExportError> {
    let names: Vec<&str> = match repo {
        Some(name) => {
            config
                .repository(name)
                .ok_or_else(|| ExportError::UnknownRepository {
                    name: name.to_owned(),
                })?;
            vec![name]
        }
        None => config
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect(),
    };
    let published = published_dir(&config.server.state_dir);
    struct Loaded {
        name: String,
        mirrors: Vec<Url>,
        root: Vec<u8>,
        keys: Vec<(String, String)>,
        threshold: u64,
        upstream_root: Option<Vec<u8>>,
        next: Option<(Vec<(String, String)>, u64)>,
    }
    let mut loaded = Vec::with_capacity(names.len());
    for name in names {
        let tree = published.join(name);
        let root_path = tree.join("metadata/root.json");
        let root = match std::fs::read(&root_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ExportError::NotPublished {
                    repo: name.to_owned(),
                    path: root_path,
                })
            }
            Err(source) => {
                return Err(ExportError::Read {
                    repo: name.to_owned(),
                    path: root_path,
                    source,
                })
            }
        };
        let (keys, threshold) = pins_from_root(&root).map_err(|reason| ExportError::Root {
            repo: name.to_owned(),
            path: root_path.clone(),
            reason,
        })?;
        let mut mirrors = Vec::with_capacity(bases.len());
        for base in bases {
            mirrors.push(repo_url(base, name)?);
        }
        let next = next_pins(&config.server.state_dir, name, &keys, threshold);
        loaded.push(Loaded {
            name: name.to_owned(),
            mirrors,
            root,
            keys,
            threshold,
            upstream_root: newest_upstream_root(&tree.join("upstream"), name)?,
            next,
        });
    }
    let repos: Vec<RepositoryExport<'_>> = loaded
        .iter()
        .map(|l| RepositoryExport {
            name: &l.name,
            mirrors: &l.mirrors,
            mirror_root: &l.root,
            targets_keys: l.keys.clone(),
            threshold: l.threshold,
            next_targets_keys: l.next.clone(),
            upstream_root: l.upstream_root.as_deref(),
            policy: policy.clone(),
        })
        .collect();
    render(comment, &repos, out).map_err(ExportError::Bundle)
}

/// When the newest upstream root the daemon verified lists other targets keys than the
/// served mirror root (a rotation the mirror root has not followed yet), those keys: the
/// bundle then pins both sets, and its clients keep working across the change.
fn next_pins(
    state_dir: &Path,
    repo: &str,
    current: &[(String, String)],
    threshold: u64,
) -> Option<(Vec<(String, String)>, u64)> {
    let (_, path) = crate::ceremony::newest_upstream_root(state_dir, repo)?;
    let bytes = std::fs::read(path).ok()?;
    let (keys, t) = pins_from_root(&bytes).ok()?;
    fn ids(k: &[(String, String)]) -> Vec<&String> {
        let mut v: Vec<&String> = k.iter().map(|(id, _)| id).collect();
        v.sort();
        v
    }
    (ids(&keys) != ids(current) || t != threshold).then_some((keys, t))
}

/// `<base><repo>/`.
fn repo_url(base: &Url, repo: &str) -> Result<Url, ExportError> {
    let bad = |reason: String| ExportError::MirrorUrl {
        url: base.to_string(),
        reason,
    };
    if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
        return Err(bad("not a base URL (no query or fragment)".into()));
    }
    let base = tuf_mirror_client::dir_url(base.clone());
    base.join(&format!("{repo}/"))
        .map_err(|e| bad(e.to_string()))
}

/// The highest `<N>.root.json` in the upstream directory, if any.
fn newest_upstream_root(dir: &Path, repo: &str) -> Result<Option<Vec<u8>>, ExportError> {
    let read_err = |path: PathBuf, source| ExportError::Read {
        repo: repo.to_owned(),
        path,
        source,
    };
    match crate::ceremony::newest_root_in(dir).map_err(|e| read_err(dir.to_owned(), e))? {
        None => Ok(None),
        Some((_, path)) => std::fs::read(&path)
            .map(Some)
            .map_err(|e| read_err(path, e)),
    }
}
