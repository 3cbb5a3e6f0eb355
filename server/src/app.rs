//! The application: its shared state, the router and its layers (request log, head
//! checks, authentication), and a listener whose connections drop a peer that stops
//! reading. Serving the connections is `serve`'s.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_io_timeout::TimeoutStream;

use crate::auth::{Actor, AuthMode};
use crate::feed::Feed;
use crate::head::HeadLimits;
use crate::problem::ApiError;
use crate::routes::{events, health, presence, products, versions};
use crate::serve::Activity;
use crate::storage::{Durability, Storage};

pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub feed: Arc<Feed>,
    pub allow_unconditional: bool,
    pub shutdown: watch::Receiver<bool>,
    pub auth: AuthMode,
    pub head_limits: HeadLimits,
    /// How long a handler waits for a request body to arrive whole.
    pub body_timeout: Duration,
    /// One permit per open event stream (`--max-event-streams`).
    pub event_streams: Arc<Semaphore>,
    /// What the database writer actually runs with, as `/health` reports it.
    pub durability: Durability,
    /// Idempotency-Keys whose first request is being served now.
    pub in_flight: Arc<crate::idempotency::InFlight>,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    crate::metrics::install();
    Router::new()
        .route("/health", any(health::health))
        .route("/products", any(products::collection))
        .route("/products/{id}", any(products::item))
        .route("/products/{id}/versions", any(versions::versions))
        .route("/products/{id}/versions/{n}", any(versions::version))
        .route("/events", any(events::events))
        .route("/metrics", any(crate::metrics::metrics_route))
        .route("/openapi.json", any(crate::openapi::openapi_route))
        .route("/presence", any(presence::presence))
        .fallback(unknown_route)
        // Outermost first on the way in: log, then the head checks (Host, sizes), then
        // who is acting; a request refused by either never reaches a handler.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::head::check_head,
        ))
        .layer(middleware::from_fn(log_request))
        // Outermost: every answer is counted, the refused ones too.
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(&format!("The resource {}", uri.path()))
}

/// One log line per request: method, path, status, the If-Match sent, the ETag returned,
/// the user, and the time taken.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let header_text = |h: &HeaderMap, name: &str| {
        h.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let if_match = header_text(req.headers(), "if-match");
    let response = next.run(req).await;
    let etag = header_text(response.headers(), "etag");
    let user = response
        .extensions()
        .get::<Actor>()
        .map(|a| a.0.as_str())
        .unwrap_or("-");
    tracing::info!(
        "{method} {path} {status} if-match={if_match} etag={etag} user={user} {ms:.1}ms",
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
    );
    response
}

/// A TCP listener whose connections fail a write that makes no progress for
/// `write_timeout`: a peer that stops reading (an event stream nobody reads, whose socket
/// buffers are full) is dropped instead of being held forever. Each connection's kernel
/// send buffer is capped, so such a peer also costs a bounded amount of kernel memory and
/// of work (an event stream stops being produced once the buffer is full).
pub struct DroppingListener {
    inner: TcpListener,
    write_timeout: Duration,
    send_buffer: usize,
}

impl DroppingListener {
    pub fn new(inner: TcpListener, write_timeout: Duration, send_buffer: usize) -> Self {
        DroppingListener {
            inner,
            write_timeout,
            send_buffer,
        }
    }
}

impl axum::serve::Listener for DroppingListener {
    type Io = Watched;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    if self.send_buffer > 0 {
                        let _ =
                            socket2::SockRef::from(&stream).set_send_buffer_size(self.send_buffer);
                    }
                    let mut stream = TimeoutStream::new(stream);
                    stream.set_write_timeout(Some(self.write_timeout));
                    let io = Watched {
                        inner: Box::pin(stream),
                        peer: addr,
                        timeout: self.write_timeout,
                        activity: None,
                    };
                    return (io, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin or exit.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that says so in the log when it is dropped because its client stopped
/// reading, and tells its [`Activity`] when request bytes arrive (for the header timeout).
pub struct Watched {
    inner: Pin<Box<TimeoutStream<TcpStream>>>,
    peer: SocketAddr,
    timeout: Duration,
    activity: Option<Arc<Activity>>,
}

impl Watched {
    pub fn track(&mut self, activity: Arc<Activity>) {
        self.activity = Some(activity);
    }

    fn note<T>(&self, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result
            && e.kind() == std::io::ErrorKind::TimedOut
        {
            tracing::warn!(
                peer = %self.peer,
                "dropped a connection: its client read nothing for {:?}",
                self.timeout
            );
        }
        result
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = self.inner.as_mut().poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(activity) = &self.activity
        {
            activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = self.inner.as_mut().poll_write(cx, buf);
        self.note(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = self.inner.as_mut().poll_write_vectored(cx, bufs);
        self.note(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = self.inner.as_mut().poll_flush(cx);
        self.note(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}
