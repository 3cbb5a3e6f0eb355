//! RFC 9110 section 13: If-Match, If-None-Match and the dates, their comparisons, their order
//! and their malformed forms.

use super::*;

#[tokio::test]
async fn if_match_uses_strong_comparison_and_lists() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let etag = r.etag();
    let put = |im: String, price: i64| {
        c.put(s.url("/products/1"))
            .header("If-Match", im)
            .json(&bbq(price, "in_stock"))
    };
    // A weak tag never matches, even with the same opaque part.
    send(put(format!("W/{etag}"), 1)).await.problem(412);
    // Case matters.
    send(put(etag.to_uppercase(), 1)).await.problem(412);
    // A list with the current tag matches.
    let ok = send(put(format!("\"other\", {etag}"), 2)).await;
    assert_eq!(ok.status, 200);
    // Several header lines form one list.
    let two_lines = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"x\"")
            .header("If-Match", ok.etag())
            .json(&bbq(3, "in_stock")),
    )
    .await;
    assert_eq!(two_lines.status, 200);
    // * matches any current representation.
    let star = send(put("*".into(), 4)).await;
    assert_eq!(star.status, 200);
    assert_eq!(star.json()["version"], 4);
}

#[tokio::test]
async fn failed_if_match_is_412_with_the_current_state() {
    let s = Server::start();
    let c = client();
    let old = send(c.get(s.url("/products/1"))).await;
    let a = send(
        c.put(s.url("/products/1"))
            .header("If-Match", old.etag())
            .header("X-User", "alice")
            .json(&bbq(30000, "in_stock")),
    )
    .await;
    assert_eq!(a.status, 200);
    let b = send(
        c.put(s.url("/products/1"))
            .header("If-Match", old.etag())
            .header("X-User", "bob")
            .json(&bbq(39900, "out_of_stock")),
    )
    .await;
    let p = b.problem(412);
    assert_eq!(b.etag(), a.etag(), "412 carries the current ETag");
    assert_eq!(p["current_etag"], a.etag());
    assert_eq!(p["current"], a.json(), "the whole current representation");
    let now = send(c.get(s.url("/products/1"))).await.json();
    assert_eq!(now["status"], "in_stock", "bob's write did not land");
}

#[tokio::test]
async fn preconditions_are_evaluated_before_the_body() {
    let s = Server::start();
    let c = client();
    let stale = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"stale\"")
            .header("content-type", "application/json")
            .body("{broken"),
    )
    .await;
    stale.problem(412);
    let big = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"stale\"")
            .header("content-type", "application/json")
            .body("x".repeat(100 * 1024)),
    )
    .await;
    big.problem(412);
    let fresh = send(c.get(s.url("/products/1"))).await;
    send(
        c.put(s.url("/products/1"))
            .header("If-Match", fresh.etag())
            .header("content-type", "application/json")
            .body("{broken"),
    )
    .await
    .problem(400);
    send(
        c.put(s.url("/products/1"))
            .header("If-Match", fresh.etag())
            .json(&json!({"sku": "BBQ"})),
    )
    .await
    .problem(422);
}

#[tokio::test]
async fn status_of_the_unconditional_answer_wins_for_404_410_405_415() {
    let s = Server::start();
    let c = client();
    send(
        c.put(s.url("/products/999"))
            .header("If-Match", "\"stale\"")
            .json(&bbq(1, "in_stock")),
    )
    .await
    .problem(404);
    send(c.get(s.url("/products/999")).header("If-None-Match", "*"))
        .await
        .problem(404);
    let r = send(c.post(s.url("/products/1")).header("If-Match", "\"stale\"")).await;
    r.problem(405);
    assert!(r.header("allow").unwrap().contains("PUT"));
    send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"stale\"")
            .header("content-type", "text/plain")
            .body("x"),
    )
    .await
    .problem(415);
    let fresh = send(c.get(s.url("/products/2"))).await;
    send(
        c.delete(s.url("/products/2"))
            .header("If-Match", fresh.etag()),
    )
    .await;
    send(
        c.put(s.url("/products/2"))
            .header("If-Match", "\"stale\"")
            .json(&bbq(1, "in_stock")),
    )
    .await
    .problem(410);
    send(c.get(s.url("/products/2")).header("If-None-Match", "*"))
        .await
        .problem(410);
}

#[tokio::test]
async fn if_none_match_uses_weak_comparison() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let etag = r.etag();
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let nm = send(c.get(s.url("/products/1")).header("If-None-Match", &inm)).await;
        assert_eq!(nm.status, 304, "If-None-Match: {inm}");
        assert!(nm.body.is_empty(), "304 has no body");
        assert_eq!(nm.etag(), etag, "304 carries ETag");
        assert_eq!(
            nm.header("last-modified"),
            r.header("last-modified"),
            "and Last-Modified"
        );
        let head = send(c.head(s.url("/products/1")).header("If-None-Match", &inm)).await;
        assert_eq!(head.status, 304);
    }
    let miss = send(
        c.get(s.url("/products/1"))
            .header("If-None-Match", "\"other\""),
    )
    .await;
    assert_eq!(miss.status, 200);
    // On a write, a matching If-None-Match is 412, not 304.
    let w = send(
        c.put(s.url("/products/1"))
            .header("If-Match", &etag)
            .header("If-None-Match", format!("W/{etag}"))
            .json(&bbq(1, "in_stock")),
    )
    .await;
    w.problem(412);
}

#[tokio::test]
async fn dates_follow_the_rfc_and_yield_to_entity_tags() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let lm = r.header("last-modified").unwrap();
    let future = "Sun, 06 Nov 2044 08:49:37 GMT";
    let past = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(
        send(c.get(s.url("/products/1")).header("If-Modified-Since", &lm))
            .await
            .status,
        304
    );
    assert_eq!(
        send(
            c.get(s.url("/products/1"))
                .header("If-Modified-Since", future)
        )
        .await
        .status,
        304
    );
    assert_eq!(
        send(
            c.get(s.url("/products/1"))
                .header("If-Modified-Since", past)
        )
        .await
        .status,
        200
    );
    // Invalid dates are ignored.
    assert_eq!(
        send(
            c.get(s.url("/products/1"))
                .header("If-Modified-Since", "yesterday")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            c.get(s.url("/products/1"))
                .header("If-Unmodified-Since", "soon")
        )
        .await
        .status,
        200
    );
    // If-None-Match present: If-Modified-Since is ignored.
    let both = send(
        c.get(s.url("/products/1"))
            .header("If-None-Match", "\"other\"")
            .header("If-Modified-Since", future),
    )
    .await;
    assert_eq!(both.status, 200);
    // If-Unmodified-Since on GET.
    send(
        c.get(s.url("/products/1"))
            .header("If-Unmodified-Since", past),
    )
    .await
    .problem(412);
    assert_eq!(
        send(
            c.get(s.url("/products/1"))
                .header("If-Unmodified-Since", &lm)
        )
        .await
        .status,
        200
    );
    // If-Match present: If-Unmodified-Since is ignored.
    let w = send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .header("If-Unmodified-Since", past)
            .json(&bbq(2, "in_stock")),
    )
    .await;
    assert_eq!(w.status, 200);
    // If-Modified-Since on a write is ignored.
    let w2 = send(
        c.put(s.url("/products/1"))
            .header("If-Match", w.etag())
            .header("If-Modified-Since", future)
            .json(&bbq(3, "in_stock")),
    )
    .await;
    assert_eq!(w2.status, 200);
}

#[tokio::test]
async fn if_match_on_get() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    assert_eq!(
        send(c.get(s.url("/products/1")).header("If-Match", r.etag()))
            .await
            .status,
        200
    );
    let p = send(c.get(s.url("/products/1")).header("If-Match", "\"old\""))
        .await
        .problem(412);
    assert_eq!(p["current_etag"], r.etag());
}

#[tokio::test]
async fn malformed_entity_tags_are_400_never_ignored() {
    let s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let etag = r.etag();
    for bad in [
        "\"sp ace\"",
        "garbage",
        "*, \"x\"",
        &format!("{etag}, garbage"),
        "w/\"x\"",
        "\"unterminated",
    ] {
        for field in ["If-Match", "If-None-Match"] {
            let get = send(c.get(s.url("/products/1")).header(field, bad)).await;
            get.problem(400);
            let put = send(
                c.put(s.url("/products/1"))
                    .header(field, bad)
                    .json(&bbq(1, "in_stock")),
            )
            .await;
            let p = put.problem(400);
            assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
        }
    }
    let now = send(c.get(s.url("/products/1"))).await.json();
    assert_eq!(now["version"], 1);
}

/// RFC 9110's `#entity-tag` admits an empty list (an empty field value, or only commas):
/// no tag in it matches anything, so If-Match with it fails and If-None-Match holds.
#[tokio::test]
async fn an_empty_tag_list_matches_nothing() {
    let s = Server::start();
    let c = client();
    let etag = send(c.get(s.url("/products/1"))).await.etag();
    for empty in ["", " , "] {
        send(c.get(s.url("/products/1")).header("If-Match", empty))
            .await
            .problem(412);
        let put = send(
            c.put(s.url("/products/1"))
                .header("If-Match", empty)
                .json(&bbq(1, "in_stock")),
        )
        .await;
        put.problem(412);
        let get = send(c.get(s.url("/products/1")).header("If-None-Match", empty)).await;
        assert_eq!(get.status, 200, "If-None-Match with no tag holds");
    }
    assert_eq!(send(c.get(s.url("/products/1"))).await.json()["version"], 1);
    // If-None-Match with no tag does not stand in the way of a write If-Match allows.
    let put = send(
        c.put(s.url("/products/1"))
            .header("If-Match", &etag)
            .header("If-None-Match", "")
            .json(&bbq(2, "in_stock")),
    )
    .await;
    assert_eq!(put.status, 200);
}
