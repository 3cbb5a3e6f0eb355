//! `/health`: answers while the process serves requests, and says how: whether anyone
//! may write (`"auth":"open"`) or only token holders (`"bearer"`), and the commit
//! durability the database writer actually runs with.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use serde::Serialize;
use utoipa::ToSchema;

use super::{READ_ALLOW, json_response, not_allowed, options};
use crate::state::Shared;
use crate::storage::Durability;

/// What `/health` says.
#[derive(ToSchema, Serialize)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// `open` (anyone may write, as `X-User` says) or `bearer` (tokens required).
    pub auth: &'static str,
    /// The commit durability the database writer runs with.
    #[schema(value_type = Object)]
    pub durability: Durability,
    /// Clients whose editor is on a product now (presence).
    pub presence: usize,
}

/// `/health`: GET (and HEAD) and OPTIONS.
pub fn router() -> Router<Shared> {
    Router::new().route(
        "/health",
        get(get_health)
            .options(options_health)
            .fallback(not_allowed(READ_ALLOW)),
    )
}

#[utoipa::path(
    method(get, head),
    path = "/health",
    tag = "operations",
    operation_id = "getHealth",
    description = "Answers while the process serves requests; public even with --users.",
    responses(
        (status = 200, description = "Serving: how writes are authorised and how durable commits are.", body = Health),
        (status = 405, response = crate::problem::MethodNotAllowed),
    )
)]
pub async fn get_health(State(state): State<Shared>) -> Response {
    json_response(
        StatusCode::OK,
        &Health {
            status: "ok",
            auth: state.auth.name(),
            durability: state.durability.clone(),
            presence: state.feed.presence_count(),
        },
    )
}

#[utoipa::path(
    options,
    path = "/health",
    tag = "operations",
    operation_id = "optionsHealth",
    responses((status = 204, description = "The methods supported.", headers(("Allow" = String))))
)]
pub async fn options_health() -> Response {
    options(READ_ALLOW, false)
}
