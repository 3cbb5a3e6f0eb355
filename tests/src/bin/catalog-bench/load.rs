//! The load generator shared by every request scenario and the bare-axum baseline: N tokio
//! tasks, each with its own HTTP client and so its own keep-alive connection, looping until
//! a deadline. Only operations that complete inside the measured window (after the warm-up)
//! count.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// Warm-up, then the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    measure_from: Instant,
    until: Instant,
}

impl Window {
    pub fn new(warmup: Duration, duration: Duration) -> Window {
        let now = Instant::now();
        Window {
            measure_from: now + warmup,
            until: now + warmup + duration,
        }
    }

    /// Whether a task should start another operation.
    pub fn open(&self) -> bool {
        Instant::now() < self.until
    }

    /// Whether an operation that completed now counts.
    pub fn measuring(&self) -> bool {
        let now = Instant::now();
        now >= self.measure_from && now < self.until
    }

    pub fn secs(&self) -> f64 {
        (self.until - self.measure_from).as_secs_f64()
    }

    pub fn rate(&self, n: u64) -> f64 {
        n as f64 / self.secs()
    }
}

/// An HTTP client that keeps one connection: each load task has its own.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .expect("an HTTP client")
}

/// Response statuses counted inside the measured window.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    statuses: BTreeMap<u16, u64>,
}

impl Tally {
    pub fn count(&mut self, window: &Window, status: u16) {
        if window.measuring() {
            *self.statuses.entry(status).or_default() += 1;
        }
    }

    pub fn merge(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        let mut all = Tally::default();
        for t in tallies {
            for (status, n) in t.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
        }
        all
    }

    pub fn of(&self, matches: impl Fn(u16) -> bool) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| matches(**s))
            .map(|(_, n)| n)
            .sum()
    }

    /// Statuses other than the expected ones, as "500 x3, 409 x1" (empty when none).
    pub fn unexpected(&self, expected: impl Fn(u16) -> bool) -> String {
        self.statuses
            .iter()
            .filter(|(s, _)| !expected(**s))
            .map(|(s, n)| format!("{s} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `connections` tasks; each gets its index, its own client and the window, loops
/// while `window.open()`, and returns its result.
pub async fn run<T, F, Fut>(
    connections: usize,
    warmup: Duration,
    duration: Duration,
    task: F,
) -> (Vec<T>, Window)
where
    F: Fn(usize, reqwest::Client, Window) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let window = Window::new(warmup, duration);
    let handles: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(task(i, http_client(), window)))
        .collect();
    let mut results = Vec::with_capacity(connections);
    for h in handles {
        results.push(h.await.expect("a load task panicked"));
    }
    (results, window)
}
