//! The writes: each is one transaction holding the compare-and-set, the history row and
//! the change-log row. The log's sequence number comes from the counter row, taken last
//! so its lock (which orders every writer of every instance) is held only from there to
//! the commit.

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, ProductFields};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::error::SqlState;

use super::rows::{self, PRODUCT_COLUMNS, product_etag, row_to_stored};
use super::{NOTIFY_CHANNEL, pg_err};
use crate::storage::{
    KeyClaim, KeyRecord, LogRow, StoreError, StoreResult, Write, ms_to_rfc3339, now_ms,
};

pub async fn create(
    client: &mut Object,
    identity: &str,
    fields: &ProductFields,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<(Product, LogRow)> {
    let at = now_ms();
    let tx = client.transaction().await.map_err(pg_err)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO products (sku, name, description, price_cents, status, version, updated_at_ms, updated_by)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7) RETURNING id",
        )
        .await
        .map_err(pg_err)?;
    let inserted = tx
        .query_one(
            &stmt,
            &[
                &fields.sku,
                &fields.name,
                &fields.description,
                &fields.price_cents,
                &fields.status.as_str(),
                &at,
                &user,
            ],
        )
        .await;
    let id: i64 = match inserted.and_then(|r| r.try_get(0)) {
        Ok(id) => id,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(failed(client, e, &fields.sku).await);
        }
    };
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
        etag: product_etag(identity, id, 1),
    };
    remember_key(&tx, key, 201, id, 1, at).await?;
    let row = record(&tx, Op::Created, &product, at, user).await?;
    commit(tx).await?;
    Ok((product, row))
}

pub async fn update(
    client: &mut Object,
    identity: &str,
    id: i64,
    expected_version: i64,
    fields: &ProductFields,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<(Write<Product>, Option<LogRow>)> {
    let at = now_ms();
    let tx = client.transaction().await.map_err(pg_err)?;
    let sql = format!(
        "UPDATE products SET sku = $1, name = $2, description = $3, price_cents = $4, status = $5,
             version = version + 1, updated_at_ms = $6, updated_by = $7
         WHERE id = $8 AND version = $9 AND NOT deleted
         RETURNING {PRODUCT_COLUMNS}"
    );
    let stmt = tx.prepare_cached(&sql).await.map_err(pg_err)?;
    // Under READ COMMITTED a concurrent writer of the same row makes this wait for its
    // commit, then re-checks the WHERE clause against the new row: of racers holding
    // the same version exactly one matches.
    let changed = tx
        .query_opt(
            &stmt,
            &[
                &fields.sku,
                &fields.name,
                &fields.description,
                &fields.price_cents,
                &fields.status.as_str(),
                &at,
                &user,
                &id,
                &expected_version,
            ],
        )
        .await;
    let row = match changed {
        Ok(row) => row,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(failed(client, e, &fields.sku).await);
        }
    };
    let Some(row) = row else {
        // The statement's own snapshot is gone: this read sees the state that beat us.
        let now = rows::lookup(&*tx, identity, id).await?;
        let _ = tx.rollback().await;
        return Ok((Write::Changed(Box::new(now)), None));
    };
    let stored = row_to_stored(identity, &row).map_err(pg_err)?;
    remember_key(&tx, key, 200, id, stored.product.version, at).await?;
    let log = record(&tx, Op::Updated, &stored.product, at, user).await?;
    commit(tx).await?;
    Ok((Write::Done(stored.product), Some(log)))
}

pub async fn delete(
    client: &mut Object,
    identity: &str,
    id: i64,
    expected_version: i64,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<(Write<()>, Option<LogRow>)> {
    let at = now_ms();
    let tx = client.transaction().await.map_err(pg_err)?;
    let sql = format!(
        "UPDATE products SET deleted = true, deleted_by = $1, deleted_at_ms = $2
         WHERE id = $3 AND version = $4 AND NOT deleted
         RETURNING {PRODUCT_COLUMNS}"
    );
    let stmt = tx.prepare_cached(&sql).await.map_err(pg_err)?;
    let row = tx
        .query_opt(&stmt, &[&user, &at, &id, &expected_version])
        .await
        .map_err(pg_err)?;
    let Some(row) = row else {
        let now = rows::lookup(&*tx, identity, id).await?;
        let _ = tx.rollback().await;
        return Ok((Write::Changed(Box::new(now)), None));
    };
    let last = row_to_stored(identity, &row).map_err(pg_err)?.product;
    remember_key(&tx, key, 204, id, expected_version, at).await?;
    let log = record(&tx, Op::Deleted, &last, at, user).await?;
    commit(tx).await?;
    Ok((Write::Done(()), Some(log)))
}

/// Drops change-log rows up to `upto`.
pub async fn prune(client: &Object, upto: i64) -> StoreResult<()> {
    client
        .execute("DELETE FROM changes WHERE seq <= $1", &[&upto])
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// Records the write's Idempotency-Key with its outcome, in the write's transaction. A key
/// another transaction holds makes this wait for it; once that one commits, this is a
/// unique violation: [`StoreError::KeyUsed`], and the caller's transaction is dropped
/// (rolled back) with nothing of the write kept.
async fn remember_key(
    tx: &Transaction<'_>,
    key: Option<&KeyClaim>,
    status: i32,
    product_id: i64,
    version: i64,
    at_ms: i64,
) -> StoreResult<()> {
    let Some(k) = key else {
        return Ok(());
    };
    let stmt = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (user_name, key, method, target, fingerprint, status, product_id, version, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(pg_err)?;
    match tx
        .execute(
            &stmt,
            &[
                &k.user,
                &k.key,
                &k.method,
                &k.target,
                &k.fingerprint,
                &status,
                &product_id,
                &version,
                &at_ms,
            ],
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::KeyUsed),
        Err(e) => Err(pg_err(e)),
    }
}

/// The record of `user`'s Idempotency-Key `key`.
pub async fn key_record(client: &Object, user: &str, key: &str) -> StoreResult<Option<KeyRecord>> {
    let stmt = client
        .prepare_cached(
            "SELECT method, target, fingerprint, status, product_id, version, created_at_ms
             FROM idempotency_keys WHERE user_name = $1 AND key = $2",
        )
        .await
        .map_err(pg_err)?;
    let Some(r) = client
        .query_opt(&stmt, &[&user, &key])
        .await
        .map_err(pg_err)?
    else {
        return Ok(None);
    };
    let record = (|| -> Result<KeyRecord, tokio_postgres::Error> {
        let status: i32 = r.try_get(3)?;
        Ok(KeyRecord {
            method: r.try_get(0)?,
            target: r.try_get(1)?,
            fingerprint: r.try_get(2)?,
            status: u16::try_from(status).unwrap_or(500),
            product_id: r.try_get(4)?,
            version: r.try_get(5)?,
            created_at_ms: r.try_get(6)?,
        })
    })()
    .map_err(pg_err)?;
    Ok(Some(record))
}

/// Forgets the keys recorded before `before_ms`.
pub async fn prune_keys(client: &Object, before_ms: i64) -> StoreResult<u64> {
    client
        .execute(
            "DELETE FROM idempotency_keys WHERE created_at_ms < $1",
            &[&before_ms],
        )
        .await
        .map_err(pg_err)
}

/// Records the new version in the history and the change in the change log, in the
/// caller's transaction, and asks PostgreSQL to wake the other instances when (and only
/// if) it commits. Returns the change-log row.
async fn record(
    tx: &Transaction<'_>,
    op: Op,
    product: &Product,
    at_ms: i64,
    by: &str,
) -> StoreResult<LogRow> {
    if op != Op::Deleted {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO versions (product_id, version, sku, name, description, price_cents, status, updated_at_ms, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(
            &stmt,
            &[
                &product.id,
                &product.version,
                &product.sku,
                &product.name,
                &product.description,
                &product.price_cents,
                &product.status.as_str(),
                &at_ms,
                &by,
            ],
        )
        .await
        .map_err(pg_err)?;
    }
    // The row lock taken here is held to commit: the next writer (of any instance)
    // waits for it, so sequence order is commit order and no number is skipped.
    let stmt = tx
        .prepare_cached(
            "UPDATE feed_counter SET seq = seq + 1, at_ms = GREATEST(at_ms, $1) RETURNING seq",
        )
        .await
        .map_err(pg_err)?;
    let seq: i64 = tx
        .query_one(&stmt, &[&at_ms])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(pg_err)?;
    let event = ChangeEvent::from_product(seq, op, product.clone()).by(by, ms_to_rfc3339(at_ms));
    let json = serde_json::to_string(&event)
        .map_err(|e| StoreError::Database(format!("encoding a change event: {e}")))?;
    let stmt = tx
        .prepare_cached("INSERT INTO changes (seq, at_ms, event) VALUES ($1, $2, $3)")
        .await
        .map_err(pg_err)?;
    tx.execute(&stmt, &[&seq, &at_ms, &json])
        .await
        .map_err(pg_err)?;
    // Delivered at commit, never for a rolled-back write; it carries nothing the log
    // does not say, it only wakes the listeners.
    let stmt = tx
        .prepare_cached(&format!("SELECT pg_notify('{NOTIFY_CHANNEL}', $1)"))
        .await
        .map_err(pg_err)?;
    tx.execute(&stmt, &[&seq.to_string()])
        .await
        .map_err(pg_err)?;
    Ok(LogRow {
        seq,
        event: json,
        op: Some(op),
    })
}

async fn commit(tx: Transaction<'_>) -> StoreResult<()> {
    let committing = std::time::Instant::now();
    tx.commit().await.map_err(|e| match pg_err(e) {
        StoreError::Unavailable(m) | StoreError::Database(m) => StoreError::Unavailable(format!(
            "the commit did not complete ({m}); the write may or may not have been applied"
        )),
        other => other,
    })?;
    crate::metrics::postgres_commit(committing.elapsed());
    Ok(())
}

/// A statement of a write failed (its transaction already rolled back): a unique
/// violation of the live skus becomes `DuplicateSku` naming the product that holds it.
async fn failed(client: &Object, e: tokio_postgres::Error, sku: &str) -> StoreError {
    let duplicate = e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some("products_live_sku");
    if !duplicate {
        return pg_err(e);
    }
    // The product that holds the sku committed (a violation is raised only then).
    let existing_id = client
        .query_opt(
            "SELECT id FROM products WHERE sku = $1 AND NOT deleted",
            &[&sku],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get(0).ok())
        .unwrap_or(0);
    StoreError::DuplicateSku {
        sku: sku.to_string(),
        existing_id,
    }
}
