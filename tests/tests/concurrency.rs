//! Races against the real server: the precondition check and the write are one
//! compare-and-set, so concurrent writers can never both win.

use std::sync::Arc;

use catalog_tests::{Server, client, product_json, send};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_puts_with_the_same_if_match_one_wins() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let etag = r.etag();
    let base = r.json();
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = c.clone();
        let url = s.url("/products/1");
        let etag = etag.clone();
        let mut body = base.clone();
        body["price_cents"] = json!(1000 + i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            send(
                c.put(url)
                    .header("If-Match", etag)
                    .header("X-User", format!("w{i}"))
                    .json(&body),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        31,
        "{statuses:?}"
    );
    let now = send(c.get(s.url("/products/1"))).await.json();
    assert_eq!(now["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_write_increments_are_never_lost() {
    let s = Server::start();
    let c = client();
    const WRITERS: i64 = 8;
    const EACH: i64 = 10;
    let start = send(c.get(s.url("/products/5"))).await.json()["price_cents"]
        .as_i64()
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = c.clone();
        let url = s.url("/products/5");
        tasks.push(tokio::spawn(async move {
            let mut retries = 0;
            for _ in 0..EACH {
                loop {
                    let r = send(c.get(&url)).await;
                    let mut p = r.json();
                    p["price_cents"] = json!(p["price_cents"].as_i64().unwrap() + 1);
                    let w = send(
                        c.put(&url)
                            .header("If-Match", r.etag())
                            .header("X-User", format!("writer{w}"))
                            .json(&p),
                    )
                    .await;
                    match w.status {
                        200 => break,
                        412 => retries += 1,
                        other => panic!("unexpected {other}"),
                    }
                }
            }
            retries
        }));
    }
    let mut retries = 0;
    for t in tasks {
        retries += t.await.unwrap();
    }
    let end = send(c.get(s.url("/products/5"))).await.json();
    assert_eq!(
        end["price_cents"].as_i64().unwrap(),
        start + WRITERS * EACH,
        "after {retries} retries on 412"
    );
    assert_eq!(end["version"].as_i64().unwrap(), 1 + WRITERS * EACH);
}

/// Two server processes on one database: each keeps the products it read lately in memory
/// (SQLite) while nothing was committed, so each must notice the other's commits. A write
/// acknowledged by one is what the very next read through the other answers: a new
/// version, a product that did not exist, a deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_process_is_read_at_once_through_the_other() {
    let a = Server::start();
    let b = Server::start_on(&a.db, &[], "127.0.0.1:0").expect("a second server on the file");
    let c = client();
    let (mut etag, mut version) = {
        let r = send(c.get(a.url("/products/1"))).await;
        (r.etag(), r.json()["version"].as_i64().expect("a version"))
    };
    for round in 0..20 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        // Both have just read the product (so both may answer it from memory).
        for s in [writer, reader] {
            let r = send(c.get(s.url("/products/1"))).await;
            assert_eq!((r.status, r.etag()), (200, etag.clone()), "round {round}");
        }
        let w = send(
            c.put(writer.url("/products/1"))
                .header("If-Match", &etag)
                .header("X-User", "alice")
                .json(&product_json(
                    "BBQ-KETTLE-57",
                    "Grill",
                    100 + round,
                    "in_stock",
                )),
        )
        .await;
        assert_eq!(w.status, 200, "round {round}");
        let r = send(c.get(reader.url("/products/1"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.etag(),
            w.etag(),
            "round {round}: the other process's write"
        );
        assert_eq!(r.json()["version"], version + 1);
        assert_eq!(r.json()["price_cents"], 100 + round);
        // And a conditional GET with the old ETag is not answered 304.
        let r = send(
            c.get(reader.url("/products/1"))
                .header("If-None-Match", &etag),
        )
        .await;
        assert_eq!(r.status, 200, "round {round}: the old ETag is not current");
        etag = w.etag();
        version += 1;
    }

    // A product the other process answered 404 for, created through one: found at once.
    let create = |sku: &'static str| {
        c.post(a.url("/products"))
            .header("X-User", "alice")
            .json(&product_json(sku, "New", 1, "in_stock"))
    };
    let first = send(create("NEW-1")).await;
    assert_eq!(first.status, 201);
    let next = first.json()["id"].as_i64().expect("an id") + 1;
    let path = format!("/products/{next}");
    assert_eq!(send(c.get(b.url(&path))).await.status, 404);
    let created = send(create("NEW-2")).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["id"], next);
    let r = send(c.get(b.url(&path))).await;
    assert_eq!((r.status, r.etag()), (200, created.etag()));

    // A deletion through B: A answers 410 at once.
    let r = send(c.get(a.url(&path))).await;
    assert_eq!(r.status, 200);
    let d = send(
        c.delete(b.url(&path))
            .header("If-Match", created.etag())
            .header("X-User", "bob"),
    )
    .await;
    assert!(
        d.status == 204 || d.status == 200,
        "{}",
        String::from_utf8_lossy(&d.body)
    );
    let r = send(c.get(a.url(&path))).await;
    assert_eq!(r.status, 410);
}
