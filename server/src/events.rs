//! `GET /events`: Server-Sent Events, one per committed change, resumable with
//! `Last-Event-ID` from the change log. A slow subscriber never slows a writer: the live
//! feed is a bounded broadcast, and a subscriber that overruns it gets a `reset`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use catalog_shared::event::{ChangeEvent, READY, RESET, ResetEvent};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::http::{Shared, db};
use crate::problem::ApiError;
use crate::storage::Since;

fn change(event: &ChangeEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(event.seq.to_string())
        .event(event.op.as_str())
        .data(data)
}

/// The first event of a stream opened without `Last-Event-ID`: its `id:` is the latest
/// sequence number, so a client that reconnects resumes from the moment it subscribed.
fn ready(latest: i64) -> Event {
    Event::default()
        .id(latest.to_string())
        .event(READY)
        .data(format!("{{\"seq\":{latest}}}"))
}

fn reset(latest: i64, reason: &str) -> Event {
    let data = serde_json::to_string(&ResetEvent {
        seq: latest,
        reason: reason.to_string(),
    })
    .unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(latest.to_string())
        .event(RESET)
        .data(data)
}

struct Feed {
    state: Shared,
    queue: VecDeque<Event>,
    live: tokio::sync::broadcast::Receiver<ChangeEvent>,
    /// The highest sequence number sent, so the backlog and the live feed never repeat.
    sent: i64,
}

pub async fn events(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed("GET"));
    }
    // Subscribe before reading the backlog: a change committed in between is in both,
    // and `sent` drops the repeat.
    let live = state.store.subscribe();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().parse::<i64>());
    let mut queue = VecDeque::new();
    let sent = match last_id {
        None => {
            let latest = db(&state, |s| s.latest_change()).await?.0;
            queue.push_back(ready(latest));
            latest
        }
        Some(Err(_)) => {
            let latest = db(&state, |s| s.latest_change()).await?.0;
            queue.push_back(reset(latest, "Last-Event-ID is not a sequence number"));
            latest
        }
        Some(Ok(seq)) => match db(&state, move |s| s.changes_since(seq)).await? {
            Since::Events(backlog) => {
                let mut sent = seq;
                for e in backlog {
                    sent = e.seq;
                    queue.push_back(change(&e));
                }
                sent
            }
            Since::TooOld { latest } => {
                queue.push_back(reset(
                    latest,
                    "the change log no longer holds the changes after Last-Event-ID",
                ));
                latest
            }
        },
    };
    let mut shutdown = state.shutdown.clone();
    let feed = Feed {
        state,
        queue,
        live,
        sent,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        if let Some(event) = feed.queue.pop_front() {
            return Some((Ok::<_, Infallible>(event), feed));
        }
        loop {
            match feed.live.recv().await {
                Ok(e) if e.seq <= feed.sent => continue,
                Ok(e) => {
                    feed.sent = e.seq;
                    return Some((Ok(change(&e)), feed));
                }
                Err(RecvError::Lagged(missed)) => {
                    let latest = db(&feed.state, |s| s.latest_change())
                        .await
                        .map(|l| l.0)
                        .unwrap_or(feed.sent);
                    tracing::warn!(missed, "a slow event subscriber fell behind; sent reset");
                    feed.sent = latest;
                    let event = reset(latest, "this subscriber fell behind the live feed");
                    return Some((Ok(event), feed));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    // End the stream when the server shuts down, so graceful shutdown is not held open.
    let stream = futures_util::StreamExt::take_until(stream, async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use catalog_shared::product::{ProductFields, Status};
    use futures_util::StreamExt;
    use tokio::sync::watch;

    use super::*;
    use crate::http::AppState;
    use crate::storage::Storage;
    use crate::storage::sqlite::{SqliteStore, Sync};

    fn fields(i: usize) -> ProductFields {
        ProductFields {
            sku: format!("S-{i}"),
            name: "n".into(),
            description: String::new(),
            price_cents: 1,
            status: Status::InStock,
        }
    }

    /// Reads the SSE body until `needle` appears.
    async fn read_until(
        body: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
        text: &mut String,
        needle: &str,
    ) {
        while !text.contains(needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .expect("the stream answers")
                .expect("the stream is open")
                .expect("a chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    #[tokio::test]
    async fn an_overrun_subscriber_gets_reset_and_never_slows_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = SqliteStore::open(&dir.path().join("c.db"), Sync::Normal, 10_000).unwrap();
        let store: Arc<dyn Storage> = Arc::new(store);
        let (_stop, shutdown) = watch::channel(false);
        let state = Arc::new(AppState {
            store: store.clone(),
            allow_unconditional: false,
            shutdown,
        });
        let response = events(State(state), Method::GET, HeaderMap::new())
            .await
            .unwrap();
        // Nobody reads the stream while more changes commit than its buffer holds: the
        // writes complete all the same.
        for i in 0..1100 {
            store.create(&fields(i), "writer").unwrap();
        }
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        read_until(&mut body, &mut text, "event: reset").await;
        assert!(text.starts_with("id: 0\nevent: ready"), "{text}");
        assert!(
            text.contains("id: 1100\nevent: reset"),
            "the reset names the latest seq: {text}"
        );
        // After the reset the subscriber follows live changes again, without repeats.
        store.create(&fields(2000), "writer").unwrap();
        let mut rest = String::new();
        read_until(&mut body, &mut rest, "id: 1101\n").await;
        assert!(!rest.contains("id: 1000\n"), "{rest}");
    }
}
