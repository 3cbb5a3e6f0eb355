//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory,
//! `pg_ctl` on a free loopback port (as the `postgres` user when the tests run as root,
//! since PostgreSQL refuses to run as root), one fresh database per server under test.
//! Nothing is left behind: a cluster is stopped and removed when dropped, and a watchdog
//! process does the same as soon as the test process is gone, so the cluster shared by
//! a test process (a static, which Rust never drops) and a cluster of a test that
//! panicked or was killed go away too. `cargo test` needs no running service.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};

/// The directory holding `initdb`, `pg_ctl`, `createdb` and `psql`: `CATALOG_PG_BIN` when
/// set, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else the
/// directory of an `initdb` found on `PATH`. `None` when PostgreSQL is not installed.
pub fn bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "createdb", "psql"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    if let Some(dir) = std::env::var_os("CATALOG_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_tools(&dir).then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Some(dir);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| has_tools(d))
}

/// Whether the tests run as root (and so must run the server as `postgres`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// How a throwaway cluster is started. The default is the tests': `fsync` off.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterOptions {
    /// Whether the server flushes its WAL to disk at each commit (`fsync`). Off for tests,
    /// whose data is thrown away; on for a benchmark, whose commits should cost what a
    /// real one does.
    pub fsync: bool,
}

impl ClusterOptions {
    /// A cluster whose commits are durable (`fsync` on), as in production.
    pub fn durable() -> ClusterOptions {
        ClusterOptions { fsync: true }
    }
}

/// A running throwaway cluster.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    as_postgres: bool,
    watchdog: Option<std::process::Child>,
    stopped: bool,
    // Last: removed after the server is stopped.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a new cluster for tests (`fsync` off); `Ok(None)` when PostgreSQL is not
    /// installed.
    pub fn start() -> anyhow::Result<Option<Cluster>> {
        Self::start_with(ClusterOptions::default())
    }

    /// Starts a new cluster with the given options; `Ok(None)` when PostgreSQL is not
    /// installed.
    pub fn start_with(options: ClusterOptions) -> anyhow::Result<Option<Cluster>> {
        let Some(bin) = bin_dir() else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("catalog-pg-")
            .tempdir()
            .context("a temporary directory for the cluster")?;
        let data = dir.path().join("data");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()))
            .context("giving the cluster's directory to the postgres user")?;
        }
        let mut cluster = Cluster {
            bin,
            data,
            port: 0,
            as_postgres,
            watchdog: None,
            stopped: true,
            _dir: dir,
        };
        let data = cluster.data.to_string_lossy().into_owned();
        run(&mut cluster.server_tool(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        ))
        .context("initdb")?;
        // A port may be taken between finding it free and binding it: try a few.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            // fsync off for tests: these clusters hold test data only, and the crashes the
            // tests cause are of catalog-server, never of PostgreSQL.
            let server_options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync={} -c max_connections=400",
                cluster._dir.path().display(),
                if options.fsync { "on" } else { "off" },
            );
            let log = cluster._dir.path().join("postgres.log");
            let started = run(&mut cluster.server_tool(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    &data,
                    "-l",
                    &log.to_string_lossy(),
                    "-o",
                    &server_options,
                ],
            ));
            match started {
                Ok(_) => {
                    cluster.port = port;
                    cluster.stopped = false;
                    cluster.watchdog = Some(cluster.spawn_watchdog()?);
                    return Ok(Some(cluster));
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    last = Some(e.context(log));
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("pg_ctl start failed")))
    }

    /// `postgres://` URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> anyhow::Result<String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "catalog_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name))
        .with_context(|| format!("createdb {name}"))?;
        Ok(self.url(&name))
    }

    /// The process id of the cluster's postmaster (its backends are its children).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// The path of one of this cluster's PostgreSQL programs (`pgbench`, `psql`, ...),
    /// which may not exist: only `initdb`, `pg_ctl`, `createdb` and `psql` are checked.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Runs SQL on a database of this cluster with psql, returning its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        run(Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql]))
        .with_context(|| format!("psql: {sql}"))
    }

    /// A session of its own on a database of this cluster, for a test that holds a
    /// transaction open while servers work (its connection is driven by a task).
    pub async fn connect(&self, database: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {database}"))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A command running a server-side tool, as `postgres` when we are root.
    fn server_tool(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe).args(args);
            c
        } else {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    }

    /// A shell that waits for this test process to end, then stops the cluster at once
    /// and removes its directory.
    fn spawn_watchdog(&self) -> anyhow::Result<std::process::Child> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill -QUIT \"$(head -n 1 '{data}/postmaster.pid' 2>/dev/null)\" 2>/dev/null; \
             sleep 1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data.display(),
            dir = self._dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the cluster's watchdog")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data.to_string_lossy().into_owned();
            let _ =
                run(&mut self
                    .server_tool("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]));
            self.stopped = true;
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// The cluster this test process shares between its servers, started on first use.
/// Panics with the reason when it cannot be had: a test that asked for PostgreSQL must not
/// silently run on something else.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let cluster = SHARED.get_or_init(|| match Cluster::start() {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin, \
             CATALOG_PG_BIN or PATH); install Debian's postgresql package"
                .into(),
        ),
        Err(e) => Err(format!("starting a throwaway PostgreSQL cluster: {e:#}")),
    });
    match cluster {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// The shared cluster for a PostgreSQL-only test, or `None` when PostgreSQL is not
/// installed here (see [`crate::missing_tool`]: a failure in CI, SKIPPED elsewhere).
pub fn shared_or_skip(test: &str) -> Option<&'static Cluster> {
    if bin_dir().is_none() {
        crate::missing_tool(
            test,
            "PostgreSQL is not installed (apt-get install postgresql; .ci/run does)",
        );
        return None;
    }
    Some(shared())
}

/// The database a `postgres://` URL names.
pub fn database_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_string()
}

/// Where a PostgreSQL server's event id (`<database>:<tx>.<id>`) stands in the feed's
/// order: by transaction id, then by change-log row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx: u64,
    pub id: i64,
}

/// The position of an event id of a PostgreSQL server; panics on anything else.
pub fn position(event_id: &str) -> Position {
    let parsed = event_id.rsplit_once(':').and_then(|(_, cursor)| {
        let (tx, id) = cursor.split_once('.')?;
        Some(Position {
            tx: tx.parse().ok()?,
            id: id.parse().ok()?,
        })
    });
    parsed.unwrap_or_else(|| panic!("{event_id:?} is not <database>:<tx>.<id>"))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Runs a command to completion; its output on success, its output in the error otherwise.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
