//! The change-event format of `GET /events` (Server-Sent Events): one event per committed
//! change, in the order of the global change sequence.

use serde::{Deserialize, Serialize};

use crate::product::Product;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// The `data:` of a `reset` event: the subscriber missed changes (its `Last-Event-ID` is
/// older than the change log keeps, or it fell behind) and must reload the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
