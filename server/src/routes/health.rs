//! `/health`: answers while the process serves requests.

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use super::{READ_ALLOW, options};
use crate::problem::ApiError;

pub async fn health(method: Method) -> Result<Response, ApiError> {
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
