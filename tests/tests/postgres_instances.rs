//! Several `catalog-server` instances on one PostgreSQL database: one winner per ETag
//! generation whichever instance a racer reaches, every change on every instance's event
//! stream exactly once and in order (even under writers on both), `Last-Event-ID`
//! resumed against the other instance, a lost LISTEN connection recovered, and two
//! instances starting together on a new database. Skipped, with a line saying so, where
//! PostgreSQL is not installed; `.ci/run` installs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog_shared::event::{ChangeEvent, EventId};
use catalog_tests::postgres::{Cluster, shared_or_skip};
use catalog_tests::{Server, client, product_json, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::json;

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Two instances on one fresh database (the first seeds it).
fn two_instances(cluster: &Cluster) -> (Server, Server) {
    let url = cluster.create_database().expect("a fresh database");
    let a = Server::start_on(Path::new(&url), &[], "127.0.0.1:0").expect("instance A starts");
    let b = Server::start_on(Path::new(&url), &[], "127.0.0.1:0").expect("instance B starts");
    (a, b)
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

fn seq(e: &Event) -> i64 {
    e.id.parse::<EventId>()
        .unwrap_or_else(|err| panic!("{err}: {e:?}"))
        .seq
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
    for want in seq(&on_a_event) + 1..=seq(&on_a_event) + 3 {
        let e = next(&mut resumed).await;
        assert_eq!((e.event.as_str(), seq(&e)), ("created", want));
    }
    let mut resumed_on_a = subscribe(&a, Some(&on_a_event.id)).await;
    assert_eq!(seq(&next(&mut resumed_on_a).await), seq(&on_a_event) + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_writers_on_both_instances_each_stream_carries_every_acknowledged_write_once_in_order()
 {
    let Some(cluster) = shared_or_skip("under_writers_on_both_instances") else {
        return;
    };
    let (a, b) = two_instances(cluster);
    // Each stream is read all along (a subscriber that stops reading is rightly sent
    // `reset`), until it has heard the last acknowledged write.
    let (last_tx, last_rx) = tokio::sync::watch::channel(None::<i64>);
    let mut readers = Vec::new();
    let mut start = 0;
    for s in [&a, &b] {
        let mut events = subscribe(s, None).await;
        let ready = next(&mut events).await;
        assert_eq!(ready.event, "ready");
        start = seq(&ready);
        let mut last = last_rx.clone();
        readers.push(tokio::spawn(async move {
            let mut heard = Vec::new();
            loop {
                if let Some(last) = *last.borrow_and_update()
                    && heard.last().is_some_and(|e: &Event| seq(e) >= last)
                {
                    return heard;
                }
                tokio::select! {
                    e = next(&mut events) => heard.push(e),
                    _ = last.changed() => {}
                }
            }
        }));
    }
    // Writers on both instances for a few seconds, each creating products and updating
    // them; every acknowledged write is kept as (id, version) -> etag.
    let until = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for w in 0..6 {
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
    for w in writers {
        for (key, etag) in w.await.expect("the writer finishes") {
            assert!(
                acked.insert(key, etag).is_none(),
                "each write acknowledged once"
            );
        }
    }
    let total = acked.len() as i64;
    assert!(total > 50, "the writers got through only {total} writes");
    last_tx.send_replace(Some(start + total));
    for (name, reader) in ["A", "B"].into_iter().zip(readers) {
        let events = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("the stream carries every write within 60 s")
            .expect("the reader finishes");
        let mut heard = BTreeMap::new();
        for (e, want) in events.iter().zip(start + 1..) {
            assert_eq!(
                seq(e),
                want,
                "{name}: sequence order, no gap, no repeat ({e:?})"
            );
            assert!(
                e.event == "created" || e.event == "updated",
                "{name}: {e:?}"
            );
            let change: ChangeEvent = serde_json::from_str(&e.data).expect("a change event");
            assert_eq!(change.seq, want);
            assert!(
                heard
                    .insert((change.id, change.version), change.etag)
                    .is_none(),
                "{name}: once"
            );
        }
        assert_eq!(events.len() as i64, total, "{name}: nothing more");
        assert_eq!(
            heard, acked,
            "{name}'s stream carries exactly the acknowledged writes"
        );
    }
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
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .expect("the LISTEN sessions are terminated");
    assert_eq!(killed.trim(), "2", "one LISTEN connection per instance");
    b.wait_for_log("reconnecting", Duration::from_secs(10))
        .expect("B notices");
    // Listening again: a LISTEN session per instance is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = cluster
            .psql(&database, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
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
