//! `/products` and `/products/{id}`: the list, creation, and each product's conditional
//! GET, PUT, PATCH and DELETE. Here, the routes and a handler per method with its OpenAPI
//! operation; the work is `collection`'s and `item`'s.

mod collection;
mod item;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use catalog_shared::product::Product;

use self::collection::{Collection, collection};
use self::item::{Item, item};
use super::*;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;

/// One page of the product list.
#[derive(utoipa::ToSchema, serde::Serialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// The next page's URL, or null on the last page.
    pub next: Option<String>,
}

/// The routes of `/products` and `/products/{id}`, each method its handler; any other
/// method is 405 with `Allow` (an id that names no product first is 404).
pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/products",
            get(list_products)
                .post(create_product)
                .options(options_products)
                .fallback(not_allowed(COLLECTION_ALLOW)),
        )
        .route(
            "/products/{id}",
            get(get_product)
                .put(put_product)
                .patch(patch_product)
                .delete(delete_product)
                .options(options_product)
                .fallback(item_not_allowed),
        )
}

/// A method `/products/{id}` does not take: 404 for an id that names no product, else 405.
async fn item_not_allowed(
    raw_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiError {
    let refusal = match path_text(raw_id) {
        Err(e) => e,
        Ok(raw) if parse_id(&raw).is_none() => ApiError::not_found(&format!("Product {raw}")),
        Ok(_) => ApiError::method_not_allowed(ITEM_ALLOW),
    };
    discard(Some(body), expects_continue(&headers)).await;
    refusal
}

// The handlers, each with its OpenAPI operation (gathered in `openapi.rs`). GET also
// answers HEAD (axum routes HEAD to GET and sends no body).

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
        (status = 200, description = "One page of the products, by id.", body = ProductPage,
            headers(("ETag" = String, description = "Changes with every committed change."), ("Last-Modified" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified.", headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 412, response = crate::problem::PreconditionFailed),
    )
)]
pub async fn list_products(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    collection(Collection {
        state,
        actor,
        method,
        uri,
        headers,
        body,
    })
    .await
}

#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    operation_id = "createProduct",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = r#"^[ \t]*("([ !#-\[\]-~]|\\["\\]){1,255}"|[!#-\[\]-~]{1,255})[ \t]*$"#, description = "Names this write: a retry with the same key and the same request gets the first outcome again (same status, representation and ETag, header Idempotent-Replayed: true), with no new version. The same key with another request is 422; while its first request is in flight, 409 with Retry-After. A quoted string (RFC 8941) or a bare key, up to 255 characters. Without a key, a stale If-Match is always 412."),
    ),
    request_body(content = catalog_shared::body::ProductBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = Product,
            headers(("Location" = String), ("ETag" = String), ("Last-Modified" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 409, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 413, response = crate::problem::ProblemResponse),
        (status = 415, response = crate::problem::UnsupportedMediaType),
        (status = 422, response = crate::problem::ProblemResponse),
    )
)]
pub async fn create_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    collection(Collection {
        state,
        actor,
        method,
        uri,
        headers,
        body,
    })
    .await
}

#[utoipa::path(
    options,
    path = "/products",
    tag = "products",
    operation_id = "optionsProducts",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
pub async fn options_products(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    collection(Collection {
        state,
        actor,
        method,
        uri,
        headers,
        body,
    })
    .await
}

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
pub async fn get_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    item(Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    })
    .await
}

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
    request_body(content = catalog_shared::body::ProductBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
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
pub async fn put_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    item(Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    })
    .await
}

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
    request_body(content = catalog_shared::body::ProductPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Patched: the new version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Content-Location" = String), ("Idempotent-Replayed" = String, description = "true when this answer repeats the recorded outcome of an earlier request with the same Idempotency-Key."))),
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
pub async fn patch_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    item(Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    })
    .await
}

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
        (status = 400, response = crate::problem::ProblemResponse),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 409, response = crate::problem::ProblemResponse),
        (status = 410, response = crate::problem::ProblemResponse),
        (status = 412, response = crate::problem::PreconditionFailed),
        (status = 422, response = crate::problem::ProblemResponse),
        (status = 428, response = crate::problem::ProblemResponse),
    )
)]
pub async fn delete_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    item(Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    })
    .await
}

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
pub async fn options_product(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    item(Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    })
    .await
}
