//! HTTP serving of the published trees (DESIGN.md sections 5 and 7).
//!
//! Per repository, `GET`/`HEAD` of
//! `/<repo>/metadata/<file>`, `/<repo>/upstream/<file>` and `/<repo>/targets/<path>`
//! (the spec's consistent form `<dir>/<sha256>.<name>`, and tough's `<sha256>.<dir>/<name>`
//! mapped to it), plus `/healthz`. Files come from `<published>/<repo>/` only, as the
//! publisher wrote them; anything else is a 404 with a small JSON body. Headers and
//! cache policy are described in `docs/operations.md`.
//!
//! ```no_run
//! # async fn f() -> Result<(), tuf_mirror_daemon::serve::ServeError> {
//! use tuf_mirror_daemon::serve::{self, HealthHandle, ServeConfig};
//!
//! let health = HealthHandle::new(["docker-hub"]);
//! let config = ServeConfig::new("127.0.0.1:8080".parse().unwrap(), "/var/lib/tuf-mirror/published".into());
//! let server = serve::bind(config).await?;
//! serve::notify_ready();
//! server.run(health, async { /* SIGTERM */ }).await;
//! # Ok(())
//! # }
//! ```

mod cache;
mod files;
mod health;
mod path;
pub mod systemd;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use cache::Cache;
use files::Files;

pub use health::{Health, HealthHandle, RepoHealth, Status};
pub use systemd::{notify_ready, notify_reloading, notify_stopping, watchdog};

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Where and what to serve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The address to listen on; port 0 picks a free port ([`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The directory holding one published tree per repository, `<published>/<repo>/`.
    pub published: PathBuf,
    /// How long shutdown waits for requests in flight before closing their connections.
    pub drain: Duration,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long a small file, once read, is answered from memory before the disk is
    /// looked at again: the longest a replaced `timestamp.json` can still be served.
    /// Zero turns the cache off.
    pub cache_ttl: Duration,
    /// Memory for that cache, in bytes of file content.
    pub cache_bytes: usize,
}

impl ServeConfig {
    /// Defaults: a 10 s drain, a 30 s header timeout, 4096 connections, small files
    /// kept in memory 1 s, 64 MiB of them.
    pub fn new(listen: SocketAddr, published: PathBuf) -> Self {
        ServeConfig {
            listen,
            published,
            drain: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            cache_ttl: Duration::from_secs(1),
            cache_bytes: 64 << 20,
        }
    }
}

/// A bound listener, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: ServeConfig,
}

/// Binds the listening socket (so that start-up fails before `READY=1` when the address
/// is taken, and tests learn the port of `127.0.0.1:0`).
pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
    let err = |source| ServeError::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(err)?;
    let local_addr = listener.local_addr().map_err(err)?;
    Ok(Server {
        listener,
        local_addr,
        config,
    })
}

/// [`bind`], then [`Server::run`].
pub async fn run(
    config: ServeConfig,
    health: HealthHandle,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    bind(config).await?.run(health, shutdown).await;
    Ok(())
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in
    /// flight finish (closing idle keep-alive connections) for up to
    /// [`ServeConfig::drain`], and closes whatever is left.
    pub async fn run(self, health: HealthHandle, shutdown: impl Future<Output = ()> + Send) {
        let Server {
            listener,
            local_addr,
            config,
        } = self;
        let files = Files::new(
            config.published.clone(),
            Cache::new(config.cache_ttl, config.cache_bytes),
        );
        let app = router(AppState {
            files: Arc::new(files),
            health,
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout);
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let tracker = TaskTracker::new();
        let (soft, hard) = (CancellationToken::new(), CancellationToken::new());
        tracing::info!(addr = %local_addr, published = %config.published.display(), "http server listening");

        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = accept(&listener, &slots) => accepted,
            };
            let Some((stream, permit)) = accepted else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
            let (soft, hard) = (soft.clone(), hard.clone());
            tracker.spawn(async move {
                let _permit = permit;
                tokio::pin!(conn);
                let done = tokio::select! {
                    r = conn.as_mut() => Some(r),
                    () = soft.cancelled() => None,
                };
                let result = match done {
                    Some(r) => r,
                    None => {
                        conn.as_mut().graceful_shutdown();
                        tokio::select! {
                            r = conn.as_mut() => r,
                            () = hard.cancelled() => return,
                        }
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
        }

        drop(listener);
        soft.cancel();
        tracker.close();
        tracing::info!(connections = tracker.len(), "stopped accepting; draining");
        if tokio::time::timeout(config.drain, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tracker.len(),
                drain_ms = config.drain.as_millis(),
                "drain timed out; closing connections"
            );
            hard.cancel();
            tracker.wait().await;
        }
        tracing::info!(addr = %local_addr, "http server stopped");
    }
}

/// Waits for a free connection slot, then for a connection. Errors from one client
/// (reset before accept) are skipped; others (out of file descriptors) are logged and
/// retried after a pause, as a full table usually frees up.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionRefused
            ) =>
        {
            None
        }
        Err(error) => {
            tracing::error!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

#[derive(Clone)]
struct AppState {
    files: Arc<Files>,
    health: HealthHandle,
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(tree)
        .with_state(state)
}

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// A small JSON error: `{"error": "..."}`, never cached.
fn error_response(status: StatusCode, message: &'static str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    json_response(status, body, "no-store")
}

fn json_response(status: StatusCode, body: String, cache: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    r
}

async fn method_not_allowed() -> Response {
    let mut r = error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// `GET /healthz`: 200 when every repository has a published state, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.health.get();
    let status = match health.status() {
        Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    json_response(status, health.to_json().to_string(), "no-store")
}

async fn tree(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed().await;
    }
    files::serve(&state.files, &method, &headers, uri.path()).await
}
