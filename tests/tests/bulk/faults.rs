//! Imports meeting faults: re-runs, lost and refused answers, a gateway's 504, a killed
//! import, Ctrl-C. Every row applied at most once.

use super::*;

#[tokio::test]
async fn running_an_applied_file_again_counts_it_applied_and_keeps_later_changes() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| row_of(rows, 1)[PRICE] = "349.00".into());
    let first = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(first.ok(), "{first:?}");
    // After the import, bob changes the barbecue's stock.
    let bobs = colleague_edits(&s, 1, |p| p["status"] = "out_of_stock".into()).await;

    // The same file again (say the first run's output was lost): the row is recognised by
    // its Idempotency-Key as written already, neither a conflict nor a second write.
    let again = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(again.ok(), "{again:?}");
    assert!(
        again.stdout.contains(&summary(1, 0, SEEDED - 1, 0, 0)),
        "{again:?}"
    );
    assert!(
        again
            .stderr
            .contains("line 2: already applied by an earlier run"),
        "{again:?}"
    );
    assert_eq!(product(&s, 1).await, bobs, "bob's later change stands");
    assert!(!dir.path().join("catalog.csv.conflicts.csv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_sent_again_with_its_key_and_creates_once() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        row_of(rows, 1)[PRICE] = "349.00".into();
        rows.push(new_row("LANTERN-PAPER-40", "Paper lantern, 40 cm", "24.90"));
    });
    // The server creates the product, but the client never hears the answer.
    let drop_first_post = |n| Fault::times(n, Fault::only("POST", "/products", Fault::DropReply));
    proxy.set(drop_first_post(1));
    let via_proxy = proxy.url("");
    let run = catalog(&via_proxy, "alice", dir.path(), &["import", "catalog.csv"]).await;
    assert!(run.ok(), "{run:?}");
    assert!(
        run.stdout.contains(&summary(1, 1, SEEDED - 1, 0, 0)),
        "{run:?}"
    );
    assert_eq!(
        proxy.fault(),
        drop_first_post(0),
        "the answer was lost once"
    );
    let bbq = product(&s, 1).await;
    assert_eq!(bbq["price_cents"], 34900);
    assert_eq!(bbq["version"], 2, "written once");
    let all = products(&s).await;
    assert_eq!(with_sku(&all, "LANTERN-PAPER-40"), 1, "created once");
}

/// A gateway that gave up waiting answers 504 while the server went on and created the
/// product: no answer, so the row is sent again with its key, and created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_504_by_a_gateway_is_sent_again_with_its_key_and_creates_once() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        rows.push(new_row("LANTERN-PAPER-40", "Paper lantern, 40 cm", "24.90"));
    });
    proxy.set(Fault::times(
        1,
        Fault::only("POST", "/products", Fault::GatewayTimeout),
    ));
    let run = catalog(
        &proxy.url(""),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    assert!(run.stdout.contains(&summary(0, 1, SEEDED, 0, 0)), "{run:?}");
    let all = products(&s).await;
    assert_eq!(with_sku(&all, "LANTERN-PAPER-40"), 1, "created once");
}

/// The answer to a create is lost after the server made it, and every re-send is turned
/// away (503): the row is not known to be written or not, and is reported so (with what to
/// do), never as plainly failed; the same import run again creates nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_whose_resends_are_all_turned_away_is_not_known_not_failed() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        rows.push(new_row("LANTERN-PAPER-40", "Paper lantern, 40 cm", "24.90"));
    });
    proxy.set(
        Fault::times(1, Fault::only("POST", "/products", Fault::DropReply)).then(Fault::only(
            "POST",
            "/products",
            Fault::Unavailable,
        )),
    );
    let run = catalog(
        &proxy.url(""),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(!run.ok(), "{run:?}");
    assert!(run.stdout.contains(&summary(0, 0, SEEDED, 0, 1)), "{run:?}");
    assert!(
        run.stderr
            .contains("whether the row was written is not known"),
        "{run:?}"
    );
    let again = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(again.ok(), "{again:?}");
    assert!(
        again.stdout.contains(&summary(0, 1, SEEDED, 0, 0)),
        "{again:?}"
    );
    let all = products(&s).await;
    assert_eq!(with_sku(&all, "LANTERN-PAPER-40"), 1, "created once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_midway_and_run_again_creates_every_row_once() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.csv");
    let mut rows = vec![
        [
            "id",
            "etag",
            "sku",
            "name",
            "price",
            "status",
            "description",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for n in 0..20 {
        rows.push(new_row(&format!("LANTERN-{n}"), "Paper lantern", "24.90"));
    }
    write_csv(&path, &rows);
    // Every POST is made by the server, and its answer held back from the client.
    proxy.set(Fault::only("POST", "/products", Fault::HoldReply));
    let mut child = tokio::process::Command::new(bin("catalog"))
        .args(["--server", &proxy.url(""), "--user", "alice"])
        .args(["import", "--jobs", "4", "new.csv"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("catalog runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.held_replies() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "4 creates made and unanswered within 30 s (held: {})",
            proxy.held_replies()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The crash: SIGKILL, with four products created and not one answer received.
    child.kill().await.expect("killed");
    let made = products(&s).await.len() - SEEDED;
    assert_eq!(made, 4, "the four held creates were made");

    let again = catalog(&s.base_url(), "alice", dir.path(), &["import", "new.csv"]).await;
    assert!(again.ok(), "{again:?}");
    assert!(again.stdout.contains(&summary(0, 20, 0, 0, 0)), "{again:?}");
    assert_eq!(
        again
            .stderr
            .matches("already created by an earlier run")
            .count(),
        4,
        "{again:?}"
    );
    let all = products(&s).await;
    assert_eq!(all.len(), SEEDED + 20, "each row created once");
    for n in 0..20 {
        let sku = format!("LANTERN-{n}");
        assert_eq!(with_sku(&all, &sku), 1, "{sku}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_the_rows_being_written_finish_and_starts_no_other() {
    let s = Server::start();
    let proxy = Proxy::start(s.addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        for id in 1..=SEEDED as i64 {
            row_of(rows, id)[PRICE] = "1.00".into();
        }
    });
    proxy.set(Fault::only("PUT", "/products", Fault::HoldReply));
    let mut child = tokio::process::Command::new(bin("catalog"))
        .args(["--server", &proxy.url(""), "--user", "alice"])
        .args(["import", "--jobs", "3", "catalog.csv"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("catalog runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.held_replies() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "3 writes in flight within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    // Once the client has said it stops, the three answers it waits for arrive.
    let mut stderr = child.stderr.take().expect("piped");
    let mut said = String::new();
    let mut buf = [0u8; 1024];
    while !said.contains("interrupted") {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout_at(deadline.into(), stderr.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no word of the interrupt within 30 s: {said}"))
            .expect("stderr");
        assert!(n > 0, "stderr closed before the interrupt was said: {said}");
        said.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // From now on nothing is held: a row started after the interrupt would be written.
    proxy.set(Fault::None);
    proxy.release();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("catalog ends within 60 s of the interrupt")
        .expect("catalog ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}{said}");
    assert!(
        stdout.contains(&format!(
            "interrupted after 3 of {SEEDED} rows: {}",
            summary(3, 0, 0, 0, 0)
        )),
        "{stdout}"
    );
    let changed = products(&s)
        .await
        .values()
        .filter(|p| p["price_cents"] == 100)
        .count();
    assert_eq!(
        changed, 3,
        "the three rows in flight were written, no other"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["catalog.csv"], "nothing left behind");
}
