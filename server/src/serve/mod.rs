//! Serving connections ourselves on hyper (`axum::serve` exposes no timeouts or caps):
//! a header read timeout measured from a request's first byte, an idle keep-alive
//! timeout, a cap on open connections, and graceful shutdown with a deadline.
//!
//! Each connection's [`Activity`] is shared by its socket (which notes the first byte of
//! each request head), its service (which counts requests in flight until their response
//! body is done), its watchdog and the accept loop. A connection with no request in flight
//! may be closed: when its head is late (slowloris), when it idles too long, or when the
//! cap is reached and a new connection needs its place (the oldest idle one goes, as nginx
//! reuses keep-alive connections), so that a flood of idle or slow connections can never
//! keep `/health` or anyone else out. Only when every connection has a request in flight
//! is a new one refused, with a 503 problem.
//!
//! Nothing of this costs a request more than a few atomic operations: the watchdog is a
//! task of its own that looks at the activity on a timer, never told of each request
//! (see [`watchdog`]), and a connection learns that it must close from one flag.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::serve::Listener;
use futures_util::task::AtomicWaker;
use http_body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_service::Service;

mod listener;
mod refusal;

pub use listener::{DroppingListener, Watched};

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// From the first byte of a request head to its end.
    pub header_timeout: Duration,
    /// Between requests on a kept-alive connection (and before the first).
    pub idle_timeout: Duration,
    /// Open connections, all told.
    pub max_connections: usize,
    /// hyper's own hard cap on a request head's bytes; past it hyper answers a bare 431
    /// (rewritten as problem+json, see `refusal`). Ours, lower, is in `head`, and answers
    /// with the sizes. Header lines are capped at hyper's default of 100: setting any
    /// other cap makes hyper allocate and fill two arrays of that size for every request
    /// it parses (5% of the server's instructions per request, BENCHMARKS.md).
    pub hard_header_bytes: usize,
    /// How long shutdown waits for requests in flight before closing what is left.
    pub shutdown_timeout: Duration,
}

/// Milliseconds since the process started, never 0 (0 means "not set" below).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The two timeouts of a connection with no request in flight.
struct Timeouts {
    header_timeout: Duration,
    idle_timeout: Duration,
}

/// Why a connection must close, once it must: the values of [`Activity::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Close {
    /// Nothing: serve on.
    No = 0,
    /// The server is stopping: finish the request in flight, if any, then close.
    Stop = 1,
    /// Its place is needed for a new connection.
    Evicted = 2,
    HeaderTimeout = 3,
    IdleTimeout = 4,
}

impl Close {
    fn of(value: u8) -> Close {
        match value {
            1 => Close::Stop,
            2 => Close::Evicted,
            3 => Close::HeaderTimeout,
            4 => Close::IdleTimeout,
            _ => Close::No,
        }
    }

    fn why(self) -> &'static str {
        match self {
            Close::No | Close::Stop => "the server stopped",
            Close::Evicted => "closed to make room for a new connection",
            Close::HeaderTimeout => {
                "closed: its request head did not arrive within the header timeout"
            }
            Close::IdleTimeout => "closed: it was idle past the idle timeout",
        }
    }
}

/// What one connection is doing, for its timeouts and for eviction.
#[derive(Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight (ms, see [`now_ms`]).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived; 0 while none has.
    head_started: AtomicU64,
    /// The last write to the socket could not go on (the client reads slower than we
    /// send): an answer is still leaving, even when its body is done on our side and only
    /// hyper's buffer holds the rest.
    write_blocked: AtomicBool,
    /// Why the connection must close (a [`Close`]); a later reason replaces an earlier
    /// one only if it is more urgent (a timeout after `Stop` closes at once).
    close: AtomicU8,
    /// The connection's task, woken when `close` is set.
    waker: AtomicWaker,
}

impl Activity {
    fn new() -> Self {
        let a = Activity::default();
        a.idle_since.store(now_ms(), Ordering::Relaxed);
        a
    }

    /// Called by the socket for every read that returned data.
    pub fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(
                0,
                now_ms(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Called by the socket for every write: whether it could not go on. Stores only on a
    /// change; when an answer has left whole, the connection is idle from then.
    pub fn wrote(&self, blocked: bool) {
        if self.write_blocked.load(Ordering::Relaxed) != blocked {
            if !blocked {
                self.idle_since.store(now_ms(), Ordering::Relaxed);
            }
            self.write_blocked.store(blocked, Ordering::Release);
        }
    }

    /// No request in flight and no answer still leaving: the connection may be closed
    /// without cutting anything off.
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }

    /// Tells the connection to close, and why.
    fn close(&self, why: Close) {
        self.close.fetch_max(why as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    /// When the connection must close unless something happens, and why.
    fn deadline(&self, options: &Timeouts) -> Option<(u64, Close)> {
        if !self.is_idle() {
            // A request in flight has its own limits (body read and write timeouts).
            return None;
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            return Some((
                head + options.header_timeout.as_millis() as u64,
                Close::HeaderTimeout,
            ));
        }
        Some((
            self.idle_since.load(Ordering::Relaxed) + options.idle_timeout.as_millis() as u64,
            Close::IdleTimeout,
        ))
    }
}

/// Held from the moment a request head is handed to the router until its response body
/// is done (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started.store(0, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Written before the count drops (an HTTP/1 connection has one request in flight
        // at most), and released with it: the watchdog, on another thread, never sees the
        // connection idle with the `idle_since` of before this request.
        self.0.idle_since.store(now_ms(), Ordering::Relaxed);
        self.0.head_started.store(0, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Watches one connection's [`Activity`] until it must close for a timeout, and tells it
/// so. It is never told of a request: it sleeps at most the shorter of the two timeouts at
/// a time and looks again. That is never late, because every deadline that can arise
/// while it sleeps lies at least that far ahead: a head that starts at `t` must end by
/// `t + header_timeout`, a connection idle from `t` may idle until `t + idle_timeout`. A
/// deadline it already knows it sleeps until exactly. (About 200 bytes per connection.)
async fn watchdog(activity: Arc<Activity>, header_timeout: Duration, idle_timeout: Duration) {
    let step = idle_timeout.min(header_timeout).as_millis().max(1) as u64;
    let options = Timeouts {
        header_timeout,
        idle_timeout,
    };
    loop {
        let now = now_ms();
        let wake = match activity.deadline(&options) {
            Some((at, why)) if at <= now => {
                activity.close(why);
                return;
            }
            Some((at, _)) => at.min(now + step),
            None => now + step,
        };
        tokio::time::sleep(Duration::from_millis(wake - now)).await;
    }
}

/// Aborts a task when dropped: a connection's watchdog ends with the connection, however
/// the connection ends (its task may be aborted at shutdown).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves once shutdown is asked for (the watch's guard is not held across awaits).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

type Registry = Arc<Mutex<BTreeMap<u64, Arc<Activity>>>>;

/// Serves until `stop` turns true, then stops accepting, lets requests in flight finish
/// (event streams end on the same signal), and returns within `shutdown_timeout`,
/// closing whatever is still open then.
pub async fn serve(
    mut listener: DroppingListener,
    router: Router,
    options: ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.header_read_timeout(None) // ours is measured from the first byte; see `watchdog`
        .max_header_size(options.hard_header_bytes)
        .keep_alive(true);
    let registry: Registry = Arc::default();
    let mut tasks = JoinSet::new();
    // Refusing costs a task and a socket for up to a second each: at most this many at once.
    let refusals = Arc::new(Semaphore::new(64));
    let mut next_id = 0u64;
    let mut last_cap_warning: Option<Instant> = None;
    loop {
        let (mut io, _peer) = tokio::select! {
            biased;
            _ = stopping(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        match make_room(&registry, options.max_connections) {
            Room::Free => {}
            Room::Evicted => {
                if last_cap_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_cap_warning = Some(Instant::now());
                    tracing::warn!(
                        "{} connections open (--max-connections): closing the oldest idle ones to make room",
                        options.max_connections
                    );
                }
            }
            Room::Full => {
                refuse(io, &refusals);
                continue;
            }
        }
        next_id += 1;
        let activity = Arc::new(Activity::new());
        if let Ok(mut conns) = registry.lock() {
            conns.insert(next_id, activity.clone());
        }
        io.track(activity.clone());
        tasks.spawn(connection(
            io,
            next_id,
            activity,
            registry.clone(),
            router.clone(),
            http.clone(),
            options.clone(),
        ));
    }
    // New connections are refused by the kernel from here on.
    drop(listener);
    // Connections that ended are not counted as open below.
    while tasks.try_join_next().is_some() {}
    // Every connection finishes the request in flight, if any, and closes.
    if let Ok(conns) = registry.lock() {
        for activity in conns.values() {
            activity.close(Close::Stop);
        }
    }
    let open = tasks.len();
    tracing::info!(
        "stopped accepting; waiting up to {:?} for {open} open connections to finish",
        options.shutdown_timeout
    );
    let drained = tokio::time::timeout(options.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections were still busy after {:?} (--shutdown-timeout): closed them; their requests were not answered, and nothing they sent was acknowledged",
            tasks.len(),
            options.shutdown_timeout
        );
        tasks.shutdown().await;
    }
}

enum Room {
    Free,
    Evicted,
    Full,
}

/// Makes a place for a new connection under the cap: free, or by closing the oldest
/// connection that has no request in flight.
fn make_room(registry: &Registry, max: usize) -> Room {
    let Ok(mut conns) = registry.lock() else {
        return Room::Full;
    };
    if conns.len() < max {
        return Room::Free;
    }
    let victim = conns.iter().find(|(_, a)| a.is_idle()).map(|(id, _)| *id);
    match victim.and_then(|id| conns.remove(&id)) {
        Some(activity) => {
            activity.close(Close::Evicted);
            Room::Evicted
        }
        None => Room::Full,
    }
}

/// Every connection has a request in flight: answer 503 and close, without reading the
/// request (there is no one to serve it).
fn refuse(mut io: Watched, permits: &Arc<Semaphore>) {
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        // Refusing politely is itself overloaded: just close.
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let body = r#"{"type":"/problems/too-many-connections","title":"Service Unavailable","status":503,"detail":"The server has as many connections as it takes (--max-connections), each with a request in flight. Nothing was done; try again in a second."}"#;
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            io.write_all(head.as_bytes()).await?;
            io.write_all(body.as_bytes()).await?;
            io.shutdown().await?;
            // Read what the client sent before closing, so that closing with unread data
            // does not reset the connection and destroy the answer.
            let mut buf = [0u8; 4096];
            while io.read(&mut buf).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    io: Watched,
    id: u64,
    activity: Arc<Activity>,
    registry: Registry,
    router: Router,
    http: http1::Builder,
    options: ServeOptions,
) {
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = InFlight::new(tracked.clone());
        let mut router = router.clone();
        async move {
            let mut response = router.call(req).await?;
            // A connection that must close (the server is stopping, or a close was decided
            // while it looked idle) says so in the answer, and hyper closes it after.
            if in_flight.0.close.load(Ordering::Acquire) != Close::No as u8 {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, Infallible>(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let _watchdog = AbortOnDrop(tokio::spawn(watchdog(
        activity.clone(),
        options.header_timeout,
        options.idle_timeout,
    )));
    // The connection, until it ends or must close. The reason to close is read before
    // hyper is polled, and hyper dispatches requests only when polled here, so "no request
    // in flight" cannot change between the reading and the acting:
    // - a timeout or an eviction closes a connection with no request in flight at once; one
    //   whose request was dispatched after the decision (the watchdog and the accept loop
    //   decide on other threads) finishes that request, with `Connection: close`, first;
    // - on `Stop` an idle connection closes at once (hyper's graceful shutdown), a request
    //   in flight finishes with `Connection: close`, and a request whose head is still
    //   arriving is served the same way if its head is complete within the header timeout,
    //   which the watchdog still applies (tests/tests/shutdown.rs).
    let mut shutting_down = false;
    let outcome = std::future::poll_fn(|cx| {
        // Registered before the flag is read: a close set after the read wakes us.
        activity.waker.register(cx.waker());
        let why = Close::of(activity.close.load(Ordering::Acquire));
        let head_arriving = || activity.head_started.load(Ordering::Relaxed) != 0;
        let mut shut_down_now = match why {
            Close::No => false,
            Close::Stop => !activity.is_idle() || !head_arriving(),
            hard => {
                if activity.is_idle() {
                    return Poll::Ready(Err(hard.why().to_string()));
                }
                true
            }
        };
        if shut_down_now && !shutting_down {
            shutting_down = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(result.map_err(|e| e.to_string()));
        }
        // A stop put off for a head that was arriving: that head may have become a request
        // in this poll (or even been answered): shut down now, and be polled again so that
        // hyper acts on it.
        shut_down_now = why == Close::Stop && (!activity.is_idle() || !head_arriving());
        if shut_down_now && !shutting_down {
            shutting_down = true;
            conn.as_mut().graceful_shutdown();
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
    if let Err(why) = outcome {
        tracing::debug!(connection = id, "connection ended: {why}");
    }
    if let Ok(mut conns) = registry.lock() {
        conns.remove(&id);
    }
}

/// The most connections the process can hold open: the file-descriptor limit less a
/// reserve for the database, logs and the like.
pub fn connection_limit_of_process() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        if ok && limit.rlim_cur != libc::RLIM_INFINITY {
            return Some((limit.rlim_cur as usize).saturating_sub(128).max(16));
        }
    }
    None
}
