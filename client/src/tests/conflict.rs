//! The conflict panel: merge, overwrite, reload, a repeated conflict, a deleted record.

use super::*;

#[test]
fn a_412_opens_the_panel_with_one_sided_changes_resolved() {
    let s = conflict(None);
    assert_eq!(s.screen(), Screen::Conflict);
    let p = s.conflict().unwrap();
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
    let p = s.conflict().unwrap();
    assert_eq!(p.merge.conflicts(), vec![Field::Price]);
    assert!(update(&mut s, key(KeyCode::Char('m'))).is_empty());
    assert!(s.conflict().unwrap().picking);
    assert_eq!(s.keys(), crate::screens::conflict::KEYS_PICKING.to_vec());
    // Ctrl-S before picking: refused, with a reason.
    assert!(update(&mut s, ctrl('s')).is_empty());
    assert!(s.notice.as_ref().unwrap().text.contains("price"));
    // ← picks mine on the selected (first conflicting) row.
    update(&mut s, key(KeyCode::Left));
    assert_eq!(
        s.conflict().unwrap().picks.get(&Field::Price),
        Some(&Side::Mine)
    );
    update(&mut s, key(KeyCode::Char('T')));
    assert_eq!(
        s.conflict().unwrap().picks.get(&Field::Price),
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
    assert_eq!(s.screen(), Screen::Conflict, "Esc keeps everything");
    update(&mut s, key(KeyCode::Char('r')));
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.screen(), Screen::Editor);
    let e = s.editor().unwrap();
    assert_eq!(e.base.as_ref().unwrap().version, 2);
    assert_eq!(e.text(Field::Status), "in_stock");
    assert!(!e.is_dirty());
}

#[test]
fn esc_from_the_panel_returns_to_my_edit_intact() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.screen(), Screen::Editor);
    let e = s.editor().unwrap();
    assert_eq!(e.text(Field::Price), "350");
    assert_eq!(e.text(Field::Status), "out_of_stock");
}

#[test]
fn a_repeated_conflict_keeps_base_and_mine() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('o')));
    let third = product(1, 3, 25000, Status::Discontinued, "carol");
    let mine = s.conflict().unwrap().merge.mine.clone();
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
    let p = s.conflict().unwrap();
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
    assert_eq!(s.keys(), crate::screens::conflict::KEYS_DELETED.to_vec());
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
    assert_eq!(s.screen(), Screen::Catalog);
    assert!(s.editor().is_none());
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
    assert_eq!(s.screen(), Screen::Conflict);
    assert_eq!(
        s.conflict().unwrap().deleted,
        Some(("carol".into(), "2026-11-22T12:00:10.000Z".into()))
    );
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
