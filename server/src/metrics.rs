//! `GET /metrics`: what the server does, in the Prometheus text format. The `metrics`
//! facade records; its Prometheus recorder keeps the values and renders them in our own
//! route (it runs no listener of its own). The names, all prefixed `catalog_`:
//!
//! - `http_requests_total{route,method,status}`: every request the router answered, by
//!   matched route (`/products/{id}`, never the raw path), method and status.
//! - `conditional_responses_total{outcome,method}`: `not_modified` (304),
//!   `precondition_failed` (412) and `precondition_required` (428).
//! - `write_batch_size` and `commit_seconds{backend}`: histograms; SQLite's writer commits
//!   a batch of writes per transaction, PostgreSQL one write per transaction.
//! - `event_streams`: the event streams open now; `event_resets_total`: `reset` events
//!   sent (a subscriber that fell behind, or resumed from a position the log no longer
//!   has), the feed's lag made visible.
//! - `presence`: the clients whose editor is on a product now ([`set_presence`]).
//! - `feed_published_tx` and `feed_published_id`: the feed's published cursor (the latest
//!   event id's position: on SQLite the sequence number is `id` and `tx` stays 0);
//!   `feed_held_changes` and `feed_horizon_lag_seconds`: committed changes the feed cannot
//!   publish yet because a transaction still running somewhere in the PostgreSQL cluster
//!   holds the snapshot horizon below them, and how long the oldest has waited.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::Shared;
use crate::problem::ApiError;
use crate::routes::{READ_ALLOW, options};

/// The Prometheus text format's media type.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls do nothing). Values recorded
/// before it are not kept.
pub fn install() {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("catalog_write_batch_size".into()),
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("catalog_commit_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
            });
        let handle = builder.and_then(|b| b.install_recorder());
        match handle {
            Ok(handle) => {
                describe();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!("metrics are off: {e}");
                None
            }
        }
    });
}

fn describe() {
    metrics::describe_counter!(
        "catalog_http_requests_total",
        "Requests answered, by matched route, method and status."
    );
    metrics::describe_counter!(
        "catalog_conditional_responses_total",
        "Conditional outcomes: not_modified (304), precondition_failed (412), precondition_required (428)."
    );
    metrics::describe_histogram!(
        "catalog_write_batch_size",
        "Writes committed in one SQLite transaction."
    );
    metrics::describe_histogram!(
        "catalog_commit_seconds",
        metrics::Unit::Seconds,
        "Time to commit one transaction (a batch on SQLite, one write on PostgreSQL)."
    );
    metrics::describe_gauge!("catalog_event_streams", "Event streams (GET /events) open.");
    metrics::describe_counter!(
        "catalog_event_resets_total",
        "reset events sent: a subscriber fell behind, or resumed from a position the change log no longer has."
    );
    metrics::describe_gauge!(
        "catalog_presence",
        "Clients whose editor is on a product now."
    );
    metrics::describe_gauge!(
        "catalog_feed_published_tx",
        "The published cursor's transaction id (PostgreSQL; 0 on SQLite)."
    );
    metrics::describe_gauge!(
        "catalog_feed_published_id",
        "The published cursor's change-log row id (the sequence number on SQLite)."
    );
    metrics::describe_gauge!(
        "catalog_feed_held_changes",
        "Committed changes not yet publishable: above the snapshot horizon (PostgreSQL)."
    );
    metrics::describe_gauge!(
        "catalog_feed_horizon_lag_seconds",
        metrics::Unit::Seconds,
        "How long the oldest committed change held above the snapshot horizon has waited (0 when none)."
    );
    // Present from the first scrape, not only after the first of each.
    for outcome in [
        "not_modified",
        "precondition_failed",
        "precondition_required",
    ] {
        metrics::counter!("catalog_conditional_responses_total", "outcome" => outcome, "method" => "GET")
            .absolute(0);
    }
    metrics::counter!("catalog_event_resets_total").absolute(0);
    metrics::gauge!("catalog_event_streams").set(0.0);
    metrics::gauge!("catalog_presence").set(0.0);
    for feed in [
        "catalog_feed_published_tx",
        "catalog_feed_published_id",
        "catalog_feed_held_changes",
        "catalog_feed_horizon_lag_seconds",
    ] {
        metrics::gauge!(feed).set(0.0);
    }
}

/// Sets the presence gauge: the clients whose editor is on a product now.
pub fn set_presence(n: usize) {
    metrics::gauge!("catalog_presence").set(n as f64);
}

/// The feed's published cursor, and what the snapshot horizon holds back.
pub fn feed_published(cursor: crate::feed::Cursor, held: crate::storage::Held) {
    let (tx, id) = match cursor {
        crate::feed::Cursor::Seq(n) => (0, n),
        crate::feed::Cursor::Tx { tx, id } => (tx, id),
    };
    metrics::gauge!("catalog_feed_published_tx").set(tx as f64);
    metrics::gauge!("catalog_feed_published_id").set(id as f64);
    metrics::gauge!("catalog_feed_held_changes").set(held.changes as f64);
    let lag = held
        .oldest_ms
        .map(|at| (crate::storage::now_ms() - at).max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    metrics::gauge!("catalog_feed_horizon_lag_seconds").set(lag);
}

/// One committed SQLite batch: how many writes it held and how long the commit took.
pub fn sqlite_batch(size: usize, commit: Duration) {
    metrics::histogram!("catalog_write_batch_size").record(size as f64);
    metrics::histogram!("catalog_commit_seconds", "backend" => "sqlite").record(commit);
}

/// One committed PostgreSQL write transaction and how long its commit took.
pub fn postgres_commit(commit: Duration) {
    metrics::histogram!("catalog_commit_seconds", "backend" => "postgres").record(commit);
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        // An extension method is any token: not a label value of its own.
        _ => "other",
    }
}

/// The middleware that counts every request by matched route, method and status, and
/// keeps the event-stream gauge and reset counter while an event stream's body lasts.
pub async fn track(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        // Unmatched paths are any text: one label value for all of them.
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status();
    metrics::counter!(
        "catalog_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status.as_str().to_string(),
    )
    .increment(1);
    let outcome = match status {
        StatusCode::NOT_MODIFIED => Some("not_modified"),
        StatusCode::PRECONDITION_FAILED => Some("precondition_failed"),
        StatusCode::PRECONDITION_REQUIRED => Some("precondition_required"),
        _ => None,
    };
    if let Some(outcome) = outcome {
        metrics::counter!("catalog_conditional_responses_total", "outcome" => outcome, "method" => method)
            .increment(1);
    }
    let event_stream = status == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if event_stream {
        count_resets(response)
    } else {
        response
    }
}

/// One open event stream, for the `catalog_event_streams` gauge: counted while its body
/// lasts (the body is dropped when the stream ends or its client goes away).
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("catalog_event_streams").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("catalog_event_streams").decrement(1.0);
    }
}

/// Counts the open event stream and the `reset` events its body carries.
fn count_resets(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let open = OpenStream::new();
    let stream = futures_util::StreamExt::map(body.into_data_stream(), move |chunk| {
        let _open = &open;
        if let Ok(bytes) = &chunk {
            // Every event is one frame; a data line never starts with `event:`.
            let resets = bytes
                .split(|b| *b == b'\n')
                .filter(|line| *line == b"event: reset")
                .count();
            if resets > 0 {
                metrics::counter!("catalog_event_resets_total").increment(resets as u64);
            }
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// `GET /metrics`. With `--users` it takes a token like the data does (a scraper sends
/// one): it tells how busy the server is and with what.
pub async fn metrics_route(
    State(state): State<Shared>,
    method: Method,
) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return Ok(options(READ_ALLOW, false)),
        _ => return Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
    let Some(Some(handle)) = HANDLE.get() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics-off",
            "Service Unavailable",
            "Metrics are not recorded by this process (see its log).",
        ));
    };
    set_presence(state.feed.presence_count());
    handle.run_upkeep();
    let mut response = handle.render().into_response();
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
        (status = 405, response = crate::openapi::MethodNotAllowed),
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
