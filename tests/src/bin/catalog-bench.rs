//! `catalog-bench`: the project's benchmark tool. Prints figures, and ratios measured in one
//! run (shared machines are noisy; a ratio of two things measured side by side is not).
//!
//!   cargo build --release --workspace --bins && target/release/catalog-bench
//!
//! 1. Client: drawing the catalog and applying a burst of live events, with 100 and with
//!    100,000 products (only visible rows are drawn, so the ratio should stay near 1).
//! 2. Server: conditional read-modify-write throughput with `--sync full` against
//!    `--sync normal`, and a full GET against a 304 revalidation, on loopback.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use catalog_client::action::Action;
use catalog_client::state::{State, update};
use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, Status};
use catalog_tests::{Server, client};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn product(id: i64, version: i64) -> Product {
    Product {
        id,
        sku: format!("SKU-{id}"),
        name: format!("Product number {id}"),
        description: String::new(),
        price_cents: 100 + id,
        status: Status::InStock,
        version,
        updated_at: "2026-11-22T12:00:00.000Z".into(),
        updated_by: "seed".into(),
        etag: format!("\"{:016x}\"", id * 1000 + version),
    }
}

fn catalog(n: i64) -> State {
    let mut s = State::new("bench", "http://127.0.0.1:8080", SystemTime::now());
    update(
        &mut s,
        Action::Loaded((1..=n).map(|id| product(id, 1)).collect()),
    );
    s
}

/// Mean time per frame of the catalog screen.
fn frame_time(s: &State, frames: u32) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("a test terminal");
    let start = Instant::now();
    for _ in 0..frames {
        terminal
            .draw(|f| catalog_client::views::draw(f, s))
            .expect("draw");
    }
    start.elapsed() / frames
}

/// Mean time to apply one live update event (plus one frame per 100 events, as a burst).
fn burst_time(s: &mut State, n: i64, events: i64) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("a test terminal");
    let start = Instant::now();
    for i in 0..events {
        let id = 1 + (i * 7919) % n;
        let mut p = product(id, 2 + i);
        p.updated_by = "alice".into();
        update(
            s,
            Action::Event(Box::new(ChangeEvent {
                seq: 1000 + i,
                op: Op::Updated,
                id,
                version: p.version,
                etag: p.etag.clone(),
                updated_by: p.updated_by.clone(),
                updated_at: p.updated_at.clone(),
                product: p,
            })),
        );
        if i % 100 == 99 {
            terminal
                .draw(|f| catalog_client::views::draw(f, s))
                .expect("draw");
        }
    }
    start.elapsed() / events as u32
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn rmw_throughput(server: &Server, writers: usize, per_writer: usize) -> (f64, usize) {
    let c = client();
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = c.clone();
        let url = server.url(&format!("/products/{}", 1 + w % 4));
        let retries = retries.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                for _attempt in 0..100 {
                    let r = c.get(&url).send().await.expect("GET");
                    let etag = r.headers()["etag"].to_str().expect("etag").to_string();
                    let mut p: serde_json::Value = r.json().await.expect("json");
                    p["price_cents"] =
                        serde_json::json!(p["price_cents"].as_i64().unwrap_or(0) + 1);
                    let w = c
                        .put(&url)
                        .header("If-Match", etag)
                        .json(&p)
                        .send()
                        .await
                        .expect("PUT");
                    if w.status() == 200 {
                        break;
                    }
                    retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = start.elapsed().as_secs_f64();
    (
        (writers * per_writer) as f64 / secs,
        retries.load(std::sync::atomic::Ordering::Relaxed),
    )
}

async fn get_rate(server: &Server, conditional: bool, n: usize) -> f64 {
    let c = client();
    let url = server.url("/products/1");
    let etag = c.get(&url).send().await.expect("GET").headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    let start = Instant::now();
    for _ in 0..n {
        let mut req = c.get(&url);
        if conditional {
            req = req.header("If-None-Match", &etag);
        }
        let r = req.send().await.expect("GET");
        let _ = r.bytes().await;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    println!(
        "catalog-bench ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!();
    println!("1. Client, catalog screen 120x40");
    let started = Instant::now();
    let small = catalog(100);
    let load_small = started.elapsed();
    let started = Instant::now();
    let large = catalog(100_000);
    let load_large = started.elapsed();
    println!("   load list, 100 products:    {:8.1} us", us(load_small));
    println!(
        "   load list, 100,000:         {:8.1} us   (once, when the list arrives)",
        us(load_large)
    );
    let (fs, fl) = (frame_time(&small, 300), frame_time(&large, 300));
    println!("   frame, 100 products:        {:8.1} us", us(fs));
    println!(
        "   frame, 100,000 products:    {:8.1} us   ratio {:.2}",
        us(fl),
        us(fl) / us(fs)
    );
    let mut small = catalog(100);
    let mut large = catalog(100_000);
    let (bs, bl) = (
        burst_time(&mut small, 100, 5_000),
        burst_time(&mut large, 100_000, 5_000),
    );
    println!("   event, 100 products:        {:8.1} us", us(bs));
    println!(
        "   event, 100,000 products:    {:8.1} us   ratio {:.2}",
        us(bl),
        us(bl) / us(bs)
    );

    println!();
    println!("2. Server on loopback, 8 writers doing GET + PUT with If-Match (retry on 412)");
    let full = Server::start_with_args(&["--sync", "full"]);
    let normal = Server::start_with_args(&["--sync", "normal"]);
    let (wf, rf) = rmw_throughput(&full, 8, 100).await;
    let (wn, rn) = rmw_throughput(&normal, 8, 100).await;
    println!("   --sync full:    {wf:8.0} successful writes/s ({rf} retries on 412)");
    println!(
        "   --sync normal:  {wn:8.0} successful writes/s ({rn} retries on 412)   ratio normal/full {:.2}",
        wn / wf
    );
    let g = get_rate(&full, false, 2000).await;
    let g304 = get_rate(&full, true, 2000).await;
    println!("   GET 200:        {g:8.0} requests/s (one client, sequential)");
    println!(
        "   GET 304:        {g304:8.0} requests/s   ratio 304/200 {:.2}",
        g304 / g
    );
}
