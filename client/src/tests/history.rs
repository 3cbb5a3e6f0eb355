//! The history: comparing versions and restoring one.

use super::*;

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
    assert_eq!(s.history().unwrap().pair(), Some((3, 2)));
    assert_eq!(cmds.len(), 2);
    // c marks version 3; choosing version 1 then compares 1 with 3.
    update(&mut s, key(KeyCode::Char('c')));
    update(&mut s, key(KeyCode::Up));
    let cmds = update(&mut s, key(KeyCode::Up));
    assert_eq!(s.history().unwrap().pair(), Some((1, 3)));
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
    let screen = render(&mut s);
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
    assert_eq!(s.screen(), Screen::Editor);
}
