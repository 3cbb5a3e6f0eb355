//! Property tests: the entity-tag parser and the precondition evaluation agree with a small
//! reference model of RFC 9110 section 13 (`rfc9110/mod.rs`), on generated field text that
//! mixes well-formed and malformed lists, several field lines, dates in the three HTTP-date
//! formats and invalid ones, GET/HEAD and other methods, and present or absent resources.

mod rfc9110;

use std::time::{Duration, UNIX_EPOCH};

use catalog_shared::etag::{EntityTag, EtagCondition};
use catalog_shared::precondition::{Decision, MethodKind, Preconditions, Validators};
use proptest::prelude::*;
use rfc9110::strategies::{OPAQUES, element, field, line};
use rfc9110::{Outcome, Request, Resource, Tag, TagField};

/// Around when the resource was last modified.
const T0: u64 = 1_700_000_000;

/// The three HTTP-date formats (RFC 9110 5.6.7) of one instant.
fn formats(secs: u64) -> [String; 3] {
    let imf = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
    // "Tue, 14 Nov 2023 22:13:20 GMT"
    let p: Vec<&str> = imf.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    let (wd, day, mon, year, time) = (p[0], p[1], p[2], p[3], p[4]);
    let long = match wd {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    let rfc850 = format!("{long}, {day}-{mon}-{} {time} GMT", &year[2..]);
    let asctime = format!(
        "{wd} {mon} {:>2} {time} {year}",
        day.trim_start_matches('0')
    );
    [imf, rfc850, asctime]
}

/// A date field's lines and what they mean: `Some(secs)` for one valid date, `None` for
/// absent or one that must be ignored (invalid, or more than one).
pub fn date_field() -> impl Strategy<Value = (Vec<String>, Option<u64>)> {
    let secs = T0 - 3..T0 + 4;
    prop_oneof![
        2 => Just((vec![], None)),
        4 => (secs.clone(), 0..3usize, prop::sample::select(vec!["", " "])).prop_map(|(s, f, pad)| {
            (vec![format!("{pad}{}{pad}", formats(s)[f])], Some(s))
        }),
        1 => prop::sample::select(vec![
            "yesterday", "", "1700000000", "Tue, 14 Nov 2023 25:13:20 GMT",
            "Tue, 14 Nov 2023 22:13:20", "14 Nov 2023 22:13:20 GMT",
        ])
        .prop_map(|s| (vec![s.to_string()], None)),
        // A list of dates on one line, or two lines: not one valid HTTP-date.
        1 => (secs.clone(), secs.clone()).prop_map(|(a, b)| {
            (vec![format!("{}, {}", formats(a)[0], formats(b)[0])], None)
        }),
        1 => (secs.clone(), secs).prop_map(|(a, b)| (vec![formats(a)[0].clone(), formats(b)[0].clone()], None)),
    ]
}

fn resource() -> impl Strategy<Value = Option<(bool, &'static str, u64, u32)>> {
    prop::option::weighted(
        0.85,
        (
            any::<bool>(),
            prop::sample::select(&OPAQUES[..]),
            T0 - 1..T0 + 2,
            0u32..1_000_000_000,
        ),
    )
}

fn to_model(c: &EtagCondition) -> TagField {
    match c {
        EtagCondition::Any => TagField::Star,
        EtagCondition::Tags(tags) => TagField::List(
            tags.iter()
                .map(|t| Tag {
                    weak: t.weak,
                    opaque: t.opaque().as_bytes().to_vec(),
                })
                .collect(),
        ),
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(4096),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// `EtagCondition::parse_lines` accepts exactly what the model's grammar accepts, and
    /// reads the same tags from it.
    #[test]
    fn tag_fields_parse_as_the_grammar_says(lines in prop::collection::vec(line(), 1..4)) {
        let lines = refs(&lines);
        let got = EtagCondition::parse_lines(lines.iter().copied()).ok().map(|c| to_model(&c));
        prop_assert_eq!(got, rfc9110::parse_tag_field(&lines), "lines {:?}", lines);
    }

    /// One entity tag parses iff it is `[W/]"etagc*"`, and prints back as it was sent.
    #[test]
    fn single_tags_parse_as_the_grammar_says(text in prop_oneof![element(), "\\PC{0,8}"]) {
        let got = text.parse::<EntityTag>();
        let read = got.as_ref().ok().map(|t| Tag { weak: t.weak, opaque: t.opaque().as_bytes().to_vec() });
        prop_assert_eq!(read, rfc9110::parse_entity_tag(&text), "{:?}", text);
        if let Ok(t) = got {
            prop_assert_eq!(t.to_string(), text);
        }
    }

    /// The decision for every combination of the four fields, method and resource is the
    /// one RFC 9110 13.2.2 gives (with this project's 400 for malformed tag fields).
    #[test]
    fn preconditions_decide_as_rfc_9110_13_2_2(
        if_match in field(),
        if_none_match in field(),
        (ims_lines, ims) in date_field(),
        (ius_lines, ius) in date_field(),
        get_or_head in any::<bool>(),
        res in resource(),
    ) {
        let model_resource = res.map(|(weak, o, secs, _)| Resource {
            etag: Tag { weak, opaque: o.as_bytes().to_vec() },
            modified_secs: secs,
        });
        let validators = res.map(|(weak, o, secs, nanos)| Validators {
            etag: if weak { EntityTag::weak(o) } else { EntityTag::strong(o) },
            last_modified: UNIX_EPOCH + Duration::new(secs, nanos),
        });
        let request = Request {
            get_or_head,
            if_match: refs(&if_match),
            if_none_match: refs(&if_none_match),
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        let want = rfc9110::evaluate(&request, model_resource.as_ref());
        let parsed = Preconditions::from_fields(|name| match name {
            "If-Match" => refs(&if_match),
            "If-None-Match" => refs(&if_none_match),
            "If-Modified-Since" => refs(&ims_lines),
            "If-Unmodified-Since" => refs(&ius_lines),
            _ => vec![],
        });
        let got = match parsed {
            Err(e) => Outcome::BadRequest(e.field),
            Ok(p) => {
                let method = if get_or_head { MethodKind::GetOrHead } else { MethodKind::Other };
                match p.evaluate(method, validators.as_ref()) {
                    Decision::Proceed => Outcome::Perform,
                    Decision::NotModified => Outcome::NotModified,
                    Decision::PreconditionFailed(f) => Outcome::Failed(f),
                }
            }
        };
        prop_assert_eq!(
            got, want,
            "If-Match {:?}, If-None-Match {:?}, IMS {:?}, IUS {:?}, GET/HEAD {}, resource {:?}",
            if_match, if_none_match, ims_lines, ius_lines, get_or_head, res
        );
    }
}

/// The generators reach every outcome (a model comparison that only ever saw 400s would
/// prove little).
#[test]
fn the_generators_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (
        field(),
        field(),
        date_field(),
        date_field(),
        any::<bool>(),
        resource(),
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20_000 {
        let (im, inm, (_, ims), (_, ius), get_or_head, res) =
            strategy.new_tree(&mut runner).unwrap().current();
        let r = res.map(|(weak, o, secs, _)| Resource {
            etag: Tag {
                weak,
                opaque: o.as_bytes().to_vec(),
            },
            modified_secs: secs,
        });
        let o = rfc9110::evaluate(
            &Request {
                get_or_head,
                if_match: refs(&im),
                if_none_match: refs(&inm),
                if_modified_since: ims,
                if_unmodified_since: ius,
            },
            r.as_ref(),
        );
        seen.insert(format!("{o:?}"));
    }
    for want in [
        "BadRequest(\"If-Match\")",
        "BadRequest(\"If-None-Match\")",
        "Failed(\"If-Match\")",
        "Failed(\"If-Unmodified-Since\")",
        "Failed(\"If-None-Match\")",
        "NotModified",
        "Perform",
    ] {
        assert!(seen.contains(want), "{want} never generated: {seen:?}");
    }
}
