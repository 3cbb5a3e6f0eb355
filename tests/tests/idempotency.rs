//! Idempotency-Key over the wire: a retry is known by its key, never by its content. Runs
//! on SQLite, and on PostgreSQL with `CATALOG_TEST_DB=postgres` (as CI does).

use std::sync::Arc;

use catalog_tests::{Reply, Server, client, send};
use serde_json::{Value, json};

fn bbq(price: i64, status: &str) -> Value {
    json!({"sku": "BBQ-KETTLE-57", "name": "Kettle charcoal BBQ, 57 cm",
           "description": "Porcelain-enamelled bowl and lid, hinged cooking grate, ash catcher.",
           "price_cents": price, "status": status})
}

fn put(
    c: &reqwest::Client,
    url: &str,
    etag: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let req = c
        .put(url)
        .header("If-Match", etag)
        .header("X-User", "alice")
        .json(body);
    match key {
        Some(k) => req.header("Idempotency-Key", format!("\"{k}\"")),
        None => req,
    }
}

async fn versions(c: &reqwest::Client, s: &Server, id: i64) -> usize {
    let r = send(c.get(s.url(&format!("/products/{id}/versions")))).await;
    assert_eq!(r.status, 200);
    r.json().as_array().map(Vec::len).unwrap_or(0)
}

/// The list's ETag changes with every committed change: unchanged means no new event.
async fn list_etag(c: &reqwest::Client, s: &Server) -> String {
    send(c.get(s.url("/products"))).await.etag()
}

/// The lost update of the old content guess, as a user hit it: two edits of one user that
/// produce the same fields (two windows each taking one off the same stock) were taken for
/// one retry, and both heard "saved". Now the second is 412.
#[tokio::test]
async fn without_a_key_a_stale_if_match_is_412_even_for_the_same_edit() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let first = send(put(&c, &url, &v1, None, &bbq(39800, "in_stock"))).await;
    assert_eq!(first.status, 200);
    let second = send(put(&c, &url, &v1, None, &bbq(39800, "in_stock"))).await;
    let p = second.problem(412);
    assert_eq!(p["current"]["version"], 2);
    assert_eq!(versions(&c, &s, 1).await, 2);
}

/// 8 threads of one user each do 25 read-modify-write increments of one price, retrying
/// on 412: every acknowledged increment is there, with keys and without.
#[tokio::test]
async fn eight_threads_of_one_user_lose_no_increment() {
    for keyed in [false, true] {
        let s = Arc::new(Server::start());
        let c = client();
        let url = s.url("/products/1");
        let start = send(c.get(&url)).await.json()["price_cents"]
            .as_i64()
            .expect("a price");
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (c, url) = (c.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let key = format!("inc-{t}-{i}");
                    loop {
                        let got = send(c.get(&url)).await;
                        let mut body = got.json();
                        let price = body["price_cents"].as_i64().expect("a price");
                        body["price_cents"] = json!(price + 1);
                        let key = keyed.then_some(key.as_str());
                        let r = send(put(&c, &url, &got.etag(), key, &body)).await;
                        match r.status {
                            200 => break,
                            412 => continue,
                            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("an incrementing thread");
        }
        let end = send(c.get(&url)).await.json()["price_cents"]
            .as_i64()
            .expect("a price");
        assert_eq!(end - start, 200, "keyed: {keyed}");
        assert_eq!(versions(&c, &s, 1).await, 201, "keyed: {keyed}");
    }
}

fn assert_replay(r: &Reply, first: &Reply) {
    assert_eq!(
        r.status,
        first.status,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(r.header("etag"), first.header("etag"));
    assert_eq!(r.body, first.body, "the same representation");
}

#[tokio::test]
async fn a_replayed_keyed_put_makes_no_second_version_and_answers_as_the_first_time() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let body = bbq(30000, "in_stock");
    let first = send(put(&c, &url, &v1, Some("k-put"), &body)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("idempotent-replayed"), None);
    let list = list_etag(&c, &s).await;

    let again = send(put(&c, &url, &v1, Some("k-put"), &body)).await;
    assert_replay(&again, &first);
    assert_eq!(versions(&c, &s, 1).await, 2);
    assert_eq!(
        list_etag(&c, &s).await,
        list,
        "no new change, so no new event"
    );

    // Whatever happens since, the retry gets the version it made: here bob moves it on.
    let v2 = first.etag();
    let bob = send(
        c.put(&url)
            .header("If-Match", &v2)
            .header("X-User", "bob")
            .json(&bbq(30000, "out_of_stock")),
    )
    .await;
    assert_eq!(bob.status, 200);
    let late = send(put(&c, &url, &v1, Some("k-put"), &body)).await;
    assert_replay(&late, &first);
    assert_eq!(late.json()["version"], 2);
    assert_eq!(send(c.get(&url)).await.json()["status"], "out_of_stock");

    // The same key with another body, another If-Match or on another target: 422.
    let p = send(put(&c, &url, &v1, Some("k-put"), &bbq(30001, "in_stock")))
        .await
        .problem(422);
    assert!(
        p["detail"].as_str().unwrap_or("").contains("new key"),
        "{p}"
    );
    send(put(&c, &url, &v2, Some("k-put"), &body))
        .await
        .problem(422);
    let two = s.url("/products/2");
    let p = send(put(&c, &two, "\"x\"", Some("k-put"), &body))
        .await
        .problem(422);
    assert!(
        p["detail"].as_str().unwrap_or("").contains("/products/1"),
        "{p}"
    );
    // Keys belong to a user: bob's "k-put" is his own, and his stale write is 412.
    send(
        c.put(&url)
            .header("If-Match", &v1)
            .header("X-User", "bob")
            .header("Idempotency-Key", "\"k-put\"")
            .json(&body),
    )
    .await
    .problem(412);
}

#[tokio::test]
async fn a_refused_keyed_write_is_not_recorded_and_its_retry_is_judged_afresh() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    // Invalid: 422 for the field, nothing recorded.
    let bad = send(put(&c, &url, &v1, Some("k-fix"), &bbq(-1, "in_stock"))).await;
    let p = bad.problem(422);
    assert_eq!(p["errors"][0]["field"], "price_cents", "{p}");
    // Stale: 412, nothing recorded.
    send(put(
        &c,
        &url,
        "\"stale\"",
        Some("k-fix"),
        &bbq(1, "in_stock"),
    ))
    .await
    .problem(412);
    // The fixed request with the same key is a write like any other.
    let ok = send(put(&c, &url, &v1, Some("k-fix"), &bbq(1, "in_stock"))).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn a_replayed_keyed_post_creates_one_product() {
    let s = Server::start();
    let c = client();
    let post = || {
        c.post(s.url("/products"))
            .header("X-User", "alice")
            .header("Idempotency-Key", "post-1")
            .json(&catalog_tests::product_json(
                "KEYED-1", "Keyed", 100, "in_stock",
            ))
    };
    let first = send(post()).await;
    assert_eq!(first.status, 201);
    let again = send(post()).await;
    assert_replay(&again, &first);
    assert_eq!(again.header("location"), first.header("location"));
    let all = send(c.get(s.url("/products?limit=1000"))).await.json();
    let made = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["sku"] == "KEYED-1")
        .count();
    assert_eq!(made, 1);
}

#[tokio::test]
async fn a_replayed_keyed_delete_is_2xx_not_410() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/3");
    let etag = send(c.get(&url)).await.etag();
    let delete = || {
        c.delete(&url)
            .header("If-Match", &etag)
            .header("X-User", "alice")
            .header("Idempotency-Key", "\"del-3\"")
    };
    let first = send(delete()).await;
    assert_eq!(first.status, 204);
    let again = send(delete()).await;
    assert_eq!(again.status, 204);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    // Without the key the same request is told the truth: gone.
    send(
        c.delete(&url)
            .header("If-Match", &etag)
            .header("X-User", "alice"),
    )
    .await
    .problem(410);
}

#[tokio::test]
async fn concurrent_identical_keyed_puts_make_one_version() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let body = bbq(31500, "in_stock");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let req = put(&c, &url, &v1, Some("same-key"), &body);
        tasks.push(tokio::spawn(send(req)));
    }
    let mut etags = Vec::new();
    for t in tasks {
        let r = t.await.expect("a request");
        match r.status {
            200 => etags.push(r.etag()),
            409 => {
                let p = r.problem(409);
                assert!(r.header("retry-after").is_some(), "{p}");
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(!etags.is_empty());
    assert!(etags.iter().all(|e| *e == etags[0]), "{etags:?}");
    assert_eq!(versions(&c, &s, 1).await, 2, "one version made");
}

#[tokio::test]
async fn a_malformed_key_is_400_and_changes_nothing() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let long = "k".repeat(256);
    for bad in ["\"unterminated", "two words", "\"\"", long.as_str()] {
        let r = send(
            c.put(&url)
                .header("If-Match", &v1)
                .header("Idempotency-Key", bad)
                .json(&bbq(1, "in_stock")),
        )
        .await;
        r.problem(400);
    }
    let max = "k".repeat(255);
    let ok = send(put(&c, &url, &v1, Some(&max), &bbq(1, "in_stock"))).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn keys_survive_a_restart_and_are_shared_by_two_servers_on_one_database() {
    let mut s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let body = bbq(27500, "in_stock");
    let first = send(put(&c, &url, &v1, Some("k-restart"), &body)).await;
    assert_eq!(first.status, 200);
    s.restart().expect("the server restarts");
    // A new client: the old one's pooled connection died with the first process.
    let c = client();
    let url = s.url("/products/1");
    let after = send(put(&c, &url, &v1, Some("k-restart"), &body)).await;
    assert_replay(&after, &first);

    // A second server on the same database knows the key too.
    let other = Server::start_on(&s.db, &[], "127.0.0.1:0").expect("a second server");
    let there = send(put(
        &c,
        &other.url("/products/1"),
        &v1,
        Some("k-restart"),
        &body,
    ))
    .await;
    assert_replay(&there, &first);
    assert_eq!(versions(&c, &other, 1).await, 2);
}

/// Identical keyed POSTs at once on two servers of one database: one product, and every
/// answer that is not "in flight, retry" is its 201.
#[tokio::test]
async fn concurrent_identical_keyed_posts_on_two_servers_make_one_product() {
    let a = Server::start();
    let b = Server::start_on(&a.db, &[], "127.0.0.1:0").expect("a second server");
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let url = if i % 2 == 0 {
            a.url("/products")
        } else {
            b.url("/products")
        };
        let req = c
            .post(url)
            .header("X-User", "alice")
            .header("Idempotency-Key", "\"twin-post\"")
            .json(&catalog_tests::product_json(
                "TWIN-1", "Twin", 100, "in_stock",
            ));
        tasks.push(tokio::spawn(send(req)));
    }
    let mut locations = Vec::new();
    for t in tasks {
        let r = t.await.expect("a request");
        match r.status {
            201 => locations.push(r.header("location")),
            409 => {
                let p = r.problem(409);
                assert_eq!(p["type"], "/problems/idempotency-key-in-flight", "{p}");
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(!locations.is_empty());
    assert!(
        locations.iter().all(|l| *l == locations[0]),
        "{locations:?}"
    );
    let all = send(c.get(a.url("/products?limit=1000"))).await.json();
    let made = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["sku"] == "TWIN-1")
        .count();
    assert_eq!(made, 1);
}

/// A key is remembered for `--idempotency-ttl`, then forgotten: a retry after that is
/// judged afresh like any request, and its If-Match (for a create, its sku) still keeps it
/// from applying twice: 412 and 409, never a second version or product.
#[tokio::test]
async fn a_key_forgotten_after_its_ttl_is_judged_afresh_and_applies_nothing_twice() {
    let s = Server::start_with_args(&["--idempotency-ttl", "1s"]);
    let c = client();
    let url = s.url("/products/1");
    let v1 = send(c.get(&url)).await.etag();
    let body = bbq(26500, "in_stock");
    let first = send(put(&c, &url, &v1, Some("k-ttl"), &body)).await;
    assert_eq!(first.status, 200);
    let post = || {
        c.post(s.url("/products"))
            .header("X-User", "alice")
            .header("Idempotency-Key", "\"post-ttl\"")
            .json(&catalog_tests::product_json(
                "TTL-1",
                "Short-lived key",
                100,
                "in_stock",
            ))
    };
    assert_eq!(send(post()).await.status, 201);
    // Replayed while remembered; then forgotten, and a stale If-Match is 412.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let late = loop {
        let r = send(put(&c, &url, &v1, Some("k-ttl"), &body)).await;
        if r.header("idempotent-replayed").is_none() {
            break r;
        }
        assert_replay(&r, &first);
        assert!(
            std::time::Instant::now() < deadline,
            "the key was still remembered after 30 s with --idempotency-ttl 1s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let p = late.problem(412);
    assert_eq!(p["current"]["version"], 2);
    assert_eq!(versions(&c, &s, 1).await, 2, "no second version");
    let again = send(post()).await;
    let p = again.problem(409);
    assert_eq!(p["type"], "/problems/duplicate-sku", "{p}");
    let all = send(c.get(s.url("/products?limit=1000"))).await.json();
    let made = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["sku"] == "TTL-1")
        .count();
    assert_eq!(made, 1, "no second product");
}

/// `If-Match: *` holds for any live product, so a retry of such a write passes its
/// precondition again: the key's unique record, written in the write's transaction, is
/// what makes it the same write (rolled back, answered with the first outcome).
#[tokio::test]
async fn a_keyed_write_with_if_match_star_applies_once() {
    let s = Server::start();
    let c = client();
    let url = s.url("/products/1");
    let body = bbq(12300, "in_stock");
    let first = send(put(&c, &url, "*", Some("k-star"), &body)).await;
    assert_eq!(first.status, 200);
    let again = send(put(&c, &url, "*", Some("k-star"), &body)).await;
    assert_replay(&again, &first);
    assert_eq!(versions(&c, &s, 1).await, 2);
}
