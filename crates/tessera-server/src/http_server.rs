//! The connection handling around the router (RELIABILITY P15): hyper-util's server with a
//! Tokio timer installed, because hyper enforces `header_read_timeout` only when it has a
//! timer, a cap on open connections, a cap on requests in flight (shed with 503 and
//! `Retry-After`, never queued), a request timeout, a limit on the request head and a
//! server-wide body limit behind each endpoint's own, and a bound on how long a response
//! write may stall on a client that does not read (slow read). With TLS, each connection's
//! handshake runs in its own task under a time bound, and counts against the connection
//! cap from the moment it is accepted.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use http_body_util::Limited;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error;
use crate::framing::{AmbiguousFraming, FramingWatch};
use crate::tls::ServerTls;

/// The limits [`serve_with_limits`] enforces. `HttpLimits::default()` is what
/// [`serve`](crate::serve) uses and what `tessera serve` starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client may take to send a whole request head (request line and
    /// headers), from the moment the server starts reading it; past it the connection is
    /// answered 408 and closed (slowloris).
    pub header_read_timeout: Duration,
    /// How long one request may take from its head to its response; past it the request
    /// is abandoned and answered 503 with `Retry-After`.
    pub request_timeout: Duration,
    /// Open connections at most; a connection accepted beyond it is closed at once.
    pub max_connections: usize,
    /// Requests being handled at once, over all connections; one more is answered 503
    /// with `Retry-After` without running (load shedding).
    pub max_in_flight_requests: usize,
    /// Bytes of request head (request line and headers) a connection buffers; a longer
    /// head is answered 431 (or 414 for a long request line). At least 8 KiB.
    pub max_header_bytes: usize,
    /// Header fields in one request at most; more is answered 431.
    pub max_headers: usize,
    /// Bytes of request body on any path; the form endpoints keep their own, smaller
    /// limit. A larger declared `Content-Length` is answered 413 before the body is read.
    pub max_body_bytes: usize,
    /// With TLS, how long a client may take to complete the handshake from the moment its
    /// connection is accepted; past it the connection is closed.
    pub tls_handshake_timeout: Duration,
    /// How long a write to a connection may wait for the client to read (its socket
    /// buffers full); past it the connection is closed. A client that stops reading
    /// would otherwise keep its connection and its unsent answer forever.
    pub response_write_timeout: Duration,
}

impl HttpLimits {
    /// Default of [`HttpLimits::header_read_timeout`].
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`HttpLimits::request_timeout`].
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of [`HttpLimits::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
    /// Default of [`HttpLimits::max_in_flight_requests`].
    pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 1024;
    /// Default of [`HttpLimits::max_header_bytes`].
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
    /// Default of [`HttpLimits::max_headers`].
    pub const DEFAULT_MAX_HEADERS: usize = 100;
    /// Default of [`HttpLimits::max_body_bytes`].
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
    /// Default of [`HttpLimits::tls_handshake_timeout`].
    pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`HttpLimits::response_write_timeout`].
    pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_in_flight_requests: Self::DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            tls_handshake_timeout: Self::DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            response_write_timeout: Self::DEFAULT_RESPONSE_WRITE_TIMEOUT,
        }
    }
}

/// hyper refuses (panics on) a read buffer smaller than this.
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// How long to wait before accepting again after `accept` failed (e.g. out of file
/// descriptors), so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

type AppService = BoxCloneSyncService<Request, Response, Infallible>;

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then stops
/// accepting connections, asks open ones to close once their request in flight is
/// answered, and waits for them.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_connections(listener, router, limits, None, shutdown).await
}

/// [`serve_with_limits`] over TLS: every accepted connection must complete a handshake
/// with `tls` within [`HttpLimits::tls_handshake_timeout`] before anything is read from it
/// as HTTP. `tls` may be reloaded meanwhile; open connections keep what they negotiated.
pub async fn serve_tls_with_limits(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: ServerTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_connections(listener, router, limits, Some(tls), shutdown).await
}

async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = limited(router, &limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over the cap the connection is closed before anything is read: nothing waits in
        // an unbounded queue, and the client sees a closed connection at once.
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::debug!(%peer, "closed a connection: too many open connections");
            drop(stream);
            continue;
        };
        // Below TLS, so a stalled write of a handshake or of an encrypted answer counts
        // alike; only a write the client leaves pending is timed, never an idle
        // keep-alive connection.
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.response_write_timeout));
        let stream = Box::pin(stream);
        let app = app.clone();
        let builder = Arc::clone(&builder);
        // Taken here, so that shutdown also waits for a connection still handshaking.
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        let max_head_bytes = limits.max_header_bytes.max(MIN_HEADER_BYTES);
        tokio::spawn(async move {
            match tls {
                None => {
                    serve_connection(&builder, watcher, stream, app, peer, max_head_bytes).await
                }
                // The handshake runs here, not in the accept loop: a slow client delays
                // only its own connection.
                Some(tls) => {
                    match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, watcher, stream, app, peer, max_head_bytes)
                                .await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "closed a connection: TLS handshake timed out");
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves HTTP/1 or HTTP/2 on one accepted (and, with TLS, handshaken) connection until it
/// closes, or until shutdown asks it to close after its request in flight.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    app: AppService,
    peer: std::net::SocketAddr,
    max_head_bytes: usize,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ambiguous_framing = AmbiguousFraming::new();
    let io = FramingWatch::new(io, max_head_bytes, Arc::clone(&ambiguous_framing));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        let refuse = ambiguous_framing.next_request_is_ambiguous();
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            if refuse {
                Ok(error::ambiguous_framing(request.uri().path()))
            } else {
                app.oneshot(request.map(Body::new)).await
            }
        }
    });
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    // A client that goes away or sends garbage ends only its own connection.
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The router behind the request-level limits: load shedding outermost, so a shed
/// request costs nothing; then the timeout; then the body limit.
fn limited(router: Router, limits: &HttpLimits) -> AppService {
    let max_body_bytes = limits.max_body_bytes;
    let service = ServiceBuilder::new()
        // The router sets it too; this covers the answers of the layers below.
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(HandleErrorLayer::new(refused))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight_requests.max(1),
        ))
        .timeout(limits.request_timeout)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            limit_body(max_body_bytes, request, next)
        }))
        .service(router);
    BoxCloneSyncService::new(service)
}

/// The answer to a request a limit stopped.
async fn refused(uri: Uri, error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        error::overloaded(uri.path())
    } else if error.is::<tower::timeout::error::Elapsed>() {
        error::request_timed_out(uri.path())
    } else {
        error::internal(uri.path())
    }
}

/// Refuses a declared body over `limit` at once, and cuts any other body off at `limit`
/// (a chunked body declares no length), so no handler can be made to read more.
async fn limit_body(limit: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return error::body_too_large(request.uri().path());
    }
    next.run(request.map(|body| Body::new(Limited::new(body, limit))))
        .await
}
