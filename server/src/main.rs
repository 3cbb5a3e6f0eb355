//! `catalog-server`: the product catalog over HTTP, with exact RFC 9110 conditional
//! requests, on SQLite, with live change events.

mod events;
mod http;
mod problem;
mod seed;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::sync::watch;

use crate::storage::sqlite::{SqliteStore, Sync};

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
    let (store, fresh) = SqliteStore::open(&path, args.sync, args.change_log)
        .with_context(|| format!("opening the database {}", path.display()))?;
    let store: Arc<dyn storage::Storage> = Arc::new(store);
    if fresh && !args.no_seed {
        let n = seed::seed(store.as_ref()).context("seeding the demo catalog")?;
        tracing::info!("new database {}: seeded {n} demo products", path.display());
    }
    if args.allow_unconditional {
        tracing::warn!(
            "--allow-unconditional: writes without If-Match are accepted; lost updates are possible (demo mode)"
        );
    }
    // Other processes may share this database: pass their changes on to our subscribers.
    let poller = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.publish_foreign_changes()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("reading the change log: {e}"),
                    Err(e) => tracing::warn!("change-log poller: {e}"),
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(http::AppState {
        store,
        allow_unconditional: args.allow_unconditional,
        shutdown: stop_rx,
    });
    tracing::info!(
        "catalog-server listening on http://{local} (database {}, sync {:?})",
        path.display(),
        args.sync
    );
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        })
        .await
        .context("serving")?;
    poller.abort();
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
