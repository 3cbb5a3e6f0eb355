//! End to end over a bad network: the real client in a real terminal (tmux) talks to the
//! real server through a fault-injecting proxy that holds or drops replies, and over
//! signals that end the client mid-edit. What a person would check: the screen, and the
//! server's state.

use std::time::{Duration, Instant};

use catalog_tests::proxy::{Fault, Proxy};
use catalog_tests::tmux::Tmux;
use catalog_tests::{Server, bin, client, send};

const WAIT: Duration = Duration::from_secs(30);

fn catalog_cmd(base_url: &str, user: &str) -> String {
    format!(
        "{} --server {base_url} --user {user}",
        bin("catalog").display()
    )
}

/// Waits for a condition with a deadline (no sleeping and hoping). The tests run on a
/// multi-threaded runtime, so the proxy's tasks go on while this thread waits.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn product(s: &Server, id: i64) -> serde_json::Value {
    send(client().get(s.url(&format!("/products/{id}"))))
        .await
        .json()
}

/// Opens product 1 and sets its price to `price` (the price is the third field).
fn edit_price(t: &Tmux, who: &str, price: &str) {
    t.keys(who, &["Enter"]);
    t.wait_for(who, "Edit product 1: BBQ-KETTLE-57", WAIT)
        .unwrap();
    t.keys(who, &["Tab", "Tab", "Home", "C-k"]);
    t.type_text(who, price);
    t.wait_for(who, price, WAIT).unwrap();
}

/// Sends `signal` to the client in `pane` and waits until it has exited.
fn signal_client(t: &Tmux, pane: &str, signal: &str) {
    let pid = t
        .run(&["display-message", "-p", "-t", pane, "#{pane_pid}"])
        .unwrap();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), pid.trim()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
    wait_until("the client to exit", || {
        t.run(&["display-message", "-p", "-t", pane, "#{pane_dead}"])
            .is_ok_and(|d| d.trim() == "1")
    });
}

/// In a client just started: the offer of one draft, D, Enter: the draft reopened.
fn reopen_the_draft(t: &Tmux, pane: &str) {
    t.wait_for(pane, "1 unsaved draft", WAIT).unwrap();
    t.keys(pane, &["D"]);
    t.wait_for(pane, "Unsaved drafts: 1", WAIT).unwrap();
    t.keys(pane, &["Enter"]);
    t.wait_for(pane, "Draft opened", WAIT).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_never_turns_the_new_product_editor_into_another_product() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    // Product 1's save reaches the server and is committed; its reply is held.
    proxy.set(Fault::only("PUT", "/products/1", Fault::HoldReply));
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "300");
    t.keys("alice", &["C-s"]);
    wait_until("the server's reply being held", || {
        proxy.held_replies() == 1
    });
    // Alice gives up waiting: leaves the editor (answering the question) and starts a
    // new product.
    t.keys("alice", &["Escape"]);
    t.wait_for("alice", "Leave the editor", WAIT).unwrap();
    t.keys("alice", &["y"]);
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    t.keys("alice", &["a"]);
    t.wait_for("alice", "New product", WAIT).unwrap();
    // Now product 1's reply arrives.
    proxy.release();
    let screen = t
        .wait_for("alice", "Your earlier save of BBQ-KETTLE-57 arrived", WAIT)
        .unwrap();
    assert!(
        screen.contains("New product"),
        "still the new product:\n{screen}"
    );
    assert!(!screen.contains("Edit product 1"), "{screen}");
    // Her next Ctrl-S creates her new product; product 1 is not touched.
    t.type_text("alice", "Late arrival");
    t.keys("alice", &["Tab"]);
    t.type_text("alice", "LATE-1");
    t.keys("alice", &["Tab", "Home", "C-k"]);
    t.type_text("alice", "5");
    t.keys("alice", &["C-s"]);
    t.wait_for("alice", "Created LATE-1", WAIT).unwrap();
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(2), Some(30000)),
        "product 1 has exactly alice's first save: {one}"
    );
    assert_eq!(one["sku"], "BBQ-KETTLE-57");
    let created = product(&s, 26).await;
    assert_eq!(
        (created["sku"].as_str(), created["name"].as_str()),
        (Some("LATE-1"), Some("Late arrival"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_ends_in_saved_and_the_next_save_is_no_conflict_with_oneself() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    // The save reaches the server and is committed; the connection drops before the reply.
    proxy.set(Fault::times(
        1,
        Fault::only("PUT", "/products/1", Fault::DropReply),
    ));
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "300");
    t.keys("alice", &["C-s"]);
    let screen = t.wait_for("alice", "reply was lost", WAIT).unwrap();
    assert!(screen.contains("Saved BBQ-KETTLE-57"), "{screen}");
    assert!(!screen.contains("Not saved"), "{screen}");
    assert_eq!(product(&s, 1).await["version"], 2);
    // The client learnt it by sending the same request again with the same key, and the
    // server answered with the first outcome: no comparison of content.
    s.wait_for_log("a keyed write was repeated", WAIT).unwrap();
    // Saving again raises no conflict against her own write.
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "301");
    t.keys("alice", &["C-s"]);
    let screen = t.wait_for("alice", "version 3", WAIT).unwrap();
    assert!(!screen.contains("Conflict"), "{screen}");
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(3), Some(30100))
    );
}

/// A gateway in front of the server that gave up waiting answers 504 although the server
/// made the save. That is no answer from the server: the client sends the same request
/// again with the same key and learns it was saved, instead of saying "Not saved" and
/// meeting its own save as a conflict at the next Ctrl-S.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_timeout_after_the_save_was_made_ends_in_saved() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(Fault::times(
        1,
        Fault::only("PUT", "/products/1", Fault::GatewayTimeout),
    ));
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "300");
    t.keys("alice", &["C-s"]);
    let screen = t.wait_for("alice", "reply was lost", WAIT).unwrap();
    assert!(screen.contains("Saved BBQ-KETTLE-57"), "{screen}");
    assert!(!screen.contains("Not saved"), "{screen}");
    s.wait_for_log("a keyed write was repeated", WAIT).unwrap();
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(2), Some(30000)),
        "one save, made once: {one}"
    );
}

/// The save's reply is lost after the server made it, and the re-send meets a 503 (a
/// gateway with no upstream for a moment). That 503 speaks of the re-send only: the first
/// request may have been made, so the client keeps asking with the same key, and ends in
/// "saved", never "Not saved".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_to_the_resend_of_a_lost_save_does_not_make_it_not_saved() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(
        Fault::times(1, Fault::only("PUT", "/products/1", Fault::DropReply)).then(Fault::times(
            1,
            Fault::only("PUT", "/products/1", Fault::Unavailable),
        )),
    );
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "300");
    t.keys("alice", &["C-s"]);
    let screen = t
        .wait_for("alice", "reply was lost", WAIT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(screen.contains("Saved BBQ-KETTLE-57"), "{screen}");
    assert!(!screen.contains("Not saved"), "{screen}");
    assert_eq!(
        proxy.fault(),
        Fault::times(0, Fault::only("PUT", "/products/1", Fault::DropReply)).then(Fault::times(
            0,
            Fault::only("PUT", "/products/1", Fault::Unavailable)
        )),
        "the reply was lost once and the re-send refused once"
    );
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(2), Some(30000)),
        "one save, made once: {one}"
    );
}

/// A draft survives the client being told to stop mid-edit (SIGTERM, or SIGHUP when its
/// terminal is closed), and is offered with the typed text at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_survives_sigterm_and_sighup_and_is_offered_at_the_next_start() {
    for signal in ["TERM", "HUP"] {
        let s = Server::start();
        let mut t = Tmux::new();
        t.start("bob", 110, 32, &catalog_cmd(&s.base_url(), "bob"))
            .unwrap();
        t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
        edit_price(&t, "bob", "123.45");
        signal_client(&t, "bob", signal);
        let drafts = t.state_home().join("catalog/drafts");
        let files: Vec<_> = std::fs::read_dir(&drafts)
            .unwrap_or_else(|e| panic!("SIG{signal}: no drafts directory ({e})"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(files.len(), 1, "SIG{signal}: {files:?}");
        let draft: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        assert_eq!(draft["fields"]["price"], "123.45", "SIG{signal}");
        assert_eq!(draft["product_id"], 1);
        // The next start offers it; D lists it; Enter reopens it with the typed text.
        t.start("bob2", 110, 32, &catalog_cmd(&s.base_url(), "bob"))
            .unwrap();
        t.wait_for("bob2", "1 unsaved draft", WAIT).unwrap();
        t.wait_for("bob2", "1✎", WAIT).unwrap();
        t.keys("bob2", &["D"]);
        t.wait_for("bob2", "Unsaved drafts: 1", WAIT).unwrap();
        t.keys("bob2", &["Enter"]);
        let screen = t.wait_for("bob2", "Draft opened", WAIT).unwrap();
        assert!(screen.contains("123.45"), "SIG{signal}:\n{screen}");
        assert!(screen.contains("Edit product 1"), "{screen}");
        // Saving it removes the draft.
        t.keys("bob2", &["C-s"]);
        t.wait_for("bob2", "Saved BBQ-KETTLE-57", WAIT).unwrap();
        wait_until("the saved draft's removal", || {
            std::fs::read_dir(&drafts)
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        });
        assert_eq!(product(&s, 1).await["price_cents"], 12345);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_reply_is_lost_makes_one_product() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(Fault::times(
        1,
        Fault::only("POST", "/products", Fault::DropReply),
    ));
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    t.keys("alice", &["a"]);
    t.wait_for("alice", "New product", WAIT).unwrap();
    t.type_text("alice", "Once only");
    t.keys("alice", &["Tab"]);
    t.type_text("alice", "ONCE-1");
    t.keys("alice", &["Tab", "Home", "C-k"]);
    t.type_text("alice", "7");
    t.keys("alice", &["C-s"]);
    let screen = t.wait_for("alice", "reply was lost", WAIT).unwrap();
    assert!(screen.contains("Created ONCE-1"), "{screen}");
    let all = send(client().get(s.url("/products?limit=1000")))
        .await
        .json();
    let made = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["sku"] == "ONCE-1")
        .count();
    assert_eq!(made, 1, "one product, though the POST went twice");
    assert_eq!(
        proxy.fault(),
        Fault::times(0, Fault::only("POST", "/products", Fault::DropReply))
    );
}

/// A save whose answer never came, then the client killed: the draft keeps the save's
/// Idempotency-Key, so saving the reopened draft as it was gets the first outcome (saved,
/// one version), not a conflict with oneself and never a second write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_resent_after_a_crash_cannot_apply_twice() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(Fault::only("PUT", "/products/1", Fault::HoldReply));
    let mut t = Tmux::new();
    t.start("bob", 110, 32, &catalog_cmd(&proxy.url(""), "bob"))
        .unwrap();
    t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "bob", "250");
    t.keys("bob", &["C-s"]);
    wait_until("the save to be committed and its reply held", || {
        proxy.held_replies() == 1
    });
    signal_client(&t, "bob", "KILL");
    assert_eq!(product(&s, 1).await["version"], 2, "the save was committed");
    proxy.set(Fault::None);
    proxy.release();
    t.start("bob2", 110, 32, &catalog_cmd(&proxy.url(""), "bob"))
        .unwrap();
    reopen_the_draft(&t, "bob2");
    t.keys("bob2", &["C-s"]);
    let screen = t.wait_for("bob2", "Saved BBQ-KETTLE-57", WAIT).unwrap();
    assert!(!screen.contains("Conflict"), "{screen}");
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(2), Some(25000)),
        "one version: {one}"
    );
    s.wait_for_log("a keyed write was repeated", WAIT).unwrap();
}

/// As above, but bob typed on while the save was on its way, so the draft holds more
/// than the save that went out. The reopened draft's Ctrl-S is another request than the
/// one its key was sent with: it goes with a new key, meets bob's own first save as a
/// conflict (the server made it; nothing is guessed), and merges into one more version.
/// Never the first save's key on this other request (a 422 "Idempotency-Key reused",
/// told to bob as "Not saved").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_typed_on_after_its_save_went_out_never_reuses_that_save_key() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(Fault::only("PUT", "/products/1", Fault::HoldReply));
    let mut t = Tmux::new();
    t.start("bob", 110, 32, &catalog_cmd(&proxy.url(""), "bob"))
        .unwrap();
    t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "bob", "250");
    t.keys("bob", &["C-s"]);
    wait_until("the save to be committed and its reply held", || {
        proxy.held_replies() == 1
    });
    // Typing on while the save is out: the price field now reads 2509.
    t.keys("bob", &["End"]);
    t.type_text("bob", "9");
    t.wait_for("bob", "2509", WAIT).unwrap();
    let drafts = t.state_home().join("catalog/drafts");
    wait_until("the draft with the typed-on price", || {
        std::fs::read_dir(&drafts).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("2509")))
        })
    });
    signal_client(&t, "bob", "KILL");
    assert_eq!(product(&s, 1).await["version"], 2, "the save was committed");
    proxy.set(Fault::None);
    proxy.release();
    t.start("bob2", 110, 32, &catalog_cmd(&proxy.url(""), "bob"))
        .unwrap();
    reopen_the_draft(&t, "bob2");
    t.keys("bob2", &["C-s"]);
    let screen = t
        .wait_for("bob2", "Conflict: bob saved product 1 first", WAIT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!screen.contains("Not saved"), "{screen}");
    assert!(!screen.contains("Idempotency-Key"), "{screen}");
    // Price changed on both sides (250 by the first save, 2509 typed on): mine, then save.
    t.keys("bob2", &["m"]);
    t.wait_for("bob2", "Both sides changed price", WAIT)
        .unwrap();
    t.keys("bob2", &["Left", "C-s"]);
    t.wait_for("bob2", "Merged and saved", WAIT).unwrap();
    let one = product(&s, 1).await;
    assert_eq!(
        (one["version"].as_i64(), one["price_cents"].as_i64()),
        (Some(3), Some(250900)),
        "the first save once, then the typed-on one: {one}"
    );
}

/// The save's reply is lost; before the re-send's answer (the replay of the version it
/// made) arrives, bob deletes the product. The save was made, and so was the delete: the
/// catalog must not bring the deleted product back from the replayed version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_save_of_a_product_deleted_meanwhile_does_not_revive_it() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    proxy.set(
        Fault::times(1, Fault::only("PUT", "/products/1", Fault::DropReply)).then(Fault::only(
            "PUT",
            "/products/1",
            Fault::HoldReply,
        )),
    );
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&proxy.url(""), "alice"))
        .unwrap();
    t.wait_for("alice", "Catalog: 25 products", WAIT).unwrap();
    edit_price(&t, "alice", "300");
    t.keys("alice", &["C-s"]);
    wait_until("the re-send's replay to be held", || {
        proxy.held_replies() == 1
    });
    assert_eq!(product(&s, 1).await["version"], 2, "the save was made");
    let c = client();
    let etag = send(c.get(s.url("/products/1"))).await.etag();
    let deleted = send(
        c.delete(s.url("/products/1"))
            .header("If-Match", &etag)
            .header("X-User", "bob"),
    )
    .await;
    assert_eq!(deleted.status, 204);
    t.wait_for("alice", "live ETag (deleted)", WAIT).unwrap();
    proxy.set(Fault::None);
    proxy.release();
    let screen = t
        .wait_for("alice", "reply was lost", WAIT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(screen.contains("Saved BBQ-KETTLE-57"), "{screen}");
    let screen = t
        .wait_for("alice", "Catalog: 24 products", WAIT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !screen.lines().any(|l| l.starts_with("│1 ")),
        "no row for product 1:\n{screen}"
    );
}
