//! The single writer: one thread owns the only connection that writes. Requests arrive
//! on a bounded queue; the writer takes everything waiting (up to a batch limit), runs
//! each compare-and-set in its own SAVEPOINT inside one transaction, commits once (one
//! fsync for the whole batch), and only then answers each request. Under light load a
//! batch is one request; under load batches grow by themselves.

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, ProductFields};
use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::db_err;
use super::rows::{self, product_etag};
use crate::storage::{
    Cursor, KeyClaim, LogRow, Lookup, StoreError, StoreResult, Write, ms_to_rfc3339, now_ms,
};

/// A write to run in the next batch.
#[derive(Debug)]
pub enum WriteOp {
    Create {
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    },
    Update {
        id: i64,
        expected_version: i64,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    },
    Delete {
        id: i64,
        expected_version: i64,
        user: String,
        key: Option<KeyClaim>,
    },
    /// Drops change-log rows up to this sequence number.
    Prune { upto: i64 },
    /// Forgets Idempotency-Keys recorded before this time (ms since the epoch).
    PruneKeys { before_ms: i64 },
    /// Runs raw SQL on the write connection (tests use it to cause disk faults).
    #[cfg(test)]
    Exec(String),
    /// Holds the writer until the sender is dropped or sends (tests fill the queue).
    #[cfg(test)]
    Hold {
        entered: std::sync::mpsc::Sender<()>,
        release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    },
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created(Product),
    Updated(Write<Product>),
    Deleted(Write<()>),
    Pruned,
    PrunedKeys(u64),
}

impl Outcome {
    /// Whether this outcome changed the database (and so its savepoint is kept).
    fn wrote(&self) -> bool {
        matches!(
            self,
            Outcome::Created(_)
                | Outcome::Updated(Write::Done(_))
                | Outcome::Deleted(Write::Done(_))
                | Outcome::Pruned
                | Outcome::PrunedKeys(_)
        )
    }
}

pub struct Request {
    pub op: WriteOp,
    pub reply: oneshot::Sender<StoreResult<Outcome>>,
}

/// Called after each durable commit with the latest sequence number it wrote. It wakes
/// the feed; if it fails, the answers are not affected (the writes are committed) and
/// the feed finds the changes in the log at its next poll.
pub type AfterCommit = Box<dyn FnMut(&[LogRow]) -> Result<(), String> + Send>;

/// The writer's loop; runs on its own thread until every sender is gone.
pub fn run(
    mut conn: Connection,
    identity: String,
    mut queue: mpsc::Receiver<Request>,
    batch_limit: usize,
    mut after_commit: AfterCommit,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(batch_limit);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_limit {
            match queue.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let ops: Vec<&WriteOp> = batch.iter().map(|r| &r.op).collect();
        match execute_batch(&mut conn, &identity, &ops) {
            Ok(done) => {
                if let Some(seq) = done.last_seq
                    && let Err(e) = after_commit(&done.rows)
                {
                    tracing::warn!(
                        "after commit of seq {seq}: {e}; the feed will find the changes in the log"
                    );
                }
                for (request, result) in batch.drain(..).zip(done.results) {
                    // A requester that went away (its client disconnected) needs no answer.
                    let _ = request.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(size = batch.len(), "a write batch failed: {e}");
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(clone_err(&e)));
                }
            }
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::DuplicateSku { sku, existing_id } => StoreError::DuplicateSku {
            sku: sku.clone(),
            existing_id: *existing_id,
        },
        StoreError::KeyUsed => StoreError::KeyUsed,
        StoreError::Busy(m) => StoreError::Busy(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Database(m) => StoreError::Database(m.clone()),
    }
}

/// The result of one committed batch: one answer per request, in order.
pub struct Committed {
    pub results: Vec<StoreResult<Outcome>>,
    /// The latest change sequence number the batch wrote, if it wrote any.
    pub last_seq: Option<i64>,
    /// The change-log rows the batch wrote, in order.
    pub rows: Vec<LogRow>,
}

/// Runs a batch in one transaction, each write in its own savepoint; a write that fails
/// (precondition, constraint, fault) rolls back its savepoint alone. Commits once. An
/// `Err` means the transaction did not commit: nothing of the batch was written.
pub fn execute_batch(
    conn: &mut Connection,
    identity: &str,
    ops: &[&WriteOp],
) -> StoreResult<Committed> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
    let mut results = Vec::with_capacity(ops.len());
    let mut rows = Vec::new();
    for op in ops {
        if let Err(e) = conn.execute_batch("SAVEPOINT write") {
            rollback(conn);
            return Err(db_err(e));
        }
        let result = apply(conn, identity, op);
        if conn.is_autocommit() {
            // Some faults (a full disk, an I/O error) make SQLite roll back the whole
            // transaction: every write of the batch so far is undone, so all of them get
            // this error; none is acknowledged.
            return Err(match result {
                Err(e) => e,
                Ok(_) => StoreError::Database("the batch's transaction ended early".into()),
            });
        }
        let end = match &result {
            Ok((outcome, _)) if outcome.wrote() => "RELEASE write",
            _ => "ROLLBACK TO write; RELEASE write",
        };
        if let Err(e) = conn.execute_batch(end) {
            rollback(conn);
            return Err(db_err(e));
        }
        results.push(result.map(|(outcome, row)| {
            rows.extend(row);
            outcome
        }));
    }
    let committing = std::time::Instant::now();
    if let Err(e) = conn.execute_batch("COMMIT") {
        rollback(conn);
        return Err(db_err(e));
    }
    crate::metrics::sqlite_batch(ops.len(), committing.elapsed());
    let last_seq = rows.last().map(|r| r.cursor.number());
    Ok(Committed {
        results,
        last_seq,
        rows,
    })
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
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

/// One write, inside its savepoint. Returns its outcome and the change sequence number
/// it logged, if any.
fn apply(
    conn: &Connection,
    identity: &str,
    op: &WriteOp,
) -> StoreResult<(Outcome, Option<LogRow>)> {
    let at = now_ms();
    match op {
        WriteOp::Create { fields, user, key } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO products (sku, name, description, price_cents, status, version, updated_at_ms, updated_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        fields.sku,
                        fields.name,
                        fields.description,
                        fields.price_cents,
                        fields.status.as_str(),
                        at,
                        user
                    ])
                });
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(duplicate_sku(conn, &fields.sku)),
                Err(e) => return Err(db_err(e)),
            }
            let id = conn.last_insert_rowid();
            let product = Product {
                id,
                sku: fields.sku.clone(),
                name: fields.name.clone(),
                description: fields.description.clone(),
                price_cents: fields.price_cents,
                status: fields.status,
                version: 1,
                updated_at: ms_to_rfc3339(at),
                updated_by: user.clone(),
                etag: product_etag(identity, id, 1),
            };
            let row = record(conn, Op::Created, &product, at, user)?;
            remember_key(conn, key.as_ref(), 201, id, 1, at)?;
            Ok((Outcome::Created(product), Some(row)))
        }
        WriteOp::Update {
            id,
            expected_version,
            fields,
            user,
            key,
        } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE products SET sku = ?1, name = ?2, description = ?3, price_cents = ?4, status = ?5,
                         version = version + 1, updated_at_ms = ?6, updated_by = ?7
                     WHERE id = ?8 AND version = ?9 AND deleted = 0",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        fields.sku,
                        fields.name,
                        fields.description,
                        fields.price_cents,
                        fields.status.as_str(),
                        at,
                        user,
                        id,
                        expected_version
                    ])
                });
            match changed {
                Ok(1) => {}
                Ok(_) => {
                    let now = rows::lookup(conn, identity, *id)?;
                    return Ok((Outcome::Updated(Write::Changed(Box::new(now))), None));
                }
                Err(e) if is_unique_violation(&e) => return Err(duplicate_sku(conn, &fields.sku)),
                Err(e) => return Err(db_err(e)),
            }
            let Lookup::Live(stored) = rows::lookup(conn, identity, *id)? else {
                return Err(StoreError::Database(format!(
                    "product {id} vanished inside its own update"
                )));
            };
            let row = record(conn, Op::Updated, &stored.product, at, user)?;
            let version = stored.product.version;
            remember_key(conn, key.as_ref(), 200, *id, version, at)?;
            Ok((Outcome::Updated(Write::Done(stored.product)), Some(row)))
        }
        WriteOp::Delete {
            id,
            expected_version,
            user,
            key,
        } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE products SET deleted = 1, deleted_by = ?1, deleted_at_ms = ?2
                     WHERE id = ?3 AND version = ?4 AND deleted = 0",
                )
                .and_then(|mut s| s.execute(params![user, at, id, expected_version]))
                .map_err(db_err)?;
            if changed != 1 {
                let now = rows::lookup(conn, identity, *id)?;
                return Ok((Outcome::Deleted(Write::Changed(Box::new(now))), None));
            }
            let Lookup::Deleted(deletion) = rows::lookup(conn, identity, *id)? else {
                return Err(StoreError::Database(format!(
                    "product {id} not deleted by its own delete"
                )));
            };
            let row = record(conn, Op::Deleted, &deletion.last, at, user)?;
            remember_key(conn, key.as_ref(), 204, *id, *expected_version, at)?;
            Ok((Outcome::Deleted(Write::Done(())), Some(row)))
        }
        WriteOp::Prune { upto } => {
            conn.prepare_cached("DELETE FROM changes WHERE seq <= ?1")
                .and_then(|mut s| s.execute([upto]))
                .map_err(db_err)?;
            Ok((Outcome::Pruned, None))
        }
        WriteOp::PruneKeys { before_ms } => {
            let gone = conn
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at_ms < ?1")
                .and_then(|mut s| s.execute([before_ms]))
                .map_err(db_err)?;
            Ok((Outcome::PrunedKeys(gone as u64), None))
        }
        #[cfg(test)]
        WriteOp::Exec(sql) => {
            conn.execute_batch(sql).map_err(db_err)?;
            Ok((Outcome::Pruned, None))
        }
        #[cfg(test)]
        WriteOp::Hold { entered, release } => {
            let _ = entered.send(());
            if let Ok(rx) = release.lock() {
                let _ = rx.recv();
            }
            Ok((Outcome::Pruned, None))
        }
    }
}

/// Records the write's Idempotency-Key with its outcome, in the write's savepoint. A key
/// taken already (by an earlier write of this batch or another process) fails the write:
/// its savepoint is rolled back, and the handler answers with the recorded outcome.
fn remember_key(
    conn: &Connection,
    key: Option<&KeyClaim>,
    status: u16,
    product_id: i64,
    version: i64,
    at_ms: i64,
) -> StoreResult<()> {
    let Some(k) = key else {
        return Ok(());
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO idempotency_keys (user, key, method, target, fingerprint, status, product_id, version, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                k.user,
                k.key,
                k.method,
                k.target,
                k.fingerprint,
                status,
                product_id,
                version,
                at_ms
            ])
        });
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Err(StoreError::KeyUsed)
        }
        Err(e) => Err(db_err(e)),
    }
}

/// Records the new version in the history and the change in the change log, in the
/// caller's transaction. Returns the change-log row.
fn record(
    conn: &Connection,
    op: Op,
    product: &Product,
    at_ms: i64,
    by: &str,
) -> StoreResult<LogRow> {
    if op != Op::Deleted {
        conn.prepare_cached(
            "INSERT INTO versions (product_id, version, sku, name, description, price_cents, status, updated_at_ms, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                product.id,
                product.version,
                product.sku,
                product.name,
                product.description,
                product.price_cents,
                product.status.as_str(),
                at_ms,
                by
            ])
        })
        .map_err(db_err)?;
    }
    conn.prepare_cached("INSERT INTO changes (at_ms, event) VALUES (?1, '')")
        .and_then(|mut s| s.execute([at_ms]))
        .map_err(db_err)?;
    let seq = conn.last_insert_rowid();
    let event = ChangeEvent::from_product(seq, op, product.clone()).by(by, ms_to_rfc3339(at_ms));
    let json = serde_json::to_string(&event)
        .map_err(|e| StoreError::Database(format!("encoding a change event: {e}")))?;
    conn.prepare_cached("UPDATE changes SET event = ?1 WHERE seq = ?2")
        .and_then(|mut s| s.execute(params![json, seq]))
        .map_err(db_err)?;
    Ok(LogRow {
        cursor: Cursor::Seq(seq),
        event: json,
        op: Some(op),
    })
}
