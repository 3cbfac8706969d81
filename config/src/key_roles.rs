//! Which roles a key may hold, across all repositories.
//!
//! - A root key must never be a snapshot or timestamp key, in any repository: the
//!   online keys live on the daemon's host, and a root key there would let whoever
//!   takes the host rewrite the mirror's root. Refused.
//! - One key for snapshot and timestamp of a repository is allowed (both are
//!   online, on the same host, so separating them buys little) but warned about.
//! - Sharing keys of one role between repositories is allowed: a security team may
//!   well sign every mirror root with the same HSM keys.
//! - A key listed twice in one role is refused where the list is parsed, since it
//!   would count twice towards a threshold.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{ConfigError, Reason};
use crate::repository::Repository;
use crate::warning::ConfigWarning;

/// Applies the rules above; `repositories[i]` is `repository[i]` in the file.
pub(crate) fn check(
    repositories: &[Repository],
    file: &Path,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    let mut roots: HashMap<String, String> = HashMap::new();
    for (i, repo) in repositories.iter().enumerate() {
        for (j, key) in repo.root_keys.iter().enumerate() {
            roots
                .entry(key.identity())
                .or_insert_with(|| format!("repository[{i}].root_keys[{j}]"));
        }
    }
    for (i, repo) in repositories.iter().enumerate() {
        let online = [
            ("snapshot_keys", &repo.snapshot_keys),
            ("timestamp_keys", &repo.timestamp_keys),
        ];
        for (list, keys) in online {
            for (j, key) in keys.iter().enumerate() {
                if let Some(root) = roots.get(&key.identity()) {
                    let reason = Reason::RootKeyOnline { root: root.clone() };
                    return Err(ConfigError::at(
                        file,
                        format!("repository[{i}].{list}[{j}]"),
                        reason,
                    ));
                }
            }
        }
        for (j, key) in repo.timestamp_keys.iter().enumerate() {
            if let Some(k) = repo
                .snapshot_keys
                .iter()
                .position(|s| s.identity() == key.identity())
            {
                warnings.push(ConfigWarning::new(
                    file,
                    format!("repository[{i}].timestamp_keys[{j}]"),
                    format!(
                        "the same key as repository[{i}].snapshot_keys[{k}]; allowed, but separate \
                         keys let either be rotated alone"
                    ),
                ));
            }
        }
    }
    Ok(())
}
