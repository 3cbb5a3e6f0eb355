//! The server's command line as a user meets it: environment variables, --no-seed, signals,
//! and a clear refusal of what this build cannot do.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use catalog_tests::{Server, bin, client, send};

#[tokio::test]
async fn env_vars_configure_the_server_and_no_seed_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    // A port free a moment ago may be taken before the server binds it: then the server
    // stops without saying it listens, and the test tries another port.
    let mut started = None;
    for _ in 0..5 {
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
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let said = format!("listening on http://127.0.0.1:{port}");
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains(&said));
        // Keep reading the log, so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        if listening {
            started = Some((child, port));
            break;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let (mut child, port) = started.expect("the server listens on CATALOG_ADDR");
    let url = format!("http://127.0.0.1:{port}/products");
    let page = match client().get(&url).send().await {
        Ok(r) => r
            .json::<serde_json::Value>()
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let _ = child.kill();
    let _ = child.wait();
    let page = page.expect("the server answers on CATALOG_ADDR");
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

#[tokio::test]
async fn a_server_whose_log_reader_went_away_keeps_serving() {
    // As when `catalog-server 2>&1 | tee log` loses its tee: stderr is a closed pipe.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin("catalog-server"))
        .args(["--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("c.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        })
        .expect("the server says where it listens");
    drop(lines);
    for _ in 0..3 {
        let r = client()
            .get(format!("http://{addr}/products/1"))
            .send()
            .await
            .expect("the server answers although its log cannot be written");
        assert_eq!(r.status(), 200);
    }
    let _ = child.kill();
    let _ = child.wait();
}
