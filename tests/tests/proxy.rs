//! The fault-injecting proxy itself, in front of the real server: it passes requests and
//! replies through untouched (keep-alive included), delays, drops and refuses exactly the
//! requests it is told to, and leaves the event stream live.

use std::future::Future;
use std::time::{Duration, Instant};

use catalog_tests::proxy::{Fault, Proxy};
use catalog_tests::{Server, client, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

/// Long enough for anything that should happen to happen; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

fn kettle(price_cents: i64) -> Value {
    json!({
        "sku": "BBQ-KETTLE-57",
        "name": "Kettle charcoal BBQ, 57 cm",
        "description": "x",
        "price_cents": price_cents,
        "status": "in_stock"
    })
}

/// Product 1 as the server has it, asked directly: (version, ETag).
async fn direct(s: &Server) -> (i64, String) {
    let r = within("direct GET", send(client().get(s.url("/products/1")))).await;
    assert_eq!(r.status, 200);
    (r.json()["version"].as_i64().unwrap(), r.etag())
}

/// A PUT of product 1 through the proxy: the whole reply, or the error.
async fn put(
    c: &reqwest::Client,
    p: &Proxy,
    etag: &str,
    price_cents: i64,
) -> reqwest::Result<(u16, Value)> {
    within("PUT through the proxy", async {
        let r = c
            .put(p.url("/products/1"))
            .header("If-Match", etag)
            .json(&kettle(price_cents))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    })
    .await
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Subscribes to `/events` through the proxy, as the terminal client does.
async fn subscribe(p: &Proxy) -> reqwest::Result<Events> {
    let r = within(
        "GET /events through the proxy",
        client()
            .get(p.url("/events"))
            .header("Accept", "text/event-stream")
            .send(),
    )
    .await?;
    assert_eq!(r.status(), 200);
    Ok(Box::pin(
        r.bytes_stream()
            .eventsource()
            .map(|e| e.expect("a well-formed event")),
    ))
}

async fn next(events: &mut Events) -> Event {
    within("the next event", events.next())
        .await
        .expect("the stream is open")
}

#[tokio::test]
async fn requests_and_replies_pass_through_on_one_connection() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    let (_, etag) = direct(&s).await;

    for _ in 0..3 {
        let r = within("GET", send(c.get(p.url("/products/1")))).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.etag(), etag, "the same ETag as from the server directly");
        assert_eq!(r.json()["sku"], "BBQ-KETTLE-57");
    }
    let list = within("GET the list", send(c.get(p.url("/products")))).await;
    assert_eq!(list.status, 200);
    let missing = within(
        "GET a missing product",
        send(c.get(p.url("/products/9999"))),
    )
    .await;
    missing.problem(404);

    // A request with a body, and its effect.
    let (status, body) = put(&c, &p, &etag, 4200).await.expect("the PUT is answered");
    assert_eq!((status, body["version"].clone()), (200, json!(2)));
    let r = within("GET", send(c.get(p.url("/products/1")))).await;
    assert_eq!(r.json()["price_cents"], 4200);
    assert_eq!(direct(&s).await.0, 2);

    assert_eq!(p.requests_seen(), 7);
    assert_eq!(
        p.connections_accepted(),
        1,
        "one keep-alive connection carried every request"
    );
}

#[tokio::test]
async fn a_chunked_request_body_passes_through() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let (_, etag) = direct(&s).await;
    let json = kettle(777).to_string();
    let (head, tail) = json.split_at(json.len() / 2);
    // A streamed body goes out with `Transfer-Encoding: chunked`, in two chunks.
    let pieces = vec![
        Ok::<_, std::io::Error>(head.to_string()),
        Ok(tail.to_string()),
    ];
    let r = within(
        "a chunked PUT",
        send(
            client()
                .put(p.url("/products/1"))
                .header("If-Match", etag)
                .header("Content-Type", "application/json")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    pieces,
                ))),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["price_cents"], 777);
    assert_eq!(direct(&s).await.0, 2);
}

#[tokio::test]
async fn delay_reply_holds_each_reply_at_least_that_long() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    let (_, etag) = direct(&s).await;
    let delay = Duration::from_millis(400);
    p.set(Fault::DelayReply(delay));

    for _ in 0..2 {
        let started = Instant::now();
        let r = within("a delayed GET", send(c.get(p.url("/products/1")))).await;
        let took = started.elapsed();
        assert_eq!(r.status, 200);
        assert_eq!(r.etag(), etag);
        assert!(
            took >= delay,
            "the reply came after {took:?}, before {delay:?}"
        );
    }
    assert_eq!(p.requests_seen(), 2);
}

#[tokio::test]
async fn drop_reply_loses_the_reply_but_not_the_write() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    let (version, etag) = direct(&s).await;
    assert_eq!(version, 1);
    p.set(Fault::only("PUT", "/products/1", Fault::DropReply));

    let err = put(&c, &p, &etag, 100)
        .await
        .expect_err("the client never gets the reply");
    assert!(!err.is_timeout(), "the connection was closed: {err:?}");
    assert_eq!(direct(&s).await.0, 2, "the PUT took effect on the server");
    assert_eq!(p.requests_seen(), 1, "the client did not retry the PUT");

    // Only PUTs are affected: a GET through the proxy sees the write.
    let r = within("GET", send(c.get(p.url("/products/1")))).await;
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(2)));

    // The fault stays until it is changed.
    let (_, etag) = direct(&s).await;
    assert!(put(&c, &p, &etag, 200).await.is_err());
    assert_eq!(direct(&s).await.0, 3);
    p.set(Fault::None);
    let (_, etag) = direct(&s).await;
    let (status, body) = put(&c, &p, &etag, 300).await.expect("answered again");
    assert_eq!((status, body["version"].clone()), (200, json!(4)));
}

#[tokio::test]
async fn times_one_affects_the_next_request_only() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    let (_, etag) = direct(&s).await;
    p.set(Fault::times(1, Fault::DropReply));

    assert!(
        put(&c, &p, &etag, 100).await.is_err(),
        "the first reply is lost"
    );
    assert_eq!(direct(&s).await.0, 2);
    assert_eq!(p.fault(), Fault::times(0, Fault::DropReply), "used up");

    let (_, etag) = direct(&s).await;
    let (status, body) = put(&c, &p, &etag, 200)
        .await
        .expect("the second reply arrives");
    assert_eq!((status, body["version"].clone()), (200, json!(3)));
    let r = within("GET", send(c.get(p.url("/products/1")))).await;
    assert_eq!(r.status, 200);
    assert_eq!(p.requests_seen(), 3);

    // Inside Only, Times counts matching requests only.
    p.set(Fault::only(
        "PUT",
        "/products/1",
        Fault::times(1, Fault::DropReply),
    ));
    for _ in 0..2 {
        let r = within("GET", send(c.get(p.url("/products/1")))).await;
        assert_eq!(r.status, 200, "GETs do not use up the count");
    }
    let (_, etag) = direct(&s).await;
    assert!(put(&c, &p, &etag, 300).await.is_err());
    let (_, etag) = direct(&s).await;
    assert!(put(&c, &p, &etag, 400).await.is_ok());
    assert_eq!(direct(&s).await.0, 5);
}

#[tokio::test]
async fn refuse_never_reaches_the_server() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    let (_, etag) = direct(&s).await;
    p.set(Fault::only("PUT", "/products/1", Fault::Refuse));

    let err = put(&c, &p, &etag, 100)
        .await
        .expect_err("the connection is closed");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(p.requests_seen(), 0);
    assert_eq!(direct(&s).await.0, 1, "the server never saw the PUT");

    let r = within("GET", send(c.get(p.url("/products/1")))).await;
    assert_eq!(r.status, 200, "other requests pass");
}

#[tokio::test]
async fn the_event_stream_stays_live_through_put_faults() {
    let s = Server::start();
    let p = Proxy::start(s.addr).await.unwrap();
    let c = client();
    p.set(Fault::only("PUT", "/products/1", Fault::DropReply));

    let mut events = subscribe(&p).await.expect("the stream opens");
    assert_eq!(next(&mut events).await.event, "ready");

    // A PUT whose reply is lost still shows up, live, on the stream.
    let (_, etag) = direct(&s).await;
    assert!(put(&c, &p, &etag, 100).await.is_err());
    let updated = next(&mut events).await;
    assert_eq!(updated.event, "updated");
    let data: Value = serde_json::from_str(&updated.data).unwrap();
    assert_eq!(
        (data["id"].clone(), data["version"].clone()),
        (json!(1), json!(2))
    );

    // Faults not scoped to GET /events leave streams alone, even a very long delay...
    p.set(Fault::DelayReply(Duration::from_secs(3600)));
    let mut second = subscribe(&p).await.expect("the stream opens");
    assert_eq!(next(&mut second).await.event, "ready");
    // ...while ordinary replies are held, and both streams keep flowing.
    let (_, etag) = direct(&s).await;
    let held = tokio::spawn(
        c.put(p.url("/products/1"))
            .header("If-Match", etag)
            .json(&kettle(200))
            .send(),
    );
    for stream in [&mut events, &mut second] {
        let e = next(stream).await;
        assert_eq!(e.event, "updated");
        let data: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(data["version"], 3);
    }
    held.abort();

    // A fault that explicitly matches GET /events does apply to it.
    p.set(Fault::only("GET", "/events", Fault::Refuse));
    assert!(subscribe(&p).await.is_err(), "the stream is refused");
    p.set(Fault::only("GET", "/events", Fault::DropReply));
    assert!(subscribe(&p).await.is_err(), "the stream is cut off");
}
