//! `client`: the terminal client's catalog screen, 120x40. Drawing a frame and applying a
//! live event with 100 and with 100,000 products (only visible rows are drawn, so the
//! ratios should stay near 1).

use std::time::{Duration, Instant, SystemTime};

use catalog_client::action::{Action, Reply};
use catalog_client::state::{State, update};
use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::product::{Product, Status};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::Bench;
use crate::report::Row;

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
    // A list is applied only as the answer to the latest load requested.
    let load = s.model.load_requested;
    update(
        &mut s,
        Action::Net(Reply::Loaded {
            load,
            etag: None,
            list: (1..=n).map(|id| product(id, 1)).collect(),
        }),
    );
    assert_eq!(s.model.products.len(), n as usize, "the list was applied");
    s
}

/// Mean time per frame of the catalog screen.
fn frame_time(s: &mut State, frames: u32) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("a test terminal");
    let start = Instant::now();
    for _ in 0..frames {
        terminal
            .draw(|f| catalog_client::view::draw(f, s))
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
            Action::Net(Reply::Event(Box::new(ChangeEvent::from_product(
                1000 + i,
                Op::Updated,
                p,
            )))),
        );
        if i % 100 == 99 {
            terminal
                .draw(|f| catalog_client::view::draw(f, s))
                .expect("draw");
        }
    }
    start.elapsed() / events as u32
}

pub fn run(bench: &mut Bench) {
    let started = Instant::now();
    let mut small = catalog(100);
    let load_small = started.elapsed();
    let started = Instant::now();
    let mut large = catalog(100_000);
    let load_large = started.elapsed();
    let (fs, fl) = (frame_time(&mut small, 300), frame_time(&mut large, 300));
    let mut small = catalog(100);
    let mut large = catalog(100_000);
    let (bs, bl) = (
        burst_time(&mut small, 100, 5_000),
        burst_time(&mut large, 100_000, 5_000),
    );
    let table = &mut bench.table;
    let us = |d: Duration| format!("{:.1} us", d.as_secs_f64() * 1e6);
    table.push(Row::new(
        "client",
        "load list, 100 products",
        us(load_small),
    ));
    table.push(Row::new(
        "client",
        "load list, 100,000 products (once, on arrival)",
        us(load_large),
    ));
    table.push(Row::new("client", "frame, 100 products", us(fs)));
    table.push(
        Row::new("client", "frame, 100,000 products", us(fl))
            .limit("100 products", Some(fl.as_secs_f64() / fs.as_secs_f64())),
    );
    table.push(Row::new("client", "live event, 100 products", us(bs)));
    table.push(
        Row::new("client", "live event, 100,000 products", us(bl))
            .limit("100 products", Some(bl.as_secs_f64() / bs.as_secs_f64())),
    );
}
