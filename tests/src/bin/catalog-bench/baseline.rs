//! This machine's limits, measured in the same run as the figures compared with them:
//!
//! - a bare axum handler (a small fixed JSON body with an ETag) inside this process, on its
//!   own tokio runtime and threads, loaded by wrk and by the tool's own generator, each the
//!   same way as the server: the most requests/s any axum server can answer here (the same
//!   server's bare SSE fan-out is the `events` scenario's limit);
//! - raw SQLite conditional UPDATEs, one per transaction, WAL, on the disk the spawned
//!   server's database is on (the temp dir): the most durable commits/s here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::{Stream, StreamExt, stream};
use rusqlite::{Connection, params};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::load::{self, Tally};
use crate::report::{Row, Table, per_sec};
use crate::wrk;

/// About the size of a product's JSON.
const BODY: &str = r#"{"id":1,"sku":"BARE-1","name":"A bare axum handler","description":"","price_cents":100,"status":"in_stock","version":1,"updated_at":"2026-11-22T12:00:00.000Z","updated_by":"bench","etag":"\"0123456789abcdef\""}"#;

#[derive(Default)]
pub struct Limits {
    /// Requests/s, and with how many connections (the tool's own generator).
    axum: Option<(f64, usize)>,
    /// The same loaded by wrk (measured once; `Some(None)`: wrk is missing or failed).
    axum_wrk: Option<Option<(f64, usize)>>,
    full: Option<f64>,
    normal: Option<f64>,
}

impl Limits {
    /// Requests/s of a bare axum handler with `connections` connections (measured once).
    pub async fn bare_axum(
        &mut self,
        connections: usize,
        warmup: Duration,
        duration: Duration,
    ) -> f64 {
        if let Some((rate, _)) = self.axum {
            return rate;
        }
        let server = BareAxum::start();
        let url = format!("http://{}/products/1", server.addr);
        let (tallies, window) = load::run(connections, warmup, duration, |_, client, window| {
            let url = url.clone();
            async move {
                let mut tally = Tally::default();
                while window.open() {
                    let r = client
                        .get(&url)
                        .send()
                        .await
                        .expect("GET reaches the bare axum handler");
                    let status = r.status().as_u16();
                    r.bytes().await.expect("the bare handler's body");
                    tally.count(&window, status);
                }
                tally
            }
        })
        .await;
        server.stop();
        let rate = window.rate(Tally::merge(tallies).of(|s| s == 200));
        self.axum = Some((rate, connections));
        rate
    }

    /// Requests/s of the same bare handler loaded by wrk (measured once); `None` without
    /// wrk.
    pub async fn bare_axum_wrk(
        &mut self,
        connections: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Option<f64> {
        if let Some(measured) = self.axum_wrk {
            return measured.map(|(rate, _)| rate);
        }
        let server = BareAxum::start();
        let url = format!("http://{}/products/1", server.addr);
        let figures = wrk::run(&url, &[], connections, warmup, duration, None).await;
        server.stop();
        let measured = figures.map(|f| (f.rate, connections));
        self.axum_wrk = Some(measured);
        measured.map(|(rate, _)| rate)
    }

    /// Raw durable commits/s (synchronous=FULL), measured once (with NORMAL beside it).
    pub fn sqlite_full(&mut self) -> f64 {
        if let Some(rate) = self.full {
            return rate;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let full = commit_rate(dir.path(), "FULL", Duration::from_secs(2));
        let normal = commit_rate(dir.path(), "NORMAL", Duration::from_secs(1));
        self.full = Some(full);
        self.normal = Some(normal);
        full
    }

    pub fn rows(&self, table: &mut Table) {
        let mut rows = Vec::new();
        match self.axum_wrk {
            Some(Some((rate, connections))) => rows.push(Row::new(
                "baseline",
                format!("bare axum GET (fixed JSON + ETag), {connections} conns, wrk"),
                per_sec(rate, "req"),
            )),
            Some(None) => rows.push(
                Row::new(
                    "baseline",
                    "bare axum GET, wrk",
                    format!("SKIPPED: {}", wrk::INSTALL),
                )
                .target("-", None),
            ),
            None => {}
        }
        if let Some((rate, connections)) = self.axum {
            let mut row = Row::new(
                "baseline",
                format!("same, the tool's own generator (reqwest), {connections} conns"),
                per_sec(rate, "req"),
            );
            if let Some(Some((wrk, _))) = self.axum_wrk {
                row = row.limit(format!("wrk {}", per_sec(wrk, "req")), Some(rate / wrk));
            }
            rows.push(row);
        }
        if let (Some(full), Some(normal)) = (self.full, self.normal) {
            rows.push(Row::new(
                "baseline",
                "raw SQLite conditional UPDATE, 1 per txn, WAL, FULL",
                per_sec(full, "commits"),
            ));
            rows.push(
                Row::new(
                    "baseline",
                    "raw SQLite, same, synchronous=NORMAL",
                    per_sec(normal, "commits"),
                )
                .limit("FULL", Some(normal / full)),
            );
        }
        table.prepend(rows);
    }
}

/// `UPDATE t SET v = v + 1, version = version + 1 WHERE id = ?1 AND version = ?2`, one per
/// transaction on a single connection, for `duration`: commits/s.
fn commit_rate(dir: &Path, synchronous: &str, duration: Duration) -> f64 {
    let path = dir.join(format!("raw-{synchronous}.db"));
    let conn = Connection::open(&path).expect("a raw SQLite database");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("WAL mode");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("setting synchronous");
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, version INTEGER NOT NULL);
         INSERT INTO t VALUES (1, 0, 1);",
    )
    .expect("the raw table");
    let mut update = conn
        .prepare("UPDATE t SET v = v + 1, version = version + 1 WHERE id = ?1 AND version = ?2")
        .expect("the UPDATE");
    let mut version = 1i64;
    let mut commit = || {
        // Autocommit: the statement is its own transaction.
        let changed = update
            .execute(params![1, version])
            .expect("a raw UPDATE commits");
        assert_eq!(changed, 1, "the conditional UPDATE matched");
        version += 1;
    };
    for _ in 0..20 {
        commit();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        commit();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A bare axum server on a loopback port, on its own runtime and threads (as many as
/// catalog-server has: tokio's default, one per core). `GET /products/1` answers a fixed
/// product; `PUT /products/1` (no checks, body ignored) bumps an in-memory version and
/// sends a change event the size of the server's to every `GET /events` stream through a
/// tokio broadcast: the least any server can do for the `events` scenario.
pub struct BareAxum {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

struct Feed {
    version: AtomicI64,
    events: broadcast::Sender<(i64, Arc<str>)>,
}

fn bare_product(version: i64) -> String {
    format!(
        r#"{{"id":1,"sku":"BARE-1","name":"A bare axum handler","description":"","price_cents":{},"status":"in_stock","version":{version},"updated_at":"2026-11-22T12:00:00.000Z","updated_by":"bench","etag":"\"{version:016x}\""}}"#,
        100 + version
    )
}

async fn bare_put(State(feed): State<Arc<Feed>>) -> impl IntoResponse {
    let version = feed.version.fetch_add(1, Ordering::SeqCst) + 1;
    let product = bare_product(version);
    let data = format!(
        r#"{{"seq":{version},"op":"updated","id":1,"version":{version},"etag":"\"{version:016x}\"","updated_by":"bench","updated_at":"2026-11-22T12:00:00.000Z","product":{product}}}"#
    );
    let _ = feed.events.send((version, data.into()));
    (
        [
            (CONTENT_TYPE, "application/json".to_string()),
            (ETAG, format!("\"{version:016x}\"")),
        ],
        product,
    )
}

async fn bare_events(
    State(feed): State<Arc<Feed>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ready = Event::default().id("0").event("ready").data("{}");
    let live = stream::unfold(feed.events.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok((seq, data)) => {
                    let event = Event::default()
                        .id(seq.to_string())
                        .event("updated")
                        .data(&*data);
                    return Some((Ok(event), rx));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream::once(async { Ok(ready) }).chain(live))
}

impl BareAxum {
    pub fn start() -> BareAxum {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bare-axum".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("bare-axum-worker")
                    .build()
                    .expect("the bare axum runtime");
                runtime.block_on(async move {
                    let feed = Arc::new(Feed {
                        version: AtomicI64::new(1),
                        events: broadcast::channel(1024).0,
                    });
                    let app = Router::new()
                        .route(
                            "/products/1",
                            get(|| async {
                                (
                                    [
                                        (CONTENT_TYPE, "application/json"),
                                        (ETAG, "\"0123456789abcdef\""),
                                    ],
                                    BODY,
                                )
                            })
                            .put(bare_put),
                        )
                        .route("/events", get(bare_events))
                        .with_state(feed);
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("a loopback port for the bare axum handler");
                    addr_tx
                        .send(listener.local_addr().expect("its address"))
                        .expect("the bench waits for the address");
                    // Stopping drops the runtime, and with it any stream still open.
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            served.expect("the bare axum server runs");
                        }
                        _ = stopped => {}
                    }
                });
            })
            .expect("a thread for the bare axum server");
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the bare axum server starts");
        BareAxum { addr, stop, thread }
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("the bare axum server stops");
    }
}
