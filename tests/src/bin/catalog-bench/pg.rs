//! `pg-rmw`: the `rmw` loop (each connection on its own product, GET then PUT with
//! If-Match) against `catalog-server --db postgres://...` on a throwaway PostgreSQL cluster
//! with `fsync` on, beside the limit of that cluster measured in the same run: `pgbench`
//! running the same conditional UPDATE, each client on a row of its own. Then the same loop
//! against two server instances on the one database (half the connections to each), while
//! a writer on one instance times the delivery of its changes on the other's event stream,
//! and the SQLite `rmw` figure beside it. Where the CPU went during each run says what
//! bounds it. Needs `--spawn` (it starts the cluster and the servers) and PostgreSQL's programs
//! (Debian's `postgresql` package); without them it says so and is skipped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use catalog_tests::Server;
use catalog_tests::postgres::{self, Cluster, ClusterOptions};

use crate::Bench;
use crate::cpu::{self, Usage};
use crate::load::Tally;
use crate::report::{Row, ms, per_sec, percentile};
use crate::requests::rmw_rate_on;
use crate::sse::SseStream;
use crate::target::{self, Target};

const SCENARIO: &str = "pg-rmw";
/// One instance against pgbench's SELECT then conditional UPDATE (the same work in SQL).
const TARGET_VS_PGBENCH: f64 = 0.7;
/// Two instances against one, on these 2 cores shared by everything.
const TARGET_TWO_VS_ONE: f64 = 0.9;
/// A change committed through one instance, delivered on the other: median and max.
const TARGET_DELIVERY_MEDIAN: Duration = Duration::from_millis(100);
const TARGET_DELIVERY_MAX: Duration = Duration::from_secs(1);
/// How often the delivery writer writes during the two-instance run.
const DELIVERY_EVERY: Duration = Duration::from_millis(20);
/// At or above this share of all cores busy, CPU is taken to be what bounds a run.
const CPU_BOUND: f64 = 0.9;
/// At or above this share of PostgreSQL's busy backends waiting for a lock, the database
/// (its writes going one at a time) is taken to be what bounds a run.
const LOCK_BOUND: f64 = 0.5;

/// The pgbench baseline: the conditional UPDATE alone, each client on row `client_id + 1`,
/// tracking the row's version itself (from `-D version=1`) as the raw SQLite baseline does.
const UPDATE_SCRIPT: &str = "\\set id :client_id + 1
UPDATE t SET v = v + 1, version = version + 1 WHERE id = :id AND version = :version;
\\set version :version + 1
";

/// The same UPDATE after reading the version, as the rmw loop's GET then PUT (two round
/// trips, one commit).
const READ_UPDATE_SCRIPT: &str = "\\set id :client_id + 1
SELECT version FROM t WHERE id = :id \\gset
UPDATE t SET v = v + 1, version = version + 1 WHERE id = :id AND version = :version;
";

pub async fn run(bench: &mut Bench) {
    if !bench.spawn {
        skip(
            bench,
            "needs --spawn (it starts its own PostgreSQL cluster and servers)",
        );
        return;
    }
    let Some(bin) = postgres::bin_dir() else {
        skip(
            bench,
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin, \
             CATALOG_PG_BIN or PATH; apt-get install postgresql)",
        );
        return;
    };
    if !bin.join("pgbench").is_file() {
        skip(
            bench,
            &format!("no pgbench in {} (the baseline)", bin.display()),
        );
        return;
    }
    if let Err(e) = measure(bench).await {
        println!("  {SCENARIO} failed: {e:#}");
        bench
            .table
            .push(Row::new(SCENARIO, "failed", format!("{e:#}")).target("figures", Some(false)));
    }
}

fn skip(bench: &mut Bench, why: &str) {
    println!("  SKIPPED {SCENARIO}: {why}");
    bench
        .table
        .push(Row::new(SCENARIO, "skipped", why).target("-", None));
}

async fn measure(bench: &mut Bench) -> anyhow::Result<()> {
    let cluster = Cluster::start_with(ClusterOptions::durable())
        .context("starting a throwaway PostgreSQL cluster (fsync on)")?
        .context("PostgreSQL went missing")?;
    let clients = bench.connections;

    // The limit: pgbench on the same cluster, just before the servers run.
    let update = pgbench(&cluster, clients, bench.duration, UPDATE_SCRIPT).await?;
    let read_update = pgbench(&cluster, clients, bench.duration, READ_UPDATE_SCRIPT).await?;
    let window = (bench.warmup, bench.duration);

    // One instance, then two on the same database (the first one and a second).
    let url = cluster.create_database()?;
    let start = |args: &[&str]| -> anyhow::Result<Target> {
        Ok(Target::on_server(
            Server::start_on(Path::new(&url), args, "127.0.0.1:0")
                .context("starting catalog-server on PostgreSQL")?,
        ))
    };
    let db = database_name(&url);
    let a = start(&["--sync", "full"])?;
    let one_waits = Waits::sample(&cluster, &db, window.0, window.1);
    let (one, one_tally, one_cpu) = rmw_measured(bench, &cluster, &[&a], "pg-one").await;
    let one_waits = one_waits.await.ok().flatten();
    let b = start(&["--sync", "full", "--no-seed"])?;
    let two_waits = Waits::sample(&cluster, &db, window.0, window.1);
    let delivery = tokio::spawn(cross_delivery(a.addr, b.addr, window.0 + window.1));
    let (two, two_tally, two_cpu) = rmw_measured(bench, &cluster, &[&a, &b], "pg-two").await;
    let two_waits = two_waits.await.ok().flatten();
    let delivery = delivery
        .await
        .context("the delivery writer")?
        .context("timing delivery from one instance to the other")?;
    let presence = cross_presence(a.addr, b.addr, 50)
        .await
        .context("timing presence from one instance to the other")?;
    drop((a, b));

    // SQLite beside it: the `rmw` scenario's first figure, the same loop on a fresh
    // `--sync full` server.
    let sqlite_server = bench.target();
    let (sqlite, sqlite_tally) = rmw_rate_on(bench, &[&sqlite_server], "pg-sqlite").await;
    drop(sqlite_server);
    drop(cluster);

    let table = &mut bench.table;
    table.push(Row::new(
        SCENARIO,
        format!(
            "baseline: pgbench conditional UPDATE, own row, {clients} clients (-j 2), fsync on"
        ),
        per_sec(update.tps, "txn"),
    ));
    table.push(
        Row::new(
            SCENARIO,
            "pgbench, same UPDATE after SELECT of the version (2 round trips)",
            per_sec(read_update.tps, "txn"),
        )
        .limit(
            format!("UPDATE alone {}", per_sec(update.tps, "txn")),
            Some(read_update.tps / update.tps),
        ),
    );
    for (what, run) in [("UPDATE alone", &update), ("SELECT+UPDATE", &read_update)] {
        let ok = run.failed == 0 && run.gained == run.txns as i64;
        table.push(
            Row::new(
                SCENARIO,
                format!("pgbench {what}: every conditional UPDATE matched"),
                format!(
                    "{}: {} txns, {} failed, {} versions gained",
                    if ok { "PASS" } else { "FAIL" },
                    run.txns,
                    run.failed,
                    run.gained
                ),
            )
            .target("PASS", Some(ok)),
        );
    }
    table.push(
        Row::new(
            SCENARIO,
            format!("durable writes, GET+PUT If-Match, own product, {clients} conns, 1 instance"),
            per_sec(one, "writes"),
        )
        .limit(
            format!("pgbench SELECT+UPDATE {}", per_sec(read_update.tps, "txn")),
            Some(one / read_update.tps),
        )
        .target(
            format!(">= {TARGET_VS_PGBENCH}x"),
            Some(one / read_update.tps >= TARGET_VS_PGBENCH),
        ),
    );
    table.push(
        Row::new(
            SCENARIO,
            "same, 1 instance, against pgbench UPDATE alone",
            per_sec(one, "writes"),
        )
        .limit(
            format!("pgbench {}", per_sec(update.tps, "txn")),
            Some(one / update.tps),
        ),
    );
    table.push(
        Row::new(
            SCENARIO,
            format!(
                "same, 2 instances on the database, {} + {} conns",
                clients.div_ceil(2),
                clients / 2
            ),
            per_sec(two, "writes"),
        )
        .limit(
            format!("1 instance {}", per_sec(one, "writes")),
            Some(two / one),
        )
        .target(
            format!(">= {TARGET_TWO_VS_ONE}x"),
            Some(two / one >= TARGET_TWO_VS_ONE),
        ),
    );
    let mut sorted = delivery.clone();
    sorted.sort();
    let (median, max) = (percentile(&sorted, 0.5), percentile(&sorted, 1.0));
    table.push(
        Row::new(
            SCENARIO,
            format!(
                "delivery on instance B of a PUT through A, median, during the 2-instance run ({} PUTs)",
                sorted.len()
            ),
            ms(median),
        )
        .target(
            format!("< {} ms", TARGET_DELIVERY_MEDIAN.as_millis()),
            Some(!sorted.is_empty() && median < TARGET_DELIVERY_MEDIAN),
        ),
    );
    table.push(Row::new(SCENARIO, "same, max", ms(max)).target(
        format!("< {} ms", TARGET_DELIVERY_MAX.as_millis()),
        Some(!sorted.is_empty() && max < TARGET_DELIVERY_MAX),
    ));
    let mut sorted = presence.clone();
    sorted.sort();
    let (median, max) = (percentile(&sorted, 0.5), percentile(&sorted, 1.0));
    table.push(Row::new(
        SCENARIO,
        format!(
            "presence announced on A, on instance B's stream after it was sent, median ({} announcements, idle)",
            sorted.len()
        ),
        ms(median),
    ));
    table.push(Row::new(SCENARIO, "same, max", ms(max)).target(
        format!("< {} ms", TARGET_DELIVERY_MAX.as_millis()),
        Some(!sorted.is_empty() && max < TARGET_DELIVERY_MAX),
    ));
    for (what, usage, waits) in [
        (
            "pgbench SELECT+UPDATE",
            &read_update.cpu,
            &read_update.waits,
        ),
        ("pgbench UPDATE alone", &update.cpu, &update.waits),
        ("1 instance", &one_cpu, &one_waits),
        ("2 instances", &two_cpu, &two_waits),
    ] {
        table.push(Row::new(
            SCENARIO,
            format!("CPU during {what}"),
            usage.as_ref().map_or("n/a".into(), Usage::describe),
        ));
        table.push(Row::new(
            SCENARIO,
            format!("PostgreSQL backends busy during {what} (100 ms samples)"),
            waits.as_ref().map_or("n/a".into(), Waits::describe),
        ));
    }
    table.push(Row::new(
        SCENARIO,
        "what bounds the 1-instance figure",
        bound(one_cpu.as_ref(), one_waits.as_ref()),
    ));
    table.push(Row::new(
        SCENARIO,
        "what bounds the 2-instance figure",
        bound(two_cpu.as_ref(), two_waits.as_ref()),
    ));
    table.push(
        Row::new(
            SCENARIO,
            "SQLite, same loop, --sync full (the rmw scenario's figure)",
            per_sec(sqlite, "writes"),
        )
        .limit(
            format!("PostgreSQL 1 instance {}", per_sec(one, "writes")),
            Some(sqlite / one),
        ),
    );
    let ok = |s: u16| (200..300).contains(&s);
    for tally in [one_tally, two_tally, sqlite_tally] {
        let other = tally.unexpected(ok);
        if !other.is_empty() {
            table
                .push(Row::new(SCENARIO, "unexpected statuses", other).target("none", Some(false)));
        }
    }
    Ok(())
}

/// For `duration`: a PUT through instance `a` every [`DELIVERY_EVERY`], each followed by
/// reading instance `b`'s event stream until that change arrives; the time from the PUT's
/// 2xx (the commit) to the event on `b`, for each (0 when it was there first).
async fn cross_delivery(
    a: std::net::SocketAddr,
    b: std::net::SocketAddr,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let writer = Target::remote(a);
    let product = writer.create_product(&client, "DELIVERY-1").await;
    let mut stream = SseStream::open(b, None).await?;
    let mut times = Vec::new();
    let until = Instant::now() + duration;
    let mut etag = product.etag.clone();
    let (_, mut current) = target::get(&client, &product.url).await;
    while Instant::now() < until {
        let started = Instant::now();
        let put = target::put(
            &client,
            &product.url,
            &etag,
            "delivery",
            &target::bumped(&current),
        )
        .await;
        if !put.ok() {
            bail!(
                "the delivery writer's PUT answered {}: {}",
                put.status,
                put.body
            );
        }
        let committed = Instant::now();
        current = put.json();
        etag = put.etag.clone().context("the PUT answers an ETag")?;
        let version = current["version"].as_i64().context("a version")?;
        let arrived = loop {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.next_event())
                .await
                .context("no event on instance B within 10 s")??
                .context("instance B's event stream ended")?;
            let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
            if event.event == "reset" {
                bail!("instance B's stream was reset: {}", event.data);
            }
            if data["id"] == product.id && data["version"] == version {
                break Instant::now();
            }
        };
        times.push(arrived.saturating_duration_since(committed));
        tokio::time::sleep_until((started + DELIVERY_EVERY).into()).await;
    }
    Ok(times)
}

/// Presence announced through instance `a` (a new field each time, so each is news),
/// each followed by reading instance `b`'s event stream until it arrives: the time from
/// sending the announcement to the presence event on `b` (an upper bound: it includes the
/// announcement's own round trip, since the event may arrive before its 204), for each of
/// `n`.
async fn cross_presence(
    a: std::net::SocketAddr,
    b: std::net::SocketAddr,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let writer = Target::remote(a);
    let mut stream = SseStream::open(b, None).await?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let field = format!("field{i}");
        let sent = Instant::now();
        let r = client
            .put(writer.url("/presence"))
            .header("X-Client-Id", "bench-presence")
            .header("X-User", "bench")
            .json(&serde_json::json!({"product_id": 1, "field": field}))
            .send()
            .await
            .context("PUT /presence")?;
        if r.status() != 204 {
            bail!("PUT /presence answered {}", r.status());
        }
        let arrived = loop {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.next_event())
                .await
                .context("no presence on instance B within 10 s")??
                .context("instance B's event stream ended")?;
            if event.event == "presence" && event.data.contains(&format!("\"{field}\"")) {
                break Instant::now();
            }
        };
        times.push(arrived.saturating_duration_since(sent));
    }
    Ok(times)
}

/// The rmw loop over `servers`, with the CPU use of its measured window.
async fn rmw_measured(
    bench: &Bench,
    cluster: &Cluster,
    servers: &[&Target],
    what: &str,
) -> (f64, Tally, Option<Usage>) {
    let groups = cpu::groups(
        cluster.postmaster_pid(),
        servers.iter().filter_map(|s| s.pid()).collect(),
    );
    let cpu = cpu::during(groups, bench.warmup, bench.duration);
    let (rate, tally) = rmw_rate_on(bench, servers, what).await;
    let usage = cpu.await.ok().flatten();
    (rate, tally, usage)
}

/// The database when most of its busy backends wait for a lock (the writes then go one at
/// a time, whatever the CPU), else CPU when the cores are busy.
fn bound(usage: Option<&Usage>, waits: Option<&Waits>) -> String {
    let cpu = usage.map_or("CPU unknown".into(), |u| {
        format!("{:.0}% of {} cores busy", u.busy * 100.0, u.cores)
    });
    match (usage, waits) {
        (_, Some(w)) if w.share(w.lock) >= LOCK_BOUND => format!(
            "the database: writers wait in line for a lock ({:.0}% of busy backends, on \"{}\"); {cpu}",
            w.share(w.lock) * 100.0,
            w.lock_statement
        ),
        (Some(u), _) if u.busy >= CPU_BOUND => format!("CPU ({cpu})"),
        _ => format!("neither a lock nor CPU clearly ({cpu})"),
    }
}

/// What PostgreSQL's busy (`active`) backends of one database were doing, sampled from
/// `pg_stat_activity` every 100 ms by one psql session (one backend, so the sampling
/// costs next to nothing).
struct Waits {
    /// Busy backends seen, over all samples.
    active: u64,
    /// Of them, waiting for a heavyweight lock (`Lock:*`, e.g. another transaction's row).
    lock: u64,
    /// The statement most of those were running.
    lock_statement: String,
    /// Waiting for the WAL to be written or flushed (a commit's fsync).
    wal: u64,
    /// Running (no wait event).
    running: u64,
}

impl Waits {
    /// Samples from `skip` from now for `duration`, in the background.
    fn sample(
        cluster: &Cluster,
        db: &str,
        skip: Duration,
        duration: Duration,
    ) -> tokio::task::JoinHandle<Option<Waits>> {
        let samples = (duration.as_millis() / 100).max(1);
        // Kept in a variable and printed once (a NOTICE), never written to a table: a
        // write would take a transaction id and hold the snapshot horizon, and so every
        // server's event feed, for the whole run.
        let sql = format!(
            "DO $$ DECLARE r record; seen text := ''; BEGIN FOR i IN 1..{samples} LOOP
               PERFORM pg_stat_clear_snapshot();
               FOR r IN SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS w,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 40) AS q
                 FROM pg_stat_activity
                 WHERE datname = current_database() AND state = 'active'
                   AND backend_type = 'client backend' AND pid <> pg_backend_pid()
               LOOP seen := seen || replace(r.w, '|', ' ') || '|' || replace(r.q, '|', ' ') || '|1' || chr(10);
               END LOOP;
               PERFORM pg_sleep(0.1);
             END LOOP;
             RAISE NOTICE E'samples\\n%', seen; END $$;"
        );
        let mut cmd = Command::new(cluster.tool("psql"));
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(cluster.port.to_string())
            .args(["-d", db, "-c", &sql])
            .stdin(Stdio::null());
        tokio::spawn(async move {
            tokio::time::sleep(skip).await;
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .ok()?
                .ok()?;
            if !out.status.success() {
                eprintln!(
                    "  sampling pg_stat_activity failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return None;
            }
            Some(Waits::parse(&String::from_utf8_lossy(&out.stderr)))
        })
    }

    /// "wait|statement|count" lines (here each sample's backend, count 1).
    fn parse(out: &str) -> Waits {
        let mut w = Waits {
            active: 0,
            lock: 0,
            lock_statement: String::new(),
            wal: 0,
            running: 0,
        };
        let mut locked = std::collections::HashMap::<String, u64>::new();
        for line in out.lines() {
            let Some((rest, count)) = line.rsplit_once('|') else {
                continue;
            };
            let Ok(n) = count.trim().parse::<u64>() else {
                continue;
            };
            let (wait, statement) = rest.split_once('|').unwrap_or((rest, ""));
            w.active += n;
            if wait.starts_with("Lock:") {
                // "UPDATE products SET sku = ..." -> "UPDATE products SET ..."
                let words: Vec<&str> = statement.split_whitespace().take(3).collect();
                *locked
                    .entry(format!("{} ...", words.join(" ")))
                    .or_insert(0) += n;
                w.lock += n;
            } else if wait.contains("WAL") {
                w.wal += n;
            } else if wait == "running" {
                w.running += n;
            }
        }
        if let Some((statement, _)) = locked.into_iter().max_by_key(|(_, n)| *n) {
            w.lock_statement = statement;
        }
        w
    }

    fn share(&self, n: u64) -> f64 {
        n as f64 / self.active.max(1) as f64
    }

    fn describe(&self) -> String {
        let other = self.active - self.lock - self.wal - self.running;
        format!(
            "{} seen: {:.0}% wait for a lock, {:.0}% for WAL flush, {:.0}% running, {:.0}% other",
            self.active,
            self.share(self.lock) * 100.0,
            self.share(self.wal) * 100.0,
            self.share(self.running) * 100.0,
            self.share(other) * 100.0
        )
    }
}

fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_string()
}

/// One pgbench run.
struct PgBench {
    tps: f64,
    /// Transactions processed, and failed.
    txns: u64,
    failed: u64,
    /// Versions the rows gained: equals `txns` when every conditional UPDATE matched.
    gained: i64,
    cpu: Option<Usage>,
    waits: Option<Waits>,
}

/// `pgbench -n -c <clients> -j 2 -T <duration> -f <script>` on a fresh database of the
/// cluster with a table of one row per client.
async fn pgbench(
    cluster: &Cluster,
    clients: usize,
    duration: Duration,
    script: &str,
) -> anyhow::Result<PgBench> {
    let db = database_name(&cluster.create_database()?);
    cluster.psql(
        &db,
        &format!(
            "CREATE TABLE t (id integer PRIMARY KEY, v bigint NOT NULL, version bigint NOT NULL);
             INSERT INTO t SELECT g, 0, 1 FROM generate_series(1, {clients}) g;"
        ),
    )?;
    let dir = tempfile::tempdir().context("a temporary directory for the pgbench script")?;
    let file = dir.path().join("rmw.sql");
    std::fs::write(&file, script).context("writing the pgbench script")?;
    let mut cmd = Command::new(cluster.tool("pgbench"));
    cmd.args(["-n", "-c", &clients.to_string(), "-j"])
        .arg(clients.min(2).to_string())
        .args(["-T", &duration.as_secs().max(1).to_string()])
        .args(["-D", "version=1", "-f"])
        .arg(&file)
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(cluster.port.to_string())
        .arg(&db)
        .stdin(Stdio::null());
    // Its connections take a moment; measure the CPU over the middle of the run.
    let (skip, middle) = (
        Duration::from_millis(500),
        duration.saturating_sub(Duration::from_secs(1)),
    );
    let cpu = cpu::during(cpu::groups(cluster.postmaster_pid(), vec![]), skip, middle);
    let waits = Waits::sample(cluster, &db, skip, middle);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .context("the pgbench thread")?
        .context("running pgbench")?;
    let cpu = cpu.await.ok().flatten();
    let waits = waits.await.ok().flatten();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |prefix: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.split([' ', '/']).next())
            .and_then(|v| v.parse().ok())
    };
    let tps = field("tps = ").with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    let txns = field("number of transactions actually processed: ").map_or(0, |n| n as u64);
    let failed = field("number of failed transactions: ").map_or(0, |n| n as u64);
    let gained = cluster
        .psql(&db, "SELECT sum(version - 1) FROM t")?
        .trim()
        .parse()
        .context("the versions the rows gained")?;
    Ok(PgBench {
        tps,
        txns,
        failed,
        gained,
        cpu,
        waits,
    })
}
