//! The catalog: keys, sort, filter, the mouse, live events and list loads.

use super::*;

#[test]
fn sort_cycles_columns_and_direction_and_n_walks_matches() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('s')));
    assert_eq!(s.model.sort.column, crate::model::SortColumn::Sku);
    // BBQ-KETTLE-57 (1), KETTLE-GOOSE-1L (3), LAMP-ARC-01 (2), MUG-STONE-2 (4)
    assert_eq!(s.model.visible, vec![1, 3, 2, 4]);
    update(&mut s, key(KeyCode::Char('S')));
    assert_eq!(s.model.visible, vec![4, 2, 3, 1]);
    // A live change moves its row to where the order puts it.
    let mut renamed = product(4, 2, 2400, Status::InStock, "carol");
    renamed.sku = "AAA-FIRST".into();
    update(&mut s, event(26, Op::Updated, &renamed));
    assert_eq!(s.model.visible, vec![2, 3, 1, 4]);
    let screen = render(&mut s);
    assert!(screen.contains("sku▼"), "{screen}");
    // n and N walk the rows matching the filter, wrapping around.
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('/')));
    type_text(&mut s, "kettle");
    update(&mut s, key(KeyCode::Enter));
    assert_eq!(s.model.visible, vec![1, 3]);
    s.model.selected_id = Some(1);
    update(&mut s, key(KeyCode::Char('n')));
    assert_eq!(s.model.selected_id, Some(3));
    update(&mut s, key(KeyCode::Char('n')));
    assert_eq!(s.model.selected_id, Some(1));
    update(&mut s, key(KeyCode::Char('N')));
    assert_eq!(s.model.selected_id, Some(3));
}

#[test]
fn events_update_rows_and_highlight_other_users() {
    let mut s = state("bob");
    let p = product(2, 2, 100, Status::InStock, "alice");
    update(&mut s, event(26, Op::Updated, &p));
    assert_eq!(s.model.products[&2].etag, p.etag);
    assert_eq!(s.model.recent.get(&2).map(|r| r.0.as_str()), Some("alice"));
    assert_eq!(s.model.last_seq, Some(26));
    // An older version never replaces a newer one.
    update(
        &mut s,
        event(27, Op::Updated, &product(2, 1, 5, Status::InStock, "x")),
    );
    assert_eq!(s.model.products[&2].price_cents, 100);
    update(&mut s, Action::Tick(now() + crate::model::HIGHLIGHT));
    assert!(s.model.recent.is_empty(), "the highlight fades");
    update(&mut s, event(28, Op::Deleted, &p));
    assert!(!s.model.products.contains_key(&2));
    assert_eq!(s.model.visible, vec![1, 3, 4]);
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
    let load = s.model.load_requested;
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
    assert_eq!(
        s.model.products.keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(s.model.products[&1].version, 5);
}

#[test]
fn filter_narrows_and_esc_clears() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('/')));
    type_text(&mut s, "kettle");
    assert_eq!(s.model.visible, vec![1, 3]);
    update(&mut s, key(KeyCode::Enter));
    assert!(!s.catalog.filtering);
    update(&mut s, key(KeyCode::Char('j')));
    assert_eq!(s.model.selected_id, Some(3));
    update(&mut s, key(KeyCode::Char('/')));
    update(&mut s, key(KeyCode::Esc));
    assert_eq!(s.model.visible.len(), 4);
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
    assert!(s.model.products.contains_key(&2));
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
            crate::screens::catalog::KEYS.iter().any(|h| h.keys == name),
            "{name} in the table"
        );
        let mut s = state("bob");
        let before = (
            s.screen(),
            s.modal.clone(),
            s.show_log,
            s.catalog.filtering,
            s.help,
            s.quit,
        );
        let cmds = update(&mut s, action);
        let after = (
            s.screen(),
            s.modal.clone(),
            s.show_log,
            s.catalog.filtering,
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

#[test]
fn release_events_are_ignored() {
    let mut s = state("bob");
    let mut k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    k.kind = crossterm::event::KeyEventKind::Release;
    update(&mut s, Action::Key(k));
    assert!(!s.quit);
}

#[test]
fn a_click_selects_the_row_under_it_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut s = state("bob");
    // Draw once so the table's place on screen is known: rows start under the header.
    render_at(&mut s, 80, 24);
    let area = s.catalog.rows_area;
    let click = |row: u16| {
        Action::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: area.x + 2,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut s, click(area.y + 3));
    assert_eq!(s.model.selected_id, Some(3));
    // The header and below the last row select nothing new.
    update(&mut s, click(area.y));
    update(&mut s, click(area.y + 10));
    assert_eq!(s.model.selected_id, Some(3));
    let wheel = |kind| {
        Action::Mouse(MouseEvent {
            kind,
            column: 1,
            row: 1,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut s, wheel(MouseEventKind::ScrollUp));
    assert_eq!(s.model.selected_id, Some(1));
    update(&mut s, wheel(MouseEventKind::ScrollDown));
    assert_eq!(s.model.selected_id, Some(4));
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
    assert_eq!(
        s.model.products.keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(s.model.products[&1].version, 7);
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
    assert_eq!(s.model.load_failures, 0);
    assert!(s.model.loaded);
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
