//! The storage boundary: a narrow trait whose writes are compare-and-set operations done
//! inside the database, and whose commits feed the change log and the live event stream.

pub mod sqlite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::{Product, ProductFields};
use tokio::sync::broadcast;

/// A product's current row, with what HTTP needs beside the representation.
#[derive(Debug, Clone)]
pub struct Stored {
    pub product: Product,
    pub last_modified: SystemTime,
}

/// Who deleted a product, and when.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub by: String,
    pub at: String,
    /// The last representation before the delete.
    pub last: Product,
}

/// The state of one product id.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// No product ever had this id.
    Missing,
    Deleted(Deletion),
    Live(Stored),
}

/// The result of a compare-and-set write.
#[derive(Debug, Clone)]
pub enum Write<T> {
    /// The expected version was current; the write is committed.
    Done(T),
    /// The product is no longer at the expected version: here is its state now.
    Changed(Box<Lookup>),
}

/// One page of the live products.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Product>,
    /// Whether live products with a greater id exist.
    pub more: bool,
    /// The latest change sequence number when the page was read.
    pub seq: i64,
    /// When that change happened (the list's Last-Modified).
    pub changed_at: SystemTime,
}

/// One entry of a product's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub etag: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// Changes after a given sequence number.
#[derive(Debug, Clone)]
pub enum Since {
    Events(Vec<ChangeEvent>),
    /// The change log no longer holds them (or the number is from another database).
    TooOld {
        latest: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sku {sku} is already used by product {existing_id}")]
    DuplicateSku { sku: String, existing_id: i64 },
    #[error("database error: {0}")]
    Database(String),
}

/// The operations the HTTP layer needs. Methods block: call them from `spawn_blocking`.
pub trait Storage: Send + Sync + 'static {
    /// The database's random incarnation id, mixed into every entity tag.
    fn incarnation(&self) -> &str;
    fn get(&self, id: i64) -> Result<Lookup, StoreError>;
    fn list(&self, after: i64, limit: usize) -> Result<Page, StoreError>;
    /// The latest change sequence number and its time.
    fn latest_change(&self) -> Result<(i64, SystemTime), StoreError>;
    fn create(&self, fields: &ProductFields, user: &str) -> Result<Product, StoreError>;
    /// Replaces the fields if the product is live at `expected_version`.
    fn update(
        &self,
        id: i64,
        expected_version: i64,
        fields: &ProductFields,
        user: &str,
    ) -> Result<Write<Product>, StoreError>;
    /// Deletes the product if it is live at `expected_version`.
    fn delete(&self, id: i64, expected_version: i64, user: &str) -> Result<Write<()>, StoreError>;
    /// `None` when the id never existed.
    fn versions(&self, id: i64) -> Result<Option<Vec<VersionInfo>>, StoreError>;
    fn version(&self, id: i64, version: i64) -> Result<Option<Stored>, StoreError>;
    fn changes_since(&self, seq: i64) -> Result<Since, StoreError>;
    /// Live change events, sent in commit order.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;
    /// Sends subscribers the changes other server processes committed to the same
    /// database since the last call (called on a timer).
    fn publish_foreign_changes(&self) -> Result<(), StoreError>;
}

/// Milliseconds since the epoch, as stored.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// RFC 3339 with milliseconds, UTC.
pub fn ms_to_rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(ms_to_time(ms)).to_string()
}

/// The opaque part of a product version's entity tag: 16 hex digits of a hash of the
/// database's random incarnation id, the product id and the version. Deterministic (the
/// same for one version across restarts and processes), and never reused by a re-created
/// database because the incarnation differs.
pub fn mint_etag(incarnation: &str, kind: &str, id: i64, version: i64) -> String {
    // FNV-1a over the inputs, then the splitmix64 finaliser for avalanche.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in incarnation
        .bytes()
        .chain([0])
        .chain(kind.bytes())
        .chain([0])
        .chain(id.to_le_bytes())
        .chain(version.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_short_strong_and_distinct() {
        let a = mint_etag("inc-a", "product", 1, 1);
        assert_eq!(a.len(), 18);
        assert_eq!(a, mint_etag("inc-a", "product", 1, 1));
        assert_ne!(a, mint_etag("inc-a", "product", 1, 2));
        assert_ne!(a, mint_etag("inc-a", "product", 2, 1));
        assert_ne!(a, mint_etag("inc-b", "product", 1, 1));
        assert!(a.parse::<catalog_shared::etag::EntityTag>().is_ok());
    }
}
