//! Who may write: named users with bearer tokens (`--users users.toml`, see [`users`]),
//! or, without a users file, the open demo mode where anyone acts as whatever `X-User`
//! says. The users are read at start and again on SIGHUP ([`AuthMode::reload`]); a
//! request is checked against the users of the moment.

mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use catalog_shared::USER_HEADER;
use tokio::sync::watch;

pub use users::{TokenHash, Users, add_user, list_users, remove_user, rotate_user};

use crate::problem::ApiError;

/// The realm named in every `WWW-Authenticate` challenge.
const REALM: &str = "catalog";

/// The acting user of a request, decided once by [`admit`] and read by the
/// handlers: the token's user, or in open mode the `X-User` header (else `anonymous`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The bearer token a request was let in with (its hash): an event stream ends when its
/// token no longer names a user.
#[derive(Debug, Clone, Copy)]
pub struct Credential(pub TokenHash);

/// How the server decides who is acting.
pub enum AuthMode {
    /// Demo mode: anyone, as whatever `X-User` says.
    Open,
    /// Every request but `GET /health` needs a bearer token of one of the users of the
    /// file, as last read.
    Bearer {
        users: watch::Sender<Arc<Users>>,
        file: PathBuf,
    },
}

impl AuthMode {
    /// Bearer tokens of the users in `file`, read now.
    pub fn bearer(file: &Path) -> anyhow::Result<AuthMode> {
        let users = Users::load(file)?;
        Ok(AuthMode::Bearer {
            users: watch::channel(Arc::new(users)).0,
            file: file.to_path_buf(),
        })
    }

    /// What `/health` and the start log call it.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMode::Open => "open",
            AuthMode::Bearer { .. } => "bearer",
        }
    }

    /// How many users may act (0 in open mode, where anyone may).
    pub fn user_count(&self) -> usize {
        match self {
            AuthMode::Open => 0,
            AuthMode::Bearer { users, .. } => users.borrow().len(),
        }
    }

    /// Reads the users file again (on SIGHUP) and says so in the log: from the next
    /// request on, a removed user or a replaced token is refused, and event streams opened
    /// with such a token end. A file that cannot be read or names no users changes
    /// nothing: the users read before stay, and the log says why.
    pub fn reload(&self) {
        let AuthMode::Bearer { users, file } = self else {
            tracing::info!("SIGHUP: no users file to reload (open demo mode, no --users)");
            return;
        };
        match Users::load(file) {
            Ok(fresh) => {
                let before: Vec<String> = users.borrow().names().map(str::to_string).collect();
                let removed: Vec<&str> = before
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !fresh.names().any(|f| f == *n))
                    .collect();
                let added: Vec<&str> = fresh
                    .names()
                    .filter(|n| !before.iter().any(|b| b == n))
                    .collect();
                tracing::info!(
                    "SIGHUP: reloaded the users file {}: {} users (added: {}; removed: {})",
                    file.display(),
                    fresh.len(),
                    list_or_none(&added),
                    list_or_none(&removed),
                );
                users.send_replace(Arc::new(fresh));
            }
            Err(e) => tracing::error!(
                "SIGHUP: kept the {} users loaded before, because the users file could not be used: {e:#}",
                users.borrow().len()
            ),
        }
    }

    /// Resolves once `credential` no longer names a user (removed, or its token
    /// replaced); never in open mode or without a credential.
    pub async fn revoked(&self, credential: Option<Credential>) {
        match (self, credential) {
            (AuthMode::Bearer { users, .. }, Some(Credential(hash))) => {
                let mut users = users.subscribe();
                if users
                    .wait_for(|u| u.user_of(&hash).is_none())
                    .await
                    .is_err()
                {
                    std::future::pending::<()>().await;
                }
            }
            _ => std::future::pending().await,
        }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Said once per process, not once per request.
static X_USER_IGNORED_LOGGED: AtomicBool = AtomicBool::new(false);

/// The [`Actor`] of a request, put into its extensions (with the [`Credential`] it came
/// with) for the handlers, or its refusal with 401, which `app` answers before any handler
/// runs (and before any body is read, so `Expect: 100-continue` gets the 401 and never a
/// 100).
pub fn admit(auth: &AuthMode, req: &mut Request) -> Result<Actor, ApiError> {
    let actor = match auth {
        AuthMode::Open => open_actor(req.headers())?,
        AuthMode::Bearer { users, .. } => {
            // Public: whether the server is up, and the API's description.
            if matches!(req.uri().path(), "/health" | "/openapi.json")
                && matches!(*req.method(), Method::GET | Method::HEAD)
            {
                Actor("anonymous".into())
            } else {
                let (actor, credential) = bearer_actor(&users.borrow(), req.headers())?;
                req.extensions_mut().insert(credential);
                actor
            }
        }
    };
    req.extensions_mut().insert(actor.clone());
    Ok(actor)
}

fn open_actor(headers: &HeaderMap) -> Result<Actor, ApiError> {
    let Some(v) = headers.get(USER_HEADER) else {
        return Ok(Actor("anonymous".into()));
    };
    let bad = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-user",
            "Bad X-User",
            format!("X-User must be a name of 1 to 64 printable characters in UTF-8 ({why})."),
        )
    };
    // Header values are bytes; names from any language arrive as UTF-8.
    let s = std::str::from_utf8(v.as_bytes())
        .map_err(|_| bad("it is not UTF-8"))?
        .trim();
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if s.chars().count() > 64 {
        return Err(bad("it is longer"));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("it has control characters"));
    }
    Ok(Actor(s.to_string()))
}

fn bearer_actor(users: &Users, headers: &HeaderMap) -> Result<(Actor, Credential), ApiError> {
    if headers.contains_key(USER_HEADER) && !X_USER_IGNORED_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            "a request sent X-User; with --users it is ignored: the acting user is the token's"
        );
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim_start())
        });
    let Some(token) = token else {
        return Err(unauthorized(
            None,
            "This server needs a token: send Authorization: Bearer <token>. An administrator creates one with catalog-server user add NAME --users FILE; the catalog client takes it as --token or CATALOG_TOKEN.",
        ));
    };
    let hash = users::hash_token(token);
    match users.user_of(&hash) {
        Some(name) => Ok((Actor(name.to_string()), Credential(hash))),
        None => Err(unauthorized(
            Some("invalid_token"),
            "The bearer token is not one this server knows (mistyped, or its user was removed). Ask an administrator for a token and send it as Authorization: Bearer <token>.",
        )),
    }
}

fn unauthorized(error: Option<&str>, detail: &str) -> ApiError {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"{REALM}\", error=\"{e}\""),
        None => format!("Bearer realm=\"{REALM}\""),
    };
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
    .with_header(header::WWW_AUTHENTICATE, &challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_user_takes_any_language() {
        let mut h = HeaderMap::new();
        h.insert(
            USER_HEADER,
            axum::http::HeaderValue::from_bytes("Zoë 山田".as_bytes()).unwrap(),
        );
        assert_eq!(open_actor(&h).unwrap(), Actor("Zoë 山田".into()));
        h.insert(
            USER_HEADER,
            axum::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert!(open_actor(&h).is_err());
    }
}
