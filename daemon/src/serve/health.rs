//! What `/healthz` reports: per repository, the last sync, its error, the expiry of the
//! published timestamp and whether a new mirror root waits for offline signatures.
//!
//! The jobs that sync, re-sign and publish write it through a [`HealthHandle`]; the
//! HTTP server only reads it. Nothing here reads the clock: whoever updates a field
//! passes the time.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::watch;

/// The health of one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepoHealth {
    /// When the last successful sync finished.
    pub last_sync: Option<Timestamp>,
    /// Why the last sync failed, when it did (cleared by the next success).
    pub last_sync_error: Option<String>,
    /// The `expires` of the published mirror `timestamp.json`; `None` while nothing is
    /// published, which makes `/healthz` answer 503.
    pub timestamp_expires: Option<Timestamp>,
    /// The upstream rotated its targets keys and the mirror root that follows waits for
    /// the security team's signatures (DESIGN.md section 7).
    pub root_signature_needed: bool,
}

impl RepoHealth {
    /// Whether the repository has a published state that clients can use.
    pub fn is_published(&self) -> bool {
        self.timestamp_expires.is_some()
    }

    /// Whether something needs an operator: a failing sync or a root to sign.
    pub fn is_degraded(&self) -> bool {
        self.last_sync_error.is_some() || self.root_signature_needed
    }
}

/// The health of every repository, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Per repository.
    pub repositories: BTreeMap<String, RepoHealth>,
}

/// The overall verdict of [`Health::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Every repository is published and nothing needs an operator.
    Ok,
    /// Every repository is published, but a sync fails or a root waits for signatures.
    Degraded,
    /// Some repository has nothing published yet: clients of it would fail.
    Unavailable,
}

impl Health {
    /// The verdict over all repositories.
    pub fn status(&self) -> Status {
        let repos = self.repositories.values();
        if repos.clone().any(|r| !r.is_published()) {
            Status::Unavailable
        } else if repos.clone().any(RepoHealth::is_degraded) {
            Status::Degraded
        } else {
            Status::Ok
        }
    }

    /// The `/healthz` body: `{"status": "ok"|"degraded", "repositories": {..}}`, times
    /// in RFC 3339. An unavailable state also reads `degraded`; the 503 status code says
    /// the rest, and each repository's `published` says which.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Repo {
            published: bool,
            last_sync: Option<String>,
            last_sync_error: Option<String>,
            timestamp_expires: Option<String>,
            root_signature_needed: bool,
        }
        let repositories: BTreeMap<&str, Repo> = self
            .repositories
            .iter()
            .map(|(name, r)| {
                let repo = Repo {
                    published: r.is_published(),
                    last_sync: r.last_sync.map(|t| t.to_string()),
                    last_sync_error: r.last_sync_error.clone(),
                    timestamp_expires: r.timestamp_expires.map(|t| t.to_string()),
                    root_signature_needed: r.root_signature_needed,
                };
                (name.as_str(), repo)
            })
            .collect();
        let status = match self.status() {
            Status::Ok => "ok",
            Status::Degraded | Status::Unavailable => "degraded",
        };
        let mut attention = Vec::new();
        for (name, r) in &self.repositories {
            if r.root_signature_needed {
                attention.push(format!("root signature needed for repository {name}"));
            }
            if let Some(e) = &r.last_sync_error {
                attention.push(format!("sync failing for repository {name}: {e}"));
            }
            if !r.is_published() {
                attention.push(format!("nothing published yet for repository {name}"));
            }
        }
        serde_json::json!({ "status": status, "attention": attention, "repositories": repositories })
    }
}

/// Shared, cheaply cloned access to the [`Health`]: writers call [`HealthHandle::update`],
/// the server reads a copy per request, and [`HealthHandle::subscribe`] lets others
/// (a status command, metrics) follow changes.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    tx: Arc<watch::Sender<Health>>,
}

impl HealthHandle {
    /// A handle knowing `repos`, each with nothing published yet.
    pub fn new<I, S>(repos: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let repositories = repos
            .into_iter()
            .map(|name| (name.into(), RepoHealth::default()))
            .collect();
        HealthHandle {
            tx: Arc::new(watch::Sender::new(Health { repositories })),
        }
    }

    /// Changes one repository's record (adding it if it is new).
    pub fn update(&self, repo: &str, change: impl FnOnce(&mut RepoHealth)) {
        self.tx.send_modify(|h| {
            if let Some(r) = h.repositories.get_mut(repo) {
                change(r);
            } else {
                let mut r = RepoHealth::default();
                change(&mut r);
                h.repositories.insert(repo.to_owned(), r);
            }
        });
    }

    /// Drops a repository (removed from the configuration on reload).
    pub fn remove(&self, repo: &str) {
        self.tx
            .send_if_modified(|h| h.repositories.remove(repo).is_some());
    }

    /// A copy of the current state.
    pub fn get(&self) -> Health {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<Health> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn status_follows_the_worst_repository() {
        let h = HealthHandle::new(["a", "b"]);
        assert_eq!(h.get().status(), Status::Unavailable);
        h.update("a", |r| {
            r.timestamp_expires = Some(ts("2030-01-01T00:00:00Z"))
        });
        assert_eq!(h.get().status(), Status::Unavailable);
        h.update("b", |r| {
            r.timestamp_expires = Some(ts("2030-01-01T00:00:00Z"))
        });
        assert_eq!(h.get().status(), Status::Ok);
        h.update("b", |r| r.root_signature_needed = true);
        assert_eq!(h.get().status(), Status::Degraded);
        h.update("b", |r| r.root_signature_needed = false);
        h.update("a", |r| {
            r.last_sync_error = Some("upstream unreachable".into())
        });
        assert_eq!(h.get().status(), Status::Degraded);
        h.remove("a");
        assert_eq!(h.get().status(), Status::Ok);
        assert_eq!(
            HealthHandle::new(Vec::<String>::new()).get().status(),
            Status::Ok
        );
    }

    #[test]
    fn json_shape() {
        let h = HealthHandle::new(["r"]);
        h.update("r", |r| {
            r.last_sync = Some(ts("2026-11-30T12:00:00Z"));
            r.timestamp_expires = Some(ts("2026-12-01T12:00:00Z"));
        });
        let sub = h.subscribe();
        h.update("new", |r| r.last_sync_error = Some("bad signature".into()));
        h.update("r", |r| r.root_signature_needed = true);
        assert!(sub.has_changed().unwrap());
        assert_eq!(
            h.get().to_json(),
            serde_json::json!({
                "status": "degraded",
                "attention": [
                    "sync failing for repository new: bad signature",
                    "nothing published yet for repository new",
                    "root signature needed for repository r",
                ],
                "repositories": {
                    "new": {
                        "published": false,
                        "last_sync": null,
                        "last_sync_error": "bad signature",
                        "timestamp_expires": null,
                        "root_signature_needed": false,
                    },
                    "r": {
                        "published": true,
                        "last_sync": "2026-11-30T12:00:00Z",
                        "last_sync_error": null,
                        "timestamp_expires": "2026-12-01T12:00:00Z",
                        "root_signature_needed": true,
                    },
                },
            })
        );
    }
}
