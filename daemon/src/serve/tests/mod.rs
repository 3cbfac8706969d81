//! The server on 127.0.0.1:0 over a temporary published tree. Requests are written by
//! hand on a TCP socket, so that paths reach the server exactly as written (no client
//! normalizes `..` or re-encodes `%2F` here); one test uses ureq as a real client.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::files::{IMMUTABLE, REVALIDATE};
use super::*;

mod lifecycle;

const H: &str = "7ac4b6a8a6cbb3e1c3c70fa0b1e3d0d4d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3";
const TIMESTAMP: &str = r#"{"signed":{"_type":"timestamp","version":7}}"#;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `<tmp>/published/r/...` as the publisher lays it out, and a secret beside it.
fn tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("published");
    write(tmp.path(), "secret", b"SECRET");
    write(&p, "secret", b"SECRET");
    write(&p, "r/metadata/1.root.json", b"{\"root\":1}");
    write(&p, "r/metadata/root.json", b"{\"root\":1}");
    write(&p, "r/metadata/timestamp.json", TIMESTAMP.as_bytes());
    write(&p, "r/metadata/2.snapshot.json", b"{\"snapshot\":2}");
    write(&p, "r/metadata/3.targets.json", b"{\"targets\":3}");
    write(&p, "r/metadata/1.a%2Fb.json", b"{\"role\":\"a/b\"}");
    write(&p, "r/metadata/1.a%2Ab.json", b"{\"role\":\"a*b\"}");
    write(&p, "r/metadata/.tmp-x1y2", b"half-written");
    write(&p, "r/upstream/1.root.json", b"{\"upstream root\":1}");
    write(
        &p,
        "r/upstream/4.snapshot.json",
        b"{\"upstream snapshot\":4}",
    );
    write(
        &p,
        "r/upstream/timestamp.json",
        b"{\"upstream timestamp\":9}",
    );
    write(
        &p,
        &format!("r/targets/releases/{H}.app-1.0.tar.gz"),
        b"app 1.0",
    );
    write(&p, &format!("r/targets/{H}.README.txt"), b"readme");
    write(&p, &format!("r/targets/a b/{H}.c d"), b"spaces");
    tmp
}

struct TestServer {
    addr: SocketAddr,
    health: HealthHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    async fn start(tmp: &tempfile::TempDir) -> Self {
        Self::start_with(tmp, |_| {}).await
    }

    async fn start_with(tmp: &tempfile::TempDir, tune: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config =
            ServeConfig::new("127.0.0.1:0".parse().unwrap(), tmp.path().join("published"));
        tune(&mut config);
        let server = bind(config).await.unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let health = HealthHandle::new(["r"]);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(health.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            health,
            stop: Some(stop),
            task,
        }
    }

    /// Triggers shutdown; the returned handle completes when `run` returns.
    fn shutdown(&mut self) -> &mut JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        &mut self.task
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    async fn send(&self, raw: &str) -> Reply {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        Reply::parse(&buf)
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(buf: &[u8]) -> Self {
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
        let head = std::str::from_utf8(&buf[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        Reply {
            status,
            headers,
            body: buf[end + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn assert_not_found(&self, what: &str) {
        assert_eq!(self.status, 404, "{what}: {self:?}");
        assert_eq!(self.text(), r#"{"error":"not found"}"#, "{what}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn metadata_and_upstream_files_with_their_headers() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for (path, body, cache) in [
        ("/r/metadata/timestamp.json", TIMESTAMP, REVALIDATE),
        ("/r/metadata/root.json", "{\"root\":1}", REVALIDATE),
        ("/r/metadata/1.root.json", "{\"root\":1}", IMMUTABLE),
        ("/r/metadata/2.snapshot.json", "{\"snapshot\":2}", IMMUTABLE),
        ("/r/metadata/3.targets.json", "{\"targets\":3}", IMMUTABLE),
        (
            "/r/upstream/1.root.json",
            "{\"upstream root\":1}",
            IMMUTABLE,
        ),
        (
            "/r/upstream/4.snapshot.json",
            "{\"upstream snapshot\":4}",
            IMMUTABLE,
        ),
        (
            "/r/upstream/timestamp.json",
            "{\"upstream timestamp\":9}",
            REVALIDATE,
        ),
        ("/r/metadata/timestamp.json?x=1", TIMESTAMP, REVALIDATE),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), body, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(r.header("cache-control"), Some(cache), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(&*body.len().to_string()),
            "{path}"
        );
        assert!(
            r.header("etag").is_some_and(|e| e.starts_with('"')),
            "{path}"
        );
        assert!(
            r.header("last-modified")
                .is_some_and(|d| d.ends_with(" GMT")),
            "{path}"
        );
    }
    s.get("/r/upstream/root.json")
        .await
        .assert_not_found("no upstream root.json");
    s.get("/r/metadata/4.snapshot.json")
        .await
        .assert_not_found("missing version");
}

#[tokio::test]
async fn targets_in_the_spec_form_and_in_tough_form() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for path in [
        format!("/r/targets/releases/{H}.app-1.0.tar.gz"),
        format!("/r/targets/{H}.releases/app-1.0.tar.gz"),
    ] {
        let r = s.get(&path).await;
        assert_eq!((r.status, r.text()), (200, "app 1.0"), "{path}");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let r = s.get(&format!("/r/targets/{H}.README.txt")).await;
    assert_eq!((r.status, r.text()), (200, "readme"));
    let r = s.get(&format!("/r/targets/a%20b/{H}.c%20d")).await;
    assert_eq!((r.status, r.text()), (200, "spaces"));
    let r = s.get(&format!("/r/targets/{H}.a%20b/c%20d")).await;
    assert_eq!((r.status, r.text()), (200, "spaces"));
    s.get("/r/targets/releases/app-1.0.tar.gz")
        .await
        .assert_not_found("no hash prefix");
    s.get("/r/targets/releases")
        .await
        .assert_not_found("a directory");
    s.get("/r/targets/releases/")
        .await
        .assert_not_found("a directory, slash");
}

#[tokio::test]
async fn encoded_role_names_are_the_literal_file_names() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for (path, body) in [
        ("/r/metadata/1.a%2Fb.json", "{\"role\":\"a/b\"}"),
        ("/r/metadata/1.a%2fb.json", "{\"role\":\"a/b\"}"),
        ("/r/metadata/1.a%2Ab.json", "{\"role\":\"a*b\"}"),
        ("/r/metadata/1.a*b.json", "{\"role\":\"a*b\"}"),
    ] {
        let r = s.get(path).await;
        assert_eq!((r.status, r.text()), (200, body), "{path}");
        assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
    }
    // An unencoded slash is a path, not a role name.
    s.get("/r/metadata/1.a/b.json")
        .await
        .assert_not_found("raw slash");
}

#[tokio::test]
async fn nothing_outside_the_repository_tree() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for path in [
        "/r/metadata/..%2F..%2Fetc%2Fpasswd",
        "/r/metadata/..%2F..%2Fsecret",
        "/r/metadata/..%2F..%2F..%2Fsecret",
        "/r/metadata/%2E%2E%2F%2E%2E%2Fsecret",
        "/r/targets/../../secret",
        "/r/targets/../../../secret",
        "/r/targets/%2E%2E/%2E%2E/secret",
        "/r/targets/..%2F..%2Fsecret",
        "/r/targets/%2Fetc%2Fpasswd",
        "/r/targets//etc/passwd",
        "/r/metadata/root.json%00",
        "/r/metadata/root.json%00.json",
        "/r/targets/releases%00/x",
        "/r/metadata/.tmp-x1y2",
        "/r/metadata/%2Etmp-x1y2",
        "/r/../secret",
        "/../secret",
        "/secret",
        "/r/secret",
        "/r/metadata",
        "/r/metadata/",
        "/r/",
        "/r",
        "/",
        "/r/targets/",
        "/r/upstream/",
    ] {
        let r = s.get(path).await;
        r.assert_not_found(path);
        assert!(!r.text().contains("SECRET"));
    }
    // An absolute URI in the request line: its path is what counts.
    let r = s
        .send("GET http://t/r/metadata/..%2F..%2Fsecret HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_ne!(r.text(), "SECRET");
}

#[tokio::test]
async fn unknown_repositories_and_areas() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for path in [
        "/nope/metadata/root.json",
        "/R/metadata/root.json",
        "/-r/metadata/root.json",
        "/r/state/root.json",
        "/r/Metadata/root.json",
        "/favicon.ico",
        "/healthz/x",
    ] {
        s.get(path).await.assert_not_found(path);
    }
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    let r = s
        .send("HEAD /r/metadata/timestamp.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("content-length"),
        Some(&*TIMESTAMP.len().to_string())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some(REVALIDATE));
    let get = s.get("/r/metadata/timestamp.json").await;
    assert_eq!(r.header("etag"), get.header("etag"));
    let r = s
        .send("HEAD /r/metadata/9.snapshot.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn other_methods_are_refused() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    for method in ["POST", "PUT", "DELETE"] {
        for path in ["/r/metadata/timestamp.json", "/healthz", "/nope"] {
            let r = s
                .send(&format!(
                    "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ))
                .await;
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
            assert_eq!(r.text(), r#"{"error":"method not allowed"}"#);
        }
    }
}

#[tokio::test]
async fn conditional_and_range_requests() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    let path = "/r/metadata/timestamp.json";
    let first = s.get(path).await;
    let etag = first.header("etag").unwrap();
    let modified = first.header("last-modified").unwrap();
    let with =
        |h: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{h}\r\n\r\n");

    let r = s.send(&with(&format!("If-None-Match: {etag}"))).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag));
    assert_eq!(r.header("cache-control"), Some(REVALIDATE));
    let r = s.send(&with("If-None-Match: \"other\"")).await;
    assert_eq!(r.status, 200);
    // timestamp.json is never answered 304 on a date alone.
    let r = s
        .send(&with(&format!("If-Modified-Since: {modified}")))
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .send(&format!(
            "GET /r/metadata/2.snapshot.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\nIf-Modified-Since: {modified}\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 304);

    let r = s.send(&with("Range: bytes=2-8")).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &TIMESTAMP.as_bytes()[2..=8]);
    let total = TIMESTAMP.len();
    assert_eq!(
        r.header("content-range"),
        Some(&*format!("bytes 2-8/{total}"))
    );
    let r = s.send(&with("Range: bytes=-5")).await;
    assert_eq!((r.status, r.text()), (206, &TIMESTAMP[total - 5..]));
    let r = s
        .send(&with(&format!("Range: bytes=2-8\r\nIf-Range: {etag}")))
        .await;
    assert_eq!(r.status, 206);
    let r = s
        .send(&with("Range: bytes=2-8\r\nIf-Range: \"stale\""))
        .await;
    assert_eq!((r.status, r.text()), (200, TIMESTAMP));
    let r = s.send(&with("Range: bytes=0-1,3-4")).await;
    assert_eq!((r.status, r.text()), (200, TIMESTAMP));
    let r = s.send(&with("Range: bytes=999-")).await;
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(&*format!("bytes */{total}"))
    );
}

/// As the publisher does it: a new file renamed over the old one (same length).
fn replace_timestamp(tmp: &tempfile::TempDir, text: &str) {
    let dir = tmp.path().join("published/r/metadata");
    std::fs::write(dir.join(".tmp-next"), text).unwrap();
    std::fs::rename(dir.join(".tmp-next"), dir.join("timestamp.json")).unwrap();
}

#[tokio::test]
async fn a_replaced_timestamp_is_served_with_a_new_etag() {
    let tmp = tree();
    let s = TestServer::start_with(&tmp, |c| c.cache_ttl = Duration::ZERO).await;
    let path = "/r/metadata/timestamp.json";
    let before = s.get(path).await;
    let next = TIMESTAMP.replace('7', "8");
    replace_timestamp(&tmp, &next);
    let after = s.get(path).await;
    assert_eq!(after.text(), next);
    assert_ne!(before.header("etag"), after.header("etag"));
}

#[tokio::test]
async fn the_cache_lets_go_of_a_replaced_file_within_its_ttl() {
    let tmp = tree();
    let ttl = Duration::from_millis(300);
    let s = TestServer::start_with(&tmp, |c| c.cache_ttl = ttl).await;
    let path = "/r/metadata/timestamp.json";
    let first = s.get(path).await;
    assert_eq!(first.text(), TIMESTAMP);
    let changed = Instant::now();
    let next = TIMESTAMP.replace('7', "9");
    replace_timestamp(&tmp, &next);
    loop {
        let r = s.get(path).await;
        if r.text() == next {
            assert_ne!(r.header("etag"), first.header("etag"));
            break;
        }
        // Until then, the old file whole, with its own validator.
        assert_eq!(
            (r.text(), r.header("etag")),
            (TIMESTAMP, first.header("etag"))
        );
        assert!(
            changed.elapsed() < ttl + Duration::from_secs(3),
            "still the old file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A deleted versioned file goes the same way.
    assert_eq!(s.get("/r/metadata/2.snapshot.json").await.status, 200);
    std::fs::remove_file(tmp.path().join("published/r/metadata/2.snapshot.json")).unwrap();
    tokio::time::sleep(ttl).await;
    s.get("/r/metadata/2.snapshot.json")
        .await
        .assert_not_found("deleted");
}

#[tokio::test]
async fn large_files_are_streamed_whole_and_in_ranges() {
    let tmp = tree();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let rel = format!("r/targets/big/{H}.blob");
    write(&tmp.path().join("published"), &rel, &big);
    let s = TestServer::start(&tmp).await;
    let r = s.get(&format!("/{rel}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("3000000"));
    assert!(r.body == big, "body differs");
    let r = s.get(&format!("/r/targets/{H}.big/blob")).await;
    assert!(r.status == 200 && r.body == big);
    let r = s
        .send(&format!(
            "GET /{rel} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nRange: bytes=1000-2999999\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 206);
    assert!(r.body == big[1000..], "range differs");
}

#[tokio::test]
async fn health_reports_each_repository() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    let r = s.get("/healthz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["status"], "degraded");
    assert_eq!(json["repositories"]["r"]["published"], false);

    s.health.update("r", |h| {
        h.last_sync = Some("2026-11-30T12:00:00Z".parse().unwrap());
        h.timestamp_expires = Some("2026-12-01T12:00:00Z".parse().unwrap());
    });
    let r = s.get("/healthz").await;
    assert_eq!(r.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(
        json["repositories"]["r"]["last_sync"],
        "2026-11-30T12:00:00Z"
    );
    assert_eq!(
        json["repositories"]["r"]["timestamp_expires"],
        "2026-12-01T12:00:00Z"
    );
    assert_eq!(
        json["repositories"]["r"]["last_sync_error"],
        serde_json::Value::Null
    );

    s.health.update("r", |h| {
        h.last_sync_error = Some("r: timestamp: bad signature".into())
    });
    let r = s.get("/healthz").await;
    assert_eq!(r.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["status"], "degraded");
    assert_eq!(
        json["repositories"]["r"]["last_sync_error"],
        "r: timestamp: bad signature"
    );

    s.health.update("other", |_| {});
    assert_eq!(s.get("/healthz").await.status, 503);
    let head = s
        .send("HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!((head.status, head.body.len()), (503, 0));
}

#[tokio::test]
async fn a_real_client_gets_files() {
    let tmp = tree();
    let s = TestServer::start(&tmp).await;
    let url = format!("http://{}/r/metadata/1.a%2Fb.json", s.addr);
    let (status, ctype, body) = tokio::task::spawn_blocking(move || {
        let mut r = ureq::get(&url).call().unwrap();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            r.status().as_u16(),
            ctype,
            r.body_mut().read_to_string().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        (status, ctype.as_deref(), body.as_str()),
        (200, Some("application/json"), "{\"role\":\"a/b\"}")
    );
}
