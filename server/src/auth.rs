//! Who may write: named users with bearer tokens (`--users users.toml`), or, without a
//! users file, the open demo mode where anyone acts as whatever `X-User` says. The file
//! holds only the SHA-256 of each token: tokens are 256 random bits, so a plain hash is
//! as good as a slow one and lets every request be checked in microseconds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use catalog_shared::USER_HEADER;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;

/// The realm named in every `WWW-Authenticate` challenge.
const REALM: &str = "catalog";

/// The acting user of a request, decided once by [`authenticate`] and read by the
/// handlers: the token's user, or in open mode the `X-User` header (else `anonymous`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The users a `--users` file names.
#[derive(Debug)]
pub struct Users {
    /// (name, SHA-256 of the token)
    entries: Vec<(String, [u8; 32])>,
}

impl Users {
    /// Reads a users file. A missing file, a malformed one, or one without users is an
    /// error: starting open by mistake when tokens were meant would be worse than not
    /// starting.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the users file {} (create it with: catalog-server user add NAME --users {})",
                path.display(),
                path.display()
            )
        })?;
        let users = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if users.entries.is_empty() {
            bail!(
                "{} names no users; add one with: catalog-server user add NAME --users {}",
                path.display(),
                path.display()
            );
        }
        warn_if_readable_by_others(path);
        Ok(users)
    }

    fn parse(text: &str) -> anyhow::Result<Users> {
        let doc: toml_edit::DocumentMut = text.parse().context("the file is not valid TOML")?;
        let mut entries = Vec::new();
        let Some(table) = doc.get("users") else {
            return Ok(Users { entries });
        };
        let table = table
            .as_table_like()
            .context("`users` must be a table of [users.NAME] entries")?;
        for (name, user) in table.iter() {
            let hex = user
                .get("token_sha256")
                .and_then(|v| v.as_str())
                .with_context(|| format!("user {name} has no token_sha256 string"))?;
            let hash = parse_hash(hex)
                .with_context(|| format!("user {name}: token_sha256 must be 64 hex digits"))?;
            check_name(name)?;
            entries.push((name.to_string(), hash));
        }
        Ok(Users { entries })
    }

    /// The user whose token this is. Every stored hash is compared, each in constant
    /// time, so the time taken says nothing about which user or how many bytes matched.
    pub fn user_of(&self, token: &str) -> Option<&str> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.entries {
            if constant_time_eq(&presented, hash) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Equal without an early exit: the comparison takes as long whatever the inputs.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the optimiser from turning the fold back into a short-circuit.
    std::hint::black_box(diff) == 0
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// User names are what `updated_by` shows: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`
/// (so the file needs no quoting and a log line no escaping).
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if !ok {
        bail!("user name {name:?} must be 1 to 64 of A-Z a-z 0-9 . _ - @");
    }
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the users file {} can be read by other users of this machine; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// `catalog-server user add NAME --users FILE`: adds a user with a new random token to
/// the file (creating it, readable by its owner only), and returns the token, which is
/// stored nowhere else.
pub fn add_user(path: &Path, name: &str) -> anyhow::Result<String> {
    check_name(name)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if let Some(text) = &existing {
        let users = Users::parse(text).with_context(|| format!("in {}", path.display()))?;
        if users.entries.iter().any(|(n, _)| n == name) {
            bail!(
                "{} already has a user {name}; to give it a new token, delete its [users.{name}] table and run this again",
                path.display()
            );
        }
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("reading random bytes from the system: {e}"))?;
    let token = format!("cat_{}", to_hex(&secret));
    let hash = to_hex(&Sha256::digest(token.as_bytes()));
    let mut text = String::new();
    if existing.is_none() {
        text.push_str(
            "# catalog-server users. Only the SHA-256 of each token is kept here.\n\
             # Add one with: catalog-server user add NAME --users THIS_FILE\n",
        );
    } else if existing.as_deref().is_some_and(|t| !t.ends_with('\n')) {
        text.push('\n');
    }
    text.push_str(&format!("\n[users.{name}]\ntoken_sha256 = \"{hash}\"\n"));
    let mut file = open_for_append(path, existing.is_none())?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

fn open_for_append(path: &Path, create: bool) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    if create {
        options.create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    options
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))
}

/// How the server decides who is acting.
pub enum AuthMode {
    /// Demo mode: anyone, as whatever `X-User` says.
    Open,
    /// Every request but `GET /health` needs a bearer token of one of these users.
    Bearer { users: Users, file: PathBuf },
}

impl AuthMode {
    /// What `/health` and the start log call it.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMode::Open => "open",
            AuthMode::Bearer { .. } => "bearer",
        }
    }
}

/// Said once per process, not once per request.
static X_USER_IGNORED_LOGGED: AtomicBool = AtomicBool::new(false);

/// The middleware that decides the [`Actor`] of every request, or refuses it with 401
/// before any handler (and before any body is read, so `Expect: 100-continue` gets the
/// 401 and never a 100).
pub async fn authenticate(
    State(auth): State<Arc<AuthMode>>,
    mut req: Request,
    next: Next,
) -> Response {
    let actor = match auth.as_ref() {
        AuthMode::Open => match open_actor(req.headers()) {
            Ok(actor) => actor,
            Err(e) => return e.into_response(),
        },
        AuthMode::Bearer { users, .. } => {
            // Public: whether the server is up, and the API's description.
            if matches!(req.uri().path(), "/health" | "/openapi.json")
                && matches!(*req.method(), Method::GET | Method::HEAD)
            {
                Actor("anonymous".into())
            } else {
                match bearer_actor(users, req.headers()) {
                    Ok(actor) => actor,
                    Err(e) => return e.into_response(),
                }
            }
        }
    };
    req.extensions_mut().insert(actor.clone());
    let mut response = next.run(req).await;
    // For the request log, which runs outside this layer.
    response.extensions_mut().insert(actor);
    response
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

fn bearer_actor(users: &Users, headers: &HeaderMap) -> Result<Actor, ApiError> {
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
    match users.user_of(token) {
        Some(name) => Ok(Actor(name.to_string())),
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
    fn an_added_user_is_found_by_its_token_and_only_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let alice = add_user(&path, "alice").unwrap();
        let bob = add_user(&path, "bob").unwrap();
        assert_ne!(alice, bob);
        assert!(alice.len() > 60);
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users.user_of(&alice), Some("alice"));
        assert_eq!(users.user_of(&bob), Some("bob"));
        assert_eq!(users.user_of("cat_guess"), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&alice), "the file holds no token");
        assert!(add_user(&path, "alice").is_err(), "no duplicate names");
        assert!(add_user(&path, "a b").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_broken_users_file_is_an_error_not_open_mode() {
        assert!(Users::parse("[users.a]\ntoken_sha256 = \"xyz\"\n").is_err());
        assert!(Users::parse("not toml [").is_err());
        assert!(Users::parse("").unwrap().entries.is_empty());
    }

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
