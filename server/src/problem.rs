//! Error responses: every error the server sends is an RFC 9457 `application/problem+json`
//! body, built here; and the error responses as the OpenAPI document names them.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog_shared::problem::{PROBLEM_JSON, Problem};
use utoipa::ToResponse;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Header, Ref, RefOr};

use crate::storage::StoreError;

/// An error response: a problem body plus any headers it needs (Allow, ETag, ...).
#[derive(Debug)]
pub struct ApiError {
    pub problem: Box<Problem>,
    pub headers: HeaderMap,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError {
            problem: Box::new(Problem {
                kind: format!("/problems/{slug}"),
                title: title.to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                ..Default::default()
            }),
            headers: HeaderMap::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not Found",
            format!("{what} does not exist. GET /products lists the products there are."),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
            format!("The server failed: {detail}. Nothing was changed; try again."),
        )
    }

    pub fn method_not_allowed(allow: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            format!("This resource supports {allow}."),
        )
        .with_header(header::ALLOW, allow)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DuplicateSku { sku, existing_id } => {
                let mut e = ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate-sku",
                    "Duplicate SKU",
                    format!(
                        "Product {existing_id} already has sku {sku}. Choose another sku, or edit product {existing_id}."
                    ),
                );
                e.problem.conflicting_id = Some(existing_id);
                e
            }
            // Handlers look a used key up and replay its outcome; this is what is left
            // when even that lookup found nothing (the key's record was pruned meanwhile).
            StoreError::KeyUsed => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Idempotency-Key In Use",
                "Another request with this Idempotency-Key was being recorded at the same moment. Retry the request with the same key to get its outcome.",
            )
            .with_header(header::RETRY_AFTER, "1"),
            StoreError::Busy(why) => {
                tracing::warn!("refused a write: {why}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "Service Unavailable",
                    format!(
                        "The server is busy ({why}). Nothing was changed; try again in a second."
                    ),
                )
                .with_header(header::RETRY_AFTER, "1")
            }
            StoreError::Unavailable(why) => {
                tracing::error!("the database cannot write: {why}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Service Unavailable",
                    format!(
                        "The database cannot take changes now ({why}). Nothing was changed; try again later. Reading still works."
                    ),
                )
                .with_header(header::RETRY_AFTER, "5")
            }
            StoreError::Database(why) => ApiError::internal(why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.headers_mut().extend(self.headers);
        response
    }
}

// The error responses of the OpenAPI document, named by the operations' annotations.

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
    ProblemResponse,
    "An error, as RFC 9457 problem details (`application/problem+json`).",
    []
);
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
    "Busy, the database cannot take changes now, or as many connections or event streams as the server takes.",
    [("Retry-After", "Seconds to wait before trying again.")]
);
problem_response!(
    RequestTimeout,
    "The request head or body did not arrive in time.",
    [("Connection", "close")]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_that_cannot_write_now_is_503_problem_with_retry_after() {
        for e in [
            StoreError::Busy("queue full".into()),
            StoreError::Unavailable("database or disk is full".into()),
        ] {
            let r = ApiError::from(e).into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            assert!(r.headers().contains_key(header::RETRY_AFTER));
        }
        let r = ApiError::from(StoreError::Database("a defect".into())).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
