//! `catalog-server`: the product catalog over HTTP, with exact RFC 9110 conditional
//! requests, on SQLite or PostgreSQL, with a live change feed. Startup lives here; the
//! parts are `app` (router, state, serving), `routes` (one module per resource),
//! `storage` (the async boundary, its SQLite engine and its PostgreSQL engine for several
//! instances on one database) and `feed` (the change log turned into events).

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

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;

use crate::feed::{Feed, FeedOptions};
use crate::storage::postgres::PgStore;
use crate::storage::sqlite::{Options, SqliteStore, Sync};

/// The catalog server: products with ETags, If-Match and 412, and live change events.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "CATALOG_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The database: a SQLite file (created and seeded if new), or a PostgreSQL URL
    /// (postgres://user@host:port/dbname; its schema is created or migrated at start) that
    /// several instances may share.
    #[arg(long, env = "CATALOG_DB", default_value = "catalog.db")]
    db: String,
    /// Do not seed a new database with the demo catalog.
    #[arg(long)]
    no_seed: bool,
    /// Accept PUT, PATCH and DELETE without If-Match (for the lost-update demo only).
    #[arg(long)]
    allow_unconditional: bool,
    /// Commit durability: full survives power loss, normal survives a crash of the process
    /// (on PostgreSQL, normal turns synchronous_commit off).
    #[arg(long, value_enum, default_value = "full")]
    sync: Sync,
    /// How many changes the change log keeps for resuming event streams.
    #[arg(long, default_value_t = 10_000)]
    change_log: i64,
    /// Writes that may wait for the database; past it a write is answered 503. SQLite only.
    #[arg(long, default_value_t = 1024)]
    write_queue: usize,
    /// The most writes committed together in one transaction (one fsync). SQLite only.
    #[arg(long, default_value_t = 256)]
    write_batch: usize,
    /// Read connections to the database (each with a thread of its own). SQLite only.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Connections to PostgreSQL in the pool (one more listens for other instances'
    /// changes). PostgreSQL only.
    #[arg(long, default_value_t = 16)]
    pool: usize,
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
    let (store, fresh, database) = open_store(&args).await?;
    if fresh && !args.no_seed {
        let n = seed::seed(store.as_ref())
            .await
            .context("seeding the demo catalog")?;
        tracing::info!("new database {database}: seeded {n} demo products");
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
        "catalog-server listening on http://{local} (database {database}, sync {:?})",
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

/// Opens the database `--db` names: PostgreSQL for a `postgres://` URL, else a SQLite
/// file. Returns the store, whether the database is new, and how to name it in the log
/// (without a password).
async fn open_store(args: &Args) -> anyhow::Result<(Arc<dyn storage::Storage>, bool, String)> {
    if args.db.starts_with("postgres://") || args.db.starts_with("postgresql://") {
        let name = redact_password(&args.db);
        let options = storage::postgres::Options {
            pool: args.pool,
            sync: args.sync,
        };
        let (store, fresh) = PgStore::open(&args.db, options)
            .await
            .with_context(|| format!("opening the PostgreSQL database {name}"))?;
        return Ok((Arc::new(store), fresh, name));
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
    Ok((Arc::new(store), fresh, path.display().to_string()))
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`, for the log.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn a_database_url_is_logged_without_its_password() {
        assert_eq!(
            redact_password("postgres://cat:s3cret@db.example:5432/catalog"),
            "postgres://cat:***@db.example:5432/catalog"
        );
        assert_eq!(
            redact_password("postgres://cat@127.0.0.1/catalog"),
            "postgres://cat@127.0.0.1/catalog"
        );
        assert_eq!(redact_password("catalog.db"), "catalog.db");
    }
}
