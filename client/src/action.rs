//! Everything that can happen to the client, as one enum: a key press, a click, a tick of
//! the clock, or what the network reported. The pure `update` in `state` turns each into
//! a new state and a list of [`Command`]s for `net` to carry out.

use std::time::SystemTime;

use crossterm::event::KeyEvent;

pub use crate::net::{Command, Connection, Exchange, Reply, SavePurpose, WriteOutcome};

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    /// A click or a turn of the wheel.
    Mouse(crossterm::event::MouseEvent),
    /// The clock moved on (ages and highlights change).
    Tick(SystemTime),
    /// The terminal's size changed (or is known for the first time): columns, rows.
    Resize(u16, u16),
    /// What the network reported: an answer, an event of the live feed, a connection
    /// state, an exchange for the protocol log.
    Net(Reply),
    /// Drafts of unsaved edits found on disk at start.
    DraftsFound(Vec<crate::draft::DraftFile>),
    /// The open edit's draft could not be written (or removed).
    DraftFailed(String),
}
