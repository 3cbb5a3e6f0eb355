//! `catalog import FILE`: each row of an export, edited in a spreadsheet, becomes at most
//! one conditional write. A row whose fields equal the product's is left alone; a changed
//! row is a PUT with `If-Match` set to the ETag the row was exported with; a row without an
//! id is a POST. Every write carries an Idempotency-Key made of the file's bytes and the
//! row, so running the same file again (after a crash, a lost reply, or a success) is
//! answered with what the first run did, never done twice.
//!
//! A 412 is a conflict, never an overwrite: the row goes to the conflicts file with the
//! server's current values and current ETag, to be fixed and imported in its turn. Rows are
//! streamed: a reader thread, `--jobs` workers, and this task reporting, joined by bounded
//! channels, so memory does not grow with the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use catalog_shared::product::{Field, FieldError, Product, ProductFields, VersionInfo};
use reqwest::Method;
use tokio::signal::unix::SignalKind;
use tokio::sync::{Mutex, mpsc};

use super::Connection;
use super::conflicts::{ConflictsFile, default_conflicts_path};
use super::progress::Progress;
use super::record::{Read1, Row, Rows, detect_format, price_cell, survey};
use super::server::Answer;

/// What `catalog import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub file: PathBuf,
    /// Read every product and report, write nothing.
    pub dry_run: bool,
    /// Where conflicting rows go (default `<FILE>.conflicts.csv`).
    pub conflicts: Option<PathBuf>,
    /// Rows written at the same time.
    pub jobs: usize,
}

/// How the rows ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub applied: u64,
    pub created: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub failed: u64,
    /// Stopped by Ctrl-C before every row was done.
    pub interrupted: bool,
}

impl Summary {
    /// Every row done, no conflict and no failure: the exit status is 0 only then.
    pub fn clean(&self) -> bool {
        self.conflicts == 0 && self.failed == 0 && !self.interrupted
    }

    fn rows(&self) -> u64 {
        self.applied + self.created + self.unchanged + self.conflicts + self.failed
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "applied {}, created {}, unchanged {}, conflicts {}, failed {}",
            self.applied, self.created, self.unchanged, self.conflicts, self.failed
        )
    }
}

/// Tries per request before a row is reported as failed (the same request, the same key).
const TRIES: u32 = 5;

/// What became of one row.
enum Outcome {
    /// Written (or, `replayed`, found written by an earlier run of the same file).
    Applied {
        replayed: bool,
    },
    Created {
        id: i64,
        replayed: bool,
    },
    /// Nothing to write: the product has the row's values, or every change the row makes
    /// (from the version it was exported from).
    Unchanged,
    /// Dry run: a PUT would be sent (and would apply: the ETag is current).
    WouldApply {
        id: i64,
        changes: String,
    },
    /// Dry run: a POST would be sent.
    WouldCreate,
    /// Changed since the row's ETag.
    Conflict(Box<Conflict>),
    Failed(String),
}

/// A product changed since the row's ETag.
struct Conflict {
    current: Product,
    /// The version the row's ETag names, when the history still has it: what the row and
    /// the colleague each changed is measured from it.
    base: Option<ProductFields>,
}

impl Conflict {
    /// The outcome of a row whose ETag is not the product's: a conflict, unless every
    /// change the row makes to the version it was exported from is on the server already
    /// (an untouched row of a product a colleague changed; a change made meanwhile by
    /// another import): then there is nothing to write, and nothing of anyone's is lost.
    async fn of(
        conn: &Connection,
        row: &ProductFields,
        row_etag: &str,
        current: Product,
    ) -> Outcome {
        let base = base_version(conn, current.id, row_etag).await;
        if let Some(base) = &base {
            let now = current.fields();
            if base.changed(row).into_iter().all(|f| now.same(row, f)) {
                return Outcome::Unchanged;
            }
        }
        Outcome::Conflict(Box::new(Conflict { current, base }))
    }

    /// The fields the row changed, and those the colleague changed, since the base (what
    /// differs between the row and the current product, for both, when the base is gone).
    fn sides(&self, row: &Row) -> (String, String) {
        let current = self.current.fields();
        let names = |fields: Vec<Field>| {
            let names: Vec<&str> = fields.iter().map(|f| f.label()).collect();
            names.join(", ")
        };
        let mine = match row.fields() {
            Ok(fields) => fields,
            Err(_) => return (String::new(), String::new()),
        };
        match &self.base {
            Some(base) => (names(base.changed(&mine)), names(base.changed(&current))),
            None => {
                let differs = names(current.changed(&mine));
                (differs.clone(), differs)
            }
        }
    }
}

/// The fields of the version of product `id` whose ETag is `etag`.
async fn base_version(conn: &Connection, id: i64, etag: &str) -> Option<ProductFields> {
    let list = conn
        .send(
            Method::GET,
            &format!("/products/{id}/versions"),
            None,
            None,
            None,
        )
        .await
        .ok()
        .filter(|a| a.status == 200)?;
    let versions: Vec<VersionInfo> = serde_json::from_slice(&list.body).ok()?;
    let version = versions.iter().find(|v| v.etag == etag)?.version;
    let answer = conn
        .send(
            Method::GET,
            &format!("/products/{id}/versions/{version}"),
            None,
            None,
            None,
        )
        .await
        .ok()
        .filter(|a| a.status == 200)?;
    answer.product().ok().map(|p| p.fields())
}

struct Done {
    line: u64,
    row: Option<Row>,
    outcome: Outcome,
}

/// Runs the import, printing a line per row that needs the person's attention (standard
/// error) and the summary (standard output).
pub async fn run(conn: &Connection, opts: &ImportOptions) -> anyhow::Result<Summary> {
    let file = &opts.file;
    let conflicts_path = opts
        .conflicts
        .clone()
        .unwrap_or_else(|| default_conflicts_path(file));
    if same_file(&conflicts_path, file) {
        bail!(
            "--conflicts {} is the file being imported: name another file",
            conflicts_path.display()
        );
    }
    let format = detect_format(file)?;
    let (digest, total) = survey(file, format)?;
    let mut rows = Rows::open(file, format)?;
    probe(conn).await?;

    let jobs = opts.jobs.clamp(1, 256);
    // Ctrl-C: no new row is started; the rows being written finish and are reported.
    let stop = Arc::new(AtomicBool::new(false));
    // Registered before any row is sent, so no Ctrl-C can find the default action (death).
    let mut interrupt =
        tokio::signal::unix::signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let (row_tx, row_rx) = mpsc::channel::<Read1>(jobs * 2);
    let reader = tokio::task::spawn_blocking(move || {
        while let Some(row) = rows.next_row() {
            if row_tx.blocking_send(row).is_err() {
                break;
            }
        }
    });
    // Only the workers hold the rows' receiver: when they stop, the reader stops too.
    let row_rx = Arc::new(Mutex::new(row_rx));
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(jobs * 2);
    for _ in 0..jobs {
        let (conn, row_rx, done_tx) = (conn.clone(), row_rx.clone(), done_tx.clone());
        let stop = stop.clone();
        let dry_run = opts.dry_run;
        tokio::spawn(async move {
            loop {
                let next = row_rx.lock().await.recv().await;
                let Some(read) = next else { break };
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let done = match read {
                    Err((line, message)) => Done {
                        line,
                        row: None,
                        outcome: Outcome::Failed(message),
                    },
                    Ok(row) => Done {
                        line: row.line,
                        outcome: decide(&conn, &digest, dry_run, &row).await,
                        row: Some(row),
                    },
                };
                if done_tx.send(done).await.is_err() {
                    break;
                }
            }
        });
    }
    drop((done_tx, row_rx));

    let mut progress = Progress::new(total);
    let mut conflicts: Option<ConflictsFile> = None;
    let mut summary = Summary::default();
    loop {
        let done = tokio::select! {
            done = done_rx.recv() => match done {
                Some(done) => done,
                None => break,
            },
            _ = interrupt.recv(), if !summary.interrupted => {
                summary.interrupted = true;
                stop.store(true, Ordering::SeqCst);
                progress.say("interrupted: the rows being written finish; no other row is started");
                continue;
            }
        };
        let line = done.line;
        match done.outcome {
            Outcome::Applied { replayed } => {
                summary.applied += 1;
                if replayed {
                    progress.say(&format!(
                        "line {line}: already applied by an earlier run of this file"
                    ));
                }
            }
            Outcome::Created { id, replayed } => {
                summary.created += 1;
                if replayed {
                    progress.say(&format!(
                        "line {line}: already created by an earlier run of this file: product {id}"
                    ));
                }
            }
            Outcome::Unchanged => summary.unchanged += 1,
            Outcome::WouldApply { id, changes } => {
                summary.applied += 1;
                progress.say(&format!(
                    "line {line}: would apply to product {id}: {changes}"
                ));
            }
            Outcome::WouldCreate => {
                summary.created += 1;
                let sku = done.row.as_ref().map_or("", |r| r.sku.as_str());
                progress.say(&format!("line {line}: would create {sku}"));
            }
            Outcome::Conflict(conflict) => {
                summary.conflicts += 1;
                let Some(row) = done.row else { continue };
                let (mine, theirs) = conflict.sides(&row);
                let current = &conflict.current;
                progress.say(&format!(
                    "line {line}: conflict: product {} ({}) changed since this row's ETag {}: \
                     the row changes: {}; changed on the server since: {} (last by {} at {}, \
                     now ETag {})",
                    current.id,
                    current.sku,
                    row.etag.as_deref().unwrap_or("-"),
                    or_nothing(&mine),
                    or_nothing(&theirs),
                    current.updated_by,
                    current.updated_at,
                    current.etag,
                ));
                if !opts.dry_run {
                    let file = match &mut conflicts {
                        Some(f) => f,
                        None => conflicts.insert(ConflictsFile::create(&conflicts_path)?),
                    };
                    file.write(&row, current, &mine, &theirs)?;
                }
            }
            Outcome::Failed(message) => {
                summary.failed += 1;
                let id = match done.row.as_ref().and_then(|r| r.id) {
                    Some(id) => format!(" (product {id})"),
                    None => String::new(),
                };
                progress.say(&format!("line {line}{id}: failed: {message}"));
            }
        }
        progress.advance();
    }
    // The reader ends when the rows do (or when the workers stopped taking them).
    let _ = reader.await;
    progress.finish();

    if opts.dry_run {
        println!("dry run, nothing was written: {summary}");
        return Ok(summary);
    }
    if summary.interrupted {
        println!(
            "interrupted after {} of {total} rows: {summary}. Run the same command again to do \
             the rest: rows already written are recognised by their Idempotency-Key",
            summary.rows()
        );
    } else {
        println!("{summary}");
    }
    if let Some(file) = conflicts {
        file.persist(&conflicts_path)?;
        println!(
            "{} conflicting row{} written to {}: each has your values, the server's current ones \
             (current_*) and its current etag. Fix each row to what the product should be, \
             then run: catalog import {}",
            summary.conflicts,
            if summary.conflicts == 1 { "" } else { "s" },
            conflicts_path.display(),
            conflicts_path.display()
        );
    }
    Ok(summary)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Says at once, before any row, when the server cannot be reached or refuses us.
async fn probe(conn: &Connection) -> anyhow::Result<()> {
    match conn
        .send(Method::GET, "/products?limit=1", None, None, None)
        .await
    {
        Ok(a) if a.status == 200 => Ok(()),
        Ok(a) => bail!("{}: nothing was imported", a.explain()),
        Err(e) => bail!("{}: nothing was imported", e.0),
    }
}

/// What to do with one row, done.
async fn decide(conn: &Connection, digest: &[u8; 32], dry_run: bool, row: &Row) -> Outcome {
    let fields = match row.fields() {
        Ok(f) => f,
        Err(errors) => return Outcome::Failed(invalid(&errors)),
    };
    let body = match serde_json::to_vec(&fields) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("could not encode the product ({e})")),
    };
    let key = row.idempotency_key(digest);
    let Some(id) = row.id else {
        if dry_run {
            return Outcome::WouldCreate;
        }
        return match write(conn, Method::POST, "/products", None, &key, body).await {
            Ok(a) if a.status == 201 || a.status == 200 => match a.product() {
                Ok(p) => Outcome::Created {
                    id: p.id,
                    replayed: a.replayed,
                },
                Err(e) => Outcome::Failed(e),
            },
            // The sku is taken. By a product that is exactly this row (say an import of
            // this file before it was edited created it, and the edit changed the file's
            // keys): nothing to write, as for a row with an id that equals its product.
            Ok(a) if a.status == 409 => {
                if let Some(other) = a.problem().and_then(|p| p.conflicting_id)
                    && let Ok(p) = read_product(conn, other).await
                    && p.fields() == fields
                {
                    return Outcome::Unchanged;
                }
                refused(&a)
            }
            Ok(a) => refused(&a),
            Err(message) => Outcome::Failed(message),
        };
    };
    let Some(etag) = row.etag.as_deref() else {
        return Outcome::Failed(
            "the row has an id but no etag, so what it was based on is unknown: take the row \
             from a fresh `catalog export`, or empty its id to create a new product"
                .into(),
        );
    };
    let current = match read_product(conn, id).await {
        Ok(p) => p,
        Err(message) => return Outcome::Failed(message),
    };
    if current.fields() == fields {
        return Outcome::Unchanged;
    }
    if dry_run {
        return if current.etag == etag {
            Outcome::WouldApply {
                id,
                changes: changes(&current.fields(), &fields),
            }
        } else {
            Conflict::of(conn, &fields, etag, current).await
        };
    }
    let path = format!("/products/{id}");
    match write(conn, Method::PUT, &path, Some(etag), &key, body).await {
        Ok(a) if a.status == 200 => Outcome::Applied {
            replayed: a.replayed,
        },
        Ok(a) if a.status == 412 => {
            let current = match a.problem().and_then(|p| p.current) {
                Some(c) => c,
                None => match read_product(conn, id).await {
                    Ok(p) => p,
                    Err(message) => return Outcome::Failed(message),
                },
            };
            // Someone made the very same change meanwhile: nothing to do, nothing lost.
            if current.fields() == fields {
                Outcome::Unchanged
            } else {
                Conflict::of(conn, &fields, etag, current).await
            }
        }
        Ok(a) => refused(&a),
        Err(message) => Outcome::Failed(message),
    }
}

/// A write, sent again with the same key while no answer came or the server asks to
/// retry (the key still in flight, a full write queue): the key makes a repeat safe.
async fn write(
    conn: &Connection,
    method: Method,
    path: &str,
    if_match: Option<&str>,
    key: &str,
    body: Vec<u8>,
) -> Result<Answer, String> {
    let mut attempt = 0;
    // Whether a try went unanswered: it may have been made, whatever a later try is told.
    let mut unanswered = false;
    loop {
        attempt += 1;
        match conn
            .send(
                method.clone(),
                path,
                if_match,
                Some(key),
                Some(body.clone()),
            )
            .await
        {
            // A gateway that gave up waiting (502, 504), or a server error that may follow
            // a commit (500): no answer, as if the reply was lost.
            Ok(a) if matches!(a.status, 500 | 502 | 504) => {
                unanswered = true;
                if attempt < TRIES {
                    tokio::time::sleep(backoff(attempt)).await;
                } else {
                    return Err(not_known(&a.explain()));
                }
            }
            Ok(a) if attempt < TRIES && retry_later(&a) => {
                tokio::time::sleep(
                    a.retry_after
                        .unwrap_or(backoff(attempt))
                        .min(backoff(TRIES)),
                )
                .await;
            }
            // The last try turned away (503, or the key still in flight) after one went
            // unanswered: that one's fate is still not known.
            Ok(a) if unanswered && retry_later(&a) => return Err(not_known(&a.explain())),
            Ok(a) => return Ok(a),
            Err(_) if attempt < TRIES => {
                unanswered = true;
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(not_known(&e.0)),
        }
    }
}

/// A write that got no answer to any of its tries.
fn not_known(last: &str) -> String {
    format!(
        "{last} ({TRIES} tries); whether the row was written is not known: run the same \
         import again, which recognises rows already written by their Idempotency-Key"
    )
}

/// 503 (a full queue), or 409 with Retry-After and no other product named (the same
/// Idempotency-Key still being processed).
fn retry_later(a: &Answer) -> bool {
    a.status == 503
        || (a.status == 409
            && a.retry_after.is_some()
            && a.problem().and_then(|p| p.conflicting_id).is_none())
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 << attempt.min(5))
}

/// The current product, read again on a lost answer.
async fn read_product(conn: &Connection, id: i64) -> Result<Product, String> {
    let path = format!("/products/{id}");
    let mut attempt = 0;
    let answer = loop {
        attempt += 1;
        match conn.send(Method::GET, &path, None, None, None).await {
            Ok(a) => break a,
            Err(_) if attempt < TRIES => tokio::time::sleep(backoff(attempt)).await,
            Err(e) => return Err(format!("{} ({TRIES} tries); nothing written", e.0)),
        }
    };
    match answer.status {
        200 => answer.product(),
        _ => match refused(&answer) {
            Outcome::Failed(message) => Err(message),
            _ => Err(answer.explain()),
        },
    }
}

/// Why the server refused a row.
fn refused(a: &Answer) -> Outcome {
    let problem = a.problem().unwrap_or_default();
    Outcome::Failed(match a.status {
        410 => format!(
            "the product was deleted by {} at {} since the export; nothing written",
            problem.deleted_by.as_deref().unwrap_or("someone"),
            problem.deleted_at.as_deref().unwrap_or("an unknown time")
        ),
        404 => "no product has this id; nothing written (to create one, empty the id)".into(),
        422 if problem.errors.as_ref().is_some_and(|e| !e.is_empty()) => {
            invalid(problem.errors.as_deref().unwrap_or_default())
        }
        409 if problem.conflicting_id.is_some() => invalid(&[FieldError {
            field: "sku".into(),
            message: format!(
                "is already used by product {}",
                problem.conflicting_id.unwrap_or_default()
            ),
        }]),
        _ => a.explain(),
    })
}

/// Field errors, named as the file's columns.
fn invalid(errors: &[FieldError]) -> String {
    let list: Vec<String> = errors
        .iter()
        .map(|e| {
            let field = match e.field.as_str() {
                "price_cents" => "price",
                other => other,
            };
            format!("{field} {}", e.message)
        })
        .collect();
    format!("invalid row: {}; nothing written", list.join("; "))
}

fn or_nothing(fields: &str) -> &str {
    if fields.is_empty() { "nothing" } else { fields }
}

/// `price 399.00 -> 349.00, description`: what a write would change.
fn changes(from: &ProductFields, to: &ProductFields) -> String {
    let list: Vec<String> = from
        .changed(to)
        .into_iter()
        .map(|f| match f {
            Field::Description => "description".to_string(),
            Field::Price => format!(
                "price {} -> {}",
                price_cell(from.price_cents),
                price_cell(to.price_cents)
            ),
            other => format!(
                "{} {} -> {}",
                other.label(),
                from.display(other),
                to.display(other)
            ),
        })
        .collect();
    list.join(", ")
}
