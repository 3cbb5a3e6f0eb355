//! Point reads answered from memory: the products read lately, each kept with the mark of
//! the database state it was read at, and served on the async worker (no hop to a reader
//! thread, no SQLite lock) for as long as the database is still at that state.
//!
//! The mark is read from the WAL index header in the database's `-shm` file, which every
//! SQLite connection that commits (in this process or any other sharing the file) updates
//! inside its commit, before the commit returns: `iChange` is incremented by every commit,
//! and `mxFrame` and the salt change with every WAL append and restart. So a commit by
//! another process (the processes sharing one file already pass on each other's changes)
//! is noticed by the first read after it, and the same for this process's own writer: a
//! write's reply is only sent after its commit, so a read that follows a write sees a new
//! mark and goes to the database. Nothing is served from memory unless the mark read just
//! now equals the one the entry was read at.
//!
//! The header is read without taking SQLite's locks, as SQLite itself first reads it. A
//! read racing a commit may see the old header (the commit has not returned, so answering
//! the state before it is correct) or a mixture of old and new bytes, which equals no mark
//! an entry was stored under, and so only costs a database read. When the `-shm` file
//! cannot be mapped or does not look like a WAL index, every read goes to the database.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{Ordering, fence};

use crate::storage::Lookup;

/// The most products kept; past it the memory is emptied and filled again by the reads
/// that follow (a catalog read at random this widely is not what the memory is for).
const CAPACITY: usize = 4096;

/// The WAL index header fields that change with every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    change: u32,
    frames: u32,
    salt: u32,
}

pub struct Points {
    header: Option<WalIndex>,
    kept: Mutex<Kept>,
}

struct Kept {
    /// The state every entry was read at.
    at: Option<Mark>,
    products: HashMap<i64, Lookup>,
}

impl Points {
    /// Point reads of the WAL-mode database at `db` (whose `-shm` file an open connection
    /// has created); off, with every read going to the database, when it cannot be mapped.
    pub fn open(db: &Path) -> Points {
        let header = WalIndex::map(db);
        if header.is_none() {
            tracing::warn!(
                "the WAL index of {} could not be mapped: every product read goes to the database",
                db.display()
            );
        }
        Points {
            header,
            kept: Mutex::new(Kept {
                at: None,
                products: HashMap::new(),
            }),
        }
    }

    /// Whether reads are answered from memory at all.
    #[cfg(test)]
    pub fn enabled(&self) -> bool {
        self.header.is_some()
    }

    /// The mark of the database's latest commit (`None`: off).
    fn mark(&self) -> Option<Mark> {
        self.header.as_ref().map(WalIndex::mark)
    }

    /// Product `id` as the database holds it now, when it was read since the last commit.
    pub fn get(&self, id: i64) -> Option<Lookup> {
        let now = self.mark()?;
        let mut kept = self.kept.lock().ok()?;
        if kept.at != Some(now) {
            kept.at = Some(now);
            kept.products.clear();
            return None;
        }
        kept.products.get(&id).cloned()
    }

    /// Runs `read` (a database read of product `id`) and keeps its answer when no commit
    /// happened around it: the mark before and after are the same, so the read's snapshot
    /// is the state of that mark.
    pub fn read_through<E>(
        &self,
        id: i64,
        read: impl FnOnce() -> Result<Lookup, E>,
    ) -> Result<Lookup, E> {
        let Some(before) = self.mark() else {
            return read();
        };
        let found = read()?;
        if self.mark() == Some(before)
            && let Ok(mut kept) = self.kept.lock()
        {
            // A commit after `before` changes the mark, so an entry kept under it is
            // never served after that commit, even if `at` goes back to it here.
            if kept.at != Some(before) || kept.products.len() >= CAPACITY {
                kept.at = Some(before);
                kept.products.clear();
            }
            kept.products.insert(id, found.clone());
        }
        Ok(found)
    }
}

/// The first page of the `-shm` file, mapped read-only and shared.
struct WalIndex {
    base: *const u8,
    len: usize,
    // Kept open for as long as the mapping lives (not needed by the mapping itself).
    _file: File,
}

// The mapping is read-only and only read with volatile loads.
unsafe impl Send for WalIndex {}
unsafe impl Sync for WalIndex {}

/// `WALINDEX_MAX_VERSION` of SQLite's `wal.c`: the version of the index format.
const WAL_INDEX_VERSION: u32 = 3007000;
/// Two copies of the 48-byte header and the 40-byte checkpoint information.
const HEADER_BYTES: usize = 136;

impl WalIndex {
    fn map(db: &Path) -> Option<WalIndex> {
        // SQLite names the index after the database's full path, symbolic links resolved.
        let db = std::fs::canonicalize(db).ok()?;
        let mut name = db.into_os_string();
        name.push("-shm");
        let file = File::open(&name).ok()?;
        if file.metadata().ok()?.len() < HEADER_BYTES as u64 {
            return None;
        }
        let len = 4096;
        // SAFETY: a read-only shared mapping of an open file, at least HEADER_BYTES long,
        // that SQLite never shrinks while a connection (ours) has the database open; only
        // the first HEADER_BYTES are read.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let index = WalIndex {
            base: base as *const u8,
            len,
            _file: file,
        };
        // `iVersion`, and `isInit` of an index a connection has set up.
        (index.u32_at(0) == WAL_INDEX_VERSION && index.u8_at(12) == 1).then_some(index)
    }

    fn u32_at(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= HEADER_BYTES);
        // SAFETY: inside the mapping, 4-aligned (the mapping is page-aligned); volatile
        // because another process writes it.
        // The index is in the machine's byte order.
        unsafe { std::ptr::read_volatile(self.base.add(offset) as *const u32) }
    }

    fn u8_at(&self, offset: usize) -> u8 {
        // SAFETY: inside the mapping.
        unsafe { std::ptr::read_volatile(self.base.add(offset)) }
    }

    /// `iChange`, `mxFrame` and `aSalt[0]` of the first copy of the header, the one
    /// SQLite writes last.
    fn mark(&self) -> Mark {
        fence(Ordering::Acquire);
        let mark = Mark {
            change: self.u32_at(8),
            frames: self.u32_at(16),
            salt: self.u32_at(32),
        };
        fence(Ordering::Acquire);
        mark
    }
}

impl Drop for WalIndex {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}
