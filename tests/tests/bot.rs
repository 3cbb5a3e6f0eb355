//! `catalog bot` against the real server: it edits through the public API, conditionally,
//! and two bots fighting over one product never lose an edit.

use std::process::Stdio;

use catalog_tests::{Server, bin, client, product_json, send};

async fn run_bot(s: &Server, user: &str, count: u32, extra: &[&str]) -> String {
    let out = tokio::process::Command::new(bin("catalog"))
        .args([
            "bot",
            "--server",
            &s.base_url(),
            "--user",
            user,
            "--every",
            "10ms",
        ])
        .args(["--count", &count.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the bot runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn the_bot_edits_products_as_its_user_with_if_match() {
    let s = Server::start();
    let out = run_bot(&s, "carol", 3, &["--fields", "price"]).await;
    let edits: Vec<&str> = out.lines().filter(|l| l.contains(": price $")).collect();
    assert_eq!(edits.len(), 3, "{out}");
    assert!(edits.iter().all(|l| l.contains("If-Match \"")), "{out}");
    let page = send(client().get(s.url("/products?limit=1000")))
        .await
        .json();
    let by_carol: i64 = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["updated_by"] == "carol")
        .map(|p| p["version"].as_i64().unwrap() - 1)
        .sum();
    assert_eq!(by_carol, 3, "three edits, all recorded as carol");
    let lines = s
        .log()
        .into_iter()
        .filter(|l| l.contains("PUT /products/") && l.contains("user=carol"))
        .collect::<Vec<_>>();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| !l.contains("if-match=-")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn two_bots_on_one_product_never_lose_an_edit() {
    let s = Server::start_with_args(&["--no-seed"]);
    let created = send(client().post(s.url("/products")).json(&product_json(
        "ONLY-1",
        "The only product",
        10000,
        "in_stock",
    )))
    .await;
    assert_eq!(created.status, 201);
    let (a, b) = tokio::join!(
        run_bot(&s, "carol", 15, &["--fields", "price,status"]),
        run_bot(&s, "dave", 15, &["--fields", "price,status"]),
    );
    let p = send(client().get(s.url("/products/1"))).await.json();
    // Every successful edit is one version: 1 + 15 + 15, whatever the 412 retries were.
    assert_eq!(p["version"], 31, "carol:\n{a}\ndave:\n{b}");
}

#[tokio::test]
async fn bad_bot_arguments_are_explained() {
    let out = tokio::process::Command::new(bin("catalog"))
        .args(["bot", "--fields", "colour"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field \"colour\""), "{err}");
}
