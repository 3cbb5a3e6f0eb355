//! `GET /openapi.json`: the HTTP API as an OpenAPI 3.1 document, generated from the
//! `#[utoipa::path]` annotations beside the handlers and the shared wire types. What every
//! operation can also answer (a refused head, a timeout, a busy server, a missing token)
//! is added to each here, once.

use std::sync::OnceLock;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog_shared::event::{ChangeEvent, Op, ResetEvent};
use catalog_shared::presence::{Announce, PresenceEvent};
use catalog_shared::problem::{PROBLEM_JSON, Problem};
use catalog_shared::product::{FieldError, Product, Status, VersionInfo};
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use crate::problem::ApiError;
use crate::routes::{READ_ALLOW, events, health, options, products, versions};

/// The body of a create (`POST /products`) or a full replacement (`PUT /products/{id}`):
/// the editable fields. The server-managed members of a product may be sent back as they
/// came; they are ignored. Any other member is refused (422).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProductBody {
    /// 1 to 64 of `A-Z`, `0-9` and `-`; unique among live products (409 otherwise).
    #[schema(pattern = "^[A-Z0-9-]{1,64}$")]
    sku: String,
    /// 1 to 200 characters, not only white space, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// At most 5000 characters; no control characters but line feed and tab. Absent or
    /// null: empty.
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    description: Option<String>,
    /// The price in cents.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    price_cents: i64,
    status: Status,
    /// Ignored (server-managed).
    id: Option<serde_json::Value>,
    /// Ignored (server-managed).
    version: Option<serde_json::Value>,
    /// Ignored (server-managed).
    updated_at: Option<serde_json::Value>,
    /// Ignored (server-managed).
    updated_by: Option<serde_json::Value>,
    /// Ignored (server-managed).
    etag: Option<serde_json::Value>,
}

/// A JSON merge patch (RFC 7396) of the editable fields: a member present replaces the
/// field; `description: null` empties it. Any other null leaves the product invalid (422).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProductPatch {
    // Every member is optional (a merge patch names what it changes); only
    // `description` may be null (null removes a member, and the others are required).
    #[schema(nullable = false, pattern = "^[A-Z0-9-]{1,64}$")]
    sku: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    #[schema(nullable)]
    description: Option<String>,
    #[schema(nullable = false, minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    price_cents: Option<i64>,
    #[schema(nullable = false)]
    status: Option<Status>,
}

/// One page of the product list.
#[derive(ToSchema, Serialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// The next page's URL, or null on the last page.
    pub next: Option<String>,
}

/// What `/health` says.
#[derive(ToSchema, Serialize)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// `open` (anyone may write, as `X-User` says) or `bearer` (tokens required).
    pub auth: String,
    /// The commit durability the database writer runs with.
    #[schema(value_type = Object)]
    pub durability: serde_json::Value,
}

/// An error: RFC 9457 problem details.
#[derive(ToResponse)]
#[response(
    description = "An error, as RFC 9457 problem details (`application/problem+json`).",
    content_type = "application/problem+json"
)]
#[allow(dead_code)]
pub struct ProblemResponse(Problem);

/// The reusable responses that carry headers of their own.
fn problem_with(description: &str, headers: &[(&str, &str)]) -> ApiResponse {
    let mut b = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    for (name, what) in headers {
        b = b.header(*name, header_doc(what));
    }
    b.build()
}

fn header_doc(description: &str) -> Header {
    let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
    h.description = Some(description.to_string());
    h
}

macro_rules! problem_response {
    ($name:ident, $description:expr, [$(($h:expr, $d:expr)),*]) => {
        #[doc = $description]
        pub struct $name;
        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<ApiResponse>) {
                (stringify!($name), problem_with($description, &[$(($h, $d)),*]).into())
            }
        }
    };
}

problem_response!(
    PreconditionFailed,
    "A precondition (If-Match, If-None-Match, If-Unmodified-Since) does not hold. The body has `current_etag` and `current`.",
    [
        ("ETag", "The current ETag."),
        ("Last-Modified", "When the current version was made.")
    ]
);
problem_response!(
    MethodNotAllowed,
    "The resource does not support this method.",
    [("Allow", "The methods it supports.")]
);
problem_response!(
    UnsupportedMediaType,
    "The body's Content-Type is not the one the method takes.",
    [("Accept-Patch", "On PATCH: application/merge-patch+json.")]
);
problem_response!(
    Unauthorized,
    "With --users: no valid bearer token.",
    [(
        "WWW-Authenticate",
        "Bearer realm=\"catalog\", with error=\"invalid_token\" when a token was sent."
    )]
);
problem_response!(
    Unavailable,
    "Busy, the database cannot take changes now, as many connections or event streams as the server takes, or metrics are off.",
    [("Retry-After", "Seconds to wait before trying again.")]
);
problem_response!(
    RequestTimeout,
    "The request head or body did not arrive in time.",
    [("Connection", "close")]
);

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
        put_presence,
        delete_presence,
        crate::metrics::get_metrics,
        crate::metrics::options_metrics,
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

/// `GET /openapi.json`: public, like `/health`: it describes the API, not the data.
pub async fn openapi_route(method: Method) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => {
            let mut response = (StatusCode::OK, document()).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(response)
        }
        Method::OPTIONS => Ok(options(READ_ALLOW, false)),
        _ => Err(ApiError::method_not_allowed(READ_ALLOW)),
    }
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
#[allow(dead_code)]
fn get_openapi() {}

#[utoipa::path(
    options,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "optionsOpenApi",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
#[allow(dead_code)]
fn options_openapi() {}

// `/presence` (its handler is routes::presence).

#[utoipa::path(
    put,
    path = "/presence",
    tag = "live",
    operation_id = "announcePresence",
    description = "Announce or renew that this client's editor is on a product (and field). Advisory: it never blocks a write. Expires without renewal, and at once when the client's event stream ends.",
    params(
        ("X-Client-Id" = String, Header, description = "The client's random id, the same as on its event stream: 1 to 64 visible ASCII characters.", pattern = "^[!-~]{1,64}$"),
    ),
    request_body(content = Announce, content_type = "application/json"),
    responses(
        (status = 204, description = "Announced."),
        (status = 405, response = MethodNotAllowed),
        (status = 413, response = ProblemResponse),
        (status = 422, response = ProblemResponse),
    )
)]
#[allow(dead_code)]
fn put_presence() {}

#[utoipa::path(
    delete,
    path = "/presence",
    tag = "live",
    operation_id = "withdrawPresence",
    params(
        ("X-Client-Id" = String, Header, description = "The client's random id.", pattern = "^[!-~]{1,64}$"),
    ),
    responses(
        (status = 204, description = "Withdrawn (also when there was nothing to withdraw)."),
        (status = 405, response = MethodNotAllowed),
    )
)]
#[allow(dead_code)]
fn delete_presence() {}
