//! PostgreSQL storage, for several server instances on one database: a connection pool
//! for requests ([`writes`]: one statement per write, [`rows`]), versioned migrations
//! under an advisory lock at start ([`schema`]), and a change log whose rows carry their
//! transaction id and are published below the snapshot horizon in (tx, id) order, the
//! same sequence on every instance (STORAGE.md). A write wakes this process's feed in
//! memory; other instances are told by one coalesced NOTIFY from a connection of its
//! own, which also carries presence between instances ([`listener`]). The feed reads
//! the log: notifications only wake it.

mod listener;
mod rows;
mod schema;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use catalog_shared::product::{Product, ProductFields};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_postgres::NoTls;

use super::{
    CommitNotice, CommitSync, Cursor, CursorKind, KeyClaim, KeyRecord, LogPage, Lookup, Page,
    Storage, StoreError, StoreResult, Stored, VersionInfo, Write,
};

/// The channel every instance NOTIFYs after its commits and LISTENs to.
const NOTIFY_CHANNEL: &str = "catalog_changes";
/// The channel presence travels on between instances (never stored).
const PRESENCE_CHANNEL: &str = "catalog_presence";
/// A statement of ours that runs longer is cancelled (a request waiting on a lock or a
/// stuck database answers 503 instead of hanging).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A session of ours idle inside a transaction that long is ended by PostgreSQL: an
/// open transaction holds the snapshot horizon, and so the feed of every instance.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a pooled connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Tuning of the PostgreSQL engine.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Connections in the pool (the LISTEN connection is one more).
    pub pool: usize,
    /// `Normal` turns `synchronous_commit` off for this server's sessions: a commit is
    /// acknowledged before it is flushed, and a crash of PostgreSQL may lose the last ones.
    pub sync: CommitSync,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pool: 16,
            sync: CommitSync::Full,
        }
    }
}

/// A PostgreSQL error as the server answers it: a connection that cannot be had or was
/// lost, the server shutting down or out of resources (class 53), or a standby that
/// cannot write is a condition that can clear (503); a deadlock or serialisation failure
/// is worth a retry (503 with Retry-After); anything else is a defect (500).
pub fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let text = describe(&e);
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection itself failed (I/O, closed, protocol).
        return StoreError::Unavailable(text);
    };
    let code = code.code();
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "25006"
    {
        StoreError::Unavailable(text)
    } else if code.starts_with("40") {
        StoreError::Busy(text)
    } else {
        StoreError::Database(text)
    }
}

/// The server's own message (and SQLSTATE) when there is one: the driver's `Display`
/// alone says only "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Timeout(_) => {
            StoreError::Busy("every database connection stayed busy; retry shortly".into())
        }
        PoolError::Backend(e) => pg_err(e),
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}

/// Hands this process's commits to its feed (in memory) and to the other instances (by
/// the listener's coalesced NOTIFY), and the other instances' messages to the feed.
pub struct Notifier {
    commits: watch::Sender<Arc<CommitNotice>>,
    /// Set by each commit of this process; cleared when the other instances are told.
    unsignalled: AtomicBool,
    signal: Notify,
    /// Presence of this instance's clients, to send to the other instances.
    presence_out: mpsc::Sender<String>,
    /// The other instances' presence, as they sent it.
    peers: broadcast::Sender<Arc<str>>,
}

impl Notifier {
    fn committed(&self) {
        self.wake();
        self.unsignalled.store(true, Ordering::Release);
        self.signal.notify_one();
    }

    /// Tells the feed to read the log.
    fn wake(&self) {
        self.commits.send_replace(Arc::new(CommitNotice::default()));
    }

    /// Whether the store (and so every receiver) is gone.
    fn is_closed(&self) -> bool {
        self.commits.is_closed()
    }
}

pub struct PgStore {
    identity: String,
    pool: Pool,
    notifier: Arc<Notifier>,
    commits: watch::Receiver<Arc<CommitNotice>>,
}

impl PgStore {
    /// Connects to the database at `url`, migrates its schema, and starts listening for
    /// other instances' commits. Returns the store and whether the database was new (so
    /// the caller can seed it; of instances starting together, exactly one is told so).
    pub async fn open(url: &str, options: Options) -> StoreResult<(Self, bool)> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Database(format!(
                "the database URL is not a valid PostgreSQL URL: {e}"
            ))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("catalog-server");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        // A LISTEN connection idle for hours still notices a dead peer.
        config.keepalives_idle(Duration::from_secs(30));
        if options.sync == CommitSync::Normal {
            let extra = config.get_options().unwrap_or("").to_string();
            config.options(format!("{extra} -c synchronous_commit=off").trim());
        }
        // Migrations may wait for another instance's and take long: no timeouts there.
        let (identity, fresh) = schema::migrate(&config).await?;
        let extra = config.get_options().unwrap_or("").to_string();
        config.options(
            format!(
                // jit off: ours are short statements, which JIT compilation (triggered by
                // cost estimates, not by work) made hundreds of times slower.
                "{extra} -c statement_timeout={} -c idle_in_transaction_session_timeout={} -c jit=off",
                STATEMENT_TIMEOUT.as_millis(),
                IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
            )
            .trim(),
        );
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool.max(1))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Database(format!("building the connection pool: {e}")))?;
        let (commits_tx, commits) = watch::channel(Arc::new(CommitNotice::default()));
        let (presence_out, presence_queue) = mpsc::channel(1024);
        let notifier = Arc::new(Notifier {
            commits: commits_tx,
            unsignalled: AtomicBool::new(false),
            signal: Notify::new(),
            presence_out,
            peers: broadcast::channel(1024).0,
        });
        listener::spawn(config, notifier.clone(), presence_queue);
        Ok((
            PgStore {
                identity,
                pool,
                notifier,
                commits,
            },
            fresh,
        ))
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

#[async_trait::async_trait]
impl Storage for PgStore {
    fn identity(&self) -> &str {
        &self.identity
    }

    async fn get(&self, id: i64) -> StoreResult<Lookup> {
        let client = self.client().await?;
        rows::lookup(&client, &self.identity, id).await
    }

    async fn list(&self, after: i64, limit: usize) -> StoreResult<Page> {
        let client = self.client().await?;
        rows::list(&client, &self.identity, after, limit).await
    }

    async fn durability(&self) -> StoreResult<super::Durability> {
        // Asked of a pooled session: the option that turns it off is set on every one.
        let client = self.client().await?;
        let row = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(|e| StoreError::Database(format!("reading synchronous_commit: {e}")))?;
        Ok(super::Durability {
            engine: "postgresql",
            setting: "synchronous_commit",
            value: row.get(0),
        })
    }

    async fn latest_change(&self) -> StoreResult<(i64, SystemTime)> {
        let client = self.client().await?;
        rows::list_version(&client).await
    }

    fn cursor_kind(&self) -> CursorKind {
        CursorKind::Tx
    }

    async fn log_head(&self) -> StoreResult<Cursor> {
        let client = self.client().await?;
        rows::head(&**client).await
    }

    async fn create(
        &self,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Product> {
        let mut client = self.client().await?;
        let product =
            writes::create(&mut client, &self.identity, &fields, &user, key.as_ref()).await?;
        self.notifier.committed();
        Ok(product)
    }

    async fn update(
        &self,
        id: i64,
        expected_version: i64,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<Product>> {
        let mut client = self.client().await?;
        let write = writes::update(
            &mut client,
            &self.identity,
            id,
            expected_version,
            &fields,
            &user,
            key.as_ref(),
        )
        .await?;
        if matches!(write, Write::Done(_)) {
            self.notifier.committed();
        }
        Ok(write)
    }

    async fn delete(
        &self,
        id: i64,
        expected_version: i64,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<()>> {
        let mut client = self.client().await?;
        let write = writes::delete(
            &mut client,
            &self.identity,
            id,
            expected_version,
            &user,
            key.as_ref(),
        )
        .await?;
        if matches!(write, Write::Done(_)) {
            self.notifier.committed();
        }
        Ok(write)
    }

    async fn idempotency_key(&self, user: &str, key: &str) -> StoreResult<Option<KeyRecord>> {
        let client = self.client().await?;
        writes::key_record(&client, user, key).await
    }

    async fn prune_idempotency_keys(&self, before_ms: i64) -> StoreResult<u64> {
        let client = self.client().await?;
        writes::prune_keys(&client, before_ms).await
    }

    async fn versions(&self, id: i64) -> StoreResult<Option<Vec<VersionInfo>>> {
        let client = self.client().await?;
        rows::versions(&**client, &self.identity, id).await
    }

    async fn version(&self, id: i64, version: i64) -> StoreResult<Option<Stored>> {
        let client = self.client().await?;
        rows::version(&**client, &self.identity, id, version).await
    }

    async fn changes_since(&self, after: Cursor, limit: usize) -> StoreResult<LogPage> {
        let client = self.client().await?;
        rows::changes_since(&client, after, limit).await
    }

    async fn prune_changes(&self, published: Cursor, keep: i64) -> StoreResult<()> {
        let client = self.client().await?;
        writes::prune(&client, published, keep).await
    }

    fn commits(&self) -> watch::Receiver<Arc<CommitNotice>> {
        self.commits.clone()
    }

    fn tell_peers(&self, message: String) {
        // Presence is advisory and renewed: when the queue is full, this one is dropped.
        let _ = self.notifier.presence_out.try_send(message);
    }

    fn peer_messages(&self) -> Option<broadcast::Receiver<Arc<str>>> {
        Some(self.notifier.peers.subscribe())
    }
}
