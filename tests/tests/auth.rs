//! Who may write: open demo mode without `--users`, bearer tokens with it (`catalog-server
//! user add|list|remove|rotate`), the 401 challenge, `updated_by` from the token, the
//! warnings, and the users file reloaded on SIGHUP.

use std::time::Duration;

use catalog_tests::{
    Server, add_user, client, health, product_json, raw_exchange, raw_status, send, server_command,
};

#[tokio::test]
async fn open_mode_says_so_and_takes_any_language_in_x_user() {
    let s = Server::start();
    let h = health(&s).await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["auth"], "open");
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("listening on") && l.contains("auth open")),
        "the start line says the server is open: {:?}",
        s.log()
    );
    let c = client();
    let r = send(
        c.post(s.url("/products"))
            .header("X-User", "Zoë 山田".as_bytes())
            .json(&product_json("UTF-8", "Name", 1, "in_stock")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["updated_by"], "Zoë 山田");
    // Bytes that are not UTF-8 are still refused, as a problem.
    let bad = send(
        c.post(s.url("/products"))
            .header(
                "X-User",
                reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
            )
            .json(&product_json("NOT-UTF8", "Name", 1, "in_stock")),
    )
    .await;
    bad.problem(400);
}

#[tokio::test]
async fn open_mode_on_a_public_address_warns() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(&dir.path().join("c.db"), &[], "0.0.0.0:0").unwrap();
    s.wait_for_log("not loopback", Duration::from_secs(5))
        .expect("a warning that anyone may write");
}

#[tokio::test]
async fn user_add_prints_a_token_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let alice = add_user(&users, "alice").unwrap();
    let bob = add_user(&users, "bob").unwrap();
    assert_ne!(alice, bob);
    assert!(alice.len() >= 64, "long: {alice}");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("[users.alice]") && text.contains("[users.bob]"));
    assert!(
        !text.contains(&alice) && !text.contains(&bob),
        "no token in the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    assert!(add_user(&users, "alice").is_err(), "a name is added once");
}

#[tokio::test]
async fn with_users_every_request_but_health_needs_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let alice = add_user(&users, "alice").unwrap();
    let users_arg = users.to_str().unwrap();
    let s = Server::start_with_args(&["--users", users_arg]);
    let c = client();
    // /health needs no token, and says tokens are required.
    assert_eq!(health(&s).await["auth"], "bearer");

    for (path, method) in [
        ("/products", reqwest::Method::GET),
        ("/products/1", reqwest::Method::GET),
        ("/products/1/versions", reqwest::Method::GET),
        ("/events", reqwest::Method::GET),
        ("/products/1", reqwest::Method::DELETE),
        ("/nope", reqwest::Method::GET),
    ] {
        let none = send(c.request(method.clone(), s.url(path))).await;
        none.problem(401);
        assert_eq!(
            none.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"catalog\""),
            "{method} {path}"
        );
        let wrong =
            send(c.request(method.clone(), s.url(path)).bearer_auth(
                "cat_0000000000000000000000000000000000000000000000000000000000000000",
            ))
            .await;
        wrong.problem(401);
        assert_eq!(
            wrong.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"catalog\", error=\"invalid_token\"")
        );
    }
    // Another scheme is no bearer token.
    send(c.get(s.url("/products")).basic_auth("alice", Some("pw")))
        .await
        .problem(401);
    // The head is checked before the token: a head too large is 431, token or not.
    send(
        c.get(s.url("/products/2"))
            .header("X-Big", "a".repeat(40 * 1024)),
    )
    .await
    .problem(431);
    // Refused requests are logged (no user: none was admitted) and counted like the rest.
    let line = s
        .wait_for_log("GET /products/2 431 ", Duration::from_secs(10))
        .unwrap();
    assert!(line.contains(" user=- "), "{line}");
    s.wait_for_log("DELETE /products/1 401 ", Duration::from_secs(10))
        .unwrap();
    let metrics = send(c.get(s.url("/metrics")).bearer_auth(&alice)).await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("catalog_http_requests_total{")
                && l.contains("method=\"DELETE\"")
                && l.contains("status=\"401\"")),
        "{text}"
    );

    // The token works; the writer is the token's user, whatever X-User says.
    let r = send(c.get(s.url("/products/1")).bearer_auth(&alice)).await;
    assert_eq!(r.status, 200);
    let w = send(
        c.put(s.url("/products/1"))
            .bearer_auth(&alice)
            .header("X-User", "mallory")
            .header("If-Match", r.etag())
            .json(&product_json("BBQ-KETTLE-57", "Grill", 1, "in_stock")),
    )
    .await;
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(w.json()["updated_by"], "alice");
    s.wait_for_log("X-User; with --users it is ignored", Duration::from_secs(5))
        .expect("the log says X-User is ignored");

    // The event stream takes the token from the header, as the client sends it.
    let events = c
        .get(s.url("/events"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    drop(events);
}

#[tokio::test]
async fn a_refused_token_with_expect_continue_gets_401_and_no_100() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    add_user(&users, "alice").unwrap();
    let s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    let body = serde_json::to_string(&product_json("X-1", "X", 1, "in_stock")).unwrap();
    let head = format!(
        "POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    let text = raw_exchange(s.addr, head.as_bytes(), Duration::from_secs(3));
    assert_eq!(raw_status(&text), 401, "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
}

#[tokio::test]
async fn a_users_file_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let r = Server::start_on(
        &dir.path().join("c.db"),
        &["--users", missing.to_str().unwrap()],
        "127.0.0.1:0",
    );
    assert!(r.is_err(), "no silent fallback to open mode");
}

/// Runs `catalog-server user ARGS --users FILE`, which must succeed; returns its stdout.
fn user_command(users: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--users", users.to_str().unwrap()]);
    let (ok, out, err) = server_command(&all).unwrap();
    assert!(ok, "catalog-server {all:?} failed: {err}");
    out
}

async fn status_with(s: &Server, token: &str) -> u16 {
    send(client().get(s.url("/products/1")).bearer_auth(token))
        .await
        .status
}

#[tokio::test]
async fn user_list_remove_rotate_take_effect_on_sighup_and_end_the_removed_users_streams() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let alice = add_user(&users, "alice").unwrap();
    let bob = add_user(&users, "bob").unwrap();
    let carol = add_user(&users, "carol").unwrap();
    assert_eq!(user_command(&users, &["list"]), "alice\nbob\ncarol\n");
    let s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    for token in [&alice, &bob, &carol] {
        assert_eq!(status_with(&s, token).await, 200);
    }
    // Bob and carol each have an event stream open.
    let c = client();
    let mut bobs_stream = c
        .get(s.url("/events"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    let mut carols_stream = c
        .get(s.url("/events"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            bobs_stream.status().as_u16(),
            carols_stream.status().as_u16()
        ),
        (200, 200)
    );

    user_command(&users, &["remove", "bob"]);
    let new_carol = user_command(&users, &["rotate", "carol"])
        .trim()
        .to_string();
    assert!(
        new_carol.starts_with("cat_") && new_carol != carol,
        "{new_carol}"
    );
    assert_eq!(user_command(&users, &["list"]), "alice\ncarol\n");
    // The running server has not been told yet.
    assert_eq!(status_with(&s, &bob).await, 200);

    s.signal("HUP").unwrap();
    s.wait_for_log("reloaded the users file", Duration::from_secs(10))
        .expect("the reload is said in the log");
    let line = s
        .wait_for_log("reloaded the users file", Duration::ZERO)
        .unwrap();
    assert!(
        line.contains("2 users") && line.contains("removed: bob"),
        "{line}"
    );
    // At once: the removed user and the replaced token are refused, the others pass.
    let refused = send(client().get(s.url("/products/1")).bearer_auth(&bob)).await;
    refused.problem(401);
    assert_eq!(
        status_with(&s, &carol).await,
        401,
        "the old token stops working"
    );
    assert_eq!(status_with(&s, &new_carol).await, 200);
    assert_eq!(status_with(&s, &alice).await, 200);
    // And the streams opened with those tokens end.
    for stream in [&mut bobs_stream, &mut carols_stream] {
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = stream.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "the revoked token's event stream ends");
    }
    assert_eq!(
        health(&s).await["status"],
        "ok",
        "SIGHUP never ends the server"
    );
}

#[tokio::test]
async fn a_users_file_that_does_not_parse_on_sighup_keeps_the_old_users_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let alice = add_user(&users, "alice").unwrap();
    let mut s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    let good = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, "[users.alice\ntoken_sha256 = ").unwrap();
    s.signal("HUP").unwrap();
    let line = s
        .wait_for_log("kept the 1 users loaded before", Duration::from_secs(10))
        .expect("the log says the old users stay");
    assert!(line.contains("not valid TOML"), "and why: {line}");
    assert_eq!(status_with(&s, &alice).await, 200, "alice still gets in");
    // Once the file is mended, the next SIGHUP takes it.
    std::fs::write(&users, &good).unwrap();
    let bob = add_user(&users, "bob").unwrap();
    s.signal("HUP").unwrap();
    s.wait_for_log("added: bob", Duration::from_secs(10))
        .expect("the mended file is reloaded");
    assert_eq!(status_with(&s, &bob).await, 200);
    assert!(s.is_running());
}

#[tokio::test]
async fn sighup_in_open_mode_is_said_and_changes_nothing() {
    let mut s = Server::start();
    s.signal("HUP").unwrap();
    s.wait_for_log("no users file to reload", Duration::from_secs(10))
        .expect("the log says there is nothing to reload");
    assert_eq!(health(&s).await["auth"], "open");
    assert!(s.is_running());
}

#[test]
fn user_commands_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    add_user(&users, "alice").unwrap();
    let path = users.to_str().unwrap();
    let (ok, _, err) = server_command(&["user", "remove", "zoe", "--users", path]).unwrap();
    assert!(
        !ok && err.contains("has no user zoe (it has: alice)"),
        "{err}"
    );
    let (ok, _, err) = server_command(&["user", "rotate", "zoe", "--users", path]).unwrap();
    assert!(!ok && err.contains("has no user zoe"), "{err}");
    let (ok, _, err) = server_command(&["user", "list"]).unwrap();
    assert!(!ok && err.contains("say which file"), "{err}");
}
