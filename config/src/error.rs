//! The crate's one error type: a bad config stops start-up with one line naming the
//! file, the key and the reason.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration::HumanDuration;

/// A configuration error.
///
/// `Display` is one line: `FILE[:LINE:COLUMN]: KEY: REASON`, for example
/// `/etc/tuf-mirror/config.toml: repository[1].expires.timestamp: 1h is shorter than ...`.
/// Line and column (1-based) are given for TOML syntax and type errors. Keys are
/// written as TOML paths, with array indexes counted from 0. The I/O error behind
/// [`Reason::Read`] is the [`source`](std::error::Error::source), not part of the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error(transparent)]
pub struct ConfigError(Box<Inner>);

/// Boxed so that `Result<_, ConfigError>` stays small.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.headline())]
struct Inner {
    file: Option<PathBuf>,
    key: Option<String>,
    line_column: Option<(usize, usize)>,
    reason: Reason,
    #[source]
    source: Option<std::io::Error>,
}

/// What is wrong, without the file and key (see [`ConfigError`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The file could not be read (the cause is the error's source).
    Read,
    /// TOML syntax, a value of the wrong type, a missing or unknown key; the message
    /// is the TOML parser's.
    Toml(String),
    /// A value that does not parse or is not allowed (URL, path, duration, cron
    /// expression, key URI, name, address).
    Invalid(String),
    /// A cron expression with five fields, as in a crontab; this one needs seconds first.
    CronWithoutSeconds {
        /// The expression as written.
        expression: String,
    },
    /// `upstream_grace` above [`MAX_UPSTREAM_GRACE`](crate::MAX_UPSTREAM_GRACE).
    GraceAboveCap {
        /// The configured grace.
        grace: Duration,
        /// The cap.
        cap: Duration,
    },
    /// The timestamp would expire before the re-sign schedule renews it with margin.
    TimestampTooShort {
        /// The configured timestamp expiry.
        timestamp: Duration,
        /// The longest gap found between two consecutive re-sign ticks.
        gap: Duration,
        /// When that gap starts (RFC 3339, UTC).
        gap_start: String,
    },
    /// A schedule never fires, or stops firing (a year field in the past).
    ScheduleEnds {
        /// When it last fires, if it fires at all (RFC 3339, UTC).
        last: Option<String>,
    },
    /// An expiry shorter than one that must not outlive it.
    ExpiryOrder {
        /// The role whose expiry is too short (`snapshot`, `root`).
        role: &'static str,
        /// Its expiry.
        expiry: Duration,
        /// The role it must outlive.
        other_role: &'static str,
        /// That role's expiry.
        other: Duration,
    },
    /// `retention` shorter than the timestamp expiry.
    RetentionBelowTimestamp {
        /// The retention.
        retention: Duration,
        /// The timestamp expiry.
        timestamp: Duration,
    },
    /// `root_threshold` above the number of root keys.
    ThresholdAboveKeys {
        /// The threshold.
        threshold: u64,
        /// How many root keys are listed.
        keys: usize,
    },
    /// A value that must be unique appears twice; `first` is the key where it first appears.
    Duplicate {
        /// What is duplicated (`repository name`, `upstream`, `key`).
        what: &'static str,
        /// The key path of the first occurrence.
        first: String,
    },
    /// An online (snapshot or timestamp) key that is also a root key.
    RootKeyOnline {
        /// The key path where it is listed as a root key.
        root: String,
    },
    /// A key that must be set is absent (the TOML parser does not know it is needed).
    Missing(String),
}

impl ConfigError {
    /// An error in `file` at `key`.
    pub(crate) fn at(file: &Path, key: impl Into<String>, reason: Reason) -> ConfigError {
        ConfigError(Box::new(Inner {
            file: Some(file.to_path_buf()),
            key: Some(key.into()).filter(|k: &String| !k.is_empty()),
            line_column: None,
            reason,
            source: None,
        }))
    }

    /// An error about a value given on its own (no file, no key).
    pub(crate) fn bare(reason: Reason) -> ConfigError {
        ConfigError(Box::new(Inner {
            file: None,
            key: None,
            line_column: None,
            reason,
            source: None,
        }))
    }

    /// A file that could not be read.
    pub(crate) fn read(file: &Path, source: std::io::Error) -> ConfigError {
        let mut err = ConfigError::at(file, "", Reason::Read);
        err.0.source = Some(source);
        err
    }

    /// Adds the 1-based line and column.
    pub(crate) fn with_line_column(mut self, line: usize, column: usize) -> ConfigError {
        self.0.line_column = Some((line, column));
        self
    }

    /// The config file, when the error came from one.
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// The TOML key path (`repository[1].expires.timestamp`), when known.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// The 1-based line and column, for TOML syntax and type errors.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        self.0.line_column
    }

    /// What is wrong.
    pub fn reason(&self) -> &Reason {
        &self.0.reason
    }
}

impl Inner {
    fn headline(&self) -> String {
        let mut out = String::new();
        if let Some(file) = &self.file {
            out.push_str(&file.display().to_string());
            if let Some((line, column)) = self.line_column {
                out.push_str(&format!(":{line}:{column}"));
            }
            out.push_str(": ");
        }
        if let Some(key) = &self.key {
            out.push_str(key);
            out.push_str(": ");
        }
        out.push_str(&self.reason.to_string());
        // One line, whatever a parser put in its message.
        out.replace(['\n', '\r'], " ")
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |d: &Duration| HumanDuration(*d);
        match self {
            Reason::Read => f.write_str("cannot read the config file"),
            Reason::Toml(message) | Reason::Invalid(message) => f.write_str(message),
            Reason::CronWithoutSeconds { expression } => write!(
                f,
                "cron expression {expression:?} has 5 fields, as in a crontab; this one takes \
                 seconds first (6 or 7 fields): write \"0 {expression}\""
            ),
            Reason::GraceAboveCap { grace, cap } => write!(
                f,
                "{} is above the cap of {} (MAX_UPSTREAM_GRACE, the engine's limit)",
                h(grace),
                h(cap)
            ),
            Reason::TimestampTooShort { timestamp, gap, gap_start } => write!(
                f,
                "{} is shorter than twice the longest gap between re-sign ticks ({} from {gap_start}); \
                 set it to at least {} or make resign fire more often",
                h(timestamp),
                h(gap),
                h(&(*gap * 2))
            ),
            Reason::ScheduleEnds { last: None } => f.write_str("the schedule never fires"),
            Reason::ScheduleEnds { last: Some(last) } => {
                write!(f, "the schedule stops firing after {last}")
            }
            Reason::ExpiryOrder { role, expiry, other_role, other } => write!(
                f,
                "{role} expiry {} is shorter than {other_role} expiry {}; \
                 {role} must not expire before {other_role}",
                h(expiry),
                h(other)
            ),
            Reason::RetentionBelowTimestamp { retention, timestamp } => write!(
                f,
                "{} is shorter than the timestamp expiry {}: a client may use a timestamp \
                 until it expires, so what it names must stay published that long",
                h(retention),
                h(timestamp)
            ),
            Reason::ThresholdAboveKeys { threshold, keys } => write!(
                f,
                "threshold {threshold} is more than the {keys} root key(s) listed"
            ),
            Reason::Duplicate { what, first } => write!(f, "the same {what} as {first}"),
            Reason::RootKeyOnline { root } => write!(
                f,
                "the same key as {root}; a root key must not also be a snapshot or timestamp key"
            ),
            Reason::Missing(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_file_key_and_reason() {
        let err = ConfigError::at(
            Path::new("/etc/m.toml"),
            "repository[1].sync",
            Reason::Invalid("bad\nthing".into()),
        );
        assert_eq!(
            err.to_string(),
            "/etc/m.toml: repository[1].sync: bad thing"
        );
        let syntax = ConfigError::at(Path::new("/etc/m.toml"), "", Reason::Toml("x".into()))
            .with_line_column(3, 7);
        assert_eq!(syntax.to_string(), "/etc/m.toml:3:7: x");
        assert_eq!(
            ConfigError::bare(Reason::Invalid("y".into())).to_string(),
            "y"
        );
    }

    #[test]
    fn read_errors_keep_the_cause_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = ConfigError::read(Path::new("/etc/m.toml"), io);
        assert_eq!(err.to_string(), "/etc/m.toml: cannot read the config file");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "no such file");
    }
}
