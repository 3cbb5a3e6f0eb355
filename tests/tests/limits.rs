//! Timeouts and limits: slowloris and idle floods never keep `/health` out; a slow head,
//! an idle connection and a trickled body are cut off; past the connection and event
//! stream caps a client gets a 503 problem; oversized headers get 431 problem+json.

use std::time::{Duration, Instant};

use catalog_tests::{Server, client, health, raw_exchange, raw_status, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `slow` connections that send a request head a byte at a time and `idle`
/// connections that send nothing, then asks `/health` and returns how long it took.
async fn health_under_flood(s: &Server, slow: usize, idle: usize) -> Duration {
    let mut slowloris = Vec::with_capacity(slow);
    for _ in 0..slow {
        let mut c = TcpStream::connect(s.addr).await.expect("connect");
        c.write_all(b"GET /products HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("first bytes");
        slowloris.push(c);
    }
    // Keep dribbling, as a slowloris does, for the whole test.
    let dribble = tokio::spawn(async move {
        loop {
            for c in slowloris.iter_mut() {
                let _ = c.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut idlers = Vec::with_capacity(idle);
    for _ in 0..idle {
        match TcpStream::connect(s.addr).await {
            Ok(c) => idlers.push(c),
            Err(e) => panic!("connection {} of the idle flood: {e}", idlers.len()),
        }
    }
    // The server accepts connections in order: once a /health sent after the flood is
    // answered, it holds the whole flood. Then /health is timed.
    let c = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first = c
        .get(s.url("/health"))
        .send()
        .await
        .expect("/health answers once the flood is accepted");
    assert_eq!(first.status(), 200);
    let started = Instant::now();
    let r = c
        .get(s.url("/health"))
        .send()
        .await
        .expect("/health answers under the flood");
    assert_eq!(r.status(), 200);
    let took = started.elapsed();
    dribble.abort();
    drop(idlers);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_at_once_under_300_slowloris_and_5000_idle_connections() {
    let s = Server::start();
    let took = health_under_flood(&s, 300, 5000).await;
    assert!(took < Duration::from_secs(2), "/health took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_for_new_ones() {
    // A cap far below the flood: the server must close idle and slow connections to
    // serve /health, not hang or refuse.
    let s = Server::start_with_args(&["--max-connections", "500"]);
    let took = health_under_flood(&s, 300, 5000).await;
    assert!(took < Duration::from_secs(2), "/health took {took:?}");
    s.wait_for_log("closing the oldest idle", Duration::from_secs(5))
        .expect("the cap is reported");
}

/// Reads until the server closes the connection; returns how long that took, or None.
async fn closed_within(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), c.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_slow_head_and_an_idle_connection_are_closed_by_their_timeouts() {
    let s = Server::start_with_args(&["--header-timeout", "1s", "--idle-timeout", "2s"]);
    // A head that keeps trickling is closed after the header timeout, however steadily
    // it trickles.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..40 {
            if slow.write_all(b"X-A: b\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    trickle.await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "a trickling head is cut off"
    );

    // A connection that sends nothing is closed after the idle timeout, not before the
    // header timeout has passed (idle is not slow).
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    let took = closed_within(&mut idle, Duration::from_secs(10))
        .await
        .expect("an idle connection is closed");
    assert!(took >= Duration::from_millis(1500), "closed after {took:?}");

    // A kept-alive connection is idle between requests too.
    let mut kept = TcpStream::connect(s.addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut kept, Duration::from_secs(10))
            .await
            .is_some()
    );
    assert_eq!(health(&s).await["status"], "ok");
}

#[tokio::test]
async fn a_trickled_body_gets_408_as_a_problem() {
    let s = Server::start_with_args(&["--body-timeout", "1s"]);
    let text = raw_exchange(
        s.addr,
        b"POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sku\":",
        Duration::from_secs(5),
    );
    assert_eq!(raw_status(&text), 408, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
}

#[tokio::test]
async fn past_the_event_stream_cap_a_subscriber_gets_503_with_retry_after() {
    let s = Server::start_with_args(&["--max-event-streams", "2"]);
    let c = client();
    let a = c.get(s.url("/events")).send().await.unwrap();
    let b = c.get(s.url("/events")).send().await.unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let third = send(c.get(s.url("/events"))).await;
    third.problem(503);
    assert!(third.header("retry-after").is_some());
    // Requests other than event streams are not affected.
    assert_eq!(send(c.get(s.url("/products/1"))).await.status, 200);
    // A stream that ends gives its place back.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.get(s.url("/events")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(b);
}

/// Opens event streams until the server refuses one; returns the open ones and the
/// refusal.
async fn open_streams_until_refused(
    s: &Server,
    at_most: usize,
) -> (Vec<reqwest::Response>, catalog_tests::Reply) {
    let c = client();
    let mut streams = Vec::new();
    for _ in 0..at_most {
        let r = c
            .get(s.url("/events"))
            .send()
            .await
            .expect("the stream is answered");
        if r.status() != 200 {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.expect("a body").to_vec();
            return (
                streams,
                catalog_tests::Reply {
                    status,
                    headers,
                    body,
                },
            );
        }
        streams.push(r);
    }
    panic!("{at_most} event streams were all accepted");
}

#[tokio::test]
async fn event_streams_at_their_cap_leave_health_and_writes_answering() {
    // 256 file descriptors: the server lowers its connection cap to 128, and the event
    // stream cap (2,048 by default) to 7/8 of that.
    let s = Server::start_with_fd_limit(&[], 256);
    s.wait_for_log(
        "--max-connections 8192 lowered to 128",
        Duration::from_secs(5),
    )
    .expect("the connection cap is lowered and said");
    s.wait_for_log(
        "--max-event-streams 2048 lowered to 112",
        Duration::from_secs(5),
    )
    .expect("the stream cap is lowered with it and said");
    let (streams, refused) = open_streams_until_refused(&s, 200).await;
    assert_eq!(
        streams.len(),
        112,
        "streams took at most 7/8 of the connections"
    );
    refused.problem(503);
    assert!(refused.header("retry-after").is_some());
    // With every stream place taken, /health, reads and writes still answer, each on a
    // connection of its own.
    assert_eq!(health(&s).await["status"], "ok");
    let current = send(client().get(s.url("/products/1"))).await;
    assert_eq!(current.status, 200);
    let mut product = current.json();
    product["name"] = "Written while streams are at their cap".into();
    let written = send(
        client()
            .put(s.url("/products/1"))
            .header("if-match", current.etag())
            .json(&product),
    )
    .await;
    assert_eq!(
        written.status,
        200,
        "{}",
        String::from_utf8_lossy(&written.body)
    );
    // And the streams still hear the write.
    let mut first = streams.into_iter().next().expect("a stream");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while !text.contains("event: updated") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, first.chunk())
            .await
            .expect("the update reaches a stream within 30 s")
            .expect("the stream reads")
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_gets_a_503_problem() {
    let s = Server::start_with_args(&["--max-connections", "3"]);
    // Three connections, each with a request in flight: the handler has asked for the body
    // (100 Continue), which is still on its way.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"POST /products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(30), c.read(&mut byte))
                .await
                .expect("100 Continue within 30 s")
                .unwrap();
            assert_eq!(n, 1, "the connection stays open");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 100"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        c.write_all(b"{").await.unwrap();
        busy.push(c);
    }
    let text = raw_exchange(
        s.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(raw_status(&text), 503, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    drop(busy);
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw_status(&raw_exchange(
        s.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    )) != 200
    {
        assert!(Instant::now() < deadline, "the server never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn oversized_heads_and_targets_are_problems_at_every_size() {
    let s = Server::start();
    let c = client();
    let big = "a".repeat(64 * 1024);
    let r = send(c.get(s.url("/products/1")).header("X-Big", &big)).await;
    r.problem(431);
    let mut many = c.get(s.url("/products/1"));
    for i in 0..150 {
        many = many.header(format!("X-H{i}"), "v");
    }
    send(many).await.problem(431);
    let long = format!("/products?after={}", "1".repeat(10_000));
    send(c.get(s.url(&long))).await.problem(414);
    // Past hyper's own limits (a head four times our cap, a target over 64 KiB) hyper
    // refuses by itself; the answer is a problem all the same, and the server carries on.
    for (head, status) in [
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
                "a".repeat(200 * 1024)
            ),
            431,
        ),
        (
            format!(
                "GET /products?after={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "1".repeat(70 * 1024)
            ),
            414,
        ),
    ] {
        let text = raw_exchange(s.addr, head.as_bytes(), Duration::from_secs(5));
        assert_eq!(raw_status(&text), status, "{text}");
        assert!(
            text.contains("content-type: application/problem+json"),
            "{text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let problem: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("a problem document ({e}): {text}"));
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].is_string(), "{problem}");
    }
    assert_eq!(health(&s).await["status"], "ok");
}

/// An answer still leaving is not idle: a client that reads a large page slowly keeps its
/// connection at the cap, although the server is done with the request and only hyper's
/// buffer holds the rest, and gets every byte; a connection that is truly idle makes room
/// instead.
#[tokio::test]
async fn at_the_cap_a_slow_reader_is_not_cut_off_mid_answer() {
    let s = Server::start_with_args(&["--max-connections", "2", "--send-buffer", "4096"]);
    let c = client();
    let description = "d".repeat(4500);
    for i in 0..200 {
        let mut product = catalog_tests::product_json(&format!("BIG-{i}"), "Big", 100, "in_stock");
        product["description"] = description.clone().into();
        assert_eq!(
            send(c.post(s.url("/products")).json(&product)).await.status,
            201
        );
    }
    drop(c);
    // A reader with a small receive buffer asks for about 900 KB and reads nothing yet.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(s.addr).await.unwrap();
    slow.write_all(b"GET /products?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer has started to arrive: hyper has its whole body, the handler is done.
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(30), slow.peek(&mut first))
        .await
        .expect("the answer starts")
        .unwrap();
    // Two more connections at a cap of two: the second needs a place, and the only idle
    // connection to take it from is the first of them.
    let health_on_new_connection = || async {
        raw_status(&raw_exchange(
            s.addr,
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            Duration::from_secs(2),
        ))
    };
    let mut kept = TcpStream::connect(s.addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    assert!(kept.read(&mut buf).await.unwrap() > 0);
    assert_eq!(health_on_new_connection().await, 200);
    // Now the slow reader reads: the whole answer, as long as its Content-Length says.
    let mut answer = Vec::new();
    let whole = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
            if let Some((head, body)) = text.split_once("\r\n\r\n")
                && let Some(length) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                && body.len() >= length
            {
                return true;
            }
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        whole,
        "the slow reader got {} bytes and then the connection ended",
        answer.len()
    );
    assert!(answer.len() > 800_000, "{} bytes", answer.len());
}
