//! Reading products, their history and the change log out of PostgreSQL rows: the
//! statements the writes and the reads share, and the change log read below the snapshot
//! horizon (STORAGE.md).

use std::time::SystemTime;

use catalog_shared::product::{Product, Status};
use deadpool_postgres::Object;
use tokio_postgres::{GenericClient, Row};

use super::pg_err;
use crate::storage::{
    Cursor, Deletion, Held, LogPage, LogRow, Lookup, Page, StoreError, StoreResult, Stored,
    VersionInfo, mint_etag, ms_to_rfc3339, ms_to_time,
};

pub const PRODUCT_COLUMNS: &str =
    "id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by";

pub fn product_etag(identity: &str, id: i64, version: i64) -> String {
    mint_etag(identity, "product", id, version)
}

/// A row of `PRODUCT_COLUMNS` (or the same columns of `versions`).
pub fn row_to_stored(identity: &str, r: &Row) -> Result<Stored, tokio_postgres::Error> {
    row_to_stored_at(identity, r, 0)
}

/// `PRODUCT_COLUMNS` starting at column `f`.
fn row_to_stored_at(identity: &str, r: &Row, f: usize) -> Result<Stored, tokio_postgres::Error> {
    let id: i64 = r.try_get(f)?;
    let version: i64 = r.try_get(f + 6)?;
    let at: i64 = r.try_get(f + 7)?;
    let status: String = r.try_get(f + 5)?;
    Ok(Stored {
        product: Product {
            id,
            sku: r.try_get(f + 1)?,
            name: r.try_get(f + 2)?,
            description: r.try_get(f + 3)?,
            price_cents: r.try_get(f + 4)?,
            status: status.parse().unwrap_or(Status::Discontinued),
            version,
            updated_at: ms_to_rfc3339(at),
            updated_by: r.try_get(f + 8)?,
            etag: product_etag(identity, id, version),
        },
        last_modified: ms_to_time(at),
    })
}

/// A row of `PRODUCT_COLUMNS` followed by `deleted, deleted_by, deleted_at_ms`.
pub fn row_to_lookup(identity: &str, r: &Row) -> Result<Lookup, tokio_postgres::Error> {
    let stored = row_to_stored(identity, r)?;
    let deleted: bool = r.try_get(9)?;
    Ok(if deleted {
        let by: Option<String> = r.try_get(10)?;
        let at: Option<i64> = r.try_get(11)?;
        Lookup::Deleted(Deletion {
            by: by.unwrap_or_default(),
            at: ms_to_rfc3339(at.unwrap_or(0)),
            last: stored.product,
        })
    } else {
        Lookup::Live(stored)
    })
}

/// A product's row, by a statement prepared once per connection (one round trip).
pub async fn lookup(c: &Object, identity: &str, id: i64) -> StoreResult<Lookup> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}, deleted, deleted_by, deleted_at_ms FROM products WHERE id = $1"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    let row = c.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
    match row {
        None => Ok(Lookup::Missing),
        Some(r) => row_to_lookup(identity, &r).map_err(pg_err),
    }
}

pub async fn versions(
    c: &impl GenericClient,
    identity: &str,
    id: i64,
) -> StoreResult<Option<Vec<VersionInfo>>> {
    let rows = c
        .query(
            "SELECT version, updated_at_ms, updated_by FROM versions WHERE product_id = $1 ORDER BY version",
            &[&id],
        )
        .await
        .map_err(pg_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let version: i64 = r.try_get(0).map_err(pg_err)?;
        let at: i64 = r.try_get(1).map_err(pg_err)?;
        out.push(VersionInfo {
            version,
            etag: product_etag(identity, id, version),
            updated_at: ms_to_rfc3339(at),
            updated_by: r.try_get(2).map_err(pg_err)?,
        });
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

pub async fn version(
    c: &impl GenericClient,
    identity: &str,
    id: i64,
    version: i64,
) -> StoreResult<Option<Stored>> {
    let row = c
        .query_opt(
            "SELECT product_id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by
             FROM versions WHERE product_id = $1 AND version = $2",
            &[&id, &version],
        )
        .await
        .map_err(pg_err)?;
    row.map(|r| row_to_stored(identity, &r))
        .transpose()
        .map_err(pg_err)
}

/// The horizon of a statement's snapshot: `pg_snapshot_xmin`, the oldest transaction
/// still running anywhere in the cluster when the statement began. Every transaction
/// below it has ended, so the change-log rows below it are final: none can still appear
/// between them. The statements using it are single statements on a session that holds
/// no transaction id, so their own snapshot is the one the horizon is taken from.
const HORIZON: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin";

/// The latest publishable position (the horizon cursor): the last change-log row below
/// the horizon, or the position the log was pruned up to. `$1`-free SQL, one row.
const HEAD: &str = "
    SELECT COALESCE(b.tx, p.tx) AS tx, COALESCE(b.id, p.id) AS id,
           COALESCE(b.at_ms, p.at_ms) AS at_ms
    FROM feed_pruned p LEFT JOIN LATERAL (
        SELECT c.tx, c.id, c.at_ms FROM changes c, h WHERE c.tx < h.xmin
        ORDER BY c.tx DESC, c.id DESC LIMIT 1
    ) b ON true";

/// What a list shows beside its products, from the same snapshot: the horizon cursor,
/// and how many committed changes sit above it (and the latest's time). A snapshot
/// shows every change below the horizon cursor and some above it; of two snapshots
/// with the same horizon cursor, a later one shows at least the earlier one's changes
/// above it, so (cursor, count above) differ whenever what the list shows can differ.
const LIST_STATE: &str = "
    SELECT hd.tx::text AS head_tx, hd.id AS head_id, above.n AS above,
           GREATEST(hd.at_ms, above.at_ms) AS at_ms
    FROM hd CROSS JOIN LATERAL (
        SELECT count(*) AS n, max(a.at_ms) AS at_ms FROM (
            SELECT c.at_ms FROM changes c WHERE (c.tx, c.id) > (hd.tx, hd.id)
            ORDER BY c.tx, c.id LIMIT 100000
        ) a
    ) above";

fn list_state_sql() -> String {
    format!("WITH h AS ({HORIZON}), hd AS ({HEAD}) {LIST_STATE}")
}

/// The list's validators from the columns `head_tx, head_id, above, at_ms` at `first`.
fn list_token(r: &Row, first: usize) -> Result<(i64, SystemTime), tokio_postgres::Error> {
    let tx: String = r.try_get(first)?;
    let id: i64 = r.try_get(first + 1)?;
    let above: i64 = r.try_get(first + 2)?;
    let at: i64 = r.try_get(first + 3)?;
    // FNV-1a: the same number on every instance for the same state.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tx
        .bytes()
        .chain([b'.'])
        .chain(id.to_le_bytes())
        .chain(above.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(((h >> 1) as i64, ms_to_time(at)))
}

/// The list's validators now (see [`LIST_STATE`]).
pub async fn list_version(c: &Object) -> StoreResult<(i64, SystemTime)> {
    let stmt = c.prepare_cached(&list_state_sql()).await.map_err(pg_err)?;
    let r = c.query_one(&stmt, &[]).await.map_err(pg_err)?;
    list_token(&r, 0).map_err(pg_err)
}

/// One page of the live products and its validators, in one statement (one snapshot).
pub async fn list(c: &Object, identity: &str, after: i64, limit: usize) -> StoreResult<Page> {
    let sql = format!(
        "WITH h AS ({HORIZON}), hd AS ({HEAD}), st AS ({LIST_STATE})
         SELECT st.head_tx, st.head_id, st.above, st.at_ms, p.*
         FROM st LEFT JOIN LATERAL (
             SELECT {PRODUCT_COLUMNS} FROM products
             WHERE NOT deleted AND id > $1 ORDER BY id LIMIT $2
         ) p ON true
         ORDER BY p.id"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    let want = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let found = c.query(&stmt, &[&after, &want]).await.map_err(pg_err)?;
    let first = found
        .first()
        .ok_or_else(|| StoreError::Database("the list statement returned no row".into()))?;
    let (seq, changed_at) = list_token(first, 0).map_err(pg_err)?;
    let mut items = Vec::with_capacity(found.len().min(limit));
    for r in &found {
        // A row without a product: the list is empty (the LEFT JOIN's one row).
        let id: Option<i64> = r.try_get(4).map_err(pg_err)?;
        if id.is_none() || items.len() == limit {
            continue;
        }
        items.push(row_to_stored_at(identity, r, 4).map_err(pg_err)?.product);
    }
    Ok(Page {
        items,
        more: found.len() > limit,
        seq,
        changed_at,
    })
}

/// The latest publishable position.
pub async fn head(c: &impl GenericClient) -> StoreResult<Cursor> {
    let sql = format!("WITH h AS ({HORIZON}) SELECT tx::text, id FROM ({HEAD}) hd");
    let r = c.query_one(&sql, &[]).await.map_err(pg_err)?;
    cursor_at(&r, 0)
}

/// A cursor from the columns `tx::text, id` at `first`.
fn cursor_at(r: &Row, first: usize) -> StoreResult<Cursor> {
    let tx: String = r.try_get(first).map_err(pg_err)?;
    let id: i64 = r.try_get(first + 1).map_err(pg_err)?;
    let tx = tx.parse().map_err(|_| {
        StoreError::Database(format!("a transaction id that is not a number: {tx}"))
    })?;
    Ok(Cursor::Tx { tx, id })
}

/// The cursor's parts as bound: xid8 travels as text.
pub fn cursor_params(cursor: Cursor) -> (String, i64) {
    match cursor {
        Cursor::Tx { tx, id } => (tx.to_string(), id),
        // Never a position of this log: before everything, and known to no row.
        Cursor::Seq(_) => ("0".to_string(), -1),
    }
}

/// Up to `limit` change-log rows after `after` and below the horizon, in (tx, id) order,
/// in one statement on a session that holds no transaction id (a pooled connection in
/// autocommit): rows below the horizon are final, so every instance publishes the same
/// sequence, and a transaction committing late (it began before others) is published
/// after them rather than lost. With the page: whether `after` is a position of this log
/// (the position it was pruned up to, or a row below the horizon; anything else, pruned
/// or unknown, is `reset`), the horizon cursor, and the committed rows still above it.
pub async fn changes_since(c: &Object, after: Cursor, limit: usize) -> StoreResult<LogPage> {
    let (after_tx, after_id) = cursor_params(after);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "WITH h AS ({HORIZON}), a AS (SELECT $1::text::xid8 AS tx, $2::bigint AS id)
         SELECT hd.tx::text, hd.id,
                (a.tx, a.id) = (p.tx, p.id) OR EXISTS (
                    SELECT 1 FROM changes c WHERE c.tx = a.tx AND c.id = a.id AND c.tx < h.xmin
                ) AS known,
                held.n, held.oldest,
                r.tx::text, r.id, r.event
         FROM h CROSS JOIN a CROSS JOIN feed_pruned p
         CROSS JOIN ({HEAD}) hd
         CROSS JOIN LATERAL (
             SELECT count(*) AS n, min(above.at_ms) AS oldest FROM (
                 SELECT c.at_ms FROM changes c WHERE c.tx >= h.xmin ORDER BY c.tx LIMIT 100000
             ) above
         ) held
         LEFT JOIN LATERAL (
             SELECT c.tx, c.id, c.event FROM changes c
             WHERE (c.tx, c.id) > (a.tx, a.id) AND c.tx < h.xmin
             ORDER BY c.tx, c.id LIMIT $3
         ) r ON true
         ORDER BY r.tx, r.id"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    let found = c
        .query(&stmt, &[&after_tx, &after_id, &limit])
        .await
        .map_err(pg_err)?;
    let first = found
        .first()
        .ok_or_else(|| StoreError::Database("the change-log statement returned no row".into()))?;
    let head = cursor_at(first, 0)?;
    let known: bool = first.try_get(2).map_err(pg_err)?;
    let held = Held {
        changes: first.try_get(3).map_err(pg_err)?,
        oldest_ms: first.try_get(4).map_err(pg_err)?,
    };
    let mut rows = Vec::with_capacity(found.len());
    for r in &found {
        let tx: Option<String> = r.try_get(5).map_err(pg_err)?;
        if tx.is_none() {
            continue;
        }
        rows.push(LogRow {
            cursor: cursor_at(r, 5)?,
            event: r.try_get(7).map_err(pg_err)?,
            op: None,
        });
    }
    Ok(LogPage {
        rows,
        resumable: known && matches!(after, Cursor::Tx { .. }),
        head,
        held,
    })
}
