//! Unit tests of the update logic, one module per screen, and insta snapshots of every
//! screen on `TestBackend`. Helpers shared by them are here.

mod catalog;
mod conflict;
mod drafts;
mod editor;
mod guide;
mod history;
mod race;
mod screens;

use catalog_shared::event::Op;
use catalog_shared::merge::Side;
use catalog_shared::product::{Field, FieldError, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::action::{Action, Connection, Exchange, Reply, SavePurpose, WriteOutcome};
use crate::fixtures::*;
use crate::state::{Command, Modal, Screen, State, update};

/// Opens product 1 in the editor.
fn editing(user: &str) -> State {
    let mut s = state(user);
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.screen(), Screen::Editor);
    s
}

fn focus(s: &mut State, field: Field) {
    while s.editor().unwrap().focused() != field {
        update(s, key(KeyCode::Tab));
    }
}

/// Bob has changed the status to out_of_stock, alice saved a price of $300.00, bob saved
/// and got 412: the conflict panel is open.
fn conflict(bob_price: Option<&str>) -> State {
    let mut s = editing("bob");
    focus(&mut s, Field::Status);
    update(&mut s, key(KeyCode::Down));
    if let Some(p) = bob_price {
        focus(&mut s, Field::Price);
        replace_field(&mut s, p);
    }
    let theirs = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &theirs));
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!("{cmds:?}")
    };
    let cmds = answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Conflict(Box::new(theirs)),
        }),
    );
    assert_eq!(cmds, vec![Command::FetchVersion { id: 1, version: 1 }]);
    s
}

fn render(s: &mut State) -> String {
    render_at(s, 110, 30)
}

fn guided(user: &str, role: crate::guide::Role) -> State {
    let mut s = state(user);
    s.model.guide = Some(role);
    s
}

/// The commands that read or write data (presence announcements aside).
fn without_presence(cmds: Vec<Command>) -> Vec<Command> {
    cmds.into_iter()
        .filter(|c| !matches!(c, Command::Announce { .. } | Command::Withdraw))
        .collect()
}

/// The screen in a terminal of `width` x `height` (which the state is told, as the app
/// tells it).
fn render_at(s: &mut State, width: u16, height: u16) -> String {
    update(s, Action::Resize(width, height));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| crate::view::draw(f, s)).unwrap();
    terminal.backend().to_string()
}
