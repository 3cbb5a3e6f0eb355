//! What the server does, counted in memory and rendered for `GET /metrics`
//! (`routes::metrics`) in the Prometheus text format (version 0.0.4). The other parts call
//! the functions here where things happen; this module knows no other part of the server.
//! The names, all prefixed `catalog_`:
//!
//! - `http_requests_total{route,method,status}`: every request the router answered, by
//!   matched route (`/products/{id}`, never the raw path), method and status.
//! - `conditional_responses_total{outcome,method}`: `not_modified` (304),
//!   `precondition_failed` (412) and `precondition_required` (428).
//! - `write_batch_size` and `commit_seconds{backend}`: histograms; SQLite's writer commits
//!   a batch of writes per transaction, PostgreSQL one write per transaction.
//! - `event_streams`: the event streams open now; `event_resets_total`: `reset` events
//!   sent, one per subscriber told (a subscriber that fell behind, or resumed from a
//!   position the log no longer has): the feed's lag made visible.
//! - `presence`: the clients whose editor is on a product now ([`set_presence`]).
//! - `feed_published_tx` and `feed_published_id`: the feed's published cursor (the latest
//!   event id's position: on SQLite the sequence number is `id` and `tx` stays 0);
//!   `feed_held_changes` and `feed_horizon_lag_seconds`: committed changes the feed cannot
//!   publish yet because a transaction still running somewhere in the PostgreSQL cluster
//!   holds the snapshot horizon below them, and how long the oldest has waited
//!   ([`feed_published`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};

/// The Prometheus text format's media type.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

const OUTCOMES: [&str; 3] = [
    "not_modified",
    "precondition_failed",
    "precondition_required",
];

/// A histogram with fixed upper bounds.
struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: Vec<AtomicU64>,
    /// The sum of the observations, as f64 bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// Its samples, with `labels` (`name="value",` each) before `le`; nothing until the
    /// first observation.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return;
        }
        let mut cumulative = 0;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let labels = labels.trim_end_matches(',');
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// (method, status) -> requests, of one route.
type ByMethodAndStatus = BTreeMap<(&'static str, u16), u64>;

struct Metrics {
    /// route -> (method, status) -> requests. Nested so that counting a request looks its
    /// route up by `&str`: a route's name is allocated once, not once per request.
    requests: Mutex<BTreeMap<String, ByMethodAndStatus>>,
    /// (outcome, method) -> responses.
    conditional: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    resets: AtomicU64,
    event_streams: AtomicI64,
    presence: AtomicU64,
    feed_tx: AtomicU64,
    feed_id: AtomicI64,
    feed_held: AtomicI64,
    /// When the oldest held change was committed (ms since the epoch), or -1.
    feed_held_since_ms: AtomicI64,
    batch_size: Histogram,
    commit_sqlite: Histogram,
    commit_postgres: Histogram,
}

const COMMIT_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    // Present from the first scrape, not only after the first of each.
    let conditional = OUTCOMES.iter().map(|o| ((*o, "GET"), 0)).collect();
    Metrics {
        requests: Mutex::default(),
        conditional: Mutex::new(conditional),
        resets: AtomicU64::new(0),
        event_streams: AtomicI64::new(0),
        presence: AtomicU64::new(0),
        feed_tx: AtomicU64::new(0),
        feed_id: AtomicI64::new(0),
        feed_held: AtomicI64::new(0),
        feed_held_since_ms: AtomicI64::new(-1),
        batch_size: Histogram::new(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        commit_sqlite: Histogram::new(COMMIT_SECONDS),
        commit_postgres: Histogram::new(COMMIT_SECONDS),
    }
});

/// The feed's published position (`tx` is 0 on SQLite, where `id` is the sequence
/// number), and what the snapshot horizon holds back: how many committed changes, and
/// since when the oldest of them waits (ms since the epoch).
pub fn feed_published(tx: u64, id: i64, held_changes: i64, held_since_ms: Option<i64>) {
    let m = &*METRICS;
    m.feed_tx.store(tx, Ordering::Relaxed);
    m.feed_id.store(id, Ordering::Relaxed);
    m.feed_held.store(held_changes, Ordering::Relaxed);
    m.feed_held_since_ms
        .store(held_since_ms.unwrap_or(-1), Ordering::Relaxed);
}

/// Sets the presence gauge: the clients whose editor is on a product now.
pub fn set_presence(n: usize) {
    METRICS.presence.store(n as u64, Ordering::Relaxed);
}

/// One committed SQLite batch: how many writes it held and how long the commit took.
pub fn sqlite_batch(size: usize, commit: Duration) {
    METRICS.batch_size.observe(size as f64);
    METRICS.commit_sqlite.observe(commit.as_secs_f64());
}

/// One committed PostgreSQL write transaction and how long its commit took.
pub fn postgres_commit(commit: Duration) {
    METRICS.commit_postgres.observe(commit.as_secs_f64());
}

/// One `reset` event sent to one subscriber (the feed calls this where it sends it).
pub fn reset_sent() {
    METRICS.resets.fetch_add(1, Ordering::Relaxed);
}

/// One open event stream, for the `catalog_event_streams` gauge: counted while it lasts
/// (its holder is dropped when the stream ends or its client goes away).
pub struct OpenStream(());

impl OpenStream {
    pub fn open() -> Self {
        METRICS.event_streams.fetch_add(1, Ordering::Relaxed);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        METRICS.event_streams.fetch_sub(1, Ordering::Relaxed);
    }
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

/// Counts an answered request by matched route (`None`: no route matched), method and
/// status.
pub fn count(route: Option<&str>, method: &Method, status: StatusCode) {
    let method = method_label(method);
    // Unmatched paths are any text: one label value for all of them.
    let route = route.unwrap_or("unmatched");
    if let Ok(mut requests) = METRICS.requests.lock() {
        if !requests.contains_key(route) {
            requests.insert(route.to_string(), BTreeMap::new());
        }
        if let Some(by_route) = requests.get_mut(route) {
            *by_route.entry((method, status.as_u16())).or_default() += 1;
        }
    }
    let outcome = match status {
        StatusCode::NOT_MODIFIED => Some("not_modified"),
        StatusCode::PRECONDITION_FAILED => Some("precondition_failed"),
        StatusCode::PRECONDITION_REQUIRED => Some("precondition_required"),
        _ => None,
    };
    if let Some(outcome) = outcome
        && let Ok(mut conditional) = METRICS.conditional.lock()
    {
        *conditional.entry((outcome, method)).or_default() += 1;
    }
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Every metric, in the Prometheus text format.
pub fn render() -> String {
    let m = &*METRICS;
    let mut out = String::new();
    header(
        &mut out,
        "catalog_http_requests_total",
        "counter",
        "Requests answered, by matched route, method and status.",
    );
    if let Ok(requests) = m.requests.lock() {
        let all = requests.iter().flat_map(|(route, by_route)| {
            by_route
                .iter()
                .map(move |((method, status), n)| (route, method, status, n))
        });
        for (route, method, status, n) in all {
            let route = escape(route);
            let _ = writeln!(
                out,
                "catalog_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
    }
    header(
        &mut out,
        "catalog_conditional_responses_total",
        "counter",
        "Conditional outcomes: not_modified (304), precondition_failed (412), precondition_required (428).",
    );
    if let Ok(conditional) = m.conditional.lock() {
        for ((outcome, method), n) in conditional.iter() {
            let _ = writeln!(
                out,
                "catalog_conditional_responses_total{{outcome=\"{outcome}\",method=\"{method}\"}} {n}"
            );
        }
    }
    header(
        &mut out,
        "catalog_write_batch_size",
        "histogram",
        "Writes committed in one SQLite transaction.",
    );
    m.batch_size
        .render(&mut out, "catalog_write_batch_size", "");
    header(
        &mut out,
        "catalog_commit_seconds",
        "histogram",
        "Time to commit one transaction (a batch on SQLite, one write on PostgreSQL), in seconds.",
    );
    m.commit_sqlite
        .render(&mut out, "catalog_commit_seconds", "backend=\"sqlite\",");
    m.commit_postgres
        .render(&mut out, "catalog_commit_seconds", "backend=\"postgres\",");
    header(
        &mut out,
        "catalog_event_streams",
        "gauge",
        "Event streams (GET /events) open.",
    );
    let streams = m.event_streams.load(Ordering::Relaxed);
    let _ = writeln!(out, "catalog_event_streams {streams}");
    header(
        &mut out,
        "catalog_event_resets_total",
        "counter",
        "reset events sent: a subscriber fell behind, or resumed from a position the change log no longer has.",
    );
    let resets = m.resets.load(Ordering::Relaxed);
    let _ = writeln!(out, "catalog_event_resets_total {resets}");
    header(
        &mut out,
        "catalog_presence",
        "gauge",
        "Clients whose editor is on a product now.",
    );
    let presence = m.presence.load(Ordering::Relaxed);
    let _ = writeln!(out, "catalog_presence {presence}");
    for (name, help, value) in [
        (
            "catalog_feed_published_tx",
            "The published cursor's transaction id (PostgreSQL; 0 on SQLite).",
            m.feed_tx.load(Ordering::Relaxed).to_string(),
        ),
        (
            "catalog_feed_published_id",
            "The published cursor's change-log row id (the sequence number on SQLite).",
            m.feed_id.load(Ordering::Relaxed).to_string(),
        ),
        (
            "catalog_feed_held_changes",
            "Committed changes not yet publishable: above the snapshot horizon (PostgreSQL).",
            m.feed_held.load(Ordering::Relaxed).to_string(),
        ),
        (
            "catalog_feed_horizon_lag_seconds",
            "How long the oldest committed change held above the snapshot horizon has waited (0 when none).",
            match m.feed_held_since_ms.load(Ordering::Relaxed) {
                -1 => "0".to_string(),
                since => format!("{}", (now_ms() - since).max(0) as f64 / 1000.0),
            },
        ),
    ] {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// Milliseconds since the epoch (the horizon lag's clock).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_with_sum_and_count() {
        let h = Histogram::new(&[1.0, 2.0]);
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert_eq!(out, "", "nothing before the first observation");
        for v in [0.5, 1.5, 1.5, 3.0] {
            h.observe(v);
        }
        h.render(&mut out, "x", "backend=\"b\",");
        assert_eq!(
            out,
            "x_bucket{backend=\"b\",le=\"1\"} 1\nx_bucket{backend=\"b\",le=\"2\"} 3\nx_bucket{backend=\"b\",le=\"+Inf\"} 4\nx_sum{backend=\"b\"} 6.5\nx_count{backend=\"b\"} 4\n"
        );
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
