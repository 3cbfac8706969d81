//! [`TestServer`]: a tiny static HTTP server on 127.0.0.1 for tests.
//!
//! Plain `std::net` and one thread per connection. It answers `GET` with HTTP/1.0 and closes
//! the connection; a path not in the file map is a 404. Every request path is recorded in
//! order, and a path can be told to misbehave (status, endless body, wrong `Content-Length`,
//! delay). The server stops when dropped.
//!
//! ```
//! use std::collections::HashMap;
//! use std::io::{Read, Write};
//! use std::sync::{Arc, RwLock};
//! use tuf_mirror_tests::server::TestServer;
//!
//! let files = Arc::new(RwLock::new(HashMap::from([("a.txt".to_owned(), b"hi".to_vec())])));
//! let server = TestServer::start(files);
//! let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
//! conn.write_all(b"GET /a.txt HTTP/1.0\r\n\r\n").unwrap();
//! let mut response = String::new();
//! conn.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.0 200 OK\r\n") && response.ends_with("\r\n\r\nhi"));
//! assert_eq!(server.requests(), vec!["a.txt".to_owned()]);
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use percent_encoding::percent_decode_str;

/// The files a [`TestServer`] serves, by request path without the leading `/`.
pub type FileMap = Arc<RwLock<HashMap<String, Vec<u8>>>>;

/// Longest an endless body runs, so a client that never stops reading cannot hang a test run.
const ENDLESS_LIMIT_TIME: Duration = Duration::from_secs(60);
/// Most bytes an endless body sends, for the same reason.
const ENDLESS_LIMIT_BYTES: u64 = 1 << 30;
/// Read and write timeout of a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// How the server answers requests for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Serve the file, or 404.
    Normal,
    /// Answer with this status and an empty body.
    Status(u16),
    /// `200` with no `Content-Length` and a body of `0x20` bytes that does not end (until the
    /// client hangs up, the server stops, or a 1 GiB / 60 s safety limit).
    EndlessBody,
    /// Serve the file (empty if missing) with this `Content-Length` instead of its real one.
    WrongContentLength(u64),
    /// Wait this long, then answer normally.
    Delay(Duration),
}

struct Shared {
    files: FileMap,
    requests: Mutex<Vec<String>>,
    behaviors: Mutex<HashMap<String, Behavior>>,
    stopping: AtomicBool,
}

/// A static HTTP server on `127.0.0.1:<ephemeral port>`, stopped on drop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler thread leaves the data consistent (single pushes and inserts).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestServer {
    /// Starts serving `files` (keys are request paths without the leading `/`, e.g.
    /// `metadata/1.root.json`). The map can be changed while the server runs.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(files: FileMap) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            files,
            requests: Mutex::new(Vec::new()),
            behaviors: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("spawn the test server thread");
        TestServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The file map being served.
    pub fn files(&self) -> &FileMap {
        &self.shared.files
    }

    /// Replaces the whole file map contents.
    pub fn set_files(&self, files: HashMap<String, Vec<u8>>) {
        *self
            .shared
            .files
            .write()
            .unwrap_or_else(PoisonError::into_inner) = files;
    }

    /// Every request path so far, in order, without the leading `/` (query included, as
    /// sent, percent-encoding kept).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// [`TestServer::requests`], clearing the record.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.requests))
    }

    /// Makes requests for `path` (a file map key) behave as `behavior`.
    pub fn set_behavior(&self, path: &str, behavior: Behavior) {
        lock(&self.shared.behaviors).insert(path.to_owned(), behavior);
    }

    /// Back to [`Behavior::Normal`] for every path.
    pub fn clear_behaviors(&self) {
        lock(&self.shared.behaviors).clear();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees `stopping` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        // A connection ends when its response is written, the client hangs up, a timeout
        // fires, or the server stops.
        let _ = thread::Builder::new()
            .name("test-server-conn".into())
            .spawn(move || {
                let _ = handle(stream, &shared);
            });
    }
}

/// Reads the request head; returns the request method and target.
fn read_head(stream: &TcpStream) -> io::Result<Option<(String, String)>> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut total = request_line.len();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 || line == "\r\n" || line == "\n" || total > MAX_HEAD {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(method), Some(target)) => Ok(Some((method.to_owned(), target.to_owned()))),
        _ => Ok(None),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    length: Option<u64>,
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.0 {status} {}\r\n", reason(status));
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn handle(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some((method, target)) = read_head(&stream)? else {
        return respond(&mut stream, 400, Some(0), b"");
    };
    let raw = target.strip_prefix('/').unwrap_or(&target).to_owned();
    lock(&shared.requests).push(raw.clone());
    if method != "GET" {
        return respond(&mut stream, 405, Some(0), b"");
    }
    let path = raw
        .split_once('?')
        .map_or(raw.as_str(), |(p, _)| p)
        .to_owned();
    let file = {
        let files = shared.files.read().unwrap_or_else(PoisonError::into_inner);
        match files.get(&path) {
            Some(bytes) => Some((path.clone(), bytes.clone())),
            None => percent_decode_str(&path)
                .decode_utf8()
                .ok()
                .and_then(|decoded| {
                    files
                        .get(decoded.as_ref())
                        .map(|b| (decoded.into_owned(), b.clone()))
                }),
        }
    };
    let key = file.as_ref().map_or(path.clone(), |(key, _)| key.clone());
    let behavior = lock(&shared.behaviors)
        .get(&key)
        .cloned()
        .unwrap_or(Behavior::Normal);
    let body = file.map(|(_, bytes)| bytes);
    match behavior {
        Behavior::Normal => serve(&mut stream, body),
        Behavior::Status(status) => respond(&mut stream, status, Some(0), b""),
        Behavior::WrongContentLength(length) => {
            respond(&mut stream, 200, Some(length), &body.unwrap_or_default())
        }
        Behavior::Delay(delay) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10).min(delay));
            }
            serve(&mut stream, body)
        }
        Behavior::EndlessBody => endless(&mut stream, shared),
    }
}

fn serve(stream: &mut TcpStream, body: Option<Vec<u8>>) -> io::Result<()> {
    match body {
        Some(body) => respond(stream, 200, Some(body.len() as u64), &body),
        None => respond(stream, 404, Some(0), b""),
    }
}

fn endless(stream: &mut TcpStream, shared: &Shared) -> io::Result<()> {
    respond(stream, 200, None, b"")?;
    let chunk = [b' '; 64 * 1024];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < ENDLESS_LIMIT_BYTES
        && started.elapsed() < ENDLESS_LIMIT_TIME
        && !shared.stopping.load(Ordering::SeqCst)
    {
        stream.write_all(&chunk)?;
        sent += chunk.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(server: &TestServer, path: &str) -> Vec<u8> {
        let mut conn = TcpStream::connect(server.addr()).unwrap();
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut response = Vec::new();
        conn.read_to_end(&mut response).unwrap();
        response
    }

    fn files() -> FileMap {
        Arc::new(RwLock::new(HashMap::from([
            ("metadata/1.root.json".to_owned(), b"{}".to_vec()),
            ("metadata/1.a%2Fb.json".to_owned(), b"role".to_vec()),
            ("targets/a b.txt".to_owned(), b"spaced".to_vec()),
        ])))
    }

    #[test]
    fn serves_files_records_requests_and_404s() {
        let server = TestServer::start(files());
        let ok = get(&server, "/metadata/1.root.json");
        assert_eq!(
            ok,
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nContent-Type: application/octet-stream\r\n\
              Connection: close\r\n\r\n{}"
        );
        assert!(get(&server, "/metadata/2.root.json").starts_with(b"HTTP/1.0 404 Not Found\r\n"));
        assert!(get(&server, "/metadata/1.a%2Fb.json").ends_with(b"\r\n\r\nrole"));
        assert!(get(&server, "/targets/a%20b.txt").ends_with(b"\r\n\r\nspaced"));
        assert!(get(&server, "/metadata/1.root.json?x=1").ends_with(b"\r\n\r\n{}"));
        assert_eq!(
            server.take_requests(),
            vec![
                "metadata/1.root.json",
                "metadata/2.root.json",
                "metadata/1.a%2Fb.json",
                "targets/a%20b.txt",
                "metadata/1.root.json?x=1"
            ]
        );
        assert!(server.requests().is_empty());
        server
            .files()
            .write()
            .unwrap()
            .insert("new".into(), b"n".to_vec());
        assert!(get(&server, "/new").ends_with(b"\r\n\r\nn"));
    }

    #[test]
    fn misbehaves_on_request() {
        let server = TestServer::start(files());
        server.set_behavior("metadata/1.root.json", Behavior::WrongContentLength(1));
        let wrong = get(&server, "/metadata/1.root.json");
        assert!(wrong.starts_with(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n"));
        assert!(wrong.ends_with(b"\r\n\r\n{}"));

        server.set_behavior("metadata/1.root.json", Behavior::Status(503));
        assert!(get(&server, "/metadata/1.root.json").starts_with(b"HTTP/1.0 503 "));

        server.set_behavior("endless", Behavior::EndlessBody);
        let mut conn = TcpStream::connect(server.addr()).unwrap();
        conn.write_all(b"GET /endless HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 4 << 20];
        conn.read_exact(&mut buf).unwrap();
        assert!(buf.starts_with(b"HTTP/1.0 200 OK\r\n"));
        assert!(!buf.windows(14).any(|w| w == b"Content-Length"));
        drop(conn);

        server.clear_behaviors();
        server.set_behavior(
            "metadata/1.root.json",
            Behavior::Delay(Duration::from_millis(50)),
        );
        let started = Instant::now();
        assert!(get(&server, "/metadata/1.root.json").ends_with(b"{}"));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn stops_on_drop() {
        let server = TestServer::start(files());
        let addr = server.addr();
        // A client stuck in an endless body must not keep drop from returning.
        server.set_behavior("endless", Behavior::EndlessBody);
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /endless HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        conn.read_exact(&mut buf).unwrap();
        drop(server);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }
}
