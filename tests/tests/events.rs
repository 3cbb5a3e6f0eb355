//! The live event stream: one SSE event per committed change, in order, resumable with
//! Last-Event-ID, with `reset` when the change log no longer has what was missed. On
//! SQLite an event id is `<database>:<seq>`; on PostgreSQL (`CATALOG_TEST_DB=postgres`)
//! `<database>:<tx>.<id>`, in (transaction, row) order. The number these tests count is
//! the sequence number, or the change-log row's id (which follows the same count while
//! writes come one at a time).

use std::time::Duration;

use catalog_shared::event::{ChangeEvent, Op};
use catalog_tests::{Server, client, on_postgres, product_json, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

async fn subscribe(s: &Server, last_event_id: Option<&str>) -> Events {
    let mut req = client().get(s.url("/events"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    Box::pin(
        r.bytes_stream()
            .eventsource()
            .map(|e| e.expect("a well-formed event")),
    )
}

/// Where an event's id stands in the stream's order: (0, seq) for `<database>:<seq>`,
/// (tx, id) for `<database>:<tx>.<id>`.
fn pos(e: &Event) -> (u64, i64) {
    let parsed = e.id.rsplit_once(':').and_then(|(database, cursor)| {
        if database.len() != 16 {
            return None;
        }
        match cursor.split_once('.') {
            Some((tx, id)) if on_postgres() => Some((tx.parse().ok()?, id.parse().ok()?)),
            None if !on_postgres() => Some((0, cursor.parse().ok()?)),
            _ => None,
        }
    });
    parsed.unwrap_or_else(|| panic!("not an event id of this backend: {e:?}"))
}

/// The number an event's id counts: the sequence number, or the change-log row's id.
fn seq(e: &Event) -> i64 {
    pos(e).1
}

/// The id of this server's event number `number`, as a client would have kept it. On
/// PostgreSQL the id also names the change's transaction, read from the log; a number the
/// log does not hold (pruned, or not yet written) gets an id made up in the same form,
/// which names no change of the log.
async fn event_id(s: &Server, number: i64) -> String {
    let mut events = subscribe(s, None).await;
    let ready = next(&mut events).await;
    let database = ready.id.split(':').next().unwrap().to_string();
    if !on_postgres() {
        return format!("{database}:{number}");
    }
    let url = s.db.to_string_lossy().into_owned();
    let tx = catalog_tests::postgres::shared()
        .psql(
            &catalog_tests::postgres::database_of(&url),
            &format!("SELECT tx FROM changes WHERE id = {number}"),
        )
        .expect("the change log");
    let tx = match tx.trim() {
        "" if number == 0 => "0",
        "" => "1",
        tx => tx,
    };
    format!("{database}:{tx}.{number}")
}

/// Waits until the server has published its seeded catalog's 25 changes (on PostgreSQL
/// a transaction still running elsewhere in the cluster may hold them back a while), so
/// that a stream opened after it begins with `ready` at 25.
async fn seeded(s: &Server) {
    let mut events = subscribe(s, None).await;
    let ready = next(&mut events).await;
    let mut last = seq(&ready);
    while last < 25 {
        last = seq(&next(&mut events).await);
    }
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn a_subscriber_sees_every_change_in_order() {
    let s = Server::start();
    seeded(&s).await;
    let c = client();
    let mut events = subscribe(&s, None).await;
    let ready = next(&mut events).await;
    assert_eq!(
        (ready.event.as_str(), seq(&ready)),
        ("ready", 25),
        "the stream starts with the latest seq"
    );
    let database = ready.id.split(':').next().unwrap().to_string();
    assert_eq!(
        database.len(),
        16,
        "the id names the database: {}",
        ready.id
    );
    let created = send(
        c.post(s.url("/products"))
            .header("X-User", "alice")
            .json(&product_json("EV-1", "Evented", 100, "in_stock")),
    )
    .await;
    let id = created.json()["id"].as_i64().unwrap();
    let url = s.url(&format!("/products/{id}"));
    let updated = send(
        c.put(&url)
            .header("If-Match", created.etag())
            .header("X-User", "bob")
            .json(&product_json("EV-1", "Evented", 200, "in_stock")),
    )
    .await;
    send(
        c.delete(&url)
            .header("If-Match", updated.etag())
            .header("X-User", "carol"),
    )
    .await;

    let mut seqs = Vec::new();
    let mut got = Vec::new();
    for (op, by) in [
        (Op::Created, "alice"),
        (Op::Updated, "bob"),
        (Op::Deleted, "carol"),
    ] {
        let e = next(&mut events).await;
        assert_eq!(e.event, op.as_str());
        let data: ChangeEvent = serde_json::from_str(&e.data).unwrap();
        assert!(
            e.id.starts_with(&format!("{database}:")) && seq(&e) == data.seq,
            "id: is the database and the change's position: {} {}",
            e.id,
            data.seq
        );
        assert_eq!(data.op, op);
        assert_eq!(data.id, id);
        assert_eq!(data.updated_by, by);
        seqs.push(data.seq);
        got.push(data);
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(got[0].etag, created.etag());
    assert_eq!(got[1].etag, updated.etag());
    assert_eq!(got[1].version, 2);
    assert_eq!(got[1].product.price_cents, 200);
}

#[tokio::test]
async fn last_event_id_resumes_from_the_change_log() {
    let s = Server::start();
    let c = client();
    // The seed made 25 changes; subscribe from the 20th and get 21..25, then live ones.
    let mut events = subscribe(&s, Some(&event_id(&s, 20).await)).await;
    for want in 21..=25 {
        let e = next(&mut events).await;
        assert_eq!(seq(&e), want);
        assert_eq!(e.event, "created");
    }
    let r = send(c.get(s.url("/products/1"))).await;
    send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .json(&product_json("BBQ-KETTLE-57", "Grill", 5, "in_stock")),
    )
    .await;
    let e = next(&mut events).await;
    assert_eq!((seq(&e), e.event.as_str()), (26, "updated"));
}

#[tokio::test]
async fn a_too_old_or_foreign_last_event_id_gets_reset() {
    let s = Server::start_with_args(&["--change-log", "5"]);
    seeded(&s).await;
    let mut old = subscribe(&s, Some(&event_id(&s, 3).await)).await;
    let e = next(&mut old).await;
    assert_eq!(e.event, "reset");
    assert_eq!(seq(&e), 25, "the reset names the latest sequence");
    let mut future = subscribe(&s, Some(&event_id(&s, 999).await)).await;
    assert_eq!(next(&mut future).await.event, "reset");
    for junk in ["abc", "21", "x:21", ":21", "21:"] {
        let mut junk = subscribe(&s, Some(junk)).await;
        assert_eq!(next(&mut junk).await.event, "reset");
    }
    // An id of another database, with a sequence number this one has, is not resumed
    // against the wrong data.
    let other = Server::start();
    seeded(&other).await;
    let mut foreign = subscribe(&s, Some(&event_id(&other, 21).await)).await;
    let e = next(&mut foreign).await;
    assert_eq!((e.event.as_str(), seq(&e)), ("reset", 25));
    assert!(e.data.contains("another database"), "{}", e.data);
    // Within the kept window, resumption works.
    let mut ok = subscribe(&s, Some(&event_id(&s, 21).await)).await;
    assert_eq!(seq(&next(&mut ok).await), 22);
}

#[tokio::test]
async fn many_subscribers_all_see_the_same_order() {
    let s = Server::start();
    seeded(&s).await;
    let c = client();
    let mut subs = Vec::new();
    for _ in 0..5 {
        subs.push(subscribe(&s, None).await);
    }
    for i in 0..10 {
        send(c.post(s.url("/products")).json(&product_json(
            &format!("M-{i}"),
            "Many",
            i,
            "in_stock",
        )))
        .await;
    }
    for sub in &mut subs {
        assert_eq!(next(sub).await.event, "ready");
        for want in 26..=35 {
            assert_eq!(seq(&next(sub).await), want);
        }
    }
}

#[tokio::test]
async fn a_process_sharing_the_database_passes_on_the_others_changes_in_order() {
    let a = Server::start();
    seeded(&a).await;
    let b = Server::start_on(&a.db, &[], "127.0.0.1:0").unwrap();
    let c = client();
    let mut events = subscribe(&b, None).await;
    assert_eq!(next(&mut events).await.event, "ready");
    // A change through A reaches B's subscriber (B reads the shared change log).
    let put = |url: String, etag: String, user: &'static str, price: i64| {
        c.put(url)
            .header("If-Match", etag)
            .header("X-User", user)
            .json(&product_json("BBQ-KETTLE-57", "Grill", price, "in_stock"))
    };
    let r = send(c.get(a.url("/products/1"))).await;
    let w1 = send(put(a.url("/products/1"), r.etag(), "alice", 1)).await;
    assert_eq!(w1.status, 200);
    let first: ChangeEvent = serde_json::from_str(&next(&mut events).await.data).unwrap();
    assert_eq!((first.seq, first.updated_by.as_str()), (26, "alice"));
    // One more through A and at once one through B: B sends A's first, then its own.
    let w2 = send(put(a.url("/products/1"), w1.etag(), "alice", 2)).await;
    let w3 = send(put(b.url("/products/1"), w2.etag(), "bob", 3)).await;
    assert_eq!((w2.status, w3.status), (200, 200));
    let second: ChangeEvent = serde_json::from_str(&next(&mut events).await.data).unwrap();
    let third: ChangeEvent = serde_json::from_str(&next(&mut events).await.data).unwrap();
    assert_eq!((second.seq, second.updated_by.as_str()), (27, "alice"));
    assert_eq!((third.seq, third.updated_by.as_str()), (28, "bob"));
}

#[tokio::test]
async fn two_processes_on_one_file_each_pass_on_every_change_of_the_other_once_in_order() {
    let a = Server::start();
    seeded(&a).await;
    let b = Server::start_on(&a.db, &[], "127.0.0.1:0").unwrap();
    let mut on_a = subscribe(&a, None).await;
    let mut on_b = subscribe(&b, None).await;
    for events in [&mut on_a, &mut on_b] {
        let ready = next(events).await;
        assert_eq!((ready.event.as_str(), seq(&ready)), ("ready", 25));
    }
    // Eight writers, four on each process, all at once.
    const PER_WRITER: usize = 25;
    let mut writers = Vec::new();
    for w in 0..8 {
        let url = if w % 2 == 0 {
            a.url("/products")
        } else {
            b.url("/products")
        };
        writers.push(tokio::spawn(async move {
            let c = client();
            let mut ids = Vec::new();
            for i in 0..PER_WRITER {
                let r = send(
                    c.post(&url)
                        .header("X-User", format!("w{w}"))
                        .json(&product_json(&format!("W{w}-{i}"), "Raced", 1, "in_stock")),
                )
                .await;
                assert_eq!(r.status, 201);
                ids.push(r.json()["id"].as_i64().unwrap());
            }
            ids
        }));
    }
    let mut created = Vec::new();
    for w in writers {
        created.extend(w.await.unwrap());
    }
    created.sort();
    let total = 8 * PER_WRITER as i64;
    let mut heard_on_a = Vec::new();
    for (name, events) in [("A", &mut on_a), ("B", &mut on_b)] {
        let mut ids = Vec::new();
        let mut last = (0, 25);
        let mut heard = Vec::new();
        for want in 26..26 + total {
            let e = next(events).await;
            assert_eq!(e.event, "created", "{name}: {e:?}");
            // SQLite numbers changes in commit order; PostgreSQL's row ids are handed out
            // before commit, so there only the order of the ids is promised.
            assert!(
                pos(&e) > last && (on_postgres() || seq(&e) == want),
                "{name}'s subscriber gets every change once, in order: {e:?} after {last:?}"
            );
            last = pos(&e);
            let data: ChangeEvent = serde_json::from_str(&e.data).unwrap();
            ids.push(data.id);
            heard.push(e.id);
        }
        ids.sort();
        assert_eq!(ids, created, "{name}'s subscriber heard of every product");
        if name == "A" {
            heard_on_a = heard;
        } else {
            assert_eq!(heard, heard_on_a, "both in one order");
        }
    }
    // An event id from A resumes on B: same database, same log.
    let mut resumed = subscribe(&b, Some(&heard_on_a[4])).await;
    assert_eq!(next(&mut resumed).await.id, heard_on_a[5]);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_costs_a_bounded_amount() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with_args(&["--write-timeout", "1s", "--send-buffer", "8192"]);
    let c = client();
    for i in 0..300 {
        let r = send(c.post(s.url("/products")).json(&product_json(
            &format!("SLOW-{i}"),
            "A product with a long enough name to make each event weigh something",
            i,
            "in_stock",
        )))
        .await;
        assert_eq!(r.status, 201);
    }
    // Resume from the start of the log, with a small window, and read nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(s.addr).await.unwrap();
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: test\r\nLast-Event-ID: {}\r\n\r\n",
        event_id(&s, 0).await
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    s.wait_for_log("dropped a connection", Duration::from_secs(30))
        .expect("the server drops the client that stopped reading");
    // What had been sent before is still readable; then the connection ends, long before
    // the whole backlog of 325 events.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut got))
        .await
        .expect("the connection ends")
        .ok();
    let text = String::from_utf8_lossy(&got);
    let events = text.matches("\nevent: created").count();
    assert!(
        events < 325,
        "only what fit in the buffers was sent ({events})"
    );
    // The server is fine: others are served.
    assert_eq!(send(c.get(s.url("/health"))).await.status, 200);
}
