//! End to end, as people use it: the real server binary, the real `catalog` client in a
//! real terminal (tmux), keys typed, screens read. Each test has its own tmux server and
//! its own catalog server, and waits for screen text with a deadline.

use std::time::Duration;

use catalog_tests::tmux::{Tmux, flat};
use catalog_tests::{Server, bin, client, send};

const WAIT: Duration = Duration::from_secs(30);

fn catalog_cmd(s: &Server, user: &str, extra: &str) -> String {
    format!(
        "{} --server {} --user {user} {extra}",
        bin("catalog").display(),
        s.base_url()
    )
}

/// Starts alice and bob on the seeded catalog and opens product 1 in both editors.
fn both_open(s: &Server, bob_extra: &str) -> Tmux {
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(s, "alice", ""))
        .unwrap();
    t.start("bob", 110, 32, &catalog_cmd(s, "bob", bob_extra))
        .unwrap();
    for who in ["alice", "bob"] {
        t.wait_for(who, "Catalog: 25 products", WAIT).unwrap();
        t.wait_for(who, "● live", WAIT).unwrap();
        t.keys(who, &["Enter"]);
        t.wait_for(who, "Edit product 1: BBQ-KETTLE-57", WAIT)
            .unwrap();
    }
    t
}

/// Bob marks it out of stock (not saved); alice lowers the price to $300.00 and saves.
fn alice_saves_first(t: &Tmux) {
    t.keys("bob", &["Tab", "Tab", "Tab", "Down"]);
    t.wait_for("bob", "(edited)", WAIT).unwrap();
    t.keys("alice", &["Tab", "Tab", "Home", "C-k"]);
    t.type_text("alice", "300.00");
    t.keys("alice", &["C-s"]);
    t.wait_for("alice", "Saved BBQ-KETTLE-57 (product 1, version 2", WAIT)
        .unwrap();
}

/// Bob saves on his stale base and gets the conflict panel.
fn bob_conflicts(t: &Tmux) -> String {
    t.wait_for("bob", "alice changed price", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    t.wait_for("bob", "Conflict: product 1 (BBQ-KETTLE-57)", WAIT)
        .unwrap()
}

async fn product_1(s: &Server) -> serde_json::Value {
    send(client().get(s.url("/products/1"))).await.json()
}

#[tokio::test]
async fn the_seed_race_resolved_by_merge() {
    let s = Server::start();
    let t = both_open(&s, "");
    alice_saves_first(&t);
    let panel = bob_conflicts(&t);
    assert!(panel.contains("412 Precondition Failed"), "{panel}");
    assert!(panel.contains("theirs v2 (alice)"), "{panel}");
    t.keys("bob", &["m"]);
    t.wait_for(
        "bob",
        "Merged and saved BBQ-KETTLE-57 (product 1, version 3",
        WAIT,
    )
    .unwrap();
    let p = product_1(&s).await;
    assert_eq!(p["price_cents"], 30000, "alice's price");
    assert_eq!(p["status"], "out_of_stock", "bob's status");
    assert_eq!(p["version"], 3);
    // Alice's table shows the new ETag live, without her doing anything.
    let etag = p["etag"].as_str().unwrap();
    let screen = t.wait_for("alice", etag, WAIT).unwrap();
    assert!(
        screen.contains("★ bob"),
        "highlighted with bob's name:\n{screen}"
    );
}

#[tokio::test]
async fn the_seed_race_resolved_by_reload() {
    let s = Server::start();
    let t = both_open(&s, "");
    alice_saves_first(&t);
    bob_conflicts(&t);
    t.keys("bob", &["r"]);
    t.wait_for("bob", "Reload theirs and throw away your edits?", WAIT)
        .unwrap();
    t.keys("bob", &["Enter"]);
    let screen = t
        .wait_for("bob", "Reloaded version 2 by alice", WAIT)
        .unwrap();
    assert!(screen.contains("300.00"), "{screen}");
    let p = product_1(&s).await;
    assert_eq!(
        (
            p["price_cents"].as_i64(),
            p["status"].as_str(),
            p["version"].as_i64()
        ),
        (Some(30000), Some("in_stock"), Some(2))
    );
}

#[tokio::test]
async fn the_seed_race_resolved_by_overwrite() {
    let s = Server::start();
    let t = both_open(&s, "");
    alice_saves_first(&t);
    bob_conflicts(&t);
    t.keys("bob", &["o"]);
    t.wait_for(
        "bob",
        "Overwrote with your version: BBQ-KETTLE-57 (product 1, version 3",
        WAIT,
    )
    .unwrap();
    let p = product_1(&s).await;
    assert_eq!(
        (
            p["price_cents"].as_i64(),
            p["status"].as_str(),
            p["version"].as_i64()
        ),
        (Some(39900), Some("out_of_stock"), Some(3))
    );
    t.keys("bob", &["l"]);
    // The pane may be caught half drawn: wait for the whole of it.
    t.wait_until(
        "bob",
        |log| log.contains("Protocol log") && log.contains(" 412 ") && log.contains(" 200 "),
        WAIT,
    )
    .expect("the log shows the first save refused (412) and the overwrite accepted (200)");
}

#[tokio::test]
async fn bob_sees_the_stale_banner_before_he_saves() {
    let s = Server::start();
    let t = both_open(&s, "");
    alice_saves_first(&t);
    let screen = t.wait_for("bob", "your save will conflict", WAIT).unwrap();
    assert!(screen.contains("⚠ alice changed price"), "{screen}");
    assert!(
        screen.contains("out_of_stock"),
        "bob's unsaved edit is still there:\n{screen}"
    );
    let p = product_1(&s).await;
    assert_eq!(
        (p["version"].as_i64(), p["status"].as_str()),
        (Some(2), Some("in_stock")),
        "bob saved nothing"
    );
}

#[tokio::test]
async fn without_if_match_bobs_save_silently_loses_alices_price() {
    // This test asserts the loss on purpose: it documents why If-Match matters.
    let s = Server::start_with_args(&["--allow-unconditional"]);
    let t = both_open(&s, "--no-if-match");
    t.wait_for("bob", "UNSAFE: saves send no If-Match", WAIT)
        .unwrap();
    alice_saves_first(&t);
    t.wait_for("bob", "alice changed price", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    let screen = t.wait_for("bob", "LOST UPDATE", WAIT).unwrap();
    assert!(flat(&screen).contains("Their price is gone"), "{screen}");
    let p = product_1(&s).await;
    assert_eq!(p["price_cents"], 39900, "alice's $300.00 is lost");
    assert_eq!(p["status"], "out_of_stock");
    assert_eq!(p["version"], 3);
    t.keys("bob", &["l"]);
    let log = t.wait_for("bob", "NONE (unsafe)", WAIT).unwrap();
    assert!(log.contains(" 200 "), "{log}");
    let line = s
        .wait_for_log("PUT /products/1 200 if-match=- ", WAIT)
        .unwrap();
    assert!(line.contains("user=bob"), "{line}");
}

#[tokio::test]
async fn unsaved_edits_survive_a_server_restart() {
    let mut s = Server::start();
    let mut t = Tmux::new();
    t.start("bob", 110, 32, &catalog_cmd(&s, "bob", ""))
        .unwrap();
    t.wait_for("bob", "● live", WAIT).unwrap();
    t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
    t.keys("bob", &["Enter"]);
    t.wait_for("bob", "Edit product 1", WAIT).unwrap();
    t.keys("bob", &["Tab", "Tab", "Home", "C-k"]);
    t.type_text("bob", "123.45");
    t.wait_for("bob", "123.45", WAIT).unwrap();
    s.kill9();
    t.wait_for("bob", "reconnecting", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    let screen = t.wait_for("bob", "Your edits are kept", WAIT).unwrap();
    assert!(screen.contains("cannot reach the server"), "{screen}");
    assert!(screen.contains("123.45"), "{screen}");
    s.restart().unwrap();
    t.wait_for("bob", "● live", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    t.wait_for("bob", "Saved BBQ-KETTLE-57 (product 1, version 2", WAIT)
        .unwrap();
    assert_eq!(product_1(&s).await["price_cents"], 12345);
}

#[tokio::test]
async fn after_a_restart_a_stale_save_still_conflicts() {
    let mut s = Server::start();
    let mut t = Tmux::new();
    t.start("bob", 110, 32, &catalog_cmd(&s, "bob", ""))
        .unwrap();
    t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
    t.keys("bob", &["Enter"]);
    t.wait_for("bob", "Edit product 1", WAIT).unwrap();
    t.keys("bob", &["Tab", "Tab", "Tab", "Down"]);
    t.wait_for("bob", "(edited)", WAIT).unwrap();
    s.kill9();
    t.wait_for("bob", "reconnecting", WAIT).unwrap();
    // While bob is cut off, someone else changes the price.
    s.restart().unwrap();
    let c = client();
    let r = send(c.get(s.url("/products/1"))).await;
    let mut body = r.json();
    body["price_cents"] = serde_json::json!(25000);
    let w = send(
        c.put(s.url("/products/1"))
            .header("If-Match", r.etag())
            .header("X-User", "carol")
            .json(&body),
    )
    .await;
    assert_eq!(w.status, 200);
    // The client resumes the event stream (Last-Event-ID) and warns before the save.
    t.wait_for("bob", "carol changed price", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    t.wait_for("bob", "Conflict: product 1", WAIT).unwrap();
    t.keys("bob", &["m"]);
    t.wait_for("bob", "Merged and saved", WAIT).unwrap();
    let p = product_1(&s).await;
    assert_eq!(
        (p["price_cents"].as_i64(), p["status"].as_str()),
        (Some(25000), Some("out_of_stock"))
    );
}

#[tokio::test]
async fn the_demo_command_starts_two_clients_and_leaves_nothing_behind() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let inner = format!("catalog-e2e-demo-{}", std::process::id());
    let target = catalog_tests::bin_dir().parent().unwrap().to_path_buf();
    let mut t = Tmux::new();
    let cmd = format!(
        "cd {root} && CATALOG_DEMO_SKIP_BUILD=1 CARGO_TARGET_DIR={target} CATALOG_DEMO_TMUX_SOCKET={inner} TMPDIR={tmp} bash demo.sh; echo DEMO-EXITED-$?",
        root = root.display(),
        target = target.display(),
        tmp = tmp.path().display(),
    );
    t.start("demo", 200, 50, &cmd).unwrap();
    let screen = t
        .wait_until(
            "demo",
            |s| {
                s.matches("Catalog: 25 products").count() == 2
                    && s.contains(" alice ")
                    && s.contains(" bob ")
                    && s.matches("● live").count() == 2
            },
            WAIT,
        )
        .unwrap();
    assert!(
        screen.contains("Step 1: both windows open the BBQ"),
        "the guide is on:\n{screen}"
    );
    assert!(
        screen.contains("listening on http://"),
        "the server log is shown:\n{screen}"
    );
    // Quit both clients (q in each pane).
    let panes = t.run(&["list-panes", "-t", "demo"]).unwrap();
    assert!(!panes.is_empty());
    let inner_tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &inner])
            .args(args)
            .output()
            .unwrap()
    };
    let list = String::from_utf8_lossy(
        &inner_tmux(&[
            "list-panes",
            "-s",
            "-t",
            "demo",
            "-F",
            "#{pane_id} #{pane_start_command}",
        ])
        .stdout,
    )
    .into_owned();
    let clients: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("--user alice") || l.contains("--user bob"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(clients.len(), 2, "two clients: {list}");
    // r in the log pane restarts the server on the same database and address; both
    // clients come back live.
    let log_pane = list
        .lines()
        .find(|l| l.contains("tail -n +1"))
        .and_then(|l| l.split(' ').next())
        .expect("the log pane");
    inner_tmux(&["send-keys", "-t", log_pane, "r"]);
    t.wait_until(
        "demo",
        |s| {
            // (The log pane's "restarting" line may have scrolled away already.)
            s.matches("Reconnected after").count() == 2 && s.matches("● live").count() == 2
        },
        WAIT,
    )
    .expect("the server restarts and both clients are live again");
    for pane in clients {
        inner_tmux(&["send-keys", "-t", pane, "q"]);
    }
    t.wait_for("demo", "DEMO-EXITED-0", WAIT).unwrap();
    // Nothing is left: no process mentions the demo's directory, the inner tmux is gone,
    // and the temporary database directory is removed.
    let demo_dir = format!("{}/catalog-demo.", tmp.path().display());
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &demo_dir])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
    assert!(
        !inner_tmux(&["list-sessions"]).status.success(),
        "the demo's tmux server is gone"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the demo directory is removed"
    );
}

#[tokio::test]
async fn ctrl_c_with_an_unsaved_edit_writes_a_draft_file() {
    let s = Server::start();
    let state_home = tempfile::tempdir().unwrap();
    let mut t = Tmux::new();
    let cmd = format!(
        "XDG_STATE_HOME={} {}",
        state_home.path().display(),
        catalog_cmd(&s, "bob", "")
    );
    t.start("bob", 110, 32, &cmd).unwrap();
    t.wait_for("bob", "Catalog: 25 products", WAIT).unwrap();
    t.keys("bob", &["Enter"]);
    t.wait_for("bob", "Edit product 1", WAIT).unwrap();
    t.keys("bob", &["Tab", "Tab", "Home", "C-k"]);
    t.type_text("bob", "123.45");
    t.wait_for("bob", "123.45", WAIT).unwrap();
    t.keys("bob", &["C-c"]);
    t.wait_for_printed("bob", "Nothing was sent to the server.", WAIT)
        .unwrap();
    let screen = t.transcript("bob");
    assert!(
        screen.contains("Your unsaved edit was written to"),
        "{screen}"
    );
    let dir = state_home.path().join("catalog/drafts");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{screen}");
    assert!(
        flat(&screen).contains(&files[0].display().to_string()),
        "the path is printed:\n{screen}"
    );
    let draft: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(draft["product_id"], 1);
    assert_eq!(draft["based_on_version"], 1);
    assert_eq!(draft["fields"]["price"], "123.45");
    assert_eq!(draft["fields"]["sku"], "BBQ-KETTLE-57");
    assert_eq!(
        send(client().get(s.url("/products/1"))).await.json()["version"],
        1,
        "nothing was sent"
    );
}

/// The demo in an 80x24 terminal gives each client half of it: the whole race, to the
/// merge, at 40x24, with each row's id and ETag on screen throughout.
#[tokio::test]
async fn the_race_in_half_of_an_80x24_terminal() {
    let s = Server::start();
    let mut t = Tmux::new();
    for who in ["alice", "bob"] {
        t.start(who, 40, 24, &catalog_cmd(&s, who, "")).unwrap();
    }
    let p = product_1(&s).await;
    let first_etag = p["etag"].as_str().unwrap().to_string();
    for who in ["alice", "bob"] {
        let screen = t.wait_for(who, "Catalog: 25 products", WAIT).unwrap();
        assert!(screen.contains(&first_etag), "the ETag fits:\n{screen}");
        t.keys(who, &["Enter"]);
        t.wait_for(who, "Edit product 1: BBQ-KETTLE-57", WAIT)
            .unwrap();
    }
    // Bob marks it out of stock (not saved); alice lowers the price and saves.
    t.keys("bob", &["Tab", "Tab", "Tab", "Down"]);
    t.wait_for("bob", "out_of_stock", WAIT).unwrap();
    t.keys("alice", &["Tab", "Tab", "Home", "C-k"]);
    t.type_text("alice", "300.00");
    t.keys("alice", &["C-s"]);
    t.wait_for("alice", "Saved BBQ-KETTLE-57", WAIT).unwrap();
    t.wait_for("bob", "alice changed price", WAIT).unwrap();
    t.keys("bob", &["C-s"]);
    // The conflict panel, with merge still in the key bar at 40 columns.
    t.wait_until(
        "bob",
        |s| s.contains("Conflict: product 1") && s.contains("theirs") && s.contains("m merge"),
        WAIT,
    )
    .unwrap();
    t.keys("bob", &["m"]);
    t.wait_for("bob", "Merged and saved", WAIT).unwrap();
    let p = product_1(&s).await;
    assert_eq!(
        (
            p["price_cents"].as_i64(),
            p["status"].as_str(),
            p["version"].as_i64()
        ),
        (Some(30000), Some("out_of_stock"), Some(3))
    );
    let etag = p["etag"].as_str().unwrap().to_string();
    t.wait_for("alice", &etag, WAIT).unwrap();
}

/// Presence before conflict: bob opens product 1 and alice sees him on that row and in her
/// editor before she types; the mark goes when bob leaves, at once on Esc, and soon after
/// his client is killed.
#[tokio::test]
async fn alice_sees_bob_in_the_product_before_she_types() {
    let s = Server::start_with_args(&["--presence-ttl", "3s"]);
    let mut t = Tmux::new();
    t.start("alice", 110, 32, &catalog_cmd(&s, "alice", ""))
        .unwrap();
    t.start("bob", 110, 32, &catalog_cmd(&s, "bob", ""))
        .unwrap();
    for who in ["alice", "bob"] {
        t.wait_for(who, "Catalog: 25 products", WAIT).unwrap();
        t.wait_for(who, "● live", WAIT).unwrap();
    }
    t.keys("bob", &["Enter"]);
    t.wait_for("bob", "Edit product 1", WAIT).unwrap();
    t.wait_for("alice", "● bob", WAIT).unwrap();
    t.keys("alice", &["Enter"]);
    let screen = t.wait_for("alice", "bob is editing name", WAIT).unwrap();
    assert!(!screen.contains("(edited)"), "before she types:\n{screen}");
    // Bob moves to the price: alice's editor follows.
    t.keys("bob", &["Tab", "Tab"]);
    t.wait_for("alice", "bob is editing price", WAIT).unwrap();
    // Bob leaves the editor: the mark goes at once.
    t.keys("bob", &["Escape"]);
    t.wait_until("alice", |s| !s.contains("bob is editing"), WAIT)
        .expect("the mark goes when bob closes his editor");
    // Bob opens it again, and his client is killed: the mark goes soon after.
    t.keys("bob", &["Enter"]);
    t.wait_for("alice", "bob is editing", WAIT).unwrap();
    let pid = t
        .run(&["display-message", "-p", "-t", "bob", "#{pane_pid}"])
        .unwrap();
    std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    t.wait_until("alice", |s| !s.contains("bob is editing"), WAIT)
        .expect("the mark goes within the expiry after bob's client is killed");
}
