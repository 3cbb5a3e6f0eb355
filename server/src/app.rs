//! The router and its layers (metrics, request log, head checks, authentication). The
//! state it serves is `state`'s; serving the connections is `serve`'s.

use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderMap;
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
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let header_text = |h: &HeaderMap, name: &str| {
        h.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let if_match = header_text(req.headers(), "if-match");
    let response = next.run(req).await;
    let etag = header_text(response.headers(), "etag");
    let user = response
        .extensions()
        .get::<Actor>()
        .map(|a| a.0.as_str())
        .unwrap_or("-");
    tracing::info!(
        "{method} {path} {status} if-match={if_match} etag={etag} user={user} {ms:.1}ms",
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
    );
    response
}
