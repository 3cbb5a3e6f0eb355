//! Presence over the wire: announce, renew, withdraw, expiry and stream end, fanned out
//! as `presence` events that never move `Last-Event-ID`.

use std::time::Duration;

use catalog_shared::presence::PresenceEvent;
use catalog_tests::{Server, client, send};
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};

type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

async fn subscribe(s: &Server, client_id: &str) -> Events {
    let r = client()
        .get(s.url("/events"))
        .header("X-Client-Id", client_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Box::pin(
        r.bytes_stream()
            .eventsource()
            .map(|e| e.expect("a well-formed event")),
    )
}

/// The next presence event (other kinds skipped).
async fn next_presence(events: &mut Events) -> (Event, PresenceEvent) {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("an event within 20 s")
            .expect("the stream is open");
        if e.event == "presence" {
            let p = serde_json::from_str(&e.data).expect("presence JSON");
            return (e, p);
        }
    }
}

async fn announce(s: &Server, client_id: &str, user: &str, body: serde_json::Value) -> u16 {
    send(
        client()
            .put(s.url("/presence"))
            .header("X-Client-Id", client_id)
            .header("X-User", user)
            .json(&body),
    )
    .await
    .status
}

#[tokio::test]
async fn presence_is_fanned_out_snapshotted_and_withdrawn() {
    let s = Server::start();
    let mut watcher = subscribe(&s, "alice-1").await;
    let ready = tokio::time::timeout(Duration::from_secs(20), watcher.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.event, "ready");
    assert_eq!(
        announce(
            &s,
            "bob-1",
            "bob",
            serde_json::json!({"product_id": 1, "field": "price"})
        )
        .await,
        204
    );
    let (event, p) = next_presence(&mut watcher).await;
    assert_eq!(
        p,
        PresenceEvent {
            client: "bob-1".into(),
            user: "bob".into(),
            product_id: Some(1),
            field: Some("price".into()),
        }
    );
    // (An SSE parser carries the last id over to an event that has none.)
    assert_eq!(event.id, ready.id, "presence never moves Last-Event-ID");
    // A renewal of the same place is not news; a new field is.
    announce(
        &s,
        "bob-1",
        "bob",
        serde_json::json!({"product_id": 1, "field": "price"}),
    )
    .await;
    announce(
        &s,
        "bob-1",
        "bob",
        serde_json::json!({"product_id": 1, "field": "status"}),
    )
    .await;
    let (_, p) = next_presence(&mut watcher).await;
    assert_eq!(p.field.as_deref(), Some("status"));
    // A stream opened now begins with the presence of now.
    let mut late = subscribe(&s, "carol-1").await;
    let (_, p) = next_presence(&mut late).await;
    assert_eq!((p.user.as_str(), p.product_id), ("bob", Some(1)));
    assert_eq!(
        send(client().get(s.url("/health"))).await.json()["presence"],
        1
    );
    // Withdrawn: everyone hears it.
    let r = send(
        client()
            .delete(s.url("/presence"))
            .header("X-Client-Id", "bob-1"),
    )
    .await;
    assert_eq!(r.status, 204);
    for events in [&mut watcher, &mut late] {
        let (_, p) = next_presence(events).await;
        assert_eq!((p.client.as_str(), p.product_id), ("bob-1", None));
    }
    // A field's name is up to 64 characters, not bytes (found by schemathesis).
    let long = "é".repeat(64);
    assert_eq!(
        announce(
            &s,
            "dave-1",
            "dave",
            serde_json::json!({"product_id": 1, "field": long})
        )
        .await,
        204
    );
    // Without a client id there is nothing to hold presence by.
    send(
        client()
            .put(s.url("/presence"))
            .json(&serde_json::json!({"product_id": 1})),
    )
    .await
    .problem(400);
}

#[tokio::test]
async fn presence_ends_with_the_clients_stream_and_expires_unrenewed() {
    let s = Server::start_with_args(&["--presence-ttl", "2s"]);
    let mut watcher = subscribe(&s, "alice-1").await;
    // Bob's client: its stream and its announcement. The stream ends: so does presence.
    let bobs_stream = subscribe(&s, "bob-1").await;
    announce(
        &s,
        "bob-1",
        "bob",
        serde_json::json!({"product_id": 2, "field": null}),
    )
    .await;
    let (_, p) = next_presence(&mut watcher).await;
    assert_eq!(p.product_id, Some(2));
    drop(bobs_stream);
    let (_, p) = next_presence(&mut watcher).await;
    assert_eq!((p.client.as_str(), p.product_id), ("bob-1", None));
    // Carol announces once and never renews: it expires.
    announce(&s, "carol-1", "carol", serde_json::json!({"product_id": 3})).await;
    let (_, p) = next_presence(&mut watcher).await;
    assert_eq!(p.product_id, Some(3));
    let (_, p) = next_presence(&mut watcher).await;
    assert_eq!((p.client.as_str(), p.product_id), ("carol-1", None));
}
