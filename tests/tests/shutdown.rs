//! Graceful shutdown with a deadline: SIGTERM stops accepting, ends event streams, lets
//! requests in flight finish, and exits within `--shutdown-timeout` even while clients
//! hold half-sent requests; what was acknowledged is there after a restart.

use std::io::Write;
use std::time::Duration;

use catalog_tests::{Server, client, product_json, send};

/// Reads the interim `100 Continue` a handler sends when it starts reading the body of a
/// request that asked for it (RFC 9110 section 10.1.1); panics if it does not come.
fn await_continue(conn: &mut std::net::TcpStream) {
    use std::io::Read;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => panic!(
                "no 100 Continue within 30 s: {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 100"), "{text}");
    conn.set_read_timeout(None).unwrap();
}

#[tokio::test]
async fn sigterm_exits_within_the_deadline_despite_half_sent_requests_and_loses_nothing() {
    let mut s = Server::start_with_args(&["--shutdown-timeout", "2s", "--no-seed"]);
    let c = client();
    // Acknowledged immediately before the signal.
    let created = send(c.post(s.url("/products")).json(&product_json(
        "ACK-1",
        "Acknowledged",
        1,
        "in_stock",
    )))
    .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_i64().unwrap();

    // A half-sent head, and a complete head with a half-sent body (the handler waits for
    // the body: a request in flight that will never finish by itself).
    let mut half_head = std::net::TcpStream::connect(s.addr).unwrap();
    half_head
        .write_all(b"POST /products HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .unwrap();
    let mut half_body = std::net::TcpStream::connect(s.addr).unwrap();
    half_body
        .write_all(
            b"POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    // The handler asks for the body (100 Continue) once it runs: the request is in flight.
    await_continue(&mut half_body);
    half_body.write_all(b"{\"sku\":").unwrap();
    let events = c.get(s.url("/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    // Connections are accepted in order: once a later one is answered, the half-sent head's
    // connection is the server's too.
    assert_eq!(send(c.get(s.url("/health"))).await.status, 200);

    // Generous bound: the point is that it exits at all.
    let clean = s
        .terminate(Duration::from_secs(30))
        .expect("the server exits after SIGTERM although clients hold half-sent requests");
    assert!(clean, "exit status 0");
    assert!(s.log().iter().any(|l| l.contains("stopped accepting")));
    drop((half_head, half_body, events));

    s.restart().unwrap();
    let r = send(client().get(s.url(&format!("/products/{id}")))).await;
    assert_eq!(r.status, 200, "the acknowledged create survived");
    assert_eq!(r.etag(), created.etag());
}

#[tokio::test]
async fn a_request_in_flight_finishes_during_shutdown() {
    let mut s = Server::start_with_args(&["--shutdown-timeout", "10s"]);
    let c = client();
    let current = send(c.get(s.url("/products/1"))).await;
    // A write whose body is still on its way when SIGTERM arrives.
    let mut conn = std::net::TcpStream::connect(s.addr).unwrap();
    let body = serde_json::to_string(&product_json(
        "BBQ-KETTLE-57",
        "During shutdown",
        5,
        "in_stock",
    ))
    .unwrap();
    let (first, rest) = body.split_at(10);
    write!(
        conn,
        "PUT /products/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        current.etag(),
        body.len()
    )
    .unwrap();
    // The handler has checked If-Match and asks for the body: the request is in flight.
    await_continue(&mut conn);
    conn.write_all(first.as_bytes()).unwrap();
    let pid = s.pid().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    s.wait_for_log("shutting down", Duration::from_secs(5))
        .unwrap();
    conn.write_all(rest.as_bytes()).unwrap();
    let text = {
        use std::io::Read;
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = conn.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(text.starts_with("HTTP/1.1 200"), "answered: {text}");
    assert!(s.terminate(Duration::from_secs(30)).unwrap());
    s.restart().unwrap();
    let after = send(client().get(s.url("/products/1"))).await.json();
    assert_eq!(after["name"], "During shutdown");
}

/// Reads one HTTP/1.1 response with a `Content-Length` body (what /health answers).
fn read_response(conn: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        match conn.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return String::from_utf8_lossy(&got).to_ascii_lowercase(),
        }
    }
}

/// On SIGTERM a kept-alive connection with nothing in flight closes at once (so the server
/// never waits out its shutdown deadline, here a minute, for idle clients), while a
/// request whose head is still arriving is served once its head is complete (within the
/// header timeout), with `Connection: close`, on a fresh connection and on a kept-alive
/// one alike: a slow client is not cut off mid-request.
#[tokio::test]
async fn on_sigterm_idle_connections_close_and_a_half_sent_head_is_still_served() {
    use std::io::Read;
    let mut s = Server::start_with_args(&["--shutdown-timeout", "60s"]);
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut idle = std::net::TcpStream::connect(s.addr).unwrap();
    idle.write_all(health).unwrap();
    assert!(read_response(&mut idle).starts_with("http/1.1 200"));
    // Kept alive after one answer, then half of a second request.
    let mut kept = std::net::TcpStream::connect(s.addr).unwrap();
    kept.write_all(health).unwrap();
    assert!(read_response(&mut kept).starts_with("http/1.1 200"));
    kept.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let mut fresh = std::net::TcpStream::connect(s.addr).unwrap();
    fresh.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    // The connections are the server's, and their bytes read, once a later one is answered.
    assert_eq!(send(client().get(s.url("/health"))).await.status, 200);

    s.signal("TERM").unwrap();
    if let Err(e) = s.wait_for_log("stopped accepting", Duration::from_secs(10)) {
        panic!("{e}: {:#?}", s.log());
    }
    // Closed by the server (end of stream), long before the 60 s idle timeout.
    let started = std::time::Instant::now();
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(idle.read(&mut buf).unwrap_or(usize::MAX), 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(20));

    for (name, conn) in [("kept-alive", &mut kept), ("fresh", &mut fresh)] {
        conn.write_all(b"st: x\r\n\r\n").unwrap();
        let answer = read_response(conn);
        assert!(answer.starts_with("http/1.1 200"), "{name}: {answer}");
        assert!(answer.contains("connection: close"), "{name}: {answer}");
    }

    exits_before_its_deadline(&mut s, Duration::from_secs(30));
}

/// SIGTERM, and the server exits with status 0 within `within` without having had to
/// close connections still busy at its shutdown deadline.
fn exits_before_its_deadline(s: &mut Server, within: Duration) {
    let clean = s
        .terminate(within)
        .expect("the server exits well before its shutdown deadline");
    assert!(clean, "exit status 0");
    assert!(
        !s.log().iter().any(|l| l.contains("still busy")),
        "{:#?}",
        s.log()
    );
}

/// A head that never ends does not hold a stopping server until its shutdown deadline: it
/// is closed, unanswered, at the header timeout.
#[tokio::test]
async fn on_sigterm_a_head_that_never_ends_is_closed_at_the_header_timeout() {
    let mut s = Server::start_with_args(&["--shutdown-timeout", "120s", "--header-timeout", "2s"]);
    let mut half = std::net::TcpStream::connect(s.addr).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    assert_eq!(send(client().get(s.url("/health"))).await.status, 200);
    // Closed at the header timeout, long before the 120 s deadline.
    exits_before_its_deadline(&mut s, Duration::from_secs(60));
    drop(half);
}

/// The signal handlers are installed before the server says it is listening: a SIGTERM
/// sent the moment it is up is a graceful shutdown (exit status 0, "stopped" in the log),
/// never the default action that would end the process on the spot.
#[tokio::test]
async fn sigterm_at_once_after_start_is_graceful() {
    for _ in 0..5 {
        let mut s = Server::start();
        let clean = s.terminate(Duration::from_secs(30)).unwrap();
        assert!(clean, "exit status 0: {:#?}", s.log());
        assert!(
            s.log().iter().any(|l| l.ends_with(": stopped")),
            "{:#?}",
            s.log()
        );
    }
}
