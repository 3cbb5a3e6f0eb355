//! The SQLite schema, and how every connection to the file is opened (WAL, durability,
//! busy timeout), so the writer and the readers agree.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::db_err;
use crate::storage::CommitSync;
use crate::storage::StoreError;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    deleted_by TEXT,
    deleted_at_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS products_live_sku ON products(sku) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS versions (
    product_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (product_id, version)
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL
);
-- Idempotency-Key records: written in the transaction of the write that took effect.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys(created_at_ms);
";

pub const PRODUCT_COLUMNS: &str =
    "id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by";

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection's `PRAGMA synchronous`, by name (`full`, `normal`, ...).
pub fn synchronous(conn: &Connection) -> Result<String, StoreError> {
    let level: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(db_err)?;
    Ok(match level {
        0 => "off",
        1 => "normal",
        2 => "full",
        3 => "extra",
        _ => "unknown",
    }
    .to_string())
}

/// Opens the one connection that writes: WAL, the chosen durability, the schema, and the
/// database's identity (created on first open). Returns it, the identity, and whether the
/// database was new.
pub fn open_writer(
    path: &Path,
    sync: CommitSync,
) -> Result<(Connection, String, bool), StoreError> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "could not switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    let sync_pragma = match sync {
        CommitSync::Full => "PRAGMA synchronous = FULL",
        CommitSync::Normal => "PRAGMA synchronous = NORMAL",
    };
    conn.execute_batch(sync_pragma).map_err(db_err)?;
    conn.execute_batch(SCHEMA).map_err(db_err)?;
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'incarnation'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    let (identity, fresh) = match existing {
        Some(id) => (id, false),
        None => {
            let id = format!("{:032x}", fastrand::u128(..));
            // OR IGNORE + re-read: two processes creating the file at once agree on one.
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('incarnation', ?1)",
                [&id],
            )
            .map_err(db_err)?;
            let stored: String = conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'incarnation'",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let fresh = stored == id;
            (stored, fresh)
        }
    };
    Ok((conn, identity, fresh))
}

/// Opens a read connection: read-only, so no statement through it can ever write.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    // Statements are prepared once per connection and kept.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}
