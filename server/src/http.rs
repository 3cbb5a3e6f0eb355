//! The HTTP API: routes, thin handlers, and the conditional-request flow of every method
//! (404/410/405/415 first, then the preconditions, then the body, then one compare-and-set).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use catalog_shared::USER_HEADER;
use catalog_shared::etag::EntityTag;
use catalog_shared::precondition::{Decision, MethodKind, Preconditions, Validators};
use catalog_shared::product::{Product, ProductFields, validate_json};
use serde::Deserialize;
use tokio::sync::watch;

use crate::events;
use crate::problem::ApiError;
use crate::storage::{Deletion, Lookup, Storage, StoreError, Stored, Write, mint_etag};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
const MERGE_PATCH: &str = "application/merge-patch+json";
const ITEM_ALLOW: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
const COLLECTION_ALLOW: &str = "GET, HEAD, POST, OPTIONS";
const READ_ALLOW: &str = "GET, HEAD, OPTIONS";

pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub allow_unconditional: bool,
    pub shutdown: watch::Receiver<bool>,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", any(health))
        .route("/products", any(collection))
        .route("/products/{id}", any(item))
        .route("/products/{id}/versions", any(versions))
        .route("/products/{id}/versions/{n}", any(version))
        .route("/events", any(events::events))
        .fallback(unknown_route)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One log line per request: method, path, status, the If-Match sent, the ETag returned,
/// the user, and the time taken.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let header_text = |h: &HeaderMap, name: &str| {
        h.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let if_match = header_text(req.headers(), "if-match");
    let user = header_text(req.headers(), USER_HEADER);
    let response = next.run(req).await;
    let etag = header_text(response.headers(), "etag");
    tracing::info!(
        "{method} {path} {status} if-match={if_match} etag={etag} user={user} {ms:.1}ms",
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
    );
    response
}

async fn health(method: Method) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response()),
        Method::OPTIONS => Ok(options(READ_ALLOW, false)),
        _ => Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(&format!("The resource {}", uri.path()))
}

/// Runs a blocking storage call off the async workers.
pub async fn db<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&dyn Storage) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(StoreError::DuplicateSku { sku, existing_id })) => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "duplicate-sku",
                "Duplicate SKU",
                format!(
                    "Product {existing_id} already has sku {sku}. Choose another sku, or edit product {existing_id}."
                ),
            );
            e.problem.conflicting_id = Some(existing_id);
            Err(e)
        }
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(join) => Err(ApiError::internal(join)),
    }
}

fn user_of(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(v) = headers.get(USER_HEADER) else {
        return Ok("anonymous".into());
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-user",
            "Bad X-User",
            "X-User must be a name of 1 to 64 printable characters.",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// A path segment that is not valid percent-encoded UTF-8 names no product: 404, as a
/// problem like every other error (axum's own rejection would be plain text).
fn path_text<T>(raw: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    raw.map(|Path(t)| t)
        .map_err(|_| ApiError::not_found("The resource at this path"))
}

fn parse_id(raw: &str) -> Option<i64> {
    // Only canonical decimal ids name a product: `/products/01` is not `/products/1`.
    if raw.is_empty() || raw.starts_with('0') || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn preconditions(headers: &HeaderMap) -> Result<Preconditions, ApiError> {
    let lines = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            // A field that is not visible ASCII cannot hold a valid tag list: make it fail
            // to parse rather than vanish.
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .collect()
    };
    Preconditions::from_fields(lines).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-precondition",
            "Malformed Precondition",
            format!(
                "{e}. A precondition that cannot be read is never ignored; send {field}: \"<etag>\" with the ETag from a GET, or *.",
                field = e.field
            ),
        )
    })
}

fn tag_of(etag: &str) -> EntityTag {
    etag.parse()
        .unwrap_or_else(|_| EntityTag::strong("unreadable"))
}

fn validators(stored: &Stored) -> Validators {
    Validators {
        etag: tag_of(&stored.product.etag),
        last_modified: stored.last_modified,
    }
}

fn last_modified_of(product: &Product) -> SystemTime {
    humantime::parse_rfc3339(&product.updated_at).unwrap_or_else(|_| SystemTime::now())
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn validator_headers(headers: &mut HeaderMap, etag: &str, last_modified: SystemTime) {
    set(headers, header::ETAG, etag);
    set(
        headers,
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(last_modified),
    );
    set(headers, header::CACHE_CONTROL, "no-cache");
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn product_response(status: StatusCode, product: &Product) -> Response {
    let mut response = json_response(status, product);
    validator_headers(
        response.headers_mut(),
        &product.etag,
        last_modified_of(product),
    );
    response
}

fn not_modified(etag: &str, last_modified: SystemTime) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    validator_headers(response.headers_mut(), etag, last_modified);
    response
}

fn gone(id: i64, d: &Deletion) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::GONE,
        "deleted",
        "Gone",
        format!(
            "Product {id} was deleted by {} at {}; its sku {} is free again. To bring it back, POST it to /products as a new product.",
            d.by, d.at, d.last.sku
        ),
    );
    e.problem.deleted_by = Some(d.by.clone());
    e.problem.deleted_at = Some(d.at.clone());
    e
}

fn precondition_failed(current: &Stored, field: &str, headers: &HeaderMap) -> ApiError {
    let p = &current.product;
    let sent = headers
        .get(field)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let detail = if field == "If-Match" {
        format!(
            "If-Match {sent} does not match the current ETag {etag}: product {id} was changed by {by} at {at} (now version {v}). The current product is in `current`: merge your change into it and resend with If-Match: {etag}.",
            etag = p.etag,
            id = p.id,
            by = p.updated_by,
            at = p.updated_at,
            v = p.version,
        )
    } else {
        format!(
            "{field} {sent} does not hold for product {id} (ETag {etag}, version {v}, changed by {by} at {at}). The current product is in `current`.",
            etag = p.etag,
            id = p.id,
            by = p.updated_by,
            at = p.updated_at,
            v = p.version,
        )
    };
    let mut e = ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition Failed",
        detail,
    )
    .with_header(header::ETAG, &p.etag)
    .with_header(
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(current.last_modified),
    );
    e.problem.current_etag = Some(p.etag.clone());
    e.problem.current = Some(p.clone());
    e
}

fn precondition_required(method: &Method, id: i64) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_REQUIRED,
        "precondition-required",
        "Precondition Required",
        format!(
            "{method} must be conditional, so that it cannot silently overwrite someone else's change. GET /products/{id}, then resend with the header If-Match: <the ETag you got> (or If-Match: * to act on whatever version is current)."
        ),
    )
}

/// The media type without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
            format!(
                "The body must be application/json (got {}). Send Content-Type: application/json.",
                other.unwrap_or("no Content-Type")
            ),
        )),
    }
}

fn require_merge_patch(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some(MERGE_PATCH) => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-patch-type",
            "Unsupported Media Type",
            format!(
                "PATCH takes a JSON merge patch (RFC 7396) with Content-Type: {MERGE_PATCH} (got {}).",
                other.unwrap_or("no Content-Type")
            ),
        )
        .with_header(header::HeaderName::from_static("accept-patch"), MERGE_PATCH)),
    }
}

/// How much of a refused body is read and thrown away before answering. Closing a
/// connection with unread data makes TCP reset it, and the client could lose our answer.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Reads the body, up to [`MAX_BODY`]; a larger one is drained (within bounds) and refused.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "Unreadable Body",
                format!("The body could not be read: {e}."),
            )
        })?;
        total += chunk.len();
        if total <= MAX_BODY {
            buf.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Content Too Large",
            format!(
                "The body is larger than {} KiB. Nothing was changed.",
                MAX_BODY / 1024
            ),
        ));
    }
    Ok(Bytes::from(buf))
}

/// Reads and drops a body the answer does not need (see [`DRAIN_LIMIT`]).
async fn discard(body: Option<Body>) {
    if let Some(body) = body {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            axum::body::to_bytes(body, DRAIN_LIMIT),
        )
        .await;
    }
}

fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!("The body is not valid JSON: {e}."),
        )
    })
}

fn validated(value: &serde_json::Value) -> Result<ProductFields, ApiError> {
    validate_json(value).map_err(|errors| {
        let summary = errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-product",
            "Invalid Product",
            format!("The product is not valid: {summary}."),
        );
        e.problem.errors = Some(errors);
        e
    })
}

fn options(allow: &str, patch: bool) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set(response.headers_mut(), header::ALLOW, allow);
    if patch {
        set(
            response.headers_mut(),
            header::HeaderName::from_static("accept-patch"),
            MERGE_PATCH,
        );
    }
    response
}

/// The product list's ETag (it changes with every committed change) and validators.
fn list_validators(state: &Shared, seq: i64, changed_at: SystemTime) -> (String, Validators) {
    let etag = mint_etag(state.store.incarnation(), "list", seq, 0);
    let validators = Validators {
        etag: tag_of(&etag),
        last_modified: changed_at,
    };
    (etag, validators)
}

fn list_precondition_failed(field: &str, etag: &str) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition Failed",
        format!("{field} does not hold for the product list (ETag {etag})."),
    )
    .with_header(header::ETAG, etag)
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        "Bad Query",
        detail.to_string(),
    )
}

async fn collection(
    State(state): State<Shared>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body);
    let result = collection_inner(state, method, uri, headers, &mut body).await;
    if result.is_err() {
        discard(body.take()).await;
    }
    result
}

async fn collection_inner(
    state: Shared,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => {
            let q =
                Query::<ListQuery>::try_from_uri(&uri).map_err(|e| bad_query(&format!("{e}")))?;
            let limit = match q.limit.as_deref() {
                None => 100,
                Some(s) => s
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad_query("limit must be a number from 1 to 1000."))?,
            };
            let after = match q.after.as_deref() {
                None => 0,
                Some(s) => s
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad_query("after must be a product id (0 or more)."))?,
            };
            let pre = preconditions(&headers)?;
            let page = db(&state, move |s| s.list(after, limit)).await?;
            let (etag, current) = list_validators(&state, page.seq, page.changed_at);
            match pre.evaluate(MethodKind::GetOrHead, Some(&current)) {
                Decision::Proceed => {}
                Decision::NotModified => return Ok(not_modified(&etag, page.changed_at)),
                Decision::PreconditionFailed(field) => {
                    return Err(list_precondition_failed(field, &etag));
                }
            }
            let next = match page.items.last() {
                Some(last) if page.more => {
                    Some(format!("/products?after={}&limit={limit}", last.id))
                }
                _ => None,
            };
            let mut response = json_response(
                StatusCode::OK,
                &serde_json::json!({ "items": page.items, "next": next }),
            );
            validator_headers(response.headers_mut(), &etag, page.changed_at);
            Ok(response)
        }
        Method::POST => {
            let user = user_of(&headers)?;
            require_json(&headers)?;
            let pre = preconditions(&headers)?;
            if pre != Preconditions::default() {
                let (seq, at) = db(&state, |s| s.latest_change()).await?;
                let (etag, current) = list_validators(&state, seq, at);
                if let Decision::PreconditionFailed(field) =
                    pre.evaluate(MethodKind::Other, Some(&current))
                {
                    return Err(list_precondition_failed(field, &etag));
                }
            }
            let bytes = match body.take() {
                Some(b) => read_body(b).await?,
                None => Bytes::new(),
            };
            let fields = validated(&parse_json(&bytes)?)?;
            let product = db(&state, move |s| s.create(&fields, &user)).await?;
            let mut response = product_response(StatusCode::CREATED, &product);
            set(
                response.headers_mut(),
                header::LOCATION,
                &format!("/products/{}", product.id),
            );
            Ok(response)
        }
        Method::OPTIONS => Ok(options(COLLECTION_ALLOW, false)),
        _ => Err(ApiError::method_not_allowed(COLLECTION_ALLOW)),
    }
}

async fn item(
    State(state): State<Shared>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw_id = path_text(raw_id)?;
    let mut body = Some(body);
    let result = item_inner(state, raw_id, method, headers, &mut body).await;
    if result.is_err() {
        discard(body.take()).await;
    }
    result
}

async fn item_inner(
    state: Shared,
    raw_id: String,
    method: Method,
    headers: HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let Some(id) = parse_id(&raw_id) else {
        return Err(ApiError::not_found(&format!("Product {raw_id}")));
    };
    if !matches!(
        method,
        Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS
    ) {
        return Err(ApiError::method_not_allowed(ITEM_ALLOW));
    }
    let lookup = db(&state, move |s| s.get(id)).await?;
    let current = match lookup {
        Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        Lookup::Deleted(d) if method != Method::OPTIONS => return Err(gone(id, &d)),
        Lookup::Deleted(_) => return Ok(options(ITEM_ALLOW, true)),
        Lookup::Live(s) => s,
    };
    match method {
        Method::GET | Method::HEAD => {
            let pre = preconditions(&headers)?;
            match pre.evaluate(MethodKind::GetOrHead, Some(&validators(&current))) {
                Decision::Proceed => Ok(product_response(StatusCode::OK, &current.product)),
                Decision::NotModified => {
                    Ok(not_modified(&current.product.etag, current.last_modified))
                }
                Decision::PreconditionFailed(field) => {
                    Err(precondition_failed(&current, field, &headers))
                }
            }
        }
        Method::OPTIONS => Ok(options(ITEM_ALLOW, true)),
        _ => write(state, id, method, headers, body, current).await,
    }
}

/// PUT, PATCH and DELETE: preconditions against the current state, then the body, then a
/// compare-and-set at the version the preconditions were checked against. If another
/// write lands in between, the preconditions are checked again against the new state.
async fn write(
    state: Shared,
    id: i64,
    method: Method,
    headers: HeaderMap,
    body: &mut Option<Body>,
    mut current: Stored,
) -> Result<Response, ApiError> {
    let user = user_of(&headers)?;
    match method {
        Method::PUT => require_json(&headers)?,
        Method::PATCH => require_merge_patch(&headers)?,
        _ => {}
    }
    let pre = preconditions(&headers)?;
    if pre.if_match.is_none() && !state.allow_unconditional {
        return Err(precondition_required(&method, id));
    }
    let mut bytes = Bytes::new();
    loop {
        match pre.evaluate(MethodKind::Other, Some(&validators(&current))) {
            Decision::Proceed => {}
            Decision::PreconditionFailed(field) => {
                return Err(precondition_failed(&current, field, &headers));
            }
            // Never for a write (If-None-Match fails with 412 there), but be explicit.
            Decision::NotModified => {
                return Err(precondition_failed(&current, "If-None-Match", &headers));
            }
        }
        let version = current.product.version;
        let user = user.clone();
        let outcome = if method == Method::DELETE {
            match db(&state, move |s| s.delete(id, version, &user)).await? {
                Write::Done(()) => return Ok(StatusCode::NO_CONTENT.into_response()),
                Write::Changed(now) => now,
            }
        } else {
            if let Some(b) = body.take() {
                bytes = read_body(b).await?;
            }
            let value = parse_json(&bytes)?;
            let fields = if method == Method::PATCH {
                let mut doc =
                    serde_json::to_value(current.product.fields()).map_err(ApiError::internal)?;
                json_patch::merge(&mut doc, &value);
                validated(&doc)?
            } else {
                validated(&value)?
            };
            match db(&state, move |s| s.update(id, version, &fields, &user)).await? {
                Write::Done(product) => {
                    let mut response = product_response(StatusCode::OK, &product);
                    set(
                        response.headers_mut(),
                        header::CONTENT_LOCATION,
                        &format!("/products/{id}"),
                    );
                    return Ok(response);
                }
                Write::Changed(now) => now,
            }
        };
        current = match *outcome {
            Lookup::Live(s) => s,
            Lookup::Deleted(d) => return Err(gone(id, &d)),
            Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        };
    }
}

async fn versions(
    State(state): State<Shared>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
) -> Result<Response, ApiError> {
    let raw_id = path_text(raw_id)?;
    let Some(id) = parse_id(&raw_id) else {
        return Err(ApiError::not_found(&format!("Product {raw_id}")));
    };
    match method {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return Ok(options(READ_ALLOW, false)),
        _ => return Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
    match db(&state, move |s| s.versions(id)).await? {
        None => Err(ApiError::not_found(&format!("Product {id}"))),
        Some(list) => {
            let mut response = json_response(StatusCode::OK, &list);
            set(response.headers_mut(), header::CACHE_CONTROL, "no-cache");
            Ok(response)
        }
    }
}

async fn version(
    State(state): State<Shared>,
    raw: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (raw_id, raw_n) = path_text(raw)?;
    let (Some(id), Some(n)) = (parse_id(&raw_id), parse_id(&raw_n)) else {
        return Err(ApiError::not_found(&format!(
            "Version {raw_n} of product {raw_id}"
        )));
    };
    match method {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return Ok(options(READ_ALLOW, false)),
        _ => return Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
    let Some(stored) = db(&state, move |s| s.version(id, n)).await? else {
        return Err(ApiError::not_found(&format!("Version {n} of product {id}")));
    };
    let pre = preconditions(&headers)?;
    match pre.evaluate(MethodKind::GetOrHead, Some(&validators(&stored))) {
        Decision::Proceed => {
            // A past version never changes: it may be cached for good.
            let mut response = product_response(StatusCode::OK, &stored.product);
            set(
                response.headers_mut(),
                header::CACHE_CONTROL,
                "max-age=31536000, immutable",
            );
            Ok(response)
        }
        Decision::NotModified => Ok(not_modified(&stored.product.etag, stored.last_modified)),
        Decision::PreconditionFailed(field) => Err(precondition_failed(&stored, field, &headers)),
    }
}
