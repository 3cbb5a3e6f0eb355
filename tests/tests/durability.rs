//! What survives: restarts keep every ETag, `kill -9` loses nothing that was acknowledged,
//! a re-created database never reuses an ETag, and SIGTERM shuts down gracefully.

use std::time::Duration;

use catalog_tests::{Server, client, product_json, send};

async fn all_etags(s: &Server) -> Vec<(i64, String)> {
    let c = client();
    let page = send(c.get(s.url("/products?limit=1000"))).await.json();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["etag"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_restart_keeps_every_etag() {
    let mut s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let w = send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .json(&product_json("BBQ-KETTLE-57", "Grill", 1, "in_stock")),
    )
    .await;
    assert_eq!(w.status, 200);
    let before = all_etags(&s).await;
    assert!(
        s.terminate(Duration::from_secs(20)).unwrap(),
        "graceful exit"
    );
    s.restart().unwrap();
    assert_eq!(all_etags(&s).await, before);
    // The stale tag is still stale and the fresh one still matches after the restart.
    let c = client();
    let stale = send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .json(&product_json("BBQ-KETTLE-57", "Grill", 2, "in_stock")),
    )
    .await;
    assert_eq!(stale.status, 412);
    let fresh = send(
        c.put(s.url("/products/1"))
            .header("If-Match", w.etag())
            .json(&product_json("BBQ-KETTLE-57", "Grill", 2, "in_stock")),
    )
    .await;
    assert_eq!(fresh.status, 200);
}

#[tokio::test]
async fn two_processes_on_one_database_agree_on_etags() {
    let a = Server::start();
    let b = Server::start_on(&a.db, &[], "127.0.0.1:0").unwrap();
    let c = client();
    let ra = send(c.get(a.url("/products/2"))).await;
    let rb = send(c.get(b.url("/products/2"))).await;
    assert_eq!(ra.etag(), rb.etag());
    // A write through one is a stale precondition through the other.
    let w = send(
        c.put(a.url("/products/2"))
            .header("If-Match", ra.etag())
            .json(&product_json("LAMP-ARC-01", "Lamp", 1, "in_stock")),
    )
    .await;
    assert_eq!(w.status, 200);
    let stale = send(
        c.put(b.url("/products/2"))
            .header("If-Match", rb.etag())
            .json(&product_json("LAMP-ARC-01", "Lamp", 2, "in_stock")),
    )
    .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.etag(), w.etag());
}

#[tokio::test]
async fn kill_9_after_acknowledged_writes_loses_nothing() {
    let mut s = Server::start_with_args(&["--no-seed"]);
    let c = client();
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let r = send(c.post(s.url("/products")).json(&product_json(
            &format!("K-{i}"),
            "Durable",
            i,
            "in_stock",
        )))
        .await;
        assert_eq!(r.status, 201);
        acknowledged.push((r.json()["id"].as_i64().unwrap(), r.etag()));
    }
    // Updates too, the last one immediately before the kill.
    let (id, etag) = acknowledged[0].clone();
    let u = send(
        c.put(s.url(&format!("/products/{id}")))
            .header("If-Match", etag)
            .json(&product_json("K-0", "Updated", 7, "out_of_stock")),
    )
    .await;
    assert_eq!(u.status, 200);
    acknowledged[0].1 = u.etag();
    s.kill9();
    s.restart().unwrap();
    let after = all_etags(&s).await;
    assert_eq!(after, acknowledged);
    let p = send(client().get(s.url(&format!("/products/{id}"))))
        .await
        .json();
    assert_eq!(p["name"], "Updated");
}

#[tokio::test]
async fn a_recreated_database_never_reuses_an_etag() {
    let a = Server::start();
    let b = Server::start();
    let ea = all_etags(&a).await;
    let eb = all_etags(&b).await;
    assert_eq!(ea.len(), eb.len());
    for ((ida, ta), (idb, tb)) in ea.iter().zip(&eb) {
        assert_eq!(ida, idb);
        assert_ne!(
            ta, tb,
            "same id and version, different database: different tag"
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_even_with_open_event_streams() {
    let mut s = Server::start();
    let c = client();
    let events = c.get(s.url("/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        s.terminate(Duration::from_secs(20)).unwrap(),
        "exit status 0"
    );
    assert!(s.log().iter().any(|l| l.contains("shutting down")));
    drop(events);
}
