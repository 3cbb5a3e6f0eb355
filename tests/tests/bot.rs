//! `catalog bot` against the real server, checked the way a person would check it: from the
//! server's side (its history and its request log), not from what the bot says of itself.
//! Its edits land as its user, each is a PUT with the If-Match of the version it changes,
//! a 412 is retried from the state the 412 carried (keeping the other writer's change),
//! two bots on one product lose nothing, and an unreachable server is said, not hidden.

use std::process::Stdio;
use std::time::Duration;

use catalog_shared::product::format_price;
use catalog_tests::proxy::{Fault, Proxy};
use catalog_tests::{Server, bin, client, product_json, send};
use serde_json::Value;

/// Runs the bot to completion; a bot that has not finished within a minute fails the test
/// (it would otherwise hang it).
async fn run_bot(server: &str, user: &str, count: u32, every: &str, fields: &str) -> String {
    let child = tokio::process::Command::new(bin("catalog"))
        .args(["bot", "--server", server, "--user", user, "--every", every])
        .args(["--fields", fields])
        .args(["--count", &count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the bot starts");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("bot {user} did not finish {count} edits within 60 s"))
        .expect("the bot runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bot {user} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// One successful edit as the bot reports it.
#[derive(Debug)]
struct Reported {
    id: i64,
    change: String,
    if_match: String,
    etag: String,
    version: i64,
}

/// `bot carol: product 1 SKU: price $1.00 -> $2.00 (If-Match "a" -> ETag "b", version 2)`
fn reported(out: &str, user: &str) -> Vec<Reported> {
    let prefix = format!("bot {user}: product ");
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (head, tail) = rest.split_once(" (If-Match ")?;
            let (id, head) = head.split_once(' ')?;
            let (_sku, change) = head.split_once(": ")?;
            let (if_match, tail) = tail.split_once(" -> ETag ")?;
            let (etag, version) = tail.split_once(", version ")?;
            Some(Reported {
                id: id.parse().ok()?,
                change: change.to_string(),
                if_match: if_match.to_string(),
                etag: etag.to_string(),
                version: version.strip_suffix(')')?.parse().ok()?,
            })
        })
        .collect()
}

/// One request as the server logged it.
#[derive(Debug, Clone)]
struct Logged {
    method: String,
    path: String,
    status: u16,
    if_match: String,
    etag: String,
    user: String,
}

fn logged(s: &Server) -> Vec<Logged> {
    s.log()
        .iter()
        .filter_map(|l| {
            let at = ["GET ", "PUT ", "PATCH ", "POST ", "DELETE "]
                .iter()
                .filter_map(|m| l.find(&format!("{m}/")))
                .min()?;
            let w: Vec<&str> = l[at..].split_whitespace().collect();
            let field = |k: &str| w.iter().find_map(|x| x.strip_prefix(k)).map(str::to_string);
            Some(Logged {
                method: w[0].to_string(),
                path: w.get(1)?.to_string(),
                status: w.get(2)?.parse().ok()?,
                if_match: field("if-match=")?,
                etag: field("etag=")?,
                user: field("user=")?,
            })
        })
        .collect()
}

/// A product's history, oldest first: (version, etag, updated_by) and the full record.
async fn history(s: &Server, id: i64) -> Vec<(i64, String, String, Value)> {
    let list = send(client().get(s.url(&format!("/products/{id}/versions"))))
        .await
        .json();
    let mut out = Vec::new();
    for v in list.as_array().expect("a list of versions") {
        let n = v["version"].as_i64().unwrap();
        let full = send(client().get(s.url(&format!("/products/{id}/versions/{n}"))))
            .await
            .json();
        out.push((
            n,
            v["etag"].as_str().unwrap().to_string(),
            v["updated_by"].as_str().unwrap().to_string(),
            full,
        ));
    }
    out
}

const FIELDS: [&str; 5] = ["sku", "name", "description", "price_cents", "status"];

fn changed(a: &Value, b: &Value) -> Vec<&'static str> {
    FIELDS.into_iter().filter(|f| a[f] != b[f]).collect()
}

#[tokio::test]
async fn the_bot_edits_products_as_its_user_with_if_match() {
    let s = Server::start();
    let out = run_bot(&s.base_url(), "carol", 3, "10ms", "price").await;
    let edits = reported(&out, "carol");
    assert_eq!(edits.len(), 3, "three edits reported:\n{out}");
    for e in &edits {
        // The server's history agrees with each edit the bot reports: version N is carol's,
        // with the ETag the bot got; version N-1 carries the ETag the bot sent in If-Match;
        // the two differ in the price alone, which is what the bot says it set.
        let h = history(&s, e.id).await;
        let at = |n: i64| {
            h.iter()
                .find(|v| v.0 == n)
                .unwrap_or_else(|| panic!("no version {n} of {}: {e:?}", e.id))
        };
        let (_, etag, by, now) = at(e.version);
        let (_, before_etag, _, before) = at(e.version - 1);
        assert_eq!((etag, by.as_str()), (&e.etag, "carol"), "{e:?}");
        assert_eq!(
            before_etag, &e.if_match,
            "If-Match names the version changed: {e:?}"
        );
        assert_eq!(changed(before, now), ["price_cents"], "{e:?}");
        let to = format_price(now["price_cents"].as_i64().unwrap());
        assert!(e.change.ends_with(&format!("-> {to}")), "{e:?} vs {to}");
    }
    // Everything carol wrote, in the server's own words: three PUTs, each 200, each with
    // the If-Match of one reported edit, and no other version anywhere is hers.
    let puts: Vec<Logged> = logged(&s)
        .into_iter()
        .filter(|l| l.user == "carol" && l.method != "GET")
        .collect();
    assert_eq!(puts.len(), 3, "{puts:?}");
    for (p, e) in puts.iter().zip(&edits) {
        assert_eq!(
            (
                p.method.as_str(),
                p.path.as_str(),
                p.status,
                &p.if_match,
                &p.etag
            ),
            (
                "PUT",
                format!("/products/{}", e.id).as_str(),
                200,
                &e.if_match,
                &e.etag
            ),
            "{p:?}"
        );
    }
    let page = send(client().get(s.url("/products?limit=1000")))
        .await
        .json();
    let mut by_carol = 0;
    for p in page["items"].as_array().unwrap() {
        let id = p["id"].as_i64().unwrap();
        by_carol += history(&s, id)
            .await
            .iter()
            .filter(|v| v.2 == "carol")
            .count();
    }
    assert_eq!(by_carol, 3, "three versions by carol in the whole catalog");
}

/// The bot reads the product list, someone else saves meanwhile, and the bot's PUT meets
/// a 412: it must retry from the state the 412 carried (with the other change kept), not
/// from its stale copy and not by reading the list again.
#[tokio::test]
async fn a_412_is_retried_from_the_state_it_carries() {
    let s = Server::start_with_args(&["--no-seed"]);
    let created = send(client().post(s.url("/products")).json(&product_json(
        "ONLY-1",
        "The only product",
        10000,
        "in_stock",
    )))
    .await;
    assert_eq!(created.status, 201);
    let v1 = created.etag();
    let proxy = Proxy::start(s.addr).await.unwrap();
    // The bot's first read of the list reaches the server, but its reply is held.
    proxy.set(Fault::times(
        1,
        Fault::only("GET", "/products?", Fault::HoldReply),
    ));
    let base = proxy.url("");
    let bot = tokio::spawn(async move { run_bot(&base, "carol", 1, "10ms", "price").await });
    for _ in 0..500 {
        if proxy.held_replies() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.held_replies(), 1, "the bot read the list");
    // alice discontinues the product while the bot holds version 1.
    let alice = send(
        client()
            .put(s.url("/products/1"))
            .header("X-User", "alice")
            .header("If-Match", &v1)
            .json(&product_json(
                "ONLY-1",
                "The only product",
                10000,
                "discontinued",
            )),
    )
    .await;
    assert_eq!(alice.status, 200);
    let v2 = alice.etag();
    proxy.release();
    let out = bot.await.unwrap();

    let carol: Vec<Logged> = logged(&s)
        .into_iter()
        .filter(|l| l.user == "carol")
        .collect();
    let writes: Vec<&Logged> = carol.iter().filter(|l| l.method == "PUT").collect();
    assert_eq!(writes.len(), 2, "one 412, one retry: {carol:?}\n{out}");
    assert_eq!(
        (writes[0].status, &writes[0].if_match),
        (412, &v1),
        "{carol:?}"
    );
    assert_eq!(&writes[0].etag, &v2, "the 412 names the current ETag");
    assert_eq!(
        (writes[1].status, &writes[1].if_match),
        (200, &v2),
        "the retry sends the 412's ETag: {carol:?}"
    );
    let reads = carol.iter().filter(|l| l.method == "GET").count();
    assert_eq!(
        reads, 1,
        "no second read: the retry starts from the 412's body: {carol:?}"
    );
    let h = history(&s, 1).await;
    assert_eq!(h.len(), 3);
    assert_eq!(h[2].2, "carol");
    assert_eq!(
        h[2].3["status"], "discontinued",
        "alice's change is kept: {:?}",
        h[2].3
    );
    assert_eq!(changed(&h[1].3, &h[2].3), ["price_cents"]);
    assert!(out.contains("412 on product 1"), "{out}");
}

#[tokio::test]
async fn two_bots_on_one_product_never_lose_an_edit() {
    let s = Server::start_with_args(&["--no-seed"]);
    let created = send(client().post(s.url("/products")).json(&product_json(
        "ONLY-1",
        "The only product",
        10000,
        "in_stock",
    )))
    .await;
    assert_eq!(created.status, 201);
    let base = s.base_url();
    let (a, b) = tokio::join!(
        run_bot(&base, "carol", 15, "0ms", "price,status"),
        run_bot(&base, "dave", 15, "0ms", "price,status"),
    );
    let h = history(&s, 1).await;
    // Every successful edit is one version: 1 + 15 + 15, whatever the 412 retries were.
    assert_eq!(h.len(), 31, "carol:\n{a}\ndave:\n{b}");
    for user in ["carol", "dave"] {
        assert_eq!(h.iter().filter(|v| v.2 == user).count(), 15, "{user}");
    }
    // Each version changes exactly one field over the one before it: no edit was made on a
    // stale copy (which would also put back what the other bot had changed).
    for w in h.windows(2) {
        let c = changed(&w[0].3, &w[1].3);
        assert!(
            c == ["price_cents"] || c == ["status"],
            "version {} over {}: {c:?}\ncarol:\n{a}\ndave:\n{b}",
            w[1].0,
            w[0].0
        );
    }
    // In the server's log: every accepted PUT named the version just before the one it
    // made, and every 412 was followed by that bot's retry with the 412's ETag.
    let log = logged(&s);
    let etag_of = |n: usize| h[n - 1].1.clone();
    for user in ["carol", "dave"] {
        let puts: Vec<&Logged> = log
            .iter()
            .filter(|l| l.user == user && l.method == "PUT")
            .collect();
        for (i, p) in puts.iter().enumerate() {
            assert_ne!(p.if_match, "-", "{p:?}");
            match p.status {
                200 => {
                    let n = h.iter().position(|v| v.1 == p.etag).expect("a version") + 1;
                    assert_eq!(p.if_match, etag_of(n - 1), "{p:?}");
                }
                412 => {
                    let next = puts.get(i + 1).expect("a 412 is retried");
                    assert_eq!(
                        next.if_match, p.etag,
                        "retried from the 412: {p:?} then {next:?}"
                    );
                }
                other => panic!("unexpected {other}: {p:?}"),
            }
        }
    }
}

/// With nothing listening, the bot says it cannot reach the server, claims no edit, keeps
/// trying within its limits (a server restart does not end it), and Ctrl-C stops it with
/// the count it made.
#[tokio::test]
async fn an_unreachable_server_is_said_and_no_edit_is_claimed() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    // A port that is bound but not listening: connections to it are refused, and no other
    // test's server can take it meanwhile.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(bin("catalog"))
        .args([
            "bot",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--user",
            "carol",
        ])
        .args(["--every", "50ms", "--count", "1"])
        .args(["--max-failures", "100000", "--max-unreachable", "1h"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    // Wait (with a deadline) until it has said so twice: it keeps trying.
    tokio::time::timeout(Duration::from_secs(30), async {
        while text.matches("cannot reach the server").count() < 2 {
            let mut line = String::new();
            if stdout.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            text.push_str(&line);
        }
    })
    .await
    .expect("the bot says it cannot reach the server, twice");
    let pid = child.id().expect("the bot is still running");
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest).await;
        text.push_str(&rest);
        child.wait().await
    })
    .await
    .expect("Ctrl-C stops the bot")
    .unwrap();
    assert!(reported(&text, "carol").is_empty(), "{text}");
    assert!(text.contains("stopped after 0 edits"), "{text}");
    drop(holder);
}

/// A port bound but not listening, held so no other test's server can take it: connecting
/// to it is refused.
fn held_port() -> (tokio::net::TcpSocket, u16) {
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = holder.local_addr().unwrap().port();
    (holder, port)
}

/// Runs the bot to its end (a minute at most) and returns its exit status, stdout and stderr.
async fn bot_until_it_stops(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let child = tokio::process::Command::new(bin("catalog"))
        .arg("bot")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the bot gives up within a minute")
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_bot_gives_up_after_n_failed_attempts_in_a_row() {
    let (_holder, port) = held_port();
    let server = format!("http://127.0.0.1:{port}");
    let (status, out, err) = bot_until_it_stops(&[
        "--server",
        &server,
        "--user",
        "carol",
        "--every",
        "50ms",
        "--max-failures",
        "3",
    ])
    .await;
    assert!(!status.success(), "a failing exit status: {out}{err}");
    assert_eq!(out.matches("cannot reach the server").count(), 3, "{out}");
    assert!(
        err.contains("bot carol gave up after 0 edits: 3 attempts in a row failed"),
        "{err}"
    );
    assert!(err.contains(&format!("runs at {server}")), "{err}");
}

#[tokio::test]
async fn the_bot_gives_up_when_its_server_stays_away() {
    // The bot edits, then its server dies and its port stays unreachable.
    let mut s = Server::start();
    let server = s.base_url();
    let child = tokio::process::Command::new(bin("catalog"))
        .args(["bot", "--server", &server, "--user", "carol"])
        .args([
            "--every",
            "100ms",
            "--max-failures",
            "100000",
            "--max-unreachable",
            "2s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !logged(&s)
        .iter()
        .any(|l| l.method == "PUT" && l.status == 200)
    {
        assert!(std::time::Instant::now() < deadline, "the bot never edited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.kill9();
    // Hold the port so no other test's server takes it (its old connections may linger).
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.set_reuseaddr(true).unwrap();
    holder
        .bind(s.addr)
        .expect("the dead server's port can be held");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the bot gives up within a minute")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a failing exit status: {text}{err}");
    assert!(
        !reported(&text, "carol").is_empty(),
        "it edited first: {text}"
    );
    assert!(err.contains("bot carol gave up after"), "{err}");
    assert!(err.contains("no attempt succeeded for 2s"), "{err}");
    drop(holder);
}

#[tokio::test]
async fn bad_bot_arguments_are_explained() {
    let out = tokio::process::Command::new(bin("catalog"))
        .args(["bot", "--fields", "colour"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field \"colour\""), "{err}");
}

/// A gateway in front of the server answers the bot's save 504 after the server made it:
/// no answer, so the bot sends it again with its key and gets the save it made. One edit
/// asked for is one edit made, and reported.
#[tokio::test]
async fn a_save_answered_504_by_a_gateway_is_one_edit_made_and_reported() {
    let s = Server::start_with_args(&["--no-seed"]);
    let created = send(client().post(s.url("/products")).json(&product_json(
        "ONLY-1",
        "The only product",
        10000,
        "in_stock",
    )))
    .await;
    assert_eq!(created.status, 201);
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(Fault::times(
        1,
        Fault::only("PUT", "/products/1", Fault::GatewayTimeout),
    ));
    let out = run_bot(&proxy.url(""), "carol", 1, "10ms", "price").await;
    assert_eq!(
        proxy.fault(),
        Fault::times(0, Fault::only("PUT", "/products/1", Fault::GatewayTimeout)),
        "the gateway timed out once"
    );
    let h = history(&s, 1).await;
    assert_eq!(h.len(), 2, "one edit made: {h:?}\n{out}");
    let done = reported(&out, "carol");
    assert_eq!(done.len(), 1, "{out}");
    assert_eq!(done[0].version, 2, "{out}");
}
