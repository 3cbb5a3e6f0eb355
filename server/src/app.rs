//! The router and its layers (metrics, request log, head checks, authentication). The
//! state it serves is `state`'s; serving the connections is `serve`'s.

use std::borrow::Cow;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::auth::Actor;
use crate::problem::ApiError;
use crate::routes::{events, health, metrics, presence, products, versions};
use crate::state::Shared;

pub fn router(state: Shared) -> Router {
    Router::new()
        .merge(health::router())
        .merge(products::router())
        .merge(versions::router())
        .merge(events::router())
        .merge(presence::router())
        .merge(metrics::router())
        .merge(crate::openapi::router())
        .fallback(unknown_route)
        // Outermost first on the way in: log, then the head checks (Host, sizes), then
        // who is acting; a request refused by either never reaches a handler.
        .layer(middleware::from_fn_with_state(
            state.auth.clone(),
            crate::auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.head_limits,
            crate::head::check_head,
        ))
        .layer(middleware::from_fn(log_request))
        // Outermost: every answer is counted, the refused ones too.
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(&format!("The resource {}", uri.path()))
}

/// One log line per request: method, path, status, the If-Match sent, the ETag returned,
/// the user, and the time taken.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Clones of the method, URI and header value share their bytes (no copy): the line is
    // written once, from borrowed text.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let if_match = req.headers().get(header::IF_MATCH).cloned();
    let response = next.run(req).await;
    // Visible ASCII as it is (borrowed); anything else as lossy UTF-8, as before.
    fn text(v: Option<&HeaderValue>) -> Cow<'_, str> {
        match v {
            None => Cow::Borrowed("-"),
            Some(v) => v
                .to_str()
                .map_or_else(|_| String::from_utf8_lossy(v.as_bytes()), Cow::Borrowed),
        }
    }
    let user = response
        .extensions()
        .get::<Actor>()
        .map(|a| a.0.as_str())
        .unwrap_or("-");
    tracing::info!(
        "{method} {path} {status} if-match={if_match} etag={etag} user={user} {ms:.1}ms",
        path = uri.path(),
        if_match = text(if_match.as_ref()),
        etag = text(response.headers().get(header::ETAG)),
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
    );
    response
}
