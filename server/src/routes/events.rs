//! `GET /events`: the change feed as Server-Sent Events, resumable with `Last-Event-ID`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use super::not_allowed;
use crate::auth::Credential;
use crate::problem::ApiError;
use crate::state::Shared;

/// `/events`: GET only (HEAD too is 405: a stream without a body is no stream).
pub fn router() -> Router<Shared> {
    Router::new().route(
        "/events",
        get(get_events)
            .head(not_allowed("GET"))
            .fallback(not_allowed("GET")),
    )
}

/// Withdraws its client's presence when the stream it belongs to is dropped.
struct Leaving {
    feed: std::sync::Arc<crate::feed::Feed>,
    client: String,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.feed.withdraw(&self.client);
    }
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "live",
    operation_id = "getEvents",
    description = "The change feed as Server-Sent Events: `ready` first (without Last-Event-ID), then `created`, `updated`, `deleted` (data: ChangeEvent), `reset` (data: ResetEvent: reload the list) and `presence` (data: PresenceEvent, no id). Resumable with Last-Event-ID.",
    params(
        ("Last-Event-ID" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "`<database>:<seq>` of the last event seen; one this database cannot resume from gets `reset`."),
        ("X-Client-Id" = Option<String>, Header, description = "The client's random id: its presence ends when this stream does.", pattern = "^[!-~]{1,64}$"),
    ),
    responses(
        (status = 200, description = "The event stream (it lasts until the client or the server ends it).", content_type = "text/event-stream", body = String),
        (status = 405, response = crate::problem::MethodNotAllowed),
    )
)]
pub async fn get_events(
    State(state): State<Shared>,
    credential: Option<Extension<Credential>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Each stream holds a connection and a place in the feed for as long as it lasts.
    let Ok(permit) = state.event_streams.clone().try_acquire_owned() else {
        tracing::warn!("refused an event stream: --max-event-streams are open");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-event-streams",
            "Service Unavailable",
            "The server has as many event streams open as it takes (--max-event-streams). Try again later; meanwhile GET /products shows the current state.",
        )
        .with_header(header::RETRY_AFTER, "5"));
    };
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let stream = state.feed.subscribe(last_event_id);
    // A client's presence ends with its event stream (closed, or the client killed).
    let leaving = headers
        .get(catalog_shared::presence::CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|client| Leaving {
            feed: state.feed.clone(),
            client: client.to_string(),
        });
    // End the stream when the server shuts down, so graceful shutdown is not held open,
    // and when its token stops naming a user (removed or rotated, then SIGHUP).
    let mut shutdown = state.shutdown.clone();
    let auth = state.auth.clone();
    let credential = credential.map(|Extension(c)| c);
    let stream = futures_util::StreamExt::take_until(stream, async move {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            () = auth.revoked(credential) => {}
        }
    });
    // The place is given back, and the stream no longer counted, when it ends or its
    // client goes away.
    let open = crate::metrics::OpenStream::open();
    let stream = futures_util::StreamExt::map(stream, move |frame| {
        let _held = (&permit, &leaving, &open);
        frame
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx and its kin: pass events on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
