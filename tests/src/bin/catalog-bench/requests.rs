//! Request scenarios on the load generator: `get`, `get-304`, `rmw` and `contend`.

use std::collections::HashMap;

use crate::Bench;
use crate::load::{self, Tally};
use crate::report::{Row, per_sec};
use crate::target::{self, Target};

/// `get` / `get-304`: GET /products/{id}, plain (200 with the body) or with If-None-Match of
/// the current ETag (304), against the bare axum handler's rate.
pub async fn get(bench: &mut Bench, revalidate: bool) {
    let (scenario, expected) = if revalidate {
        ("get-304", 304)
    } else {
        ("get", 200)
    };
    let limit = bench
        .limits
        .bare_axum(bench.connections, bench.warmup, bench.duration)
        .await;
    let server = bench.target();
    let product = server
        .create_product(&load::http_client(), &bench.sku(scenario, 0))
        .await;
    let (tallies, window) = load::run(
        bench.connections,
        bench.warmup,
        bench.duration,
        |_, client, window| {
            let product = product.clone();
            async move {
                let mut tally = Tally::default();
                while window.open() {
                    let mut request = client.get(&product.url);
                    if revalidate {
                        request = request.header("If-None-Match", &product.etag);
                    }
                    let r = request.send().await.expect("GET reaches the server");
                    let status = r.status().as_u16();
                    r.bytes().await.expect("the GET's body");
                    tally.count(&window, status);
                }
                tally
            }
        },
    )
    .await;
    let tally = Tally::merge(tallies);
    let rate = window.rate(tally.of(|s| s == expected));
    let figure = if revalidate {
        format!("GET If-None-Match -> 304, {} conns", bench.connections)
    } else {
        format!("GET -> 200 with body, {} conns", bench.connections)
    };
    bench.table.push(
        Row::new(scenario, figure, per_sec(rate, "req"))
            .limit(
                format!("bare axum {}", per_sec(limit, "req")),
                Some(rate / limit),
            )
            .target(
                if revalidate { ">= 0.6x" } else { ">= 0.5x" },
                Some(rate / limit >= if revalidate { 0.6 } else { 0.5 }),
            ),
    );
    unexpected(bench, scenario, &tally, |s| s == expected);
}

/// `rmw`: each connection on its own product, GET then PUT with If-Match, against the raw
/// single-commit FULL rate. With `--spawn`, the same again on a server with
/// `--sync normal`: when group commit works, the durable rate comes close to it, because
/// the fsync is no longer what bounds a write.
pub async fn rmw(bench: &mut Bench) {
    let limit = bench.limits.sqlite_full();
    let (rate, tally) = rmw_rate(bench, bench.target()).await;
    bench.table.push(
        Row::new(
            "rmw",
            format!(
                "durable writes, GET+PUT If-Match, own product, {} conns",
                bench.connections
            ),
            per_sec(rate, "writes"),
        )
        .limit(
            format!("raw SQLite FULL {}", per_sec(limit, "commits")),
            Some(rate / limit),
        )
        .target(">= 1.5x", Some(rate / limit >= 1.5)),
    );
    let ok = |s: u16| (200..300).contains(&s);
    unexpected(bench, "rmw", &tally, ok);
    // The same loop with an Idempotency-Key on every PUT: the key's row is written in the
    // write's transaction, so it costs an insert per write, and nothing else.
    let server = bench.target();
    let (keyed, tally) = rmw_rate_keyed(bench, &[&server], "rmw-keyed", true).await;
    drop(server);
    bench.table.push(
        Row::new(
            "rmw",
            "same, each PUT with an Idempotency-Key",
            per_sec(keyed, "writes"),
        )
        .limit(
            format!("without keys {}", per_sec(rate, "writes")),
            Some(keyed / rate),
        )
        .target(">= 0.9x", Some(keyed / rate >= 0.9)),
    );
    unexpected(bench, "rmw", &tally, ok);
    if bench.spawn {
        let (normal, tally) = rmw_rate(bench, Target::spawn_with_sync("normal")).await;
        bench.table.push(
            Row::new(
                "rmw",
                "same, server with --sync normal (no fsync per commit)",
                per_sec(normal, "writes"),
            )
            .limit(
                format!("durable (full) {}", per_sec(rate, "writes")),
                Some(rate / normal),
            ),
        );
        unexpected(bench, "rmw", &tally, ok);
    }
}

async fn rmw_rate(bench: &Bench, server: Target) -> (f64, Tally) {
    rmw_rate_on(bench, &[&server], "rmw").await
}

/// The `rmw` loop with the connections spread over `servers` (connection i on
/// `servers[i % n]`, which all share one database), each connection on a product of its own
/// (SKUs named after `what`, which must differ between calls on one database). Writes/s.
pub async fn rmw_rate_on(bench: &Bench, servers: &[&Target], what: &str) -> (f64, Tally) {
    rmw_rate_keyed(bench, servers, what, false).await
}

/// [`rmw_rate_on`], with a fresh Idempotency-Key on every PUT when `keyed`.
pub async fn rmw_rate_keyed(
    bench: &Bench,
    servers: &[&Target],
    what: &str,
    keyed: bool,
) -> (f64, Tally) {
    let client = load::http_client();
    let mut products = Vec::new();
    for i in 0..bench.connections {
        let server = servers[i % servers.len()];
        products.push(server.create_product(&client, &bench.sku(what, i)).await);
    }
    let keys: Vec<String> = (0..bench.connections).map(|i| bench.sku(what, i)).collect();
    let (tallies, window) = load::run(
        bench.connections,
        bench.warmup,
        bench.duration,
        |i, client, window| {
            let url = products[i].url.clone();
            let user = format!("bench-{i}");
            // Unique to this run and connection, so a remote server never saw the key.
            let prefix = keys[i].clone();
            async move {
                let mut tally = Tally::default();
                let mut n = 0u64;
                while window.open() {
                    let (etag, p) = target::get(&client, &url).await;
                    n += 1;
                    let key = keyed.then(|| format!("{prefix}-{n}"));
                    let body = target::bumped(&p);
                    let put =
                        target::put_keyed(&client, &url, &etag, &user, &body, key.as_deref()).await;
                    tally.count(&window, put.status);
                }
                tally
            }
        },
    )
    .await;
    let tally = Tally::merge(tallies);
    let ok = |s: u16| (200..300).contains(&s);
    (window.rate(tally.of(ok)), tally)
}

/// What one `contend` connection saw.
#[derive(Default)]
struct Contender {
    tally: Tally,
    /// The If-Match of every 2xx, warm-up included.
    winners: Vec<String>,
}

/// `contend`: twice the connections on one product, PUT with If-Match, each built on the
/// state the previous answer carried (the 200's new version, or the 412's `current`);
/// winning writes/s against the raw single-commit rate, then the integrity checks.
pub async fn contend(bench: &mut Bench) {
    let limit = bench.limits.sqlite_full();
    let server = bench.target();
    let client = load::http_client();
    let product = server
        .create_product(&client, &bench.sku("contend", 0))
        .await;
    let connections = bench.connections * 2;
    let (contenders, window) = load::run(
        connections,
        bench.warmup,
        bench.duration,
        |i, client, window| {
            let url = product.url.clone();
            // One user per connection, as with people editing at once: the server answers
            // a stale If-Match with 2xx only for the same user's retry of a write it has
            // already applied (RFC 9110 13.1.1), so here every 2xx must be a real write.
            let user = format!("bench-{i}");
            async move {
                let mut c = Contender::default();
                // Like the client's conflict panel, each answer carries the state to build
                // on: a 2xx the new version, a 412 the current one (`current` and its
                // ETag). A GET is needed only at the start or if an answer lacks it.
                let mut known: Option<(String, serde_json::Value)> = None;
                while window.open() {
                    let (etag, p) = match known.take() {
                        Some(k) => k,
                        None => target::get(&client, &url).await,
                    };
                    let put = target::put(&client, &url, &etag, &user, &target::bumped(&p)).await;
                    if put.ok() {
                        c.winners.push(etag);
                    }
                    let body: Option<serde_json::Value> = serde_json::from_str(&put.body).ok();
                    known = match (put.status, put.etag.clone(), body) {
                        (200, Some(tag), Some(b)) => Some((tag, b)),
                        (412, Some(tag), Some(b)) => Some((tag, b["current"].clone())),
                        _ => None,
                    };
                    c.tally.count(&window, put.status);
                }
                c
            }
        },
    )
    .await;
    let mut winners: HashMap<String, usize> = HashMap::new();
    let mut wins = 0usize;
    for c in &contenders {
        wins += c.winners.len();
        for w in &c.winners {
            *winners.entry(w.clone()).or_default() += 1;
        }
    }
    let tally = Tally::merge(contenders.into_iter().map(|c| c.tally));
    let ok = |s: u16| (200..300).contains(&s);
    let rate = window.rate(tally.of(ok));
    let lost = tally.of(|s| s == 412);
    let doubled = winners.values().filter(|n| **n > 1).count();
    let (_, last) = target::get(&client, &product.url).await;
    let version = last["version"].as_i64().unwrap_or(-1);

    bench.table.push(
        Row::new(
            "contend",
            format!("winning writes, {connections} conns on one product"),
            per_sec(rate, "writes"),
        )
        .limit(
            format!("raw SQLite FULL {}", per_sec(limit, "commits")),
            Some(rate / limit),
        )
        .target(">= 0.8x", Some(rate / limit >= 0.8)),
    );
    bench.table.push(Row::new(
        "contend",
        "412 Precondition Failed (lost races)",
        format!("{lost} ({:.0}/s)", window.rate(lost)),
    ));
    bench.table.push(
        Row::new(
            "contend",
            "one winner per ETag generation",
            format!(
                "{}: {wins} winners, {doubled} ETags won twice",
                pass(doubled == 0)
            ),
        )
        .target("PASS", Some(doubled == 0)),
    );
    bench.table.push(
        Row::new(
            "contend",
            "final version == 1 + 2xx writes",
            format!(
                "{}: version {version}, 1 + {wins} writes",
                pass(version == 1 + wins as i64)
            ),
        )
        .target("PASS", Some(version == 1 + wins as i64)),
    );
    unexpected(bench, "contend", &tally, |s| ok(s) || s == 412);
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// A row for answers the scenario did not expect, if there were any.
fn unexpected(bench: &mut Bench, scenario: &str, tally: &Tally, expected: impl Fn(u16) -> bool) {
    let other = tally.unexpected(expected);
    if !other.is_empty() {
        bench
            .table
            .push(Row::new(scenario, "unexpected statuses", other).target("none", Some(false)));
    }
}
