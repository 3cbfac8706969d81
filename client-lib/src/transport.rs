//! Fetching bytes: HTTP(S) and local directories, behind one trait.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// A byte stream from a transport.
pub type ByteStream = Box<dyn Read + Send>;

/// Fetches a URL. Implementations must be usable from several threads at once.
pub trait Transport: Send + Sync {
    /// Opens `url` for reading. A missing file is [`Error::NotFound`]; any other
    /// failure to reach it is [`Error::Fetch`]. Callers enforce size limits.
    fn fetch(&self, url: &Url) -> Result<ByteStream>;

    /// The size of what `fetch` will return, when known cheaply (a local file): lets
    /// readers allocate once. Never trusted as a limit.
    fn size_hint(&self, _url: &Url) -> Option<u64> {
        None
    }
}

/// Reads at most `limit` bytes of `url`; one more byte is [`Error::TooLarge`]
/// (protection against endless data).
pub fn fetch_limited(t: &dyn Transport, url: &Url, limit: u64) -> Result<Vec<u8>> {
    let stream = t.fetch(url)?;
    let mut buf = Vec::with_capacity(t.size_hint(url).map_or(8192, |n| n.min(limit) as usize + 1));
    stream
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::Fetch {
            url: url.to_string(),
            source: Box::new(e),
        })?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    Ok(buf)
}

/// `file://` URLs: a directory an operator dropped a repository copy into.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileTransport;

impl Transport for FileTransport {
    fn size_hint(&self, url: &Url) -> Option<u64> {
        Some(std::fs::metadata(url.to_file_path().ok()?).ok()?.len())
    }

    fn fetch(&self, url: &Url) -> Result<ByteStream> {
        let path = url.to_file_path().map_err(|()| Error::Fetch {
            url: url.to_string(),
            source: "not a local file URL".into(),
        })?;
        match File::open(&path) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                url: url.to_string(),
            }),
            Err(e) => Err(Error::Fetch {
                url: url.to_string(),
                source: Box::new(e),
            }),
        }
    }
}

/// HTTP(S) with one pooled agent; also serves `file://` URLs.
#[derive(Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").finish_non_exhaustive()
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl HttpTransport {
    /// A transport whose connections and reads time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout * 10))
            .http_status_as_error(false)
            .build();
        HttpTransport {
            agent: config.into(),
        }
    }
}

impl Transport for HttpTransport {
    fn size_hint(&self, url: &Url) -> Option<u64> {
        (url.scheme() == "file")
            .then(|| FileTransport.size_hint(url))
            .flatten()
    }

    fn fetch(&self, url: &Url) -> Result<ByteStream> {
        if url.scheme() == "file" {
            return FileTransport.fetch(url);
        }
        let resp = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| Error::Fetch {
                url: url.to_string(),
                source: Box::new(e),
            })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(Box::new(resp.into_body().into_reader())),
            403 | 404 => Err(Error::NotFound {
                url: url.to_string(),
            }),
            _ => Err(Error::Fetch {
                url: url.to_string(),
                source: format!("HTTP status {status}").into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_transport_limits_and_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"0123456789").unwrap();
        let base = Url::from_directory_path(dir.path()).unwrap();
        let url = base.join("a.json").unwrap();
        assert_eq!(fetch_limited(&FileTransport, &url, 10).unwrap().len(), 10);
        assert!(matches!(
            fetch_limited(&FileTransport, &url, 9),
            Err(Error::TooLarge { limit: 9, .. })
        ));
        assert!(matches!(
            fetch_limited(&FileTransport, &base.join("b.json").unwrap(), 9),
            Err(Error::NotFound { .. })
        ));
    }
}
