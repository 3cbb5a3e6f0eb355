//! `GET /metrics`: what the server does (see `crate::metrics`), in the Prometheus text
//! format. With `--users` it takes a token like the data does (a scraper sends one): it
//! tells how busy the server is and with what.

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::{READ_ALLOW, options};
use crate::metrics::{TEXT_FORMAT, render, set_presence};
use crate::problem::ApiError;
use crate::state::Shared;

pub async fn metrics(State(state): State<Shared>, method: Method) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return Ok(options(READ_ALLOW, false)),
        _ => return Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
    set_presence(state.feed.presence_count());
    let text = render();
    let mut response = text.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
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
#[allow(dead_code)]
pub(crate) fn get_metrics() {}

#[utoipa::path(
    options,
    path = "/metrics",
    tag = "operations",
    operation_id = "optionsMetrics",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
#[allow(dead_code)]
pub(crate) fn options_metrics() {}
