//! The storage boundary: a narrow async trait whose writes are compare-and-set operations
//! done inside the database, each recording its change in the change log (the feed's
//! source of truth) in the same transaction.

mod cursor;
pub mod postgres;
pub mod sqlite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use catalog_shared::product::{Product, ProductFields};
use tokio::sync::{broadcast, watch};

pub use cursor::{Cursor, CursorKind};

/// A product's current row, with what HTTP needs beside the representation.
#[derive(Debug, Clone)]
pub struct Stored {
    pub product: Product,
    pub last_modified: SystemTime,
}

/// Who deleted a product, and when.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub by: String,
    pub at: String,
    /// The last representation before the delete.
    pub last: Product,
}

/// The state of one product id.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// No product ever had this id.
    Missing,
    Deleted(Deletion),
    Live(Stored),
}

/// The result of a compare-and-set write.
#[derive(Debug, Clone)]
pub enum Write<T> {
    /// The expected version was current; the write is committed.
    Done(T),
    /// The product is no longer at the expected version: here is its state now.
    Changed(Box<Lookup>),
}

/// One page of the live products.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Product>,
    /// Whether live products with a greater id exist.
    pub more: bool,
    /// The latest change sequence number when the page was read.
    pub seq: i64,
    /// When that change happened (the list's Last-Modified).
    pub changed_at: SystemTime,
}

/// One entry of a product's history (the type the API answers with, shared with the
/// client).
pub use catalog_shared::product::VersionInfo;

/// One row of the change log, as stored: its JSON is decoded by the feed, so a row that
/// cannot be decoded becomes a `reset` for subscribers rather than an error here.
#[derive(Debug, Clone)]
pub struct LogRow {
    /// Its position: the event id's cursor.
    pub cursor: Cursor,
    pub event: String,
    /// Set when this process's writer just wrote the row (so it needs no decoding to be
    /// trusted); `None` for a row read back from the log.
    pub op: Option<catalog_shared::event::Op>,
}

/// The change-log rows one commit of this process wrote, in sequence order. A notice with
/// no rows is a plain wake-up: the feed reads the log (a backend sends one when another
/// instance committed, e.g. on PostgreSQL's NOTIFY).
#[derive(Debug, Clone, Default)]
pub struct CommitNotice {
    pub rows: Vec<LogRow>,
}

/// A page of the change log after some position.
#[derive(Debug, Clone)]
pub struct LogPage {
    /// Rows in publication order, at most the page size asked for; only rows that no
    /// later commit can precede.
    pub rows: Vec<LogRow>,
    /// Whether the log still holds every change after the position asked for. False when
    /// it was pruned past it, or it names no change of this log (never silence: the
    /// feed answers `reset`).
    pub resumable: bool,
    /// The latest publishable position when the page was read.
    pub head: Cursor,
    /// Committed changes that cannot be published yet, and the commit time (ms) of the
    /// oldest: on PostgreSQL, rows above the snapshot horizon, held back by a transaction
    /// still running anywhere in the cluster. Always none on SQLite.
    pub held: Held,
}

/// Committed changes the feed must wait for (see [`LogPage::held`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub changes: i64,
    pub oldest_ms: Option<i64>,
}

/// A write's Idempotency-Key: recorded with the write, in its transaction, only when the
/// write takes effect (a refused write changed nothing, so its retry is judged afresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub user: String,
    pub key: String,
    pub method: String,
    /// The request target (path and query) the key was used on.
    pub target: String,
    /// See [`crate::idempotency::fingerprint`].
    pub fingerprint: String,
}

/// What a key's write did: enough to answer its retry exactly as the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub method: String,
    pub target: String,
    pub fingerprint: String,
    /// 201, 200 or 204.
    pub status: u16,
    pub product_id: i64,
    /// The version the write made (for a delete: the version it deleted).
    pub version: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's Idempotency-Key is already recorded (a concurrent request with it,
    /// perhaps on another instance, committed first). Nothing of this write was kept.
    #[error("the Idempotency-Key is already used")]
    KeyUsed,
    #[error("sku {sku} is already used by product {existing_id}")]
    DuplicateSku { sku: String, existing_id: i64 },
    /// The write queue is full: the server is saturated. Nothing was changed.
    #[error("the server is busy: {0}")]
    Busy(String),
    /// The database cannot take writes now (disk full, read-only, I/O error). Nothing was
    /// changed; the condition may clear by itself.
    #[error("the database cannot write now: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How hard a commit waits for the disk (`--sync`), as asked for; [`Durability`] is what
/// the database reports it runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CommitSync {
    /// fsync on every commit: survives a crash of the process and a power loss.
    Full,
    /// fsync at checkpoints: survives a crash of the process (`kill -9`), may lose the
    /// last commits on a power loss.
    Normal,
}

/// The commit durability the database runs with, read back from the database itself
/// (not the flag that asked for it), so that `/health` and the tests see what is real.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Durability {
    /// `sqlite` or `postgresql`.
    pub engine: &'static str,
    /// The setting read: SQLite's `synchronous`, PostgreSQL's `synchronous_commit`.
    pub setting: &'static str,
    /// Its value as the database names it: `full`, `normal`, ...; `on`, `off`, ...
    pub value: String,
}

/// What the HTTP layer and the feed need from a database. Every method is async and never
/// blocks the caller's thread; a backend runs its blocking work on threads of its own.
/// Writes are compare-and-set operations done inside the database, each acknowledged
/// only after its commit is durable.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The database's random identity, created with it: mixed into every entity tag and
    /// carried by every event id.
    fn identity(&self) -> &str;
    /// The commit durability in force (see [`Durability`]).
    async fn durability(&self) -> StoreResult<Durability>;
    async fn get(&self, id: i64) -> StoreResult<Lookup>;
    async fn list(&self, after: i64, limit: usize) -> StoreResult<Page>;
    /// A number that changes with every committed change a list can show, and the time
    /// of the latest change: the list's validators.
    async fn latest_change(&self) -> StoreResult<(i64, SystemTime)>;
    /// The form of this backend's change-log positions.
    fn cursor_kind(&self) -> CursorKind;
    /// The latest position the feed may publish up to now.
    async fn log_head(&self) -> StoreResult<Cursor>;
    /// Creates a product; with a key, records it in the same transaction
    /// ([`StoreError::KeyUsed`] when it is taken: nothing is created).
    async fn create(
        &self,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Product>;
    /// Replaces the fields if the product is live at `expected_version`; the key as for
    /// `create`, recorded only when the write is done.
    async fn update(
        &self,
        id: i64,
        expected_version: i64,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<Product>>;
    /// Deletes the product if it is live at `expected_version`; the key as for `update`.
    async fn delete(
        &self,
        id: i64,
        expected_version: i64,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<()>>;
    /// The record of `user`'s `key`, if a write with it took effect.
    async fn idempotency_key(&self, user: &str, key: &str) -> StoreResult<Option<KeyRecord>>;
    /// Forgets the keys recorded before `before_ms` (milliseconds since the epoch);
    /// returns how many.
    async fn prune_idempotency_keys(&self, before_ms: i64) -> StoreResult<u64>;
    /// `None` when the id never existed.
    async fn versions(&self, id: i64) -> StoreResult<Option<Vec<VersionInfo>>>;
    async fn version(&self, id: i64, version: i64) -> StoreResult<Option<Stored>>;
    /// Up to `limit` change-log rows after `after`, in order. Only committed rows, and
    /// never a row while an earlier one could still appear.
    async fn changes_since(&self, after: Cursor, limit: usize) -> StoreResult<LogPage>;
    /// Removes the change-log rows at or before `published` except the `keep` latest of
    /// them (kept for `Last-Event-ID`).
    async fn prune_changes(&self, published: Cursor, keep: i64) -> StoreResult<()>;
    /// The latest commit of this process and the log rows it wrote: the feed's wake-up,
    /// and, when it follows on from what the feed published, its events without reading
    /// them back. Changes of other processes are found by reading the log.
    fn commits(&self) -> watch::Receiver<std::sync::Arc<CommitNotice>>;
    /// Sends an ephemeral message (presence) to the other instances on this database,
    /// none of which stores it. Nothing on a backend that has no such channel.
    fn tell_peers(&self, _message: String) {}
    /// The other instances' messages, if this backend carries any.
    fn peer_messages(&self) -> Option<broadcast::Receiver<std::sync::Arc<str>>> {
        None
    }
}

/// Milliseconds since the epoch, as stored.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// RFC 3339 with milliseconds, UTC.
pub fn ms_to_rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(ms_to_time(ms)).to_string()
}

/// The opaque part of a product version's entity tag: 16 hex digits of a hash of the
/// database's random incarnation id, the product id and the version. Deterministic (the
/// same for one version across restarts and processes), and never reused by a re-created
/// database because the incarnation differs.
pub fn mint_etag(incarnation: &str, kind: &str, id: i64, version: i64) -> String {
    // FNV-1a over the inputs, then the splitmix64 finaliser for avalanche.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in incarnation
        .bytes()
        .chain([0])
        .chain(kind.bytes())
        .chain([0])
        .chain(id.to_le_bytes())
        .chain(version.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_short_strong_and_distinct() {
        let a = mint_etag("inc-a", "product", 1, 1);
        assert_eq!(a.len(), 18);
        assert_eq!(a, mint_etag("inc-a", "product", 1, 1));
        assert_ne!(a, mint_etag("inc-a", "product", 1, 2));
        assert_ne!(a, mint_etag("inc-a", "product", 2, 1));
        assert_ne!(a, mint_etag("inc-b", "product", 1, 1));
        assert!(a.parse::<catalog_shared::etag::EntityTag>().is_ok());
    }
}
