//! Unit tests of the update logic, and insta snapshots of every screen on `TestBackend`.

use catalog_shared::event::Op;
use catalog_shared::merge::Side;
use catalog_shared::product::{Field, FieldError, Status};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::action::{Action, Connection, Exchange, Reply, SavePurpose, WriteOutcome};
use crate::fixtures::*;
use crate::keymap::{self, Keys};
use crate::state::{Command, Modal, Screen, State, update};

/// Opens product 1 in the editor.
fn editing(user: &str) -> State {
    let mut s = state(user);
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.screen, Screen::Editor);
    s
}

fn focus(s: &mut State, field: Field) {
    while s.editor.as_ref().unwrap().focused() != field {
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

#[test]
fn ctrl_s_saves_with_the_base_etag() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let cmds = update(&mut s, ctrl('s'));
    match &cmds[..] {
        [
            Command::Save {
                edit: _,
                key: _,
                purpose: SavePurpose::Edit,
                id: Some(1),
                fields,
                if_match: Some(tag),
            },
        ] => {
            assert_eq!(fields.price_cents, 30000);
            assert_eq!(tag, &product(1, 1, 0, Status::InStock, "").etag);
        }
        other => panic!("{other:?}"),
    }
    // A second Ctrl-S while the first is in flight sends nothing.
    assert!(update(&mut s, ctrl('s')).is_empty());
}

#[test]
fn f8_saves_without_if_match_only_in_the_lost_update_demo() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "1");
    // In safe mode F8 does nothing and is not offered.
    assert!(update(&mut s, key(KeyCode::F(8))).is_empty());
    assert!(!keymap::hints(s.keys()).iter().any(|h| h.keys == "F8"));
    s.unsafe_saves = true;
    assert!(keymap::hints(s.keys()).iter().any(|h| h.keys == "F8"));
    let cmds = update(&mut s, key(KeyCode::F(8)));
    assert!(matches!(
        &cmds[..],
        [Command::Save {
            if_match: None,
            id: Some(1),
            ..
        }]
    ));
}

#[test]
fn a_new_product_editor_says_what_a_create_sends() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('a')));
    let bar = keymap::bar(s.keys());
    assert!(bar.contains("create (POST, no If-Match)"), "{bar}");
    assert!(
        !bar.contains("If-Match)") || bar.contains("no If-Match"),
        "{bar}"
    );
}

#[test]
fn sort_cycles_columns_and_direction_and_n_walks_matches() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('s')));
    assert_eq!(s.sort.column, crate::state::SortColumn::Sku);
    // BBQ-KETTLE-57 (1), KETTLE-GOOSE-1L (3), LAMP-ARC-01 (2), MUG-STONE-2 (4)
    assert_eq!(s.visible, vec![1, 3, 2, 4]);
    update(&mut s, key(KeyCode::Char('S')));
    assert_eq!(s.visible, vec![4, 2, 3, 1]);
    // A live change moves its row to where the order puts it.
    let mut renamed = product(4, 2, 2400, Status::InStock, "carol");
    renamed.sku = "AAA-FIRST".into();
    update(&mut s, event(26, Op::Updated, &renamed));
    assert_eq!(s.visible, vec![2, 3, 1, 4]);
    let screen = render(&s);
    assert!(screen.contains("sku▼"), "{screen}");
    // n and N walk the rows matching the filter, wrapping around.
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('/')));
    type_text(&mut s, "kettle");
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.visible, vec![1, 3]);
    s.selected_id = Some(1);
    update(&mut s, key(KeyCode::Char('n')));
    assert_eq!(s.selected_id, Some(3));
    update(&mut s, key(KeyCode::Char('n')));
    assert_eq!(s.selected_id, Some(1));
    update(&mut s, key(KeyCode::Char('N')));
    assert_eq!(s.selected_id, Some(3));
}

#[test]
fn invalid_fields_block_the_save_and_say_why() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "-3");
    focus(&mut s, Field::Sku);
    replace_field(&mut s, "bad sku");
    assert!(update(&mut s, ctrl('s')).is_empty());
    let notice = s.notice.clone().unwrap();
    assert!(notice.error);
    assert!(
        notice.text.contains("price must not be negative"),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("sku may contain only"),
        "{}",
        notice.text
    );
    assert!(s.editor.is_some(), "edits are kept");
}

#[test]
fn tab_and_shift_tab_wrap_in_editor_order() {
    let mut s = editing("bob");
    let order: Vec<Field> = (0..6)
        .map(|_| {
            let f = s.editor.as_ref().unwrap().focused();
            update(&mut s, key(KeyCode::Tab));
            f
        })
        .collect();
    assert_eq!(
        order,
        [
            Field::Name,
            Field::Sku,
            Field::Price,
            Field::Status,
            Field::Description,
            Field::Name
        ]
    );
    update(&mut s, key(KeyCode::Home));
    let mut s = editing("bob");
    update(&mut s, key(KeyCode::BackTab));
    assert_eq!(s.editor.as_ref().unwrap().focused(), Field::Description);
}

#[test]
fn a_clean_editor_refreshes_and_a_dirty_one_warns() {
    let mut clean = editing("bob");
    let theirs = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut clean, event(26, Op::Updated, &theirs));
    let e = clean.editor.as_ref().unwrap();
    assert!(e.stale.is_none());
    assert_eq!(e.base.as_ref().unwrap().version, 2);
    assert_eq!(e.text(Field::Price), "300.00");

    let mut dirty = editing("bob");
    focus(&mut dirty, Field::Name);
    type_text(&mut dirty, "!");
    update(&mut dirty, event(26, Op::Updated, &theirs));
    let e = dirty.editor.as_ref().unwrap();
    let stale = e.stale.as_ref().expect("a banner");
    assert_eq!(stale.by, "alice");
    assert_eq!(stale.fields, vec![Field::Price]);
    assert_eq!(e.base.as_ref().unwrap().version, 1, "the base stays");
    assert!(e.text(Field::Name).ends_with('!'), "my edit stays");
}

#[test]
fn a_412_opens_the_panel_with_one_sided_changes_resolved() {
    let s = conflict(None);
    assert_eq!(s.screen, Screen::Conflict);
    let p = s.conflict.as_ref().unwrap();
    assert!(p.merge.conflicts().is_empty());
    assert_eq!(p.merge.mine.status, Status::OutOfStock);
    assert_eq!(p.merge.theirs.price_cents, 30000);
    assert!(
        s.notice
            .as_ref()
            .unwrap()
            .text
            .contains("alice saved product 1 first")
    );
}

#[test]
fn merge_without_overlap_saves_at_once_with_the_current_etag() {
    let mut s = conflict(None);
    let cmds = update(&mut s, key(KeyCode::Char('m')));
    match &cmds[..] {
        [
            Command::Save {
                edit: _,
                key: _,
                purpose: SavePurpose::Merge,
                id: Some(1),
                fields,
                if_match: Some(tag),
            },
        ] => {
            assert_eq!(
                (fields.price_cents, fields.status),
                (30000, Status::OutOfStock)
            );
            assert_eq!(tag, &product(1, 2, 0, Status::InStock, "").etag);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_with_overlap_asks_for_each_pick() {
    let mut s = conflict(Some("350"));
    let p = s.conflict.as_ref().unwrap();
    assert_eq!(p.merge.conflicts(), vec![Field::Price]);
    assert!(update(&mut s, key(KeyCode::Char('m'))).is_empty());
    assert!(s.conflict.as_ref().unwrap().picking);
    assert_eq!(s.keys(), Keys::ConflictPicking);
    // Ctrl-S before picking: refused, with a reason.
    assert!(update(&mut s, ctrl('s')).is_empty());
    assert!(s.notice.as_ref().unwrap().text.contains("price"));
    // ← picks mine on the selected (first conflicting) row.
    update(&mut s, key(KeyCode::Left));
    assert_eq!(
        s.conflict.as_ref().unwrap().picks.get(&Field::Price),
        Some(&Side::Mine)
    );
    update(&mut s, key(KeyCode::Char('T')));
    assert_eq!(
        s.conflict.as_ref().unwrap().picks.get(&Field::Price),
        Some(&Side::Theirs)
    );
    update(&mut s, key(KeyCode::Char('A')));
    let cmds = update(&mut s, ctrl('s'));
    match &cmds[..] {
        [
            Command::Save {
                edit: _,
                key: _,
                purpose: SavePurpose::Merge,
                fields,
                ..
            },
        ] => {
            assert_eq!(
                (fields.price_cents, fields.status),
                (35000, Status::OutOfStock)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn overwrite_sends_mine_with_the_current_etag() {
    let mut s = conflict(None);
    let cmds = update(&mut s, key(KeyCode::Char('o')));
    match &cmds[..] {
        [
            Command::Save {
                edit: _,
                key: _,
                purpose: SavePurpose::Overwrite,
                fields,
                if_match: Some(tag),
                ..
            },
        ] => {
            assert_eq!(
                (fields.price_cents, fields.status),
                (39900, Status::OutOfStock)
            );
            assert_eq!(tag, &product(1, 2, 0, Status::InStock, "").etag);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reload_asks_first_then_takes_theirs() {
    let mut s = conflict(None);
    assert!(update(&mut s, key(KeyCode::Char('r'))).is_empty());
    assert_eq!(s.modal, Some(Modal::Reload));
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.screen, Screen::Conflict, "Esc keeps everything");
    update(&mut s, key(KeyCode::Char('r')));
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.screen, Screen::Editor);
    let e = s.editor.as_ref().unwrap();
    assert_eq!(e.base.as_ref().unwrap().version, 2);
    assert_eq!(e.text(Field::Status), "in_stock");
    assert!(!e.is_dirty());
}

#[test]
fn esc_from_the_panel_returns_to_my_edit_intact() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.screen, Screen::Editor);
    let e = s.editor.as_ref().unwrap();
    assert_eq!(e.text(Field::Price), "350");
    assert_eq!(e.text(Field::Status), "out_of_stock");
}

#[test]
fn a_repeated_conflict_keeps_base_and_mine() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('o')));
    let third = product(1, 3, 25000, Status::Discontinued, "carol");
    let mine = s.conflict.as_ref().unwrap().merge.mine.clone();
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Overwrite,
            id: Some(1),
            sent: Box::new(mine.clone()),
            outcome: WriteOutcome::Conflict(Box::new(third)),
        }),
    );
    let p = s.conflict.as_ref().unwrap();
    assert_eq!(p.base_version, 1);
    assert_eq!(p.merge.mine, mine);
    assert_eq!(p.theirs.updated_by, "carol");
    assert_eq!(p.merge.conflicts(), vec![Field::Status]);
}

#[test]
fn a_deleted_record_offers_recreate_or_discard() {
    let mut s = conflict(None);
    let gone = product(1, 2, 30000, Status::InStock, "carol");
    update(&mut s, event(27, Op::Deleted, &gone));
    assert_eq!(s.keys(), Keys::ConflictDeleted);
    let cmds = update(&mut s, key(KeyCode::Char('c')));
    assert!(matches!(
        &cmds[..],
        [Command::Save {
            edit: _,
            key: _,
            purpose: SavePurpose::Recreate,
            id: None,
            if_match: None,
            ..
        }]
    ));

    let mut s = conflict(None);
    update(&mut s, event(27, Op::Deleted, &gone));
    update(&mut s, key(KeyCode::Char('x')));
    assert_eq!(s.modal, Some(Modal::Discard));
    update(&mut s, key(KeyCode::Char('y')));
    assert_eq!(s.screen, Screen::Catalog);
    assert!(s.editor.is_none());
}

#[test]
fn a_410_on_save_opens_the_deleted_panel() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "5");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!()
    };
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Gone {
                by: "carol".into(),
                at: "2026-11-22T12:00:10.000Z".into(),
            },
        }),
    );
    assert_eq!(s.screen, Screen::Conflict);
    assert_eq!(
        s.conflict.as_ref().unwrap().deleted,
        Some(("carol".into(), "2026-11-22T12:00:10.000Z".into()))
    );
}

#[test]
fn network_failure_keeps_the_edit_and_says_what_to_do() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "5");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!()
    };
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Failed(
                "cannot reach the server at http://127.0.0.1:8080 (is it running?)".into(),
            ),
        }),
    );
    assert_eq!(s.screen, Screen::Editor);
    assert_eq!(s.editor.as_ref().unwrap().text(Field::Price), "5");
    let n = s.notice.as_ref().unwrap();
    assert!(n.error && n.text.contains("Your edits are kept") && n.text.contains("Ctrl-S"));
    // And saving again is possible.
    assert_eq!(update(&mut s, ctrl('s')).len(), 1);
}

#[test]
fn server_field_errors_mark_the_fields() {
    let mut s = editing("bob");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!()
    };
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Invalid(vec![FieldError {
                field: "sku".into(),
                message: "is taken".into(),
            }]),
        }),
    );
    let errors = s.editor.as_ref().unwrap().check().unwrap_err();
    assert_eq!(
        errors.get(&Field::Sku).map(String::as_str),
        Some("is taken")
    );
}

#[test]
fn leaving_or_quitting_with_edits_asks_first() {
    let mut s = editing("bob");
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.screen, Screen::Catalog, "no edits: leaves at once");
    update(&mut s, key(KeyCode::Enter));
    type_text(&mut s, "x");
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.modal, Some(Modal::LeaveEditor));
    update(&mut s, key(KeyCode::Char('a')));
    assert_eq!(s.screen, Screen::Editor);
    assert!(s.editor.as_ref().unwrap().is_dirty());
    update(&mut s, ctrl('c'));
    assert!(s.quit, "Ctrl-C always quits");

    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('q')));
    assert!(s.quit);
}

#[test]
fn events_update_rows_and_highlight_other_users() {
    let mut s = state("bob");
    let p = product(2, 2, 100, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &p));
    assert_eq!(s.products[&2].etag, p.etag);
    assert_eq!(s.recent.get(&2).map(|r| r.0.as_str()), Some("alice"));
    assert_eq!(s.last_seq, Some(26));
    // An older version never replaces a newer one.
    update(
        &mut s,
        event(27, Op::Updated, &product(2, 1, 5, Status::InStock, "x")),
    );
    assert_eq!(s.products[&2].price_cents, 100);
    update(&mut s, Action::Tick(now() + crate::state::HIGHLIGHT));
    assert!(s.recent.is_empty(), "the highlight fades");
    update(&mut s, event(28, Op::Deleted, &p));
    assert!(!s.products.contains_key(&2));
    assert_eq!(s.visible, vec![1, 3, 4]);
}

#[test]
fn a_stale_list_cannot_revive_a_deleted_product() {
    let mut s = state("bob");
    update(&mut s, Action::Net(Reply::Reset));
    update(
        &mut s,
        event(30, Op::Deleted, &product(3, 1, 0, Status::InStock, "carol")),
    );
    update(
        &mut s,
        event(31, Op::Updated, &product(1, 5, 1, Status::InStock, "carol")),
    );
    let load = s.load_requested;
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load,
            etag: None,
            list: vec![
                product(1, 4, 0, Status::InStock, "x"),
                product(3, 1, 0, Status::InStock, "x"),
            ],
        }),
    );
    assert_eq!(s.products.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(s.products[&1].version, 5);
}

#[test]
fn filter_narrows_and_esc_clears() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('/')));
    type_text(&mut s, "kettle");
    assert_eq!(s.visible, vec![1, 3]);
    update(&mut s, key(KeyCode::Enter));
    assert!(!s.filtering);
    update(&mut s, key(KeyCode::Char('j')));
    assert_eq!(s.selected_id, Some(3));
    update(&mut s, key(KeyCode::Char('/')));
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.visible.len(), 4);
}

#[test]
fn delete_asks_then_sends_if_match() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('j')));
    assert!(update(&mut s, key(KeyCode::Char('d'))).is_empty());
    let cmds = update(&mut s, key(KeyCode::Enter));
    let [Command::Delete { id, if_match, key }] = cmds.as_slice() else {
        panic!("one delete: {cmds:?}")
    };
    assert_eq!(
        (*id, if_match),
        (2, &product(2, 1, 0, Status::InStock, "").etag)
    );
    assert_eq!(key.len(), 36, "a fresh Idempotency-Key: {key}");
    update(
        &mut s,
        Action::Net(Reply::Deleted {
            id: 2,
            outcome: WriteOutcome::Conflict(Box::new(product(2, 2, 1, Status::InStock, "alice"))),
        }),
    );
    assert!(
        s.notice
            .as_ref()
            .unwrap()
            .text
            .contains("alice changed product 2")
    );
    assert!(s.products.contains_key(&2));
}

#[test]
fn every_hint_names_a_key_that_does_something() {
    // The help and the status bar come from one table; check each catalog key acts.
    let keys: [(&str, Action); 9] = [
        ("Enter/e", key(KeyCode::Char('e'))),
        ("a", key(KeyCode::Char('a'))),
        ("d", key(KeyCode::Char('d'))),
        ("h", key(KeyCode::Char('h'))),
        ("l", key(KeyCode::Char('l'))),
        ("/", key(KeyCode::Char('/'))),
        ("?", key(KeyCode::Char('?'))),
        ("q", key(KeyCode::Char('q'))),
        ("Ctrl-C", ctrl('c')),
    ];
    for (name, action) in keys {
        assert!(
            keymap::hints(Keys::Catalog).iter().any(|h| h.keys == name),
            "{name} in the table"
        );
        let mut s = state("bob");
        let before = (
            s.screen,
            s.modal.clone(),
            s.show_log,
            s.filtering,
            s.help,
            s.quit,
        );
        let cmds = update(&mut s, action);
        let after = (
            s.screen,
            s.modal.clone(),
            s.show_log,
            s.filtering,
            s.help,
            s.quit,
        );
        assert!(before != after || !cmds.is_empty(), "{name} did nothing");
    }
}

#[test]
fn reconnect_says_so() {
    let mut s = state("bob");
    update(
        &mut s,
        Action::Net(Reply::Connection(Connection::Reconnecting {
            attempt: 1,
            reason: "x".into(),
            since: now(),
        })),
    );
    update(&mut s, Action::Net(Reply::Connection(Connection::Live)));
    assert!(s.notice.as_ref().unwrap().text.contains("Reconnected"));
}

// ---- Snapshots of every screen ----

fn render(s: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(110, 30)).unwrap();
    terminal.draw(|f| crate::screens::draw(f, s)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn snapshot_catalog() {
    let mut s = state("bob");
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(2, 2, 17900, Status::InStock, "alice"),
        ),
    );
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_catalog_with_log_and_filter() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('l')));
    update(&mut s, key(KeyCode::Char('/')));
    type_text(&mut s, "k");
    update(
        &mut s,
        Action::Net(Reply::Exchange(Exchange {
            method: "PUT".into(),
            path: "/products/1".into(),
            if_match: Some("\"000000005eed0065\"".into()),
            status: Some(412),
            etag: Some("\"000000005eed0066\"".into()),
            millis: 3,
            note: None,
        })),
    );
    update(
        &mut s,
        Action::Net(Reply::Connection(Connection::Reconnecting {
            attempt: 4,
            reason: "down".into(),
            since: now(),
        })),
    );
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_editor_with_stale_banner_and_error() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "12.345");
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(1, 2, 30000, Status::InStock, "alice"),
        ),
    );
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_new_product_editor() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('a')));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_conflict_pre_resolved() {
    insta::assert_snapshot!(render(&conflict(None)));
}

#[test]
fn snapshot_conflict_picking() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Char('m')));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_conflict_picked() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Char('m')));
    update(&mut s, key(KeyCode::Left));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_conflict_deleted() {
    let mut s = conflict(None);
    update(
        &mut s,
        event(
            27,
            Op::Deleted,
            &product(1, 2, 30000, Status::InStock, "carol"),
        ),
    );
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_confirm_reload() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('r')));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_history() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('h')));
    let v1 = product(1, 1, 39900, Status::InStock, "seed");
    let v2 = product(1, 2, 30000, Status::InStock, "alice");
    let versions = [&v1, &v2]
        .iter()
        .map(|p| crate::net::VersionInfo {
            version: p.version,
            etag: p.etag.clone(),
            updated_at: p.updated_at.clone(),
            updated_by: p.updated_by.clone(),
        })
        .collect();
    let cmds = update(
        &mut s,
        Action::Net(Reply::Versions {
            id: 1,
            versions: Ok(versions),
        }),
    );
    assert_eq!(
        cmds,
        vec![
            Command::FetchVersion { id: 1, version: 2 },
            Command::FetchVersion { id: 1, version: 1 }
        ]
    );
    update(&mut s, Action::Net(Reply::Version(Box::new(v1))));
    update(&mut s, Action::Net(Reply::Version(Box::new(v2))));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn snapshot_help_of_the_conflict_panel() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('?')));
    insta::assert_snapshot!(render(&s));
}

#[test]
fn release_events_are_ignored() {
    let mut s = state("bob");
    let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    k.kind = crossterm::event::KeyEventKind::Release;
    update(&mut s, Action::Key(k));
    assert!(!s.quit);
}

// ---- The guided demo ----

fn guided(user: &str, role: crate::guide::Role) -> State {
    let mut s = state(user);
    s.guide = Some(role);
    s
}

#[test]
fn the_guide_walks_bob_through_the_race() {
    use crate::guide::{Role, line};
    let mut s = guided("bob", Role::Stock);
    assert!(line(&s).unwrap().starts_with("Step 1"));
    update(&mut s, key(KeyCode::Enter));
    assert!(line(&s).unwrap().starts_with("Step 2"));
    focus(&mut s, Field::Status);
    update(&mut s, key(KeyCode::Down));
    assert!(line(&s).unwrap().starts_with("Step 3"));
    let theirs = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &theirs));
    let step4 = line(&s).unwrap();
    assert!(step4.starts_with("Step 4: alice saved first"), "{step4}");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save {
        fields, if_match, ..
    }) = cmds.first().cloned()
    else {
        panic!()
    };
    update(
        &mut s,
        Action::Net(Reply::Exchange(Exchange {
            method: "PUT".into(),
            path: "/products/1".into(),
            if_match: if_match.clone(),
            status: Some(412),
            etag: Some(theirs.etag.clone()),
            millis: 1,
            note: None,
        })),
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
    let wire = line(&s).unwrap();
    assert!(
        wire.contains(&format!(
            "bob sent If-Match {}, the server's ETag is {}: 412",
            if_match.unwrap(),
            theirs.etag
        )),
        "{wire}"
    );
    let merged = product(1, 3, 30000, Status::OutOfStock, "bob");
    update(&mut s, event(27, Op::Updated, &merged));
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Merge,
            id: Some(1),
            sent: Box::new(merged.fields()),
            outcome: WriteOutcome::Done(Some(merged)),
        }),
    );
    assert!(line(&s).unwrap().starts_with("Done: version 3"));
}

#[test]
fn the_guide_is_off_without_a_role() {
    assert_eq!(crate::guide::line(&state("bob")), None);
}

#[test]
fn a_save_without_if_match_names_the_lost_change() {
    let mut s = editing("bob");
    s.unsafe_saves = true;
    focus(&mut s, Field::Status);
    update(&mut s, key(KeyCode::Down));
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(1, 2, 30000, Status::InStock, "alice"),
        ),
    );
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save {
        fields,
        if_match: None,
        purpose: SavePurpose::Unconditional,
        ..
    }) = cmds.first().cloned()
    else {
        panic!("{cmds:?}")
    };
    let mut saved = product(1, 3, 39900, Status::OutOfStock, "bob");
    saved.status = fields.status;
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Unconditional,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(saved)),
        }),
    );
    let n = s.notice.clone().unwrap();
    assert!(
        n.error
            && n.text.contains("LOST UPDATE")
            && n.text.contains("alice")
            && n.text.contains("Their price is gone"),
        "{}",
        n.text
    );
}

#[test]
fn snapshot_catalog_before_the_server_answers() {
    let mut s = State::new("zed", "http://127.0.0.1:8080", now());
    update(
        &mut s,
        Action::Net(Reply::Connection(Connection::Reconnecting {
            attempt: 3,
            reason: "cannot reach the server at http://127.0.0.1:8080 (is it running?)".into(),
            since: now(),
        })),
    );
    insta::assert_snapshot!(render(&s));
}

#[test]
fn q_in_the_conflict_panel_asks_before_quitting() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('q')));
    assert_eq!(s.modal, Some(Modal::Quit));
    assert!(s.modal.as_ref().unwrap().question().contains("draft file"));
    update(&mut s, key(KeyCode::Esc));
    assert!(!s.quit);
    update(&mut s, key(KeyCode::Char('q')));
    update(&mut s, key(KeyCode::Enter));
    assert!(s.quit);
    assert!(
        s.has_unsaved_edits(),
        "the edit is still there for the draft file"
    );
}

#[test]
fn keys_typed_while_a_save_is_in_flight_are_kept() {
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "300");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!()
    };
    // Bob keeps typing in the name before the answer arrives.
    focus(&mut s, Field::Name);
    type_text(&mut s, " XL");
    let saved = product(1, 2, 30000, Status::InStock, "bob");
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(saved)),
        }),
    );
    assert_eq!(s.screen, Screen::Editor);
    let e = s.editor.as_ref().unwrap();
    assert_eq!(
        e.base.as_ref().unwrap().version,
        2,
        "rebased on the saved version"
    );
    assert!(e.text(Field::Name).ends_with(" XL"));
    assert_eq!(
        e.edited_fields(),
        vec![Field::Name],
        "only the new typing is unsaved"
    );
    // A save with nothing typed meanwhile closes the editor.
    let mut s = editing("bob");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { fields, .. }) = cmds.first().cloned() else {
        panic!()
    };
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(product(1, 2, 39900, Status::InStock, "bob"))),
        }),
    );
    assert_eq!(s.screen, Screen::Catalog);
}

#[test]
fn the_guide_tells_alice_when_her_price_was_lost() {
    use crate::guide::{Role, line};
    let mut s = guided("alice", Role::Price);
    update(
        &mut s,
        Action::Net(Reply::Exchange(Exchange {
            method: "PUT".into(),
            path: "/products/1".into(),
            if_match: Some("\"a\"".into()),
            status: Some(200),
            etag: Some("\"b\"".into()),
            millis: 1,
            note: None,
        })),
    );
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(1, 2, 30000, Status::InStock, "alice"),
        ),
    );
    assert!(
        line(&s)
            .unwrap()
            .starts_with("Saved: the BBQ is now version 2")
    );
    update(
        &mut s,
        event(
            27,
            Op::Updated,
            &product(1, 3, 39900, Status::OutOfStock, "bob"),
        ),
    );
    let text = line(&s).unwrap();
    assert!(
        text.starts_with("Your $300.00 is gone: bob saved version 3 with the price at $399.00"),
        "{text}"
    );
}

// ---- Every answer finds its own edit; loads are ordered; mine is by request ----

#[test]
fn a_late_save_answer_never_lands_on_another_edit() {
    let mut s = editing("alice");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let cmds = update(&mut s, ctrl('s'));
    let Some(Command::Save { edit: first, .. }) = cmds.first().cloned() else {
        panic!("{cmds:?}")
    };
    // The reply is slow. Alice leaves (discarding) and starts a new product.
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.modal, Some(Modal::LeaveEditor));
    update(&mut s, key(KeyCode::Char('y')));
    update(&mut s, key(KeyCode::Char('a')));
    assert_eq!(s.screen, Screen::Editor);
    focus(&mut s, Field::Sku);
    type_text(&mut s, "NEW-1");
    // Product 1's answer arrives: the catalog learns of it, the new editor does not.
    let saved = product(1, 2, 30000, Status::InStock, "alice");
    let sent = saved.fields();
    let cmds = update(
        &mut s,
        Action::Net(Reply::Saved {
            edit: first,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(sent),
            outcome: WriteOutcome::Done(Some(saved)),
        }),
    );
    assert!(cmds.is_empty());
    let editor = s.editor.as_ref().unwrap();
    assert_eq!((editor.id, editor.base.is_none()), (None, true));
    assert_eq!(editor.text(Field::Sku), "NEW-1");
    assert_eq!(s.screen, Screen::Editor);
    assert_eq!(s.products[&1].version, 2);
    assert!(
        s.notice.as_ref().unwrap().text.contains("earlier save"),
        "{:?}",
        s.notice
    );
    // Her next Ctrl-S creates the new product; it does not PUT over product 1.
    focus(&mut s, Field::Name);
    type_text(&mut s, "Brand new");
    let cmds = update(&mut s, ctrl('s'));
    assert!(
        matches!(
            &cmds[..],
            [Command::Save {
                id: None,
                if_match: None,
                ..
            }]
        ),
        "{cmds:?}"
    );
}

#[test]
fn a_refused_late_answer_reports_without_opening_a_panel() {
    let mut s = editing("alice");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let Some(Command::Save { edit, fields, .. }) = update(&mut s, ctrl('s')).first().cloned()
    else {
        panic!()
    };
    update(&mut s, key(KeyCode::Esc));
    update(&mut s, key(KeyCode::Char('y')));
    let theirs = product(1, 2, 1, Status::InStock, "bob");
    update(
        &mut s,
        Action::Net(Reply::Saved {
            edit,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Conflict(Box::new(theirs)),
        }),
    );
    assert_eq!(s.screen, Screen::Catalog);
    assert!(s.conflict.is_none());
    assert_eq!(s.products[&1].updated_by, "bob");
    assert!(s.notice.as_ref().unwrap().error);
}

#[test]
fn an_older_load_never_overwrites_a_newer_one() {
    let mut s = state("bob");
    let first = update(&mut s, Action::Net(Reply::Reset));
    let second = update(&mut s, Action::Net(Reply::Reset));
    let ([Command::LoadAll { load: l1, .. }], [Command::LoadAll { load: l2, .. }]) =
        (&first[..], &second[..])
    else {
        panic!("{first:?} {second:?}")
    };
    assert!(l2 > l1);
    // The newer load answers first; then the older one, with stale data, arrives.
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load: *l2,
            etag: None,
            list: vec![product(1, 7, 700, Status::InStock, "carol")],
        }),
    );
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load: *l1,
            etag: None,
            list: vec![
                product(1, 3, 300, Status::InStock, "x"),
                product(2, 1, 0, Status::InStock, "x"),
            ],
        }),
    );
    assert_eq!(s.products.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(s.products[&1].version, 7);
}

#[test]
fn a_failed_load_is_retried_with_backoff_and_says_so() {
    let mut s = State::new("bob", "http://127.0.0.1:8080", now());
    let [
        Command::LoadAll {
            load, delay_ms: 0, ..
        },
    ] = update(&mut s, Action::Net(Reply::Reset))[..]
    else {
        panic!()
    };
    let mut delays = Vec::new();
    let mut current = load;
    for _ in 0..7 {
        let cmds = update(
            &mut s,
            Action::Net(Reply::LoadFailed {
                load: current,
                message: "the server answered 503".into(),
            }),
        );
        let [Command::LoadAll { load, delay_ms, .. }] = cmds[..] else {
            panic!("{cmds:?}")
        };
        assert!(load > current);
        assert!(s.notice.as_ref().unwrap().text.contains("Retrying in"));
        delays.push(delay_ms);
        current = load;
    }
    assert_eq!(delays, vec![500, 1000, 2000, 4000, 8000, 8000, 8000]);
    // A failure of a load that is no longer the latest asks for nothing.
    assert!(
        update(
            &mut s,
            Action::Net(Reply::LoadFailed {
                load: current - 1,
                message: "late".into(),
            }),
        )
        .is_empty()
    );
    // Success resets the backoff.
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load: current,
            etag: None,
            list: vec![],
        }),
    );
    assert_eq!(s.load_failures, 0);
    assert!(s.loaded);
}

#[test]
fn keep_alive_bytes_reset_the_silence_timer() {
    use std::time::{Duration, Instant};

    use crate::net::Liveness;
    let t0 = Instant::now();
    let mut live = Liveness::new(t0, Duration::from_secs(45));
    assert!(!live.is_dead(t0 + Duration::from_secs(44)));
    // A keep-alive comment at 40 s: still alive at 60 s, 85 s; dead only after 45 s of
    // nothing at all.
    live.saw_bytes(t0 + Duration::from_secs(40));
    assert!(!live.is_dead(t0 + Duration::from_secs(60)));
    assert!(!live.is_dead(t0 + Duration::from_secs(85)));
    assert!(live.is_dead(t0 + Duration::from_secs(86)));
}

#[test]
fn another_client_of_the_same_user_is_another_person() {
    let mut s = editing("alice");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    // Alice, in another window, saves product 1: a change this client did not make.
    let mut other = product(1, 2, 18000, Status::InStock, "alice");
    other.etag = "\"a11ce0ther000002\"".into();
    update(&mut s, event(26, Op::Updated, &other));
    let stale = s.editor.as_ref().unwrap().stale.clone();
    assert!(stale.is_some(), "the stale banner warns of it");
    assert!(s.recent.contains_key(&1), "the row is highlighted");
}

#[test]
fn my_own_event_before_my_answer_is_not_news_and_theirs_is() {
    let mut s = editing("alice");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let Some(Command::Save { edit, fields, .. }) = update(&mut s, ctrl('s')).first().cloned()
    else {
        panic!()
    };
    // The event of the save arrives before its answer: it waits.
    let mine = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &mine));
    assert!(s.editor.as_ref().unwrap().stale.is_none());
    // Then someone else's change on top of it.
    let theirs = product(1, 3, 30000, Status::OutOfStock, "bob");
    update(&mut s, event(27, Op::Updated, &theirs));
    // Alice kept typing while it was in flight, so the editor stays open.
    focus(&mut s, Field::Name);
    type_text(&mut s, " XL");
    update(
        &mut s,
        Action::Net(Reply::Saved {
            edit,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(mine)),
        }),
    );
    let editor = s.editor.as_ref().unwrap();
    assert_eq!(editor.base.as_ref().unwrap().version, 2);
    let stale = editor.stale.as_ref().expect("bob's change is news");
    assert_eq!((stale.by.as_str(), stale.version), ("bob", 3));
    assert_eq!(s.recent.get(&1).map(|r| r.0.as_str()), Some("bob"));
}

#[test]
fn a_lost_reply_confirmed_by_reading_back_says_saved() {
    let mut s = editing("alice");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let Some(Command::Save { edit, fields, .. }) = update(&mut s, ctrl('s')).first().cloned()
    else {
        panic!()
    };
    let saved = product(1, 2, 30000, Status::InStock, "alice");
    update(
        &mut s,
        Action::Net(Reply::Saved {
            edit,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Confirmed(Box::new(saved.clone())),
        }),
    );
    assert_eq!(s.screen, Screen::Catalog);
    let notice = s.notice.clone().unwrap();
    assert!(!notice.error);
    assert!(notice.text.starts_with("Saved"), "{}", notice.text);
    assert!(notice.text.contains("reply was lost"), "{}", notice.text);
    // Its event, arriving late, is mine: no highlight.
    update(&mut s, event(26, Op::Updated, &saved));
    assert!(!s.recent.contains_key(&1));
}

#[test]
fn drafts_found_at_start_are_offered_and_reopen_on_their_base() {
    use crate::draft::{Draft, DraftFile};
    let mut s = state("alice");
    let mut fields = std::collections::BTreeMap::new();
    for f in Field::ALL {
        fields.insert(
            f.label().to_string(),
            crate::state::edit_text(&product(1, 1, 39900, Status::InStock, "").fields(), f),
        );
    }
    fields.insert(Field::Price.label().to_string(), "123.45".into());
    let file = DraftFile {
        path: "/nonexistent/alice-product-1.json".into(),
        draft: Draft {
            server: "http://127.0.0.1:8080".into(),
            user: "alice".into(),
            product_id: Some(1),
            based_on_version: Some(1),
            based_on_etag: None,
            pending_key: None,
            fields,
            saved_at_ms: 1,
        },
    };
    update(&mut s, Action::DraftsFound(vec![file]));
    assert!(s.notice.as_ref().unwrap().text.contains("1 unsaved draft"));
    assert!(crate::state::has_draft(&s, 1));
    // Meanwhile bob changed product 1.
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(1, 2, 39900, Status::OutOfStock, "bob"),
        ),
    );
    update(&mut s, key(KeyCode::Char('D')));
    assert_eq!(s.screen, Screen::Drafts);
    let cmds = update(&mut s, key(KeyCode::Enter));
    assert_eq!(cmds, vec![Command::FetchVersion { id: 1, version: 1 }]);
    update(
        &mut s,
        Action::Net(Reply::Version(Box::new(product(
            1,
            1,
            39900,
            Status::InStock,
            "seed",
        )))),
    );
    assert_eq!(s.screen, Screen::Editor);
    let editor = s.editor.as_ref().unwrap();
    assert_eq!(editor.text(Field::Price), "123.45");
    assert_eq!(editor.base.as_ref().unwrap().version, 1);
    let stale = editor
        .stale
        .as_ref()
        .expect("bob's change since the draft is shown");
    assert_eq!(stale.by, "bob");
    assert!(!crate::state::has_draft(&s, 1) || s.draft_path.is_some());
}

/// The commands that read or write data (presence announcements aside).
fn without_presence(cmds: Vec<Command>) -> Vec<Command> {
    cmds.into_iter()
        .filter(|c| !matches!(c, Command::Announce { .. } | Command::Withdraw))
        .collect()
}

// ---- Every screen at 40x20 (half of an 80x24 demo), 80x24 and 120x40 ----

fn render_at(s: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| crate::screens::draw(f, s)).unwrap();
    terminal.backend().to_string()
}

/// Snapshots one screen at the three sizes.
fn snapshot_sizes(name: &str, s: &State) {
    for (w, h) in [(40u16, 20u16), (80, 24), (120, 40)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render_at(s, w, h));
    }
}

#[test]
fn every_screen_fits_40x20_80x24_and_120x40() {
    let mut s = state("alice");
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(3, 2, 7000, Status::InStock, "bob"),
        ),
    );
    snapshot_sizes("sizes_catalog", &s);
    // The catalog at 40 columns still shows each row's id and the start of its ETag.
    let narrow = render_at(&s, 40, 20);
    assert!(narrow.contains("BBQ-KETTLE-57"), "{narrow}");
    assert!(narrow.contains("\"000000005eed"), "{narrow}");

    let mut e = editing("bob");
    focus(&mut e, Field::Price);
    replace_field(&mut e, "300");
    update(
        &mut e,
        event(
            26,
            Op::Updated,
            &product(1, 2, 39900, Status::OutOfStock, "alice"),
        ),
    );
    snapshot_sizes("sizes_editor_stale", &e);

    let c = conflict(Some("300"));
    snapshot_sizes("sizes_conflict", &c);

    let mut h = state("alice");
    update(&mut h, key(KeyCode::Char('h')));
    update(
        &mut h,
        Action::Net(Reply::Versions {
            id: 1,
            versions: Ok(vec![
                crate::net::VersionInfo {
                    version: 1,
                    etag: product(1, 1, 0, Status::InStock, "").etag,
                    updated_at: "2026-11-22T12:00:00.000Z".into(),
                    updated_by: "seed".into(),
                },
                crate::net::VersionInfo {
                    version: 2,
                    etag: product(1, 2, 0, Status::InStock, "").etag,
                    updated_at: "2026-11-22T12:01:00.000Z".into(),
                    updated_by: "alice".into(),
                },
            ]),
        }),
    );
    snapshot_sizes("sizes_history", &h);

    let mut l = state("alice");
    update(&mut l, key(KeyCode::Char('l')));
    update(
        &mut l,
        Action::Net(Reply::Exchange(Exchange {
            method: "PUT".into(),
            path: "/products/1".into(),
            if_match: Some(product(1, 1, 0, Status::InStock, "").etag),
            status: Some(412),
            etag: Some(product(1, 2, 0, Status::InStock, "").etag),
            millis: 3,
            note: None,
        })),
    );
    snapshot_sizes("sizes_log", &l);

    let mut help = state("alice");
    update(&mut help, key(KeyCode::Char('?')));
    snapshot_sizes("sizes_help", &help);

    let mut empty = state("alice");
    update(&mut empty, key(KeyCode::Char('/')));
    type_text(&mut empty, "zzz");
    let screen = render_at(&empty, 80, 24);
    assert!(screen.contains("No matches"), "{screen}");
    snapshot_sizes("sizes_no_matches", &empty);
}

#[test]
fn opening_the_editor_revalidates_and_a_newer_copy_is_news() {
    let mut s = state("bob");
    let cmds = without_presence(update(&mut s, key(KeyCode::Enter)));
    let held = product(1, 1, 39900, Status::InStock, "seed");
    assert_eq!(
        cmds,
        vec![Command::Revalidate {
            id: 1,
            etag: held.etag.clone()
        }]
    );
    // 304: nothing changes.
    update(
        &mut s,
        Action::Net(Reply::Revalidated {
            id: 1,
            product: None,
        }),
    );
    assert_eq!(s.products[&1].version, 1);
    // A newer copy (the feed had not told yet): the editor, with edits, warns.
    focus(&mut s, Field::Price);
    replace_field(&mut s, "1");
    update(
        &mut s,
        Action::Net(Reply::Revalidated {
            id: 1,
            product: Some(Box::new(product(1, 2, 39900, Status::OutOfStock, "carol"))),
        }),
    );
    assert_eq!(s.products[&1].version, 2);
    let stale = s.editor.as_ref().unwrap().stale.clone().expect("a banner");
    assert_eq!(stale.by, "carol");
    // The next load revalidates the list it holds.
    s.list_etag = Some("\"list-1\"".into());
    let cmds = update(&mut s, Action::Net(Reply::Reset));
    assert!(matches!(
        &cmds[..],
        [Command::LoadAll { if_none_match: Some(tag), .. }] if tag == "\"list-1\""
    ));
}

#[test]
fn a_click_selects_the_row_under_it_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut s = state("bob");
    // Draw once so the table's place on screen is known: rows start under the header.
    render_at(&s, 80, 24);
    let area = s.table_area.get();
    let click = |row: u16| {
        Action::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: area.x + 2,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut s, click(area.y + 3));
    assert_eq!(s.selected_id, Some(3));
    // The header and below the last row select nothing new.
    update(&mut s, click(area.y));
    update(&mut s, click(area.y + 10));
    assert_eq!(s.selected_id, Some(3));
    let wheel = |kind| {
        Action::Mouse(MouseEvent {
            kind,
            column: 1,
            row: 1,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut s, wheel(MouseEventKind::ScrollUp));
    assert_eq!(s.selected_id, Some(1));
    update(&mut s, wheel(MouseEventKind::ScrollDown));
    assert_eq!(s.selected_id, Some(4));
}

#[test]
fn a_401_says_what_to_do_and_keeps_the_edit() {
    let answer = crate::net::Answer {
        status: reqwest::StatusCode::UNAUTHORIZED,
        body:
            br#"{"type":"/problems/unauthorized","title":"Unauthorized","status":401,"detail":"x"}"#
                .to_vec(),
    };
    let outcome = crate::net::write_outcome(&answer);
    assert_eq!(
        outcome,
        WriteOutcome::Failed(crate::net::UNAUTHORIZED.to_string())
    );
    let mut s = editing("bob");
    focus(&mut s, Field::Price);
    replace_field(&mut s, "$300");
    let Some(Command::Save { edit, fields, .. }) = update(&mut s, ctrl('s')).first().cloned()
    else {
        panic!()
    };
    update(
        &mut s,
        Action::Net(Reply::Saved {
            edit,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields),
            outcome,
        }),
    );
    let notice = s.notice.clone().unwrap();
    assert!(notice.text.contains("--token"), "{}", notice.text);
    assert_eq!(s.screen, Screen::Editor);
    assert_eq!(s.editor.as_ref().unwrap().text(Field::Price), "$300");
}

#[test]
fn the_guide_follows_a_third_writer_and_a_delete_off_script() {
    use crate::guide::{Role, line};
    // Bob is at step 3 when carol (a bot, not alice) changes the BBQ's name.
    let mut s = guided("bob", Role::Stock);
    update(&mut s, key(KeyCode::Enter));
    focus(&mut s, Field::Status);
    update(&mut s, key(KeyCode::Down));
    assert!(
        line(&s).unwrap().contains("alice, on the left"),
        "names the window"
    );
    let mut carols = product(1, 2, 39900, Status::InStock, "carol");
    carols.name = "Kettle BBQ (renamed by a bot)".into();
    update(&mut s, event(26, Op::Updated, &carols));
    let said = line(&s).unwrap();
    assert!(said.contains("carol (a third writer"), "{said}");
    assert!(said.contains("name"), "{said}");
    assert!(said.contains("412"), "{said}");
    // He saves; the conflict panel: the guide says it is carol, not the other window.
    let Some(Command::Save { fields, .. }) = update(&mut s, ctrl('s')).first().cloned() else {
        panic!()
    };
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Edit,
            id: Some(1),
            sent: Box::new(fields.clone()),
            outcome: WriteOutcome::Conflict(Box::new(carols.clone())),
        }),
    );
    let said = line(&s).unwrap();
    assert!(said.contains("third writer"), "{said}");
    assert!(said.contains("Press m to merge"), "{said}");
    // Carol deletes it before he merges: his merge is answered 410, and the guide says so.
    update(&mut s, event(27, Op::Deleted, &carols));
    let said = line(&s).unwrap();
    assert!(said.contains("410 Gone"), "{said}");
    assert!(said.contains("carol deleted the BBQ"), "{said}");
    assert!(!said.contains("412 Precondition"), "{said}");
    // Alice's window, with nothing open, learns the race is over.
    let mut a = guided("alice", Role::Price);
    update(&mut a, event(27, Op::Deleted, &carols));
    let said = line(&a).unwrap();
    assert!(said.contains("deleted the BBQ"), "{said}");
}

#[test]
fn the_history_compares_any_two_versions_and_restores_one() {
    let mut s = state("bob");
    update(
        &mut s,
        event(
            26,
            Op::Updated,
            &product(1, 2, 100, Status::InStock, "alice"),
        ),
    );
    update(
        &mut s,
        event(
            27,
            Op::Updated,
            &product(1, 3, 200, Status::OutOfStock, "carol"),
        ),
    );
    update(&mut s, key(KeyCode::Char('h')));
    let versions = (1..=3)
        .map(|v| crate::net::VersionInfo {
            version: v,
            etag: product(1, v, 0, Status::InStock, "").etag,
            updated_at: "2026-11-22T12:00:00.000Z".into(),
            updated_by: "x".into(),
        })
        .collect();
    let cmds = update(
        &mut s,
        Action::Net(Reply::Versions {
            id: 1,
            versions: Ok(versions),
        }),
    );
    // The newest is selected, compared with the one before.
    assert_eq!(s.history.as_ref().unwrap().pair(), Some((3, 2)));
    assert_eq!(cmds.len(), 2);
    // c marks version 3; choosing version 1 then compares 1 with 3.
    update(&mut s, key(KeyCode::Char('c')));
    update(&mut s, key(KeyCode::Up));
    let cmds = update(&mut s, key(KeyCode::Up));
    assert_eq!(s.history.as_ref().unwrap().pair(), Some((1, 3)));
    assert!(cmds.contains(&Command::FetchVersion { id: 1, version: 1 }));
    for v in 1..=3 {
        let status = if v == 3 {
            Status::OutOfStock
        } else {
            Status::InStock
        };
        update(
            &mut s,
            Action::Net(Reply::Version(Box::new(product(
                1,
                v,
                v * 100,
                status,
                "x",
            )))),
        );
    }
    let screen = render(&s);
    assert!(screen.contains("v1 against v3"), "{screen}");
    // r restores version 1 over version 3, with If-Match of version 3.
    let cmds = without_presence(update(&mut s, key(KeyCode::Char('r'))));
    let [
        Command::Save {
            purpose: SavePurpose::Restore,
            id: Some(1),
            fields,
            if_match: Some(tag),
            ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(fields.price_cents, 100);
    assert_eq!(tag, &product(1, 3, 0, Status::InStock, "").etag);
    assert_eq!(s.screen, Screen::Editor);
}

#[test]
fn presence_is_announced_renewed_withdrawn_and_shown() {
    use catalog_shared::presence::PresenceEvent;
    let mut s = state("alice");
    s.client_id = "alice-1".into();
    // Opening the editor announces it, with the field under the cursor.
    let cmds = update(&mut s, key(KeyCode::Enter));
    assert!(
        cmds.contains(&Command::Announce {
            product_id: 1,
            field: Some("name".into())
        }),
        "{cmds:?}"
    );
    // Moving to another field says so; nothing else is sent meanwhile.
    let cmds = update(&mut s, key(KeyCode::Tab));
    assert_eq!(
        cmds,
        vec![Command::Announce {
            product_id: 1,
            field: Some("sku".into())
        }]
    );
    assert!(update(&mut s, Action::Tick(now())).is_empty());
    // Renewed before the server would forget it.
    let later = now() + std::time::Duration::from_secs(11);
    assert_eq!(update(&mut s, Action::Tick(later)).len(), 1);
    // Bob, in another client, is in product 1 too; alice's own event is not news.
    let bob = PresenceEvent {
        client: "bob-1".into(),
        user: "bob".into(),
        product_id: Some(1),
        field: Some("price".into()),
    };
    update(&mut s, Action::Net(Reply::Presence(bob.clone())));
    update(
        &mut s,
        Action::Net(Reply::Presence(PresenceEvent {
            client: "alice-1".into(),
            user: "alice".into(),
            product_id: Some(1),
            field: None,
        })),
    );
    assert_eq!(s.editing_line(1).as_deref(), Some("bob is editing price"));
    let screen = render(&s);
    assert!(screen.contains("● bob is editing price"), "{screen}");
    // Leaving the editor withdraws; the catalog shows bob on his row.
    update(&mut s, key(KeyCode::Esc));
    let cmds = update(&mut s, key(KeyCode::Esc));
    assert!(
        cmds.contains(&Command::Withdraw) || s.announced.is_none(),
        "{cmds:?}"
    );
    assert_eq!(s.screen, Screen::Catalog);
    let screen = render(&s);
    assert!(screen.contains("● bob"), "{screen}");
    // Bob leaves: the mark goes.
    update(
        &mut s,
        Action::Net(Reply::Presence(PresenceEvent {
            product_id: None,
            field: None,
            ..bob
        })),
    );
    assert!(s.editing(1).is_empty());
    assert!(!render(&s).contains("● bob"));
}
