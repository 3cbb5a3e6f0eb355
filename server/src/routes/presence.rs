//! `PUT /presence` and `DELETE /presence`: a client says which product (and field) its
//! editor is on, and that it left. Advisory only: presence never blocks a write.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog_shared::presence::{Announce, CLIENT_HEADER};

use super::read_body;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;

const ALLOW: &str = "PUT, DELETE";

pub async fn presence(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !matches!(method, Method::PUT | Method::DELETE) {
        return Err(ApiError::method_not_allowed(ALLOW));
    }
    let client = headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing-client-id",
                "Missing X-Client-Id",
                format!(
                    "Presence belongs to a client: send {CLIENT_HEADER} with a random id of up to 64 visible characters, the same on your event stream."
                ),
            )
        })?
        .to_string();
    if method == Method::DELETE {
        state.feed.withdraw(&client);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
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
