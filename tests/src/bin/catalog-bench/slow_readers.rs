//! `slow-readers`: 200 event streams that resume from an early event id, so each must replay
//! a 10,000-event backlog, and never read. The server's memory growth with them open, and a
//! single writer's latency with them open against without them (measured first).
//!
//! The unread sockets get a small receive buffer before connecting: with Linux's autotuned
//! loopback buffers the kernel would absorb megabytes per stream, and the backlog would wait
//! in kernel memory instead of the server's (that measures less: about half the RSS growth).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::load;
use crate::report::{Row, ms, percentile};
use crate::sse::{SseStream, seq_of};
use crate::target::{self, Product, rss_kib};

const READERS: usize = 200;
const BACKLOG: usize = 10_000;
/// Parallel writers that build the backlog (each on its own product).
const FILLERS: usize = 8;
/// SO_RCVBUF of an unread stream's socket (the kernel doubles it).
const RECEIVE_BUFFER: u32 = 4096;

pub async fn run(bench: &mut Bench) {
    let server = bench.target();
    let client = load::http_client();
    // Every product first: their `created` events must not count in the backlog.
    let writer = server
        .create_product(&client, &bench.sku("slow-writer", 0))
        .await;
    let mut fillers = Vec::new();
    for i in 0..FILLERS {
        fillers.push(server.create_product(&client, &bench.sku("slow", i)).await);
    }
    let early_id = {
        let mut s = SseStream::open(server.addr, None)
            .await
            .unwrap_or_else(|e| panic!("GET /events: {e}"));
        let ready = s
            .next_event()
            .await
            .unwrap_or_else(|e| panic!("reading the ready event: {e}"))
            .expect("the stream stays open");
        assert_eq!(ready.event, "ready", "{ready:?}");
        ready.id
    };
    let early_seq = seq_of(&early_id).unwrap_or_else(|| panic!("an event id: {early_id:?}"));

    // Without slow readers; these writes are the start of the backlog.
    let without = writer_latency(&client, &writer, bench.duration, BACKLOG).await;
    let fill_started = Instant::now();
    fill(&client, &fillers, BACKLOG.saturating_sub(without.len())).await;
    let fill_secs = fill_started.elapsed().as_secs_f64();
    let backlog = BACKLOG.max(without.len());
    let (replay, replay_ok) = check_replay(&server, &early_id, early_seq, backlog).await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.pid();
    let rss_before = rss_kib(pid);
    let mut unread = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        unread.push(
            crate::sse::open_unread(server.addr, &early_id, RECEIVE_BUFFER)
                .await
                .unwrap_or_else(|e| panic!("opening an unread stream: {e}")),
        );
    }
    // With them open: the writer runs at once (the replays start now too), while the
    // server's memory is sampled, until a moment after it stops.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = rss_kib(pid);
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak.max(rss_kib(pid))
        })
    };
    let with = writer_latency(&client, &writer, bench.duration, usize::MAX).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampling.store(false, Ordering::SeqCst);
    let rss_peak = sampler.await.expect("the memory sampler");
    drop(unread);

    let (p99_without, p99_with) = (percentile(&without, 0.99), percentile(&with, 0.99));
    let ratio = p99_with.as_secs_f64() / p99_without.as_secs_f64().max(1e-9);
    let growth = match (rss_before, rss_peak) {
        (Some(before), Some(peak)) => Some(peak.saturating_sub(before) as f64 / 1024.0),
        _ => None,
    };
    let table = &mut bench.table;
    table.push(
        Row::new(
            "slow-readers",
            "backlog built (PUTs after the early event id)",
            format!("{backlog} events"),
        )
        .limit(
            format!("filled in {fill_secs:.1} s by {FILLERS} writers"),
            None,
        ),
    );
    table.push(
        Row::new(
            "slow-readers",
            "replay from the early Last-Event-ID (one reading stream)",
            replay,
        )
        .target("PASS", Some(replay_ok)),
    );
    table.push(
        Row::new(
            "slow-readers",
            format!("server RSS growth, {READERS} unread streams open (peak)"),
            growth.map_or("n/a (needs --spawn)".into(), |g| format!("{g:.1} MiB")),
        )
        .limit(
            rss_before.map_or("-".into(), |b| {
                format!("server RSS before {:.1} MiB", b as f64 / 1024.0)
            }),
            None,
        )
        .target("< 50 MiB", growth.map(|g| g < 50.0)),
    );
    table.push(
        Row::new(
            "slow-readers",
            format!("writer GET+PUT p99, {READERS} unread streams open"),
            ms(p99_with),
        )
        .limit(
            format!(
                "without them {} ({} vs {} cycles)",
                ms(p99_without),
                without.len(),
                with.len()
            ),
            Some(ratio),
        )
        .target("ratio <= 2", Some(ratio <= 2.0)),
    );
}

/// Opens one stream from `early_id` and reads the whole backlog: every event in sequence,
/// no `reset`. Returns what it saw and whether that is right.
async fn check_replay(
    server: &crate::target::Target,
    early_id: &str,
    early_seq: i64,
    backlog: usize,
) -> (String, bool) {
    let last = early_seq + backlog as i64;
    let read = async {
        let mut s = SseStream::open(server.addr, Some(early_id)).await?;
        let mut expected = early_seq + 1;
        while let Some(e) = s.next_event().await? {
            if e.event == "reset" {
                return Ok(format!(
                    "FAIL: reset after {} events: {}",
                    expected - early_seq - 1,
                    e.data
                ));
            }
            match e.seq() {
                Some(seq) if seq == expected => {}
                seq => {
                    return Ok(format!(
                        "FAIL: id {seq:?} where {expected} was due ({:?})",
                        e.id
                    ));
                }
            }
            if expected == last {
                return Ok(format!("PASS: {backlog} events in order"));
            }
            expected += 1;
        }
        Ok::<_, std::io::Error>(format!(
            "FAIL: the stream ended after {} events",
            expected - early_seq - 1
        ))
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(60), read).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => format!("FAIL: {e}"),
        Err(_) => "FAIL: not replayed within 60 s".into(),
    };
    let ok = outcome.starts_with("PASS");
    (outcome, ok)
}

/// A single writer's sequential GET -> PUT (If-Match) cycles for `duration` (at most
/// `max_writes`): the sorted cycle latencies.
async fn writer_latency(
    client: &reqwest::Client,
    product: &Product,
    duration: Duration,
    max_writes: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration && latencies.len() < max_writes {
        let t = Instant::now();
        let (etag, p) = target::get(client, &product.url).await;
        let put = target::put(client, &product.url, &etag, "bench", &target::bumped(&p)).await;
        assert!(
            put.ok(),
            "the writer's PUT answered {}: {}",
            put.status,
            put.body
        );
        latencies.push(t.elapsed());
    }
    latencies.sort();
    latencies
}

/// `writes` PUTs spread over the filler products, each filler chaining its own ETags.
async fn fill(client: &reqwest::Client, fillers: &[Product], writes: usize) {
    let claimed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = fillers
        .iter()
        .cloned()
        .map(|product| {
            let (client, claimed) = (client.clone(), claimed.clone());
            tokio::spawn(async move {
                let (mut etag, mut p) = target::get(&client, &product.url).await;
                while claimed.fetch_add(1, Ordering::SeqCst) < writes {
                    let put =
                        target::put(&client, &product.url, &etag, "bench", &target::bumped(&p))
                            .await;
                    assert!(
                        put.ok(),
                        "a backlog PUT answered {}: {}",
                        put.status,
                        put.body
                    );
                    p = put.json();
                    etag = put.etag.expect("the PUT answers an ETag");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a backlog writer panicked");
    }
}
