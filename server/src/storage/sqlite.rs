//! SQLite storage: WAL mode, durable commits, every write a compare-and-set
//! (`UPDATE ... WHERE id = ? AND version = ?`) in one transaction, with the product's
//! history and the change log written in that same transaction.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, ProductFields, Status};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::broadcast;

use super::*;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sync {
    /// fsync on every commit: survives a crash of the process and a power loss.
    Full,
    /// fsync at checkpoints: survives a crash of the process (`kill -9`), may lose the
    /// last commits on a power loss.
    Normal,
}

pub struct SqliteStore {
    conn: Mutex<Connection>,
    incarnation: String,
    events: broadcast::Sender<ChangeEvent>,
    /// The highest change sequence sent to subscribers; changed only under the connection
    /// lock, so events go out once each, in sequence order, with no gaps.
    published: AtomicI64,
    /// How many change-log entries to keep for `Last-Event-ID` resumption.
    retain: i64,
}

const SCHEMA: &str = "
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
";

const PRODUCT_COLUMNS: &str =
    "id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by";

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn parse_status(s: &str) -> Status {
    s.parse().unwrap_or(Status::Discontinued)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`. Returns the store and whether the
    /// database was new (so the caller can seed it).
    pub fn open(path: &Path, sync: Sync, retain: i64) -> Result<(Self, bool), StoreError> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db_err)?;
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
            Sync::Full => "PRAGMA synchronous = FULL",
            Sync::Normal => "PRAGMA synchronous = NORMAL",
        };
        conn.execute_batch(sync_pragma).map_err(db_err)?;
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        let existing: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'incarnation'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        let (incarnation, fresh) = match existing {
            Some(inc) => (inc, false),
            None => {
                let inc = format!("{:032x}", fastrand::u128(..));
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('incarnation', ?1)",
                    [&inc],
                )
                .map_err(db_err)?;
                (inc, true)
            }
        };
        let (events, _) = broadcast::channel(1024);
        let published = AtomicI64::new(latest(&conn)?.0);
        Ok((
            SqliteStore {
                conn: Mutex::new(conn),
                incarnation,
                events,
                published,
                retain: retain.max(1),
            },
            fresh,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction behind
        // (rusqlite rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn product_etag(&self, id: i64, version: i64) -> String {
        mint_etag(&self.incarnation, "product", id, version)
    }

    fn row_to_stored(&self, r: &Row<'_>) -> rusqlite::Result<Stored> {
        let id: i64 = r.get(0)?;
        let version: i64 = r.get(6)?;
        let at: i64 = r.get(7)?;
        let status: String = r.get(5)?;
        Ok(Stored {
            product: Product {
                id,
                sku: r.get(1)?,
                name: r.get(2)?,
                description: r.get(3)?,
                price_cents: r.get(4)?,
                status: parse_status(&status),
                version,
                updated_at: ms_to_rfc3339(at),
                updated_by: r.get(8)?,
                etag: self.product_etag(id, version),
            },
            last_modified: ms_to_time(at),
        })
    }

    fn lookup(&self, conn: &Connection, id: i64) -> Result<Lookup, StoreError> {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS}, deleted, deleted_by, deleted_at_ms FROM products WHERE id = ?1"
        );
        let row = conn
            .query_row(&sql, [id], |r| {
                let stored = self.row_to_stored(r)?;
                let deleted: bool = r.get(9)?;
                let by: Option<String> = r.get(10)?;
                let at: Option<i64> = r.get(11)?;
                Ok((stored, deleted, by, at))
            })
            .optional()
            .map_err(db_err)?;
        Ok(match row {
            None => Lookup::Missing,
            Some((stored, true, by, at)) => Lookup::Deleted(Deletion {
                by: by.unwrap_or_default(),
                at: ms_to_rfc3339(at.unwrap_or(0)),
                last: stored.product,
            }),
            Some((stored, false, _, _)) => Lookup::Live(stored),
        })
    }

    fn duplicate_sku(conn: &Connection, sku: &str) -> StoreError {
        let existing_id = conn
            .query_row(
                "SELECT id FROM products WHERE sku = ?1 AND deleted = 0",
                [sku],
                |r| r.get(0),
            )
            .unwrap_or(0);
        StoreError::DuplicateSku {
            sku: sku.to_string(),
            existing_id,
        }
    }

    fn is_unique_violation(e: &rusqlite::Error) -> bool {
        matches!(e, rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    }

    /// Records the new version in the history and the change in the change log, inside the
    /// caller's transaction. Returns the event (its `seq` assigned).
    fn record(
        &self,
        tx: &rusqlite::Transaction<'_>,
        op: Op,
        product: &Product,
        at_ms: i64,
        by: &str,
    ) -> Result<ChangeEvent, StoreError> {
        if op != Op::Deleted {
            tx.execute(
                "INSERT INTO versions (product_id, version, sku, name, description, price_cents, status, updated_at_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    product.id,
                    product.version,
                    product.sku,
                    product.name,
                    product.description,
                    product.price_cents,
                    product.status.as_str(),
                    at_ms,
                    by
                ],
            )
            .map_err(db_err)?;
        }
        let mut event = ChangeEvent {
            seq: 0,
            op,
            id: product.id,
            version: product.version,
            etag: product.etag.clone(),
            updated_by: by.to_string(),
            updated_at: ms_to_rfc3339(at_ms),
            product: product.clone(),
        };
        tx.execute(
            "INSERT INTO changes (at_ms, event) VALUES (?1, '')",
            [at_ms],
        )
        .map_err(db_err)?;
        event.seq = tx.last_insert_rowid();
        let json = serde_json::to_string(&event)
            .map_err(|e| StoreError::Database(format!("encoding a change event: {e}")))?;
        tx.execute(
            "UPDATE changes SET event = ?1 WHERE seq = ?2",
            params![json, event.seq],
        )
        .map_err(db_err)?;
        tx.execute(
            "DELETE FROM changes WHERE seq <= ?1",
            [event.seq - self.retain],
        )
        .map_err(db_err)?;
        Ok(event)
    }

    /// Sends a committed change to subscribers. Called with the connection lock held, after
    /// the commit. Changes that another process committed to the same database in between
    /// are sent first, from the change log, so the sequence has no gaps.
    fn publish(&self, conn: &Connection, event: ChangeEvent) -> Result<(), StoreError> {
        let last = self.published.load(Ordering::SeqCst);
        if event.seq <= last {
            return Ok(());
        }
        self.publish_from_log(conn, last, event.seq - 1)?;
        let seq = event.seq;
        // No subscriber is not an error.
        let _ = self.events.send(event);
        self.published.store(seq, Ordering::SeqCst);
        Ok(())
    }

    /// Sends the logged changes in `(after, upto]` that have not been sent yet.
    fn publish_from_log(&self, conn: &Connection, after: i64, upto: i64) -> Result<(), StoreError> {
        if upto <= after {
            return Ok(());
        }
        let mut stmt = conn
            .prepare_cached("SELECT event FROM changes WHERE seq > ?1 AND seq <= ?2 ORDER BY seq")
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![after, upto], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        for row in rows {
            let json = row.map_err(db_err)?;
            if let Ok(event) = serde_json::from_str::<ChangeEvent>(&json) {
                let _ = self.events.send(event);
            }
        }
        self.published.store(upto, Ordering::SeqCst);
        Ok(())
    }
}

impl Storage for SqliteStore {
    fn incarnation(&self) -> &str {
        &self.incarnation
    }

    fn get(&self, id: i64) -> Result<Lookup, StoreError> {
        let conn = self.lock();
        self.lookup(&conn, id)
    }

    fn list(&self, after: i64, limit: usize) -> Result<Page, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err)?;
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE deleted = 0 AND id > ?1 ORDER BY id LIMIT ?2"
        );
        let mut items = {
            let mut stmt = tx.prepare_cached(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(params![after, limit as i64 + 1], |r| {
                    self.row_to_stored(r).map(|s| s.product)
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        let more = items.len() > limit;
        items.truncate(limit);
        let (seq, changed_at) = latest(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(Page {
            items,
            more,
            seq,
            changed_at,
        })
    }

    fn latest_change(&self) -> Result<(i64, SystemTime), StoreError> {
        let conn = self.lock();
        latest(&conn)
    }

    fn create(&self, fields: &ProductFields, user: &str) -> Result<Product, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let at = now_ms();
        let inserted = tx.execute(
            "INSERT INTO products (sku, name, description, price_cents, status, version, updated_at_ms, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
            params![
                fields.sku,
                fields.name,
                fields.description,
                fields.price_cents,
                fields.status.as_str(),
                at,
                user
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if Self::is_unique_violation(&e) => {
                return Err(Self::duplicate_sku(&tx, &fields.sku));
            }
            Err(e) => return Err(db_err(e)),
        }
        let id = tx.last_insert_rowid();
        let product = Product {
            id,
            sku: fields.sku.clone(),
            name: fields.name.clone(),
            description: fields.description.clone(),
            price_cents: fields.price_cents,
            status: fields.status,
            version: 1,
            updated_at: ms_to_rfc3339(at),
            updated_by: user.to_string(),
            etag: self.product_etag(id, 1),
        };
        let event = self.record(&tx, Op::Created, &product, at, user)?;
        tx.commit().map_err(db_err)?;
        self.publish(&conn, event)?;
        Ok(product)
    }

    fn update(
        &self,
        id: i64,
        expected_version: i64,
        fields: &ProductFields,
        user: &str,
    ) -> Result<Write<Product>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let at = now_ms();
        let changed = tx.execute(
            "UPDATE products SET sku = ?1, name = ?2, description = ?3, price_cents = ?4, status = ?5,
                 version = version + 1, updated_at_ms = ?6, updated_by = ?7
             WHERE id = ?8 AND version = ?9 AND deleted = 0",
            params![
                fields.sku,
                fields.name,
                fields.description,
                fields.price_cents,
                fields.status.as_str(),
                at,
                user,
                id,
                expected_version
            ],
        );
        match changed {
            Ok(1) => {}
            Ok(_) => {
                let now = self.lookup(&tx, id)?;
                return Ok(Write::Changed(Box::new(now)));
            }
            Err(e) if Self::is_unique_violation(&e) => {
                return Err(Self::duplicate_sku(&tx, &fields.sku));
            }
            Err(e) => return Err(db_err(e)),
        }
        let Lookup::Live(stored) = self.lookup(&tx, id)? else {
            return Err(StoreError::Database(format!(
                "product {id} vanished inside its own update"
            )));
        };
        let event = self.record(&tx, Op::Updated, &stored.product, at, user)?;
        tx.commit().map_err(db_err)?;
        self.publish(&conn, event)?;
        Ok(Write::Done(stored.product))
    }

    fn delete(&self, id: i64, expected_version: i64, user: &str) -> Result<Write<()>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let at = now_ms();
        let changed = tx
            .execute(
                "UPDATE products SET deleted = 1, deleted_by = ?1, deleted_at_ms = ?2
                 WHERE id = ?3 AND version = ?4 AND deleted = 0",
                params![user, at, id, expected_version],
            )
            .map_err(db_err)?;
        if changed != 1 {
            let now = self.lookup(&tx, id)?;
            return Ok(Write::Changed(Box::new(now)));
        }
        let Lookup::Deleted(deletion) = self.lookup(&tx, id)? else {
            return Err(StoreError::Database(format!(
                "product {id} not deleted by its own delete"
            )));
        };
        let event = self.record(&tx, Op::Deleted, &deletion.last, at, user)?;
        tx.commit().map_err(db_err)?;
        self.publish(&conn, event)?;
        Ok(Write::Done(()))
    }

    fn versions(&self, id: i64) -> Result<Option<Vec<VersionInfo>>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT version, updated_at_ms, updated_by FROM versions WHERE product_id = ?1 ORDER BY version",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([id], |r| {
                let version: i64 = r.get(0)?;
                let at: i64 = r.get(1)?;
                Ok(VersionInfo {
                    version,
                    etag: self.product_etag(id, version),
                    updated_at: ms_to_rfc3339(at),
                    updated_by: r.get(2)?,
                })
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(if rows.is_empty() { None } else { Some(rows) })
    }

    fn version(&self, id: i64, version: i64) -> Result<Option<Stored>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT product_id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by
             FROM versions WHERE product_id = ?1 AND version = ?2",
            params![id, version],
            |r| self.row_to_stored(r),
        )
        .optional()
        .map_err(db_err)
    }

    fn changes_since(&self, seq: i64) -> Result<Since, StoreError> {
        let conn = self.lock();
        let (latest, _) = latest(&conn)?;
        let oldest: Option<i64> = conn
            .query_row("SELECT MIN(seq) FROM changes", [], |r| r.get(0))
            .map_err(db_err)?;
        if seq > latest || seq < 0 {
            return Ok(Since::TooOld { latest });
        }
        if let Some(oldest) = oldest
            && seq + 1 < oldest
        {
            return Ok(Since::TooOld { latest });
        }
        let mut stmt = conn
            .prepare_cached("SELECT event FROM changes WHERE seq > ?1 ORDER BY seq")
            .map_err(db_err)?;
        let events = stmt
            .query_map([seq], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .map(|row| {
                let json = row.map_err(db_err)?;
                serde_json::from_str::<ChangeEvent>(&json).map_err(|e| {
                    StoreError::Database(format!("a stored change event is unreadable: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Since::Events(events))
    }

    fn publish_foreign_changes(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        let (latest, _) = latest(&conn)?;
        self.publish_from_log(&conn, self.published.load(Ordering::SeqCst), latest)
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        // Subscribing under the lock orders it against commits: every change committed after
        // this point reaches the receiver.
        let _conn = self.lock();
        self.events.subscribe()
    }
}

/// The latest change sequence and its time (0 and the epoch for an empty log).
fn latest(conn: &Connection) -> Result<(i64, SystemTime), StoreError> {
    let seq: i64 = conn
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let at: Option<i64> = conn
        .query_row("SELECT at_ms FROM changes WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    Ok((seq, ms_to_time(at.unwrap_or(0))))
}
