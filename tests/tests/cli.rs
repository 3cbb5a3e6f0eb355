//! The server's command line as a user meets it: environment variables, --no-seed, signals,
//! and a clear refusal of what this build cannot do.

use std::process::{Command, Stdio};
use std::time::Duration;

use catalog_tests::{Server, bin, client, send};

#[tokio::test]
async fn env_vars_configure_the_server_and_no_seed_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin("catalog-server"))
        .env("CATALOG_ADDR", format!("127.0.0.1:{port}"))
        .env("CATALOG_DB", dir.path().join("env.db"))
        .arg("--no-seed")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/products");
    let mut page = None;
    for _ in 0..300 {
        if let Ok(r) = client().get(&url).send().await {
            page = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let page = page.expect("the server answered on CATALOG_ADDR");
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "--no-seed: an empty catalog"
    );
    assert!(
        dir.path().join("env.db").exists(),
        "the database is at CATALOG_DB"
    );
}

#[tokio::test]
async fn sigint_shuts_down_gracefully_and_keeps_every_write() {
    let mut s = Server::start();
    let c = client();
    let r = send(c.get(s.url("/products/2"))).await;
    let mut p = r.json();
    p["price_cents"] = serde_json::json!(12345);
    let w = send(
        c.put(s.url("/products/2"))
            .header("If-Match", r.etag())
            .json(&p),
    )
    .await;
    assert_eq!(w.status, 200);
    let pid = s.pid().unwrap();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    s.wait_for_log("stopped", Duration::from_secs(20)).unwrap();
    s.restart().unwrap();
    // A new client: the old one's pooled connection went with the old process.
    let again = send(client().get(s.url("/products/2"))).await;
    assert_eq!(again.etag(), w.etag());
    assert_eq!(again.json()["price_cents"], 12345);
}

#[test]
fn an_unreachable_postgres_url_says_which_and_hides_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let out = Command::new(bin("catalog-server"))
        .env(
            "CATALOG_DB",
            "postgres://catalog:s3cret@127.0.0.1:1/catalog",
        )
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening the PostgreSQL database postgres://catalog:***@127.0.0.1:1/catalog"),
        "{err}"
    );
    assert!(err.contains("connecting to PostgreSQL"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn an_unusable_database_path_says_which() {
    let out = Command::new(bin("catalog-server"))
        .args([
            "--db",
            "/nonexistent-dir/x/catalog.db",
            "--addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening the database /nonexistent-dir/x/catalog.db"),
        "{err}"
    );
}
