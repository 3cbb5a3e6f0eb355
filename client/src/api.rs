//! HTTP and the event stream, nothing else: carries out [`Command`]s on tokio tasks and
//! reports every outcome, and every exchange for the protocol log, back as an [`Action`].

use std::time::{Duration, Instant};

use catalog_shared::USER_HEADER;
use catalog_shared::event::{ChangeEvent, EventId};
use catalog_shared::problem::Problem;
use catalog_shared::product::{Product, ProductFields};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::action::{Action, Connection, Exchange, SavePurpose, WriteOutcome};
use crate::state::Command;

/// One entry of `GET /products/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: i64,
    pub etag: String,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Product>,
    next: Option<String>,
}

/// A request that got no reply.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// Whether the request may have reached the server (so a write may have happened).
    pub maybe_sent: bool,
}

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

/// A reply read whole.
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    fn problem(&self) -> Option<Problem> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem's detail, or a plain description of the status.
    fn explain(&self) -> String {
        match self.problem() {
            Some(p) if !p.detail.is_empty() => format!("{} ({})", p.detail, self.status.as_u16()),
            _ => format!("the server answered {}", self.status),
        }
    }
}

/// The client's connection to one server, as one user.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    tx: UnboundedSender<Action>,
}

impl Api {
    pub fn new(base: &str, user: &str, tx: UnboundedSender<Action>) -> anyhow::Result<Api> {
        // No idle connection pool: requests come at human pace, and a pooled connection to a
        // server that restarted would fail the next save with a confusing error.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            user: user.to_string(),
            tx,
        })
    }

    fn send(&self, action: Action) {
        // The receiver is gone only when the client is quitting.
        let _ = self.tx.send(action);
    }

    /// Runs a command on its own task; its outcome arrives as an action.
    pub fn run(&self, command: Command) {
        let api = self.clone();
        tokio::spawn(async move { api.execute(command).await });
    }

    pub async fn execute(&self, command: Command) {
        match command {
            Command::LoadAll {
                load,
                delay_ms,
                if_none_match,
            } => {
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                match self.load_all(if_none_match.as_deref()).await {
                    Ok(None) => self.send(Action::LoadUnchanged { load }),
                    Ok(Some((list, etag))) => self.send(Action::Loaded { load, list, etag }),
                    Err(message) => self.send(Action::LoadFailed { load, message }),
                }
            }
            Command::Revalidate { id, etag } => {
                match self
                    .get_if_none_match::<Product>(&format!("/products/{id}"), &etag)
                    .await
                {
                    Ok(None) => self.send(Action::Revalidated { id, product: None }),
                    Ok(Some((p, _))) => self.send(Action::Revalidated {
                        id,
                        product: Some(Box::new(p)),
                    }),
                    // A failed re-read changes nothing: the copy stays, the feed goes on.
                    Err(_) => {}
                }
            }
            Command::Save {
                edit,
                purpose,
                id,
                fields,
                if_match,
                base_version,
            } => {
                let outcome = self
                    .save(purpose, id, &fields, if_match.as_deref(), base_version)
                    .await;
                self.send(Action::Saved {
                    edit,
                    purpose,
                    id,
                    sent: Box::new(fields),
                    outcome,
                });
            }
            Command::Delete { id, if_match } => {
                let outcome = match self
                    .exchange(
                        Method::DELETE,
                        &format!("/products/{id}"),
                        Some(&if_match),
                        None,
                    )
                    .await
                {
                    Ok(reply) => write_outcome(&reply),
                    Err(f) if f.maybe_sent => self.resolve_delete(id, &f.message).await,
                    Err(f) => WriteOutcome::Failed(f.message),
                };
                self.send(Action::Deleted { id, outcome });
            }
            Command::FetchVersion { id, version } => {
                let path = format!("/products/{id}/versions/{version}");
                match self.get_json::<Product>(&path).await {
                    Ok(p) => self.send(Action::Version(Box::new(p))),
                    Err(message) => self.send(Action::VersionFailed {
                        id,
                        version,
                        message,
                    }),
                }
            }
            Command::RemoveDraft(path) => {
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    self.send(Action::DraftFailed(format!(
                        "removing {}: {e}",
                        path.display()
                    )));
                }
            }
            Command::FetchVersions { id } => {
                let versions = self
                    .get_json::<Vec<VersionInfo>>(&format!("/products/{id}/versions"))
                    .await;
                self.send(Action::Versions { id, versions });
            }
        }
    }

    /// One HTTP exchange, recorded in the protocol log.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        json: Option<Vec<u8>>,
    ) -> Result<Reply, Failure> {
        let started = Instant::now();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header(USER_HEADER, &self.user)
            .timeout(Duration::from_secs(15));
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        if let Some(body) = json {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let result = req.send().await;
        let mut log = Exchange {
            method: method.to_string(),
            path: path.to_string(),
            if_match: if_match.map(str::to_string),
            status: None,
            etag: None,
            millis: 0,
            note: None,
        };
        let reply = match result {
            Ok(response) => {
                log.status = Some(response.status().as_u16());
                log.etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let status = response.status();
                match response.bytes().await {
                    Ok(b) => Ok(Reply {
                        status,
                        body: b.to_vec(),
                    }),
                    Err(e) => Err(Failure {
                        message: format!("the connection broke while reading the answer ({e})"),
                        maybe_sent: true,
                    }),
                }
            }
            // A request that never connected was never sent; any other failure may have
            // reached the server.
            Err(e) => Err(Failure {
                message: self.unreachable(&e),
                maybe_sent: !e.is_connect(),
            }),
        };
        log.millis = started.elapsed().as_millis() as u64;
        self.send(Action::Exchange(log));
        reply
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("the server at {} did not answer in time", self.base)
        } else {
            format!("cannot reach the server at {} (is it running?)", self.base)
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let reply = self
            .exchange(Method::GET, path, None, None)
            .await
            .map_err(|f| f.message)?;
        if reply.status != StatusCode::OK {
            return Err(reply.explain());
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| format!("the server's answer to GET {path} is unreadable ({e})"))
    }

    /// Every page of the list. With `if_none_match` (the ETag of a one-page list held),
    /// `None` when the server answers 304: the list held is current. The list's ETag is
    /// returned when it came in one page.
    async fn load_all(
        &self,
        if_none_match: Option<&str>,
    ) -> Result<Option<(Vec<Product>, Option<String>)>, String> {
        let first = "/products?limit=1000";
        let (page, etag) = match if_none_match {
            Some(tag) => match self.get_if_none_match::<Page>(first, tag).await? {
                None => return Ok(None),
                Some(page) => page,
            },
            None => (self.get_json::<Page>(first).await?, None),
        };
        let mut all = page.items;
        let Some(mut path) = page.next else {
            return Ok(Some((all, etag)));
        };
        loop {
            let page: Page = self.get_json(&path).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => path = next,
                None => return Ok(Some((all, None))),
            }
        }
    }

    /// GET with If-None-Match: `None` on 304 (the copy held is current, and the protocol
    /// log says it was reused), else the body and its ETag.
    async fn get_if_none_match<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        etag: &str,
    ) -> Result<Option<(T, Option<String>)>, String> {
        let started = Instant::now();
        let result = self
            .http
            .get(format!("{}{path}", self.base))
            .header(USER_HEADER, &self.user)
            .header("If-None-Match", etag)
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        let mut log = Exchange {
            method: "GET".into(),
            path: path.to_string(),
            if_match: None,
            status: None,
            etag: None,
            millis: 0,
            note: Some(format!("If-None-Match: {etag}")),
        };
        let outcome = match result {
            Ok(response) => {
                let status = response.status();
                log.status = Some(status.as_u16());
                let got = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                log.etag = got.clone();
                if status == StatusCode::NOT_MODIFIED {
                    log.note = Some(format!(
                        "If-None-Match: {etag}; 304, the copy held was reused"
                    ));
                    Ok(None)
                } else if status == StatusCode::OK {
                    match response.json::<T>().await {
                        Ok(body) => Ok(Some((body, got))),
                        Err(e) => Err(format!(
                            "the server's answer to GET {path} is unreadable ({e})"
                        )),
                    }
                } else {
                    Err(format!("the server answered {status}"))
                }
            }
            Err(e) => Err(self.unreachable(&e)),
        };
        log.millis = started.elapsed().as_millis() as u64;
        self.send(Action::Exchange(log));
        outcome
    }

    async fn save(
        &self,
        purpose: SavePurpose,
        id: Option<i64>,
        fields: &ProductFields,
        if_match: Option<&str>,
        base_version: Option<i64>,
    ) -> WriteOutcome {
        let body = match serde_json::to_vec(fields) {
            Ok(b) => b,
            Err(e) => return WriteOutcome::Failed(format!("could not encode the product ({e})")),
        };
        let (method, path) = match id {
            Some(id) if purpose != SavePurpose::Recreate => {
                (Method::PUT, format!("/products/{id}"))
            }
            _ => (Method::POST, "/products".to_string()),
        };
        let creating = method == Method::POST;
        match self.exchange(method, &path, if_match, Some(body)).await {
            Ok(reply) => write_outcome(&reply),
            Err(f) if f.maybe_sent => {
                let id = if creating { None } else { id };
                self.resolve_save(id, fields, base_version, &f.message)
                    .await
            }
            Err(f) => WriteOutcome::Failed(f.message),
        }
    }

    /// A save got no reply, but may have reached the server: read the product back
    /// before saying anything. Mine is there when the current version was made by this
    /// user, from the version my If-Match named, with exactly my fields.
    async fn resolve_save(
        &self,
        id: Option<i64>,
        sent: &ProductFields,
        base_version: Option<i64>,
        why: &str,
    ) -> WriteOutcome {
        let mine = |p: &Product| {
            p.updated_by == self.user
                && p.fields() == *sent
                && base_version.is_none_or(|b| p.version == b + 1)
        };
        let current = match id {
            Some(id) => self
                .get_json::<Product>(&format!("/products/{id}"))
                .await
                .map(|p| mine(&p).then_some(p)),
            // A create: look for a product with my sku, made by me, as I sent it.
            None => self.load_all(None).await.map(|all| {
                all.into_iter()
                    .flat_map(|(list, _)| list)
                    .find(|p| p.sku == sent.sku && p.version == 1 && mine(p))
            }),
        };
        match current {
            Ok(Some(p)) => WriteOutcome::Confirmed(Box::new(p)),
            Ok(None) => {
                WriteOutcome::Failed(format!("{why}; the server does not have your change"))
            }
            Err(e) => WriteOutcome::Unknown(format!(
                "{why}, and reading the product back failed too ({e})"
            )),
        }
    }

    /// A delete got no reply: it took effect if the product is now deleted by me.
    async fn resolve_delete(&self, id: i64, why: &str) -> WriteOutcome {
        match self
            .exchange(Method::GET, &format!("/products/{id}"), None, None)
            .await
        {
            Ok(reply) if reply.status == StatusCode::GONE => {
                let p = reply.problem().unwrap_or_default();
                if p.deleted_by.as_deref() == Some(self.user.as_str()) {
                    WriteOutcome::Done(None)
                } else {
                    write_outcome(&reply)
                }
            }
            Ok(reply) if reply.status == StatusCode::OK => {
                WriteOutcome::Failed(format!("{why}; the product is still there"))
            }
            Ok(reply) => WriteOutcome::Unknown(format!("{why}; then {}", reply.explain())),
            Err(f) => WriteOutcome::Unknown(format!(
                "{why}, and reading the product back failed too ({})",
                f.message
            )),
        }
    }

    /// Follows `/events` for as long as the client runs: reconnects with backoff and
    /// resumes with `Last-Event-ID`; reports the connection state as it changes.
    pub async fn follow_events(self) {
        let mut last_id: Option<String> = None;
        let mut attempt: u32 = 0;
        let mut down_since = std::time::SystemTime::now();
        loop {
            let started = Instant::now();
            let mut req = self
                .http
                .get(format!("{}/events", self.base))
                .header(USER_HEADER, &self.user)
                .header("Accept", "text/event-stream");
            if let Some(id) = &last_id {
                req = req.header("Last-Event-ID", id);
            }
            let reason = match req.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    self.send(Action::Exchange(Exchange {
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
                    self.send(Action::Connection(Connection::Live));
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
                                            Ok(e) => self.send(Action::Event(Box::new(e))),
                                            Err(_) => self.send(Action::Reset),
                                        }
                                    }
                                    // The stream is established: (re)load the list now, so
                                    // no change can fall between the list and the stream.
                                    "ready" | "reset" => {
                                        if let Ok(id) = event.id.parse::<EventId>() {
                                            self.send(Action::Seq(id.seq));
                                        }
                                        self.send(Action::Reset);
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                Ok(response) => format!("the server answered {}", response.status()),
                Err(e) => self.unreachable(&e),
            };
            if attempt == 0 {
                down_since = std::time::SystemTime::now();
            }
            attempt = attempt.saturating_add(1);
            self.send(Action::Connection(Connection::Reconnecting {
                attempt,
                reason,
                since: down_since,
            }));
            // 0.25 s, 0.5 s, 1 s, 2 s, then every 4 s, with some jitter.
            let base = 250u64 << attempt.min(4).saturating_sub(1);
            let jitter = fastrand::u64(0..=base / 4);
            tokio::time::sleep(Duration::from_millis(base + jitter)).await;
        }
    }
}

/// What a write's reply means for the person who sent it.
pub fn write_outcome(reply: &Reply) -> WriteOutcome {
    match reply.status.as_u16() {
        200 | 201 => match serde_json::from_slice::<Product>(&reply.body) {
            Ok(p) => WriteOutcome::Done(Some(p)),
            Err(e) => WriteOutcome::Failed(format!("the saved product is unreadable ({e})")),
        },
        204 => WriteOutcome::Done(None),
        412 => match reply.problem().and_then(|p| p.current) {
            Some(current) => WriteOutcome::Conflict(Box::new(current)),
            None => WriteOutcome::Failed(reply.explain()),
        },
        410 => {
            let p = reply.problem().unwrap_or_default();
            WriteOutcome::Gone {
                by: p.deleted_by.unwrap_or_else(|| "someone".into()),
                at: p.deleted_at.unwrap_or_else(|| "an unknown time".into()),
            }
        }
        422 => match reply.problem().and_then(|p| p.errors) {
            Some(errors) => WriteOutcome::Invalid(errors),
            None => WriteOutcome::Failed(reply.explain()),
        },
        // A duplicate sku is a problem with one field: say so on that field.
        409 => match reply.problem().and_then(|p| p.conflicting_id) {
            Some(other) => WriteOutcome::Invalid(vec![catalog_shared::product::FieldError {
                field: "sku".into(),
                message: format!("is already used by product {other}"),
            }]),
            None => WriteOutcome::Failed(reply.explain()),
        },
        428 => WriteOutcome::Failed(
            "the server requires If-Match: this save was refused, nothing changed".into(),
        ),
        _ => WriteOutcome::Failed(reply.explain()),
    }
}
