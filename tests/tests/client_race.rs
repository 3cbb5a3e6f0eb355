//! Two real clients (in-process: the real state, update and API code) against the real
//! server walk the classic race: both open product 1, alice saves a price, bob saves a
//! status, bob gets the conflict panel and resolves it by merge, reload or overwrite.

use std::time::Duration;

use catalog_client::action::Action;
use catalog_client::app::App;
use catalog_client::state::{Screen, State};
use catalog_shared::product::Field;
use catalog_tests::{Server, client, send};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const WAIT: Duration = Duration::from_secs(20);

fn key(app: &mut App, code: KeyCode) {
    app.dispatch(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn ctrl(app: &mut App, c: char) {
    app.dispatch(Action::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn focus(app: &mut App, field: Field) {
    for _ in 0..5 {
        if app.state.editor().is_some_and(|e| e.focused() == field) {
            return;
        }
        key(app, KeyCode::Tab);
    }
    panic!("could not focus {field:?}");
}

async fn open_client(s: &Server, user: &str) -> App {
    let mut app = App::new(&s.base_url(), user).unwrap();
    app.start();
    app.run_until(WAIT, |st| {
        st.model.loaded && st.model.connection == catalog_client::action::Connection::Live
    })
    .await
    .unwrap();
    app
}

/// Both open product 1; bob sets the status (not saved); alice sets the price and saves;
/// bob sees the stale banner, saves, and gets the conflict panel.
async fn race(s: &Server) -> (App, App) {
    let mut alice = open_client(s, "alice").await;
    let mut bob = open_client(s, "bob").await;
    key(&mut alice, KeyCode::Enter);
    key(&mut bob, KeyCode::Enter);
    assert_eq!(alice.state.editor().unwrap().id, Some(1));
    assert_eq!(bob.state.editor().unwrap().id, Some(1));

    focus(&mut bob, Field::Status);
    key(&mut bob, KeyCode::Home);
    ctrl(&mut bob, 'k');
    type_text(&mut bob, "out_of_stock");

    focus(&mut alice, Field::Price);
    key(&mut alice, KeyCode::Home);
    ctrl(&mut alice, 'k');
    type_text(&mut alice, "300.00");
    ctrl(&mut alice, 's');
    alice
        .run_until(WAIT, |st| st.screen() == Screen::Catalog)
        .await
        .unwrap();
    assert!(
        alice
            .state
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("version 2")
    );

    bob.run_until(WAIT, |st| st.editor().is_some_and(|e| e.stale.is_some()))
        .await
        .unwrap();
    let stale = bob.state.editor().unwrap().stale.clone().unwrap();
    assert_eq!(stale.by, "alice");
    assert_eq!(stale.fields, vec![Field::Price]);

    ctrl(&mut bob, 's');
    bob.run_until(WAIT, |st| st.screen() == Screen::Conflict)
        .await
        .unwrap();
    bob.run_until(WAIT, |st| st.conflict().is_some_and(|c| c.base_fetched))
        .await
        .unwrap();
    let panel = bob.state.conflict().cloned().unwrap();
    assert_eq!(panel.base_version, 1);
    assert_eq!(panel.theirs.updated_by, "alice");
    assert_eq!(panel.theirs.price_cents, 30000);
    assert!(
        bob.state
            .model
            .log
            .iter()
            .any(|e| e.method == "PUT" && e.status == Some(412))
    );
    (alice, bob)
}

async fn stored(s: &Server) -> serde_json::Value {
    send(client().get(s.url("/products/1"))).await.json()
}

fn saved(st: &State) -> bool {
    st.screen() == Screen::Catalog && st.notice.as_ref().is_some_and(|n| !n.error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_resolved_by_merge_keeps_both_changes() {
    let s = Server::start();
    let (mut alice, mut bob) = race(&s).await;
    key(&mut bob, KeyCode::Char('m'));
    bob.run_until(WAIT, saved).await.unwrap();
    let p = stored(&s).await;
    assert_eq!(p["price_cents"], 30000, "alice's price");
    assert_eq!(p["status"], "out_of_stock", "bob's status");
    assert_eq!(p["version"], 3);
    assert_eq!(p["updated_by"], "bob");
    // Alice's table shows the new ETag live.
    let etag = p["etag"].as_str().unwrap().to_string();
    alice
        .run_until(WAIT, |st| {
            st.model.products.get(&1).is_some_and(|q| q.etag == etag)
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_resolved_by_reload_keeps_alices_version() {
    let s = Server::start();
    let (_alice, mut bob) = race(&s).await;
    key(&mut bob, KeyCode::Char('r'));
    assert!(
        bob.state.modal.is_some(),
        "reload asks before throwing edits away"
    );
    key(&mut bob, KeyCode::Enter);
    assert_eq!(bob.state.screen(), Screen::Editor);
    let e = bob.state.editor().unwrap();
    assert_eq!(e.text(Field::Price), "300.00");
    assert_eq!(e.text(Field::Status), "in_stock");
    key(&mut bob, KeyCode::Esc);
    assert_eq!(bob.state.screen(), Screen::Catalog, "nothing left to save");
    let p = stored(&s).await;
    assert_eq!(
        (
            p["price_cents"].as_i64(),
            p["status"].as_str(),
            p["version"].as_i64()
        ),
        (Some(30000), Some("in_stock"), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_resolved_by_overwrite_stores_bobs_version() {
    let s = Server::start();
    let (_alice, mut bob) = race(&s).await;
    key(&mut bob, KeyCode::Char('o'));
    bob.run_until(WAIT, saved).await.unwrap();
    let p = stored(&s).await;
    assert_eq!(
        p["price_cents"], 39900,
        "an informed overwrite replaces alice's price"
    );
    assert_eq!(p["status"], "out_of_stock");
    assert_eq!(p["version"], 3);
    let last = bob
        .state
        .model
        .log
        .iter()
        .rev()
        .find(|e| e.method == "PUT")
        .unwrap();
    assert_eq!(last.status, Some(200));
    assert!(
        last.if_match.is_some(),
        "the overwrite is still conditional"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_edits_ask_for_a_pick() {
    let s = Server::start();
    let (_alice, mut bob) = race(&s).await;
    // Bob also changes the price, differently: back to the editor, edit, save again.
    key(&mut bob, KeyCode::Esc);
    focus(&mut bob, Field::Price);
    key(&mut bob, KeyCode::Home);
    ctrl(&mut bob, 'k');
    type_text(&mut bob, "350");
    ctrl(&mut bob, 's');
    bob.run_until(WAIT, |st| {
        st.screen() == Screen::Conflict && !st.conflict().unwrap().saving
    })
    .await
    .unwrap();
    assert_eq!(
        bob.state.conflict().unwrap().merge.conflicts(),
        vec![Field::Price]
    );
    key(&mut bob, KeyCode::Char('m'));
    ctrl(&mut bob, 's');
    assert_eq!(
        bob.state.screen(),
        Screen::Conflict,
        "no save before a pick"
    );
    key(&mut bob, KeyCode::Left);
    ctrl(&mut bob, 's');
    bob.run_until(WAIT, saved).await.unwrap();
    let p = stored(&s).await;
    assert_eq!(
        (p["price_cents"].as_i64(), p["status"].as_str()),
        (Some(35000), Some("out_of_stock"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_meanwhile_lets_bob_recreate_his_edit() {
    let s = Server::start();
    let mut alice = open_client(&s, "alice").await;
    let mut bob = open_client(&s, "bob").await;
    key(&mut bob, KeyCode::Enter);
    focus(&mut bob, Field::Status);
    key(&mut bob, KeyCode::Down);
    key(&mut alice, KeyCode::Char('d'));
    key(&mut alice, KeyCode::Enter);
    alice
        .run_until(WAIT, |st| !st.model.products.contains_key(&1))
        .await
        .unwrap();
    bob.run_until(WAIT, |st| {
        st.editor()
            .is_some_and(|e| e.stale.as_ref().is_some_and(|x| x.deleted))
    })
    .await
    .unwrap();
    ctrl(&mut bob, 's');
    bob.run_until(WAIT, |st| {
        st.conflict().is_some_and(|c| c.deleted.is_some())
    })
    .await
    .unwrap();
    assert_eq!(
        bob.state.conflict().unwrap().deleted.as_ref().unwrap().0,
        "alice"
    );
    key(&mut bob, KeyCode::Char('c'));
    bob.run_until(WAIT, saved).await.unwrap();
    let list = send(client().get(s.url("/products?after=25"))).await.json();
    let recreated = &list["items"][0];
    assert_eq!(recreated["id"], 26);
    assert_eq!(recreated["sku"], "BBQ-KETTLE-57");
    assert_eq!(recreated["status"], "out_of_stock");
    assert_eq!(recreated["updated_by"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_survive_a_server_restart_and_then_save() {
    let mut s = Server::start();
    let mut bob = open_client(&s, "bob").await;
    key(&mut bob, KeyCode::Enter);
    focus(&mut bob, Field::Price);
    key(&mut bob, KeyCode::Home);
    ctrl(&mut bob, 'k');
    type_text(&mut bob, "123.45");
    s.kill9();
    bob.run_until(WAIT, |st| {
        matches!(
            st.model.connection,
            catalog_client::action::Connection::Reconnecting { .. }
        )
    })
    .await
    .unwrap();
    ctrl(&mut bob, 's');
    bob.run_until(WAIT, |st| st.notice.as_ref().is_some_and(|n| n.error))
        .await
        .unwrap();
    assert!(
        bob.state
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Your edits are kept")
    );
    assert_eq!(bob.state.editor().unwrap().text(Field::Price), "123.45");
    s.restart().unwrap();
    bob.run_until(WAIT, |st| {
        st.model.connection == catalog_client::action::Connection::Live
    })
    .await
    .unwrap();
    ctrl(&mut bob, 's');
    bob.run_until(WAIT, saved).await.unwrap();
    assert_eq!(stored(&s).await["price_cents"], 12345);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_product_and_meeting_a_taken_sku() {
    let s = Server::start();
    let mut carol = open_client(&s, "carol").await;
    assert_eq!(
        carol.state.model.last_seq,
        Some(25),
        "the stream's ready event gives the seq"
    );
    key(&mut carol, KeyCode::Char('a'));
    type_text(&mut carol, "Enamel mug");
    key(&mut carol, KeyCode::Tab);
    type_text(&mut carol, "BBQ-KETTLE-57");
    key(&mut carol, KeyCode::Tab);
    key(&mut carol, KeyCode::Home);
    ctrl(&mut carol, 'k');
    type_text(&mut carol, "12.50");
    ctrl(&mut carol, 's');
    carol
        .run_until(WAIT, |st| st.notice.as_ref().is_some_and(|n| n.error))
        .await
        .unwrap();
    let errors = carol.state.editor().unwrap().check().unwrap_err();
    assert_eq!(
        errors.get(&Field::Sku).map(String::as_str),
        Some("is already used by product 1"),
        "the 409 lands on the sku field"
    );
    // Fix the sku and save again: created, with the values typed.
    focus(&mut carol, Field::Sku);
    key(&mut carol, KeyCode::Home);
    ctrl(&mut carol, 'k');
    type_text(&mut carol, "MUG-ENAMEL");
    ctrl(&mut carol, 's');
    carol.run_until(WAIT, saved).await.unwrap();
    let p = send(client().get(s.url("/products/26"))).await.json();
    assert_eq!(
        (
            p["sku"].as_str(),
            p["price_cents"].as_i64(),
            p["updated_by"].as_str()
        ),
        (Some("MUG-ENAMEL"), Some(1250), Some("carol"))
    );
}

/// Re-reading what the client already holds costs a 304: opening the editor revalidates
/// the product with If-None-Match, the copy is kept, and the protocol log says so; a copy
/// that is stale is replaced by the 200's.
#[tokio::test]
async fn opening_the_editor_revalidates_the_copy_with_if_none_match() {
    let s = Server::start();
    let mut alice = open_client(&s, "alice").await;
    key(&mut alice, KeyCode::Enter);
    alice
        .run_until(WAIT, |st| {
            st.model
                .log
                .iter()
                .any(|e| e.path == "/products/1" && e.status == Some(304))
        })
        .await
        .unwrap();
    let exchange = alice
        .state
        .model
        .log
        .iter()
        .find(|e| e.status == Some(304))
        .unwrap();
    let held = alice.state.model.products[&1].etag.clone();
    assert_eq!(
        exchange.note.as_deref(),
        Some(format!("If-None-Match: {held}; 304, the copy held was reused").as_str())
    );
    assert_eq!(alice.state.screen(), Screen::Editor);
    assert_eq!(alice.state.model.products[&1].version, 1);
}

/// Opens product 1's history in `app` and selects version `v` (its snapshot loaded).
async fn history_at(app: &mut App, v: i64) {
    key(app, KeyCode::Char('h'));
    app.run_until(WAIT, |st| {
        st.history().is_some_and(|h| h.versions.is_some())
    })
    .await
    .unwrap();
    while app.state.history().unwrap().pair().map(|p| p.0) != Some(v) {
        key(app, KeyCode::Up);
    }
    app.run_until(WAIT, |st| {
        st.history().is_some_and(|h| h.snapshots.contains_key(&v))
    })
    .await
    .unwrap();
}

/// Restoring an old version from the history screen saves its fields as a new version,
/// with If-Match of the current one.
#[tokio::test]
async fn restoring_a_version_makes_a_new_version_with_its_fields() {
    let s = Server::start();
    let (mut alice, _bob) = race(&s).await;
    // Version 2 has alice's price; restore version 1.
    alice
        .run_until(WAIT, |st| st.model.products[&1].version == 2)
        .await
        .unwrap();
    history_at(&mut alice, 1).await;
    key(&mut alice, KeyCode::Char('r'));
    alice.run_until(WAIT, saved).await.unwrap();
    let notice = alice.state.notice.clone().unwrap().text;
    assert!(notice.starts_with("Restored as a new version"), "{notice}");
    let p = stored(&s).await;
    assert_eq!(
        (p["version"].as_i64(), p["price_cents"].as_i64()),
        (Some(3), Some(39900)),
        "version 1's price, as version 3: {p}"
    );
    let put = alice
        .state
        .model
        .log
        .iter()
        .rev()
        .find(|e| e.method == "PUT")
        .unwrap();
    assert_eq!(put.status, Some(200));
}

/// A restore that races another save gets the conflict panel like any save.
#[tokio::test]
async fn a_restore_that_races_another_save_gets_the_conflict_panel() {
    let s = Server::start();
    let mut alice = open_client(&s, "alice").await;
    let c = client();
    // Version 2 by carol, which alice's client has seen.
    let v1 = send(c.get(s.url("/products/1"))).await;
    let put =
        |etag: String, price: i64| {
            c.put(s.url("/products/1"))
            .header("If-Match", etag)
            .header("X-User", "carol")
            .json(&serde_json::json!({"sku": "BBQ-KETTLE-57", "name": "Kettle charcoal BBQ, 57 cm",
                "description": "x", "price_cents": price, "status": "in_stock"}))
        };
    let v2 = send(put(v1.etag(), 100)).await;
    alice
        .run_until(WAIT, |st| st.model.products[&1].version == 2)
        .await
        .unwrap();
    history_at(&mut alice, 1).await;
    // Carol saves again; alice's client has not heard of it yet when she restores.
    assert_eq!(send(put(v2.etag(), 200)).await.status, 200);
    key(&mut alice, KeyCode::Char('r'));
    alice
        .run_until(WAIT, |st| st.screen() == Screen::Conflict)
        .await
        .unwrap();
    let panel = alice.state.conflict().cloned().unwrap();
    assert_eq!(panel.theirs.version, 3);
    assert_eq!(panel.theirs.updated_by, "carol");
    assert_eq!(
        panel.merge.mine.price_cents, 39900,
        "mine is version 1's fields"
    );
    assert_eq!(stored(&s).await["version"], 3, "nothing was overwritten");
}

/// Against a server started with --users: the client with its token saves as its user;
/// without one, a save is refused with 401, the client says what to do and keeps the edit.
#[tokio::test]
async fn a_token_lets_the_client_save_and_a_401_keeps_the_edit() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let token = catalog_tests::add_user(&users, "alice").unwrap();
    let s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    // With the token: everything works, and the server names the token's user.
    let mut alice = App::new(&s.base_url(), "someone-else").unwrap();
    alice.set_token(Some(&token));
    alice.start();
    alice.run_until(WAIT, |st| st.model.loaded).await.unwrap();
    key(&mut alice, KeyCode::Enter);
    focus(&mut alice, Field::Price);
    key(&mut alice, KeyCode::Home);
    ctrl(&mut alice, 'k');
    type_text(&mut alice, "300.00");
    ctrl(&mut alice, 's');
    alice.run_until(WAIT, saved).await.unwrap();
    let stored = send(client().get(s.url("/products/1")).bearer_auth(&token))
        .await
        .json();
    assert_eq!(stored["updated_by"], "alice");
    // Without a token: nothing loads, and the screen says what to do (the 401 on a save
    // keeping the edit is in the client's unit tests).
    let mut stranger = App::new(&s.base_url(), "mallory").unwrap();
    stranger.start();
    stranger
        .run_until(WAIT, |st| {
            matches!(&st.model.connection,
                catalog_client::action::Connection::Reconnecting { reason, .. }
                    if reason.contains("--token"))
        })
        .await
        .unwrap();
    assert!(!stranger.state.model.loaded);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 20)).unwrap();
    terminal
        .draw(|f| catalog_client::view::draw(f, &mut stranger.state))
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(
        screen.contains("requires a token"),
        "the person sees why and what to do:\n{screen}"
    );
}
