//! The HTTP surface, one module per resource; here, what they share: reading ids, users,
//! preconditions and bodies, and writing validators, problems and options.

pub mod events;
pub mod health;
mod keyed;
pub mod metrics;
pub mod presence;
pub mod products;
pub mod versions;

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog_shared::etag::EntityTag;
use catalog_shared::precondition::{Preconditions, Validators};
use catalog_shared::product::{FieldError, Product, ProductFields, validate_json};

use crate::problem::ApiError;
use crate::storage::{Deletion, Stored};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const ITEM_ALLOW: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
pub const COLLECTION_ALLOW: &str = "GET, HEAD, POST, OPTIONS";
pub const READ_ALLOW: &str = "GET, HEAD, OPTIONS";

/// A path segment that is not valid percent-encoded UTF-8 names no product: 404, as a
/// problem like every other error (axum's own rejection would be plain text).
pub fn path_text<T>(raw: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    raw.map(|Path(t)| t)
        .map_err(|_| ApiError::not_found("The resource at this path"))
}

pub fn parse_id(raw: &str) -> Option<i64> {
    // Only canonical decimal ids name a product: `/products/01` is not `/products/1`.
    if raw.is_empty() || raw.starts_with('0') || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

pub fn preconditions(headers: &HeaderMap) -> Result<Preconditions, ApiError> {
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

pub fn tag_of(etag: &str) -> EntityTag {
    etag.parse()
        .unwrap_or_else(|_| EntityTag::strong("unreadable"))
}

pub fn validators(stored: &Stored) -> Validators {
    Validators {
        etag: tag_of(&stored.product.etag),
        last_modified: stored.last_modified,
    }
}

pub fn last_modified_of(product: &Product) -> SystemTime {
    humantime::parse_rfc3339(&product.updated_at).unwrap_or_else(|_| SystemTime::now())
}

pub fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

pub fn validator_headers(headers: &mut HeaderMap, etag: &str, last_modified: SystemTime) {
    set(headers, header::ETAG, etag);
    set(
        headers,
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(last_modified),
    );
    set(headers, header::CACHE_CONTROL, "no-cache");
}

pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

pub fn product_response(status: StatusCode, product: &Product) -> Response {
    let mut response = json_response(status, product);
    validator_headers(
        response.headers_mut(),
        &product.etag,
        last_modified_of(product),
    );
    response
}

pub fn not_modified(etag: &str, last_modified: SystemTime) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    validator_headers(response.headers_mut(), etag, last_modified);
    response
}

pub fn gone(id: i64, d: &Deletion) -> ApiError {
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

pub fn precondition_failed(current: &Stored, field: &str, headers: &HeaderMap) -> ApiError {
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

pub fn precondition_required(method: &Method, id: i64) -> ApiError {
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
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next()?.trim().to_ascii_lowercase())
}

pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

pub fn require_merge_patch(headers: &HeaderMap) -> Result<(), ApiError> {
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
pub const DRAIN_LIMIT: usize = 1024 * 1024;

/// Reads the body, up to [`MAX_BODY`], within `timeout` (`--body-timeout`: a client
/// that trickles its body is answered 408 rather than held); a larger body is drained
/// (within bounds) and refused.
pub async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, read_body_whole(body)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request Timeout",
            format!(
                "The request body did not arrive within {timeout:?}. Nothing was changed; send the whole body at once."
            ),
        )
        .with_header(header::CONNECTION, "close")),
    }
}

async fn read_body_whole(body: Body) -> Result<Bytes, ApiError> {
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

/// Whether the client waits for `100 Continue` before sending its body.
pub fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Reads and drops a body the answer does not need (see [`DRAIN_LIMIT`]). Not when the
/// client waits for `100 Continue`: reading would make hyper send the 100 and ask for a
/// body we are about to refuse (RFC 9110 section 10.1.1); the final status goes alone.
pub async fn discard(body: Option<Body>, expect_continue: bool) {
    if expect_continue {
        return;
    }
    if let Some(body) = body {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            axum::body::to_bytes(body, DRAIN_LIMIT),
        )
        .await;
    }
}

pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!("The body is not valid JSON: {e}."),
        )
    })
}

/// Control characters in text fields: none in `sku` and `name`; in `description` only
/// line feeds and tabs (it is multi-line text). A terminal that shows such a product
/// must not be steered by it, and a name is one line.
fn control_character_errors(value: &serde_json::Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, allowed) in [("sku", ""), ("name", ""), ("description", "\n\t")] {
        if let Some(text) = value.get(field).and_then(|v| v.as_str())
            && text.chars().any(|c| c.is_control() && !allowed.contains(c))
        {
            let allowed = if allowed.is_empty() {
                String::new()
            } else {
                " other than line feed and tab".into()
            };
            errors.push(FieldError {
                field: field.into(),
                message: format!("must not contain control characters{allowed}"),
            });
        }
    }
    errors
}

pub fn validated(value: &serde_json::Value) -> Result<ProductFields, ApiError> {
    let control = control_character_errors(value);
    let result = match validate_json(value) {
        Ok(fields) if control.is_empty() => Ok(fields),
        Ok(_) => Err(control),
        Err(mut errors) => {
            for e in control {
                if !errors.iter().any(|x| x.field == e.field) {
                    errors.push(e);
                }
            }
            Err(errors)
        }
    };
    result.map_err(|errors| {
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

/// The product `current` with a JSON merge patch (RFC 7396) applied, validated. A patch
/// may name only a product's members: `{"prise_cents": null}` would otherwise remove a
/// member that is not there and quietly change nothing.
pub fn patched(
    current: &ProductFields,
    patch: &serde_json::Value,
) -> Result<ProductFields, ApiError> {
    if let Some(members) = patch.as_object() {
        let unknown: Vec<FieldError> = members
            .keys()
            .filter(|k| {
                !catalog_shared::product::Field::ALL
                    .iter()
                    .any(|f| f.json_name() == k.as_str())
                    && !catalog_shared::product::SERVER_MANAGED.contains(&k.as_str())
            })
            .map(|k| FieldError {
                field: k.clone(),
                message: "is not a member of a product".into(),
            })
            .collect();
        if !unknown.is_empty() {
            let names = unknown
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-product",
                "Invalid Product",
                format!(
                    "The patch names members a product does not have: {names}. A merge patch names sku, name, description, price_cents or status."
                ),
            );
            e.problem.errors = Some(unknown);
            return Err(e);
        }
    }
    let mut doc = serde_json::to_value(current).map_err(ApiError::internal)?;
    json_patch::merge(&mut doc, patch);
    validated(&doc)
}

/// The fallback of a route for the methods it does not take: 405 with `Allow`, the body
/// read and dropped as for any refusal (see [`discard`]).
pub fn not_allowed(
    allow: &'static str,
) -> impl Fn(HeaderMap, Body) -> std::pin::Pin<Box<dyn std::future::Future<Output = ApiError> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |headers: HeaderMap, body: Body| {
        Box::pin(async move {
            discard(Some(body), expects_continue(&headers)).await;
            ApiError::method_not_allowed(allow)
        })
    }
}

pub fn options(allow: &str, patch: bool) -> Response {
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
