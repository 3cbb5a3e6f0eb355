//! The round trip row by row: export, changed and equal rows, tokens, JSON lines, a
//! colleague's change as a conflict, the fixed conflicts file, creates, dry runs, deleted and
//! invalid rows.

use super::*;

#[tokio::test]
async fn the_export_has_one_row_per_product_with_its_etag() {
    let s = Server::start();
    // More than one page of the list (the server lists at most 1,000 at once).
    let c = client();
    for n in 0..1_001 {
        let r = send(c.post(s.url("/products")).json(&product_json(
            &format!("EXTRA-{n}"),
            &format!("Extra \"quoted\", with comma {n}"),
            100 + n,
            "in_stock",
        )))
        .await;
        assert_eq!(r.status, 201);
    }
    let server = products(&s).await;
    assert_eq!(server.len(), SEEDED + 1_001);
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;

    let rows = read_csv(&path);
    assert_eq!(
        rows[0],
        [
            "id",
            "etag",
            "sku",
            "name",
            "price",
            "status",
            "description"
        ]
    );
    assert_eq!(rows.len() - 1, server.len(), "one row per product");
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows[1..] {
        let id: i64 = row[ID].parse().expect("a numeric id");
        assert!(seen.insert(id), "product {id} exported once");
        let p = &server[&id];
        assert_eq!(
            row[ETAG],
            p["etag"].as_str().unwrap(),
            "product {id}'s ETag"
        );
        assert_eq!(row[SKU], p["sku"].as_str().unwrap());
        assert_eq!(row[NAME], p["name"].as_str().unwrap());
        assert_eq!(row[STATUS], p["status"].as_str().unwrap());
        assert_eq!(row[DESCRIPTION], p["description"].as_str().unwrap());
        let cents = p["price_cents"].as_i64().unwrap();
        assert_eq!(row[PRICE], format!("{}.{:02}", cents / 100, cents % 100));
    }
    // The seeded barbecue, as the client shows its price.
    assert_eq!(rows[1][SKU], "BBQ-KETTLE-57");
    assert_eq!(rows[1][PRICE], "399.00");

    // To a pipe: the same bytes.
    let piped = catalog(&s.base_url(), "alice", dir.path(), &["export"]).await;
    assert!(piped.ok(), "{piped:?}");
    assert_eq!(piped.stdout, std::fs::read_to_string(&path).unwrap());

    // JSON: one product per line, as the server represents it.
    let json = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["export", "--format", "json"],
    )
    .await;
    assert!(json.ok(), "{json:?}");
    let lines: Vec<&str> = json.stdout.lines().collect();
    assert_eq!(lines.len(), server.len());
    for line in lines {
        let p: Value = serde_json::from_str(line).expect("a JSON product per line");
        assert_eq!(&p, &server[&p["id"].as_i64().unwrap()]);
    }
    // No temporary file left beside the export.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["catalog.csv"]);
}

#[tokio::test]
async fn changed_rows_are_applied_and_equal_rows_are_not_written() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        row_of(rows, 1)[PRICE] = "349.00".into();
        let lamp = row_of(rows, 2);
        lamp[NAME] = "Arc floor lamp, brushed brass".into();
        lamp[STATUS] = "out_of_stock".into();
    });
    let before = products(&s).await;

    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    assert!(
        run.stdout.contains(&summary(2, 0, SEEDED - 2, 0, 0)),
        "{run:?}"
    );
    let bbq = product(&s, 1).await;
    assert_eq!(bbq["price_cents"], 34900);
    assert_eq!(bbq["updated_by"], "alice");
    assert_eq!(bbq["version"], 2);
    let lamp = product(&s, 2).await;
    assert_eq!(lamp["name"], "Arc floor lamp, brushed brass");
    assert_eq!(lamp["status"], "out_of_stock");
    // The rows nobody changed were not written: same ETags, same versions.
    let after = products(&s).await;
    for id in 3..=SEEDED as i64 {
        assert_eq!(after[&id], before[&id], "product {id} untouched");
    }
    assert!(
        !dir.path().join("catalog.csv.conflicts.csv").exists(),
        "no conflicts, no conflicts file"
    );
}

#[tokio::test]
async fn with_tokens_both_commands_use_the_token_and_say_at_once_when_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let carol = catalog_tests::add_user(&users, "carol").unwrap();
    let s = Server::start_with_args(&["--users", users.to_str().unwrap()]);
    let authorized = |req: reqwest::RequestBuilder| req.bearer_auth(&carol);

    // --token for the export, CATALOG_TOKEN for the import; --user is not who writes.
    let run = catalog(
        &s.base_url(),
        "mallory",
        dir.path(),
        &["--token", &carol, "export", "--output", "catalog.csv"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    let path = dir.path().join("catalog.csv");
    edit_csv(&path, |rows| row_of(rows, 1)[PRICE] = "349.00".into());
    let run = catalog_with_token(
        &s.base_url(),
        "mallory",
        Some(&carol),
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    let bbq = send(authorized(client().get(s.url("/products/1"))))
        .await
        .json();
    assert_eq!(
        (bbq["price_cents"].as_i64(), bbq["updated_by"].as_str()),
        (Some(34900), Some("carol"))
    );

    // Without a token: one clear sentence, before any row, and nothing written.
    let run = catalog(
        &s.base_url(),
        "carol",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("the server requires a token (401)"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("line "), "{run:?}");
    let run = catalog(&s.base_url(), "carol", dir.path(), &["export"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("the server requires a token (401)"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_json_lines_export_imports_too() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["export", "--format", "json", "--output", "catalog.jsonl"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    let path = dir.path().join("catalog.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a product per line"))
        .collect();
    assert_eq!(lines.len(), SEEDED);
    lines[0]["price_cents"] = 34900.into();
    lines.push(serde_json::json!({
        "sku": "LANTERN-PAPER-40", "name": "Paper lantern, 40 cm", "description": "",
        "price_cents": 2490, "status": "in_stock"
    }));
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();

    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.jsonl"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    assert!(
        run.stdout.contains(&summary(1, 1, SEEDED - 1, 0, 0)),
        "{run:?}"
    );
    assert_eq!(product(&s, 1).await["price_cents"], 34900);
    assert_eq!(products(&s).await.len(), SEEDED + 1);
}

/// Export; a colleague changes product 3's name, and product 2's stock (a row the file
/// leaves as it was); the file changes the prices of products 1 and 3.
async fn export_then_colleague_changes_the_kettle(s: &Server, dir: &Path) -> (PathBuf, Value) {
    let path = export(s, dir).await;
    let bobs = colleague_edits(s, 3, |p| {
        p["name"] = "Gooseneck kettle, 1 l, matte black".into()
    })
    .await;
    colleague_edits(s, 2, |p| p["status"] = "out_of_stock".into()).await;
    edit_csv(&path, |rows| {
        row_of(rows, 3)[PRICE] = "69.00".into();
        row_of(rows, 1)[PRICE] = "349.00".into();
    });
    (path, bobs)
}

#[tokio::test]
async fn a_product_changed_meanwhile_is_a_conflict_and_keeps_the_colleagues_change() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, bobs) = export_then_colleague_changes_the_kettle(&s, dir.path()).await;

    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert_eq!(run.code, Some(1), "a conflict is not a success: {run:?}");
    assert!(
        run.stdout.contains(&summary(1, 0, SEEDED - 2, 1, 0)),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("line 4: conflict: product 3"),
        "the row is named by its line: {run:?}"
    );
    assert!(
        run.stderr
            .contains("the row changes: price; changed on the server since: name (last by bob"),
        "{run:?}"
    );
    // Bob's change is there, and only his: the import's price was not written.
    let kettle = product(&s, 3).await;
    let lamp = product(&s, 2).await;
    assert_eq!(
        (lamp["status"].as_str(), lamp["updated_by"].as_str()),
        (Some("out_of_stock"), Some("bob")),
        "the row the file did not change is no conflict, and bob's change to it stands"
    );
    assert_eq!(kettle, bobs, "the kettle is as bob left it");
    assert_eq!(
        product(&s, 1).await["price_cents"],
        34900,
        "the other row applied"
    );

    let conflicts = read_csv(&dir.path().join("catalog.csv.conflicts.csv"));
    let header = &conflicts[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("the conflicts file has a {name} column: {header:?}"))
    };
    assert_eq!(
        &header[..7],
        [
            "id",
            "etag",
            "sku",
            "name",
            "price",
            "status",
            "description"
        ],
        "importable as it is"
    );
    assert_eq!(conflicts.len(), 2, "one conflicting row: {conflicts:?}");
    let row = &conflicts[1];
    assert_eq!(row[ID], "3");
    assert_eq!(
        row[ETAG],
        kettle["etag"].as_str().unwrap(),
        "the current ETag"
    );
    assert_eq!(row[PRICE], "69.00", "the row's value");
    assert_eq!(
        row[NAME], "Gooseneck kettle, 1 l",
        "the row as the file had it"
    );
    assert_eq!(
        row[col("current_name")],
        "Gooseneck kettle, 1 l, matte black"
    );
    assert_eq!(row[col("current_price")], "74.50");
    assert_eq!(row[col("you_changed")], "price");
    assert_eq!(row[col("they_changed")], "name");
    assert_eq!(row[col("changed_by")], "bob");
    assert_eq!(row[col("line")], "4");
}

#[tokio::test]
async fn the_fixed_conflicts_file_imports() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    export_then_colleague_changes_the_kettle(&s, dir.path()).await;
    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let conflicts = dir.path().join("catalog.csv.conflicts.csv");
    assert!(
        run.stdout
            .contains("catalog import catalog.csv.conflicts.csv"),
        "says what to run next: {run:?}"
    );

    // The fix: keep bob's name, keep my price.
    edit_csv(&conflicts, |rows| {
        let current_name = rows[0].iter().position(|h| h == "current_name").unwrap();
        let row = &mut rows[1];
        row[NAME] = row[current_name].clone();
    });
    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv.conflicts.csv"],
    )
    .await;
    assert!(run.ok(), "{run:?}");
    assert!(run.stdout.contains(&summary(1, 0, 0, 0, 0)), "{run:?}");
    let kettle = product(&s, 3).await;
    assert_eq!(
        kettle["name"], "Gooseneck kettle, 1 l, matte black",
        "bob's"
    );
    assert_eq!(kettle["price_cents"], 6900, "mine");
    assert_eq!(kettle["version"], 3);

    // The first file again: every change it makes is there now, so nothing to write.
    let before = products(&s).await;
    let again = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(again.ok(), "{again:?}");
    assert!(
        again.stdout.contains(&summary(0, 0, SEEDED, 0, 0)),
        "{again:?}"
    );
    assert_eq!(products(&s).await, before);
}

#[tokio::test]
async fn a_new_row_is_created_exactly_once_even_when_the_import_runs_twice() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    edit_csv(&path, |rows| {
        rows.push(new_row("LANTERN-PAPER-40", "Paper lantern, 40 cm", "24.90"));
    });

    let first = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(first.ok(), "{first:?}");
    assert!(
        first.stdout.contains(&summary(0, 1, SEEDED, 0, 0)),
        "{first:?}"
    );

    let again = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(
        again.ok(),
        "running the same file again is not an error: {again:?}"
    );
    assert!(
        again.stdout.contains(&summary(0, 1, SEEDED, 0, 0)),
        "the row counts as created, once: {again:?}"
    );
    assert!(
        again
            .stderr
            .contains("line 27: already created by an earlier run"),
        "{again:?}"
    );
    let all = products(&s).await;
    let lanterns: Vec<&Value> = all
        .values()
        .filter(|p| p["sku"] == "LANTERN-PAPER-40")
        .collect();
    assert_eq!(lanterns.len(), 1, "created once");
    assert_eq!(lanterns[0]["version"], 1, "and never rewritten");
    assert_eq!(lanterns[0]["price_cents"], 2490);
    assert_eq!(all.len(), SEEDED + 1);

    // The file edited further (so its rows get new keys) and imported again: the lantern
    // is there as the row says, which is no failure and no second product.
    edit_csv(&path, |rows| row_of(rows, 1)[PRICE] = "349.00".into());
    let edited = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert!(edited.ok(), "{edited:?}");
    assert!(
        edited.stdout.contains(&summary(1, 0, SEEDED, 0, 0)),
        "{edited:?}"
    );
    assert_eq!(products(&s).await.len(), SEEDED + 1);
}

#[tokio::test]
async fn dry_run_changes_nothing_and_reports_what_would_happen() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    export_then_colleague_changes_the_kettle(&s, dir.path()).await;
    edit_csv(&dir.path().join("catalog.csv"), |rows| {
        rows.push(new_row("LANTERN-PAPER-40", "Paper lantern, 40 cm", "24.90"));
    });
    let before = products(&s).await;

    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "--dry-run", "catalog.csv"],
    )
    .await;
    assert_eq!(run.code, Some(1), "the conflict is reported: {run:?}");
    assert!(
        run.stdout.contains(&format!(
            "dry run, nothing was written: {}",
            summary(1, 1, SEEDED - 2, 1, 0)
        )),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 2: would apply to product 1: price 399.00 -> 349.00"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 27: would create LANTERN-PAPER-40"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("line 4: conflict: product 3"),
        "{run:?}"
    );

    assert_eq!(products(&s).await, before, "every product as it was");
    assert!(
        !dir.path().join("catalog.csv.conflicts.csv").exists(),
        "a dry run writes no file either"
    );
}

#[tokio::test]
async fn deleted_and_invalid_rows_are_reported_by_line_and_field() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = export(&s, dir.path()).await;
    // Bob deletes the pan (product 5) after the export.
    let r = send(client().get(s.url("/products/5"))).await;
    let d = send(
        client()
            .delete(s.url("/products/5"))
            .header("If-Match", r.etag())
            .header("X-User", "bob"),
    )
    .await;
    assert_eq!(d.status, 204);
    edit_csv(&path, |rows| {
        row_of(rows, 5)[PRICE] = "39.00".into();
        row_of(rows, 6)[PRICE] = "a lot".into();
        row_of(rows, 7)[SKU] = "towel linen".into();
        rows.push(new_row("BBQ-KETTLE-57", "A second barbecue", "10.00"));
    });
    let before = products(&s).await;

    let run = catalog(
        &s.base_url(),
        "alice",
        dir.path(),
        &["import", "catalog.csv"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains(&summary(0, 0, SEEDED - 3, 0, 4)),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 6 (product 5): failed: the product was deleted by bob"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 7 (product 6): failed: invalid row: price "),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 8 (product 7): failed: invalid row: sku "),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("line 27: failed: invalid row: sku is already used by product 1"),
        "{run:?}"
    );
    assert_eq!(products(&s).await, before, "nothing written");
}
