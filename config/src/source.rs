//! Where an upstream repository is read from: an HTTP(S) base URL, or a directory
//! into which an operator drops what was carried into the site.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::path;

/// An upstream location for metadata or target files.
///
/// Written in the config as an `http://` or `https://` URL, a `file:` URL
/// (`file:/srv/import` or `file:///srv/import`), or an absolute path. Two spellings of
/// one place give equal values: URLs always end in `/` (so that joining a file name
/// keeps the last segment), paths never do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// A base URL; its path ends with `/`. Plain `http` is accepted because TUF
    /// metadata is signed and target files are checked against signed hashes.
    Http(Url),
    /// An absolute, normalised directory path.
    Dir(PathBuf),
}

impl Source {
    /// Parses a source as written in the config; the error is a reason for a message.
    pub(crate) fn parse(text: &str) -> Result<Source, String> {
        if text.starts_with('/') {
            return path::absolute(text).map(Source::Dir);
        }
        let url = Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => format!(
                "{text:?} is neither a URL nor an absolute path \
                 (write https://..., file:/dir or /dir)"
            ),
            other => format!("not a valid URL ({other})"),
        })?;
        match url.scheme() {
            "http" | "https" => http(url),
            "file" => dir(&url),
            other => Err(format!(
                "unsupported URL scheme {other:?}; use http, https, file or an absolute path"
            )),
        }
    }
}

fn http(mut url: Url) -> Result<Source, String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials in the URL are refused: secrets must not be in the config file".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL takes no query or fragment".into());
    }
    if !url.path().ends_with('/') {
        let with_slash = format!("{}/", url.path());
        url.set_path(&with_slash);
    }
    Ok(Source::Http(url))
}

fn dir(url: &Url) -> Result<Source, String> {
    if url
        .host_str()
        .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err("a file: URL must name a local directory (file:/dir or file:///dir)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a file: URL takes no query or fragment".into());
    }
    let path = url
        .to_file_path()
        .map_err(|()| "the file: URL does not name a local absolute path".to_string())?;
    path::normalise(&path).map(Source::Dir)
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(url) => write!(f, "{url}"),
            Source::Dir(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> Source {
        Source::Dir(PathBuf::from(p))
    }

    #[test]
    fn urls_are_normalised_to_end_in_a_slash() {
        let s = Source::parse("https://tuf.example/metadata").unwrap();
        assert_eq!(s.to_string(), "https://tuf.example/metadata/");
        assert_eq!(s, Source::parse("https://TUF.example/metadata/").unwrap());
        let root = Source::parse("http://tuf.example:8080").unwrap();
        assert_eq!(root.to_string(), "http://tuf.example:8080/");
    }

    #[test]
    fn directories_from_paths_and_file_urls_compare_equal() {
        assert_eq!(
            Source::parse("/srv/import/metadata/").unwrap(),
            dir("/srv/import/metadata")
        );
        assert_eq!(
            Source::parse("file:/srv/import/metadata").unwrap(),
            dir("/srv/import/metadata")
        );
        assert_eq!(
            Source::parse("file:///srv/import/metadata").unwrap(),
            dir("/srv/import/metadata")
        );
        assert_eq!(
            Source::parse("file://localhost/srv/x").unwrap(),
            dir("/srv/x")
        );
        assert_eq!(Source::parse("file:///srv/a%20b").unwrap(), dir("/srv/a b"));
    }

    #[test]
    fn refuses_relative_paths_other_schemes_and_secrets() {
        assert!(Source::parse("srv/import")
            .unwrap_err()
            .contains("neither a URL"));
        assert!(Source::parse("ftp://x/")
            .unwrap_err()
            .contains("unsupported URL scheme"));
        assert!(Source::parse("https://u:p@x/")
            .unwrap_err()
            .contains("credentials"));
        assert!(Source::parse("https://x/?a=b")
            .unwrap_err()
            .contains("no query"));
        assert!(Source::parse("file://otherhost/srv")
            .unwrap_err()
            .contains("local"));
        assert!(Source::parse("/srv/../etc").unwrap_err().contains(".."));
        assert!(Source::parse("https://").is_err());
    }
}
