//! The screens, one module each (catalog, drafts, editor and conflict panel, history, log,
//! help). A screen owns its state, turns a key or a live change into [`Effect`]s, says
//! which keys it has now, and draws itself; it never assigns another screen's fields.
//! [`Route`] says which screen is open and holds its state, so a screen without its data
//! cannot be written. One place (`state::update`) applies the effects.

pub mod catalog;
pub mod conflict;
pub mod drafts;
pub mod edit;
pub mod editor;
pub mod help;
pub mod history;
pub mod log;

use std::path::PathBuf;
use std::time::SystemTime;

use catalog_shared::event::ChangeEvent;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};

use crate::keymap::Hint;
use crate::model::{Model, Notice};
use crate::net::Command;

pub use drafts::Drafts;
pub use edit::EditSession;
pub use history::History;

/// What a screen asks for; `state::update` carries it out.
#[derive(Debug)]
pub enum Effect {
    /// A request for the network.
    Net(Command),
    /// Open another screen (leaving this one and its state behind).
    Go(Route),
    /// A yes-or-no question before anything happens.
    Ask(Modal),
    /// A message in the notice line.
    Say(Notice),
    /// Show the keys of this screen (`?`, F1).
    Help,
    /// Show or hide the protocol log.
    ToggleLog,
    /// A draft file the user discarded, for the app to remove.
    RemoveDraft(PathBuf),
    Quit,
}

impl Effect {
    pub fn info(text: impl Into<String>) -> Effect {
        Effect::Say(Notice::info(text))
    }

    pub fn error(text: impl Into<String>) -> Effect {
        Effect::Say(Notice::error(text))
    }
}

/// The open screen, with its state. The catalog is always underneath: its view state
/// lives beside the route, so coming back finds it as it was left.
#[derive(Debug)]
pub enum Route {
    Catalog,
    /// Unsaved drafts found on disk.
    Drafts(Drafts),
    /// An edit: its editor, and the conflict panel once a save met a 412 or 410.
    Edit(Box<EditSession>),
    History(History),
}

/// Which screen is shown, by name (for the guide, and for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Catalog,
    Drafts,
    Editor,
    Conflict,
    History,
}

impl Route {
    pub fn screen(&self) -> Screen {
        match self {
            Route::Catalog => Screen::Catalog,
            Route::Drafts(_) => Screen::Drafts,
            Route::Edit(e) if e.conflict.is_some() => Screen::Conflict,
            Route::Edit(_) => Screen::Editor,
            Route::History(_) => Screen::History,
        }
    }

    /// The rows the open screen needs for what it must show (the frame gives the guide,
    /// the notice and the log only what is left).
    pub fn min_height(&self, width: u16) -> u16 {
        match self {
            Route::Edit(e) => e.min_height(width),
            _ => 5,
        }
    }

    /// The open edit, if the route is one.
    pub fn edit(&self) -> Option<&EditSession> {
        match self {
            Route::Edit(e) => Some(e),
            _ => None,
        }
    }
}

/// What every screen answers to (the catalog also takes the mouse).
pub trait Component {
    /// A key pressed while this screen is shown.
    fn on_key(&mut self, model: &mut Model, key: KeyEvent) -> Vec<Effect>;
    /// A change of the live feed (or a re-read), once the model has applied it.
    fn on_change(&mut self, model: &Model, event: &ChangeEvent) -> Vec<Effect>;
    /// The keys this screen has now: the status bar and the help are built from them.
    fn keys(&self, model: &Model) -> Vec<Hint>;
    /// Draws the screen into `area`.
    fn draw(&mut self, frame: &mut Frame, area: Rect, model: &Model);
}

/// A question that needs a yes or no before anything happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// `q` or Esc with unsaved edits.
    Quit,
    LeaveEditor,
    Delete {
        id: i64,
        sku: String,
        etag: String,
        version: i64,
    },
    /// `r` in the conflict panel when it throws edits away.
    Reload,
    /// `x` on a deleted product.
    Discard,
}

impl Modal {
    pub fn question(&self) -> String {
        match self {
            Modal::Quit => {
                "You have unsaved edits. Quit? They are not sent; they are written to a draft file."
                    .into()
            }
            Modal::LeaveEditor => "You have unsaved edits. Leave the editor and lose them?".into(),
            Modal::Delete {
                id,
                sku,
                etag,
                version,
            } => format!(
                "Delete product {id} ({sku}), version {version}? It is sent with If-Match: {etag}, so it fails if someone changed it."
            ),
            Modal::Reload => "Reload theirs and throw away your edits?".into(),
            Modal::Discard => "Throw away your edit of the deleted product?".into(),
        }
    }
}

pub(crate) fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

/// A centered rectangle.
pub fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// "12s", "3m", "5h", "2d" from an RFC 3339 time to now.
pub fn ago(rfc3339: &str, now: SystemTime) -> String {
    let Ok(t) = humantime::parse_rfc3339(rfc3339) else {
        return "?".into();
    };
    let s = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The time of day of an RFC 3339 timestamp (UTC), for banners.
pub fn clock(rfc3339: &str) -> String {
    rfc3339
        .split('T')
        .nth(1)
        .map(|t| t.chars().take(8).collect())
        .unwrap_or_else(|| rfc3339.to_string())
}

/// An ETag cut to its first 8 hex digits and `…` (`"bc95780f…`), where room is short;
/// the editor and the protocol log show it whole.
pub fn short_etag(etag: &str) -> String {
    let quoted = etag.starts_with('"');
    let hex: String = etag.trim_matches('"').chars().take(9).collect();
    if hex.chars().count() <= 8 {
        return etag.to_string();
    }
    let hex: String = hex.chars().take(8).collect();
    format!("{}{hex}…", if quoted { "\"" } else { "" })
}

/// `text` with every whole ETag (16 hex digits in quotes) cut to [`short_etag`].
pub fn short_etags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let tag = tail
            .get(..18)
            .filter(|t| t.ends_with('"') && t[1..17].chars().all(|c| c.is_ascii_hexdigit()));
        match tag {
            Some(tag) => {
                out.push_str(&short_etag(tag));
                rest = &tail[18..];
            }
            None => {
                out.push('"');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Cuts a string to `n` characters, marking the cut, on one line.
pub fn clip(s: &str, n: usize) -> String {
    let one_line = s.lines().next().unwrap_or("");
    let more = s.lines().nth(1).is_some();
    if one_line.chars().count() > n {
        let mut out: String = one_line.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    } else if more {
        format!("{one_line} ⏎…")
    } else {
        one_line.to_string()
    }
}
