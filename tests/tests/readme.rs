//! The README's curl walk-through of the classic race, run as written against a fresh
//! server (only the address differs), so the documentation cannot drift from the server.

use catalog_tests::{Server, client, send};

fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md at the workspace root");
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    readme[start..end]
        .lines()
        .filter(|l| !l.starts_with("```") && !l.starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_curl_walkthrough_works_as_written() {
    let s = Server::start();
    let script = walkthrough().replace("http://127.0.0.1:8080", &s.base_url());
    let out = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .await
        .expect("bash and curl are installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        answers,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 412 Precondition Failed",
            "HTTP/1.1 428 Precondition Required"
        ],
        "{text}"
    );
    assert!(text.contains("\"current_etag\""), "{text}");
    let p = send(client().get(s.url("/products/1"))).await.json();
    assert_eq!(
        (
            p["price_cents"].as_i64(),
            p["status"].as_str(),
            p["version"].as_i64()
        ),
        (Some(30000), Some("in_stock"), Some(2))
    );
    assert_eq!(p["updated_by"], "admin1");
}
