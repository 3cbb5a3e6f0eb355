//! `/products/{id}/versions` and `/products/{id}/versions/{n}`: a product's history, and
//! each past version, immutable and cacheable for good.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use catalog_shared::precondition::{Decision, MethodKind};

use super::*;
use crate::problem::ApiError;
use crate::state::Shared;

/// The history routes: GET (and HEAD) and OPTIONS; another method is 405 (a path that
/// names no product first is 404).
pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/products/{id}/versions",
            get(list_versions)
                .options(options_versions)
                .fallback(versions_not_allowed),
        )
        .route(
            "/products/{id}/versions/{n}",
            get(get_version)
                .options(options_version)
                .fallback(version_not_allowed),
        )
}

async fn versions_not_allowed(
    raw_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiError {
    let refusal = match path_text(raw_id) {
        Err(e) => e,
        Ok(raw) if parse_id(&raw).is_none() => ApiError::not_found(&format!("Product {raw}")),
        Ok(_) => ApiError::method_not_allowed(READ_ALLOW),
    };
    discard(Some(body), expects_continue(&headers)).await;
    refusal
}

async fn version_not_allowed(
    raw: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiError {
    let refusal = match path_text(raw) {
        Err(e) => e,
        Ok((id, n)) if parse_id(&id).is_none() || parse_id(&n).is_none() => {
            ApiError::not_found(&format!("Version {n} of product {id}"))
        }
        Ok(_) => ApiError::method_not_allowed(READ_ALLOW),
    };
    discard(Some(body), expects_continue(&headers)).await;
    refusal
}

async fn versions(
    state: Shared,
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
    match state.store.versions(id).await? {
        None => Err(ApiError::not_found(&format!("Product {id}"))),
        Some(list) => {
            let mut response = json_response(StatusCode::OK, &list);
            set(response.headers_mut(), header::CACHE_CONTROL, "no-cache");
            Ok(response)
        }
    }
}

async fn version(
    state: Shared,
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
    let Some(stored) = state.store.version(id, n).await? else {
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

#[utoipa::path(
    method(get, head),
    path = "/products/{id}/versions",
    tag = "history",
    operation_id = "listVersions",
    params(("id" = i64, Path, minimum = 1, description = "The product id (canonical decimal).")),
    responses(
        (status = 200, description = "Every version of the product, oldest first.", body = Vec<catalog_shared::product::VersionInfo>,
            headers(("Cache-Control" = String))),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
    )
)]
pub async fn list_versions(
    State(state): State<Shared>,
    raw_id: Result<Path<String>, PathRejection>,
    method: Method,
) -> Result<Response, ApiError> {
    versions(state, raw_id, method).await
}

#[utoipa::path(
    options,
    path = "/products/{id}/versions",
    tag = "history",
    operation_id = "optionsVersions",
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 204, description = "The methods supported.", headers(("Allow" = String))),
        (status = 404, response = crate::problem::ProblemResponse),
    )
)]
pub async fn options_versions(
    State(state): State<Shared>,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    versions(state, raw_id, Method::OPTIONS).await
}

#[utoipa::path(
    method(get, head),
    path = "/products/{id}/versions/{n}",
    tag = "history",
    operation_id = "getVersion",
    description = "A past version, as it was: immutable, cacheable for good.",
    params(
        ("id" = i64, Path, minimum = 1, description = "The product id."),
        ("n" = i64, Path, minimum = 1, description = "The version number."),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|((W/)?"[!#-~]*"( ?, ?(W/)?"[!#-~]*")*)?)$"#),
        ("If-Modified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
        ("If-Unmodified-Since" = Option<String>, Header, pattern = r"^[\t -~\x80-\xff]*$", description = "An HTTP date; an invalid one is ignored."),
    ),
    responses(
        (status = 200, description = "The version.", body = Product,
            headers(("ETag" = String), ("Last-Modified" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (If-None-Match or If-Modified-Since).",
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 404, response = crate::problem::ProblemResponse),
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 412, response = crate::problem::PreconditionFailed),
    )
)]
pub async fn get_version(
    State(state): State<Shared>,
    raw: Result<Path<(String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    version(state, raw, method, headers).await
}

#[utoipa::path(
    options,
    path = "/products/{id}/versions/{n}",
    tag = "history",
    operation_id = "optionsVersion",
    params(("id" = i64, Path, minimum = 1), ("n" = i64, Path, minimum = 1)),
    responses(
        (status = 204, description = "The methods supported.", headers(("Allow" = String))),
        (status = 404, response = crate::problem::ProblemResponse),
    )
)]
pub async fn options_version(
    State(state): State<Shared>,
    raw: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    version(state, raw, Method::OPTIONS, headers).await
}
