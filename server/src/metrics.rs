//! What the server does, recorded for `GET /metrics` (`routes::metrics`) in the Prometheus
//! text format. The `metrics` facade records; its Prometheus recorder keeps the values and
//! renders them for our own route (it runs no listener of its own). This module knows no
//! other part of the server: the others call it. The names, all prefixed `catalog_`:
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

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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
}

/// Sets the presence gauge: the clients whose editor is on a product now.
pub fn set_presence(n: usize) {
    metrics::gauge!("catalog_presence").set(n as f64);
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

/// The middleware that counts every request by matched route, method and status.
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
    response
}

/// One `reset` event sent to one subscriber (the feed calls this where it sends it).
pub fn reset_sent() {
    metrics::counter!("catalog_event_resets_total").increment(1);
}

/// One open event stream, for the `catalog_event_streams` gauge: counted while it lasts
/// (its holder is dropped when the stream ends or its client goes away).
pub struct OpenStream(());

impl OpenStream {
    pub fn open() -> Self {
        metrics::gauge!("catalog_event_streams").increment(1.0);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("catalog_event_streams").decrement(1.0);
    }
}

/// The metrics in the Prometheus text format, or `None` when the recorder could not be
/// installed (the log says why).
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?.as_ref()?;
    handle.run_upkeep();
    Some(handle.render())
}
