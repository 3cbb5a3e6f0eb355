//! The read pool: a few threads, each owning one read-only connection and a queue of its
//! own, handed reads in turn. Readers never wait for the writer (WAL gives each read its
//! own snapshot), never block an async worker, and under load stay awake working through
//! their queue instead of being woken once per read; no lock is shared between them. A
//! semaphore bounds the reads waiting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::schema::open_reader;
use crate::storage::{StoreError, StoreResult};

type Job = Box<dyn FnOnce(&Connection, &str) + Send>;

pub struct Readers {
    queues: Vec<mpsc::Sender<(Job, OwnedSemaphorePermit)>>,
    next: AtomicUsize,
    permits: Arc<Semaphore>,
}

/// Reads that may wait for a reader thread; past it, callers wait their turn.
const WAITING: usize = 1024;

impl Readers {
    pub fn new(path: PathBuf, identity: String, size: usize) -> StoreResult<Self> {
        let mut queues = Vec::new();
        for i in 0..size.max(1) {
            let conn = open_reader(&path)?;
            let (tx, rx) = mpsc::channel::<(Job, OwnedSemaphorePermit)>();
            let identity = identity.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || {
                    while let Ok((job, _permit)) = rx.recv() {
                        job(&conn, &identity);
                    }
                })
                .map_err(|e| StoreError::Database(format!("starting a reader thread: {e}")))?;
            queues.push(tx);
        }
        Ok(Readers {
            queues,
            next: AtomicUsize::new(0),
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
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        if self.queues[i].send((job, permit)).is_err() {
            return Err(StoreError::Unavailable("the read pool has stopped".into()));
        }
        rx.await
            .map_err(|_| StoreError::Database("a read was dropped by its reader".into()))?
    }
}
