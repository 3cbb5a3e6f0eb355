//! Representations, creation, replacement, patches, deletion, history, OPTIONS and the
//! request log: the resources as a client uses them.

use super::*;

#[tokio::test]
async fn get_returns_the_product_with_validators() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let etag = r.etag();
    assert_eq!(body["etag"], etag, "body etag is exactly the header value");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong tag: {etag}"
    );
    assert!(
        etag.len() - 2 <= 16,
        "at most 16 characters inside the quotes"
    );
    assert!(r.header("last-modified").is_some());
    assert_eq!(body["version"], 1);
    assert_eq!(body["updated_by"], "seed");
    assert_eq!(body["price_cents"], 39900);
    assert!(body["updated_at"].as_str().unwrap().ends_with('Z'));

    let head = send(c.head(s.url("/products/1"))).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.etag(), etag, "HEAD carries the ETag too");
    assert_eq!(head.header("last-modified"), r.header("last-modified"));
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn missing_and_malformed_ids_are_404_problems() {
    let s = Server::start();
    let c = client();
    for path in [
        "/products/999",
        "/products/abc",
        "/products/01",
        "/nope",
        "/products/1/nope",
    ] {
        send(c.get(s.url(path))).await.problem(404);
    }
}

#[tokio::test]
async fn list_pages_carry_etags_and_answer_304() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products?limit=10"))).await;
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    assert!(page["items"][0]["etag"].is_string());
    let next = page["next"].as_str().expect("a next page").to_string();
    let p2 = send(c.get(s.url(&next))).await.json();
    assert_eq!(p2["items"][0]["id"], 11);
    let p3 = send(c.get(s.url("/products?after=20&limit=10")))
        .await
        .json();
    assert_eq!(p3["items"].as_array().unwrap().len(), 5);
    assert!(p3["next"].is_null());

    let list_etag = r.etag();
    let nm = send(
        c.get(s.url("/products?limit=10"))
            .header("If-None-Match", &list_etag),
    )
    .await;
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.etag(), list_etag);

    // A change anywhere changes the list's ETag.
    let one = send(c.get(s.url("/products/2"))).await;
    let mut body = one.json();
    body["price_cents"] = json!(1);
    let put = send(
        c.put(s.url("/products/2"))
            .header("If-Match", one.etag())
            .json(&body),
    )
    .await;
    assert_eq!(put.status, 200);
    let again = send(
        c.get(s.url("/products?limit=10"))
            .header("If-None-Match", &list_etag),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_ne!(again.etag(), list_etag);

    send(c.get(s.url("/products?limit=0"))).await.problem(400);
    send(c.get(s.url("/products?limit=x"))).await.problem(400);
    send(c.get(s.url("/products?after=-3"))).await.problem(400);
}

#[tokio::test]
async fn create_answers_201_with_location_and_etag() {
    let s = Server::start();
    let c = client();
    let r = send(
        c.post(s.url("/products"))
            .header("X-User", "alice")
            .json(&product_json("NEW-1", "New thing", 1250, "in_stock")),
    )
    .await;
    assert_eq!(r.status, 201);
    let body = r.json();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/products/{}", body["id"])
    );
    assert_eq!(body["etag"], r.etag());
    assert_eq!(body["version"], 1);
    assert_eq!(body["updated_by"], "alice");
    let got = send(c.get(s.url(&r.header("location").unwrap()))).await;
    assert_eq!(got.etag(), r.etag());
}

#[tokio::test]
async fn create_errors_are_problems() {
    let s = Server::start();
    let c = client();
    let dup =
        send(
            c.post(s.url("/products"))
                .json(&product_json("BBQ-KETTLE-57", "x", 1, "in_stock")),
        )
        .await;
    let p = dup.problem(409);
    assert_eq!(p["conflicting_id"], 1);

    let bad = send(c.post(s.url("/products")).json(&json!({
        "sku": "lower case", "name": "", "price_cents": -5, "status": "sold", "description": 3
    })))
    .await;
    let p = bad.problem(422);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["sku", "name", "price_cents", "status", "description"] {
        assert!(fields.contains(&f), "{f} listed in {fields:?}");
    }

    send(
        c.post(s.url("/products"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await
    .problem(400);
    send(
        c.post(s.url("/products"))
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await
    .problem(415);
    send(c.post(s.url("/products")).body("{}"))
        .await
        .problem(415);
    let huge = json!({"sku": "BIG", "name": "big", "price_cents": 1, "status": "in_stock", "description": "x".repeat(70 * 1024)});
    send(c.post(s.url("/products")).json(&huge))
        .await
        .problem(413);
}

#[tokio::test]
async fn put_replaces_and_ignores_server_managed_fields() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let mut body = bbq(30000, "in_stock");
    body["version"] = json!(77);
    body["etag"] = json!("\"forged\"");
    body["updated_by"] = json!("mallory");
    body["id"] = json!(5);
    let put = send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .header("X-User", "alice")
            .json(&body),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let p = put.json();
    assert_eq!(p["id"], 1);
    assert_eq!(p["version"], 2);
    assert_eq!(p["updated_by"], "alice");
    assert_eq!(p["price_cents"], 30000);
    assert_ne!(put.etag(), r.etag(), "a write changes the ETag");
    assert_eq!(p["etag"], put.etag());
    assert_eq!(
        put.header("content-location").as_deref(),
        Some("/products/1")
    );
    assert!(put.header("last-modified").is_some());
    let now = send(c.get(s.url("/products/1"))).await;
    assert_eq!(now.etag(), put.etag());
}

#[tokio::test]
async fn patch_takes_merge_patch_only() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let wrong = send(
        c.patch(s.url("/products/1"))
            .header("If-Match", r.etag())
            .json(&json!({"price_cents": 1})),
    )
    .await;
    wrong.problem(415);
    assert_eq!(
        wrong.header("accept-patch").as_deref(),
        Some("application/merge-patch+json")
    );

    let patch = |etag: String, body: serde_json::Value| {
        c.patch(s.url("/products/1"))
            .header("If-Match", etag)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
    };
    let ok = send(patch(
        r.etag(),
        json!({"status": "out_of_stock", "description": null, "version": 99}),
    ))
    .await;
    assert_eq!(ok.status, 200);
    let p = ok.json();
    assert_eq!(p["status"], "out_of_stock");
    assert_eq!(
        p["description"], "",
        "null removes the member; a missing description is empty"
    );
    assert_eq!(p["price_cents"], 39900, "untouched fields stay");
    assert_eq!(p["version"], 2);
    send(patch(ok.etag(), json!({"name": null})))
        .await
        .problem(422);
    send(patch(ok.etag(), json!({"price_cents": "cheap"})))
        .await
        .problem(422);
    let stale = send(patch(r.etag(), json!({"status": "in_stock"}))).await;
    stale.problem(412);
}

#[tokio::test]
async fn delete_then_410_and_the_sku_is_free() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/3"))).await;
    let sku = r.json()["sku"].as_str().unwrap().to_string();
    let del = send(
        c.delete(s.url("/products/3"))
            .header("If-Match", r.etag())
            .header("X-User", "carol"),
    )
    .await;
    assert_eq!(del.status, 204);
    let gone = send(c.get(s.url("/products/3"))).await.problem(410);
    assert_eq!(gone["deleted_by"], "carol");
    assert!(gone["deleted_at"].is_string());
    // A write to a deleted product is 410 even with a matching or stale If-Match.
    let put = send(
        c.put(s.url("/products/3"))
            .header("If-Match", r.etag())
            .json(&product_json(&sku, "x", 1, "in_stock")),
    )
    .await;
    assert_eq!(put.problem(410)["deleted_by"], "carol");
    send(c.delete(s.url("/products/3")).header("If-Match", "*"))
        .await
        .problem(410);
    // Its sku can be used again, by a new product with a new id.
    let again = send(
        c.post(s.url("/products"))
            .json(&product_json(&sku, "Again", 5, "in_stock")),
    )
    .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["id"], 26, "ids are never reused");
    // And the list no longer shows it.
    let list = send(c.get(s.url("/products?limit=1000"))).await.json();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != 3)
    );
}

#[tokio::test]
async fn unsafe_methods_without_if_match_get_428() {
    let s = Server::start();
    let c = client();
    for (method, ct) in [
        (Method::PUT, "application/json"),
        (Method::PATCH, "application/merge-patch+json"),
        (Method::DELETE, "application/json"),
    ] {
        let r = send(
            c.request(method.clone(), s.url("/products/1"))
                .header("content-type", ct)
                .body(bbq(1, "in_stock").to_string()),
        )
        .await;
        let p = r.problem(428);
        assert!(
            p["detail"].as_str().unwrap().contains("If-Match"),
            "says how to resubmit: {p}"
        );
        // If-Unmodified-Since or If-Modified-Since alone does not make it conditional.
        let r = send(
            c.request(method, s.url("/products/1"))
                .header("content-type", ct)
                .header("If-Unmodified-Since", "Sun, 06 Nov 2044 08:49:37 GMT")
                .body(bbq(1, "in_stock").to_string()),
        )
        .await;
        r.problem(428);
    }
    let now = send(c.get(s.url("/products/1"))).await.json();
    assert_eq!(now["version"], 1, "nothing was written");
}

#[tokio::test]
async fn allow_unconditional_lifts_428_and_warns() {
    let s = Server::start_with_args(&["--allow-unconditional"]);
    s.wait_for_log(
        "lost updates are possible",
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let c = client();
    let r = send(c.put(s.url("/products/1")).json(&bbq(100, "in_stock"))).await;
    assert_eq!(r.status, 200);
    // Preconditions that are sent are still enforced.
    let stale = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"nope\"")
            .json(&bbq(1, "in_stock")),
    )
    .await;
    stale.problem(412);
    let ius = send(
        c.put(s.url("/products/1"))
            .header("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")
            .json(&bbq(1, "in_stock")),
    )
    .await;
    ius.problem(412);
}

#[tokio::test]
async fn options_and_405_name_the_allowed_methods() {
    let s = Server::start();
    let c = client();
    let o = send(c.request(Method::OPTIONS, s.url("/products/1"))).await;
    assert!(o.status == 204 || o.status == 200);
    let allow = o.header("allow").unwrap();
    for m in ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        assert!(allow.contains(m), "{allow}");
    }
    assert_eq!(
        o.header("accept-patch").as_deref(),
        Some("application/merge-patch+json")
    );
    let o = send(c.request(Method::OPTIONS, s.url("/products"))).await;
    assert!(o.header("allow").unwrap().contains("POST"));
    let r = send(c.delete(s.url("/products"))).await;
    r.problem(405);
    assert!(r.header("allow").unwrap().contains("POST"));
    send(c.post(s.url("/products/1/versions")))
        .await
        .problem(405);
}

#[tokio::test]
async fn versions_keep_every_state() {
    let s = Server::start();
    let c = client();
    let v1 = send(c.get(s.url("/products/1"))).await;
    let v2 = send(
        c.put(s.url("/products/1"))
            .header("If-Match", v1.etag())
            .header("X-User", "alice")
            .json(&bbq(30000, "in_stock")),
    )
    .await;
    let v3 = send(
        c.put(s.url("/products/1"))
            .header("If-Match", v2.etag())
            .header("X-User", "bob")
            .json(&bbq(30000, "out_of_stock")),
    )
    .await;
    let list = send(c.get(s.url("/products/1/versions"))).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["etag"], v1.etag());
    assert_eq!(list[1]["etag"], v2.etag());
    assert_eq!(list[2]["etag"], v3.etag());
    assert_eq!(list[1]["updated_by"], "alice");
    assert_eq!(list[2]["version"], 3);
    let snap = send(c.get(s.url("/products/1/versions/1"))).await;
    assert_eq!(
        snap.json(),
        v1.json(),
        "a snapshot is the version as it was"
    );
    assert_eq!(snap.etag(), v1.etag());
    send(c.get(s.url("/products/1/versions/4")))
        .await
        .problem(404);
    send(c.get(s.url("/products/999/versions")))
        .await
        .problem(404);
}

#[tokio::test]
async fn x_user_is_recorded_and_defaults_to_anonymous() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/4"))).await;
    let w = send(
        c.put(s.url("/products/4"))
            .header("If-Match", r.etag())
            .json(&product_json("RUG-WOOL-160", "Rug", 1, "in_stock")),
    )
    .await;
    assert_eq!(w.json()["updated_by"], "anonymous");
    let w2 = send(
        c.put(s.url("/products/4"))
            .header("If-Match", w.etag())
            .header("X-User", "dora")
            .json(&product_json("RUG-WOOL-160", "Rug", 2, "in_stock")),
    )
    .await;
    assert_eq!(w2.json()["updated_by"], "dora");
    send(
        c.put(s.url("/products/4"))
            .header("If-Match", w2.etag())
            .header("X-User", "x".repeat(65))
            .json(&product_json("RUG-WOOL-160", "Rug", 2, "in_stock")),
    )
    .await
    .problem(400);
}

#[tokio::test]
async fn every_request_is_logged_with_its_validators() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let etag = r.etag();
    let stale = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"old-one\"")
            .header("X-User", "bob")
            .json(&bbq(1, "in_stock")),
    )
    .await;
    assert_eq!(stale.status, 412);
    let line = s
        .wait_for_log("PUT /products/1 412", std::time::Duration::from_secs(10))
        .unwrap();
    assert!(line.contains("if-match=\"old-one\""), "{line}");
    assert!(line.contains(&format!("etag={etag}")), "{line}");
    assert!(line.contains("user=bob"), "{line}");
    // The line is the one tracing's formatter writes (RFC 3339 time in microseconds, the
    // level, the target), and what a client sends cannot put a control sequence into it:
    // ESC as 8 bits (CSI, U+009B in UTF-8) arrives escaped.
    let (stamp, rest) = line.split_at(27);
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    assert_eq!(shape, "0000-00-00T00:00:00.000000Z", "{line}");
    assert!(
        rest.starts_with("  INFO catalog_server::app: PUT /products/1 412 "),
        "{line}"
    );
    let csi = reqwest::header::HeaderValue::from_bytes(b"\"\xc2\x9b31m\"").unwrap();
    send(c.delete(s.url("/products/1")).header("If-Match", csi)).await;
    let line = s
        .wait_for_log("DELETE /products/1 ", std::time::Duration::from_secs(10))
        .unwrap();
    assert!(line.contains("if-match=\"\\u{9b}31m\""), "{line}");
    assert!(!line.contains('\u{9b}'), "{line}");
}

/// `RUST_LOG` decides whether request lines are written, as for every other line.
#[tokio::test]
async fn the_request_log_follows_rust_log() {
    let s = Server::start_with_log_filter(&[], "info,catalog_server::app=off");
    let c = client();
    assert_eq!(send(c.get(s.url("/products/1"))).await.status, 200);
    send(c.get(s.url("/products/999999"))).await.problem(404);
    // A line of another target, logged after both answers: a request line is written
    // before its answer leaves, so had they been logged they would come before it.
    s.signal("HUP").unwrap();
    s.wait_for_log("SIGHUP", std::time::Duration::from_secs(10))
        .unwrap();
    assert!(
        !s.log().iter().any(|l| l.contains("GET /products/")),
        "{:#?}",
        s.log()
    );
}

/// JSON has one kind of number: a whole number written with a fraction is that number,
/// read exactly (found by schemathesis: a fast float parser read 4270337907119766.0 as
/// ...766.5 and refused it), up to 2^53; past 2^53 a price is refused.
#[tokio::test]
async fn whole_numbers_written_as_floats_are_read_exactly() {
    let s = Server::start();
    let c = client();
    for (i, (text, cents)) in [("100.0", 100i64), ("4270337907119766.0", 4270337907119766)]
        .into_iter()
        .enumerate()
    {
        let body = format!(
            r#"{{"sku":"FLOAT-{i}","name":"Float","description":"","price_cents":{text},"status":"in_stock"}}"#
        );
        let r = send(
            c.post(s.url("/products"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["price_cents"], cents);
    }
    let too_big = r#"{"sku":"FLOAT-X","name":"Float","description":"","price_cents":9007199254740993,"status":"in_stock"}"#;
    let r = send(
        c.post(s.url("/products"))
            .header("content-type", "application/json")
            .body(too_big),
    )
    .await;
    r.problem(422);
}

/// A merge patch names only a product's members: a misspelt one is refused by name, even
/// with null (which would otherwise remove nothing and quietly change nothing).
#[tokio::test]
async fn a_patch_naming_a_member_a_product_lacks_is_422() {
    let s = Server::start();
    let c = client();
    let etag = send(c.get(s.url("/products/1"))).await.etag();
    let patch = |body: &str| {
        c.patch(s.url("/products/1"))
            .header("If-Match", &etag)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
    };
    let p = send(patch(r#"{"prise_cents": null}"#)).await.problem(422);
    assert_eq!(p["errors"][0]["field"], "prise_cents", "{p}");
    assert_eq!(send(c.get(s.url("/products/1"))).await.json()["version"], 1);
    let ok = send(patch(r#"{"price_cents": 5, "version": 99}"#)).await;
    assert_eq!(
        ok.status, 200,
        "server-managed members are ignored, as in PUT"
    );
    assert_eq!(ok.json()["price_cents"], 5);
}
