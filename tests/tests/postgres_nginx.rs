//! Two instances on one PostgreSQL database behind a real nginx, configured as the README
//! says (round robin, no sticky sessions, `proxy_buffering off`, a long read timeout):
//! writes through it land on both instances with the same ETags and 412s, and an event
//! stream passes through it live. Skipped, with a line saying so, where PostgreSQL or
//! nginx is not installed; `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use catalog_shared::event::ChangeEvent;
use catalog_tests::postgres::shared_or_skip;
use catalog_tests::{Server, client, send};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::json;

fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// nginx in the foreground on a loopback port, stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on a port that was free a moment ago; if another process took it meanwhile,
    /// nginx cannot bind it and exits, and another port is tried.
    fn start(bin: &Path, upstreams: &[&Server]) -> Nginx {
        for _ in 0..5 {
            if let Some(nginx) = Self::try_start(bin, upstreams) {
                return nginx;
            }
        }
        panic!("nginx could not take any of 5 free ports");
    }

    fn try_start(bin: &Path, upstreams: &[&Server]) -> Option<Nginx> {
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let servers: String = upstreams
            .iter()
            .map(|s| format!("        server {};\n", s.addr))
            .collect();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream catalog {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://catalog;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("writing nginx.conf");
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        // nginx writes its pid file once it holds its listening socket: then the port is
        // its own, and connecting to it reaches nginx, not whoever else might hold it.
        let pid_file = dir.path().join("nginx.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                assert!(log.contains("bind()"), "nginx stopped: {log}");
                return None;
            }
            let own = std::fs::read_to_string(&pid_file)
                .is_ok_and(|pid| pid.trim() == child.id().to_string());
            if own && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            child,
            port,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master: it stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_serve_one_catalog_and_stream_events_through_it() {
    let Some(cluster) = shared_or_skip("two_instances_behind_nginx") else {
        return;
    };
    let Some(bin) = nginx_binary() else {
        catalog_tests::missing_tool(
            "two_instances_behind_nginx",
            "nginx is not installed (apt-get install nginx; .ci/run does)",
        );
        return;
    };
    let url = cluster.create_database().expect("a fresh database");
    let a = Server::start_on(Path::new(&url), &[], "127.0.0.1:0").expect("A starts");
    let b = Server::start_on(Path::new(&url), &[], "127.0.0.1:0").expect("B starts");
    let lb = Nginx::start(&bin, &[&a, &b]);
    let c = client();

    // The stream is opened through nginx first, so it sees every write after it.
    let r = c
        .get(lb.url("/events"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(r.status(), 200);
    let mut events = r.bytes_stream().eventsource();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event through nginx within 10 s: it is not buffered")
            .expect("the stream is open")
            .expect("a well-formed event")
    };
    assert_eq!(next().await.event, "ready");

    // Read-modify-write cycles through nginx, which spreads them over both instances.
    let mut etags = Vec::new();
    for price in 1..=6 {
        let r = send(c.get(lb.url("/products/2"))).await;
        let mut p = r.json();
        p["price_cents"] = json!(price);
        let w = send(
            c.put(lb.url("/products/2"))
                .header("If-Match", r.etag())
                .json(&p),
        )
        .await;
        assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
        // A stale tag is refused whichever instance nginx picks (with other fields: the
        // very same write again would be answered as the retry it is).
        p["price_cents"] = json!(price + 100);
        let stale = send(
            c.put(lb.url("/products/2"))
                .header("If-Match", r.etag())
                .json(&p),
        )
        .await;
        assert_eq!(stale.status, 412);
        assert_eq!(stale.etag(), w.etag());
        etags.push(w.etag());
        // Each write reaches the stream as it happens, not when a buffer fills.
        let e = next().await;
        assert_eq!(e.event, "updated");
        let change: ChangeEvent = serde_json::from_str(&e.data).expect("a change event");
        assert_eq!((change.version, change.etag), (1 + price, w.etag()));
    }
    for s in [&a, &b] {
        assert!(
            s.log()
                .iter()
                .any(|l| l.contains("PUT") && l.contains("/products/2")),
            "no sticky sessions: both instances took writes"
        );
    }
}
