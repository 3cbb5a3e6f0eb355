//! Reading products and the change log out of SQLite rows: the statements the writer
//! and the readers share.

use std::time::SystemTime;

use catalog_shared::product::{Product, Status};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db_err;
use super::schema::PRODUCT_COLUMNS;
use crate::storage::{
    Cursor, Deletion, Held, KeyRecord, LogPage, LogRow, Lookup, Page, StoreResult, Stored,
    VersionInfo, mint_etag, ms_to_rfc3339, ms_to_time,
};

fn parse_status(s: &str) -> Status {
    s.parse().unwrap_or(Status::Discontinued)
}

pub fn product_etag(identity: &str, id: i64, version: i64) -> String {
    mint_etag(identity, "product", id, version)
}

/// A row of `PRODUCT_COLUMNS` (or the same columns of `versions`).
pub fn row_to_stored(identity: &str, r: &Row<'_>) -> rusqlite::Result<Stored> {
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
            etag: product_etag(identity, id, version),
        },
        last_modified: ms_to_time(at),
    })
}

pub fn lookup(conn: &Connection, identity: &str, id: i64) -> StoreResult<Lookup> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}, deleted, deleted_by, deleted_at_ms FROM products WHERE id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let row = stmt
        .query_row([id], |r| {
            let stored = row_to_stored(identity, r)?;
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

/// The latest change sequence number (0 for an empty log), which the log's
/// AUTOINCREMENT counter keeps even after the rows are pruned.
pub fn latest_seq(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(db_err)
}

/// The latest change sequence number and when it happened (the epoch for an empty log).
pub fn latest(conn: &Connection) -> StoreResult<(i64, SystemTime)> {
    let seq = latest_seq(conn)?;
    let at: Option<i64> = conn
        .prepare_cached("SELECT at_ms FROM changes WHERE seq = ?1")
        .and_then(|mut s| s.query_row([seq], |r| r.get(0)).optional())
        .map_err(db_err)?;
    Ok((seq, ms_to_time(at.unwrap_or(0))))
}

/// One page of live products, and the change sequence it reflects, from one snapshot.
pub fn list(conn: &Connection, identity: &str, after: i64, limit: usize) -> StoreResult<Page> {
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let result = (|| {
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE deleted = 0 AND id > ?1 ORDER BY id LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
        let mut items = stmt
            .query_map(params![after, limit as i64 + 1], |r| {
                row_to_stored(identity, r).map(|s| s.product)
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        let more = items.len() > limit;
        items.truncate(limit);
        let (seq, changed_at) = latest(conn)?;
        Ok(Page {
            items,
            more,
            seq,
            changed_at,
        })
    })();
    // A read transaction has nothing to keep: end it either way.
    let _ = conn.execute_batch("COMMIT");
    result
}

pub fn versions(
    conn: &Connection,
    identity: &str,
    id: i64,
) -> StoreResult<Option<Vec<VersionInfo>>> {
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
                etag: product_etag(identity, id, version),
                updated_at: ms_to_rfc3339(at),
                updated_by: r.get(2)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    Ok(if rows.is_empty() { None } else { Some(rows) })
}

pub fn version(
    conn: &Connection,
    identity: &str,
    id: i64,
    version: i64,
) -> StoreResult<Option<Stored>> {
    conn.prepare_cached(
        "SELECT product_id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by
         FROM versions WHERE product_id = ?1 AND version = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![id, version], |r| row_to_stored(identity, r))
            .optional()
    })
    .map_err(db_err)
}

/// Up to `limit` change-log rows after `after`, and the latest sequence, from one
/// snapshot. In SQLite one writer at a time assigns sequence numbers inside its
/// transaction, so every row up to `latest` is committed: no later commit can fill a hole.
/// The log resumes after `after` when its next change is there (or it is the latest).
pub fn changes_since(conn: &Connection, after: i64, limit: usize) -> StoreResult<LogPage> {
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let result = (|| {
        let mut stmt = conn
            .prepare_cached("SELECT seq, event FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(db_err)?;
        // At least one row, to tell whether the next change is still there.
        let rows = stmt
            .query_map(params![after, limit.max(1) as i64], |r| {
                Ok(LogRow {
                    cursor: Cursor::Seq(r.get(0)?),
                    event: r.get(1)?,
                    op: None,
                })
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        let latest = latest_seq(conn)?;
        let resumable = match rows.first() {
            Some(first) => first.cursor == Cursor::Seq(after + 1),
            None => latest == after,
        };
        let mut rows = rows;
        rows.truncate(limit);
        Ok(LogPage {
            rows,
            resumable,
            head: Cursor::Seq(latest),
            held: Held::default(),
        })
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

/// The record of `user`'s Idempotency-Key `key`, if a write with it took effect.
pub fn idempotency_key(conn: &Connection, user: &str, key: &str) -> StoreResult<Option<KeyRecord>> {
    conn.prepare_cached(
        "SELECT method, target, fingerprint, status, product_id, version, created_at_ms
         FROM idempotency_keys WHERE user = ?1 AND key = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![user, key], |r| {
            Ok(KeyRecord {
                method: r.get(0)?,
                target: r.get(1)?,
                fingerprint: r.get(2)?,
                status: r.get(3)?,
                product_id: r.get(4)?,
                version: r.get(5)?,
                created_at_ms: r.get(6)?,
            })
        })
        .optional()
    })
    .map_err(db_err)
}
