//! One mirrored repository: `[[repository]]` parsed into its types, with the rules
//! that involve only its own fields.

use std::fmt;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::{self, HumanDuration};
use crate::error::{ConfigError, Reason};
use crate::key_uri::KeyUri;
use crate::raw::{RawExpires, RawRepository};
use crate::schedule::{rfc3339, CronSchedule, GapError};
use crate::source::Source;
use crate::warning::ConfigWarning;
use crate::{path, DEFAULT_RESIGN, DEFAULT_SYNC, MAX_UPSTREAM_GRACE};

/// Default expiry of the mirror's root: 365 days.
pub const DEFAULT_ROOT_EXPIRY: Duration = Duration::from_secs(365 * 86_400);
/// Default expiry of the mirror's snapshot: 7 days.
pub const DEFAULT_SNAPSHOT_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// Default expiry of the mirror's timestamp: 1 day.
pub const DEFAULT_TIMESTAMP_EXPIRY: Duration = Duration::from_secs(86_400);

/// How long a superseded metadata version stays published by default: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// The longest span over which re-sign ticks are scanned for gaps: 366 days, so
/// that every month and weekday is seen.
const GAP_HORIZON: Duration = Duration::from_secs(366 * 86_400);
/// At most this many scan steps; with very short timestamp expiries the horizon
/// shrinks instead.
const GAP_MAX_STEPS: u32 = 20_000;

/// A mirrored repository.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Repository {
    /// Its name: the first path segment of what the mirror serves.
    pub name: RepositoryName,
    /// Where upstream metadata is read from.
    pub upstream_metadata: Source,
    /// Where upstream target files are read from; always set when `mirror_targets`.
    pub upstream_targets: Option<Source>,
    /// The upstream root the daemon trusts first (an absolute path).
    pub upstream_root: PathBuf,
    /// When to sync from upstream.
    pub sync: CronSchedule,
    /// When to re-sign the mirror's timestamp (and snapshot, root when due).
    pub resign: CronSchedule,
    /// Whether target files are copied and served by the mirror.
    pub mirror_targets: bool,
    /// How long past its expiry upstream metadata is still accepted; `None` = strict.
    pub upstream_grace: Option<Duration>,
    /// How long a superseded metadata version stays published ([`DEFAULT_RETENTION`],
    /// or the timestamp expiry when that is longer).
    pub retention: Duration,
    /// The mirror root's keys.
    pub root_keys: Vec<KeyUri>,
    /// How many root keys must sign the mirror root.
    pub root_threshold: NonZeroU64,
    /// The mirror snapshot's keys (each signs; threshold 1).
    pub snapshot_keys: Vec<KeyUri>,
    /// The mirror timestamp's keys (each signs; threshold 1).
    pub timestamp_keys: Vec<KeyUri>,
    /// Expiry periods of the mirror-signed roles.
    pub expires: Expiries,
}

/// How long mirror-signed metadata stays valid after it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expiries {
    /// The mirror root ([`DEFAULT_ROOT_EXPIRY`]).
    pub root: Duration,
    /// The mirror snapshot ([`DEFAULT_SNAPSHOT_EXPIRY`]).
    pub snapshot: Duration,
    /// The mirror timestamp ([`DEFAULT_TIMESTAMP_EXPIRY`]).
    pub timestamp: Duration,
}

/// A repository name: `[a-z0-9][a-z0-9._-]{0,62}`, safe as a path segment and a
/// URL segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// Checks the character set and length.
    pub(crate) fn parse(text: &str) -> Result<RepositoryName, String> {
        let bytes = text.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
        if first_ok && rest_ok && bytes.len() <= 63 {
            Ok(RepositoryName(text.to_string()))
        } else {
            Err(format!(
                "{text:?} is not a repository name: 1 to 63 of a-z, 0-9, \".\", \"_\", \"-\", \
                 starting with a letter or digit"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds errors and warnings for keys under one `repository[i]`.
pub(crate) struct Place<'a> {
    pub file: &'a Path,
    pub prefix: String,
}

impl Place<'_> {
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    fn error(&self, key: &str, reason: Reason) -> ConfigError {
        ConfigError::at(self.file, self.key(key), reason)
    }

    fn invalid(&self, key: &str) -> impl Fn(String) -> ConfigError + '_ {
        let key = self.key(key);
        move |message| ConfigError::at(self.file, key.clone(), Reason::Invalid(message))
    }
}

impl Repository {
    /// Stage two for one repository.
    pub(crate) fn from_raw(
        raw: RawRepository,
        place: &Place<'_>,
        now: DateTime<Utc>,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<Repository, ConfigError> {
        let name = RepositoryName::parse(&raw.name).map_err(place.invalid("name"))?;
        let upstream_metadata =
            Source::parse(&raw.upstream_metadata).map_err(place.invalid("upstream_metadata"))?;
        let mirror_targets = raw.mirror_targets.unwrap_or(true);
        let upstream_targets = match (raw.upstream_targets, mirror_targets) {
            (Some(text), _) => {
                Some(Source::parse(&text).map_err(place.invalid("upstream_targets"))?)
            }
            (None, false) => None,
            (None, true) => {
                return Err(place.error(
                    "upstream_targets",
                    Reason::Missing("required when mirror_targets is true (the default)".into()),
                ))
            }
        };
        let upstream_root =
            path::absolute(&raw.upstream_root).map_err(place.invalid("upstream_root"))?;
        let sync = schedule(
            raw.sync.as_deref().unwrap_or(DEFAULT_SYNC),
            "sync",
            place,
            warnings,
        )?;
        let resign = schedule(
            raw.resign.as_deref().unwrap_or(DEFAULT_RESIGN),
            "resign",
            place,
            warnings,
        )?;
        if sync.next_after(now.into()).is_none() {
            return Err(place.error("sync", Reason::ScheduleEnds { last: None }));
        }
        let upstream_grace = grace(raw.upstream_grace.as_deref(), place, warnings)?;

        let root_keys = keys(&raw.root_keys, "root_keys", place)?;
        let snapshot_keys = keys(&raw.snapshot_keys, "snapshot_keys", place)?;
        let timestamp_keys = keys(&raw.timestamp_keys, "timestamp_keys", place)?;
        if raw.root_threshold as u128 > root_keys.len() as u128 {
            let reason = Reason::ThresholdAboveKeys {
                threshold: raw.root_threshold,
                keys: root_keys.len(),
            };
            return Err(place.error("root_threshold", reason));
        }
        let root_threshold = NonZeroU64::new(raw.root_threshold).ok_or_else(|| {
            place.error(
                "root_threshold",
                Reason::Invalid("must be at least 1".into()),
            )
        })?;

        let expires = expiries(&raw.expires, place)?;
        check_resign_gap(&resign, expires.timestamp, place, now)?;
        let retention = match &raw.retention {
            None => DEFAULT_RETENTION.max(expires.timestamp),
            Some(text) => duration::parse(text).map_err(place.invalid("retention"))?,
        };
        // A client may use a timestamp until it expires, and with it the snapshot and
        // roles it names: those must still be there.
        if retention < expires.timestamp {
            let reason = Reason::RetentionBelowTimestamp {
                retention,
                timestamp: expires.timestamp,
            };
            return Err(place.error("retention", reason));
        }

        Ok(Repository {
            name,
            upstream_metadata,
            upstream_targets,
            upstream_root,
            sync,
            resign,
            mirror_targets,
            upstream_grace,
            retention,
            root_keys,
            root_threshold,
            snapshot_keys,
            timestamp_keys,
            expires,
        })
    }
}

fn schedule(
    text: &str,
    key: &str,
    place: &Place<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<CronSchedule, ConfigError> {
    let schedule = CronSchedule::parse(text).map_err(|reason| place.error(key, reason))?;
    if schedule.numeric_day_of_week() {
        warnings.push(ConfigWarning::new(
            place.file,
            place.key(key),
            "day-of-week numbers count from Sunday = 1 here (1-5 is Sunday to Thursday); \
             names such as Mon-Fri are clearer",
        ));
    }
    Ok(schedule)
}

fn grace(
    text: Option<&str>,
    place: &Place<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = text else { return Ok(None) };
    let grace = duration::parse(text).map_err(place.invalid("upstream_grace"))?;
    if grace > MAX_UPSTREAM_GRACE {
        let reason = Reason::GraceAboveCap {
            grace,
            cap: MAX_UPSTREAM_GRACE,
        };
        return Err(place.error("upstream_grace", reason));
    }
    if grace.is_zero() {
        return Ok(None);
    }
    warnings.push(ConfigWarning::new(
        place.file,
        place.key("upstream_grace"),
        format!(
            "upstream metadata up to {} past its expiry is accepted; a frozen upstream \
             goes unnoticed for that long",
            HumanDuration(grace)
        ),
    ));
    Ok(Some(grace))
}

fn keys(texts: &[String], key: &str, place: &Place<'_>) -> Result<Vec<KeyUri>, ConfigError> {
    if texts.is_empty() {
        return Err(place.error(
            key,
            Reason::Missing("at least one key URI is required".into()),
        ));
    }
    let mut out: Vec<KeyUri> = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let item = format!("{key}[{i}]");
        let uri = KeyUri::parse(text).map_err(place.invalid(&item))?;
        if let Some(first) = out.iter().position(|k| k.identity() == uri.identity()) {
            let reason = Reason::Duplicate {
                what: "key",
                first: place.key(&format!("{key}[{first}]")),
            };
            return Err(place.error(&item, reason));
        }
        out.push(uri);
    }
    Ok(out)
}

fn expiries(raw: &RawExpires, place: &Place<'_>) -> Result<Expiries, ConfigError> {
    let one =
        |text: &Option<String>, role: &str, default: Duration| -> Result<Duration, ConfigError> {
            let key = format!("expires.{role}");
            let Some(text) = text else { return Ok(default) };
            let value = duration::parse(text).map_err(place.invalid(&key))?;
            if value.is_zero() {
                return Err(place.error(
                    &key,
                    Reason::Invalid("an expiry must be longer than 0s".into()),
                ));
            }
            Ok(value)
        };
    let expires = Expiries {
        root: one(&raw.root, "root", DEFAULT_ROOT_EXPIRY)?,
        snapshot: one(&raw.snapshot, "snapshot", DEFAULT_SNAPSHOT_EXPIRY)?,
        timestamp: one(&raw.timestamp, "timestamp", DEFAULT_TIMESTAMP_EXPIRY)?,
    };
    // A client needs every role valid at once: a snapshot that expires before the
    // timestamp pointing at it (or a root before either) makes clients fail early.
    if expires.snapshot < expires.timestamp {
        let reason = Reason::ExpiryOrder {
            role: "snapshot",
            expiry: expires.snapshot,
            other_role: "timestamp",
            other: expires.timestamp,
        };
        return Err(place.error("expires.snapshot", reason));
    }
    if expires.root < expires.snapshot {
        let reason = Reason::ExpiryOrder {
            role: "root",
            expiry: expires.root,
            other_role: "snapshot",
            other: expires.snapshot,
        };
        return Err(place.error("expires.root", reason));
    }
    Ok(expires)
}

/// The timestamp must stay valid for two re-sign intervals: a client that fetched
/// it just before a tick still holds a valid one for a full interval, and one
/// missed or failed tick does not make clients fail.
fn check_resign_gap(
    resign: &CronSchedule,
    timestamp: Duration,
    place: &Place<'_>,
    now: DateTime<Utc>,
) -> Result<(), ConfigError> {
    let limit = timestamp / 2;
    // Gaps shorter than the step are not measured; they are within the limit.
    let step = Duration::from_secs(limit.as_secs().max(1));
    let horizon = GAP_HORIZON.min(step.saturating_mul(GAP_MAX_STEPS));
    match resign.longest_gap(now, horizon, step) {
        Ok(Some((gap, from))) if gap > limit => {
            let reason = Reason::TimestampTooShort {
                timestamp,
                gap,
                gap_start: rfc3339(from),
            };
            Err(place.error("expires.timestamp", reason))
        }
        Ok(_) => Ok(()),
        Err(GapError::Ends(last)) => Err(place.error(
            "resign",
            Reason::ScheduleEnds {
                last: last.map(rfc3339),
            },
        )),
    }
}
