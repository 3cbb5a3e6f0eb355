//! The editor: saves with If-Match, keys, answers that find their own edit, presence.

use super::*;

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
    assert!(!s.keys().iter().any(|h| h.keys == "F8"));
    s.model.unsafe_saves = true;
    assert!(s.keys().iter().any(|h| h.keys == "F8"));
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
    let bar = crate::keymap::bar_within(&s.keys(), 500);
    assert!(bar.contains("create (POST, no If-Match)"), "{bar}");
    assert!(
        !bar.contains("If-Match)") || bar.contains("no If-Match"),
        "{bar}"
    );
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
    assert!(s.editor().is_some(), "edits are kept");
}

#[test]
fn tab_and_shift_tab_wrap_in_editor_order() {
    let mut s = editing("bob");
    let order: Vec<Field> = (0..6)
        .map(|_| {
            let f = s.editor().unwrap().focused();
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
    assert_eq!(s.editor().unwrap().focused(), Field::Description);
}

#[test]
fn a_clean_editor_refreshes_and_a_dirty_one_warns() {
    let mut clean = editing("bob");
    let theirs = product(1, 2, 30000, Status::InStock, "alice");
    update(&mut clean, event(26, Op::Updated, &theirs));
    let e = clean.editor().unwrap();
    assert!(e.stale.is_none());
    assert_eq!(e.base.as_ref().unwrap().version, 2);
    assert_eq!(e.text(Field::Price), "300.00");

    let mut dirty = editing("bob");
    focus(&mut dirty, Field::Name);
    type_text(&mut dirty, "!");
    update(&mut dirty, event(26, Op::Updated, &theirs));
    let e = dirty.editor().unwrap();
    let stale = e.stale.as_ref().expect("a banner");
    assert_eq!(stale.by, "alice");
    assert_eq!(stale.fields, vec![Field::Price]);
    assert_eq!(e.base.as_ref().unwrap().version, 1, "the base stays");
    assert!(e.text(Field::Name).ends_with('!'), "my edit stays");
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
    assert_eq!(s.screen(), Screen::Editor);
    assert_eq!(s.editor().unwrap().text(Field::Price), "5");
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
    let errors = s.editor().unwrap().check().unwrap_err();
    assert_eq!(
        errors.get(&Field::Sku).map(String::as_str),
        Some("is taken")
    );
}

#[test]
fn leaving_or_quitting_with_edits_asks_first() {
    let mut s = editing("bob");
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.screen(), Screen::Catalog, "no edits: leaves at once");
    update(&mut s, key(KeyCode::Enter));
    type_text(&mut s, "x");
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.modal, Some(Modal::LeaveEditor));
    update(&mut s, key(KeyCode::Char('a')));
    assert_eq!(s.screen(), Screen::Editor);
    assert!(s.editor().unwrap().is_dirty());
    update(&mut s, ctrl('c'));
    assert!(s.quit, "Ctrl-C always quits");

    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('q')));
    assert!(s.quit);
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
    assert_eq!(s.screen(), Screen::Editor);
    let e = s.editor().unwrap();
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
    assert_eq!(s.screen(), Screen::Catalog);
}

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
    assert_eq!(s.screen(), Screen::Editor);
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
    let editor = s.editor().unwrap();
    assert_eq!((editor.id, editor.base.is_none()), (None, true));
    assert_eq!(editor.text(Field::Sku), "NEW-1");
    assert_eq!(s.screen(), Screen::Editor);
    assert_eq!(s.model.products[&1].version, 2);
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
    assert_eq!(s.screen(), Screen::Catalog);
    assert!(s.conflict().is_none());
    assert_eq!(s.model.products[&1].updated_by, "bob");
    assert!(s.notice.as_ref().unwrap().error);
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
    let stale = s.editor().unwrap().stale.clone();
    assert!(stale.is_some(), "the stale banner warns of it");
    assert!(s.model.recent.contains_key(&1), "the row is highlighted");
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
    assert!(s.editor().unwrap().stale.is_none());
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
    let editor = s.editor().unwrap();
    assert_eq!(editor.base.as_ref().unwrap().version, 2);
    let stale = editor.stale.as_ref().expect("bob's change is news");
    assert_eq!((stale.by.as_str(), stale.version), ("bob", 3));
    assert_eq!(s.model.recent.get(&1).map(|r| r.0.as_str()), Some("bob"));
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
    assert_eq!(s.screen(), Screen::Catalog);
    let notice = s.notice.clone().unwrap();
    assert!(!notice.error);
    assert!(notice.text.starts_with("Saved"), "{}", notice.text);
    assert!(notice.text.contains("reply was lost"), "{}", notice.text);
    // Its event, arriving late, is mine: no highlight.
    update(&mut s, event(26, Op::Updated, &saved));
    assert!(!s.model.recent.contains_key(&1));
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
    assert_eq!(s.model.products[&1].version, 1);
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
    assert_eq!(s.model.products[&1].version, 2);
    let stale = s.editor().unwrap().stale.clone().expect("a banner");
    assert_eq!(stale.by, "carol");
    // The next load revalidates the list it holds.
    s.model.list_etag = Some("\"list-1\"".into());
    let cmds = update(&mut s, Action::Net(Reply::Reset));
    assert!(matches!(
        &cmds[..],
        [Command::LoadAll { if_none_match: Some(tag), .. }] if tag == "\"list-1\""
    ));
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
    assert_eq!(s.screen(), Screen::Editor);
    assert_eq!(s.editor().unwrap().text(Field::Price), "$300");
}

#[test]
fn a_save_without_if_match_names_the_lost_change() {
    let mut s = editing("bob");
    s.model.unsafe_saves = true;
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
fn presence_is_announced_renewed_withdrawn_and_shown() {
    use catalog_shared::presence::PresenceEvent;
    let mut s = state("alice");
    s.model.client_id = "alice-1".into();
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
    assert_eq!(
        s.model.editing_line(1).as_deref(),
        Some("bob is editing price")
    );
    let screen = render(&mut s);
    assert!(screen.contains("● bob is editing price"), "{screen}");
    // Leaving the editor withdraws; the catalog shows bob on his row.
    update(&mut s, key(KeyCode::Esc));
    let cmds = update(&mut s, key(KeyCode::Esc));
    assert!(
        cmds.contains(&Command::Withdraw) || s.announced.is_none(),
        "{cmds:?}"
    );
    assert_eq!(s.screen(), Screen::Catalog);
    let screen = render(&mut s);
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
    assert!(s.model.editing(1).is_empty());
    assert!(!render(&mut s).contains("● bob"));
}
