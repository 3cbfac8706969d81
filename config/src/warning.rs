//! Things a valid config does that an operator should hear about at start-up.

use std::fmt;
use std::path::{Path, PathBuf};

/// A warning about a config that loads: the daemon logs each at warn level.
///
/// `Display` is one line, `FILE: KEY: MESSAGE`, like [`ConfigError`](crate::ConfigError).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// The config file.
    pub file: PathBuf,
    /// The TOML key path.
    pub key: String,
    /// What to look at.
    pub message: String,
}

impl ConfigWarning {
    pub(crate) fn new(file: &Path, key: String, message: impl Into<String>) -> ConfigWarning {
        ConfigWarning {
            file: file.to_path_buf(),
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}
