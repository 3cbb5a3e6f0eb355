//! Generators of entity-tag field text, well-formed and malformed, shared by the property
//! tests and the long fuzz run.

use proptest::prelude::*;

/// Opaque parts, few enough that lists often name the current tag; a comma, `!` and
/// obs-text (é) are legal inside the quotes.
pub const OPAQUES: [&str; 6] = ["v1", "v2", "", "a,b", "é", "!#~"];

/// The field text of one list element, well-formed or not.
pub fn element() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (any::<bool>(), prop::sample::select(&OPAQUES[..])).prop_map(|(w, o)| {
            format!("{}\"{o}\"", if w { "W/" } else { "" })
        }),
        1 => Just("*".to_string()),
        1 => Just(String::new()),
        2 => prop::sample::select(vec![
            "w/\"v1\"", "\"v1", "v1\"", "v1", "\"a b\"", "W/", "W/v1", "W /\"v1\"", "\"\"\"",
            "**", "\"v1\"x", "\"tab\there\"", "\"\u{7f}\"", "\"\u{0}\"", "'v1'", "W/W/\"v1\"",
            "\u{a0}\"v1\"", "\"v1\";", "*\"v1\"",
        ])
        .prop_map(str::to_string),
        1 => "\\PC{0,5}",
    ]
}

/// Separators between elements: mostly commas with optional whitespace, sometimes none
/// (a malformed list) or a doubled comma (an empty element).
fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        ",", ", ", " ,", "\t,\t", ", ,", ",,", " ", "", ",\u{a0}",
    ])
}

/// One field line: elements joined by separators, maybe padded with whitespace.
pub fn line() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((element(), separator()), 1..5),
        prop::sample::select(vec!["", " ", "\t", "  "]),
        prop::sample::select(vec!["", " ", "\t"]),
    )
        .prop_map(|(parts, lead, trail)| {
            let mut s = lead.to_string();
            let n = parts.len();
            for (i, (e, sep)) in parts.into_iter().enumerate() {
                s.push_str(&e);
                if i + 1 < n {
                    s.push_str(sep);
                }
            }
            s.push_str(trail);
            s
        })
}

/// A whole tag field: no line (absent), one, or several.
pub fn field() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        1 => Just(vec![]),
        3 => prop::collection::vec(line(), 1..2),
        1 => prop::collection::vec(line(), 2..4),
    ]
}
