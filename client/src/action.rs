//! Everything that can happen to the client, as one enum: a key press, a tick of the clock,
//! a change event from the server, or the outcome of an HTTP exchange. The pure `update`
//! in `state` turns each into a new state and a list of commands for `api` to carry out.

use std::time::SystemTime;

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::{FieldError, Product, ProductFields};
use crossterm::event::KeyEvent;

use crate::api::VersionInfo;

/// The event stream's state, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    /// Retrying after a failure; `attempt` counts from 1; `since` is when the stream
    /// was lost.
    Reconnecting {
        attempt: u32,
        reason: String,
        since: SystemTime,
    },
}

/// Why a save was sent: the result goes back to the screen that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavePurpose {
    /// Ctrl-S in the editor.
    Edit,
    /// `o` in the conflict panel.
    Overwrite,
    /// `m` in the conflict panel.
    Merge,
    /// Recreate a deleted product from my edit.
    Recreate,
    /// Saved WITHOUT If-Match (F8, or `--no-if-match`): the lost-update demo.
    Unconditional,
}

/// The outcome of a PUT, POST or DELETE, as the client understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 200 or 201 (None for a 204 delete).
    Done(Option<Product>),
    /// The reply was lost, and reading the product back showed the change is there:
    /// saved, as this version.
    Confirmed(Box<Product>),
    /// No reply, and the product could not be read back either: it is not known whether
    /// the write took effect.
    Unknown(String),
    /// 412: someone else changed it; this is the current state.
    Conflict(Box<Product>),
    /// 410: someone deleted it.
    Gone { by: String, at: String },
    /// 422: the server's field errors.
    Invalid(Vec<FieldError>),
    /// Anything else: a message a person understands.
    Failed(String),
}

/// One HTTP exchange, for the protocol log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub if_match: Option<String>,
    /// `None` when the server could not be reached.
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub millis: u64,
    /// What the exchange meant, when the columns do not say it (a 304 that reused a copy).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// A click or a turn of the wheel.
    Mouse(crossterm::event::MouseEvent),
    /// The clock moved on (ages and highlights change).
    Tick(SystemTime),
    Resize,
    /// The whole list, freshly loaded by load number `load`, with its ETag when it came
    /// in one page (so the next load can revalidate it).
    Loaded {
        load: u64,
        list: Vec<Product>,
        etag: Option<String>,
    },
    /// Load number `load` was answered 304: the list held is still current.
    LoadUnchanged {
        load: u64,
    },
    /// A product re-read with If-None-Match: `None` when the copy held is still current
    /// (304), else the current product.
    Revalidated {
        id: i64,
        product: Option<Box<Product>>,
    },
    LoadFailed {
        load: u64,
        message: String,
    },
    Event(Box<ChangeEvent>),
    /// The server says we missed changes (or the stream just began): reload the list.
    Reset,
    /// The latest change sequence number, from a `ready` or `reset` event.
    Seq(i64),
    Connection(Connection),
    Saved {
        /// The edit this save belongs to (see `state::Editor::token`).
        edit: u64,
        purpose: SavePurpose,
        id: Option<i64>,
        sent: Box<ProductFields>,
        outcome: WriteOutcome,
    },
    Deleted {
        id: i64,
        outcome: WriteOutcome,
    },
    /// A past version arrived (the base of a merge, or a history entry).
    Version(Box<Product>),
    VersionFailed {
        id: i64,
        version: i64,
        message: String,
    },
    Versions {
        id: i64,
        versions: Result<Vec<VersionInfo>, String>,
    },
    Exchange(Exchange),
    /// Drafts of unsaved edits found on disk at start.
    DraftsFound(Vec<crate::draft::DraftFile>),
    /// The open edit's draft could not be written.
    DraftFailed(String),
}
