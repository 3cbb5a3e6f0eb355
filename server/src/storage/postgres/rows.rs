//! Reading products, their history and the change log out of PostgreSQL rows: the
//! statements the writes and the reads share.

use std::time::SystemTime;

use catalog_shared::product::{Product, Status};
use tokio_postgres::{GenericClient, Row};

use super::pg_err;
use crate::storage::{
    Deletion, LogPage, LogRow, Lookup, StoreResult, Stored, VersionInfo, mint_etag, ms_to_rfc3339,
    ms_to_time,
};

pub const PRODUCT_COLUMNS: &str =
    "id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by";

pub fn product_etag(identity: &str, id: i64, version: i64) -> String {
    mint_etag(identity, "product", id, version)
}

/// A row of `PRODUCT_COLUMNS` (or the same columns of `versions`).
pub fn row_to_stored(identity: &str, r: &Row) -> Result<Stored, tokio_postgres::Error> {
    let id: i64 = r.try_get(0)?;
    let version: i64 = r.try_get(6)?;
    let at: i64 = r.try_get(7)?;
    let status: String = r.try_get(5)?;
    Ok(Stored {
        product: Product {
            id,
            sku: r.try_get(1)?,
            name: r.try_get(2)?,
            description: r.try_get(3)?,
            price_cents: r.try_get(4)?,
            status: status.parse().unwrap_or(Status::Discontinued),
            version,
            updated_at: ms_to_rfc3339(at),
            updated_by: r.try_get(8)?,
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

pub async fn lookup(c: &impl GenericClient, identity: &str, id: i64) -> StoreResult<Lookup> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}, deleted, deleted_by, deleted_at_ms FROM products WHERE id = $1"
    );
    let row = c.query_opt(&sql, &[&id]).await.map_err(pg_err)?;
    match row {
        None => Ok(Lookup::Missing),
        Some(r) => row_to_lookup(identity, &r).map_err(pg_err),
    }
}

/// The latest change sequence number and when it happened (the epoch for an empty log),
/// kept by the counter row even after the log is pruned.
pub async fn latest(c: &impl GenericClient) -> StoreResult<(i64, SystemTime)> {
    let r = c
        .query_one("SELECT seq, at_ms FROM feed_counter", &[])
        .await
        .map_err(pg_err)?;
    let seq: i64 = r.try_get(0).map_err(pg_err)?;
    let at: i64 = r.try_get(1).map_err(pg_err)?;
    Ok((seq, ms_to_time(at)))
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

/// Up to `limit` change-log rows after `after`, and the latest sequence, in one
/// statement (so from one snapshot). Sequence numbers come from the counter row, whose
/// lock a writer holds until it commits: a row is visible only once every row before it
/// is, so nothing read here can later be preceded by a late commit.
pub async fn changes_since(
    c: &impl GenericClient,
    after: i64,
    limit: usize,
) -> StoreResult<LogPage> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "SELECT f.seq, c.seq, c.event
             FROM feed_counter f
             LEFT JOIN LATERAL (
                 SELECT seq, event FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2
             ) c ON true
             ORDER BY c.seq",
            &[&after, &limit],
        )
        .await
        .map_err(pg_err)?;
    let mut latest = 0;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        latest = r.try_get(0).map_err(pg_err)?;
        let seq: Option<i64> = r.try_get(1).map_err(pg_err)?;
        let event: Option<String> = r.try_get(2).map_err(pg_err)?;
        if let (Some(seq), Some(event)) = (seq, event) {
            out.push(LogRow {
                seq,
                event,
                op: None,
            });
        }
    }
    Ok(LogPage { rows: out, latest })
}
