//! What the engine enforces besides signatures: size limits, expiry (with an
//! opt-in, bounded grace), and the time it validates at.

use std::time::Duration;

use jiff::Timestamp;

use crate::error::{Error, Result};

/// The longest expiry grace the engine accepts for any role: 90 days.
///
/// A grace lets metadata be used after its signer said it must not be. It exists
/// for air-gapped sites whose upstream copies arrive rarely; past three months the
/// freeze protection that expiry gives would be gone in all but name.
pub const MAX_GRACE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Size limits in bytes per role, used when signed metadata lists no length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Each root version.
    pub root: u64,
    /// timestamp.json.
    pub timestamp: u64,
    /// snapshot.json.
    pub snapshot: u64,
    /// targets.json and each delegated role.
    pub targets: u64,
    /// Root versions fetched in one refresh.
    pub max_root_updates: u32,
    /// Roles visited by one target lookup (lazy mode), as python-tuf's `max_delegations`.
    pub max_lookup_roles: usize,
    /// Roles loaded in all-roles mode.
    pub max_roles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root: 1 << 20,
            timestamp: 64 << 10,
            snapshot: 16 << 20,
            targets: 32 << 20,
            max_root_updates: 256,
            max_lookup_roles: 32,
            max_roles: 1 << 20,
        }
    }
}

/// Which class of role an expiry rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleClass {
    /// root.
    Root,
    /// timestamp.
    Timestamp,
    /// snapshot.
    Snapshot,
    /// targets and every delegated targets role.
    Targets,
}

/// Expiry rules per role class: strict unless a grace is set with
/// [`ExpiryPolicy::dangerous_with_grace`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryPolicy {
    root: Duration,
    timestamp: Duration,
    snapshot: Duration,
    targets: Duration,
    /// Named in the warning logged for each use of a grace.
    repository: Option<std::sync::Arc<str>>,
}

impl ExpiryPolicy {
    /// Every role must be unexpired at the validation time (the TUF default).
    pub fn strict() -> Self {
        Self::default()
    }

    /// Accepts metadata of `class` up to `grace` after it expired.
    ///
    /// **This weakens freeze protection**: an attacker (or a stale mirror) may keep
    /// serving that role for `grace` after its signer meant it to stop. Each use is
    /// logged at warn level with the role, how long past expiry it is and the
    /// repository (see [`ExpiryPolicy::for_repository`]). `grace` is capped at
    /// [`MAX_GRACE`].
    pub fn dangerous_with_grace(mut self, class: RoleClass, grace: Duration) -> Result<Self> {
        if grace > MAX_GRACE {
            return Err(Error::Config {
                reason: format!(
                    "expiry grace of {} s for {class:?} exceeds the cap of {} s",
                    grace.as_secs(),
                    MAX_GRACE.as_secs()
                ),
            });
        }
        *self.slot(class) = grace;
        Ok(self)
    }

    /// Names the repository this policy is for in the warning logged for each use of a
    /// grace, so that a site with several repositories sees which one runs on stale
    /// metadata.
    pub fn for_repository(mut self, name: &str) -> Self {
        self.repository = Some(name.into());
        self
    }

    /// The repository named by [`ExpiryPolicy::for_repository`].
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }

    /// The grace for a class.
    pub fn grace(&self, class: RoleClass) -> Duration {
        match class {
            RoleClass::Root => self.root,
            RoleClass::Timestamp => self.timestamp,
            RoleClass::Snapshot => self.snapshot,
            RoleClass::Targets => self.targets,
        }
    }

    fn slot(&mut self, class: RoleClass) -> &mut Duration {
        match class {
            RoleClass::Root => &mut self.root,
            RoleClass::Timestamp => &mut self.timestamp,
            RoleClass::Snapshot => &mut self.snapshot,
            RoleClass::Targets => &mut self.targets,
        }
    }

    /// TUF 5.3.10, 5.4.4, 5.5.6, 5.6.6: freeze protection, with the grace if any.
    pub fn check(
        &self,
        class: RoleClass,
        role: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        if now < expires {
            return Ok(());
        }
        let grace = self.grace(class);
        let late = now.duration_since(expires).unsigned_abs();
        if late < grace {
            tracing::warn!(
                role,
                repository = self.repository.as_deref().unwrap_or(""),
                expired_at = %expires,
                seconds_past_expiry = late.as_secs(),
                grace_secs = grace.as_secs(),
                "using expired metadata within the configured grace"
            );
            return Ok(());
        }
        Err(Error::Expired {
            role: role.to_owned(),
            expires: expires.to_string(),
            grace_secs: grace.as_secs(),
        })
    }
}

/// The time metadata is validated at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ValidationTime {
    /// The wall clock, read once at the start of each refresh.
    #[default]
    Now,
    /// A fixed instant (tests, audits of old states).
    At(Timestamp),
}

impl ValidationTime {
    /// The instant to validate at. The only place the engine reads the wall clock.
    pub fn resolve(self) -> Timestamp {
        match self {
            ValidationTime::Now => Timestamp::now(),
            ValidationTime::At(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_opt_in_bounded_and_per_class() {
        let exp: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let hour_late: Timestamp = "2030-01-01T01:00:00Z".parse().unwrap();
        let strict = ExpiryPolicy::strict();
        assert!(strict.check(RoleClass::Targets, "t", exp, exp).is_err());
        assert!(strict
            .check(RoleClass::Targets, "t", exp, hour_late)
            .is_err());
        let p = ExpiryPolicy::strict()
            .dangerous_with_grace(RoleClass::Targets, Duration::from_secs(7200))
            .unwrap();
        assert!(p.check(RoleClass::Targets, "t", exp, hour_late).is_ok());
        assert!(p.check(RoleClass::Snapshot, "s", exp, hour_late).is_err());
        let p2 = ExpiryPolicy::strict()
            .dangerous_with_grace(RoleClass::Targets, Duration::from_secs(3600))
            .unwrap();
        assert!(p2.check(RoleClass::Targets, "t", exp, hour_late).is_err());
        assert!(ExpiryPolicy::strict()
            .dangerous_with_grace(RoleClass::Targets, MAX_GRACE + Duration::from_secs(1))
            .is_err());
    }
}
