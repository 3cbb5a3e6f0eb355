//! The read pool: a few threads, each owning one read-only connection, taking reads from
//! one shared queue. Readers never wait for the writer (WAL gives each read its own
//! snapshot), never block an async worker, and under load stay awake working through
//! the queue instead of being woken once per read. A semaphore bounds the reads waiting.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::schema::open_reader;
use crate::storage::{StoreError, StoreResult};

type Job = Box<dyn FnOnce(&Connection, &str) + Send>;

pub struct Readers {
    queue: mpsc::Sender<(Job, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
}

/// Reads that may wait for a reader thread; past it, callers wait their turn.
const WAITING: usize = 1024;

impl Readers {
    pub fn new(path: PathBuf, identity: String, size: usize) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<(Job, OwnedSemaphorePermit)>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let conn = open_reader(&path)?;
            let rx = rx.clone();
            let identity = identity.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits on the queue at a time; the others wait for it.
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((job, _permit)) = next else {
                            return;
                        };
                        job(&conn, &identity);
                    }
                })
                .map_err(|e| StoreError::Database(format!("starting a reader thread: {e}")))?;
        }
        Ok(Readers {
            queue: tx,
            permits: Arc::new(Semaphore::new(WAITING)),
        })
    }

    /// Runs `f` with a read connection on a reader thread.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the read pool is closed".into()))?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn, identity| {
            let _ = tx.send(f(conn, identity));
        });
        // Sending never blocks (the channel is unbounded; the semaphore bounds it).
        if self.queue.send((job, permit)).is_err() {
            return Err(StoreError::Unavailable("the read pool has stopped".into()));
        }
        rx.await
            .map_err(|_| StoreError::Database("a read was dropped by its reader".into()))?
    }
}
