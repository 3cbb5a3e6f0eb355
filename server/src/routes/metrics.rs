//! `GET /metrics`: what the server does (see `crate::metrics`), in the Prometheus text
//! format. With `--users` it takes a token like the data does (a scraper sends one): it
//! tells how busy the server is and with what.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{READ_ALLOW, not_allowed, options};
use crate::metrics::{TEXT_FORMAT, render, set_presence};
use crate::state::Shared;

/// `/metrics`: GET (and HEAD) and OPTIONS.
pub fn router() -> Router<Shared> {
    Router::new().route(
        "/metrics",
        get(get_metrics)
            .options(options_metrics)
            .fallback(not_allowed(READ_ALLOW)),
    )
}

#[utoipa::path(
    method(get, head),
    path = "/metrics",
    tag = "operations",
    operation_id = "getMetrics",
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format.", content_type = "text/plain", body = String),
        (status = 405, response = crate::problem::MethodNotAllowed),
    )
)]
pub async fn get_metrics(State(state): State<Shared>) -> Response {
    set_presence(state.feed.presence_count());
    let mut response = render().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(
    options,
    path = "/metrics",
    tag = "operations",
    operation_id = "optionsMetrics",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
pub async fn options_metrics() -> Response {
    options(READ_ALLOW, false)
}
