//! The PostgreSQL feed's order: change-log rows are published below the snapshot horizon
//! in (transaction id, row id) order. A transaction holding an xid anywhere in the
//! cluster (another database included) delays events and loses none, as does one that
//! aborts; a page boundary inside a run of rows of one transaction loses and repeats
//! nothing, live or resumed; pruning the log under a resuming stream is `reset`, never a
//! silent gap; and a write that took its transaction id before the version it builds on
//! committed is published before it: the inversion the servers' own writes avoid by
//! making the version-checked UPDATE their first write. Skipped, with a line saying so,
//! where PostgreSQL is not installed; `.ci/run` installs it.

use std::path::Path;
use std::time::{Duration, Instant};

use catalog_tests::postgres::{Cluster, Position, bin_dir, database_of, position, shared_or_skip};
use catalog_tests::{Server, client, product_json, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::json;

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

fn server(cluster: &Cluster, args: &[&str]) -> (Server, String) {
    let url = cluster.create_database().expect("a fresh database");
    let s = Server::start_on(Path::new(&url), args, "127.0.0.1:0").expect("the server starts");
    (s, database_of(&url))
}

async fn subscribe(s: &Server, last_event_id: Option<&str>) -> Events {
    let mut req = client().get(s.url("/events"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let r = req.send().await.expect("the event stream opens");
    assert_eq!(r.status(), 200);
    Box::pin(
        r.bytes_stream()
            .eventsource()
            .map(|e| e.expect("a well-formed event")),
    )
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream is open")
}

/// A metric's value from `/metrics`.
async fn metric(s: &Server, name: &str) -> f64 {
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics reads");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Waits until a metric satisfies `ok`.
async fn wait_for_metric(s: &Server, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = metric(s, name).await;
        if ok(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rename(s: &Server, id: i64, name: &str) -> String {
    let c = client();
    let r = send(c.get(s.url(&format!("/products/{id}")))).await;
    let mut body = r.json();
    body["name"] = json!(name);
    let w = send(
        c.put(s.url(&format!("/products/{id}")))
            .header("If-Match", r.etag())
            .json(&body),
    )
    .await;
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    w.etag()
}

/// A cluster of the test's own, for a test that holds transaction ids: the horizon is
/// the whole cluster's, so on the shared one it would delay the other tests' feeds.
fn own_cluster(test: &str) -> Option<Cluster> {
    if bin_dir().is_none() {
        eprintln!(
            "SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql; .ci/run does)"
        );
        return None;
    }
    Some(
        Cluster::start()
            .expect("a cluster")
            .expect("PostgreSQL's programs"),
    )
}

/// An event stream read over a socket with a small receive window, so that what the
/// connection buffers is small and known: the server produces what the client reads.
struct SlowStream {
    stream: tokio::net::TcpStream,
    raw: Vec<u8>,
    body: String,
    head_done: bool,
}

impl SlowStream {
    async fn open(s: &Server, last_event_id: &str) -> SlowStream {
        use tokio::io::AsyncWriteExt;
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small window");
        let mut stream = socket.connect(s.addr).await.expect("connected");
        let request =
            format!("GET /events HTTP/1.1\r\nHost: test\r\nLast-Event-ID: {last_event_id}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("sent");
        SlowStream {
            stream,
            raw: Vec::new(),
            body: String::new(),
            head_done: false,
        }
    }

    /// The next event as (id, event, data); keep-alive comments skipped.
    async fn next(&mut self) -> (String, String, String) {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(end) = self.body.find("\n\n") {
                let text: String = self.body.drain(..end + 2).collect();
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_default()
                        .to_string()
                };
                if text.starts_with(':') {
                    continue;
                }
                return (field("id: "), field("event: "), field("data: "));
            }
            if !self.head_done {
                if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.raw[..end]).to_string();
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    self.raw.drain(..end + 4);
                    self.head_done = true;
                    continue;
                }
            } else if let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") {
                // A chunk: its size in hex, CRLF, the bytes, CRLF.
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&self.raw[..line]).trim(), 16)
                        .expect("a chunk size");
                if self.raw.len() >= line + 2 + size + 2 {
                    let chunk = self.raw[line + 2..line + 2 + size].to_vec();
                    self.body.push_str(&String::from_utf8_lossy(&chunk));
                    self.raw.drain(..line + 2 + size + 2);
                    continue;
                }
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut buf))
                .await
                .expect("bytes within 20 s")
                .expect("the stream reads");
            assert!(n > 0, "the stream ended");
            self.raw.extend_from_slice(&buf[..n]);
        }
    }
}

/// Holds a transaction id in `database` until the returned session commits or rolls back.
async fn hold_an_xid(cluster: &Cluster, database: &str) -> tokio_postgres::Client {
    let session = cluster.connect(database).await.expect("a session");
    session
        .batch_execute("BEGIN; SELECT pg_current_xact_id()")
        .await
        .expect("an xid taken");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xid_held_in_another_database_delays_events_and_loses_none() {
    let Some(cluster) = own_cluster("an_xid_held_in_another_database") else {
        return;
    };
    let cluster = &cluster;
    let (s, _) = server(cluster, &[]);
    let elsewhere = database_of(&cluster.create_database().expect("another database"));
    let mut events = subscribe(&s, None).await;
    let ready = next(&mut events).await;
    assert_eq!(ready.event, "ready");
    // The seeded catalog's changes are published.
    let published = wait_for_metric(&s, "catalog_feed_published_id", |v| v > 0.0).await;
    let session = hold_an_xid(cluster, &elsewhere).await;
    for i in 0..3 {
        rename(&s, i + 1, &format!("held {i}")).await;
    }
    // Committed and acknowledged, and held back: the feed sees them above the horizon and
    // publishes nothing.
    wait_for_metric(&s, "catalog_feed_held_changes", |n| n == 3.0).await;
    assert_eq!(metric(&s, "catalog_feed_published_id").await, published);
    assert!(metric(&s, "catalog_feed_horizon_lag_seconds").await >= 0.0);
    session.batch_execute("COMMIT").await.expect("the commit");
    let mut last = position(&ready.id);
    for i in 0..3 {
        let e = next(&mut events).await;
        assert_eq!(e.event, "updated");
        assert!(e.data.contains(&format!("held {i}")), "{e:?}");
        assert!(position(&e.id) > last);
        last = position(&e.id);
    }
    wait_for_metric(&s, "catalog_feed_held_changes", |n| n == 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_transaction_delays_events_and_loses_none() {
    let Some(cluster) = own_cluster("an_aborted_transaction") else {
        return;
    };
    let cluster = &cluster;
    let (s, database) = server(cluster, &[]);
    let mut events = subscribe(&s, None).await;
    assert_eq!(next(&mut events).await.event, "ready");
    let published = wait_for_metric(&s, "catalog_feed_published_id", |v| v > 0.0).await;
    // A transaction of the catalog's own database that logs a change it then abandons.
    let session = cluster.connect(&database).await.expect("a session");
    session
        .batch_execute(
            "BEGIN;
             INSERT INTO changes (at_ms, event) VALUES (0, '{\"seq\":0,\"op\":\"created\"}')",
        )
        .await
        .expect("a change logged in an open transaction");
    for i in 0..3 {
        rename(&s, i + 1, &format!("after abort {i}")).await;
    }
    wait_for_metric(&s, "catalog_feed_held_changes", |n| n == 3.0).await;
    assert_eq!(
        metric(&s, "catalog_feed_published_id").await,
        published,
        "held back"
    );
    session
        .batch_execute("ROLLBACK")
        .await
        .expect("the rollback");
    for i in 0..3 {
        let e = next(&mut events).await;
        assert_eq!(e.event, "updated", "the aborted change is never published");
        assert!(e.data.contains(&format!("after abort {i}")), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_boundary_inside_a_run_of_one_transactions_rows_loses_and_repeats_nothing() {
    let Some(cluster) = shared_or_skip("a_page_boundary_inside_a_run") else {
        return;
    };
    let (s, database) = server(cluster, &[]);
    let mut live = subscribe(&s, None).await;
    assert_eq!(next(&mut live).await.event, "ready");
    // 300 rows of one transaction (as a migrated log holds): more than the publisher's
    // page (256) and than many of a resumed stream's (32).
    let n = 300;
    cluster
        .psql(
            &database,
            &format!(
                "INSERT INTO changes (id, at_ms, event)
                 SELECT id, 0, '{{\"seq\":' || id || ',\"op\":\"created\"}}'
                 FROM (SELECT nextval('changes_id_seq') AS id FROM generate_series(1, {n})) s"
            ),
        )
        .expect("one transaction's rows");
    let mut heard: Vec<Event> = Vec::new();
    for _ in 0..n {
        heard.push(next(&mut live).await);
    }
    let tx = position(&heard[0].id).tx;
    for (k, e) in heard.iter().enumerate() {
        let p = position(&e.id);
        assert_eq!(p.tx, tx, "one transaction's rows");
        assert_eq!(
            p.id,
            position(&heard[0].id).id + k as i64,
            "in row order, no gap, no repeat"
        );
    }
    // Resumed from inside the run: the rest of it, page after page.
    let from = 10;
    let mut resumed = subscribe(&s, Some(&heard[from].id)).await;
    for want in &heard[from + 1..] {
        assert_eq!(next(&mut resumed).await.id, want.id);
    }
    // And what follows the run comes after it, on both.
    rename(&s, 1, "after the run").await;
    for events in [&mut live, &mut resumed] {
        let e = next(events).await;
        assert!(e.data.contains("after the run"), "{e:?}");
        assert!(position(&e.id) > position(&heard[n - 1].id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_the_log_under_a_resuming_stream_is_reset_not_a_gap() {
    let Some(cluster) = shared_or_skip("pruning_under_a_resuming_stream") else {
        return;
    };
    let (a, database) = server(cluster, &["--no-seed", "--send-buffer", "8192"]);
    let c = client();
    let mut live = subscribe(&a, None).await;
    let ready = next(&mut live).await;
    // A backlog far larger than what the connection buffers (8 KiB of send buffer, a
    // 4 KiB window, a page of 32 events in the stream): 300 changes of about 5 KB.
    let description = "d".repeat(2000);
    let n = 300;
    for i in 0..n {
        let mut p = product_json(&format!("P-{i}"), "pruned", 1, "in_stock");
        p["description"] = json!(description);
        let r = send(c.post(a.url("/products")).json(&p)).await;
        assert_eq!(r.status, 201);
    }
    let mut resumed = SlowStream::open(&a, &ready.id).await;
    let mut last = position(&ready.id);
    let check = |(id, event, data): &(String, String, String), k: i64, last: &mut Position| {
        assert_eq!(event, "created", "{id} {data}");
        let change: serde_json::Value = serde_json::from_str(data).expect("a change");
        assert_eq!(change["id"], k, "the next change, no gap");
        assert!(position(id) > *last);
        *last = position(id);
    };
    for k in 1..=5 {
        check(&resumed.next().await, k, &mut last);
    }
    // Another instance keeping 5 changes prunes the shared log as it starts.
    let url = a.db.to_string_lossy().into_owned();
    let b =
        Server::start_on(Path::new(&url), &["--change-log", "5"], "127.0.0.1:0").expect("B starts");
    let left = cluster
        .psql(&database, "SELECT count(*) FROM changes")
        .expect("the log");
    assert!(
        left.trim().parse::<i64>().expect("a count") <= 6,
        "pruned: {left}"
    );
    // The stream goes on with what it held, then says reset: never a silent gap.
    let mut k = 6;
    loop {
        let e = resumed.next().await;
        if e.1 == "reset" {
            break;
        }
        check(&e, k, &mut last);
        k += 1;
        assert!(
            k <= n,
            "the whole backlog came through: the prune was not under the resume"
        );
    }
    assert!(k < n, "reset before the end of the backlog ({k})");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_took_its_xid_before_the_version_it_builds_on_is_published_before_it() {
    let Some(cluster) = own_cluster("a_write_that_took_its_xid_early") else {
        return;
    };
    let cluster = &cluster;
    let (s, database) = server(cluster, &[]);
    let mut events = subscribe(&s, None).await;
    assert_eq!(next(&mut events).await.event, "ready");
    // A writer that takes its transaction id first, then waits...
    let early = hold_an_xid(cluster, &database).await;
    // ...while version 2 is written and acknowledged...
    rename(&s, 1, "version 2").await;
    // ...and only then builds version 3 on it, as the server's writes would, but with
    // its xid taken before version 2's.
    early
        .batch_execute(
            "UPDATE products SET name = 'version 3', version = 3 WHERE id = 1 AND version = 2;
             INSERT INTO changes (id, at_ms, event)
             SELECT id, 0, '{\"seq\":' || id || ',\"op\":\"updated\",\"id\":1,\"version\":3}'
             FROM (SELECT nextval('changes_id_seq') AS id) s;
             COMMIT",
        )
        .await
        .expect("version 3 written");
    let first = next(&mut events).await;
    let second = next(&mut events).await;
    let version = |e: &Event| {
        serde_json::from_str::<serde_json::Value>(&e.data).expect("data")["version"].clone()
    };
    // The inversion: version 3 before version 2. The servers' writes cannot do this: the
    // version-checked UPDATE is their first write, so their xid comes after the commit
    // of the version they build on; the load test of postgres_instances asserts it.
    assert_eq!((version(&first), version(&second)), (json!(3), json!(2)));
}
