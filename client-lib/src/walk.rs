//! Delegations: the lookup walk of TUF 5.6.7 and the all-roles load of a mirror.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::names::{check_target_path, role_matches, succinct_bin_for, succinct_bin_name};
use crate::trusted::TrustedTargets;
use crate::updater::{LoadedRole, TargetInfo, Updater};

impl Updater {
    /// TUF 5.6.7: finds `path` by a pre-order depth-first walk of the delegations
    /// that are trusted for it, loading roles as needed. `Ok(None)` when no role
    /// visited lists it.
    pub fn target_info(&mut self, path: &str) -> Result<Option<TargetInfo>> {
        check_target_path(path)?;
        if !self.roles.contains_key("targets") {
            self.refresh()?;
        }
        let max = self.config.limits.max_lookup_roles;
        let mut to_visit: Vec<(String, Option<Arc<TrustedTargets>>)> =
            vec![("targets".to_owned(), None)];
        let mut visited: HashSet<String> = HashSet::new();
        while visited.len() <= max {
            let Some((name, parent)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&name) {
                continue;
            }
            let role = self.load_targets(&name, parent.as_ref())?;
            if let Some(t) = role.targets.get(path) {
                return Ok(Some(TargetInfo {
                    path: path.to_owned(),
                    length: t.length,
                    hashes: t.hashes.clone(),
                    custom: t.custom.as_ref().map(|c| c.get().to_owned()),
                    role: name,
                }));
            }
            visited.insert(name);
            let Some(d) = &role.delegations else {
                continue;
            };
            let mut children = Vec::new();
            if let Some(s) = &d.succinct {
                children.push(succinct_bin_for(s, path));
            } else {
                for r in &d.roles {
                    if role_matches(r, path) {
                        children.push(r.name.clone());
                        if r.terminating {
                            // 5.6.7.2.1: do not backtrack past a terminating role.
                            to_visit.clear();
                            break;
                        }
                    }
                }
            }
            to_visit.extend(children.into_iter().rev().map(|c| (c, Some(role.clone()))));
        }
        if !to_visit.is_empty() {
            tracing::debug!(
                path,
                left = to_visit.len(),
                max,
                "delegation walk stopped at the role limit"
            );
        }
        Ok(None)
    }

    /// Loads and verifies every delegated role reachable from targets, level by
    /// level, fetching in parallel. A role reached from several delegators is
    /// verified against each. Unchanged roles are kept from memory.
    pub(crate) fn load_all_roles(&mut self) -> Result<()> {
        let Some(top) = self.roles.get("targets").cloned() else {
            return Err(Error::Config {
                reason: "all-roles load before targets".into(),
            });
        };
        let mut seen: HashSet<String> = HashSet::from(["targets".to_owned()]);
        let mut level = vec![top];
        while !level.is_empty() {
            // Edges (child, parent) of this level, in delegation order.
            let mut edges: Vec<(String, Arc<TrustedTargets>)> = Vec::new();
            for parent in &level {
                let Some(d) = &parent.delegations else {
                    continue;
                };
                if let Some(s) = &d.succinct {
                    let bins = 1u64 << s.bit_length;
                    if (seen.len() as u64).saturating_add(bins)
                        > self.config.limits.max_roles as u64
                    {
                        return Err(Error::TooManyRoles {
                            role: parent.name.clone(),
                            limit: self.config.limits.max_roles,
                        });
                    }
                    edges.extend((0..bins).map(|i| (succinct_bin_name(s, i), parent.clone())));
                } else {
                    edges.extend(d.roles.iter().map(|r| (r.name.clone(), parent.clone())));
                }
            }
            // Children already loaded in this walk only need the extra edge checked.
            let mut todo = Vec::new();
            let mut next = Vec::new();
            let mut extra_edges = Vec::new();
            for (child, parent) in edges {
                if seen.contains(&child) {
                    // A cycle or a second delegator: its signature is checked against
                    // this delegator too, once the role is loaded.
                    extra_edges.push((child, parent));
                    continue;
                }
                seen.insert(child.clone());
                if seen.len() > self.config.limits.max_roles {
                    return Err(Error::TooManyRoles {
                        role: parent.name.clone(),
                        limit: self.config.limits.max_roles,
                    });
                }
                let reusable = self.roles.get(&child).is_some_and(|r| {
                    self.snapshot
                        .as_ref()
                        .and_then(|s| s.role_meta(&child))
                        .is_some_and(|m| r.matches_meta(m))
                        && self.edges.contains(&(child.clone(), parent.id))
                });
                if reusable {
                    next.push(self.load_targets(&child, Some(&parent))?);
                } else {
                    todo.push((child, parent));
                }
            }
            for (child, parent, loaded) in self.fetch_parallel(todo)? {
                next.push(self.admit(child, parent.id, loaded));
            }
            for (child, parent) in extra_edges {
                self.load_targets(&child, Some(&parent))?;
            }
            level = next;
        }
        // Roles no longer delegated are dropped from memory.
        self.roles.retain(|name, _| seen.contains(name));
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn fetch_parallel(
        &self,
        todo: Vec<(String, Arc<TrustedTargets>)>,
    ) -> Result<Vec<(String, Arc<TrustedTargets>, LoadedRole)>> {
        if todo.is_empty() {
            return Ok(Vec::new());
        }
        let snapshot = self.snapshot.as_ref().ok_or_else(|| Error::Config {
            reason: "all-roles load before snapshot".into(),
        })?;
        let one = |(child, parent): &(String, Arc<TrustedTargets>)| -> Result<LoadedRole> {
            let meta = snapshot
                .role_meta(child)
                .ok_or_else(|| Error::NotInSnapshot {
                    role: child.clone(),
                    snapshot_version: snapshot.version,
                    reason: "delegated but not listed",
                })?;
            self.fetch_role(child, Some(parent), meta)
        };
        let workers = self.config.workers.clamp(1, 64).min(todo.len());
        let results: Vec<Mutex<Option<Result<LoadedRole>>>> =
            todo.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = todo.get(i) else {
                        break;
                    };
                    let r = one(item);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(todo.len());
        for ((child, parent), slot) in todo.into_iter().zip(results) {
            let r = slot
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match r {
                Some(Ok(loaded)) => out.push((child, parent, loaded)),
                Some(Err(e)) => return Err(e),
                // Not reached because an earlier item failed; that error is returned.
                None => continue,
            }
        }
        Ok(out)
    }
}
