//! `catalog-server`: the product catalog over HTTP, with exact RFC 9110 conditional
//! requests, on SQLite or PostgreSQL, with a live change feed. Startup lives here; the
//! parts are `state` (what handlers share), `app` (the router and its layers), `serve`
//! (listener, connections, timeouts, caps, shutdown), `head` and `auth` (what is checked
//! before any handler), `routes` (one module per resource), `storage` (the async
//! boundary, its SQLite engine and its PostgreSQL engine for several instances on one
//! database), `feed` (the change log turned into events) and `metrics` (what is counted).

mod app;
mod auth;
mod feed;
mod head;
mod idempotency;
mod log;
mod metrics;
mod openapi;
mod problem;
mod routes;
mod seed;
mod serve;
mod state;
mod storage;
mod user_command;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::{Semaphore, watch};

use crate::auth::AuthMode;
use crate::head::HeadLimits;
use crate::serve::ServeOptions;
use crate::user_command::UserCommand;

use crate::feed::{Feed, FeedOptions};
use crate::storage::CommitSync;
use crate::storage::postgres::PgStore;
use crate::storage::sqlite::{Options, SqliteStore};

/// The catalog server: products with ETags, If-Match and 412, and live change events.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Users and the SHA-256 of their bearer tokens (see `catalog-server user add`). With
    /// it every request but GET /health needs `Authorization: Bearer <token>`, and the
    /// token names the user; without it the server runs in open demo mode, where anyone
    /// writes as whatever X-User says.
    #[arg(long, env = "CATALOG_USERS", global = true)]
    users: Option<PathBuf>,
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
    sync: CommitSync,
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
    /// How long a client may take from the first byte of a request to the end of its
    /// headers before the connection is closed (stops slowloris).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// How long a request body may take to arrive whole (past it: 408).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Open connections at most. At the cap the oldest idle one is closed for a new one;
    /// when all are busy a new one gets 503. Lowered to fit the file-descriptor limit.
    #[arg(long, default_value_t = 8192)]
    max_connections: usize,
    /// Event streams (GET /events) open at most; past it: 503 with Retry-After. Never more
    /// than 7/8 of --max-connections (lowered to fit), so that /health and writes always
    /// find a connection.
    #[arg(long, default_value_t = 2048)]
    max_event_streams: usize,
    /// Bytes of request headers at most (past it: 431); hyper itself refuses a head
    /// four times as large.
    #[arg(long, default_value_t = 32 * 1024)]
    max_header_bytes: usize,
    /// After SIGTERM or Ctrl-C: how long requests in flight may take to finish before
    /// the process exits anyway.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// How long a client's presence ("bob is editing price") lasts without renewal; it
    /// also ends at once when the client's event stream ends.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    presence_ttl: Duration,
    /// How long an Idempotency-Key is remembered (at least): a write retried with its key
    /// within this time is answered with its first outcome. Keys survive restarts.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    idempotency_ttl: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage the users of a --users file.
    #[command(subcommand)]
    User(UserCommand),
    /// Print a shell completion script (e.g. `catalog-server completions bash`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `catalog-server man | man -l -`.
    Man,
}

/// The request target at most, in bytes (past it: 414).
const MAX_URI: usize = 8 * 1024;

/// mimalloc rather than glibc's malloc: under GET load glibc's malloc and free were 12 to 17% of
/// the server's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Dropped when `main` returns, `?` included: the last lines are written first.
    // Colours for a person at a terminal; plain lines in a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (log_writer, _log) = log::init(!ansi);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(log_writer)
        .with_ansi(ansi)
        // A log that can no longer be written (its reader went away) must not stop the
        // serving: by default the failure is reported with eprintln!, which panics then.
        .log_internal_errors(false)
        .init();
    let args = Args::parse();
    match &args.command {
        Some(Command::Completions { shell }) => {
            let mut cmd = <Args as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "catalog-server", &mut std::io::stdout());
            return Ok(());
        }
        Some(Command::Man) => {
            let cmd = <Args as clap::CommandFactory>::command();
            // A reader that stops early (`| head`) is not an error.
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing the manual page");
                }
                _ => return Ok(()),
            }
        }
        _ => {}
    }
    if let Some(Command::User(command)) = &args.command {
        return user_command::run(command, args.users.as_deref());
    }
    let auth = Arc::new(match &args.users {
        Some(path) => AuthMode::bearer(path)?,
        None => AuthMode::Open,
    });
    // From now on SIGHUP reloads the users file; it never ends the process.
    spawn_reload_on_hangup(auth.clone())?;
    let (store, fresh, database) = open_store(&args).await?;
    let durability = store
        .durability()
        .await
        .context("reading the database's commit durability")?;
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
            presence_ttl: args.presence_ttl,
            ..FeedOptions::default()
        },
    )
    .await
    .context("reading the change log")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    feed.spawn_publisher(stop_rx.clone());
    feed.spawn_presence_reaper(stop_rx.clone());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    let auth_note = match auth.as_ref() {
        AuthMode::Open => {
            "auth open: demo mode, anyone may write as any X-User; start with --users FILE to require tokens".to_string()
        }
        AuthMode::Bearer { file, .. } => format!(
            "auth bearer: {} users from {}",
            auth.user_count(),
            file.display()
        ),
    };
    if matches!(*auth, AuthMode::Open) && !local.ip().is_loopback() {
        tracing::warn!(
            "listening on {local}, which is not loopback, in open demo mode: anyone who can reach it may change the catalog as anyone. Start with --users FILE (catalog-server user add NAME --users FILE) to require tokens."
        );
    }
    let max_connections = match serve::connection_limit_of_process() {
        Some(fit) if fit < args.max_connections => {
            tracing::warn!(
                "--max-connections {} lowered to {fit} to fit this process's file-descriptor limit (raise it with ulimit -n)",
                args.max_connections
            );
            fit
        }
        _ => args.max_connections,
    }
    .max(1);
    let max_event_streams = event_stream_cap(args.max_event_streams, max_connections);
    if max_event_streams < args.max_event_streams {
        tracing::warn!(
            "--max-event-streams {} lowered to {max_event_streams}: event streams may hold at most 7/8 of the {max_connections} connections, so that /health and writes always find one",
            args.max_event_streams
        );
    }
    let state = Arc::new(state::AppState {
        store,
        feed,
        allow_unconditional: args.allow_unconditional,
        shutdown: stop_rx.clone(),
        auth,
        head_limits: HeadLimits {
            max_uri: MAX_URI,
            max_header_bytes: args.max_header_bytes,
        },
        body_timeout: args.body_timeout,
        event_streams: Arc::new(Semaphore::new(max_event_streams)),
        durability: durability.clone(),
        in_flight: Default::default(),
    });
    spawn_key_pruning(state.store.clone(), args.idempotency_ttl);
    let shutdown = shutdown_signal()?;
    tracing::info!(
        "catalog-server listening on http://{local} (database {database}, {} {}={}, {auth_note})",
        durability.engine,
        durability.setting,
        durability.value,
    );
    let options = ServeOptions {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections,
        hard_header_bytes: args.max_header_bytes.saturating_mul(4).max(64 * 1024),
        shutdown_timeout: args.shutdown_timeout,
    };
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests and ending event streams");
        let _ = stop_tx.send(true);
    });
    let listener = serve::DroppingListener::new(listener, args.write_timeout, args.send_buffer);
    serve::serve(listener, app::router(state), options, stop_rx).await;
    // Every acknowledged write was committed before its answer; dropping the last
    // handle on the store lets the SQLite writer finish its queue and stop.
    tracing::info!("stopped");
    Ok(())
}

/// The event streams allowed with `connections` connections at most: what was asked,
/// but never more than 7/8 of the connections. An event stream holds its connection for
/// as long as it lasts; the eighth left over (one at least) keeps `/health` and writes
/// answering when streams are at their cap.
fn event_stream_cap(asked: usize, connections: usize) -> usize {
    let reserve = connections.div_ceil(8).max(1);
    asked.min(connections.saturating_sub(reserve))
}

/// Forgets Idempotency-Keys older than `ttl`, now and then: a key lives at least `ttl`.
fn spawn_key_pruning(store: Arc<dyn storage::Storage>, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let before = storage::now_ms().saturating_sub(ttl_ms);
            match store.prune_idempotency_keys(before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!("forgot {n} Idempotency-Keys older than the TTL"),
                Err(e) => tracing::warn!("pruning Idempotency-Keys: {e}; will retry"),
            }
        }
    });
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

/// Reloads the users file on every SIGHUP (see [`AuthMode::reload`]).
fn spawn_reload_on_hangup(auth: Arc<AuthMode>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                auth.reload();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = auth;
    Ok(())
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this
/// is called, not when it is first polled: it is called before the server says it is
/// listening, so a signal sent at once is a graceful shutdown, never the default action
/// that ends the process on the spot.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    use super::{event_stream_cap, redact_password};

    #[test]
    fn event_streams_always_leave_connections_for_the_rest() {
        assert_eq!(event_stream_cap(2048, 896), 784);
        assert_eq!(event_stream_cap(2048, 8192), 2048);
        assert_eq!(event_stream_cap(100, 16), 14);
        assert_eq!(event_stream_cap(10, 3), 2);
        assert_eq!(event_stream_cap(10, 1), 0);
    }

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
