//! The race demo as bob plays it in his pane of an 80x24 terminal (`./demo.sh` gives each
//! client about 40x15): each step readable, the conflict showing both changes, the guide's
//! sentences whole, the protocol log showing the headers.

use super::*;

const W: u16 = 40;
const H: u16 = 15;

fn exchange(method: &str, path: &str, if_match: Option<&str>, status: u16, etag: &str) -> Action {
    Action::Net(Reply::Exchange(Exchange {
        method: method.into(),
        path: path.into(),
        if_match: if_match.map(str::to_string),
        status: Some(status),
        etag: Some(etag.to_string()),
        millis: 2,
        note: None,
    }))
}

/// Bob's window, step by step: each screen at `w` x `h`, by name.
fn bob_plays_the_race(w: u16, h: u16) -> Vec<(&'static str, String)> {
    let mut screens = vec![];
    let mut s = guided("bob", crate::guide::Role::Stock);
    let v1 = product(1, 1, 39900, Status::InStock, "seed");
    update(
        &mut s,
        exchange(
            "GET",
            "/products?limit=1000",
            None,
            200,
            "\"11570000c0ffee00\"",
        ),
    );
    screens.push(("catalog", render_at(&mut s, w, h)));
    update(&mut s, key(KeyCode::Enter));
    update(&mut s, exchange("GET", "/products/1", None, 304, &v1.etag));
    focus(&mut s, Field::Status);
    update(&mut s, key(KeyCode::Down));
    let theirs = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &theirs));
    screens.push(("editor_stale", render_at(&mut s, w, h)));
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!("{cmds:?}")
    };
    update(
        &mut s,
        exchange("PUT", "/products/1", Some(&v1.etag), 412, &theirs.etag),
    );
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Conflict(Box::new(theirs.clone())),
        }),
    );
    update(
        &mut s,
        exchange("GET", "/products/1/versions/1", None, 200, &v1.etag),
    );
    update(&mut s, Action::Net(Reply::Version(Box::new(v1.clone()))));
    screens.push(("conflict", render_at(&mut s, w, h)));
    let cmds = update(&mut s, key(KeyCode::Char('m')));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!("{cmds:?}")
    };
    let merged = product(1, 3, 30000, Status::OutOfStock, "bob");
    update(
        &mut s,
        exchange("PUT", "/products/1", Some(&theirs.etag), 200, &merged.etag),
    );
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Merge,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(merged.clone())),
        }),
    );
    update(&mut s, event(27, Op::Updated, &merged));
    screens.push(("merged", render_at(&mut s, w, h)));
    update(&mut s, key(KeyCode::Char('l')));
    screens.push(("log", render_at(&mut s, w, h)));
    screens
}

/// The screen's text as one line (rows joined), to find a sentence that wraps.
fn flat(screen: &str) -> String {
    screen
        .lines()
        .map(|l| l.trim_matches('"').trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_race_at_40x15_step_by_step() {
    for (name, screen) in bob_plays_the_race(W, H) {
        insta::assert_snapshot!(format!("race_40x15_{name}"), screen);
    }
}

/// In the demo's real panes (40 or 39 columns, 14 or 15 rows): after the 412 bob sees
/// alice's price and his status, that nothing was lost and what to do; the log shows the
/// exchanges with their If-Match and ETag.
#[test]
fn the_race_can_be_followed_in_the_demos_panes() {
    for (w, h) in [(40, 15), (40, 14), (39, 14)] {
        let screens: std::collections::HashMap<_, _> =
            bob_plays_the_race(w, h).into_iter().collect();
        let stale = &screens["editor_stale"];
        assert!(stale.contains("alice changed price"), "{w}x{h}:\n{stale}");
        assert!(
            flat(stale).contains("press Ctrl-S anyway."),
            "{w}x{h}:\n{stale}"
        );
        let conflict = &screens["conflict"];
        let row = |field: &str| {
            conflict
                .lines()
                .find(|l| l.trim_start_matches(['"', '│']).starts_with(field))
                .unwrap_or_else(|| panic!("{w}x{h}: no {field} row:\n{conflict}"))
                .to_string()
        };
        assert!(row("price").contains("$300.00"), "{w}x{h}:\n{conflict}");
        assert!(row("status").contains("out_of"), "{w}x{h}:\n{conflict}");
        let text = flat(conflict);
        assert!(
            text.contains("412: alice saved version 2 first."),
            "{w}x{h}:\n{conflict}"
        );
        assert!(text.contains("was lost."), "{w}x{h}:\n{conflict}");
        assert!(text.contains("m merges"), "{w}x{h}:\n{conflict}");
        // The guide, when it shows, shows whole sentences: the lesson of the headers.
        if let Some(guide) = text.split("▶ ").nth(1) {
            assert!(
                guide.contains("412 Precondition Failed."),
                "{w}x{h}:\n{conflict}"
            );
        }
        let log = &screens["log"];
        let exchanges = log.lines().filter(|l| l.contains("If-Match \"")).count();
        assert!(exchanges >= 2, "{w}x{h}:\n{log}");
        assert!(log.contains("PUT /products/1 412"), "{w}x{h}:\n{log}");
    }
}
