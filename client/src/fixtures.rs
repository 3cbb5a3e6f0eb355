//! Fixed products and states for unit and snapshot tests (no clock, no randomness).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::action::{Action, Reply};
use crate::state::{State, update};

/// 2026-11-22T12:00:30Z.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_348_830)
}

pub fn product(id: i64, version: i64, price_cents: i64, status: Status, by: &str) -> Product {
    let (sku, name) = match id {
        1 => ("BBQ-KETTLE-57", "Kettle charcoal BBQ, 57 cm"),
        2 => ("LAMP-ARC-01", "Arc floor lamp, brushed steel"),
        3 => ("KETTLE-GOOSE-1L", "Gooseneck kettle, 1 l"),
        _ => ("MUG-STONE-2", "Stoneware mugs, pair"),
    };
    Product {
        id,
        sku: sku.into(),
        name: name.into(),
        description: "Sturdy and handsome.".into(),
        price_cents,
        status,
        version,
        updated_at: "2026-11-22T12:00:00.000Z".into(),
        updated_by: by.into(),
        // 16 hex digits like the server's, distinct in the first 8 (what a narrow table shows).
        etag: format!("\"{:08x}00c0ffee\"", 0x5eed_0000 + id * 100 + version),
    }
}

/// A loaded catalog of four products, seen by `user`.
pub fn state(user: &str) -> State {
    let mut s = State::new(user, "http://127.0.0.1:8080", now());
    let load = s.model.load_requested;
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load,
            etag: None,
            list: vec![
                product(1, 1, 39900, Status::InStock, "seed"),
                product(2, 1, 18900, Status::InStock, "seed"),
                product(3, 1, 7450, Status::OutOfStock, "seed"),
                product(4, 1, 2400, Status::Discontinued, "seed"),
            ],
        }),
    );
    update(
        &mut s,
        Action::Net(Reply::Connection(crate::action::Connection::Live)),
    );
    s
}

pub fn event(seq: i64, op: Op, p: &Product) -> Action {
    Action::Net(Reply::Event(Box::new(ChangeEvent::from_product(
        seq,
        op,
        p.clone(),
    ))))
}

pub fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Types text into whatever has focus.
pub fn type_text(s: &mut State, text: &str) {
    for c in text.chars() {
        update(s, key(KeyCode::Char(c)));
    }
}

/// Replaces the focused single-line field's text (Home, Ctrl-K, type).
pub fn replace_field(s: &mut State, text: &str) {
    update(s, key(KeyCode::Home));
    update(s, ctrl('k'));
    type_text(s, text);
}

/// In `Action::Net(Reply::Saved)`: the answer belongs to the edit on screen.
pub const ON_SCREEN: u64 = u64::MAX;

/// Applies an action; a save answer marked [`ON_SCREEN`] is addressed to the edit on
/// screen (the editor's, or the conflict panel's).
pub fn answer(s: &mut State, mut action: Action) -> Vec<crate::state::Command> {
    if let Action::Net(Reply::Saved { edit, .. }) = &mut action
        && *edit == ON_SCREEN
    {
        *edit = s.editor().map_or(0, |e| e.token);
    }
    update(s, action)
}
