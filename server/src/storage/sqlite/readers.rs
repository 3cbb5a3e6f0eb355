//! The read pool: a few read-only connections, used on blocking threads, so readers never
//! wait for the writer (WAL gives each read its own snapshot) and never block an async
//! worker. A semaphore bounds how many reads run at once, and so how many connections
//! (and page caches) exist.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::schema::open_reader;
use crate::storage::{StoreError, StoreResult};

pub struct Readers {
    path: PathBuf,
    identity: String,
    /// Idle connections. Taken and returned on blocking threads only.
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    pub fn new(path: PathBuf, identity: String, size: usize) -> Self {
        Readers {
            path,
            identity,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the read pool is closed".into()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                Some(conn) => conn,
                None => open_reader(&readers.path)?,
            };
            let result = f(&conn, &readers.identity);
            // A connection that failed may be in a bad state: let it go, open another later.
            if !matches!(
                result,
                Err(StoreError::Database(_) | StoreError::Unavailable(_))
            ) {
                readers
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Database(format!("a read task failed: {e}")))?
    }
}
