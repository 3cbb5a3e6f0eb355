//! `/products`: the list (paged, with its own ETag) and creation.

use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use catalog_shared::precondition::{Decision, MethodKind, Preconditions, Validators};
use serde::Deserialize;

use super::super::keyed::Keyed;
use super::super::*;
use super::ProductPage;
use super::item::{replay_or, target_of};
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;
use crate::storage::{StoreError, mint_etag};

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

/// The request of a `/products` handler, as extracted.
pub(super) struct Collection {
    pub(super) state: Shared,
    pub(super) actor: Actor,
    pub(super) method: Method,
    pub(super) uri: axum::http::Uri,
    pub(super) headers: HeaderMap,
    pub(super) body: Body,
}

pub(super) async fn collection(request: Collection) -> Result<Response, ApiError> {
    let Collection {
        state,
        actor,
        method,
        uri,
        headers,
        body,
    } = request;
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
                &ProductPage {
                    items: page.items,
                    next,
                },
            );
            validator_headers(response.headers_mut(), &etag, page.changed_at);
            Ok(response)
        }
        Method::POST => {
            let user = actor.0;
            require_json(&headers)?;
            let target = target_of(&uri);
            // A key is looked up only when the write is refused (see `replay_or`): a new
            // keyed create costs no read more than an unkeyed one.
            let keyed = Keyed::start(&state, &user, &method, &target, &headers)?;
            let mut bytes = Bytes::new();
            let pre = preconditions(&headers)?;
            if pre != Preconditions::default() {
                let (seq, at) = state.store.latest_change().await?;
                let (etag, current) = list_validators(&state, seq, at);
                if let Decision::PreconditionFailed(field) =
                    pre.evaluate(MethodKind::Other, Some(&current))
                {
                    let refusal = list_precondition_failed(field, &etag);
                    return replay_or(keyed.as_ref(), &state, &headers, body, &mut bytes, refusal)
                        .await;
                }
            }
            if let Some(b) = body.take() {
                bytes = read_body(b, state.body_timeout).await?;
            }
            let fields = validated(&parse_json(&bytes)?)?;
            let claim = keyed.as_ref().map(|k| k.claim(&headers, &bytes));
            let product = match state.store.create(fields, user, claim).await {
                Ok(p) => p,
                // A refused keyed create: its key's first request may have committed
                // meanwhile (on another instance, its sku then taken by that very write).
                Err(e @ (StoreError::KeyUsed | StoreError::DuplicateSku { .. })) => {
                    let refusal = e.into();
                    return replay_or(keyed.as_ref(), &state, &headers, body, &mut bytes, refusal)
                        .await;
                }
                Err(e) => return Err(e.into()),
            };
            let mut response = product_response(StatusCode::CREATED, &product);
            set(
                response.headers_mut(),
                header::LOCATION,
                &format!("/products/{}", product.id),
            );
            Ok(response)
        }
        Method::OPTIONS => Ok(options(COLLECTION_ALLOW, false)),
        // Routed by method: only the methods above reach here.
        _ => Err(ApiError::method_not_allowed(COLLECTION_ALLOW)),
    }
}
