//! Hostile input, one test per kind: each is answered (no hang) with a 4xx problem where
//! the server decides, the server keeps serving, and stored data does not change.
//! Slowloris and idle floods are in `limits.rs`.

use std::time::Duration;

use catalog_tests::{Reply, Server, health, product_json, raw_exchange, raw_status, send};
use reqwest::Method;

/// A client that gives up rather than hang the test.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Everything a client can read of the stored data: the list with its ETag.
async fn snapshot(s: &Server) -> (String, String) {
    let r = send(client().get(s.url("/products?limit=1000"))).await;
    assert_eq!(r.status, 200);
    (r.etag(), String::from_utf8_lossy(&r.body).into_owned())
}

async fn assert_unchanged(s: &Server, before: &(String, String)) {
    assert_eq!(health(s).await["status"], "ok", "still serving");
    assert_eq!(&snapshot(s).await, before, "stored data changed");
}

async fn etag_of(s: &Server, path: &str) -> String {
    send(client().get(s.url(path))).await.etag()
}

fn body_of(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    let etag = etag_of(&s, "/products/1").await;
    for body in [
        "",
        "{",
        "[",
        "nul",
        "{\"sku\":}",
        "{\"sku\":\"A\"} trailing",
        "'single'",
        "{\"a\":1,}",
    ] {
        let r = send(
            c.post(s.url("/products"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        r.problem(400);
        let r = send(
            c.put(s.url("/products/1"))
                .header("content-type", "application/json")
                .header("if-match", &etag)
                .body(body),
        )
        .await;
        r.problem(400);
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn oversized_json_is_413() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for size in [64 * 1024 + 1, 3 * 1024 * 1024] {
        let body = format!("{{\"sku\":\"{}\"}}", "A".repeat(size));
        let r = send(
            c.post(s.url("/products"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        // 3 MiB is past what the server drains: the answer may be lost to a reset.
        if size < 1024 * 1024 {
            r.problem(413);
        }
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn oversized_json_past_the_drain_limit_does_not_crash() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let body = format!("{{\"sku\":\"{}\"}}", "A".repeat(3 * 1024 * 1024));
    // The server may reset the connection instead of answering; either is fine.
    let _ = client()
        .post(s.url("/products"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn deep_nesting_is_400() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for body in [
        "[".repeat(30_000),
        "{\"a\":".repeat(10_000),
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)),
    ] {
        let r = send(
            c.post(s.url("/products"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        r.problem(400);
    }
    let etag = etag_of(&s, "/products/1").await;
    let r = send(
        c.patch(s.url("/products/1"))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(format!(
                "{{\"name\":{}{}}}",
                "[".repeat(20_000),
                "]".repeat(20_000)
            )),
    )
    .await;
    r.problem(400);
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    let mut body = b"{\"sku\":\"A-1\",\"name\":\"".to_vec();
    body.extend_from_slice(b"\xff\xfe\xc3\x28");
    body.extend_from_slice(b"\",\"price_cents\":1,\"status\":\"in_stock\"}");
    let r = send(
        c.post(s.url("/products"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    r.problem(400);
    // An invalid UTF-8 path segment names nothing.
    let text = raw_exchange(
        s.addr,
        b"GET /products/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(raw_status(&text), 404, "{text}");
    assert!(text.contains("application/problem+json"));
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn numbers_past_i64_are_refused() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for price in [
        "9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "18446744073709551616",
        "1.5",
    ] {
        let body = format!(
            "{{\"sku\":\"BIG-1\",\"name\":\"Big\",\"description\":\"\",\"price_cents\":{price},\"status\":\"in_stock\"}}"
        );
        let r = send(
            c.post(s.url("/products"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert!(
            r.status == 400 || r.status == 422,
            "{price}: {} {}",
            r.status,
            body_of(&r)
        );
        r.problem(r.status);
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn every_malformed_if_match_and_if_none_match_is_400() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    let malformed: [&[u8]; 12] = [
        b"abc",
        b"\"a",
        b"a\"",
        b"W/abc",
        b"w/\"x\"",
        b"W/ \"x\"",
        b"*, \"x\"",
        b"\"x\", *",
        b"\"sp ace\"",
        b"\"x\" \"y\"",
        b"\"x\xff\"",
        b"\"in\"side\"",
    ];
    for tag in malformed {
        let value = reqwest::header::HeaderValue::from_bytes(tag).unwrap();
        let shown = String::from_utf8_lossy(tag);
        for (method, field) in [
            (Method::GET, "if-match"),
            (Method::GET, "if-none-match"),
            (Method::PUT, "if-match"),
            (Method::DELETE, "if-match"),
            (Method::PUT, "if-none-match"),
        ] {
            let r = send(
                c.request(method.clone(), s.url("/products/1"))
                    .header(field, value.clone())
                    .header(
                        "if-match",
                        if field == "if-none-match" {
                            "*"
                        } else {
                            "\"ok\""
                        },
                    )
                    .json(&product_json("BBQ-KETTLE-57", "Changed", 1, "in_stock")),
            )
            .await;
            assert_eq!(
                r.status,
                400,
                "{method} {field}: {shown} -> {}",
                body_of(&r)
            );
            r.problem(400);
        }
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn a_64_kib_header_is_431() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let r = send(
        client()
            .put(s.url("/products/1"))
            .header("if-match", "*")
            .header("x-pad", "p".repeat(64 * 1024))
            .json(&product_json("BBQ-KETTLE-57", "Changed", 1, "in_stock")),
    )
    .await;
    r.problem(431);
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn bad_dates_are_ignored_and_never_make_a_write_unconditional() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for date in [
        "yesterday",
        "",
        "Mon, 32 Foo 2020 25:61:61 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "99999999999999999999",
        "Sun, 06 Nov 1994 08:49:37 GMT; x",
    ] {
        let r = send(
            c.get(s.url("/products/1"))
                .header("if-modified-since", date),
        )
        .await;
        assert!(r.status == 200 || r.status == 304, "{date}: {}", r.status);
        let r = send(
            c.put(s.url("/products/1"))
                .header("if-unmodified-since", date)
                .json(&product_json("BBQ-KETTLE-57", "Changed", 1, "in_stock")),
        )
        .await;
        assert!(r.status == 428 || r.status == 412, "{date}: {}", r.status);
        r.problem(r.status);
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn ids_that_overflow_are_404() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for path in [
        "/products/99999999999999999999999999",
        "/products/9223372036854775807",
        "/products/9223372036854775808",
        "/products/-1",
        "/products/0",
        "/products/1e3",
        "/products/1/versions/99999999999999999999",
        "/products/99999999999999999999/versions",
        "/products/1/versions/-1",
    ] {
        send(c.get(s.url(path))).await.problem(404);
        let r = send(
            c.put(s.url(path))
                .header("if-match", "*")
                .json(&product_json("BBQ-KETTLE-57", "Changed", 1, "in_stock")),
        )
        .await;
        assert!(r.status == 404 || r.status == 405, "{path}: {}", r.status);
        r.problem(r.status);
    }
    let r = send(c.get(s.url("/products?after=99999999999999999999999"))).await;
    r.problem(400);
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn unknown_methods_are_405() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for method in ["FOO", "PROPFIND", "TRACE", "PURGE", "LINK"] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        for path in [
            "/products",
            "/products/1",
            "/products/1/versions",
            "/health",
            "/events",
        ] {
            let r = send(c.request(m.clone(), s.url(path)).header("if-match", "*")).await;
            r.problem(405);
            assert!(r.header("allow").is_some(), "{method} {path}");
        }
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn http11_without_host_or_with_two_is_400_and_http10_is_fine() {
    let s = Server::start();
    let before = snapshot(&s).await;
    for head in [
        "GET /products/1 HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /products/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        "GET /products/1 HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        "GET http://other.example/products/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "DELETE /products/1 HTTP/1.1\r\nIf-Match: *\r\nConnection: close\r\n\r\n",
    ] {
        let text = raw_exchange(s.addr, head.as_bytes(), Duration::from_secs(5));
        assert_eq!(raw_status(&text), 400, "{head:?}: {text}");
        assert!(text.contains("application/problem+json"), "{text}");
        assert!(text.contains("RFC 9112"), "{text}");
    }
    let text = raw_exchange(
        s.addr,
        b"GET /products/1 HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(raw_status(&text), 200, "{text}");
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_a_400_problem_and_nothing_else_happens() {
    let s = Server::start();
    let before = snapshot(&s).await;
    for head in [
        "GET /products/1 HTTP/9.9\r\nHost: x\r\n\r\n",
        "G@T /products/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /products/1 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "GET /products/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "\x00\x01\x02\r\n\r\n",
    ] {
        let text = raw_exchange(s.addr, head.as_bytes(), Duration::from_secs(5));
        let status = raw_status(&text);
        assert!(
            status == 400 || status == 0,
            "{head:?}: refused or closed, got {text}"
        );
        if status == 400 {
            assert!(
                text.contains("content-type: application/problem+json")
                    && text.contains("\"status\":400"),
                "{head:?}: the refusal is a problem: {text}"
            );
        }
    }
    assert_unchanged(&s, &before).await;
}

#[tokio::test]
async fn expect_100_continue_gets_the_final_status_when_refused_from_the_headers() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let etag = etag_of(&s, "/products/1").await;
    let body =
        serde_json::to_string(&product_json("BBQ-KETTLE-57", "Changed", 1, "in_stock")).unwrap();
    let len = body.len();
    for (head, status) in [
        // 428: no If-Match.
        (
            format!(
                "PUT /products/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
            ),
            428,
        ),
        // 412: a stale If-Match.
        (
            format!(
                "PUT /products/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: \"stale\"\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
            ),
            412,
        ),
        // 404: no such product.
        (
            format!(
                "PUT /products/424242 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: *\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
            ),
            404,
        ),
        // 415: not JSON.
        (
            format!(
                "POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
            ),
            415,
        ),
    ] {
        let text = raw_exchange(s.addr, head.as_bytes(), Duration::from_secs(3));
        assert_eq!(raw_status(&text), status, "{head}: {text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(text.contains("application/problem+json"));
    }
    assert_unchanged(&s, &before).await;

    // A request that will be served gets its 100, then the final answer.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        conn,
        "PUT /products/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: {etag}\r\nContent-Length: {len}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = conn.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    conn.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    let _ = conn.read_to_string(&mut rest);
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
}

#[tokio::test]
async fn control_characters_in_text_fields_are_422_naming_the_field() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let c = client();
    for (field, value) in [
        ("name", "Bell\u{7}"),
        ("name", "Two\nlines"),
        ("name", "Esc\u{1b}[31m"),
        ("description", "NUL\u{0}"),
        ("description", "C1\u{85}"),
        ("description", "CR\r"),
    ] {
        let mut body = product_json("CTRL-1", "Fine", 1, "in_stock");
        body[field] = value.into();
        let r = send(c.post(s.url("/products")).json(&body)).await;
        let p = r.problem(422);
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(field));
    }
    assert_unchanged(&s, &before).await;
    // Line feeds and tabs are fine in a description.
    let mut body = product_json("CTRL-2", "Fine", 1, "in_stock");
    body["description"] = "Line one\n\tLine two".into();
    assert_eq!(
        send(c.post(s.url("/products")).json(&body)).await.status,
        201
    );
}

#[tokio::test]
async fn event_streams_that_never_read_do_not_hold_the_server() {
    let s = Server::start_with_args(&["--no-seed", "--write-timeout", "2s"]);
    let c = client();
    // Streams whose clients never read a byte.
    let mut silent = Vec::new();
    for _ in 0..20 {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
        conn.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        silent.push(conn);
    }
    // Enough changes to fill their buffers many times over.
    let big = "d".repeat(4000);
    for i in 0..300 {
        let mut body = product_json(&format!("FILL-{i}"), "Fill", i, "in_stock");
        body["description"] = big.clone().into();
        let r = send(c.post(s.url("/products")).json(&body)).await;
        assert_eq!(r.status, 201);
    }
    let started = std::time::Instant::now();
    assert_eq!(health(&s).await["status"], "ok");
    assert!(started.elapsed() < Duration::from_secs(2));
    let list = send(c.get(s.url("/products?limit=1000"))).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 300);
    drop(silent);
}
