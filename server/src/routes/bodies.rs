//! The documented shapes of request bodies and of the list page, for the OpenAPI document
//! and for the handlers that read and write them. Products themselves, events and
//! problems are `catalog_shared`'s.

use catalog_shared::product::{Product, Status};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of a create (`POST /products`) or a full replacement (`PUT /products/{id}`):
/// the editable fields. The server-managed members of a product may be sent back as they
/// came; they are ignored. Any other member is refused (422).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProductBody {
    /// 1 to 64 of `A-Z`, `0-9` and `-`; unique among live products (409 otherwise).
    #[schema(pattern = "^[A-Z0-9-]{1,64}$")]
    sku: String,
    /// 1 to 200 characters, not only white space, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// At most 5000 characters; no control characters but line feed and tab. Absent or
    /// null: empty.
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    description: Option<String>,
    /// The price in cents.
    #[schema(minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    price_cents: i64,
    status: Status,
    /// Ignored (server-managed).
    id: Option<serde_json::Value>,
    /// Ignored (server-managed).
    version: Option<serde_json::Value>,
    /// Ignored (server-managed).
    updated_at: Option<serde_json::Value>,
    /// Ignored (server-managed).
    updated_by: Option<serde_json::Value>,
    /// Ignored (server-managed).
    etag: Option<serde_json::Value>,
}

/// A JSON merge patch (RFC 7396) of the editable fields: a member present replaces the
/// field; `description: null` empties it. Any other null leaves the product invalid (422).
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProductPatch {
    // Every member is optional (a merge patch names what it changes); only
    // `description` may be null (null removes a member, and the others are required).
    #[schema(nullable = false, pattern = "^[A-Z0-9-]{1,64}$")]
    sku: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    #[schema(max_length = 5000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    #[schema(nullable)]
    description: Option<String>,
    #[schema(nullable = false, minimum = 0, maximum = 9_007_199_254_740_992_i64)]
    price_cents: Option<i64>,
    #[schema(nullable = false)]
    status: Option<Status>,
}

/// One page of the product list.
#[derive(ToSchema, Serialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// The next page's URL, or null on the last page.
    pub next: Option<String>,
}
