//! `/products` and `/products/{id}`: the list, creation, and each product's conditional
//! GET, PUT, PATCH and DELETE (404/410/405/415 first, then the preconditions, then the
//! body, then one compare-and-set).

use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog_shared::precondition::{Decision, MethodKind, Preconditions, Validators};
use serde::Deserialize;

use super::keyed::Keyed;
use super::*;
use crate::app::Shared;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::storage::{Lookup, StoreError, Stored, Write, mint_etag};

/// The product list's ETag (it changes with every committed change) and validators.
fn list_validators(state: &Shared, seq: i64, changed_at: SystemTime) -> (String, Validators) {
    let etag = mint_etag(state.store.identity(), "list", seq, 0);
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

pub async fn collection(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body);
    let expect_continue = expects_continue(&headers);
    let result = collection_inner(state, actor, method, uri, headers, &mut body).await;
    if result.is_err() {
        discard(body.take(), expect_continue).await;
    }
    result
}

async fn collection_inner(
    state: Shared,
    actor: Actor,
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
            let page = state.store.list(after, limit).await?;
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
            let user = actor.0;
            require_json(&headers)?;
            let target = target_of(&uri);
            let keyed = Keyed::start(&state, &user, &method, &target, &headers)?;
            let mut bytes = Bytes::new();
            if let Some(k) = &keyed
                && let Some(done) = k.recorded(&state, &headers, body, &mut bytes).await?
            {
                return Ok(done);
            }
            let pre = preconditions(&headers)?;
            if pre != Preconditions::default() {
                let (seq, at) = state.store.latest_change().await?;
                let (etag, current) = list_validators(&state, seq, at);
                if let Decision::PreconditionFailed(field) =
                    pre.evaluate(MethodKind::Other, Some(&current))
                {
                    return Err(list_precondition_failed(field, &etag));
                }
            }
            if let Some(b) = body.take() {
                bytes = read_body(b, state.body_timeout).await?;
            }
            let fields = validated(&parse_json(&bytes)?)?;
            let claim = keyed.as_ref().map(|k| k.claim(&headers, &bytes));
            let product = match state.store.create(fields, user, claim).await {
                Ok(p) => p,
                // A refused keyed create: its key's first request may have committed
                // meanwhile (on another instance, its sku then taken by that very write).
                Err(e @ (StoreError::KeyUsed | StoreError::DuplicateSku { .. })) => {
                    let refusal = e.into();
                    return replay_or(keyed.as_ref(), &state, &headers, body, &mut bytes, refusal)
                        .await;
                }
                Err(e) => return Err(e.into()),
            };
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

pub async fn item(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw_id = path_text(raw_id)?;
    let mut body = Some(body);
    let expect_continue = expects_continue(&headers);
    let target = target_of(&uri);
    let result = item_inner(state, actor, raw_id, method, &target, headers, &mut body).await;
    if result.is_err() {
        discard(body.take(), expect_continue).await;
    }
    result
}

async fn item_inner(
    state: Shared,
    actor: Actor,
    raw_id: String,
    method: Method,
    target: &str,
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
    // A keyed write whose key is recorded is answered as it was the first time, before
    // anything else: a repeated DELETE gets its 204 again, not 410.
    let keyed = Keyed::start(&state, &actor.0, &method, target, &headers)?;
    let mut bytes = Bytes::new();
    if let Some(k) = &keyed
        && let Some(done) = k.recorded(&state, &headers, body, &mut bytes).await?
    {
        return Ok(done);
    }
    let lookup = state.store.get(id).await?;
    let current = match lookup {
        Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        // Gone is gone, for OPTIONS too (its history stays readable under /versions).
        Lookup::Deleted(d) => {
            return replay_or(
                keyed.as_ref(),
                &state,
                &headers,
                body,
                &mut bytes,
                gone(id, &d),
            )
            .await;
        }
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
        _ => {
            let keyed = Refusals {
                keyed: keyed.as_ref(),
                bytes,
            };
            write(state, actor, id, method, headers, body, current, keyed).await
        }
    }
}

/// The request target a key is bound to: path and query as sent.
fn target_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// A keyed write about to be refused: if its key got recorded meanwhile (its own first
/// attempt committed while this one ran), the recorded outcome; else the refusal.
async fn replay_or(
    keyed: Option<&Keyed>,
    state: &Shared,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    bytes: &mut Bytes,
    refusal: ApiError,
) -> Result<Response, ApiError> {
    if let Some(k) = keyed
        && let Some(done) = k.recorded(state, headers, body, bytes).await?
    {
        return Ok(done);
    }
    Err(refusal)
}

/// A write's key (if any) and its body once read.
struct Refusals<'a> {
    keyed: Option<&'a Keyed>,
    bytes: Bytes,
}

/// PUT, PATCH and DELETE: preconditions against the current state, then the body, then a
/// compare-and-set at the version the preconditions were checked against. If another
/// write lands in between, the preconditions are checked again against the new state.
/// A failed If-Match is 412, always: a retry is recognised by its Idempotency-Key, never
/// by its content (HTTP-RULES.md), and a keyed write that was refused looks its key up
/// once more before it answers, in case its own first attempt (on another instance, or
/// still committing when this one began) is what moved the product on.
#[allow(clippy::too_many_arguments)]
async fn write(
    state: Shared,
    actor: Actor,
    id: i64,
    method: Method,
    headers: HeaderMap,
    body: &mut Option<Body>,
    mut current: Stored,
    keyed: Refusals<'_>,
) -> Result<Response, ApiError> {
    let user = actor.0;
    match method {
        Method::PUT => require_json(&headers)?,
        Method::PATCH => require_merge_patch(&headers)?,
        _ => {}
    }
    let pre = preconditions(&headers)?;
    if pre.if_match.is_none() && !state.allow_unconditional {
        return Err(precondition_required(&method, id));
    }
    let Refusals { keyed, mut bytes } = keyed;
    loop {
        let refusal = match pre.evaluate(MethodKind::Other, Some(&validators(&current))) {
            Decision::Proceed => None,
            Decision::PreconditionFailed(field) => {
                Some(precondition_failed(&current, field, &headers))
            }
            // Never for a write (If-None-Match fails with 412 there), but be explicit.
            Decision::NotModified => Some(precondition_failed(&current, "If-None-Match", &headers)),
        };
        if let Some(refusal) = refusal {
            return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
        }
        let version = current.product.version;
        let user = user.clone();
        let written = if method == Method::DELETE {
            let claim = keyed.map(|k| k.claim(&headers, &[]));
            match state.store.delete(id, version, user, claim).await {
                Ok(Write::Done(())) => return Ok(StatusCode::NO_CONTENT.into_response()),
                Ok(Write::Changed(now)) => Ok(now),
                Err(e) => Err(e),
            }
        } else {
            if let Some(b) = body.take() {
                bytes = read_body(b, state.body_timeout).await?;
            }
            let value = parse_json(&bytes)?;
            let fields = if method == Method::PATCH {
                patched(&current.product.fields(), &value)?
            } else {
                validated(&value)?
            };
            let claim = keyed.map(|k| k.claim(&headers, &bytes));
            match state.store.update(id, version, fields, user, claim).await {
                Ok(Write::Done(product)) => {
                    let mut response = product_response(StatusCode::OK, &product);
                    set(
                        response.headers_mut(),
                        header::CONTENT_LOCATION,
                        &format!("/products/{id}"),
                    );
                    return Ok(response);
                }
                Ok(Write::Changed(now)) => Ok(now),
                Err(e) => Err(e),
            }
        };
        let outcome = match written {
            Ok(now) => now,
            Err(e @ (StoreError::KeyUsed | StoreError::DuplicateSku { .. })) => {
                let refusal = e.into();
                return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
            }
            Err(e) => return Err(e.into()),
        };
        current = match *outcome {
            Lookup::Live(s) => s,
            Lookup::Deleted(d) => {
                let refusal = gone(id, &d);
                return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
            }
            Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        };
    }
}

// The OpenAPI operations of `/products` and `/products/{id}` (see `crate::openapi`).

#[utoipa::path(
    method(get, head),
    path = "/products",
    tag = "products",
    operation_id = "listProducts",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Products per page (default 100)."),
        ("after" = Option<i64>, Query, minimum = 0, description = "List the products after this id."),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#, description = "The list's ETag: 304 while nothing changed."),
        ("If-Modified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
    ),
    responses(
        (status = 200, description = "One page of the products, by id.", body = crate::openapi::ProductPage,
            headers(("ETag" = String, description = "Changes with every committed change."), ("Last-Modified" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified.", headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 405, response = crate::openapi::MethodNotAllowed),
        (status = 412, response = crate::openapi::PreconditionFailed),
    )
)]
#[allow(dead_code)]
pub(crate) fn list_products() {}

#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    operation_id = "createProduct",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r#"^[ \t]*("([ !#-\[\]-~]|\\["\\]){1,255}"|[!#-\[\]-~]{1,255})[ \t]*$"#, description = "Names this write: a retry with the same key and the same request gets the first outcome again (same status, representation and ETag, header Idempotent-Replayed: true), with no new version. The same key with another request is 422; while its first request is in flight, 409 with Retry-After. A quoted string (RFC 8941) or a bare key, up to 255 characters. Without a key, a stale If-Match is always 412."),
    ),
    request_body(content = crate::openapi::ProductBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = Product,
            headers(("Location" = String), ("ETag" = String), ("Last-Modified" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 409, response = crate::openapi::ProblemResponse),
        (status = 412, response = crate::openapi::PreconditionFailed),
        (status = 413, response = crate::openapi::ProblemResponse),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn create_product() {}

#[utoipa::path(
    options,
    path = "/products",
    tag = "products",
    operation_id = "optionsProducts",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
#[allow(dead_code)]
pub(crate) fn options_products() {}

#[utoipa::path(
    method(get, head),
    path = "/products/{id}",
    tag = "products",
    operation_id = "getProduct",
    params(
        ("id" = i64, Path, minimum = 1, description = "The product id (canonical decimal: 01 names nothing)."),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Modified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
    ),
    responses(
        (status = 200, description = "The product.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified.", headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 404, response = crate::openapi::ProblemResponse),
        (status = 405, response = crate::openapi::MethodNotAllowed),
        (status = 410, response = crate::openapi::ProblemResponse),
        (status = 412, response = crate::openapi::PreconditionFailed),
    )
)]
#[allow(dead_code)]
pub(crate) fn get_product() {}

#[utoipa::path(
    put,
    path = "/products/{id}",
    tag = "products",
    operation_id = "replaceProduct",
    description = "Replaces the editable fields. If-Match is required (428 without it, unless the server runs with --allow-unconditional); a stale one is 412 with the current product.",
    params(
        ("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, pattern = r#"^[ \t]*("([ !#-\[\]-~]|\\["\\]){1,255}"|[!#-\[\]-~]{1,255})[ \t]*$"#, description = "Names this write: a retry with the same key and the same request gets the first outcome again (same status, representation and ETag, header Idempotent-Replayed: true), with no new version. The same key with another request is 422; while its first request is in flight, 409 with Retry-After. A quoted string (RFC 8941) or a bare key, up to 255 characters. Without a key, a stale If-Match is always 412."),
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#, description = "The ETag the change was made against, or *."),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    request_body(content = crate::openapi::ProductBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 404, response = crate::openapi::ProblemResponse),
        (status = 405, response = crate::openapi::MethodNotAllowed),
        (status = 409, response = crate::openapi::ProblemResponse),
        (status = 410, response = crate::openapi::ProblemResponse),
        (status = 412, response = crate::openapi::PreconditionFailed),
        (status = 413, response = crate::openapi::ProblemResponse),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ProblemResponse),
        (status = 428, response = crate::openapi::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn put_product() {}

#[utoipa::path(
    patch,
    path = "/products/{id}",
    tag = "products",
    operation_id = "patchProduct",
    description = "Applies a JSON merge patch (RFC 7396). If-Match is required as for PUT.",
    params(
        ("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, pattern = r#"^[ \t]*("([ !#-\[\]-~]|\\["\\]){1,255}"|[!#-\[\]-~]{1,255})[ \t]*$"#, description = "Names this write: a retry with the same key and the same request gets the first outcome again (same status, representation and ETag, header Idempotent-Replayed: true), with no new version. The same key with another request is 422; while its first request is in flight, 409 with Retry-After. A quoted string (RFC 8941) or a bare key, up to 255 characters. Without a key, a stale If-Match is always 412."),
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    request_body(content = crate::openapi::ProductPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Patched: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 404, response = crate::openapi::ProblemResponse),
        (status = 405, response = crate::openapi::MethodNotAllowed),
        (status = 409, response = crate::openapi::ProblemResponse),
        (status = 410, response = crate::openapi::ProblemResponse),
        (status = 412, response = crate::openapi::PreconditionFailed),
        (status = 413, response = crate::openapi::ProblemResponse),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ProblemResponse),
        (status = 428, response = crate::openapi::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn patch_product() {}

#[utoipa::path(
    delete,
    path = "/products/{id}",
    tag = "products",
    operation_id = "deleteProduct",
    params(
        ("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, pattern = r#"^[ \t]*("([ !#-\[\]-~]|\\["\\]){1,255}"|[!#-\[\]-~]{1,255})[ \t]*$"#, description = "Names this write: a retry with the same key and the same request gets the first outcome again (same status, representation and ETag, header Idempotent-Replayed: true), with no new version. The same key with another request is 422; while its first request is in flight, 409 with Retry-After. A quoted string (RFC 8941) or a bare key, up to 255 characters. Without a key, a stale If-Match is always 412."),
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    responses(
        (status = 204, description = "Deleted.", headers(("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
        (status = 400, response = crate::openapi::ProblemResponse),
        (status = 404, response = crate::openapi::ProblemResponse),
        (status = 405, response = crate::openapi::MethodNotAllowed),
        (status = 409, response = crate::openapi::ProblemResponse),
        (status = 410, response = crate::openapi::ProblemResponse),
        (status = 412, response = crate::openapi::PreconditionFailed),
        (status = 422, response = crate::openapi::ProblemResponse),
        (status = 428, response = crate::openapi::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn delete_product() {}

#[utoipa::path(
    options,
    path = "/products/{id}",
    tag = "products",
    operation_id = "optionsProduct",
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 204, description = "The methods supported.", headers(("Allow" = String), ("Accept-Patch" = String))),
        (status = 404, response = crate::openapi::ProblemResponse),
        (status = 410, response = crate::openapi::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn options_product() {}
