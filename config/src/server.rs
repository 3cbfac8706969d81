//! `[server]`: what the daemon listens on and where it keeps its state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Reason};
use crate::path;
use crate::raw::RawServer;

/// The address the daemon listens on unless `listen` is set: loopback only, so a
/// fresh install is not reachable from the network until the operator says so, on
/// an unprivileged port so the service needs no capability to bind it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Settings of the daemon as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Server {
    /// The HTTP listen address.
    pub listen: SocketAddr,
    /// The directory holding the state store and the published tree (absolute).
    pub state_dir: PathBuf,
    /// How logs are written.
    pub log_format: LogFormat,
}

/// The log format (`log_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (the default: journald adds the time and unit).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Server {
    /// Stage two for `[server]`.
    pub(crate) fn from_raw(raw: RawServer, file: &Path) -> Result<Server, ConfigError> {
        let invalid = |key: &str| {
            let key = format!("server.{key}");
            move |message: String| ConfigError::at(file, key, Reason::Invalid(message))
        };
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse().map_err(|_| {
            invalid("listen")(format!(
                "{listen_text:?} is not an IP address and port (such as 127.0.0.1:8080 or [::]:8080)"
            ))
        })?;
        let state_dir = path::absolute(&raw.state_dir).map_err(invalid("state_dir"))?;
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid("log_format")(format!(
                    "{other:?} is not text or json"
                )))
            }
        };
        Ok(Server {
            listen,
            state_dir,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(listen: Option<&str>, state_dir: &str, log_format: Option<&str>) -> RawServer {
        RawServer {
            listen: listen.map(String::from),
            state_dir: state_dir.into(),
            log_format: log_format.map(String::from),
        }
    }

    #[test]
    fn defaults() {
        let server =
            Server::from_raw(raw(None, "/var/lib/tuf-mirror", None), Path::new("/c")).unwrap();
        assert_eq!(server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(server.log_format, LogFormat::Text);
    }

    #[test]
    fn refusals_name_the_key() {
        let file = Path::new("/c.toml");
        let err = Server::from_raw(raw(Some("localhost:80"), "/s", None), file).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/c.toml: server.listen: \"localhost:80\" is not an IP"));
        let err = Server::from_raw(raw(None, "state", None), file).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/c.toml: server.state_dir: \"state\" is not an absolute path"));
        let err = Server::from_raw(raw(None, "/s", Some("xml")), file).unwrap_err();
        assert_eq!(err.key(), Some("server.log_format"));
        let ipv6 = Server::from_raw(raw(Some("[::]:8443"), "/s", Some("json")), file).unwrap();
        assert_eq!(ipv6.log_format, LogFormat::Json);
    }
}
