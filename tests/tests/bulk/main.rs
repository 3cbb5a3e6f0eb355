//! `catalog export` and `catalog import` as a catalog team uses them: export, edit in a
//! spreadsheet, import, while a colleague edits too. The real client binary against the
//! real server on a seeded database; every check is something the person would look at
//! (the summary, the exit status, the products on the server, the conflicts file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use catalog_tests::proxy::{Fault, Proxy};
use catalog_tests::{Server, bin, client, product_json, send};
use serde_json::Value;

/// The seeded catalog's size.
const SEEDED: usize = 25;

/// What a run of `catalog` showed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `catalog --server URL --user USER ARGS...` in `dir` (standard output and error
/// are pipes, not a terminal).
async fn catalog(base_url: &str, user: &str, dir: &Path, args: &[&str]) -> Run {
    catalog_with_token(base_url, user, None, dir, args).await
}

/// [`catalog`] with `CATALOG_TOKEN` set to `token`.
async fn catalog_with_token(
    base_url: &str,
    user: &str,
    token: Option<&str>,
    dir: &Path,
    args: &[&str],
) -> Run {
    let mut command = tokio::process::Command::new(bin("catalog"));
    command
        .args(["--server", base_url, "--user", user])
        .args(args)
        .current_dir(dir)
        .env_remove("CATALOG_TOKEN");
    if let Some(token) = token {
        command.env("CATALOG_TOKEN", token);
    }
    let out: Output = command.output().await.expect("catalog runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every product on the server, by id, read over HTTP (not through the client).
async fn products(s: &Server) -> BTreeMap<i64, Value> {
    let mut all = BTreeMap::new();
    let mut path = "/products?limit=1000".to_string();
    loop {
        let page = send(client().get(s.url(&path))).await.json();
        for p in page["items"].as_array().expect("items") {
            all.insert(p["id"].as_i64().expect("an id"), p.clone());
        }
        match page["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => return all,
        }
    }
}

/// How many of `all` have this sku (a live sku names one product at most).
fn with_sku(all: &BTreeMap<i64, Value>, sku: &str) -> usize {
    all.values().filter(|p| p["sku"] == sku).count()
}

async fn product(s: &Server, id: i64) -> Value {
    let r = send(client().get(s.url(&format!("/products/{id}")))).await;
    assert_eq!(r.status, 200, "GET /products/{id}");
    r.json()
}

/// A colleague's conditional edit of one product, made over HTTP.
async fn colleague_edits(s: &Server, id: i64, edit: impl FnOnce(&mut Value)) -> Value {
    let url = s.url(&format!("/products/{id}"));
    let r = send(client().get(&url)).await;
    let mut p = r.json();
    edit(&mut p);
    let w = send(
        client()
            .put(&url)
            .header("If-Match", r.etag())
            .header("X-User", "bob")
            .json(&p),
    )
    .await;
    assert_eq!(
        w.status,
        200,
        "bob's edit: {}",
        String::from_utf8_lossy(&w.body)
    );
    w.json()
}

/// A CSV file as rows of cells (the header is row 0).
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{} is CSV: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// Writes rows as a spreadsheet saves CSV: every line ends in CRLF.
fn write_csv(path: &Path, rows: &[Vec<String>]) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_path(path)
        .expect("a CSV file");
    for row in rows {
        writer.write_record(row).expect("a CSV record");
    }
    writer.flush().expect("flushed");
}

/// Edits a CSV file as a spreadsheet would: `edit` gets the rows, header first.
fn edit_csv(path: &Path, edit: impl FnOnce(&mut Vec<Vec<String>>)) {
    let mut rows = read_csv(path);
    edit(&mut rows);
    write_csv(path, &rows);
}

/// The row of product `id` (column `id` is the first).
fn row_of(rows: &mut [Vec<String>], id: i64) -> &mut Vec<String> {
    rows.iter_mut()
        .find(|r| r[0] == id.to_string())
        .unwrap_or_else(|| panic!("a row for product {id}"))
}

/// Column indexes of an export.
const ID: usize = 0;
const ETAG: usize = 1;
const SKU: usize = 2;
const NAME: usize = 3;
const PRICE: usize = 4;
const STATUS: usize = 5;
const DESCRIPTION: usize = 6;

/// Exports the catalog to `catalog.csv` in `dir` and returns its path.
async fn export(s: &Server, dir: &Path) -> PathBuf {
    let run = catalog(
        &s.base_url(),
        "alice",
        dir,
        &["export", "--output", "catalog.csv"],
    )
    .await;
    assert!(run.ok(), "export: {run:?}");
    dir.join("catalog.csv")
}

fn new_row(sku: &str, name: &str, price: &str) -> Vec<String> {
    vec![
        String::new(),
        String::new(),
        sku.into(),
        name.into(),
        price.into(),
        "in_stock".into(),
        "Added from the spreadsheet.".into(),
    ]
}

fn summary(applied: u64, created: u64, unchanged: usize, conflicts: u64, failed: u64) -> String {
    format!(
        "applied {applied}, created {created}, unchanged {unchanged}, conflicts {conflicts}, failed {failed}"
    )
}

mod faults;
mod rows;
