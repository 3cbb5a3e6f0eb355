//! The product model, its editable fields, and the validation rules both the server and
//! the client's editor apply (so the editor can say what is wrong before a round trip).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of a product's history, as `GET /products/{id}/versions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub version: i64,
    pub etag: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// Whether a product can be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum Status {
    InStock,
    OutOfStock,
    Discontinued,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::InStock, Status::OutOfStock, Status::Discontinued];

    /// The wire name, e.g. `in_stock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InStock => "in_stock",
            Status::OutOfStock => "out_of_stock",
            Status::Discontinued => "discontinued",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    /// Accepts the wire name, case-insensitively, with `-` or space for `_`.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| "must be one of in_stock, out_of_stock, discontinued".to_string())
    }
}

/// A product as the server represents it. `version`, `updated_at`, `updated_by` and `etag`
/// are server-managed; `etag` is exactly the ETag header value, quotes included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub status: Status,
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
    pub etag: String,
}

impl Product {
    /// The fields a client may change.
    pub fn fields(&self) -> ProductFields {
        ProductFields {
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price_cents: self.price_cents,
            status: self.status,
        }
    }
}

/// The client-editable part of a product: the body of a create or a full replacement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ProductFields {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub status: Status,
}

/// The editable fields, in the order the editor shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Name,
    Sku,
    Price,
    Status,
    Description,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Name,
        Field::Sku,
        Field::Price,
        Field::Status,
        Field::Description,
    ];

    /// The word a person reads (`price`).
    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Sku => "sku",
            Field::Price => "price",
            Field::Status => "status",
            Field::Description => "description",
        }
    }

    /// The JSON member name (`price_cents`).
    pub fn json_name(self) -> &'static str {
        match self {
            Field::Price => "price_cents",
            other => other.label(),
        }
    }
}

impl ProductFields {
    /// The field as a person reads it: prices as `$399.00`.
    pub fn display(&self, field: Field) -> String {
        match field {
            Field::Name => self.name.clone(),
            Field::Sku => self.sku.clone(),
            Field::Price => format_price(self.price_cents),
            Field::Status => self.status.to_string(),
            Field::Description => self.description.clone(),
        }
    }

    /// Whether `field` has the same value in both.
    pub fn same(&self, other: &ProductFields, field: Field) -> bool {
        match field {
            Field::Name => self.name == other.name,
            Field::Sku => self.sku == other.sku,
            Field::Price => self.price_cents == other.price_cents,
            Field::Status => self.status == other.status,
            Field::Description => self.description == other.description,
        }
    }

    /// Copies `field` from `other`.
    pub fn take(&mut self, other: &ProductFields, field: Field) {
        match field {
            Field::Name => self.name.clone_from(&other.name),
            Field::Sku => self.sku.clone_from(&other.sku),
            Field::Price => self.price_cents = other.price_cents,
            Field::Status => self.status = other.status,
            Field::Description => self.description.clone_from(&other.description),
        }
    }

    /// The fields whose values differ.
    pub fn changed(&self, other: &ProductFields) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| !self.same(other, *f))
            .collect()
    }
}

/// One field's validation error, as listed in a 422 problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Formats cents as dollars: `39900` -> `$399.00`.
///
/// ```
/// assert_eq!(catalog_shared::product::format_price(39900), "$399.00");
/// assert_eq!(catalog_shared::product::format_price(5), "$0.05");
/// ```
pub fn format_price(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", c / 100, c % 100)
}

/// Parses what a person types for a price (`399`, `399.5`, `$1,299.00`) into cents.
///
/// ```
/// use catalog_shared::product::parse_price;
/// assert_eq!(parse_price("$1,299.00"), Ok(129900));
/// assert_eq!(parse_price("3.5"), Ok(350));
/// assert!(parse_price("-1").is_err());
/// assert!(parse_price("1.234").is_err());
/// ```
pub fn parse_price(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let t = t.strip_prefix('$').unwrap_or(t).replace(',', "");
    let bad = || "must be an amount in dollars, like 399.00".to_string();
    if t.is_empty() {
        return Err(bad());
    }
    if t.starts_with('-') {
        return Err("must not be negative".into());
    }
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 2 {
        return Err("has at most two digits after the point".into());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "is too large".to_string())?
    };
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| "is too large".to_string())
}

/// Checks a sku: 1 to 64 of `A-Z 0-9 -`.
pub fn check_sku(sku: &str) -> Result<(), String> {
    if sku.is_empty() || sku.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !sku
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only A-Z, 0-9 and -".into());
    }
    Ok(())
}

/// Checks a name: 1 to 200 characters, not only whitespace.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if n > 200 {
        return Err(format!("must be at most 200 characters (has {n})"));
    }
    Ok(())
}

/// Checks a description: at most 5000 characters.
pub fn check_description(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > 5000 {
        return Err(format!("must be at most 5000 characters (has {n})"));
    }
    Ok(())
}

/// The largest price, in cents: 2^53, the largest whole number every JSON reader (a
/// JavaScript one included) holds exactly.
pub const MAX_PRICE_CENTS: i64 = 9_007_199_254_740_992;

/// Checks a price in cents.
pub fn check_price_cents(cents: i64) -> Result<(), String> {
    if cents < 0 {
        return Err("must not be negative".into());
    }
    if cents > MAX_PRICE_CENTS {
        return Err(format!("must be at most {MAX_PRICE_CENTS} cents"));
    }
    Ok(())
}

/// The members a client may send back that the server manages and ignores.
pub const SERVER_MANAGED: [&str; 5] = ["id", "version", "updated_at", "updated_by", "etag"];

/// Validates a JSON object as the editable fields of a product, listing every field's
/// error at once. Server-managed members are ignored; unknown members are errors.
///
/// ```
/// use catalog_shared::product::validate_json;
/// let ok = serde_json::json!({"sku":"A-1","name":"Lamp","description":"","price_cents":100,"status":"in_stock","version":9});
/// assert!(validate_json(&ok).is_ok());
/// let bad = serde_json::json!({"sku":"a 1","name":"","price_cents":-1,"status":"sold"});
/// assert_eq!(validate_json(&bad).unwrap_err().len(), 4);
/// ```
pub fn validate_json(value: &Value) -> Result<ProductFields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(obj) = value.as_object() else {
        return Err(vec![FieldError {
            field: "".into(),
            message:
                "the body must be a JSON object with sku, name, description, price_cents and status"
                    .into(),
        }]);
    };
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let string = |name: &str, err: &mut dyn FnMut(&str, String)| -> Option<String> {
        match obj.get(name) {
            None | Some(Value::Null) => {
                err(name, "is required".into());
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                err(name, "must be a string".into());
                None
            }
        }
    };
    let sku = string("sku", &mut err);
    let name = string("name", &mut err);
    // A missing description is an empty one: it is optional.
    let description = match obj.get("description") {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            err("description", "must be a string".into());
            None
        }
    };
    let price_cents = match obj.get("price_cents") {
        None | Some(Value::Null) => {
            err("price_cents", "is required".into());
            None
        }
        // JSON has one kind of number: 100.0 is the integer 100 (exactly representable
        // ones only).
        Some(v) => match v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                .map(|f| f as i64)
        }) {
            Some(c) => Some(c),
            None => {
                err("price_cents", "must be a whole number of cents".into());
                None
            }
        },
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => {
            err("status", "is required".into());
            None
        }
        Some(Value::String(s)) => match Status::ALL.into_iter().find(|st| st.as_str() == s) {
            Some(st) => Some(st),
            None => {
                err(
                    "status",
                    "must be one of in_stock, out_of_stock, discontinued".into(),
                );
                None
            }
        },
        Some(_) => {
            err("status", "must be a string".into());
            None
        }
    };
    for key in obj.keys() {
        let known = ["sku", "name", "description", "price_cents", "status"];
        if !known.contains(&key.as_str()) && !SERVER_MANAGED.contains(&key.as_str()) {
            err(key, "is not a product field".into());
        }
    }
    if let Some(s) = &sku
        && let Err(m) = check_sku(s)
    {
        err("sku", m);
    }
    if let Some(s) = &name
        && let Err(m) = check_name(s)
    {
        err("name", m);
    }
    if let Some(s) = &description
        && let Err(m) = check_description(s)
    {
        err("description", m);
    }
    if let Some(c) = price_cents
        && let Err(m) = check_price_cents(c)
    {
        err("price_cents", m);
    }
    match (sku, name, description, price_cents, status) {
        (Some(sku), Some(name), Some(description), Some(price_cents), Some(status))
            if errors.is_empty() =>
        {
            Ok(ProductFields {
                sku,
                name,
                description,
                price_cents,
                status,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn validation_lists_every_error() {
        let errs = validate_json(&json!({
            "sku": "lower", "name": 5, "price_cents": 1.5, "status": "gone", "colour": "red"
        }))
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in ["sku", "name", "price_cents", "status", "colour"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        assert!(check_name(&"é".repeat(200)).is_ok());
        assert!(check_name(&"é".repeat(201)).is_err());
        assert!(check_description(&"x".repeat(5000)).is_ok());
        assert!(check_description(&"x".repeat(5001)).is_err());
        assert!(check_sku(&"A".repeat(64)).is_ok());
        assert!(check_sku(&"A".repeat(65)).is_err());
        assert!(check_sku("").is_err());
    }

    #[test]
    fn status_accepts_what_people_type() {
        assert_eq!("Out of stock".parse(), Ok(Status::OutOfStock));
        assert_eq!("in-stock".parse(), Ok(Status::InStock));
        assert!("sold".parse::<Status>().is_err());
    }

    proptest! {
        #[test]
        fn price_format_parse_round_trips(c in 0i64..10_000_000_000) {
            prop_assert_eq!(parse_price(&format_price(c)), Ok(c));
        }

        #[test]
        fn price_parser_never_panics(s in "\\PC{0,30}") {
            let _ = parse_price(&s);
        }
    }
}
