//! `GET /metrics`: after a 304, a 412 and a 428, the Prometheus text format says so, read
//! by the Prometheus project's own text-format parser (Python prometheus_client, in the
//! virtual environment `.ci/run` makes), not by string matching.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use catalog_tests::{Server, add_user, client, send};
use serde_json::Value;

/// The Python of the virtual environment `.ci/run` makes (with prometheus_client).
fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("target/schemathesis-venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

/// The samples of a scrape as `prometheus_client.parser` reads them: name, labels, value.
struct Scrape(Vec<(String, Value, f64)>);

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;

fn scrape(python: &PathBuf, text: &str) -> Scrape {
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse:\n{text}"
    );
    let samples: Vec<(String, Value, f64)> =
        serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    Scrape(samples)
}

/// The value of the sample named `metric` whose labels include all of `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .0
        .iter()
        .filter(|(name, _, _)| name == metric)
        .find(|(_, l, _)| labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| *v)
}

macro_rules! parser_or_skip {
    () => {
        match python() {
            Some(p) => p,
            None => {
                catalog_tests::missing_tool(
                    module_path!(),
                    "no prometheus_client in target/schemathesis-venv (.ci/run installs it)",
                );
                return;
            }
        }
    };
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_the_conditional_outcomes() {
    let py = parser_or_skip!();
    let s = Server::start();
    let c = client();
    let got = send(c.get(s.url("/products/1"))).await;
    assert_eq!(got.status, 200);
    let etag = got.etag();
    // 304: If-None-Match with the current ETag.
    let r = send(c.get(s.url("/products/1")).header("If-None-Match", &etag)).await;
    assert_eq!(r.status, 304);
    // 412: a stale If-Match.
    let r = send(
        c.put(s.url("/products/1"))
            .header("If-Match", "\"stale\"")
            .json(&got.json()),
    )
    .await;
    assert_eq!(r.status, 412);
    // 428: no If-Match at all.
    let r = send(c.delete(s.url("/products/1"))).await;
    assert_eq!(r.status, 428);
    // A write that commits (one SQLite batch / one PostgreSQL commit).
    let r = send(
        c.patch(s.url("/products/1"))
            .header("If-Match", &etag)
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"price_cents": 12345}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = send(c.get(s.url("/metrics"))).await;
    assert_eq!(r.status, 200);
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(r.body.clone()).expect("UTF-8");
    let m = scrape(&py, &text);

    for (outcome, method) in [
        ("not_modified", "GET"),
        ("precondition_failed", "PUT"),
        ("precondition_required", "DELETE"),
    ] {
        assert_eq!(
            value(
                &m,
                "catalog_conditional_responses_total",
                &[("outcome", outcome), ("method", method)]
            ),
            Some(1.0),
            "{outcome} {method} in:\n{text}"
        );
    }
    // Requests by matched route (never the raw path), method and status.
    for (method, status) in [
        ("GET", "200"),
        ("GET", "304"),
        ("PUT", "412"),
        ("DELETE", "428"),
    ] {
        assert_eq!(
            value(
                &m,
                "catalog_http_requests_total",
                &[
                    ("route", "/products/{id}"),
                    ("method", method),
                    ("status", status)
                ]
            ),
            Some(1.0),
            "{method} {status} in:\n{text}"
        );
    }
    assert!(
        !text.contains("route=\"/products/1\""),
        "routes are labelled by their pattern"
    );
    // The commit latency histogram has counted the write.
    let backend = if catalog_tests::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let commits = value(&m, "catalog_commit_seconds_count", &[("backend", backend)])
        .unwrap_or_else(|| panic!("no catalog_commit_seconds_count for {backend} in:\n{text}"));
    assert!(commits >= 1.0, "{text}");
    if backend == "sqlite" {
        let batches = value(&m, "catalog_write_batch_size_count", &[]).expect("batch sizes");
        assert!(batches >= 1.0, "{text}");
    }
    // Gauges and the feed's lag are there from the first scrape.
    assert_eq!(value(&m, "catalog_event_streams", &[]), Some(0.0), "{text}");
    assert_eq!(value(&m, "catalog_presence", &[]), Some(0.0), "{text}");
    assert_eq!(
        value(&m, "catalog_event_resets_total", &[]),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn an_open_event_stream_is_counted_while_it_lasts() {
    let py = parser_or_skip!();
    let s = Server::start();
    let c = client();
    let stream = c
        .get(s.url("/events"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    let open = |text: &str| value(&scrape(&py, text), "catalog_event_streams", &[]);
    let r = send(c.get(s.url("/metrics"))).await;
    assert_eq!(open(&String::from_utf8_lossy(&r.body)), Some(1.0));
    drop(stream);
    // The server notices the closed stream when it next writes to it (a keep-alive):
    // wait for the gauge to fall.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = send(c.get(s.url("/metrics"))).await;
        if open(&String::from_utf8_lossy(&r.body)) == Some(0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream is still counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn with_users_metrics_take_a_token_and_the_document_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let token = add_user(&users, "prometheus").unwrap();
    let s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    let c = client();
    let r = send(c.get(s.url("/metrics"))).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = send(c.get(s.url("/metrics")).bearer_auth(&token)).await;
    assert_eq!(r.status, 200);
    let r = send(c.get(s.url("/openapi.json"))).await;
    assert_eq!(
        r.status, 200,
        "the API's description is public, like /health"
    );
}

#[tokio::test]
async fn every_reset_sent_to_a_subscriber_is_counted() {
    let py = parser_or_skip!();
    let s = Server::start();
    let c = client();
    let resets = |r: &catalog_tests::Reply| {
        value(
            &scrape(&py, &String::from_utf8_lossy(&r.body)),
            "catalog_event_resets_total",
            &[],
        )
    };
    assert_eq!(resets(&send(c.get(s.url("/metrics"))).await), Some(0.0));
    // Two subscribers resume from an event id of another database: each is sent `reset`.
    for _ in 0..2 {
        let mut stream = c
            .get(s.url("/events"))
            .header("last-event-id", "0123456789abcdef:5")
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(stream.status(), 200);
        let mut text = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !text.contains("event: reset") {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let chunk = tokio::time::timeout(left, stream.chunk())
                .await
                .expect("a reset within 30 s")
                .expect("the stream reads")
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert_eq!(resets(&send(c.get(s.url("/metrics"))).await), Some(2.0));
}
