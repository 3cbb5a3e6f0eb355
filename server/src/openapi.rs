//! `GET /openapi.json`: the HTTP API as an OpenAPI 3.1 document, generated from the
//! `#[utoipa::path]` annotations beside the handlers and the shared wire types. What every
//! operation can also answer (a refused head, a timeout, a busy server, a missing token)
//! is added to each here, once.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use catalog_shared::event::{ChangeEvent, Op, ResetEvent};
use catalog_shared::presence::{Announce, PresenceEvent};
use catalog_shared::problem::Problem;
use catalog_shared::product::{FieldError, Product, Status, VersionInfo};
use utoipa::openapi::Ref;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{
    MethodNotAllowed, PreconditionFailed, ProblemResponse, RequestTimeout, Unauthorized,
    Unavailable, UnsupportedMediaType,
};
use crate::routes::health::Health;
use crate::routes::products::ProductPage;
use crate::routes::{
    READ_ALLOW, events, health, metrics, not_allowed, options, presence, products, versions,
};
use crate::state::Shared;
use catalog_shared::body::{ProductBody, ProductPatch};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "catalog",
        description = "Products with exact RFC 9110 conditional requests: every write takes If-Match (428 without it, unless the server runs with --allow-unconditional), a stale one is 412 with the current product in the problem body. Errors are RFC 9457 problem details."
    ),
    paths(
        health::get_health,
        health::options_health,
        products::list_products,
        products::create_product,
        products::options_products,
        products::get_product,
        products::put_product,
        products::patch_product,
        products::delete_product,
        products::options_product,
        versions::list_versions,
        versions::options_versions,
        versions::get_version,
        versions::options_version,
        events::get_events,
        presence::announce,
        presence::withdraw,
        metrics::get_metrics,
        metrics::options_metrics,
        get_openapi,
        options_openapi,
    ),
    components(
        schemas(
            Product, Status, VersionInfo, FieldError, Problem, ProductBody, ProductPatch,
            ProductPage, Health, ChangeEvent, Op, ResetEvent, Announce, PresenceEvent
        ),
        responses(
            ProblemResponse, PreconditionFailed, MethodNotAllowed, UnsupportedMediaType,
            Unauthorized, Unavailable, RequestTimeout
        )
    ),
    modifiers(&EveryOperation),
    tags(
        (name = "products", description = "The catalog: list, create, read, replace, patch, delete."),
        (name = "history", description = "Each product's past versions, immutable."),
        (name = "live", description = "The change feed and presence."),
        (name = "operations", description = "Health, metrics and this document.")
    )
)]
pub struct ApiDoc;

/// What any operation may also answer, added to each: refusals below the handlers (a bad
/// or oversized head, a head or body that does not arrive in time, a full server, a
/// defect) and, for all but the public ones, the bearer token.
struct EveryOperation;

/// Operations anyone may call even with `--users`.
const PUBLIC: [(&str, &str); 2] = [("/health", "get"), ("/openapi.json", "get")];

impl Modify for EveryOperation {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "With --users: a token from `catalog-server user add`. Without it (open demo mode) no token is needed.",
                    ))
                    .build(),
            ),
        );
        let common = [
            ("400", "ProblemResponse"),
            ("408", "RequestTimeout"),
            ("414", "ProblemResponse"),
            ("431", "ProblemResponse"),
            ("500", "ProblemResponse"),
            ("503", "Unavailable"),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                for (status, response) in common {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| Ref::from_response_name(response).into());
                }
                let public = PUBLIC
                    .iter()
                    .any(|(p, m)| p == path && (*m == method || method == "head"));
                if !public {
                    op.responses
                        .responses
                        .entry("401".to_string())
                        .or_insert_with(|| Ref::from_response_name("Unauthorized").into());
                    // Either no token (open demo mode) or a bearer token (--users).
                    op.security = Some(vec![
                        SecurityRequirement::default(),
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                    ]);
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("head", item.head.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("patch", item.patch.as_mut()),
        ("delete", item.delete.as_mut()),
        ("options", item.options.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        non_null_parameters(&mut doc);
        serde_json::to_string(&doc).unwrap_or_default()
    })
}

/// utoipa types an optional parameter (`Option<T>`) as `[T, "null"]`; a header or query
/// parameter is absent or a text, never null.
fn non_null_parameters(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                continue;
            };
            for param in params {
                if let Some(ty) = param.pointer_mut("/schema/type")
                    && let Some(types) = ty.as_array()
                {
                    let kept: Vec<_> = types.iter().filter(|t| *t != "null").cloned().collect();
                    if kept.len() == 1 {
                        *ty = kept[0].clone();
                    }
                }
            }
        }
    }
}

/// `/openapi.json`: GET (and HEAD) and OPTIONS; public, like `/health`: it describes the
/// API, not the data.
pub fn router() -> Router<Shared> {
    Router::new().route(
        "/openapi.json",
        get(get_openapi)
            .options(options_openapi)
            .fallback(not_allowed(READ_ALLOW)),
    )
}

#[utoipa::path(
    method(get, head),
    path = "/openapi.json",
    tag = "operations",
    operation_id = "getOpenApi",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json", body = Object),
        (status = 405, response = MethodNotAllowed),
    )
)]
async fn get_openapi() -> Response {
    let mut response = (StatusCode::OK, document()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[utoipa::path(
    options,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "optionsOpenApi",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
async fn options_openapi() -> Response {
    options(READ_ALLOW, false)
}
