//! `catalog bot`: an editor for a person alone. It edits random products through the same
//! HTTP API, always conditionally, and on a 412 retries from the current state the server
//! sent back, so a single person sees live ETags change and meets real conflicts. It gives
//! up, with a message and a failing exit status, when the server stays out of reach.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use catalog_shared::USER_HEADER;
use catalog_shared::problem::Problem;
use catalog_shared::product::{Field, Product, Status, format_price};
use reqwest::StatusCode;

/// What the bot does.
#[derive(Debug, Clone)]
pub struct BotConfig {
    pub server: String,
    pub user: String,
    /// `Authorization: Bearer` for a server started with `--users`.
    pub token: Option<String>,
    pub every: Duration,
    pub fields: Vec<Field>,
    /// Stop after this many successful edits.
    pub count: Option<u64>,
    /// Give up after this many failed attempts in a row.
    pub max_failures: u32,
    /// Give up when attempts have failed for this long without one succeeding.
    pub max_unreachable: Duration,
}

/// Failed attempts in a row, and since when: whether to give up.
#[derive(Debug, Default)]
struct FailureStreak {
    count: u32,
    since: Option<Instant>,
}

impl FailureStreak {
    fn succeeded(&mut self) {
        *self = FailureStreak::default();
    }

    /// Counts a failure at `now`; returns why to give up, if it is time to.
    fn failed(&mut self, now: Instant, cfg: &BotConfig) -> Option<String> {
        self.count += 1;
        let since = *self.since.get_or_insert(now);
        let failing_for = now.duration_since(since);
        if self.count >= cfg.max_failures {
            Some(format!(
                "{} attempts in a row failed (--max-failures)",
                self.count
            ))
        } else if failing_for >= cfg.max_unreachable {
            Some(format!(
                "no attempt succeeded for {} ({} in a row failed; --max-unreachable)",
                humantime::format_duration(Duration::from_secs(failing_for.as_secs())),
                self.count
            ))
        } else {
            None
        }
    }
}

/// Parses `price,status` into fields.
pub fn parse_fields(list: &str) -> anyhow::Result<Vec<Field>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Field::ALL
            .iter()
            .find(|f| f.label() == name || f.json_name() == name)
        {
            Some(f) if *f != Field::Sku => out.push(*f),
            Some(_) => bail!("the bot does not edit skus (they must stay unique)"),
            None => bail!("unknown field {name:?}: use price, status, name or description"),
        }
    }
    if out.is_empty() {
        bail!("name at least one field, e.g. --fields price,status");
    }
    Ok(out)
}

fn change(p: &Product, field: Field) -> Product {
    let mut q = p.clone();
    match field {
        Field::Price => {
            let factor = 0.85 + fastrand::f64() * 0.3;
            let cents = ((p.price_cents as f64 * factor) / 50.0).round() as i64 * 50;
            q.price_cents = if cents == p.price_cents {
                cents + 50
            } else {
                cents.max(100)
            };
        }
        Field::Status => {
            let others: Vec<Status> = Status::ALL.into_iter().filter(|s| *s != p.status).collect();
            q.status = others[fastrand::usize(..others.len())];
        }
        Field::Name => {
            q.name = match p.name.strip_suffix(" (sale)") {
                Some(base) => base.to_string(),
                None if p.name.chars().count() <= 193 => format!("{} (sale)", p.name),
                None => p.name.clone(),
            }
        }
        Field::Description => {
            q.description = match p.description.strip_suffix(" Bestseller.") {
                Some(base) => base.to_string(),
                None if p.description.chars().count() <= 4980 => {
                    format!("{} Bestseller.", p.description)
                }
                None => p.description.clone(),
            }
        }
        Field::Sku => {}
    }
    q
}

fn describe(before: &Product, after: &Product, field: Field) -> String {
    let show = |p: &Product| match field {
        Field::Price => format_price(p.price_cents),
        _ => p.fields().display(field),
    };
    format!("{} {} -> {}", field.label(), show(before), show(after))
}

/// Runs until `count` edits are done, or Ctrl-C; fails when the server stays out of reach
/// (see [`BotConfig::max_failures`] and [`BotConfig::max_unreachable`]).
pub async fn run(cfg: BotConfig) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = cfg.server.trim_end_matches('/').to_string();
    println!(
        "bot {} editing {} every {:?} on {base} (Ctrl-C stops)",
        cfg.user,
        cfg.fields
            .iter()
            .map(|f| f.label())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.every
    );
    let mut done = 0u64;
    let mut failures = FailureStreak::default();
    let work = async {
        loop {
            if cfg.count.is_some_and(|c| done >= c) {
                return Ok::<(), anyhow::Error>(());
            }
            match edit_one(&http, &base, &cfg).await {
                Ok(edited) => {
                    failures.succeeded();
                    if edited {
                        done += 1;
                    }
                }
                Err(e) => {
                    if let Some(why) = failures.failed(Instant::now(), &cfg) {
                        println!("bot {}: {e:#}", cfg.user);
                        bail!(
                            "bot {} gave up after {done} edits: {why}; the last said: {e:#}. Check that the server runs at {base} (catalog --server URL) and start the bot again.",
                            cfg.user
                        );
                    }
                    println!("bot {}: {e:#}; trying again in {:?}", cfg.user, cfg.every);
                }
            }
            tokio::time::sleep(cfg.every).await;
        }
    };
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            println!("bot {} stopped after {done} edits", cfg.user);
            Ok(())
        }
    }
}

/// The request with the bot's token, when it has one.
fn authorized(req: reqwest::RequestBuilder, cfg: &BotConfig) -> reqwest::RequestBuilder {
    match &cfg.token {
        Some(token) => req.bearer_auth(token),
        None => req,
    }
}

/// One conditional edit of a random product, retried on 412 from the state the 412 sent.
async fn edit_one(http: &reqwest::Client, base: &str, cfg: &BotConfig) -> anyhow::Result<bool> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<Product>,
    }
    let page: Page = authorized(http.get(format!("{base}/products?limit=1000")), cfg)
        .header(USER_HEADER, &cfg.user)
        .send()
        .await
        .context("cannot reach the server")?
        .json()
        .await
        .context("reading the product list")?;
    if page.items.is_empty() {
        println!("bot {}: the catalog is empty; nothing to edit", cfg.user);
        return Ok(false);
    }
    let mut current = page.items[fastrand::usize(..page.items.len())].clone();
    let field = cfg.fields[fastrand::usize(..cfg.fields.len())];
    for _attempt in 0..5 {
        let next = change(&current, field);
        // One key per write: a reply lost on the way back is asked for again with the same
        // key, and the server applies the write at most once.
        let key = crate::net::new_key();
        let mut resends = 0;
        let response = loop {
            let sent = authorized(http.put(format!("{base}/products/{}", current.id)), cfg)
                .header(USER_HEADER, &cfg.user)
                .header("If-Match", &current.etag)
                .header(crate::net::IDEMPOTENCY_KEY, format!("\"{key}\""))
                .json(&next.fields())
                .send()
                .await;
            match sent {
                // The key still in flight (409), a gateway that gave up waiting (502, 504),
                // a server error that may follow a commit (500), or this try turned away
                // (503): the same request again with the same key.
                Ok(r)
                    if matches!(r.status().as_u16(), 409 | 500 | 502 | 503 | 504)
                        && resends < crate::net::RESENDS =>
                {
                    resends += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Ok(r) => break r,
                Err(e) if !e.is_connect() && resends < crate::net::RESENDS => {
                    resends += 1;
                    println!(
                        "bot {}: no answer to the save of product {} ({e}); sending it again with the same Idempotency-Key",
                        cfg.user, current.id
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e).context("cannot reach the server"),
            }
        };
        match response.status() {
            StatusCode::OK => {
                let saved: Product = response.json().await.context("reading the saved product")?;
                println!(
                    "bot {}: product {} {}: {} (If-Match {} -> ETag {}, version {})",
                    cfg.user,
                    saved.id,
                    saved.sku,
                    describe(&current, &saved, field),
                    current.etag,
                    saved.etag,
                    saved.version
                );
                return Ok(true);
            }
            StatusCode::PRECONDITION_FAILED => {
                let problem: Problem = response.json().await.context("reading the 412")?;
                let Some(now) = problem.current else {
                    bail!("a 412 without the current state");
                };
                println!(
                    "bot {}: 412 on product {}: If-Match {} is stale, {} saved {} first; retrying from it",
                    cfg.user, current.id, current.etag, now.updated_by, now.etag
                );
                current = now;
            }
            StatusCode::GONE | StatusCode::NOT_FOUND => {
                println!(
                    "bot {}: product {} was deleted meanwhile; skipping",
                    cfg.user, current.id
                );
                return Ok(false);
            }
            other => {
                let detail = response
                    .json::<Problem>()
                    .await
                    .map(|p| p.detail)
                    .unwrap_or_default();
                bail!("the server answered {other}: {detail}");
            }
        }
    }
    println!(
        "bot {}: gave up on product {} after 5 conflicts in a row",
        cfg.user, current.id
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_failures: u32, max_unreachable: Duration) -> BotConfig {
        BotConfig {
            server: String::new(),
            user: "carol".into(),
            token: None,
            every: Duration::from_secs(2),
            fields: vec![Field::Price],
            count: None,
            max_failures,
            max_unreachable,
        }
    }

    #[test]
    fn the_bot_gives_up_after_n_failures_in_a_row_or_a_long_outage() {
        let start = Instant::now();
        let cfg = config(3, Duration::from_secs(30));
        let mut streak = FailureStreak::default();
        assert_eq!(streak.failed(start, &cfg), None);
        assert_eq!(streak.failed(start, &cfg), None);
        // A success in between starts the count again.
        streak.succeeded();
        assert_eq!(streak.failed(start, &cfg), None);
        assert_eq!(streak.failed(start, &cfg), None);
        let why = streak.failed(start, &cfg).expect("the third in a row");
        assert!(why.contains("3 attempts in a row"), "{why}");

        let cfg = config(100, Duration::from_secs(30));
        let mut streak = FailureStreak::default();
        assert_eq!(streak.failed(start, &cfg), None);
        assert_eq!(streak.failed(start + Duration::from_secs(29), &cfg), None);
        let why = streak
            .failed(start + Duration::from_secs(30), &cfg)
            .expect("30 s without success");
        assert!(why.contains("for 30s"), "{why}");
    }
}
