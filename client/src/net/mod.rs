//! HTTP and the event stream, nothing else: carries out [`Command`]s on tokio tasks and
//! reports every outcome, every event of the live feed and every exchange for the protocol
//! log as a [`Reply`] to the sink it was given. It knows no UI type: the app loop turns
//! replies into actions.

mod events;
mod writes;

pub use events::Liveness;
use writes::quoted_key;
pub use writes::{IDEMPOTENCY_KEY, RESENDS, new_key, write_outcome};

use std::time::{Duration, Instant};

use catalog_shared::USER_HEADER;
use catalog_shared::presence::{Announce, CLIENT_HEADER, PresenceEvent};
use std::time::SystemTime;

use catalog_shared::event::ChangeEvent;
use catalog_shared::problem::Problem;
use catalog_shared::product::{FieldError, Product, ProductFields};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

pub use catalog_shared::product::VersionInfo;

/// The event stream's state, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    /// Retrying after a failure; `attempt` counts from 1; `since` is when the stream
    /// was lost.
    Reconnecting {
        attempt: u32,
        reason: String,
        since: SystemTime,
    },
}

/// Why a save was sent: the result goes back to the screen that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavePurpose {
    /// Ctrl-S in the editor.
    Edit,
    /// `o` in the conflict panel.
    Overwrite,
    /// `m` in the conflict panel.
    Merge,
    /// Recreate a deleted product from my edit.
    Recreate,
    /// `r` in the history: an old version's fields saved as a new version.
    Restore,
    /// Saved WITHOUT If-Match (F8, or `--no-if-match`): the lost-update demo.
    Unconditional,
}

/// The outcome of a PUT, POST or DELETE, as the client understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 200 or 201 (None for a 204 delete).
    Done(Option<Product>),
    /// The first reply was lost; the same request re-sent with the same Idempotency-Key
    /// was answered 2xx: saved, as this version (the server's answer decides, never a
    /// comparison of content).
    Confirmed(Box<Product>),
    /// No reply, even to the re-sends: it is not known whether the write took effect.
    /// Sending it again with the same key is safe.
    Unknown(String),
    /// 412: someone else changed it; this is the current state.
    Conflict(Box<Product>),
    /// 410: someone deleted it.
    Gone { by: String, at: String },
    /// 422: the server's field errors.
    Invalid(Vec<FieldError>),
    /// Anything else: a message a person understands.
    Failed(String),
}

/// One HTTP exchange, for the protocol log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub if_match: Option<String>,
    /// `None` when the server could not be reached.
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub millis: u64,
    /// What the exchange meant, when the columns do not say it (a 304 that reused a copy).
    pub note: Option<String>,
}

/// A request for the server: the app hands it to [`Api::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// GET every page of /products, after waiting `delay_ms` (a retry's backoff), with
    /// If-None-Match when the list held has an ETag. Loads are numbered: only the answer
    /// to the latest one is applied.
    LoadAll {
        load: u64,
        delay_ms: u64,
        if_none_match: Option<String>,
    },
    /// GET /products/{id} with If-None-Match of the copy held: a 304 keeps the copy.
    Revalidate { id: i64, etag: String },
    /// PUT /products/{id} (or POST /products when `id` is None), with If-Match when given.
    Save {
        /// The edit this save belongs to: its answer goes to that edit or to none.
        edit: u64,
        purpose: SavePurpose,
        id: Option<i64>,
        fields: ProductFields,
        if_match: Option<String>,
        /// The Idempotency-Key of the user action this save carries out: every re-send of
        /// it uses the same key, so the server applies it at most once.
        key: String,
    },
    /// DELETE /products/{id} with If-Match and the action's Idempotency-Key.
    Delete {
        id: i64,
        if_match: String,
        key: String,
    },
    /// GET /products/{id}/versions/{version}.
    FetchVersion { id: i64, version: i64 },
    /// GET /products/{id}/versions.
    FetchVersions { id: i64 },
    /// `PUT /presence`: "I am editing this product (this field)", renewed while it lasts.
    Announce {
        product_id: i64,
        field: Option<String>,
    },
    /// `DELETE /presence`: the editor closed.
    Withdraw,
}

/// What the network reports back to the app: the answer to a [`Command`], an event of
/// the live feed, the feed's connection state, and each exchange for the protocol log.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The whole list, freshly loaded by load number `load`, with its ETag when it came
    /// in one page (so the next load can revalidate it).
    Loaded {
        load: u64,
        list: Vec<Product>,
        etag: Option<String>,
    },
    /// Load number `load` was answered 304: the list held is still current.
    LoadUnchanged {
        load: u64,
    },
    /// Where another client is now (a presence event of the live feed).
    Presence(PresenceEvent),
    /// A product re-read with If-None-Match: `None` when the copy held is still current
    /// (304), else the current product.
    Revalidated {
        id: i64,
        product: Option<Box<Product>>,
    },
    LoadFailed {
        load: u64,
        message: String,
    },
    Event(Box<ChangeEvent>),
    /// The server says we missed changes (or the stream just began): reload the list.
    Reset,
    /// The latest change sequence number, from a `ready` or `reset` event.
    Seq(i64),
    Connection(Connection),
    Saved {
        /// The edit this save belongs to (see `screens::editor::Editor::token`).
        edit: u64,
        purpose: SavePurpose,
        id: Option<i64>,
        sent: Box<ProductFields>,
        outcome: WriteOutcome,
    },
    Deleted {
        id: i64,
        outcome: WriteOutcome,
    },
    /// A past version arrived (the base of a merge, or a history entry).
    Version(Box<Product>),
    VersionFailed {
        id: i64,
        version: i64,
        message: String,
    },
    Versions {
        id: i64,
        versions: Result<Vec<VersionInfo>, String>,
    },
    Exchange(Exchange),
}

/// Where replies go (the app's loop, through its channel).
pub type Sink = std::sync::Arc<dyn Fn(Reply) + Send + Sync>;

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

/// An HTTP answer read whole.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    fn problem(&self) -> Option<Problem> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem's detail, or a plain description of the status.
    fn explain(&self) -> String {
        if self.status == StatusCode::UNAUTHORIZED {
            return UNAUTHORIZED.to_string();
        }
        match self.problem() {
            Some(p) if !p.detail.is_empty() => format!("{} ({})", p.detail, self.status.as_u16()),
            _ => format!("the server answered {}", self.status),
        }
    }
}

/// What a 401 means for the person at the keyboard.
pub const UNAUTHORIZED: &str = "the server requires a token (401): quit and start catalog with --token <your token> (or CATALOG_TOKEN); ask whoever runs the server for one (catalog-server user add NAME)";

/// The client's connection to one server, as one user.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    /// `Authorization: Bearer` for a server started with `--users`.
    token: Option<std::sync::Arc<str>>,
    /// This running client's random id ([`CLIENT_HEADER`]): its presence is its own.
    client_id: std::sync::Arc<str>,
    sink: Sink,
}

impl Api {
    pub fn new(base: &str, user: &str, sink: Sink) -> anyhow::Result<Api> {
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
            token: None,
            client_id: format!("{:016x}", fastrand::u64(..)).into(),
            sink,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request from now on.
    pub fn set_token(&mut self, token: Option<&str>) {
        self.token = token.filter(|t| !t.is_empty()).map(std::sync::Arc::from);
    }

    /// A request to `path` with who we are: `X-User`, and the token when there is one.
    /// This client's id, as its presence events carry it.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(USER_HEADER, &self.user)
            .header(CLIENT_HEADER, &*self.client_id);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    fn send(&self, reply: Reply) {
        (self.sink)(reply);
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
                    Ok(None) => self.send(Reply::LoadUnchanged { load }),
                    Ok(Some((list, etag))) => self.send(Reply::Loaded { load, list, etag }),
                    Err(message) => self.send(Reply::LoadFailed { load, message }),
                }
            }
            Command::Revalidate { id, etag } => {
                match self
                    .get_if_none_match::<Product>(&format!("/products/{id}"), &etag)
                    .await
                {
                    Ok(None) => self.send(Reply::Revalidated { id, product: None }),
                    Ok(Some((p, _))) => self.send(Reply::Revalidated {
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
                key,
            } => {
                let outcome = self
                    .save(purpose, id, &fields, if_match.as_deref(), &key)
                    .await;
                self.send(Reply::Saved {
                    edit,
                    purpose,
                    id,
                    sent: Box::new(fields),
                    outcome,
                });
            }
            Command::Delete { id, if_match, key } => {
                let path = format!("/products/{id}");
                let outcome = match self
                    .keyed_write(Method::DELETE, &path, Some(&if_match), None, &key)
                    .await
                {
                    Ok((reply, _)) => write_outcome(&reply),
                    Err(f) if f.maybe_sent => WriteOutcome::Unknown(f.message),
                    Err(f) => WriteOutcome::Failed(f.message),
                };
                self.send(Reply::Deleted { id, outcome });
            }
            Command::FetchVersion { id, version } => {
                let path = format!("/products/{id}/versions/{version}");
                match self.get_json::<Product>(&path).await {
                    Ok(p) => self.send(Reply::Version(Box::new(p))),
                    Err(message) => self.send(Reply::VersionFailed {
                        id,
                        version,
                        message,
                    }),
                }
            }
            Command::Announce { product_id, field } => {
                // Advisory: a server without presence (404) or a lost request changes
                // nothing, and it stays out of the protocol log, which is for the data.
                let _ = self
                    .request(Method::PUT, "/presence")
                    .json(&Announce { product_id, field })
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
            Command::Withdraw => {
                let _ = self
                    .request(Method::DELETE, "/presence")
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
            Command::FetchVersions { id } => {
                let versions = self
                    .get_json::<Vec<VersionInfo>>(&format!("/products/{id}/versions"))
                    .await;
                self.send(Reply::Versions { id, versions });
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
    ) -> Result<Answer, Failure> {
        self.exchange_keyed(method, path, if_match, json, None)
            .await
    }

    /// One HTTP exchange with an optional Idempotency-Key, recorded in the protocol log.
    async fn exchange_keyed(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        json: Option<Vec<u8>>,
        key: Option<&str>,
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        let mut req = self
            .request(method.clone(), path)
            .timeout(Duration::from_secs(15));
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        if let Some(key) = key {
            req = req.header(IDEMPOTENCY_KEY, quoted_key(key));
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
                if response.headers().contains_key("idempotent-replayed") {
                    log.note = Some(
                        "Idempotent-Replayed: the server repeated its first answer to this key"
                            .into(),
                    );
                }
                let status = response.status();
                match response.bytes().await {
                    Ok(b) => Ok(Answer {
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
        self.send(Reply::Exchange(log));
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
            .request(Method::GET, path)
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
        self.send(Reply::Exchange(log));
        outcome
    }
}
