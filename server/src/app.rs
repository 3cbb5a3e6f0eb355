//! The router and the one layer in front of it (head checks, authentication, request log,
//! metrics). The state it serves is `state`'s; serving the connections is `serve`'s.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthMode;
use crate::head::HeadLimits;
use crate::log::clean;
use crate::problem::ApiError;
use crate::routes::{events, health, metrics, presence, products, versions};
use crate::state::Shared;

pub fn router(state: Shared) -> Router {
    let front = Front {
        auth: state.auth.clone(),
        head_limits: state.head_limits,
    };
    Router::new()
        .merge(health::router())
        .merge(products::router())
        .merge(versions::router())
        .merge(events::router())
        .merge(presence::router())
        .merge(metrics::router())
        .merge(crate::openapi::router())
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(front, front_door))
        .with_state(state)
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(&format!("The resource {}", uri.path()))
}

/// What every request passes before its handler.
#[derive(Clone)]
struct Front {
    auth: Arc<AuthMode>,
    head_limits: HeadLimits,
}

/// Every request, in this order: the head checks (Host, sizes), then who is acting (a
/// request refused by either never reaches a handler, nor is its body read); then the
/// handler; then one log line (method, path, status, the If-Match sent, the ETag
/// returned, the user, the time taken) and the count in the metrics, for refused requests
/// too. One layer, not four: each layer of axum's costs a clone of the services below it
/// and a boxed future per request.
async fn front_door(State(front): State<Front>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Clones of the method, URI, header value and matched path share their bytes (no
    // copy): the line is written once, from borrowed text.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let if_match = req.headers().get(header::IF_MATCH).cloned();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let admitted = match crate::head::refuse(&front.head_limits, &req) {
        Some(refusal) => Err(refusal),
        None => crate::auth::admit(&front.auth, &mut req),
    };
    let (response, actor) = match admitted {
        Ok(actor) => (next.run(req).await, Some(actor)),
        Err(refusal) => (refusal.into_response(), None),
    };
    crate::metrics::count(
        route.as_ref().map(MatchedPath::as_str),
        &method,
        response.status(),
    );
    // Visible ASCII as it is (borrowed); anything else as lossy UTF-8, its control
    // characters escaped.
    fn text(v: Option<&HeaderValue>) -> Cow<'_, str> {
        match v {
            None => Cow::Borrowed("-"),
            Some(v) => match v.to_str() {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => Cow::Owned(clean(&String::from_utf8_lossy(v.as_bytes())).into_owned()),
            },
        }
    }
    let user = clean(actor.as_ref().map_or("-", |a| a.0.as_str()));
    crate::log::request(format_args!(
        "{method} {path} {status} if-match={if_match} etag={etag} user={user} {ms:.1}ms",
        path = clean(uri.path()),
        if_match = text(if_match.as_ref()),
        etag = text(response.headers().get(header::ETAG)),
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
    ));
    response
}
