//! How stale a client's view of a repository is: per role, its version, when it expires,
//! how long is left (or how long it is past expiry), the grace in force, since when the
//! client has seen this version, and who re-signs it.
//!
//! TUF metadata carries no signing time, so "how old" is what a client can observe: the
//! time left before expiry, and since when the version has not changed.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use url::Url;

use super::error::Party;

/// Whether a role may be used at the time of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Freshness {
    /// Before its expiry.
    Valid,
    /// Past its expiry, within the configured grace (each use is logged at warn level).
    InGrace,
    /// Past its expiry and any grace: refreshes fail until someone acts.
    Expired,
}

/// One role in a [`Staleness`] report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleStaleness {
    /// Role name.
    pub role: String,
    /// Who signs it, so who must re-sign it: [`Party::Mirror`] for root, timestamp and
    /// snapshot, [`Party::Upstream`] for targets and delegated roles.
    pub signer: Party,
    /// Version held.
    pub version: u64,
    /// Its expiry.
    pub expires: Timestamp,
    /// Time left before expiry; negative when past it.
    pub remaining: SignedDuration,
    /// The grace in force for it (zero: strict).
    pub grace: Duration,
    /// Valid, in grace, or expired.
    pub freshness: Freshness,
    /// Since when this client has held this version (the first refresh of this
    /// [`MirrorClient`](super::MirrorClient) that saw it); `None` before any refresh.
    pub unchanged_since: Option<Timestamp>,
}

/// A report of how old each role a client holds is: see [`MirrorClient::staleness`].
///
/// [`MirrorClient::staleness`]: super::MirrorClient::staleness
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Staleness {
    /// Repository.
    pub repository: String,
    /// The mirror used last.
    pub mirror: Url,
    /// The time the report was made for (the client's validation time).
    pub at: Timestamp,
    /// Root, timestamp, snapshot, targets (those held), then delegated roles held, by
    /// name.
    pub roles: Vec<RoleStaleness>,
}

impl Staleness {
    /// The role called `name`, if held.
    pub fn role(&self, name: &str) -> Option<&RoleStaleness> {
        self.roles.iter().find(|r| r.role == name)
    }

    /// The worst freshness over all roles held.
    pub fn worst(&self) -> Freshness {
        self.roles
            .iter()
            .map(|r| r.freshness)
            .max()
            .unwrap_or(Freshness::Valid)
    }
}

pub(crate) fn freshness(remaining: SignedDuration, grace: Duration) -> Freshness {
    if remaining.is_positive() {
        Freshness::Valid
    } else if remaining.unsigned_abs() < grace {
        Freshness::InGrace
    } else {
        Freshness::Expired
    }
}

fn human(d: SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{mins}m")
    } else {
        format!("{mins}m{}s", secs % 60)
    }
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "repository {} at {} (as of {}):",
            self.repository,
            self.mirror,
            self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        )?;
        for r in &self.roles {
            let left = if r.remaining.is_positive() {
                format!("{} left", human(r.remaining))
            } else {
                format!("expired {} ago", human(r.remaining))
            };
            let state = match r.freshness {
                Freshness::Valid => "valid",
                Freshness::InGrace => "IN GRACE",
                Freshness::Expired => "EXPIRED",
            };
            let signer = match r.signer {
                Party::Mirror => "mirror",
                _ => "upstream",
            };
            let since = r.unchanged_since.map_or_else(
                || "-".to_owned(),
                |t| format!("unchanged for {}", human(self.at.duration_since(t))),
            );
            writeln!(
                f,
                "  {:<12} v{:<6} {:<9} expires {} ({left}), signed by {signer}, {since}",
                r.role,
                r.version,
                state,
                r.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )?;
        }
        Ok(())
    }
}
