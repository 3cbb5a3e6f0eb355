//! SQLite storage: WAL mode, durable commits (synchronous=FULL unless told otherwise), one
//! writer thread with group commit ([`writer`]), a pool of read connections
//! ([`readers`]), and the products read lately kept in memory while the database is
//! unchanged ([`points`]). Every write is a compare-and-set with its history row and change-log
//! row in the same transaction.

mod points;
mod readers;
mod rows;
mod schema;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use catalog_shared::product::{Product, ProductFields};
use rusqlite::ErrorCode;
use tokio::sync::{mpsc, oneshot, watch};

use self::points::Points;
use self::readers::Readers;
use self::writer::{AfterCommit, Outcome, Request, WriteOp};
use super::{
    CommitNotice, CommitSync, Cursor, CursorKind, KeyClaim, KeyRecord, LogPage, Lookup, Page,
    Storage, StoreError, StoreResult, Stored, VersionInfo, Write,
};

/// Tuning of the SQLite engine.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub sync: CommitSync,
    /// Writes waiting for the writer; past it, a write is refused with 503.
    pub queue: usize,
    /// The most writes committed together.
    pub batch: usize,
    /// Read connections.
    pub readers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: CommitSync::Full,
            queue: 1024,
            batch: 256,
            readers: 2,
        }
    }
}

/// A database error as the server answers it: a full or read-only disk, an I/O error, or a
/// lock held too long by another process is a condition that can clear (503); anything
/// else is a defect (500).
pub fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

pub struct SqliteStore {
    identity: String,
    writes: mpsc::Sender<Request>,
    readers: Arc<Readers>,
    /// Point reads answered without a reader (while no commit happened since).
    points: Arc<Points>,
    /// Reads of the change log (event-stream backlogs, the feed's catch-up) have a
    /// reader of their own, so that many streams replaying a backlog never make a
    /// request's read wait behind them.
    log_reader: Arc<Readers>,
    commits: watch::Receiver<Arc<CommitNotice>>,
    /// `PRAGMA synchronous` of the writer connection.
    synchronous: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    /// Returns the store and whether the database was new (so the caller can seed it).
    pub fn open(path: &Path, options: Options) -> StoreResult<(Self, bool)> {
        Self::open_with(path, options, None)
    }

    /// As [`SqliteStore::open`], with the step run after each commit replaced (tests
    /// inject a failing one).
    pub fn open_with(
        path: &Path,
        options: Options,
        after_commit: Option<AfterCommit>,
    ) -> StoreResult<(Self, bool)> {
        let (conn, identity, fresh) = schema::open_writer(path, options.sync)?;
        // Read back from the connection that commits, not assumed from the option.
        let synchronous = schema::synchronous(&conn)?;
        let (commits_tx, commits) = watch::channel(Arc::new(CommitNotice::default()));
        let after_commit = after_commit.unwrap_or_else(|| {
            Box::new(move |rows| {
                commits_tx.send_replace(Arc::new(CommitNotice {
                    rows: rows.to_vec(),
                }));
                Ok(())
            })
        });
        let (writes, queue) = mpsc::channel(options.queue.max(1));
        let writer_identity = identity.clone();
        let batch = options.batch.max(1);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(conn, writer_identity, queue, batch, after_commit))
            .map_err(|e| StoreError::Database(format!("starting the writer thread: {e}")))?;
        let readers = Arc::new(Readers::new(
            path.to_path_buf(),
            identity.clone(),
            options.readers,
        )?);
        let log_reader = Arc::new(Readers::new(path.to_path_buf(), identity.clone(), 1)?);
        let points = Arc::new(Points::open(path));
        Ok((
            SqliteStore {
                identity,
                writes,
                readers,
                points,
                log_reader,
                commits,
                synchronous,
            },
            fresh,
        ))
    }

    /// Queues a write and waits for its batch to commit.
    async fn write(&self, op: WriteOp) -> StoreResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .try_send(Request { op, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Busy("too many writes are waiting for the database".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the database writer has stopped".into())
                }
            })?;
        answer.await.map_err(|_| {
            StoreError::Database(
                "the database writer stopped before answering; the write may or may not have been committed".into(),
            )
        })?
    }
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Database(format!(
        "the writer answered {outcome:?} to another request"
    ))
}

#[async_trait::async_trait]
impl Storage for SqliteStore {
    fn identity(&self) -> &str {
        &self.identity
    }

    async fn durability(&self) -> StoreResult<super::Durability> {
        Ok(super::Durability {
            engine: "sqlite",
            setting: "synchronous",
            value: self.synchronous.clone(),
        })
    }

    async fn get(&self, id: i64) -> StoreResult<Lookup> {
        if let Some(found) = self.points.get(id) {
            return Ok(found);
        }
        let points = self.points.clone();
        self.readers
            .read(move |c, identity| points.read_through(id, || rows::lookup(c, identity, id)))
            .await
    }

    async fn list(&self, after: i64, limit: usize) -> StoreResult<Page> {
        self.readers
            .read(move |c, identity| rows::list(c, identity, after, limit))
            .await
    }

    async fn latest_change(&self) -> StoreResult<(i64, SystemTime)> {
        self.readers.read(|c, _| rows::latest(c)).await
    }

    async fn create(
        &self,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Product> {
        match self.write(WriteOp::Create { fields, user, key }).await? {
            Outcome::Created(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    async fn update(
        &self,
        id: i64,
        expected_version: i64,
        fields: ProductFields,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<Product>> {
        let op = WriteOp::Update {
            id,
            expected_version,
            fields,
            user,
            key,
        };
        match self.write(op).await? {
            Outcome::Updated(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(
        &self,
        id: i64,
        expected_version: i64,
        user: String,
        key: Option<KeyClaim>,
    ) -> StoreResult<Write<()>> {
        let op = WriteOp::Delete {
            id,
            expected_version,
            user,
            key,
        };
        match self.write(op).await? {
            Outcome::Deleted(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    async fn idempotency_key(&self, user: &str, key: &str) -> StoreResult<Option<KeyRecord>> {
        let (user, key) = (user.to_string(), key.to_string());
        self.readers
            .read(move |c, _| rows::idempotency_key(c, &user, &key))
            .await
    }

    async fn prune_idempotency_keys(&self, before_ms: i64) -> StoreResult<u64> {
        match self.write(WriteOp::PruneKeys { before_ms }).await? {
            Outcome::PrunedKeys(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn versions(&self, id: i64) -> StoreResult<Option<Vec<VersionInfo>>> {
        self.readers
            .read(move |c, identity| rows::versions(c, identity, id))
            .await
    }

    async fn version(&self, id: i64, version: i64) -> StoreResult<Option<Stored>> {
        self.readers
            .read(move |c, identity| rows::version(c, identity, id, version))
            .await
    }

    fn cursor_kind(&self) -> CursorKind {
        CursorKind::Seq
    }

    async fn log_head(&self) -> StoreResult<Cursor> {
        let seq = self.readers.read(|c, _| rows::latest_seq(c)).await?;
        Ok(Cursor::Seq(seq))
    }

    async fn changes_since(&self, after: Cursor, limit: usize) -> StoreResult<LogPage> {
        let Cursor::Seq(after) = after else {
            return Err(StoreError::Database(format!(
                "{after} is not a position of a SQLite change log"
            )));
        };
        self.log_reader
            .read(move |c, _| rows::changes_since(c, after, limit))
            .await
    }

    async fn prune_changes(&self, published: Cursor, keep: i64) -> StoreResult<()> {
        let upto = published.number() - keep;
        if upto <= 0 {
            return Ok(());
        }
        match self.write(WriteOp::Prune { upto }).await? {
            Outcome::Pruned => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn commits(&self) -> watch::Receiver<Arc<CommitNotice>> {
        self.commits.clone()
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Queues a test-only operation (raw SQL, holding the writer).
    pub async fn exec(&self, op: WriteOp) -> StoreResult<Outcome> {
        self.write(op).await
    }
}

#[cfg(test)]
mod tests {
    use catalog_shared::product::Status;

    use super::writer::execute_batch;
    use super::*;

    fn fields(sku: &str, price_cents: i64) -> ProductFields {
        ProductFields {
            sku: sku.into(),
            name: "Thing".into(),
            description: String::new(),
            price_cents,
            status: Status::InStock,
        }
    }

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("c.db"), Options::default())
            .expect("the store opens")
            .0
    }

    #[tokio::test]
    async fn a_batch_commits_exactly_the_writes_whose_compare_and_set_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let (mut conn, identity, _) = schema::open_writer(&path, CommitSync::Full).unwrap();
        let setup = [
            WriteOp::Create {
                fields: fields("A", 1),
                user: "u".into(),
                key: None,
            },
            WriteOp::Create {
                fields: fields("B", 1),
                user: "u".into(),
                key: None,
            },
        ];
        let done = execute_batch(&mut conn, &identity, &setup.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(done.last_seq, Some(2));

        let batch = [
            // Right version: commits.
            WriteOp::Update {
                id: 1,
                expected_version: 1,
                fields: fields("A", 10),
                user: "alice".into(),
                key: None,
            },
            // Stale version (the write just above made 2): 412 with the current state.
            WriteOp::Update {
                id: 1,
                expected_version: 1,
                fields: fields("A", 99),
                user: "bob".into(),
                key: None,
            },
            // A constraint: B may not take A's sku. Rolled back alone.
            WriteOp::Update {
                id: 2,
                expected_version: 1,
                fields: fields("A", 5),
                user: "carol".into(),
                key: None,
            },
            // Deleted at the right version: commits.
            WriteOp::Delete {
                id: 2,
                expected_version: 1,
                user: "dave".into(),
                key: None,
            },
            // Deleting it again: 410 material.
            WriteOp::Delete {
                id: 2,
                expected_version: 1,
                user: "erin".into(),
                key: None,
            },
            WriteOp::Create {
                fields: fields("C", 7),
                user: "frank".into(),
                key: None,
            },
        ];
        let done = execute_batch(&mut conn, &identity, &batch.iter().collect::<Vec<_>>()).unwrap();
        let r = &done.results;
        assert!(
            matches!(&r[0], Ok(Outcome::Updated(Write::Done(p))) if p.version == 2 && p.price_cents == 10)
        );
        assert!(matches!(&r[1], Ok(Outcome::Updated(Write::Changed(now)))
            if matches!(now.as_ref(), Lookup::Live(s) if s.product.version == 2 && s.product.updated_by == "alice")));
        assert!(matches!(
            &r[2],
            Err(StoreError::DuplicateSku { existing_id: 1, .. })
        ));
        assert!(matches!(&r[3], Ok(Outcome::Deleted(Write::Done(())))));
        assert!(matches!(&r[4], Ok(Outcome::Deleted(Write::Changed(now)))
            if matches!(now.as_ref(), Lookup::Deleted(d) if d.by == "dave")));
        assert!(matches!(&r[5], Ok(Outcome::Created(p)) if p.id == 3));
        // Three changes committed, numbered without a gap after the first two.
        assert_eq!(done.last_seq, Some(5));

        // What a reader sees afterwards is exactly that.
        let reader = schema::open_reader(&path).unwrap();
        let Lookup::Live(a) = rows::lookup(&reader, &identity, 1).unwrap() else {
            panic!("product 1 is live")
        };
        assert_eq!((a.product.version, a.product.price_cents), (2, 10));
        assert!(matches!(
            rows::lookup(&reader, &identity, 2).unwrap(),
            Lookup::Deleted(_)
        ));
        let log = rows::changes_since(&reader, 0, 100).unwrap();
        let seqs: Vec<i64> = log.rows.iter().map(|r| r.cursor.number()).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(log.head, Cursor::Seq(5));
        let history = rows::versions(&reader, &identity, 1).unwrap().unwrap();
        assert_eq!(history.len(), 2, "the failed writes left no history");
    }

    #[tokio::test]
    async fn concurrent_writes_are_committed_together_and_each_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .create(fields(&format!("S-{i}"), i), "u".into(), None)
                    .await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap().id);
        }
        ids.sort();
        assert_eq!(ids, (1..=64).collect::<Vec<_>>());
        assert_eq!(store.latest_change().await.unwrap().0, 64);
    }

    #[tokio::test]
    async fn a_write_whose_post_commit_step_fails_is_still_answered_as_committed() {
        let dir = tempfile::tempdir().unwrap();
        let failing: AfterCommit = Box::new(|_| Err("injected fault after the commit".into()));
        let (store, _) =
            SqliteStore::open_with(&dir.path().join("c.db"), Options::default(), Some(failing))
                .unwrap();
        let created = store
            .create(fields("A", 1), "u".into(), None)
            .await
            .unwrap();
        let updated = store
            .update(created.id, 1, fields("A", 2), "u".into(), None)
            .await
            .unwrap();
        assert!(matches!(updated, Write::Done(p) if p.version == 2));
        // And it is committed: a reader sees it.
        let Lookup::Live(now) = store.get(created.id).await.unwrap() else {
            panic!("live")
        };
        assert_eq!(now.product.price_cents, 2);
    }

    #[tokio::test]
    async fn a_full_disk_refuses_writes_as_unavailable_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .create(fields("A", 1), "u".into(), None)
            .await
            .unwrap();
        // The database may not grow by a single page: the next write finds the disk full.
        store
            .exec(WriteOp::Exec(
                "PRAGMA max_page_count = 1; PRAGMA max_page_count".into(),
            ))
            .await
            .unwrap();
        let mut refused = 0;
        for i in 0..200 {
            match store
                .create(fields(&format!("F-{i}"), 1), "u".into(), None)
                .await
            {
                Err(StoreError::Unavailable(_)) => refused += 1,
                Ok(_) => {}
                Err(e) => panic!("a full disk is Unavailable, not {e}"),
            }
        }
        assert!(refused > 0, "the disk never filled");
        // Reads still work.
        assert!(matches!(store.get(1).await.unwrap(), Lookup::Live(_)));
        // The space comes back: so do writes, with no restart.
        store
            .exec(WriteOp::Exec("PRAGMA max_page_count = 1073741823".into()))
            .await
            .unwrap();
        let p = store
            .create(fields("AFTER", 1), "u".into(), None)
            .await
            .unwrap();
        assert_eq!(p.version, 1);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_a_write_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = SqliteStore::open(
            &dir.path().join("c.db"),
            Options {
                queue: 1,
                batch: 1,
                ..Options::default()
            },
        )
        .unwrap();
        let store = Arc::new(store);
        let (release, held) = std::sync::mpsc::channel();
        let (entered, entering) = std::sync::mpsc::channel();
        let holder = {
            let store = store.clone();
            let release = std::sync::Mutex::new(held);
            tokio::spawn(async move { store.exec(WriteOp::Hold { entered, release }).await })
        };
        // Wait until the writer has taken the hold off the queue and is stuck in it.
        tokio::task::spawn_blocking(move || entering.recv())
            .await
            .unwrap()
            .unwrap();
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move { store.create(fields("W", 1), "u".into(), None).await })
        };
        while store.writes.capacity() != 0 {
            tokio::task::yield_now().await;
        }
        let refused = store.create(fields("X", 1), "u".into(), None).await;
        assert!(matches!(refused, Err(StoreError::Busy(_))), "{refused:?}");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap().sku, "W");
    }

    fn version_of(found: &Lookup) -> i64 {
        match found {
            Lookup::Live(s) => s.product.version,
            other => panic!("expected a live product, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_point_read_after_a_commit_by_this_store_or_another_connection_is_the_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert!(store.points.enabled(), "the WAL index is mapped");
        let p = store
            .create(fields("A", 1), "u".into(), None)
            .await
            .unwrap();
        // Read twice: the second is answered from memory.
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 1);
        assert!(store.points.get(p.id).is_some(), "kept after a read");
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 1);

        // This store's own write: the next read is the new version.
        let done = store
            .update(p.id, 1, fields("A", 2), "u".into(), None)
            .await
            .unwrap();
        assert!(matches!(done, Write::Done(_)));
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 2);
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 2);

        // A commit through another connection to the file (as another process's): the
        // very next read sees it.
        let other = rusqlite::Connection::open(dir.path().join("c.db")).unwrap();
        other
            .execute(
                "UPDATE products SET version = 3, price_cents = 3 WHERE id = ?1",
                [p.id],
            )
            .unwrap();
        assert!(store.points.get(p.id).is_none(), "the commit is noticed");
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 3);
        other
            .execute("UPDATE products SET version = 4 WHERE id = ?1", [p.id])
            .unwrap();
        assert_eq!(version_of(&store.get(p.id).await.unwrap()), 4);
    }
}
