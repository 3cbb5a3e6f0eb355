//! Drafts found at start, reopened on their base.

use super::*;

#[test]
fn drafts_found_at_start_are_offered_and_reopen_on_their_base() {
    use crate::draft::{Draft, DraftFile};
    let mut s = state("alice");
    let mut fields = std::collections::BTreeMap::new();
    for f in Field::ALL {
        fields.insert(
            f.label().to_string(),
            crate::screens::editor::edit_text(
                &product(1, 1, 39900, Status::InStock, "").fields(),
                f,
            ),
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
            pending: None,
            fields,
            saved_at_ms: 1,
        },
    };
    update(&mut s, Action::DraftsFound(vec![file]));
    assert!(s.notice.as_ref().unwrap().text.contains("1 unsaved draft"));
    assert!(s.model.has_draft(1));
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
    assert_eq!(s.screen(), Screen::Drafts);
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
    assert_eq!(s.screen(), Screen::Editor);
    let editor = s.editor().unwrap();
    assert_eq!(editor.text(Field::Price), "123.45");
    assert_eq!(editor.base.as_ref().unwrap().version, 1);
    let stale = editor
        .stale
        .as_ref()
        .expect("bob's change since the draft is shown");
    assert_eq!(stale.by, "bob");
    assert!(!s.model.has_draft(1));
    assert!(s.route.edit().unwrap().draft_path.is_some());
    // Saved: the edit ends, and its draft file is handed to the app to remove.
    let Some(Command::Save { fields, .. }) = update(&mut s, ctrl('s')).first().cloned() else {
        panic!()
    };
    assert!(
        s.discarded_drafts.is_empty(),
        "not while the save is in flight"
    );
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Merge,
            id: Some(1),
            sent: Box::new(fields.clone()),
            outcome: WriteOutcome::Conflict(Box::new(product(
                1,
                2,
                39900,
                Status::OutOfStock,
                "bob",
            ))),
        }),
    );
    assert_eq!(s.screen(), Screen::Conflict);
    update(&mut s, key(KeyCode::Char('o')));
    let mut saved = product(1, 3, 12345, Status::InStock, "alice");
    saved.status = fields.status;
    answer(
        &mut s,
        Action::Net(Reply::Saved {
            edit: ON_SCREEN,
            purpose: SavePurpose::Overwrite,
            id: Some(1),
            sent: Box::new(fields),
            outcome: WriteOutcome::Done(Some(saved)),
        }),
    );
    assert_eq!(s.screen(), Screen::Catalog);
    assert_eq!(
        s.discarded_drafts,
        vec![std::path::PathBuf::from(
            "/nonexistent/alice-product-1.json"
        )]
    );
}
