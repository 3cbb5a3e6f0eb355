//! Test support: start the real `catalog-server` binary on a loopback port with its own
//! database, talk to it over HTTP, read its log, restart it, kill it. The database is a
//! SQLite file, or, when `CATALOG_TEST_DB=postgres`, a fresh database on a throwaway
//! PostgreSQL cluster ([`postgres`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

pub mod postgres;
pub mod proxy;
pub mod tmux;

/// The directory the workspace's binaries are built into (`target/debug` for tests,
/// `target/release` for the release benchmark tool).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/debug/deps/<test> -> target/debug; target/release/<bench> -> target/release
    let dir = exe.parent().expect("the executable is in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of one of the workspace's binaries (`catalog-server`, `catalog`), as Cargo
/// gives it, built from the sources as they are now. Cargo hands `CARGO_BIN_EXE_*` only
/// to tests of the package that owns a binary, and these tests drive binaries of two
/// packages; so on first use the harness asks Cargo itself to build both (instant when
/// they are fresh) and takes the paths from its artifact messages. A stale binary left
/// in `target/` can never be the one tested.
pub fn bin(name: &str) -> PathBuf {
    static BINS: std::sync::OnceLock<Result<Vec<(String, PathBuf)>, String>> =
        std::sync::OnceLock::new();
    let bins = BINS.get_or_init(build_binaries);
    match bins {
        Ok(bins) => bins
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("Cargo built no binary named {name}")),
        Err(e) => panic!("{e}"),
    }
}

fn build_binaries() -> Result<Vec<(String, PathBuf)>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the tests crate is inside the workspace")?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "build",
        "--bins",
        "-p",
        "catalog-server",
        "-p",
        "catalog-client",
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    // The same target directory as the test binary, whatever CARGO_TARGET_DIR says.
    if let Some(target) = bin_dir().parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo build for the binaries under test: {e}"))?;
    if !out.status.success() {
        return Err("cargo build of the binaries under test failed (see above)".into());
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) =
                (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            bins.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    Ok(bins)
}

/// Whether this is a CI run (`CI` set, as CI services and `.ci/run` set it): there, a
/// test whose tool is missing fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// A test cannot run because a tool it drives is missing (`why` says which and how to
/// get it). In CI that is a failure, since CI installs every tool; elsewhere the test says
/// SKIPPED on standard output and returns.
pub fn missing_tool(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} cannot run: {why}. CI is set, and a CI run must not skip it.");
    }
    println!("SKIPPED {test}: {why}");
}

/// Whether the black-box tests run their servers on PostgreSQL (`CATALOG_TEST_DB=postgres`)
/// rather than on SQLite files.
pub fn on_postgres() -> bool {
    std::env::var("CATALOG_TEST_DB").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// A running `catalog-server`.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// What `--db` names: a SQLite file, or a PostgreSQL URL. Another server started on it
    /// shares the database.
    pub db: PathBuf,
    args: Vec<String>,
    /// The open-file limit (`ulimit -n`) the server runs under, when a test sets one.
    fd_limit: Option<u64>,
    /// Its `RUST_LOG` (`info` unless a test sets another).
    log_filter: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A seeded server on a fresh database in a temporary directory.
    pub fn start() -> Server {
        Self::start_with_args(&[])
    }

    /// A server on a fresh database, with extra command-line arguments.
    pub fn start_with_args(args: &[&str]) -> Server {
        if on_postgres() {
            let url = postgres::shared()
                .create_database()
                .expect("a fresh PostgreSQL database");
            return Self::start_on(Path::new(&url), args, "127.0.0.1:0")
                .expect("the server starts");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("catalog.db");
        let mut server = Self::start_on(&db, args, "127.0.0.1:0").expect("the server starts");
        server._dir = Some(dir);
        server
    }

    /// A server on the given database file and address.
    pub fn start_on(db: &Path, args: &[&str], addr: &str) -> anyhow::Result<Server> {
        Self::start_limited(db, args, addr, None)
    }

    /// A server on a fresh SQLite database, run under an open-file limit (`ulimit -n`),
    /// as on a machine whose limit is low.
    pub fn start_with_fd_limit(args: &[&str], fd_limit: u64) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("catalog.db");
        let mut server = Self::start_limited(&db, args, "127.0.0.1:0", Some(fd_limit))
            .expect("the server starts");
        server._dir = Some(dir);
        server
    }

    /// A server on a fresh SQLite database whose log is filtered by `filter` (`RUST_LOG`).
    pub fn start_with_log_filter(args: &[&str], filter: &str) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("catalog.db");
        let mut server = Self::start_filtered(&db, args, "127.0.0.1:0", None, filter)
            .expect("the server starts");
        server._dir = Some(dir);
        server
    }

    fn start_limited(
        db: &Path,
        args: &[&str],
        addr: &str,
        fd_limit: Option<u64>,
    ) -> anyhow::Result<Server> {
        Self::start_filtered(db, args, addr, fd_limit, "info")
    }

    fn start_filtered(
        db: &Path,
        args: &[&str],
        addr: &str,
        fd_limit: Option<u64>,
        log_filter: &str,
    ) -> anyhow::Result<Server> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (child, addr) = spawn(db, &args, addr, fd_limit, log_filter, log.clone())?;
        Ok(Server {
            child: Some(child),
            addr,
            db: db.to_path_buf(),
            args,
            fd_limit,
            log_filter: log_filter.to_string(),
            log,
            _dir: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return Ok(line);
            }
            if Instant::now() > deadline {
                bail!("no log line with {needle:?} within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends the server a signal by name (`HUP`, `TERM`, ...), as an operator's `kill`
    /// does.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the server is not running")?;
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{name} {pid} failed");
        }
        Ok(())
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same database and the same address.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        let addr = self.addr.to_string();
        let (child, addr) = spawn(
            &self.db,
            &self.args,
            &addr,
            self.fd_limit,
            &self.log_filter,
            self.log.clone(),
        )?;
        self.child = Some(child);
        self.addr = addr;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(
    db: &Path,
    args: &[String],
    addr: &str,
    fd_limit: Option<u64>,
    log_filter: &str,
    log: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<(Child, SocketAddr)> {
    let mut command = match fd_limit {
        // The shell lowers its limit and becomes the server (exec): the child's pid is
        // the server's.
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(bin("catalog-server"));
            c
        }
        None => Command::new(bin("catalog-server")),
    };
    let mut child = command
        .arg("--db")
        .arg(db)
        .arg("--addr")
        .arg(addr)
        .args(args)
        .env("RUST_LOG", log_filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting catalog-server")?;
    let stderr = child.stderr.take().context("server stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if let Some(rest) = line.split("listening on http://").nth(1)
                && let Some(t) = tx.take()
            {
                let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            if let Ok(mut l) = log.lock() {
                l.push(line);
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            bail!("catalog-server did not report its address within 60 s");
        }
    };
    let addr: SocketAddr = addr.parse().context("parsing the server's address")?;
    wait_healthy(addr)?;
    Ok((child, addr))
}

fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("/health did not answer 200 within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes terminal colour sequences from a log line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTTP client for tests: no proxy, no connection reuse surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn etag(&self) -> String {
        self.header("etag").expect("response has an ETag")
    }

    /// Asserts the body is a problem document with this status, and returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected {status}, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        for member in ["type", "title", "detail"] {
            assert!(p[member].is_string(), "problem has {member}: {p}");
        }
        p
    }
}

/// Sends a request built by `f` and reads the whole reply.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let response = req.send().await.expect("the request reaches the server");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// A valid product body.
pub fn product_json(sku: &str, name: &str, price_cents: i64, status: &str) -> Value {
    serde_json::json!({
        "sku": sku, "name": name, "description": "", "price_cents": price_cents, "status": status
    })
}

/// Raw HTTP/1.1 over TCP, for what an HTTP client library will not send: malformed
/// heads, half-sent requests, `Expect: 100-continue` without a body. Sends `bytes`, then
/// reads until the server closes or `timeout` passes, and returns what came back.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    use std::io::{Read, Write};
    let mut s = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("<connect failed: {e}>"),
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in raw HTTP text (0 if there is none).
pub fn raw_status(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Runs `catalog-server` with these arguments (a `user` command, say) and returns its
/// exit status, standard output and standard error.
pub fn server_command(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(bin("catalog-server"))
        .args(args)
        .env_remove("CATALOG_USERS")
        .output()
        .context("running catalog-server")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Creates a users file holding one user, with `catalog-server user add`, and returns
/// the token it printed.
pub fn add_user(users_file: &Path, name: &str) -> anyhow::Result<String> {
    let out = Command::new(bin("catalog-server"))
        .args(["user", "add", name, "--users"])
        .arg(users_file)
        .output()
        .context("running catalog-server user add")?;
    if !out.status.success() {
        bail!(
            "catalog-server user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    if token.is_empty() {
        bail!("catalog-server user add printed no token");
    }
    Ok(token)
}

/// `GET /health`, parsed.
pub async fn health(s: &Server) -> Value {
    send(client().get(s.url("/health"))).await.json()
}
