//! Several `catalog-server` instances on one PostgreSQL database: one winner per ETag
//! generation whichever instance a racer reaches; under writers on both (version-checked
//! racers on one product among them) every instance's stream is the same sequence, each
//! acknowledged write once, versions of a product strictly increasing; `Last-Event-ID`
//! from any event resumed on the other instance gives the same tail; presence crossing
//! instances and ending when its instance is killed; a lost LISTEN connection
//! recovered; two instances starting together on a new database. Skipped, with a line
//! saying so, where PostgreSQL is not installed; `.ci/run` installs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog_shared::event::ChangeEvent;
use catalog_tests::postgres::{Cluster, Position, database_of, position, shared_or_skip};
use catalog_tests::{Server, client, product_json, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::json;

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Two instances on one fresh database (the first seeds it).
fn two_instances(cluster: &Cluster) -> (Server, Server) {
    two_instances_with(cluster, &[])
}

fn two_instances_with(cluster: &Cluster, args: &[&str]) -> (Server, Server) {
    let url = cluster.create_database().expect("a fresh database");
    let a = Server::start_on(Path::new(&url), args, "127.0.0.1:0").expect("instance A starts");
    let b = Server::start_on(Path::new(&url), args, "127.0.0.1:0").expect("instance B starts");
    (a, b)
}

/// Waits until `s` has published the seeded catalog's 25 changes (a transaction still
/// running elsewhere in the shared cluster may hold them back a while), so that a stream
/// opened after it begins after them.
async fn seeded(s: &Server) {
    let mut events = subscribe(s, None).await;
    let mut last = pos(&next(&mut events).await).id;
    while last < 25 {
        last = pos(&next(&mut events).await).id;
    }
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

fn pos(e: &Event) -> Position {
    position(&e.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racers_split_across_two_instances_get_one_winner_per_etag_generation() {
    let Some(cluster) = shared_or_skip("racers_split_across_two_instances") else {
        return;
    };
    let (a, b) = two_instances(cluster);
    assert!(
        a.log().iter().any(|l| l.contains("postgres://")),
        "on PostgreSQL"
    );
    let c = client();
    let first = send(c.get(a.url("/products/1"))).await;
    assert_eq!(
        first.etag(),
        send(c.get(b.url("/products/1"))).await.etag(),
        "both instances mint the same tag"
    );
    let mut etag = first.etag();
    let base = first.json();
    for generation in 0..3 {
        let barrier = Arc::new(tokio::sync::Barrier::new(32));
        let mut racers = Vec::new();
        for i in 0..32 {
            let url = if i % 2 == 0 {
                a.url("/products/1")
            } else {
                b.url("/products/1")
            };
            let (c, etag, barrier) = (c.clone(), etag.clone(), barrier.clone());
            let mut body = base.clone();
            body["price_cents"] = json!(1000 * generation + i);
            racers.push(tokio::spawn(async move {
                barrier.wait().await;
                send(
                    c.put(url)
                        .header("If-Match", etag)
                        .header("X-User", format!("racer{i}"))
                        .json(&body),
                )
                .await
            }));
        }
        let mut replies = Vec::new();
        for r in racers {
            replies.push(r.await.expect("the racer finishes"));
        }
        let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "generation {generation}: exactly one 200");
        let winner = winners[0];
        for loser in replies.iter().filter(|r| r.status != 200) {
            let p = loser.problem(412);
            assert_eq!(
                loser.etag(),
                winner.etag(),
                "a loser is told the winner's tag"
            );
            assert_eq!(p["current"], winner.json(), "and the winner's state");
        }
        assert_eq!(winner.json()["version"], 2 + generation);
        etag = winner.etag();
    }
}

#[tokio::test]
async fn an_update_on_one_instance_reaches_the_others_subscribers_and_resumes_there() {
    let Some(cluster) = shared_or_skip("an_update_on_one_instance_reaches_the_other") else {
        return;
    };
    let (a, b) = two_instances(cluster);
    seeded(&a).await;
    seeded(&b).await;
    let c = client();
    let mut on_a = subscribe(&a, None).await;
    let mut on_b = subscribe(&b, None).await;
    assert_eq!(next(&mut on_a).await.event, "ready");
    assert_eq!(next(&mut on_b).await.event, "ready");
    let r = send(c.get(a.url("/products/3"))).await;
    let mut body = r.json();
    body["price_cents"] = json!(1);
    let w = send(
        c.put(a.url("/products/3"))
            .header("If-Match", r.etag())
            .json(&body),
    )
    .await;
    assert_eq!(w.status, 200);
    let heard = next(&mut on_b).await;
    assert_eq!(heard.event, "updated");
    let change: ChangeEvent = serde_json::from_str(&heard.data).expect("a change event");
    assert_eq!((change.id, change.etag.as_str()), (3, w.etag().as_str()));
    // Last-Event-ID from A's stream resumes on B: same database, same log, same ids.
    let on_a_event = next(&mut on_a).await;
    assert_eq!(
        on_a_event.id, heard.id,
        "both streams name the change alike"
    );
    for i in 0..3 {
        let r = send(c.post(b.url("/products")).json(&product_json(
            &format!("R-{i}"),
            "r",
            1,
            "in_stock",
        )))
        .await;
        assert_eq!(r.status, 201);
    }
    let mut resumed = subscribe(&b, Some(&on_a_event.id)).await;
    let mut resumed_on_a = subscribe(&a, Some(&on_a_event.id)).await;
    let mut after = pos(&on_a_event);
    for i in 0..3 {
        let e = next(&mut resumed).await;
        assert_eq!(e.event, "created");
        assert!(
            e.data.contains(&format!("R-{i}")),
            "in the order written: {e:?}"
        );
        assert!(pos(&e) > after, "ids ascend: {e:?}");
        after = pos(&e);
        assert_eq!(next(&mut resumed_on_a).await.id, e.id, "A resumes alike");
    }
}

/// A writer's PUT with If-Match, retried on 412 with the state the answer carries (as
/// the client's conflict panel does) until it lands; returns the version it made.
async fn put_until_it_lands(
    c: &reqwest::Client,
    url: &str,
    mut current: serde_json::Value,
    price: i64,
) -> (i64, String) {
    loop {
        let etag = current["etag"].as_str().expect("an etag").to_string();
        let mut body = current.clone();
        body["price_cents"] = json!(price);
        let r = send(c.put(url).header("If-Match", &etag).json(&body)).await;
        match r.status {
            200 => return (r.json()["version"].as_i64().expect("a version"), r.etag()),
            412 => current = r.problem(412)["current"].clone(),
            other => panic!("PUT answered {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_writers_on_both_instances_every_stream_is_the_same_sequence_of_every_acknowledged_write()
 {
    let Some(cluster) = shared_or_skip("under_writers_on_both_instances") else {
        return;
    };
    let (a, b) = two_instances_with(cluster, &["--no-seed"]);
    // Each stream is read all along (a subscriber that stops reading is rightly sent
    // `reset`), from the creation of the product the racers share (the first write,
    // its event is the mark: anything the stream carried before it is not counted),
    // until it has heard as many changes as writes were acknowledged. The mark is known
    // before that write (its sku): the event may well reach a stream before the
    // write's own answer reaches this test.
    const SHARED_SKU: &str = "SHARED";
    let is_mark = |e: &Event| {
        e.event == "created"
            && serde_json::from_str::<ChangeEvent>(&e.data)
                .is_ok_and(|c| c.product.sku == SHARED_SKU)
    };
    let (total_tx, total_rx) = tokio::sync::watch::channel(None::<usize>);
    let mut readers = Vec::new();
    for s in [&a, &b] {
        let mut events = subscribe(s, None).await;
        let ready = next(&mut events).await;
        assert_eq!(ready.event, "ready");
        let mut total = total_rx.clone();
        readers.push(tokio::spawn(async move {
            let mut heard: Vec<Event> = Vec::new();
            loop {
                if total.borrow_and_update().is_some_and(|t| heard.len() >= t) {
                    return heard;
                }
                tokio::select! {
                    e = next(&mut events) => {
                        if !heard.is_empty() || is_mark(&e) {
                            heard.push(e);
                        }
                    }
                    _ = total.changed() => {}
                }
            }
        }));
    }
    let c = client();
    let shared = send(
        c.post(a.url("/products"))
            .json(&product_json(SHARED_SKU, "raced", 0, "in_stock")),
    )
    .await;
    assert_eq!(shared.status, 201);
    let shared_product = shared.json()["id"].as_i64().expect("an id");
    // Writers on both instances for a few seconds: some create products and update
    // them, others race version-checked PUTs on one shared product (each retries its
    // 412s); every acknowledged write is kept as (id, version) -> etag.
    let until = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for w in 0..8 {
        let base = if w % 2 == 0 {
            a.base_url()
        } else {
            b.base_url()
        };
        writers.push(tokio::spawn(async move {
            let c = client();
            let mut acked = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                if w >= 4 {
                    let url = format!("{base}/products/{shared_product}");
                    let current = send(c.get(&url)).await.json();
                    let (version, etag) = put_until_it_lands(&c, &url, current, i).await;
                    acked.push(((shared_product, version), etag));
                    i += 1;
                    continue;
                }
                let r = send(c.post(format!("{base}/products")).json(&product_json(
                    &format!("L{w}-{i}"),
                    "load",
                    1,
                    "in_stock",
                )))
                .await;
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                let mut p = r.json();
                let id = p["id"].as_i64().expect("an id");
                acked.push(((id, 1), r.etag()));
                let mut etag = r.etag();
                for price in 2..4 {
                    p["price_cents"] = json!(price);
                    let u = send(
                        c.put(format!("{base}/products/{id}"))
                            .header("If-Match", &etag)
                            .json(&p),
                    )
                    .await;
                    assert_eq!(u.status, 200);
                    etag = u.etag();
                    acked.push(((id, price), etag.clone()));
                }
                i += 1;
            }
            acked
        }));
    }
    let mut acked = BTreeMap::new();
    acked.insert((shared_product, 1), shared.etag());
    for w in writers {
        for (key, etag) in w.await.expect("the writer finishes") {
            assert!(
                acked.insert(key, etag).is_none(),
                "each write acknowledged once: {key:?}"
            );
        }
    }
    let total = acked.len();
    assert!(total > 50, "the writers got through only {total} writes");
    let raced = acked.keys().filter(|(id, _)| *id == shared_product).count();
    assert!(raced > 10, "the racers landed only {raced} writes");
    let started = Instant::now();
    eprintln!("{total} writes acknowledged, {raced} of them by the racers");
    total_tx.send_replace(Some(total));
    let mut streams = Vec::new();
    for (name, reader) in ["A", "B"].into_iter().zip(readers) {
        let events = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .unwrap_or_else(|_| panic!("{name}'s stream carries {total} changes within 60 s"))
            .expect("the reader finishes");
        let mut heard = BTreeMap::new();
        let mut versions: BTreeMap<i64, i64> = BTreeMap::new();
        let mut last = None;
        for e in &events {
            assert!(
                e.event == "created" || e.event == "updated",
                "{name}: {e:?}"
            );
            assert!(last < Some(pos(e)), "{name}: ids ascend, no repeat ({e:?})");
            last = Some(pos(e));
            let change: ChangeEvent = serde_json::from_str(&e.data).expect("a change event");
            assert_eq!(change.seq, pos(e).id, "{name}: the data names its row");
            let before = versions.insert(change.id, change.version);
            assert!(
                before < Some(change.version),
                "{name}: product {}'s versions strictly increase ({before:?} then {})",
                change.id,
                change.version
            );
            assert!(
                heard
                    .insert((change.id, change.version), change.etag)
                    .is_none(),
                "{name}: once"
            );
        }
        assert_eq!(events.len(), total, "{name}: nothing more");
        let missing: Vec<_> = acked
            .iter()
            .filter(|(k, v)| heard.get(k) != Some(v))
            .take(5)
            .collect();
        let extra: Vec<_> = heard
            .iter()
            .filter(|(k, v)| acked.get(k) != Some(v))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}'s stream carries exactly the acknowledged writes: missing {missing:?}, extra {extra:?}"
        );
        streams.push(events);
    }
    eprintln!("both streams checked after {:?}", started.elapsed());
    let ids = |events: &[Event]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert!(
        ids(&streams[0]) == ids(&streams[1]),
        "both instances publish one sequence"
    );
    // Resuming from any event of A's stream on B (and of B's on A) gives the same tail.
    let on_a = &streams[0];
    for (k, from) in [0, on_a.len() / 3, on_a.len() / 2, on_a.len() - 2]
        .into_iter()
        .enumerate()
    {
        let other = if k % 2 == 0 { &b } else { &a };
        eprintln!("resuming from {from} after {:?}", started.elapsed());
        let mut resumed = subscribe(other, Some(&on_a[from].id)).await;
        for want in &on_a[from + 1..] {
            let e = next(&mut resumed).await;
            assert_eq!(
                (e.id.as_str(), e.data.as_str()),
                (want.id.as_str(), want.data.as_str()),
                "resumed after event {from}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_crosses_instances_and_ends_when_its_instance_is_killed() {
    let Some(cluster) = shared_or_skip("presence_crosses_instances") else {
        return;
    };
    let (mut a, b) = two_instances_with(cluster, &["--presence-ttl", "3s", "--no-seed"]);
    // B hears other instances once its LISTEN is in place (a few milliseconds after it
    // answers HTTP); an announcement told before is missed until renewed, and this test
    // announces once.
    b.wait_for_log("listening for other instances", Duration::from_secs(20))
        .expect("B listens to the other instances");
    let c = client();
    let mut on_b = subscribe(&b, None).await;
    assert_eq!(next(&mut on_b).await.event, "ready");
    let announced = send(
        c.put(a.url("/presence"))
            .header("X-Client-Id", "client-on-a")
            .header("X-User", "alice")
            .json(&json!({"product_id": 2, "field": "price"})),
    )
    .await;
    assert_eq!(announced.status, 204);
    let heard = next_presence(&mut on_b).await;
    let p: serde_json::Value = serde_json::from_str(&heard.data).expect("presence data");
    assert_eq!(
        p,
        json!({"client": "client-on-a", "user": "alice", "product_id": 2, "field": "price"})
    );
    // A stream opened on B now begins with it too.
    let mut fresh = subscribe(&b, None).await;
    assert_eq!(next(&mut fresh).await.event, "ready");
    assert_eq!(next_presence(&mut fresh).await.data, heard.data);
    // Not in the change log: no change event, and the feed's position did not move.
    let log = cluster
        .psql(
            &database_of(&a.db.to_string_lossy()),
            "SELECT count(*) FROM changes WHERE event LIKE '%client-on-a%'",
        )
        .expect("the change log");
    assert_eq!(log.trim(), "0");
    // A dies without withdrawing anything: B forgets it when it is not renewed.
    a.kill9();
    let gone = next_presence(&mut on_b).await;
    let p: serde_json::Value = serde_json::from_str(&gone.data).expect("presence data");
    assert_eq!(
        (p["client"].as_str(), &p["product_id"]),
        (Some("client-on-a"), &serde_json::Value::Null),
        "{p}"
    );
}

/// The next presence event of a stream (keep-alives aside, nothing else may come).
async fn next_presence(events: &mut Events) -> Event {
    let e = next(events).await;
    assert_eq!(e.event, "presence", "{e:?}");
    e
}

#[tokio::test]
async fn a_lost_listen_connection_is_reopened_and_changes_still_cross() {
    let Some(cluster) = shared_or_skip("a_lost_listen_connection_is_reopened") else {
        return;
    };
    let (a, b) = two_instances(cluster);
    let database =
        a.db.to_string_lossy()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
    let killed = cluster
        .psql(
            &database,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE '% listener'",
        )
        .expect("the LISTEN sessions are terminated");
    assert_eq!(killed.trim(), "2", "one LISTEN connection per instance");
    b.wait_for_log("reconnecting", Duration::from_secs(10))
        .expect("B notices");
    // Listening again: a LISTEN session per instance is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = cluster
            .psql(&database, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '% listener'")
            .expect("counting LISTEN sessions");
        if n.trim() == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the LISTEN connections came back ({n})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = client();
    seeded(&b).await;
    let mut on_b = subscribe(&b, None).await;
    assert_eq!(next(&mut on_b).await.event, "ready");
    let r =
        send(
            c.post(a.url("/products"))
                .json(&product_json("AFTER-RECONNECT", "r", 1, "in_stock")),
        )
        .await;
    assert_eq!(r.status, 201);
    let e = next(&mut on_b).await;
    assert_eq!(e.event, "created");
    assert!(e.data.contains("AFTER-RECONNECT"));
}

#[tokio::test]
async fn two_instances_starting_together_on_a_new_database_migrate_and_seed_once() {
    let Some(cluster) = shared_or_skip("two_instances_starting_together") else {
        return;
    };
    let url = cluster.create_database().expect("a fresh database");
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Server::start_on(Path::new(&url), &[], "127.0.0.1:0"))
        })
        .collect();
    let servers: Vec<Server> = starts
        .into_iter()
        .map(|t| {
            t.join()
                .expect("the start thread")
                .expect("the instance starts")
        })
        .collect();
    let c = client();
    let mut pages = Vec::new();
    for s in &servers {
        pages.push(send(c.get(s.url("/products?limit=1000"))).await.json());
    }
    assert_eq!(
        pages[0], pages[1],
        "one database, one catalog, the same tags"
    );
    let seeded = servers
        .iter()
        .filter(|s| s.log().iter().any(|l| l.contains("seeded")))
        .count();
    assert_eq!(seeded, 1, "exactly one instance seeded the new database");
    let versions = cluster
        .psql(
            url.rsplit('/').next().unwrap_or_default(),
            "SELECT count(*) = max(version) AND min(version) = 1 FROM schema_migrations",
        )
        .expect("the migrations table");
    // Every migration applied once, in order, however many there are.
    assert_eq!(
        versions.trim(),
        "t",
        "schema_migrations holds 1..n once each"
    );
}
