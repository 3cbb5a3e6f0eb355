//! `catalog-server`: the product catalog over HTTP, with exact RFC 9110 conditional
//! requests, on SQLite, with a live change feed. Startup lives here; the parts are
//! `app` (router, state, serving), `routes` (one module per resource), `storage` (the
//! async boundary and its SQLite engine) and `feed` (the change log turned into events).

mod app;
mod feed;
mod problem;
mod routes;
mod seed;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::sync::watch;

use crate::feed::{Feed, FeedOptions};
use crate::storage::sqlite::{Options, SqliteStore, Sync};

/// The catalog server: products with ETags, If-Match and 412, and live change events.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "CATALOG_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// SQLite database file (created and seeded if new).
    #[arg(long, env = "CATALOG_DB", default_value = "catalog.db")]
    db: String,
    /// Do not seed a new database with the demo catalog.
    #[arg(long)]
    no_seed: bool,
    /// Accept PUT, PATCH and DELETE without If-Match (for the lost-update demo only).
    #[arg(long)]
    allow_unconditional: bool,
    /// Commit durability: full survives power loss, normal survives a crash of the process.
    #[arg(long, value_enum, default_value = "full")]
    sync: Sync,
    /// How many changes the change log keeps for resuming event streams.
    #[arg(long, default_value_t = 10_000)]
    change_log: i64,
    /// Writes that may wait for the database; past it a write is answered 503.
    #[arg(long, default_value_t = 1024)]
    write_queue: usize,
    /// The most writes committed together in one transaction (one fsync).
    #[arg(long, default_value_t = 256)]
    write_batch: usize,
    /// Read connections to the database (each with a thread of its own).
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Events an event-stream subscriber may fall behind before it is sent `reset`.
    #[arg(long, default_value_t = 1024)]
    event_buffer: usize,
    /// How long a response may make no progress because the client does not read
    /// before the connection is dropped (e.g. "30s").
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// Kernel send buffer per connection, in bytes (0: the system's auto-tuning). Bounds
    /// what a client that stops reading can make the server produce and hold.
    #[arg(long, default_value_t = 64 * 1024)]
    send_buffer: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal; plain lines in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if args.db.starts_with("postgres://") || args.db.starts_with("postgresql://") {
        bail!(
            "PostgreSQL storage is not available in this build yet; use a SQLite file path for --db"
        );
    }
    let path = PathBuf::from(&args.db);
    let options = Options {
        sync: args.sync,
        queue: args.write_queue,
        batch: args.write_batch,
        readers: args.readers,
    };
    let (store, fresh) = SqliteStore::open(&path, options)
        .with_context(|| format!("opening the database {}", path.display()))?;
    let store: Arc<dyn storage::Storage> = Arc::new(store);
    if fresh && !args.no_seed {
        let n = seed::seed(store.as_ref())
            .await
            .context("seeding the demo catalog")?;
        tracing::info!("new database {}: seeded {n} demo products", path.display());
    }
    if args.allow_unconditional {
        tracing::warn!(
            "--allow-unconditional: writes without If-Match are accepted; lost updates are possible (demo mode)"
        );
    }
    let feed = Feed::new(
        store.clone(),
        FeedOptions {
            retain: args.change_log.max(1),
            buffer: args.event_buffer.max(1),
            ..FeedOptions::default()
        },
    )
    .await
    .context("reading the change log")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    feed.spawn_publisher(stop_rx.clone());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    let state = Arc::new(app::AppState {
        store,
        feed,
        allow_unconditional: args.allow_unconditional,
        shutdown: stop_rx,
    });
    tracing::info!(
        "catalog-server listening on http://{local} (database {}, sync {:?})",
        path.display(),
        args.sync
    );
    let listener = app::DroppingListener::new(listener, args.write_timeout, args.send_buffer);
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        })
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
