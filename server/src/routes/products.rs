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
use catalog_shared::product::validate_json;
use serde::Deserialize;

use super::*;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;
use crate::storage::{Lookup, Stored, Write, mint_etag};

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
            let bytes = match body.take() {
                Some(b) => read_body(b, state.body_timeout).await?,
                None => Bytes::new(),
            };
            let fields = validated(&parse_json(&bytes)?)?;
            let product = state.store.create(fields, user).await?;
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
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw_id = path_text(raw_id)?;
    let mut body = Some(body);
    let expect_continue = expects_continue(&headers);
    let result = item_inner(state, actor, raw_id, method, headers, &mut body).await;
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
    let lookup = state.store.get(id).await?;
    let current = match lookup {
        Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        // Gone is gone, for OPTIONS too (its history stays readable under /versions).
        Lookup::Deleted(d) => return Err(gone(id, &d)),
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
        _ => write(state, actor, id, method, headers, body, current).await,
    }
}

/// PUT, PATCH and DELETE: preconditions against the current state, then the body, then a
/// compare-and-set at the version the preconditions were checked against. If another
/// write lands in between, the preconditions are checked again against the new state.
/// RFC 9110 section 13.1.1: a server may answer a failed precondition with success when
/// the change the request asks for has already been applied, as when a client retries a
/// write whose reply it lost. We do so only when all of this holds: the current version
/// was made directly from the version that If-Match names (one step on), by the same
/// user, and its fields equal what this request would produce from that version. Any
/// other failed If-Match stays 412.
async fn already_applied(
    state: &Shared,
    method: &Method,
    pre: &Preconditions,
    body: &mut Option<Body>,
    bytes: &mut Bytes,
    current: &Stored,
    user: &str,
) -> Result<Option<Response>, ApiError> {
    let p = &current.product;
    let Some(if_match) = &pre.if_match else {
        return Ok(None);
    };
    if p.version < 2 || p.updated_by != user {
        return Ok(None);
    }
    let previous = p.version - 1;
    let previous_tag = tag_of(&mint_etag(
        state.store.identity(),
        "product",
        p.id,
        previous,
    ));
    if !if_match.matches_strong(&previous_tag) {
        return Ok(None);
    }
    // Only now is the body read: a failed precondition answers before the body otherwise.
    // A body that cannot be read or is invalid would not have produced this version.
    if let Some(b) = body.take() {
        match read_body(b, state.body_timeout).await {
            Ok(read) => *bytes = read,
            Err(_) => return Ok(None),
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(None);
    };
    let fields = if *method == Method::PATCH {
        let Some(base) = state.store.version(p.id, previous).await? else {
            return Ok(None);
        };
        match patched(&base.product.fields(), &value) {
            Ok(fields) => Ok(fields),
            Err(_) => return Ok(None),
        }
    } else {
        validate_json(&value).map_err(|_| ())
    };
    if fields.ok().as_ref() != Some(&p.fields()) {
        return Ok(None);
    }
    tracing::info!(
        id = p.id,
        version = p.version,
        "a write already applied was repeated (a retry after a lost reply): answered with the current version"
    );
    let mut response = product_response(StatusCode::OK, p);
    set(
        response.headers_mut(),
        header::CONTENT_LOCATION,
        &format!("/products/{}", p.id),
    );
    Ok(Some(response))
}

#[allow(clippy::too_many_arguments)]
async fn write(
    state: Shared,
    actor: Actor,
    id: i64,
    method: Method,
    headers: HeaderMap,
    body: &mut Option<Body>,
    mut current: Stored,
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
    let mut bytes = Bytes::new();
    loop {
        match pre.evaluate(MethodKind::Other, Some(&validators(&current))) {
            Decision::Proceed => {}
            Decision::PreconditionFailed(field) => {
                if field == "If-Match"
                    && method != Method::DELETE
                    && let Some(done) =
                        already_applied(&state, &method, &pre, body, &mut bytes, &current, &user)
                            .await?
                {
                    return Ok(done);
                }
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
            match state.store.delete(id, version, user).await? {
                Write::Done(()) => return Ok(StatusCode::NO_CONTENT.into_response()),
                Write::Changed(now) => now,
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
            match state.store.update(id, version, fields, user).await? {
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

// The OpenAPI operations of `/products` and `/products/{id}` (see `openapi.rs`).

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
        (status = 200, description = "One page of the products, by id.", body = super::bodies::ProductPage,
            headers(("ETag" = String, description = "Changes with every committed change."), ("Last-Modified" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified.", headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 412, response = crate::problem::PreconditionFailed),
    )
)]
#[allow(dead_code)]
pub(crate) fn list_products() {}

#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    operation_id = "createProduct",
    request_body(content = super::bodies::ProductBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = Product,
            headers(("Location" = String), ("ETag" = String), ("Last-Modified" = String))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 409, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 413, response = crate::problem::ProblemResponse),
        (status = 415, response = crate::problem::UnsupportedMediaType),
        (status = 422, response = crate::problem::ProblemResponse),
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
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 410, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
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
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#, description = "The ETag the change was made against, or *."),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    request_body(content = super::bodies::ProductBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 409, response = crate::problem::ProblemResponse),
        (status = 410, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 413, response = crate::problem::ProblemResponse),
        (status = 415, response = crate::problem::UnsupportedMediaType),
        (status = 422, response = crate::problem::ProblemResponse),
        (status = 428, response = crate::problem::ProblemResponse),
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
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    request_body(content = super::bodies::ProductPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Patched: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 409, response = crate::problem::ProblemResponse),
        (status = 410, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 413, response = crate::problem::ProblemResponse),
        (status = 415, response = crate::problem::UnsupportedMediaType),
        (status = 422, response = crate::problem::ProblemResponse),
        (status = 428, response = crate::problem::ProblemResponse),
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
        ("If-Match" = String, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 410, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 428, response = crate::problem::ProblemResponse),
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
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 410, response = crate::problem::ProblemResponse),
    )
)]
#[allow(dead_code)]
pub(crate) fn options_product() {}
