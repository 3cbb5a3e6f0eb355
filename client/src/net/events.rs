//! The live feed: follows `GET /events` for as long as the client runs, reconnects with
//! backoff, resumes with `Last-Event-ID`, and reports events and the connection's state.

use std::time::{Duration, Instant};

use catalog_shared::event::{ChangeEvent, EventId};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;

use super::{Api, Connection, Exchange, Reply};

/// Whether an event stream is alive: any bytes count, keep-alive comments included
/// (which the SSE parser hides), so an idle but healthy stream is never taken for dead.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last: Instant,
    silence: Duration,
}

impl Liveness {
    pub fn new(now: Instant, silence: Duration) -> Liveness {
        Liveness { last: now, silence }
    }

    /// Bytes arrived at `now`.
    pub fn saw_bytes(&mut self, now: Instant) {
        self.last = now;
    }

    /// Whether nothing at all arrived for longer than the allowed silence.
    pub fn is_dead(&self, now: Instant) -> bool {
        now.duration_since(self.last) > self.silence
    }
}

impl Api {
    /// Follows `/events` for as long as the client runs: reconnects with backoff and
    /// resumes with `Last-Event-ID`; reports the connection state as it changes.
    pub async fn follow_events(self) {
        let mut last_id: Option<String> = None;
        let mut attempt: u32 = 0;
        let mut down_since = std::time::SystemTime::now();
        loop {
            let started = Instant::now();
            let mut req = self
                .request(reqwest::Method::GET, "/events")
                .header("Accept", "text/event-stream");
            if let Some(id) = &last_id {
                req = req.header("Last-Event-ID", id);
            }
            let reason = match req.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    self.send(Reply::Exchange(Exchange {
                        method: "GET".into(),
                        path: match &last_id {
                            Some(id) => format!("/events (Last-Event-ID: {id})"),
                            None => "/events".into(),
                        },
                        if_match: None,
                        status: Some(200),
                        etag: None,
                        millis: started.elapsed().as_millis() as u64,
                        note: None,
                    }));
                    self.send(Reply::Connection(Connection::Live));
                    attempt = 0;
                    // Keep-alives arrive every 15 s as SSE comments, which the parser
                    // hides: any bytes at all count as a sign of life.
                    let liveness = std::sync::Arc::new(std::sync::Mutex::new(Liveness::new(
                        Instant::now(),
                        Duration::from_secs(45),
                    )));
                    let seen = liveness.clone();
                    let bytes = response.bytes_stream().inspect(move |_| {
                        if let Ok(mut l) = seen.lock() {
                            l.saw_bytes(Instant::now());
                        }
                    });
                    let mut stream = bytes.eventsource();
                    loop {
                        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                            Err(_) => {
                                let dead = liveness
                                    .lock()
                                    .map(|l| l.is_dead(Instant::now()))
                                    .unwrap_or(true);
                                if dead {
                                    break "nothing from the server for 45 s, not even a keep-alive"
                                        .to_string();
                                }
                            }
                            Ok(None) => break "the server closed the event stream".to_string(),
                            Ok(Some(Err(e))) => break format!("the event stream broke ({e})"),
                            Ok(Some(Ok(event))) => {
                                if !event.id.is_empty() {
                                    last_id = Some(event.id.clone());
                                }
                                match event.event.as_str() {
                                    "created" | "updated" | "deleted" => {
                                        match serde_json::from_str::<ChangeEvent>(&event.data) {
                                            Ok(e) => self.send(Reply::Event(Box::new(e))),
                                            Err(_) => self.send(Reply::Reset),
                                        }
                                    }
                                    // The stream is established: (re)load the list now, so
                                    // no change can fall between the list and the stream.
                                    catalog_shared::presence::PRESENCE => {
                                        if let Ok(p) = serde_json::from_str(&event.data) {
                                            self.send(Reply::Presence(p));
                                        }
                                    }
                                    "ready" | "reset" => {
                                        if let Some(seq) = seq_of(&event.id) {
                                            self.send(Reply::Seq(seq));
                                        }
                                        self.send(Reply::Reset);
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    super::UNAUTHORIZED.to_string()
                }
                Ok(response) => format!("the server answered {}", response.status()),
                Err(e) => self.unreachable(&e),
            };
            if attempt == 0 {
                down_since = std::time::SystemTime::now();
            }
            attempt = attempt.saturating_add(1);
            self.send(Reply::Connection(Connection::Reconnecting {
                attempt,
                reason,
                since: down_since,
            }));
            // 0.25 s, 0.5 s, 1 s, then every 2 s, with up to a quarter more as jitter.
            let base = 250u64 << attempt.min(4).saturating_sub(1);
            let jitter = fastrand::u64(0..=base / 4);
            tokio::time::sleep(Duration::from_millis(base + jitter)).await;
        }
    }
}

/// The change number an event id names, for the status bar: `<database>:<seq>` (SQLite) or
/// `<database>:<tx>.<id>` (PostgreSQL, where the change's own number is `id`, the `seq` its
/// event carries). The id itself goes back to the server unchanged.
fn seq_of(id: &str) -> Option<i64> {
    if let Ok(id) = id.parse::<EventId>() {
        return Some(id.seq);
    }
    let (_, position) = id.trim().rsplit_once(':')?;
    let (tx, change) = position.split_once('.')?;
    tx.parse::<u64>().ok()?;
    change.parse::<i64>().ok().filter(|n| *n >= 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_event_ids_give_the_change_number() {
        assert_eq!(super::seq_of("0123abcd:42"), Some(42));
        assert_eq!(super::seq_of("0123abcd:7781.42"), Some(42));
        assert_eq!(super::seq_of("0123abcd:x.42"), None);
        assert_eq!(super::seq_of("garbage"), None);
    }
}
