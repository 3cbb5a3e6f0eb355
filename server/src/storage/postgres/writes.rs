//! The writes: each is one statement (so one round trip and its own transaction, with no
//! BEGIN or COMMIT of its own) whose data-modifying CTEs do the compare-and-set, then,
//! fed by its RETURNING, the history row, the Idempotency-Key and the change-log row.
//! Nothing is shared between writes (no counter row, no NOTIFY): commits of every
//! instance share WAL flushes. A mismatch writes nothing and takes no transaction id;
//! only then is the current row read, for the 412's body.
//!
//! The invariant the feed's order rests on (STORAGE.md, per-record order under the
//! horizon): the version-checked UPDATE is the first write of its transaction, so the
//! transaction id (assigned at the first write) of a write that builds on version v is
//! taken after v's writer committed, and is larger than v's. The other CTEs insert only
//! rows fed by the UPDATE's RETURNING, so none of them can write (or call `nextval`,
//! which may take a transaction id) before it. Unconditional writes (the
//! `--allow-unconditional` demo) reach this module as version-checked writes of the
//! version the route just read, retried on a mismatch, so the invariant covers them.

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, ProductFields};
use deadpool_postgres::Object;
use tokio_postgres::error::SqlState;

use super::rows::{self, cursor_params, product_etag};
use super::{describe, pg_err};
use crate::storage::{
    Cursor, KeyClaim, KeyRecord, Lookup, StoreError, StoreResult, Write, ms_to_rfc3339, now_ms,
};

/// The Idempotency-Key CTE's parameters, all NULL without a key (the CTE then inserts
/// nothing).
struct KeyParams<'a> {
    user: Option<&'a str>,
    key: Option<&'a str>,
    method: Option<&'a str>,
    target: Option<&'a str>,
    fingerprint: Option<&'a str>,
}

fn key_params(key: Option<&KeyClaim>) -> KeyParams<'_> {
    KeyParams {
        user: key.map(|k| k.user.as_str()),
        key: key.map(|k| k.key.as_str()),
        method: key.map(|k| k.method.as_str()),
        target: key.map(|k| k.target.as_str()),
        fingerprint: key.map(|k| k.fingerprint.as_str()),
    }
}

/// The change event as stored, less its leading `{"seq":N,`: the statement prepends it
/// with the change-log row's id, known only there. The rest is serialised here.
fn event_tail(op: Op, product: &Product, at_ms: i64, by: &str) -> StoreResult<String> {
    let event = ChangeEvent {
        seq: 0,
        op,
        id: product.id,
        version: product.version,
        etag: product.etag.clone(),
        updated_by: by.to_string(),
        updated_at: ms_to_rfc3339(at_ms),
        product: product.clone(),
    };
    let json = serde_json::to_string(&event)
        .map_err(|e| StoreError::Database(format!("encoding a change event: {e}")))?;
    json.strip_prefix("{\"seq\":0,")
        .map(str::to_string)
        .ok_or_else(|| StoreError::Database("a change event that does not begin with seq".into()))
}

/// The change-log CTE, fed by the CTE `from` (one row when the write took effect):
/// `nextval` runs only for that row, so a write that matched nothing takes no id.
fn log_cte(from: &str, at: &str, tail: &str) -> String {
    format!(
        "c AS (
             INSERT INTO changes (id, at_ms, event)
             SELECT n.id, {at}, '{{\"seq\":' || n.id || ',' || {tail}
             FROM (SELECT nextval('changes_id_seq') AS id FROM {from}) n
             RETURNING id)"
    )
}

/// The Idempotency-Key CTE, fed by `from`'s `id`.
fn key_cte(from: &str, first: usize, status: i32, version: &str, at: &str) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "k AS (
             INSERT INTO idempotency_keys
                 (user_name, key, method, target, fingerprint, status, product_id, version, created_at_ms)
             SELECT {}, {}, {}, {}, {}, {status}, id, {version}, {at} FROM {from}
             WHERE {}::text IS NOT NULL)",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(1)
    )
}

/// A statement of a write failed (its transaction is rolled back: nothing of it was
/// kept): a taken Idempotency-Key is [`StoreError::KeyUsed`], a unique violation of the
/// live skus `DuplicateSku` naming the product that holds it.
async fn failed(client: &Object, e: tokio_postgres::Error, sku: Option<&str>) -> StoreError {
    let constraint = e
        .as_db_error()
        .and_then(|d| d.constraint())
        .map(str::to_string);
    if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
        return pg_err(e);
    }
    match (constraint.as_deref(), sku) {
        (Some("idempotency_keys_pkey"), _) => StoreError::KeyUsed,
        (Some("products_live_sku"), Some(sku)) => {
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
        _ => pg_err(e),
    }
}

/// Runs a write's statement, timing it as the commit it ends with.
async fn run(
    client: &Object,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    sku: Option<&str>,
) -> StoreResult<Option<tokio_postgres::Row>> {
    let started = std::time::Instant::now();
    match client.query_opt(stmt, params).await {
        Ok(row) => {
            crate::metrics::postgres_commit(started.elapsed());
            Ok(row)
        }
        // No SQLSTATE: the connection failed, perhaps after the commit.
        Err(e) if e.code().is_none() => Err(StoreError::Unavailable(format!(
            "the write did not complete ({}); it may or may not have been applied",
            describe(&e)
        ))),
        Err(e) => Err(failed(client, e, sku).await),
    }
}

pub async fn create(
    client: &mut Object,
    identity: &str,
    fields: &ProductFields,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<Product> {
    let at = now_ms();
    // The product's id first (no transaction of the write's: it is in the event, whose
    // ETag is minted here). An id drawn for a write that then fails is skipped, as any
    // identity value of a rolled-back insert is.
    let next_id = client
        .prepare_cached("SELECT nextval(pg_get_serial_sequence('products', 'id'))")
        .await
        .map_err(pg_err)?;
    let id: i64 = client
        .query_one(&next_id, &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(pg_err)?;
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
    let tail = event_tail(Op::Created, &product, at, user)?;
    let sql = format!(
        "WITH p AS (
             INSERT INTO products (id, sku, name, description, price_cents, status, version, updated_at_ms, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8) RETURNING id),
         h AS (
             INSERT INTO versions (product_id, version, sku, name, description, price_cents, status, updated_at_ms, updated_by)
             SELECT id, 1, $2, $3, $4, $5, $6, $7, $8 FROM p),
         {},
         {}
         SELECT c.id FROM c",
        key_cte("p", 9, 201, "1", "$7"),
        log_cte("p", "$7", "$14"),
    );
    let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
    let k = key_params(key);
    let status = fields.status.as_str();
    let logged = run(
        client,
        &stmt,
        &[
            &id,
            &fields.sku,
            &fields.name,
            &fields.description,
            &fields.price_cents,
            &status,
            &at,
            &user,
            &k.user,
            &k.key,
            &k.method,
            &k.target,
            &k.fingerprint,
            &tail,
        ],
        Some(&fields.sku),
    )
    .await?;
    if logged.is_none() {
        return Err(StoreError::Database(format!(
            "product {id} was not created by its own insert"
        )));
    }
    Ok(product)
}

pub async fn update(
    client: &mut Object,
    identity: &str,
    id: i64,
    expected_version: i64,
    fields: &ProductFields,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<Write<Product>> {
    let at = now_ms();
    let version = expected_version + 1;
    let product = Product {
        id,
        sku: fields.sku.clone(),
        name: fields.name.clone(),
        description: fields.description.clone(),
        price_cents: fields.price_cents,
        status: fields.status,
        version,
        updated_at: ms_to_rfc3339(at),
        updated_by: user.to_string(),
        etag: product_etag(identity, id, version),
    };
    let tail = event_tail(Op::Updated, &product, at, user)?;
    // The version-checked UPDATE is the transaction's first write (see the module's
    // invariant). Under READ COMMITTED a concurrent writer of the same row makes it wait
    // for that one's commit, then re-check its WHERE clause against the new row: of
    // racers holding the same version exactly one matches.
    let sql = format!(
        "WITH u AS (
             UPDATE products SET sku = $1, name = $2, description = $3, price_cents = $4, status = $5,
                 version = version + 1, updated_at_ms = $6, updated_by = $7
             WHERE id = $8 AND version = $9 AND NOT deleted
             RETURNING id, version),
         h AS (
             INSERT INTO versions (product_id, version, sku, name, description, price_cents, status, updated_at_ms, updated_by)
             SELECT id, version, $1, $2, $3, $4, $5, $6, $7 FROM u),
         {},
         {}
         SELECT c.id FROM c",
        key_cte("u", 10, 200, "version", "$6"),
        log_cte("u", "$6", "$15"),
    );
    let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
    let k = key_params(key);
    let status = fields.status.as_str();
    let logged = run(
        client,
        &stmt,
        &[
            &fields.sku,
            &fields.name,
            &fields.description,
            &fields.price_cents,
            &status,
            &at,
            &user,
            &id,
            &expected_version,
            &k.user,
            &k.key,
            &k.method,
            &k.target,
            &k.fingerprint,
            &tail,
        ],
        Some(&fields.sku),
    )
    .await?;
    if logged.is_some() {
        return Ok(Write::Done(product));
    }
    // The write matched nothing and wrote nothing: the state that beat it, for the 412.
    let now = rows::lookup(client, identity, id).await?;
    Ok(Write::Changed(Box::new(now)))
}

pub async fn delete(
    client: &mut Object,
    identity: &str,
    id: i64,
    expected_version: i64,
    user: &str,
    key: Option<&KeyClaim>,
) -> StoreResult<Write<()>> {
    let at = now_ms();
    // The delete event carries the last representation: read it first (no transaction
    // id); the version check below makes sure it is still the one deleted.
    let last = match rows::lookup(client, identity, id).await? {
        Lookup::Live(s) if s.product.version == expected_version => s.product,
        other => return Ok(Write::Changed(Box::new(other))),
    };
    let tail = event_tail(Op::Deleted, &last, at, user)?;
    let sql = format!(
        "WITH u AS (
             UPDATE products SET deleted = true, deleted_by = $1, deleted_at_ms = $2
             WHERE id = $3 AND version = $4 AND NOT deleted
             RETURNING id),
         {},
         {}
         SELECT c.id FROM c",
        key_cte("u", 5, 204, "$4", "$2"),
        log_cte("u", "$2", "$10"),
    );
    let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
    let k = key_params(key);
    let logged = run(
        client,
        &stmt,
        &[
            &user,
            &at,
            &id,
            &expected_version,
            &k.user,
            &k.key,
            &k.method,
            &k.target,
            &k.fingerprint,
            &tail,
        ],
        None,
    )
    .await?;
    if logged.is_some() {
        return Ok(Write::Done(()));
    }
    let now = rows::lookup(client, identity, id).await?;
    Ok(Write::Changed(Box::new(now)))
}

/// Drops the change-log rows at or before `published` except the `keep` latest, and
/// records the position pruned up to (in the same statement), so a resume from a pruned
/// position is told `reset`. Several instances may prune at once: the marker only moves
/// forward.
pub async fn prune(client: &Object, published: Cursor, keep: i64) -> StoreResult<()> {
    let (tx, id) = cursor_params(published);
    client
        .execute(
            "WITH cut AS (
                 SELECT tx, id, at_ms FROM changes
                 WHERE (tx, id) <= ($1::text::xid8, $2::bigint)
                 ORDER BY tx DESC, id DESC OFFSET $3 LIMIT 1),
             gone AS (
                 DELETE FROM changes c USING cut WHERE (c.tx, c.id) <= (cut.tx, cut.id))
             UPDATE feed_pruned f SET tx = cut.tx, id = cut.id, at_ms = cut.at_ms
             FROM cut WHERE (cut.tx, cut.id) > (f.tx, f.id)",
            &[&tx, &id, &keep.max(0)],
        )
        .await
        .map_err(pg_err)?;
    Ok(())
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
