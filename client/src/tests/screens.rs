//! insta snapshots of every screen on `TestBackend`, and every screen at 40x20, 80x24
//! and 120x40.

use super::*;

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
    insta::assert_snapshot!(render(&mut s));
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
            if_match: Some("\"5eed006500c0ffee\"".into()),
            status: Some(412),
            etag: Some("\"5eed006600c0ffee\"".into()),
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
    insta::assert_snapshot!(render(&mut s));
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
    insta::assert_snapshot!(render(&mut s));
}

#[test]
fn snapshot_new_product_editor() {
    let mut s = state("bob");
    update(&mut s, key(KeyCode::Char('a')));
    insta::assert_snapshot!(render(&mut s));
}

#[test]
fn snapshot_conflict_pre_resolved() {
    insta::assert_snapshot!(render(&mut conflict(None)));
}

#[test]
fn snapshot_conflict_picking() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Char('m')));
    insta::assert_snapshot!(render(&mut s));
}

#[test]
fn snapshot_conflict_picked() {
    let mut s = conflict(Some("350"));
    update(&mut s, key(KeyCode::Char('m')));
    update(&mut s, key(KeyCode::Left));
    insta::assert_snapshot!(render(&mut s));
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
    insta::assert_snapshot!(render(&mut s));
}

#[test]
fn snapshot_confirm_reload() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('r')));
    insta::assert_snapshot!(render(&mut s));
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
    insta::assert_snapshot!(render(&mut s));
}

#[test]
fn snapshot_help_of_the_conflict_panel() {
    let mut s = conflict(None);
    update(&mut s, key(KeyCode::Char('?')));
    insta::assert_snapshot!(render(&mut s));
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
    insta::assert_snapshot!(render(&mut s));
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
    snapshot_sizes("sizes_catalog", &mut s);
    // The catalog at 40 columns still shows each row's id and the start of its ETag.
    let narrow = render_at(&mut s, 40, 20);
    assert!(narrow.contains("BBQ-KETTLE-57"), "{narrow}");
    assert!(
        narrow.contains(&product(1, 1, 0, Status::InStock, "").etag),
        "{narrow}"
    );
    // At 80 columns the name has room to be read, and the ETag shows its first 8 digits.
    let medium = render_at(&mut s, 80, 24);
    assert!(medium.contains("Kettle charcoal"), "{medium}");
    assert!(medium.contains("\"5eed0065…"), "{medium}");

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
    snapshot_sizes("sizes_editor_stale", &mut e);

    let mut c = conflict(Some("300"));
    snapshot_sizes("sizes_conflict", &mut c);

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
    snapshot_sizes("sizes_history", &mut h);

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
    snapshot_sizes("sizes_log", &mut l);

    let mut help = state("alice");
    update(&mut help, key(KeyCode::Char('?')));
    snapshot_sizes("sizes_help", &mut help);

    let mut empty = state("alice");
    update(&mut empty, key(KeyCode::Char('/')));
    type_text(&mut empty, "zzz");
    let screen = render_at(&mut empty, 80, 24);
    assert!(screen.contains("No matches"), "{screen}");
    snapshot_sizes("sizes_no_matches", &mut empty);
}

/// Snapshots one screen at the three sizes.
fn snapshot_sizes(name: &str, s: &mut State) {
    for (w, h) in [(40u16, 20u16), (80, 24), (120, 40)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render_at(s, w, h));
    }
}
