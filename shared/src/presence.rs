//! Presence: "bob is editing product 1 (price)", announced by a client while its editor is
//! open and fanned out over the event stream, so others know before they type. Advisory
//! only: it never blocks a write, and If-Match stays the only guard.
//!
//! A client identifies itself with a random id in the [`CLIENT_HEADER`] header, on its
//! event stream and on `PUT /presence` (announce or renew) and `DELETE /presence`
//! (withdraw). The server expires an announcement that is not renewed within
//! [`PRESENCE_TTL_SECS`], and at once when that client's event stream ends.

use serde::{Deserialize, Serialize};

/// The header carrying a client's random id (one per running client: two windows of one
/// user are two clients).
pub const CLIENT_HEADER: &str = "X-Client-Id";

/// The SSE event name of a presence change. Presence events carry no `id:`, so they never
/// move a stream's `Last-Event-ID`; a resumed stream gets the current presence afresh
/// instead of stale announcements.
pub const PRESENCE: &str = "presence";

/// How long an announcement lasts without renewal.
pub const PRESENCE_TTL_SECS: u64 = 30;

/// What a client announces (`PUT /presence` body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Announce {
    #[cfg_attr(feature = "utoipa", schema(minimum = 1))]
    pub product_id: i64,
    /// The field under the cursor, by its JSON name (`price`), if any.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(max_length = 64))]
    pub field: Option<String>,
}

/// The `data:` of a presence event: where one client is now. `product_id: None` means it
/// left (closed its editor, disconnected, or its announcement expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PresenceEvent {
    pub client: String,
    pub user: String,
    pub product_id: Option<i64>,
    #[serde(default)]
    pub field: Option<String>,
}
