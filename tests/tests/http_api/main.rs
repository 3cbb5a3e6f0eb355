//! The HTTP API as a client sees it: representations, validators, errors as problem+json,
//! and every conditional-request rule of RFC 9110 section 13, against the real server.

use catalog_tests::{Server, client, product_json, send};
use reqwest::Method;
use serde_json::json;

fn bbq(price: i64, status: &str) -> serde_json::Value {
    json!({"sku": "BBQ-KETTLE-57", "name": "Kettle charcoal BBQ, 57 cm",
           "description": "Porcelain-enamelled bowl and lid, hinged cooking grate, ash catcher.",
           "price_cents": price, "status": status})
}

mod conditional;
mod resources;
