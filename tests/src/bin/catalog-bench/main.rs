//! `catalog-bench`: the project's benchmark tool. Every figure is printed beside a limit of
//! this machine measured in the same run (a bare axum handler and SSE fan-out in this
//! process, a raw SQLite commit on the same disk), because shared machines are noisy and a
//! ratio of two things measured side by side is not.
//!
//!   cargo build --release -p catalog-server -p catalog-tests --bins
//!   target/release/catalog-bench --spawn                 # every scenario, fresh servers
//!   target/release/catalog-bench --spawn get rmw         # some of them
//!   target/release/catalog-bench --addr 127.0.0.1:8080   # a server that is already running
//!
//! Scenarios: `client` (frame and event cost of the terminal client), `baseline` (the
//! limits), `get`, `get-304`, `rmw`, `contend`, `events`, `slow-readers`, `pg-rmw`, `import`
//! (`catalog import` of 10,000 rows, the release client binary as a person runs it). With
//! `--spawn`, each server scenario gets its own `catalog-server --sync full` (the binary
//! next to this one) on a fresh database in a temporary directory, so one scenario's
//! leftovers (memory, change log, open streams) never colour the next. `pg-rmw` (only with
//! `--spawn`, and only where PostgreSQL is installed) starts a throwaway PostgreSQL cluster
//! and measures `rmw` on it against pgbench, with one and with two server instances.

mod baseline;
mod client;
mod cpu;
mod events;
mod import;
mod load;
mod pg;
mod report;
mod requests;
mod slow_readers;
mod sse;
mod target;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use crate::baseline::Limits;
use crate::report::Table;
use crate::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    /// Frames and live events on the client's catalog screen, 100 vs 100,000 products.
    Client,
    /// The limits: a bare axum handler (requests/s) and raw SQLite commits (commits/s).
    Baseline,
    /// GET /products/{id}, full 200 with a body.
    Get,
    /// GET /products/{id} with If-None-Match of the current ETag (304).
    #[value(name = "get-304")]
    Get304,
    /// GET then PUT with If-Match, each connection on its own product.
    Rmw,
    /// GET then PUT with If-Match, all connections on one product, plus integrity checks.
    Contend,
    /// 1,000 SSE watchers: commit-to-delivery latency and memory per idle watcher.
    Events,
    /// 200 streams that replay a 10,000-event backlog and never read.
    SlowReaders,
    /// `rmw` on PostgreSQL (throwaway cluster, fsync on; needs --spawn) against pgbench's
    /// conditional UPDATE on the same cluster, with one and two server instances.
    #[value(name = "pg-rmw")]
    PgRmw,
    /// `catalog import` (the release client) of 10,000 new rows, then of 10,000 changed
    /// rows, and the client's peak memory for 1,000 against 10,000 rows.
    Import,
}

impl Scenario {
    fn needs_server(self) -> bool {
        !matches!(
            self,
            Scenario::Client | Scenario::Baseline | Scenario::PgRmw
        )
    }
}

/// Benchmarks the catalog server and client; prints each figure beside this machine's
/// limits measured in the same run.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Scenarios to run (all when none is given).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Start a fresh `catalog-server --sync full` (next to this binary) for each scenario.
    #[arg(long)]
    spawn: bool,
    /// The server to measure when not spawning one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Concurrent connections of the load generator (`contend` uses twice as many).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured seconds per load scenario (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
}

/// What every scenario needs: how to reach a server, how long to measure, and the limits.
pub struct Bench {
    spawn: bool,
    addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub limits: Limits,
    pub table: Table,
    /// Distinguishes this run's SKUs from earlier runs against the same server.
    run_id: String,
}

impl Bench {
    /// A server for one scenario: a fresh spawned one, or the one at `--addr`.
    pub fn target(&self) -> Target {
        if self.spawn {
            Target::spawn()
        } else {
            Target::remote(self.addr)
        }
    }

    /// A SKU unique to this run.
    pub fn sku(&self, what: &str, n: usize) -> String {
        format!("BENCH-{}-{what}-{n}", self.run_id).to_ascii_uppercase()
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut scenarios = args.scenarios.clone();
    if scenarios.is_empty() {
        scenarios = Scenario::value_variants().to_vec();
    }
    scenarios.sort();
    scenarios.dedup();
    let addr = target::resolve(&args.addr);
    let mut bench = Bench {
        spawn: args.spawn,
        addr,
        connections: args.connections.max(1),
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(args.duration_secs.max(1)),
        limits: Limits::default(),
        table: Table::default(),
        run_id: format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ),
    };

    if !args.spawn
        && scenarios.iter().any(|s| s.needs_server())
        && std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
    {
        eprintln!(
            "catalog-bench: no server answers at {addr}. Pass --spawn to start a fresh \
             catalog-server per scenario (the way published figures are measured), or \
             --addr HOST:PORT of a running one."
        );
        std::process::exit(2);
    }

    println!(
        "catalog-bench ({} build), {} cores, {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.spawn {
            format!(
                "a fresh {} --sync full per scenario (Cargo rebuilds it first if stale)",
                catalog_tests::bin_dir().join("catalog-server").display()
            )
        } else {
            format!("the server at {addr} (memory figures need --spawn)")
        }
    );
    println!(
        "{} connections, {} s measured after {} s warm-up per load scenario; temp dir {}",
        bench.connections,
        bench.duration.as_secs(),
        bench.warmup.as_secs(),
        std::env::temp_dir().display()
    );
    println!();

    let started = Instant::now();
    for scenario in scenarios {
        let name = scenario
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        println!("running {name} ...");
        let t = Instant::now();
        match scenario {
            Scenario::Client => client::run(&mut bench),
            Scenario::Baseline => {
                let (connections, warmup, duration) =
                    (bench.connections, bench.warmup, bench.duration);
                bench.limits.bare_axum(connections, warmup, duration).await;
                bench.limits.sqlite_full();
            }
            Scenario::Get => requests::get(&mut bench, false).await,
            Scenario::Get304 => requests::get(&mut bench, true).await,
            Scenario::Rmw => requests::rmw(&mut bench).await,
            Scenario::Contend => requests::contend(&mut bench).await,
            Scenario::Events => events::run(&mut bench).await,
            Scenario::SlowReaders => slow_readers::run(&mut bench).await,
            Scenario::PgRmw => pg::run(&mut bench).await,
            Scenario::Import => import::run(&mut bench).await,
        }
        println!("  done in {:.1} s", t.elapsed().as_secs_f64());
    }
    // The limits measured on the way are part of the table even if `baseline` was not asked.
    bench.limits.rows(&mut bench.table);
    println!();
    bench.table.print();
    println!();
    println!("total {:.0} s", started.elapsed().as_secs_f64());
}
