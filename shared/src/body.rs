//! The documented shapes of the request bodies of a create or replacement and of a merge
//! patch, for the server's OpenAPI document (feature `utoipa`). The server reads bodies
//! with [`crate::product::validate_json`], which says what is wrong field by field; these
//! types say the same in the document, and deserialise what it accepts.

use crate::product::Status;

/// The body of a create (`POST /products`) or a full replacement (`PUT /products/{id}`):
/// the editable fields. The server-managed members of a product may be sent back as they
/// came; they are ignored. Any other member is refused (422).
#[derive(Debug, utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// 1 to 64 of `A-Z`, `0-9` and `-`; unique among live products (409 otherwise).
    #[schema(pattern = "^[A-Z0-9-]{1,64}$")]
    pub sku: String,
    /// 1 to 200 characters, not only white space, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// At most 5000 characters; no control characters but line feed and tab. Absent or
    /// null: empty.
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    pub description: Option<String>,
    /// The price in cents.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    pub price_cents: i64,
    pub status: Status,
    /// Ignored (server-managed).
    pub id: Option<serde_json::Value>,
    /// Ignored (server-managed).
    pub version: Option<serde_json::Value>,
    /// Ignored (server-managed).
    pub updated_at: Option<serde_json::Value>,
    /// Ignored (server-managed).
    pub updated_by: Option<serde_json::Value>,
    /// Ignored (server-managed).
    pub etag: Option<serde_json::Value>,
}

/// A JSON merge patch (RFC 7396) of the editable fields: a member present replaces the
/// field; `description: null` empties it. Any other null leaves the product invalid (422).
#[derive(Debug, utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    // Every member is optional (a merge patch names what it changes); only
    // `description` may be null (null removes a member, and the others are required).
    #[schema(nullable = false, pattern = "^[A-Z0-9-]{1,64}$")]
    pub sku: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    #[schema(nullable)]
    pub description: Option<String>,
    #[schema(nullable = false, minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    pub price_cents: Option<i64>,
    #[schema(nullable = false)]
    pub status: Option<Status>,
}
