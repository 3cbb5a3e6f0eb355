//! `import`: `catalog import` (the release client binary, as a person runs it) of 10,000
//! rows into one server: first 10,000 new rows (a POST each), then the export of those
//! products with every price changed (a GET and a conditional PUT each), both with the
//! default `--jobs 8`. Also the client's peak memory for 1,000 and 10,000 new rows: rows
//! are streamed, so the ratio should stay near 1.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Bench;
use crate::report::Row;
use crate::target::{Target, rss_kib};

/// What one run of `catalog import` did.
struct Imported {
    took: Duration,
    summary: String,
    peak_rss_kib: Option<u64>,
}

/// Runs `catalog import FILE` against the target, watching the client's peak memory.
async fn import(server: &Target, file: &Path) -> Imported {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(catalog_tests::bin("catalog"))
        .args(["--server", &server.url(""), "--user", "bench", "import"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("catalog import starts");
    let pid = child.id();
    let mut peak = None;
    let mut stdout = child.stdout.take().expect("piped");
    let read = tokio::spawn(async move {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .map(|_| out)
    });
    let status = loop {
        // VmHWM: the process's peak resident memory so far.
        if let Some(hwm) = peak_rss_kib(pid) {
            peak = Some(hwm);
        }
        match tokio::time::timeout(Duration::from_millis(20), child.wait()).await {
            Ok(status) => break status.expect("catalog import ran"),
            Err(_) => continue,
        }
    };
    let took = started.elapsed();
    let out = read.await.ok().and_then(Result::ok).unwrap_or_default();
    assert!(status.success(), "catalog import {}: {out}", file.display());
    Imported {
        took,
        summary: out.lines().next().unwrap_or("").to_string(),
        peak_rss_kib: peak.or_else(|| rss_kib(pid)),
    }
}

fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A CSV of `n` new products (no id, no etag).
fn new_rows(bench: &Bench, path: &Path, what: &str, n: usize) {
    let mut csv = csv::Writer::from_path(path).expect("a CSV file");
    csv.write_record([
        "id",
        "etag",
        "sku",
        "name",
        "price",
        "status",
        "description",
    ])
    .expect("the header");
    for i in 0..n {
        csv.write_record([
            "",
            "",
            &bench.sku(what, i),
            &format!("Imported product {i}, \"bulk\""),
            &format!("{}.{:02}", 10 + i % 500, i % 100),
            "in_stock",
            "Made by catalog-bench's import scenario.",
        ])
        .expect("a row");
    }
    csv.flush().expect("the file");
}

/// The export's rows for `prefix`'s products, every price one cent higher.
async fn changed_prices(server: &Target, dir: &Path, prefix: &str) -> (std::path::PathBuf, usize) {
    let exported = dir.join("export.csv");
    let out = tokio::process::Command::new(catalog_tests::bin("catalog"))
        .args(["--server", &server.url(""), "export", "--output"])
        .arg(&exported)
        .output()
        .await
        .expect("catalog export runs");
    assert!(out.status.success(), "catalog export: {out:?}");
    let mut reader = csv::Reader::from_path(&exported).expect("the export");
    let path = dir.join("changed.csv");
    let mut csv = csv::Writer::from_path(&path).expect("a CSV file");
    csv.write_record(reader.headers().expect("a header"))
        .expect("the header");
    let mut n = 0;
    for record in reader.records() {
        let mut row: Vec<String> = record.expect("a row").iter().map(str::to_string).collect();
        if !row[2].starts_with(prefix) {
            continue;
        }
        let cents = (row[4].replace('.', "")).parse::<i64>().expect("a price") + 1;
        row[4] = format!("{}.{:02}", cents / 100, cents % 100);
        csv.write_record(&row).expect("a row");
        n += 1;
    }
    csv.flush().expect("the file");
    (path, n)
}

pub async fn run(bench: &mut Bench) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = bench.target();

    let small = dir.path().join("new-1000.csv");
    new_rows(bench, &small, "small-import", 1_000);
    let small = import(&server, &small).await;

    let large = dir.path().join("new-10000.csv");
    new_rows(bench, &large, "import", 10_000);
    let created = import(&server, &large).await;
    let first = bench.sku("import", 0);
    let prefix = first.strip_suffix('0').unwrap_or(&first);
    let (changed, n) = changed_prices(&server, dir.path(), prefix).await;
    assert_eq!(n, 10_000, "the export has the 10,000 imported products");
    let applied = import(&server, &changed).await;

    let secs = |d: Duration| {
        format!(
            "{:.2} s ({:.0} rows/s)",
            d.as_secs_f64(),
            10_000.0 / d.as_secs_f64()
        )
    };
    let under_10 = |d: Duration| Some(d < Duration::from_secs(10));
    bench.table.push(
        Row::new(
            "import",
            format!("10,000 new rows (POST each), --jobs 8: {}", created.summary),
            secs(created.took),
        )
        .target("< 10 s", under_10(created.took)),
    );
    bench.table.push(
        Row::new(
            "import",
            format!(
                "10,000 changed rows (GET + PUT If-Match each), --jobs 8: {}",
                applied.summary
            ),
            secs(applied.took),
        )
        .target("< 10 s", under_10(applied.took)),
    );
    let kib = |k: Option<u64>| {
        k.map_or("n/a".to_string(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    let ratio = match (small.peak_rss_kib, created.peak_rss_kib) {
        (Some(a), Some(b)) if a > 0 => Some(b as f64 / a as f64),
        _ => None,
    };
    bench.table.push(
        Row::new(
            "import",
            "client peak RSS, 10,000 new rows",
            kib(created.peak_rss_kib),
        )
        .limit(format!("1,000 rows {}", kib(small.peak_rss_kib)), ratio)
        .target("ratio < 1.5", ratio.map(|r| r < 1.5)),
    );
}
