//! `PUT /presence` and `DELETE /presence`: a client says which product (and field) its
//! editor is on, and that it left. Advisory only: presence never blocks a write.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Extension, Router};
use catalog_shared::presence::{Announce, CLIENT_HEADER};

use super::{discard, expects_continue, not_allowed, read_body};
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;

const ALLOW: &str = "PUT, DELETE";

/// `/presence`: PUT and DELETE.
pub fn router() -> Router<Shared> {
    Router::new().route(
        "/presence",
        put(announce).delete(withdraw).fallback(not_allowed(ALLOW)),
    )
}

/// The client a presence belongs to: its `X-Client-Id`.
fn client_of(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing-client-id",
                "Missing X-Client-Id",
                format!(
                    "Presence belongs to a client: send {CLIENT_HEADER} with a random id of up to 64 visible characters, the same on your event stream."
                ),
            )
        })
}

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
        (status = 405, response = crate::problem::MethodNotAllowed),
        (status = 413, response = crate::problem::ProblemResponse),
        (status = 422, response = crate::problem::ProblemResponse),
    )
)]
pub async fn announce(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let client = match client_of(&headers) {
        Ok(client) => client,
        Err(e) => {
            discard(Some(body), expects_continue(&headers)).await;
            return Err(e);
        }
    };
    let bytes = read_body(body, state.body_timeout).await?;
    let announce = parse_announce(&bytes).map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-presence",
            "Invalid Presence",
            format!("The body must be {{\"product_id\": <id>, \"field\": <name or null>}}: {why}."),
        )
    })?;
    state.feed.announce(&client, &actor.0, announce);
    Ok(StatusCode::NO_CONTENT.into_response())
}

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
        (status = 405, response = crate::problem::MethodNotAllowed),
    )
)]
pub async fn withdraw(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = client_of(&headers)?;
    state.feed.withdraw(&client);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The announcement, read as JSON reads numbers: `12.0` is the id 12.
fn parse_announce(bytes: &[u8]) -> Result<Announce, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let product_id = obj
        .get("product_id")
        .and_then(|v| {
            v.as_i64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                    .map(|f| f as i64)
            })
        })
        .filter(|id| *id > 0)
        .ok_or("product_id must be a product id (a whole number above 0)")?;
    let field = match obj.get("field") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(f)) if f.chars().count() <= 64 => Some(f.clone()),
        Some(_) => return Err("field must be a field's name (a short string) or null".into()),
    };
    // Other members are ignored: presence is advisory, and newer clients may say more.
    Ok(Announce { product_id, field })
}
