//! Races against the real server: the precondition check and the write are one
//! compare-and-set, so concurrent writers can never both win.

use std::sync::Arc;

use catalog_tests::{Server, client, send};
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
