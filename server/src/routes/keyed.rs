//! A write that carries an `Idempotency-Key`: its key held in flight while it is served,
//! and the answer to its retry, the outcome recorded with the key: the same status and the
//! representation and ETag of the version it made, whatever happened since.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{product_response, read_body, set};
use crate::idempotency::{self, Claim};
use crate::problem::ApiError;
use crate::state::Shared;
use crate::storage::{KeyClaim, KeyRecord};

/// A keyed write being served.
pub struct Keyed {
    key: String,
    user: String,
    method: Method,
    target: String,
    /// Held until the write is answered: a second request with the key meanwhile is 409.
    _in_flight: Claim,
}

impl Keyed {
    /// The request's key, claimed for this request: `None` without one (or for a method
    /// that is not a write); 400 for a malformed key; 409 while another request with it is
    /// being served.
    pub fn start(
        state: &Shared,
        user: &str,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<Option<Keyed>, ApiError> {
        if !matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            return Ok(None);
        }
        let key = idempotency::from_headers(headers).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed-idempotency-key",
                "Malformed Idempotency-Key",
                format!(
                    "{e}. Send one key per write, as a quoted string of up to {} characters: Idempotency-Key: \"8e03978e-40d5-43e8-bc93-6894a57f9324\". Nothing was changed.",
                    idempotency::MAX_LEN
                ),
            )
        })?;
        let Some(key) = key else {
            return Ok(None);
        };
        let Some(claim) = state.in_flight.claim(user, &key) else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-flight",
                "Idempotency-Key In Flight",
                "A request with this Idempotency-Key is still being served. Retry after it (same key, same request) to get its outcome; nothing was changed by this one.",
            )
            .with_header(header::RETRY_AFTER, "1"));
        };
        Ok(Some(Keyed {
            key,
            user: user.to_string(),
            method: method.clone(),
            target: target.to_string(),
            _in_flight: claim,
        }))
    }

    /// A DELETE's body plays no part in it, so none in its identity either.
    fn body_counts(&self) -> bool {
        self.method != Method::DELETE
    }

    fn fingerprint(&self, headers: &HeaderMap, body: &[u8]) -> String {
        let body = if self.body_counts() { body } else { &[] };
        idempotency::fingerprint(&self.method, &self.target, headers, body)
    }

    /// What the storage records with the write, once `body` has been read.
    pub fn claim(&self, headers: &HeaderMap, body: &[u8]) -> KeyClaim {
        KeyClaim {
            user: self.user.clone(),
            key: self.key.clone(),
            method: self.method.to_string(),
            target: self.target.clone(),
            fingerprint: self.fingerprint(headers, body),
        }
    }

    /// When a write with this key took effect: its outcome again (same request), or 422
    /// (another request). `body` is read here if it was not yet (into `bytes`).
    pub async fn recorded(
        &self,
        state: &Shared,
        headers: &HeaderMap,
        body: &mut Option<Body>,
        bytes: &mut Bytes,
    ) -> Result<Option<Response>, ApiError> {
        let Some(record) = state.store.idempotency_key(&self.user, &self.key).await? else {
            return Ok(None);
        };
        if self.body_counts()
            && let Some(b) = body.take()
        {
            *bytes = read_body(b, state.body_timeout).await?;
        }
        if record.method != self.method.as_str() || record.target != self.target {
            return Err(reused(format!(
                "This Idempotency-Key was used for {} {}; a key names one request. Send this one with a new key.",
                record.method, record.target
            )));
        }
        if record.fingerprint != self.fingerprint(headers, bytes) {
            return Err(reused(format!(
                "This Idempotency-Key was used for {} {} with another body or If-Match; a key names one request. Send this one with a new key.",
                record.method, record.target
            )));
        }
        replay(state, &record).await.map(Some)
    }
}

fn reused(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency-Key Reused",
        detail,
    )
}

/// The recorded outcome, as it was first answered.
async fn replay(state: &Shared, record: &KeyRecord) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        let Some(made) = state
            .store
            .version(record.product_id, record.version)
            .await?
        else {
            return Err(ApiError::internal(format!(
                "the version {} of product {} that an Idempotency-Key recorded is missing",
                record.version, record.product_id
            )));
        };
        let mut response = product_response(status, &made.product);
        let location = format!("/products/{}", record.product_id);
        let name = if status == StatusCode::CREATED {
            header::LOCATION
        } else {
            header::CONTENT_LOCATION
        };
        set(response.headers_mut(), name, &location);
        response
    };
    set(
        response.headers_mut(),
        header::HeaderName::from_static(idempotency::REPLAYED),
        "true",
    );
    tracing::info!(
        product = record.product_id,
        version = record.version,
        status = record.status,
        "a keyed write was repeated: answered with its recorded outcome"
    );
    Ok(response)
}
