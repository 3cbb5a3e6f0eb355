//! The server under test (spawned fresh, or already running at `--addr`) and the few
//! product requests every scenario makes.

use std::net::{SocketAddr, ToSocketAddrs};

use catalog_tests::Server;
use serde_json::{Value, json};

pub struct Target {
    server: Option<Server>,
    pub addr: SocketAddr,
}

/// `--addr` as a socket address.
pub fn resolve(addr: &str) -> SocketAddr {
    addr.to_socket_addrs()
        .unwrap_or_else(|e| panic!("--addr {addr:?} is not HOST:PORT ({e})"))
        .next()
        .unwrap_or_else(|| panic!("--addr {addr:?} resolves to no address"))
}

impl Target {
    /// A fresh `catalog-server --sync full` on a new database in a temporary directory.
    pub fn spawn() -> Target {
        Self::spawn_with_sync("full")
    }

    /// A fresh `catalog-server --sync <sync>` on a new database in a temporary directory.
    pub fn spawn_with_sync(sync: &str) -> Target {
        let server = Server::start_with_args(&["--sync", sync]);
        Target {
            addr: server.addr,
            server: Some(server),
        }
    }

    /// A server the scenario started itself (e.g. on a PostgreSQL database).
    pub fn on_server(server: Server) -> Target {
        Target {
            addr: server.addr,
            server: Some(server),
        }
    }

    pub fn remote(addr: SocketAddr) -> Target {
        Target { server: None, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The spawned server's process id (none for a server at `--addr`).
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref()?.pid()
    }

    /// The server's resident memory in KiB (only for a spawned server).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// Creates a product (version 1) and returns it.
    pub async fn create_product(&self, client: &reqwest::Client, sku: &str) -> Product {
        let body = json!({
            "sku": sku, "name": format!("Bench product {sku}"), "description": "",
            "price_cents": 100, "status": "in_stock"
        });
        let r = client
            .post(self.url("/products"))
            .header("X-User", "bench")
            .json(&body)
            .send()
            .await
            .expect("POST /products reaches the server");
        let status = r.status();
        let etag = etag(&r);
        let text = r.text().await.expect("the POST's body");
        assert!(
            status.is_success(),
            "POST /products answered {status}: {text}"
        );
        let created: Value = serde_json::from_str(&text).expect("the POST answers JSON");
        let id = created["id"]
            .as_i64()
            .expect("the created product has an id");
        Product {
            id,
            url: self.url(&format!("/products/{id}")),
            etag: etag.expect("the POST answers an ETag"),
        }
    }
}

/// A process's resident memory in KiB, from /proc/<pid>/status.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A product the bench created.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: i64,
    pub url: String,
    /// Its ETag when created.
    pub etag: String,
}

pub fn etag(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// GET a product: its ETag and JSON.
pub async fn get(client: &reqwest::Client, url: &str) -> (String, Value) {
    let r = client
        .get(url)
        .send()
        .await
        .expect("GET reaches the server");
    assert_eq!(r.status(), 200, "GET {url}");
    let tag = etag(&r).expect("GET answers an ETag");
    (tag, r.json().await.expect("GET answers JSON"))
}

/// The PUT body for a product just read: its fields, with the price one cent higher.
pub fn bumped(p: &Value) -> Value {
    json!({
        "sku": p["sku"], "name": p["name"], "description": p["description"],
        "price_cents": p["price_cents"].as_i64().unwrap_or(0) + 1, "status": p["status"],
    })
}

/// A PUT's answer.
pub struct Put {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
}

impl Put {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "the PUT's {} body is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }
}

/// PUT with If-Match, as `user`.
pub async fn put(
    client: &reqwest::Client,
    url: &str,
    if_match: &str,
    user: &str,
    body: &Value,
) -> Put {
    put_keyed(client, url, if_match, user, body, None).await
}

/// A PUT with If-Match and, when given, an Idempotency-Key.
pub async fn put_keyed(
    client: &reqwest::Client,
    url: &str,
    if_match: &str,
    user: &str,
    body: &Value,
    key: Option<&str>,
) -> Put {
    let mut req = client
        .put(url)
        .header("If-Match", if_match)
        .header("X-User", user);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", format!("\"{key}\""));
    }
    let r = req.json(body).send().await.expect("PUT reaches the server");
    let status = r.status().as_u16();
    let etag = etag(&r);
    let body = r.text().await.expect("the PUT's body");
    Put { status, etag, body }
}
