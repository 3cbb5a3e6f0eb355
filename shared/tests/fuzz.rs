//! Fuzzing, as long proptest runs: the entity-tag list parser (the `If-Match` and
//! `If-None-Match` fields) on mutated field text, and merge-patch application as the server
//! does it for PATCH (`json_patch::merge` of the request onto the current product's fields,
//! then `validate_json`) on arbitrary JSON patches.
//!
//! A short run is part of the normal suite. The long one:
//!
//! ```text
//! cargo test --release -p catalog-shared --features fuzz-long --test fuzz -- --nocapture
//! ```
//!
//! runs 10,000,000 entity-tag cases and 3,000,000 merge patches (`PROPTEST_CASES`
//! overrides both counts), a few minutes in all, and prints how many executions ran and for
//! how long. cargo-fuzz needs a nightly toolchain, which
//! this project's machines do not have; these targets check the same oracles with proptest.

mod rfc9110;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use catalog_shared::etag::{EntityTag, EtagCondition};
use catalog_shared::precondition::Preconditions;
use catalog_shared::product::{ProductFields, SERVER_MANAGED, Status, validate_json};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rfc9110::TagField;
use serde_json::{Map, Value, json};

const LONG: bool = cfg!(feature = "fuzz-long");

/// `PROPTEST_CASES`, or `long` with `--features fuzz-long`, or a few thousand.
fn cases(long: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if LONG { long } else { 3_000 })
}

/// Runs `test` on `cases` inputs from `strategy`, and says how many ran and how long.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let executions = AtomicU64::new(0);
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        // Failures are shrunk and reported in the panic message; nothing is written to the
        // source tree.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |input| {
        executions.fetch_add(1, Ordering::Relaxed);
        test(input)
    });
    eprintln!(
        "fuzz {name}: {} executions in {:.1} s",
        executions.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

// ---- entity-tag lists ----------------------------------------------------------------

/// Characters that matter to the grammar, and some that must never pass.
const INTERESTING: [char; 18] = [
    '"', ',', ' ', '\t', 'W', 'w', '/', '*', '!', '~', '\u{7f}', '\u{0}', '\r', '\n', 'é',
    '\u{a0}', '\u{feff}', 'a',
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Replace(usize, char),
    Delete(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        4 => prop::sample::select(&INTERESTING[..]),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), 1usize..6).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut c: Vec<char> = text.chars().collect();
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *m {
            Mutation::Insert(i, ch) => {
                let i = at(i, c.len() + 1);
                c.insert(i, ch)
            }
            Mutation::Replace(i, ch) if !c.is_empty() => {
                let i = at(i, c.len());
                c[i] = ch
            }
            Mutation::Delete(i) if !c.is_empty() => {
                let i = at(i, c.len());
                c.remove(i);
            }
            Mutation::Duplicate(i, n) if !c.is_empty() => {
                let i = at(i, c.len());
                let piece: Vec<char> = c[i..(i + n).min(c.len())].to_vec();
                c.splice(i..i, piece);
            }
            _ => {}
        }
    }
    c.into_iter().collect()
}

/// Field lines: generated lists (well-formed and not), each mutated a few times.
fn mutated_lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        (
            rfc9110::strategies::line(),
            prop::collection::vec(mutation(), 0..6),
        )
            .prop_map(|(l, m)| mutate(&l, &m)),
        1..4,
    )
}

fn to_model(c: &EtagCondition) -> TagField {
    match c {
        EtagCondition::Any => TagField::Star,
        EtagCondition::Tags(tags) => TagField::List(
            tags.iter()
                .map(|t| rfc9110::Tag {
                    weak: t.weak,
                    opaque: t.opaque().as_bytes().to_vec(),
                })
                .collect(),
        ),
    }
}

fn check_tag_lines(lines: Vec<String>) -> Result<(), TestCaseError> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    // Never panics; accepts exactly the grammar; reads the same tags.
    let parsed = EtagCondition::parse_lines(refs.iter().copied());
    let model = rfc9110::parse_tag_field(&refs);
    prop_assert_eq!(
        parsed.as_ref().ok().map(to_model),
        model.clone(),
        "{:?}",
        refs
    );
    // The same through the precondition fields, for both tag fields.
    for name in ["If-Match", "If-None-Match"] {
        let p = Preconditions::from_fields(|n| if n == name { refs.clone() } else { vec![] });
        match &p {
            Ok(_) => prop_assert!(model.is_some(), "{} {:?} accepted", name, refs),
            Err(e) => {
                prop_assert!(model.is_none(), "{} {:?} refused", name, refs);
                prop_assert_eq!(e.field, name);
            }
        }
    }
    // What was read prints back as a list that reads the same.
    if let Ok(EtagCondition::Tags(tags)) = &parsed {
        let printed = tags
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let again = EtagCondition::parse_lines([printed.as_str()]);
        prop_assert_eq!(again.as_ref(), parsed.as_ref());
    }
    // Each line alone as one tag: accepted iff the grammar says so, printed back unchanged.
    for line in &refs {
        let one = line.parse::<EntityTag>();
        let want = rfc9110::parse_entity_tag(line);
        prop_assert_eq!(
            one.as_ref().ok().map(|t| rfc9110::Tag {
                weak: t.weak,
                opaque: t.opaque().as_bytes().to_vec()
            }),
            want,
            "{:?}",
            line
        );
        if let Ok(t) = one {
            prop_assert_eq!(&t.to_string(), line);
        }
    }
    Ok(())
}

#[test]
fn fuzz_entity_tag_lists() {
    fuzz(
        "entity-tag lists",
        cases(10_000_000),
        mutated_lines(),
        check_tag_lines,
    );
}

// ---- merge patch -----------------------------------------------------------------------

/// RFC 7396 section 2, the pseudo-code, as written there.
fn model_merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut target = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            let merged = model_merge_patch(target.get(name).unwrap_or(&Value::Null), value);
            target.insert(name.clone(), merged);
        }
    }
    Value::Object(target)
}

/// The product rules, read from the README and `validate_json`'s documentation: sku 1 to
/// 64 of A-Z 0-9 -, name 1 to 200 characters not all whitespace, description optional and
/// at most 5000 characters, price a whole non-negative number of cents that fits an i64
/// (100.0 included),
/// status one of three names; server-managed members ignored, any other member refused.
fn model_product(doc: &Value) -> Option<ProductFields> {
    let o = doc.as_object()?;
    let known = ["sku", "name", "description", "price_cents", "status"];
    if o.keys()
        .any(|k| !known.contains(&k.as_str()) && !SERVER_MANAGED.contains(&k.as_str()))
    {
        return None;
    }
    let sku = o.get("sku")?.as_str()?;
    if sku.is_empty()
        || sku.len() > 64
        || !sku
            .chars()
            .all(|c| matches!(c, 'A'..='Z' | '0'..='9' | '-'))
    {
        return None;
    }
    let name = o.get("name")?.as_str()?;
    if name.chars().all(char::is_whitespace) || name.chars().count() > 200 {
        return None;
    }
    let description = match o.get("description") {
        None | Some(Value::Null) => "",
        Some(v) => v.as_str()?,
    };
    if description.chars().count() > 5000 {
        return None;
    }
    let Some(Value::Number(n)) = o.get("price_cents") else {
        return None;
    };
    // JSON has one kind of number: an integral value written with a fraction (100.0) is
    // that integer, where a double holds it exactly (up to 2^53).
    let text = n.to_string();
    let price_cents: i64 = match text.parse::<i64>() {
        Ok(c) => c,
        Err(_) => {
            let f: f64 = text.parse().ok()?;
            if f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
                return None;
            }
            f as i64
        }
    };
    // At most 2^53 cents: the largest whole number every JSON reader holds exactly.
    if !(0..=9_007_199_254_740_992).contains(&price_cents) {
        return None;
    }
    let status = Status::ALL
        .into_iter()
        .find(|s| Some(s.as_str()) == o.get("status").and_then(Value::as_str))?;
    Some(ProductFields {
        sku: sku.into(),
        name: name.into(),
        description: description.into(),
        price_cents,
        status,
    })
}

fn product() -> impl Strategy<Value = ProductFields> {
    (
        "[A-Z0-9-]{1,12}",
        "[a-zA-Z é]{0,12}[a-z]",
        prop_oneof![Just(String::new()), "\\PC{0,20}"],
        0i64..10_000_000,
        prop::sample::select(Status::ALL.to_vec()),
    )
        .prop_map(
            |(sku, name, description, price_cents, status)| ProductFields {
                sku,
                name,
                description,
                price_cents,
                status,
            },
        )
}

const KEYS: [&str; 12] = [
    "sku",
    "name",
    "description",
    "price_cents",
    "status",
    "id",
    "version",
    "updated_at",
    "updated_by",
    "etag",
    "colour",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            any::<i64>(),
            Just(0i64),
            Just(-1),
            Just(i64::MAX),
            Just(i64::MIN),
            0i64..100_000,
        ]
        .prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(i64::MAX as u64 + 1)].prop_map(Value::from),
        prop::sample::select(vec![0.5, 1.0, -0.0, 1e300, 100.0, -1.5]).prop_map(|f| json!(f)),
        prop_oneof![
            "[A-Z0-9-]{0,70}",
            "\\PC{0,12}",
            "[ \t\n]{0,3}",
            prop::sample::select(vec![
                "in_stock",
                "out_of_stock",
                "discontinued",
                "In_Stock",
                "sold"
            ])
            .prop_map(str::to_string),
            (1usize..3).prop_map(|k| "x".repeat(4999 + k)),
            (0usize..3).prop_map(|k| "é".repeat(199 + k)),
        ]
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(&KEYS[..]).prop_map(str::to_string),
                        "\\PC{0,4}"
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly objects naming product members, sometimes any JSON at all.
fn patch() -> impl Strategy<Value = Value> {
    prop_oneof![
        5 => prop::collection::vec((prop::sample::select(&KEYS[..]), json_value()), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1 => json_value(),
    ]
}

fn check_merge_patch((base, patch): (ProductFields, Value)) -> Result<(), TestCaseError> {
    // What the server does for PATCH.
    let before = serde_json::to_value(&base).unwrap();
    let mut doc = before.clone();
    json_patch::merge(&mut doc, &patch);
    // RFC 7396's algorithm, and its idempotence.
    prop_assert_eq!(&doc, &model_merge_patch(&before, &patch));
    let mut twice = doc.clone();
    json_patch::merge(&mut twice, &patch);
    prop_assert_eq!(&twice, &doc);
    // Validation agrees with the rules, and takes the values the merged document holds.
    let validated = validate_json(&doc);
    let model = model_product(&doc);
    prop_assert_eq!(validated.as_ref().ok(), model.as_ref(), "{}", doc);
    match &validated {
        Ok(fields) => {
            // Valid fields are valid again once sent back, unchanged.
            let again = validate_json(&serde_json::to_value(fields).unwrap());
            prop_assert_eq!(again.as_ref(), Ok(fields));
        }
        Err(errors) => {
            // Every refusal says why, naming a member the document has or needs.
            prop_assert!(!errors.is_empty());
            let obj = doc.as_object();
            for e in errors {
                let named = match obj {
                    None => e.field.is_empty(),
                    Some(o) => {
                        o.contains_key(&e.field)
                            || ["sku", "name", "price_cents", "status"].contains(&e.field.as_str())
                    }
                };
                prop_assert!(named, "error {:?} on {}", e, doc);
            }
        }
    }
    // A patch that touches only server-managed members changes no field.
    if let Value::Object(p) = &patch
        && p.keys().all(|k| SERVER_MANAGED.contains(&k.as_str()))
    {
        prop_assert_eq!(validated.as_ref().ok(), Some(&base));
    }
    Ok(())
}

#[test]
fn fuzz_merge_patch_then_validate() {
    fuzz(
        "merge patch + validate_json",
        cases(3_000_000),
        (product(), patch()),
        check_merge_patch,
    );
}

/// The deepest body the server's JSON parser accepts (serde_json stops at 128 levels)
/// merges and is refused without exhausting the stack.
#[test]
fn the_deepest_patch_serde_json_accepts_is_refused_cleanly() {
    let mut merged = 0;
    for depth in [127usize, 128] {
        let text = format!(
            "{{\"sku\":{}1{}}}",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        );
        let Ok(patch) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut doc = json!({"sku":"A-1","name":"Lamp","description":"","price_cents":100,"status":"in_stock"});
        json_patch::merge(&mut doc, &patch);
        let errors = validate_json(&doc).unwrap_err();
        assert_eq!(errors[0].field, "sku");
        merged += 1;
    }
    assert_eq!(merged, 1, "serde_json accepts 127 levels and refuses 128");
}
