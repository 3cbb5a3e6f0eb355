//! The guided demo follows the race, on script and off it.

use super::*;

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
