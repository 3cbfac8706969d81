//! The configuration file of the tuf-mirror daemon.
//!
//! A TOML file is read in two stages, as ripgrep reads its arguments: serde turns
//! the text into plain raw structs that refuse unknown keys, and that is converted
//! once into a typed [`Config`] (URLs, paths, cron schedules, durations, key URIs,
//! non-zero thresholds) where the rules between fields are checked. Any error stops
//! start-up with one line naming the file, the TOML key and the reason; nothing is
//! silently defaulted. `docs/configuration.md` documents every option and
//! `config/example.toml` is a complete, tested example.
//!
//! ```
//! let text = r#"
//! [server]
//! state_dir = "/var/lib/tuf-mirror"
//!
//! [[repository]]
//! name = "internal"
//! upstream_metadata = "https://tuf.internal.example/metadata/"
//! upstream_targets = "https://tuf.internal.example/targets/"
//! upstream_root = "/etc/tuf-mirror/internal/root.json"
//! root_keys = ["file:/etc/tuf-mirror/keys/root.pem"]
//! root_threshold = 1
//! snapshot_keys = ["file:/etc/tuf-mirror/keys/snapshot.pem"]
//! timestamp_keys = ["file:/etc/tuf-mirror/keys/timestamp.pem"]
//! "#;
//! let config = tuf_mirror_config::Config::from_str_at(text, "/etc/tuf-mirror/config.toml")?;
//! assert_eq!(config.repositories[0].name.as_str(), "internal");
//! assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
//!
//! let bad = text.replace("root_threshold = 1", "root_threshold = 2");
//! let err = tuf_mirror_config::Config::from_str_at(&bad, "/etc/tuf-mirror/config.toml").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "/etc/tuf-mirror/config.toml: repository[0].root_threshold: \
//!      threshold 2 is more than the 1 root key(s) listed"
//! );
//! # Ok::<(), tuf_mirror_config::ConfigError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod duration;
mod error;
mod key_roles;
mod key_uri;
mod kms;
mod path;
mod pkcs11;
mod raw;
mod repository;
mod schedule;
mod server;
mod source;
mod warning;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

pub use duration::{parse_duration, HumanDuration, MAX_DURATION};
pub use error::{ConfigError, Reason};
pub use key_uri::{AwsKmsKey, KeyUri, Pkcs11Key};
pub use repository::{
    Expiries, Repository, RepositoryName, DEFAULT_RETENTION, DEFAULT_ROOT_EXPIRY,
    DEFAULT_SNAPSHOT_EXPIRY, DEFAULT_TIMESTAMP_EXPIRY,
};
pub use schedule::CronSchedule;
pub use server::{LogFormat, Server, DEFAULT_LISTEN};
pub use source::Source;
pub use warning::ConfigWarning;

/// The longest `upstream_grace`: 90 days, the verification engine's own cap
/// (`tuf_mirror_client::MAX_GRACE`), so a config the daemon accepts never fails later.
pub const MAX_UPSTREAM_GRACE: Duration = Duration::from_secs(90 * 86_400);

/// `sync` when not set: every 15 minutes. Cheap when nothing changed upstream (one
/// small timestamp fetch), and an imported bundle is picked up within 15 minutes.
pub const DEFAULT_SYNC: &str = "0 */15 * * * *";

/// `resign` when not set: hourly, on the hour. With the default 1-day timestamp
/// expiry, what clients see always has at least 23 hours left.
pub const DEFAULT_RESIGN: &str = "0 0 * * * *";

/// A loaded, checked configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The file it was read from (as given), for messages.
    pub file: PathBuf,
    /// `[server]`.
    pub server: Server,
    /// `[[repository]]`, in file order; names are unique.
    pub repositories: Vec<Repository>,
    /// What the operator should be told at start-up; the daemon logs each at warn.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::read(path, e))?;
        Config::from_str_at(&text, path)
    }

    /// Parses and checks `text`; `path` is only used in messages. Schedules are
    /// checked from the current time.
    pub fn from_str_at(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::from_str_at_time(text, path, SystemTime::now())
    }

    /// Like [`Config::from_str_at`], with the schedules checked from `now`: the
    /// longest gap between re-sign ticks is looked for over the 366 days after it.
    pub fn from_str_at_time(
        text: &str,
        path: impl AsRef<Path>,
        now: SystemTime,
    ) -> Result<Config, ConfigError> {
        let file = path.as_ref();
        let raw = raw::parse(text).map_err(|(key, message, offset)| {
            let err = ConfigError::at(file, key, Reason::Toml(message));
            match offset {
                Some(offset) => {
                    let (line, column) = raw::line_column(text, offset);
                    err.with_line_column(line, column)
                }
                None => err,
            }
        })?;
        let now: DateTime<Utc> = now.into();
        let mut warnings = Vec::new();
        let server = Server::from_raw(raw.server, file)?;
        if raw.repository.is_empty() {
            let reason = Reason::Missing("at least one [[repository]] is required".into());
            return Err(ConfigError::at(file, "repository", reason));
        }
        let mut repositories: Vec<Repository> = Vec::with_capacity(raw.repository.len());
        let mut names: HashMap<RepositoryName, usize> = HashMap::new();
        let mut upstreams: HashMap<Source, usize> = HashMap::new();
        for (i, raw_repo) in raw.repository.into_iter().enumerate() {
            let place = repository::Place {
                file,
                prefix: format!("repository[{i}]"),
            };
            let repo = Repository::from_raw(raw_repo, &place, now, &mut warnings)?;
            if let Some(first) = names.insert(repo.name.clone(), i) {
                let reason = Reason::Duplicate {
                    what: "repository name",
                    first: format!("repository[{first}].name"),
                };
                return Err(ConfigError::at(file, place.key("name"), reason));
            }
            // Two repositories fed from one upstream would race on its bundles and
            // its rollback state, and publish the same content twice.
            if let Some(first) = upstreams.insert(repo.upstream_metadata.clone(), i) {
                let reason = Reason::Duplicate {
                    what: "upstream",
                    first: format!("repository[{first}].upstream_metadata"),
                };
                return Err(ConfigError::at(
                    file,
                    place.key("upstream_metadata"),
                    reason,
                ));
            }
            repositories.push(repo);
        }
        key_roles::check(&repositories, file, &mut warnings)?;
        Ok(Config {
            file: file.to_path_buf(),
            server,
            repositories,
            warnings,
        })
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.iter().find(|r| r.name.as_str() == name)
    }
}
