//! The daemon's repositories and what runs on them: sync (verify the upstream, mirror
//! its targets, publish) and re-sign, one cycle at a time per repository.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tuf_mirror_config::{Config, Repository};

use crate::clock::Clock;
use crate::cycle::{CycleError, Ledger, Memo, Mirror, Outcome, UpstreamView};
use crate::keyring::{load_checked, KeyringError};
use crate::mirror::MirrorKeys;
use crate::publish::Tree;
use crate::upstream::{updater, ChainStore};
use tuf_mirror_client::Updater;

/// Errors of a sync or re-sign, naming the repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The upstream could not be verified; nothing was published.
    #[error("repository {repo}: upstream")]
    Upstream {
        /// Repository.
        repo: String,
        /// Cause (role, file, key).
        #[source]
        source: Box<tuf_mirror_client::Error>,
    },
    /// A cycle failed; the served state is unchanged.
    #[error(transparent)]
    Cycle(#[from] CycleError),
    /// Keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// No such repository in the configuration.
    #[error("no repository named {0:?} in the configuration")]
    UnknownRepository(String),
    /// Target files could not be mirrored; nothing was published.
    #[error("repository {repo}: target files")]
    Targets {
        /// Repository.
        repo: String,
        /// Which targets and why.
        #[source]
        source: Box<crate::targets::TargetsError>,
    },
    /// A blocking task failed.
    #[error("repository {repo}: worker task failed: {reason}")]
    Task {
        /// Repository.
        repo: String,
        /// Why.
        reason: String,
    },
}

/// One repository of the daemon.
pub struct RepoRuntime {
    /// Configuration.
    pub repo: Repository,
    /// Its keys; `None` while a KMS or HSM that was unreachable at start-up has not
    /// been reached yet (the tree is served as it stands, each cycle tries again).
    keys: Mutex<Option<Arc<MirrorKeys>>>,
    chain: Arc<ChainStore>,
    tree: Tree,
    /// The last upstream state verified and published.
    view: Mutex<Option<UpstreamView>>,
    /// The engine on the upstream, kept between syncs so that a sync verifies and
    /// fetches only what changed.
    engine: Arc<Mutex<Option<Updater>>>,
    /// Roles (name, version) whose target files are all in the tree.
    mirrored: Arc<Mutex<HashSet<(String, u64)>>>,
    /// What its cycles keep between runs.
    memo: Memo,
    busy: tokio::sync::Mutex<()>,
}

/// Where repository trees are published: `<state_dir>/published/<repo>/`.
pub fn published_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("published")
}

/// The daemon's repositories, state and clock.
pub struct Service {
    repos: Vec<RepoRuntime>,
    ledger: Arc<dyn Ledger>,
    clock: Arc<dyn Clock>,
}

impl Service {
    /// Loads every repository's keys and stores (blocking: call at start-up).
    pub fn open(
        config: &Config,
        ledger: Arc<dyn Ledger>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServiceError> {
        let state_dir = &config.server.state_dir;
        let mut repos = Vec::new();
        for repo in &config.repositories {
            let name = repo.name.as_str();
            let chain = ChainStore::open(state_dir, name).map_err(|e| ServiceError::Upstream {
                repo: name.to_owned(),
                source: Box::new(e),
            })?;
            let tree = published_dir(state_dir).join(name);
            // A key that cannot be used stops start-up, with one exception: a KMS or
            // HSM that does not answer (retryable). The tree is then served as it
            // stands and each cycle tries the keys again, with the schedule's backoff.
            let keys = match load_checked(repo, &tree) {
                Ok(k) => Some(Arc::new(k)),
                Err(e) if keys_retryable(&e) => {
                    tracing::error!(
                        repo = name,
                        error = %display_chain(&e),
                        "signing keys unreachable: serving the published state as it is and trying again at each cycle"
                    );
                    None
                }
                Err(e) => return Err(e.into()),
            };
            repos.push(RepoRuntime {
                repo: repo.clone(),
                keys: Mutex::new(keys),
                chain: Arc::new(chain),
                tree: Tree::new(tree),
                view: Mutex::new(None),
                engine: Arc::new(Mutex::new(None)),
                mirrored: Arc::new(Mutex::new(HashSet::new())),
                memo: Memo::default(),
                busy: tokio::sync::Mutex::new(()),
            });
        }
        Ok(Service {
            repos,
            ledger,
            clock,
        })
    }

    /// The repositories.
    pub fn repos(&self) -> &[RepoRuntime] {
        &self.repos
    }

    fn runtime(&self, name: &str) -> Result<&RepoRuntime, ServiceError> {
        self.repos
            .iter()
            .find(|r| r.repo.name.as_str() == name)
            .ok_or_else(|| ServiceError::UnknownRepository(name.to_owned()))
    }

    /// The repository's keys, opened now if start-up could not reach them.
    async fn keys(&self, rt: &RepoRuntime) -> Result<Arc<MirrorKeys>, ServiceError> {
        if let Some(k) = rt
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(k);
        }
        let (repo, tree) = (rt.repo.clone(), rt.tree.dir().to_owned());
        let k = tokio::task::spawn_blocking(move || load_checked(&repo, &tree))
            .await
            .map_err(|e| ServiceError::Task {
                repo: rt.repo.name.as_str().to_owned(),
                reason: e.to_string(),
            })??;
        let k = Arc::new(k);
        tracing::info!(repo = rt.repo.name.as_str(), "signing keys reached");
        *rt.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(k.clone());
        Ok(k)
    }

    fn mirror<'a>(&'a self, rt: &'a RepoRuntime, keys: &'a MirrorKeys) -> Mirror<'a> {
        Mirror {
            repo: &rt.repo,
            tree: rt.tree.clone(),
            keys,
            ledger: &*self.ledger,
            clock: &*self.clock,
            memo: &rt.memo,
        }
    }

    /// Verifies the upstream of `name` (all roles), mirrors its target files when
    /// configured, and publishes a new mirror state over it. On any failure nothing is
    /// published and the previous state keeps being served.
    pub async fn sync(&self, name: &str) -> Result<Outcome, ServiceError> {
        let rt = self.runtime(name)?;
        let _busy = rt.busy.lock().await;
        let repo = rt.repo.clone();
        let chain = rt.chain.clone();
        let tree_dir = rt.tree.dir().to_owned();
        let (engine, mirrored) = (rt.engine.clone(), rt.mirrored.clone());
        let view = tokio::task::spawn_blocking(move || -> Result<UpstreamView, ServiceError> {
            let up_err = |e: tuf_mirror_client::Error| ServiceError::Upstream {
                repo: repo.name.as_str().to_owned(),
                source: Box::new(e),
            };
            let mut slot = engine
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let u = match slot.as_mut() {
                Some(u) => u,
                None => slot.insert(
                    updater(
                        &repo.upstream_metadata,
                        &repo.upstream_root,
                        chain.clone(),
                        repo.upstream_grace,
                    )
                    .map_err(up_err)?,
                ),
            };
            // A failed refresh leaves the engine holding only verified metadata: it is
            // kept, and the next sync goes on from there.
            u.refresh().map_err(up_err)?;
            if let (true, Some(src)) = (repo.mirror_targets, &repo.upstream_targets) {
                let mut done = mirrored
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let todo: Vec<_> = u
                    .roles()
                    .filter(|r| !done.contains(&(r.name.clone(), r.version)))
                    .cloned()
                    .collect();
                let consistent = u.root().signed.consistent_snapshot;
                let report = crate::targets::mirror_roles(
                    todo.iter().map(|r| &**r),
                    consistent,
                    src,
                    &tree_dir,
                    8,
                )
                .map_err(|e| ServiceError::Targets {
                    repo: repo.name.as_str().to_owned(),
                    source: Box::new(e),
                })?;
                done.extend(todo.iter().map(|r| (r.name.clone(), r.version)));
                tracing::info!(
                    repo = repo.name.as_str(),
                    roles = todo.len(),
                    ?report,
                    "target files mirrored"
                );
            }
            Ok(UpstreamView::of(u, chain.chain().map_err(up_err)?))
        })
        .await
        .map_err(|e| ServiceError::Task {
            repo: name.to_owned(),
            reason: e.to_string(),
        })?;
        let result = match view {
            Ok(view) => {
                let r = match self.keys(rt).await {
                    Ok(keys) => self
                        .mirror(rt, &keys)
                        .cycle(&view)
                        .await
                        .map_err(ServiceError::from),
                    Err(e) => Err(e),
                };
                if r.is_ok() {
                    *rt.view
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(view);
                }
                r
            }
            Err(e) => Err(e),
        };
        let now = self.clock.now();
        if let (Ok(o), Some(view)) = (
            &result,
            rt.view
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref(),
        ) {
            let detail = format!(
                "upstream root v{}, snapshot v{}, {} targets roles; mirror timestamp v{}",
                view.root_version,
                view.snapshot.as_ref().map_or(0, |(v, _)| *v),
                view.roles.len(),
                o.timestamp
            );
            if let Err(e) = self.ledger.audit(name, now, "import", &detail) {
                tracing::warn!(repo = name, error = %display_chain(&e), "import not recorded in the audit log");
            }
        }
        let error = result.as_ref().err().map(|e| display_chain(e));
        if let Some(msg) = &error {
            tracing::error!(repo = name, error = %msg, "sync failed; serving the last good state");
        }
        if let Err(e) = self.ledger.record_sync(name, now, error.as_deref()) {
            tracing::warn!(repo = name, error = %display_chain(&e), "sync history not recorded");
        }
        result
    }

    /// A re-sign tick for `name`: a new timestamp over the served state (and snapshot
    /// or root when they near expiry).
    pub async fn resign(&self, name: &str) -> Result<Outcome, ServiceError> {
        let rt = self.runtime(name)?;
        let _busy = rt.busy.lock().await;
        // A root handed in by the ceremony may follow an upstream targets-key rotation:
        // it is published with the last verified upstream state, not the served one.
        let view = if crate::ceremony::incoming_path(rt.tree.dir()).exists() {
            rt.view
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        } else {
            None
        };
        Ok(match view {
            Some(v) => {
                let keys = self.keys(rt).await?;
                self.mirror(rt, &keys).cycle(&v).await?
            }
            None => {
                let keys = self.keys(rt).await?;
                self.mirror(rt, &keys).resign().await?
            }
        })
    }
}

/// Whether a key failure may pass by itself (a KMS or HSM not answering), rather than
/// a key that cannot work (missing, unprotected, wrong PIN, not in the served root).
fn keys_retryable(e: &KeyringError) -> bool {
    e.key_error()
        .is_some_and(|k| k.kind() == tuf_mirror_keys::ErrorKind::Retryable)
}

/// An error with its causes, on one line.
pub fn display_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
