//! The few HTTP requests `catalog export` and `catalog import` make: one page of the list,
//! one product, one write with its If-Match and Idempotency-Key. Connections are pooled and
//! kept alive, because an import sends thousands of requests from several tasks at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use catalog_shared::USER_HEADER;
use catalog_shared::problem::Problem;
use catalog_shared::product::Product;
use reqwest::Method;
use serde::Deserialize;

/// What a 401 means for the person who ran the command.
const UNAUTHORIZED: &str = "the server requires a token (401): run the command again with \
    --token <your token> (or CATALOG_TOKEN); ask whoever runs the server for one \
    (catalog-server user add NAME)";

/// The server, and who speaks to it (`--server`, `--user`, `--token`).
#[derive(Clone)]
pub struct Connection {
    http: reqwest::Client,
    base: String,
    user: String,
    token: Option<Arc<str>>,
}

/// One page of `GET /products`.
#[derive(Deserialize)]
pub(crate) struct Page {
    pub items: Vec<Product>,
    pub next: Option<String>,
}

/// An answer read whole.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Idempotent-Replayed: true`: the server answered with the outcome of an earlier
    /// request with the same Idempotency-Key (an earlier run of the same file).
    pub replayed: bool,
    /// `Retry-After`, in seconds (a key still in flight, a full write queue).
    pub retry_after: Option<Duration>,
}

impl Answer {
    pub fn problem(&self) -> Option<Problem> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn product(&self) -> Result<Product, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("the server's answer is not a product ({e})"))
    }

    /// The problem's detail, or a plain description of the status.
    pub fn explain(&self) -> String {
        if self.status == 401 {
            return UNAUTHORIZED.to_string();
        }
        match self.problem() {
            Some(p) if !p.detail.is_empty() => format!("{} ({})", p.detail, self.status),
            _ => format!("the server answered {}", self.status),
        }
    }
}

/// A request that got no answer.
pub(crate) struct NoAnswer(pub String);

impl Connection {
    pub fn new(server: &str, user: &str, token: Option<&str>) -> anyhow::Result<Connection> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Connection {
            http,
            base: server.trim_end_matches('/').to_string(),
            user: user.to_string(),
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
        })
    }

    /// The server's base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(USER_HEADER, &self.user);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends a request and reads its whole answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        idempotency_key: Option<&str>,
        json: Option<Vec<u8>>,
    ) -> Result<Answer, NoAnswer> {
        let mut req = self.request(method, path);
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        if let Some(key) = idempotency_key {
            // An RFC 8941 sf-string: the key in quotes.
            req = req.header("Idempotency-Key", format!("\"{key}\""));
        }
        if let Some(body) = json {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let response = req
            .send()
            .await
            .map_err(|e| NoAnswer(self.unreachable(&e)))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .map(str::to_string)
        };
        let replayed = header("idempotent-replayed").is_some_and(|v| v == "true" || v == "?1");
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| {
            NoAnswer(format!(
                "the connection broke while reading the answer from {} ({e})",
                self.base
            ))
        })?;
        Ok(Answer {
            status,
            body: body.to_vec(),
            replayed,
            retry_after,
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("the server at {} did not answer in time", self.base)
        } else if e.is_connect() {
            format!("cannot reach the server at {} (is it running?)", self.base)
        } else {
            format!("the request to {} failed ({e})", self.base)
        }
    }

    /// One page of the product list (`path` is the first page's or the previous page's
    /// `next`).
    pub(crate) async fn page(&self, path: &str) -> anyhow::Result<Page> {
        let answer = self
            .send(Method::GET, path, None, None, None)
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        if answer.status != 200 {
            bail!("GET {path}: {}", answer.explain());
        }
        serde_json::from_slice(&answer.body)
            .with_context(|| format!("the server's answer to GET {path} is not a product list"))
    }
}
