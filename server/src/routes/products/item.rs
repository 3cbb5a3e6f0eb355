//! `/products/{id}`: a product's conditional GET, PUT, PATCH and DELETE (404/410/405/415
//! first, then the preconditions, then the body, then one compare-and-set), and what a
//! keyed write does when it is refused.

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use catalog_shared::precondition::{Decision, MethodKind};

use super::super::keyed::Keyed;
use super::super::*;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::Shared;
use crate::storage::{Lookup, StoreError, Stored, Write};

/// The request of a `/products/{id}` handler, as extracted.
pub(super) struct Item {
    pub(super) state: Shared,
    pub(super) actor: Actor,
    pub(super) raw_id: Result<Path<String>, PathRejection>,
    pub(super) method: Method,
    pub(super) uri: axum::http::Uri,
    pub(super) headers: HeaderMap,
    pub(super) body: Body,
}

pub(super) async fn item(request: Item) -> Result<Response, ApiError> {
    let Item {
        state,
        actor,
        raw_id,
        method,
        uri,
        headers,
        body,
    } = request;
    let raw_id = path_text(raw_id)?;
    let mut body = Some(body);
    let expect_continue = expects_continue(&headers);
    let target = target_of(&uri);
    let result = item_inner(state, actor, raw_id, method, &target, headers, &mut body).await;
    if result.is_err() {
        discard(body.take(), expect_continue).await;
    }
    result
}

async fn item_inner(
    state: Shared,
    actor: Actor,
    raw_id: String,
    method: Method,
    target: &str,
    headers: HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let Some(id) = parse_id(&raw_id) else {
        return Err(ApiError::not_found(&format!("Product {raw_id}")));
    };
    if !matches!(
        method,
        Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS
    ) {
        return Err(ApiError::method_not_allowed(ITEM_ALLOW));
    }
    // A keyed write's key is looked up only when the write is refused (`replay_or`): a
    // retry of a write that took effect is always refused (its If-Match names a version
    // that is gone, the product is deleted, or the key's unique row is taken), so it gets
    // its recorded outcome there (a repeated DELETE its 204, not 410), and a new keyed
    // write costs no read more than an unkeyed one.
    let keyed = Keyed::start(&state, &actor.0, &method, target, &headers)?;
    let mut bytes = Bytes::new();
    let lookup = state.store.get(id).await?;
    let current = match lookup {
        Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        // Gone is gone, for OPTIONS too (its history stays readable under /versions).
        Lookup::Deleted(d) => {
            return replay_or(
                keyed.as_ref(),
                &state,
                &headers,
                body,
                &mut bytes,
                gone(id, &d),
            )
            .await;
        }
        Lookup::Live(s) => s,
    };
    match method {
        Method::GET | Method::HEAD => {
            let pre = preconditions(&headers)?;
            match pre.evaluate(MethodKind::GetOrHead, Some(&validators(&current))) {
                Decision::Proceed => Ok(product_response(StatusCode::OK, &current.product)),
                Decision::NotModified => {
                    Ok(not_modified(&current.product.etag, current.last_modified))
                }
                Decision::PreconditionFailed(field) => {
                    Err(precondition_failed(&current, field, &headers))
                }
            }
        }
        Method::OPTIONS => Ok(options(ITEM_ALLOW, true)),
        _ => {
            let keyed = Refusals {
                keyed: keyed.as_ref(),
                bytes,
            };
            write(state, actor, id, method, headers, body, current, keyed).await
        }
    }
}

/// The request target a key is bound to: path and query as sent.
pub(super) fn target_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// A keyed write about to be refused: if its key got recorded meanwhile (its own first
/// attempt committed while this one ran), the recorded outcome; else the refusal.
pub(super) async fn replay_or(
    keyed: Option<&Keyed>,
    state: &Shared,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    bytes: &mut Bytes,
    refusal: ApiError,
) -> Result<Response, ApiError> {
    if let Some(k) = keyed
        && let Some(done) = k.recorded(state, headers, body, bytes).await?
    {
        return Ok(done);
    }
    Err(refusal)
}

/// A write's key (if any) and its body once read.
struct Refusals<'a> {
    keyed: Option<&'a Keyed>,
    bytes: Bytes,
}

/// PUT, PATCH and DELETE: preconditions against the current state, then the body, then a
/// compare-and-set at the version the preconditions were checked against. If another
/// write lands in between, the preconditions are checked again against the new state.
/// A failed If-Match is 412, always: a retry is recognised by its Idempotency-Key, never
/// by its content (HTTP-RULES.md), and a keyed write that was refused looks its key up
/// once more before it answers, in case its own first attempt (on another instance, or
/// still committing when this one began) is what moved the product on.
#[allow(clippy::too_many_arguments)]
async fn write(
    state: Shared,
    actor: Actor,
    id: i64,
    method: Method,
    headers: HeaderMap,
    body: &mut Option<Body>,
    mut current: Stored,
    keyed: Refusals<'_>,
) -> Result<Response, ApiError> {
    let user = actor.0;
    match method {
        Method::PUT => require_json(&headers)?,
        Method::PATCH => require_merge_patch(&headers)?,
        _ => {}
    }
    let pre = preconditions(&headers)?;
    if pre.if_match.is_none() && !state.allow_unconditional {
        return Err(precondition_required(&method, id));
    }
    let Refusals { keyed, mut bytes } = keyed;
    loop {
        let refusal = match pre.evaluate(MethodKind::Other, Some(&validators(&current))) {
            Decision::Proceed => None,
            Decision::PreconditionFailed(field) => {
                Some(precondition_failed(&current, field, &headers))
            }
            // Never for a write (If-None-Match fails with 412 there), but be explicit.
            Decision::NotModified => Some(precondition_failed(&current, "If-None-Match", &headers)),
        };
        if let Some(refusal) = refusal {
            return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
        }
        let version = current.product.version;
        let user = user.clone();
        let written = if method == Method::DELETE {
            let claim = keyed.map(|k| k.claim(&headers, &[]));
            match state.store.delete(id, version, user, claim).await {
                Ok(Write::Done(())) => return Ok(StatusCode::NO_CONTENT.into_response()),
                Ok(Write::Changed(now)) => Ok(now),
                Err(e) => Err(e),
            }
        } else {
            if let Some(b) = body.take() {
                bytes = read_body(b, state.body_timeout).await?;
            }
            let value = parse_json(&bytes)?;
            let fields = if method == Method::PATCH {
                patched(&current.product.fields(), &value)?
            } else {
                validated(&value)?
            };
            let claim = keyed.map(|k| k.claim(&headers, &bytes));
            match state.store.update(id, version, fields, user, claim).await {
                Ok(Write::Done(product)) => {
                    let mut response = product_response(StatusCode::OK, &product);
                    set(
                        response.headers_mut(),
                        header::CONTENT_LOCATION,
                        &format!("/products/{id}"),
                    );
                    return Ok(response);
                }
                Ok(Write::Changed(now)) => Ok(now),
                Err(e) => Err(e),
            }
        };
        let outcome = match written {
            Ok(now) => now,
            Err(e @ (StoreError::KeyUsed | StoreError::DuplicateSku { .. })) => {
                let refusal = e.into();
                return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
            }
            Err(e) => return Err(e.into()),
        };
        current = match *outcome {
            Lookup::Live(s) => s,
            Lookup::Deleted(d) => {
                let refusal = gone(id, &d);
                return replay_or(keyed, &state, &headers, body, &mut bytes, refusal).await;
            }
            Lookup::Missing => return Err(ApiError::not_found(&format!("Product {id}"))),
        };
    }
}
