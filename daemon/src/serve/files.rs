//! Answering `GET`/`HEAD` for one file of the tree: headers, conditional requests,
//! single byte ranges.
//!
//! Everything that touches the file system for one request (open, `fstat`, and the read
//! of a small file) runs in one `spawn_blocking` call, and a small file read whole is
//! kept a moment in the [`Cache`]. Files above [`SMALL`] are streamed in [`CHUNK`]
//! pieces instead of read whole.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::cache::{Cache, Hit};
use super::path::{resolve, Area, FileRequest, Freshness};
use super::{error_response, NOSNIFF};

/// Files up to this size are read in one go with the open and `fstat`.
const SMALL: u64 = 512 * 1024;
/// Read size when streaming a larger file.
const CHUNK: usize = 256 * 1024;

/// `Cache-Control` of versioned metadata and targets: their bytes never change.
pub(super) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of `timestamp.json` and `root.json`: caches may store them but must
/// ask again (cheaply, with the `ETag`) before each reuse.
pub(super) const REVALIDATE: &str = "no-cache";

/// The request headers that matter here, taken before the blocking call.
struct Conditions {
    head: bool,
    if_none_match: Option<String>,
    if_modified_since: Option<SystemTime>,
    range: Option<String>,
    if_range: Option<String>,
}

impl Conditions {
    fn new(method: &Method, headers: &HeaderMap) -> Self {
        let text = |name: HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Conditions {
            head: method == Method::HEAD,
            if_none_match: text(header::IF_NONE_MATCH),
            if_modified_since: text(header::IF_MODIFIED_SINCE)
                .and_then(|v| httpdate::parse_http_date(&v).ok()),
            range: text(header::RANGE),
            if_range: text(header::IF_RANGE),
        }
    }
}

/// What the blocking part found.
enum Outcome {
    Missing,
    NotModified(Arc<Meta>),
    /// The whole file or a range of it, read.
    Bytes(Arc<Meta>, Bytes, Option<(u64, u64)>),
    /// Headers only (HEAD), with the length and range a GET would send.
    Head(Arc<Meta>, Option<(u64, u64)>),
    /// A large file, positioned at the first byte to send, and how many to send.
    Stream(Arc<Meta>, File, u64, Option<(u64, u64)>),
    Unsatisfiable(Arc<Meta>),
}

/// What the response headers need from `fstat`, formatted once.
pub(super) struct Meta {
    len: u64,
    etag: HeaderValue,
    modified: Option<SystemTime>,
    last_modified: Option<HeaderValue>,
}

impl Meta {
    fn new(m: &Metadata) -> Self {
        // Inode, modification time to the nanosecond and length: a publish replaces
        // `timestamp.json` by rename (new inode), possibly within the same second and
        // with the same length.
        let etag = format!(
            "\"{:x}-{:x}{:09x}-{:x}\"",
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.len()
        );
        let modified = m.modified().ok();
        Meta {
            len: m.len(),
            // Hex digits, dashes and quotes: always a valid header value.
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            modified,
            last_modified: modified
                .and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()),
        }
    }

    #[cfg(test)]
    pub(super) fn for_test(len: u64) -> Self {
        Meta {
            len,
            etag: HeaderValue::from_static("\"t\""),
            modified: None,
            last_modified: None,
        }
    }
}

/// The file-serving side of the server: where the trees are, and the cache.
pub(super) struct Files {
    published: PathBuf,
    cache: Cache,
}

impl Files {
    pub(super) fn new(published: PathBuf, cache: Cache) -> Self {
        Files { published, cache }
    }
}

/// Answers a GET or HEAD of a path under a repository.
pub(super) async fn serve(
    files: &Files,
    method: &Method,
    headers: &HeaderMap,
    raw_path: &str,
) -> Response {
    let req = match resolve(raw_path) {
        Ok(req) => req,
        Err(reason) => {
            tracing::debug!(path = raw_path, reason, "refused");
            return error_response(StatusCode::NOT_FOUND, "not found");
        }
    };
    let cond = Conditions::new(method, headers);
    let base = files.published.join(&req.repo).join(req.area.dir());
    let key = base.join(&req.rel);
    let now = Instant::now();
    if cond.range.is_none() {
        if let Some(Hit { meta, bytes }) = files.cache.get(&key, now) {
            let outcome = if not_modified(&meta, req.freshness, &cond) {
                Outcome::NotModified(meta)
            } else if cond.head {
                Outcome::Head(meta, None)
            } else {
                Outcome::Bytes(meta, bytes, None)
            };
            return respond(&req, outcome);
        }
    }
    let job = {
        let req = req.clone();
        move || decide(&base, &req, &cond)
    };
    let outcome = match tokio::task::spawn_blocking(job).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err((path, error))) => {
            tracing::warn!(path = %path.display(), %error, "cannot read published file");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Err(error) => {
            tracing::error!(%error, "file task failed");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    if let Outcome::Bytes(meta, bytes, None) = &outcome {
        let hit = Hit {
            meta: meta.clone(),
            bytes: bytes.clone(),
        };
        files.cache.insert(key, hit, now);
    }
    respond(&req, outcome)
}

type Failure = (PathBuf, io::Error);

/// Opens the file (the spec form, then tough's), checks the conditions, reads it if small.
fn decide(base: &Path, req: &FileRequest, cond: &Conditions) -> Result<Outcome, Failure> {
    let Some((path, mut file, m)) = open(base, req)? else {
        return Ok(Outcome::Missing);
    };
    let meta = Arc::new(Meta::new(&m));
    if not_modified(&meta, req.freshness, cond) {
        return Ok(Outcome::NotModified(meta));
    }
    let range = match cond.range.as_deref() {
        Some(r) if range_applies(&meta, cond.if_range.as_deref()) => match parse_range(r, meta.len)
        {
            RangeSpec::One(start, end) => Some((start, end)),
            RangeSpec::Ignore => None,
            RangeSpec::Unsatisfiable => return Ok(Outcome::Unsatisfiable(meta)),
        },
        _ => None,
    };
    if cond.head {
        return Ok(Outcome::Head(meta, range));
    }
    let (start, count) = match range {
        Some((start, end)) => (start, end - start + 1),
        None => (0, meta.len),
    };
    let fail = |e| (path.clone(), e);
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(fail)?;
    }
    if count > SMALL {
        return Ok(Outcome::Stream(meta, file, count, range));
    }
    // `count` is at most SMALL, so the cast cannot truncate.
    let mut buf = Vec::with_capacity(count as usize);
    file.take(count).read_to_end(&mut buf).map_err(fail)?;
    if (buf.len() as u64) < count {
        // Truncated under us: never the case for the publisher's files, which are
        // replaced by rename, not rewritten.
        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while read");
        return Err((path, e));
    }
    Ok(Outcome::Bytes(meta, buf.into(), range))
}

/// Opens `rel`, or `alt` when `rel` is not there; `None` when neither is a regular file.
fn open(base: &Path, req: &FileRequest) -> Result<Option<(PathBuf, File, Metadata)>, Failure> {
    for rel in std::iter::once(&req.rel).chain(req.alt.as_ref()) {
        let path = base.join(rel);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err((path, e)),
        };
        let m = file.metadata().map_err(|e| (path.clone(), e))?;
        if m.is_file() {
            return Ok(Some((path, file, m)));
        }
        // A directory: never listed.
    }
    Ok(None)
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `If-None-Match` first (RFC 9110 section 13.2.2); `If-Modified-Since` only without it
/// and only for immutable files, since a file replaced twice within one second would
/// keep its HTTP date.
fn not_modified(meta: &Meta, freshness: Freshness, cond: &Conditions) -> bool {
    if let Some(inm) = &cond.if_none_match {
        return inm
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == meta.etag);
    }
    match (cond.if_modified_since, meta.modified, freshness) {
        (Some(since), Some(modified), Freshness::Immutable) => whole_seconds(modified) <= since,
        _ => false,
    }
}

/// `If-Range`: the range applies when the validator matches (strong comparison).
fn range_applies(meta: &Meta, if_range: Option<&str>) -> bool {
    match if_range {
        None => true,
        Some(v) if v.starts_with('"') => v.as_bytes() == meta.etag.as_bytes(),
        Some(v) => match (httpdate::parse_http_date(v), meta.modified) {
            (Ok(date), Some(modified)) => whole_seconds(modified) == date,
            _ => false,
        },
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    /// First and last byte, inclusive.
    One(u64, u64),
    /// Not one well-formed byte range: answer with the whole file.
    Ignore,
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); several ranges or anything malformed get the
/// whole file, which RFC 9110 section 14.2 allows.
fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    match (first.is_empty(), num(first), num(last)) {
        (true, _, Some(suffix)) => {
            if suffix == 0 || len == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::One(len.saturating_sub(suffix), len - 1)
            }
        }
        (false, Some(start), end) if last.is_empty() || end.is_some() => {
            if start >= len {
                return RangeSpec::Unsatisfiable;
            }
            match end {
                Some(end) if end < start => RangeSpec::Ignore,
                Some(end) => RangeSpec::One(start, end.min(len - 1)),
                None => RangeSpec::One(start, len - 1),
            }
        }
        _ => RangeSpec::Ignore,
    }
}

fn respond(req: &FileRequest, outcome: Outcome) -> Response {
    let (status, meta, body, length, range) = match outcome {
        Outcome::Missing => return error_response(StatusCode::NOT_FOUND, "not found"),
        Outcome::NotModified(meta) => (StatusCode::NOT_MODIFIED, meta, Body::empty(), None, None),
        Outcome::Unsatisfiable(meta) => {
            let mut r = error_response(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.len)) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Outcome::Head(meta, range) => {
            let n = range.map_or(meta.len, |(s, e)| e - s + 1);
            (partial(range), meta, Body::empty(), Some(n), range)
        }
        Outcome::Bytes(meta, bytes, range) => {
            let n = bytes.len() as u64;
            (partial(range), meta, Body::from(bytes), Some(n), range)
        }
        Outcome::Stream(meta, file, count, range) => {
            let reader = tokio::fs::File::from_std(file).take(count);
            let body = Body::from_stream(ReaderStream::with_capacity(reader, CHUNK));
            (partial(range), meta, body, Some(count), range)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    let content_type = match req.area {
        Area::Metadata | Area::Upstream => "application/json",
        Area::Targets => "application/octet-stream",
    };
    let cache = match req.freshness {
        Freshness::Immutable => IMMUTABLE,
        Freshness::Revalidate => REVALIDATE,
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, meta.etag.clone());
    if let Some(v) = &meta.last_modified {
        h.insert(header::LAST_MODIFIED, v.clone());
    }
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if let Some((start, end)) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", meta.len)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

fn partial(range: Option<(u64, u64)>) -> StatusCode {
    if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        use RangeSpec::*;
        for (value, want) in [
            ("bytes=0-0", One(0, 0)),
            ("bytes=0-9", One(0, 9)),
            ("bytes=2-", One(2, 9)),
            ("bytes=5-100", One(5, 9)),
            ("bytes=-3", One(7, 9)),
            ("bytes=-30", One(0, 9)),
            ("bytes=10-", Unsatisfiable),
            ("bytes=10-12", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=3-1", Ignore),
            ("bytes=0-1,4-5", Ignore),
            ("bytes=a-b", Ignore),
            ("bytes=+1-2", Ignore),
            ("bytes=-", Ignore),
            ("items=0-1", Ignore),
            ("", Ignore),
        ] {
            assert_eq!(parse_range(value, 10), want, "{value}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn validators() {
        let meta = Meta {
            len: 3,
            etag: HeaderValue::from_static("\"1-2-3\""),
            modified: Some(UNIX_EPOCH + Duration::new(1000, 5)),
            last_modified: None,
        };
        let cond = |inm: Option<&str>, ims: Option<u64>| Conditions {
            head: false,
            if_none_match: inm.map(str::to_owned),
            if_modified_since: ims.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            range: None,
            if_range: None,
        };
        let imm = Freshness::Immutable;
        assert!(not_modified(&meta, imm, &cond(Some("\"1-2-3\""), None)));
        assert!(not_modified(
            &meta,
            imm,
            &cond(Some("\"x\", W/\"1-2-3\""), None)
        ));
        assert!(not_modified(&meta, imm, &cond(Some("*"), None)));
        assert!(!not_modified(&meta, imm, &cond(Some("\"x\""), Some(2000))));
        assert!(not_modified(&meta, imm, &cond(None, Some(1000))));
        assert!(!not_modified(&meta, imm, &cond(None, Some(999))));
        assert!(!not_modified(
            &meta,
            Freshness::Revalidate,
            &cond(None, Some(2000))
        ));
        assert!(range_applies(&meta, None));
        assert!(range_applies(&meta, Some("\"1-2-3\"")));
        assert!(!range_applies(&meta, Some("\"other\"")));
        assert!(range_applies(
            &meta,
            Some(&httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(1000)
            ))
        ));
        assert!(!range_applies(&meta, Some("garbage")));
    }
}
