//! RFC 9457 problem details: the body of every error the server sends, with the extension
//! members a client needs to recover (the current state on 412, who deleted on 410, field
//! errors on 422).

use serde::{Deserialize, Serialize};

use crate::product::{FieldError, Product};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// 412: the current ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<String>,
    /// 412: the whole current representation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Product>,
    /// 410: who deleted the product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<String>,
    /// 410: when (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// 422: one entry per invalid field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// 409: the id of the product that already has the sku.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_id: Option<i64>,
}
