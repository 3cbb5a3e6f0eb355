//! The change-event format of `GET /events` (Server-Sent Events): one event per committed
//! change, in the order of the global change sequence.

use serde::{Deserialize, Serialize};

use crate::product::Product;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum Op {
    Created,
    Updated,
    Deleted,
}

impl Op {
    /// The SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Created => "created",
            Op::Updated => "updated",
            Op::Deleted => "deleted",
        }
    }
}

/// The `data:` of one change event. For `deleted`, `product` is the last representation
/// before the delete and `updated_by` / `updated_at` say who deleted it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ChangeEvent {
    pub seq: i64,
    pub op: Op,
    pub id: i64,
    pub version: i64,
    pub etag: String,
    pub updated_by: String,
    pub updated_at: String,
    pub product: Product,
}

impl ChangeEvent {
    /// The event of `op` on `product` as it stands, by whoever last changed it. For a
    /// delete, name the deleter with [`ChangeEvent::by`].
    ///
    /// ```
    /// use catalog_shared::event::{ChangeEvent, Op};
    /// use catalog_shared::product::{Product, Status};
    /// let p = Product {
    ///     id: 1, sku: "A-1".into(), name: "A".into(), description: String::new(),
    ///     price_cents: 100, status: Status::InStock, version: 2,
    ///     updated_at: "2026-11-22T12:00:00.000Z".into(), updated_by: "alice".into(),
    ///     etag: "\"0000000000000002\"".into(),
    /// };
    /// let e = ChangeEvent::from_product(7, Op::Updated, p.clone());
    /// assert_eq!((e.id, e.version, e.etag.as_str(), e.updated_by.as_str()), (1, 2, p.etag.as_str(), "alice"));
    /// let d = ChangeEvent::from_product(8, Op::Deleted, p).by("bob", "2026-11-22T12:01:00.000Z");
    /// assert_eq!(d.updated_by, "bob");
    /// ```
    pub fn from_product(seq: i64, op: Op, product: Product) -> ChangeEvent {
        ChangeEvent {
            seq,
            op,
            id: product.id,
            version: product.version,
            etag: product.etag.clone(),
            updated_by: product.updated_by.clone(),
            updated_at: product.updated_at.clone(),
            product,
        }
    }

    /// The same event, made by `who` at `at` (RFC 3339).
    pub fn by(mut self, who: impl Into<String>, at: impl Into<String>) -> ChangeEvent {
        self.updated_by = who.into();
        self.updated_at = at.into();
        self
    }
}

/// The `data:` of a `reset` event: the subscriber missed changes (its `Last-Event-ID` is
/// older than the change log keeps, or it fell behind) and must reload the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ResetEvent {
    /// The latest sequence number at the time of the reset.
    pub seq: i64,
    pub reason: String,
}

/// The SSE event name of a reset.
pub const RESET: &str = "reset";

/// The SSE event name of the first event of a stream opened without `Last-Event-ID`:
/// `id:` and `data: {"seq": n}` give the latest sequence number. A client loads the list
/// after it, so no change can fall between the list and the stream.
pub const READY: &str = "ready";

/// The `id:` of an event: the database's identity and the change sequence number, as
/// `<database>:<seq>`. A `Last-Event-ID` from another database names no position in this
/// one's change log, so the server answers it with `reset` instead of resuming silently
/// against the wrong data.
///
/// ```
/// use catalog_shared::event::EventId;
/// let id: EventId = "3f9a0c2d1e4b5a69:42".parse().unwrap();
/// assert_eq!((id.database.as_str(), id.seq), ("3f9a0c2d1e4b5a69", 42));
/// assert_eq!(id.to_string(), "3f9a0c2d1e4b5a69:42");
/// assert!("42".parse::<EventId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub database: String,
    pub seq: i64,
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.database, self.seq)
    }
}

/// Why a text is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is <database>:<sequence number>, not {0:?}")]
pub struct BadEventId(pub String);

impl std::str::FromStr for EventId {
    type Err = BadEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadEventId(s.chars().take(80).collect());
        let (database, seq) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        if database.is_empty() || !database.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        let seq = seq
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0 && !seq.starts_with('+'))
            .ok_or_else(bad)?;
        Ok(EventId {
            database: database.to_string(),
            seq,
        })
    }
}
