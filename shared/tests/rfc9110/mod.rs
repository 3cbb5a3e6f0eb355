//! A small reference model of RFC 9110 section 13 (conditional requests), written from the
//! RFC's text and not from `catalog_shared`'s code, for the property tests to compare against.
//!
//! What it models, with the section each rule comes from:
//! - 8.8.3: `entity-tag = [ weak ] opaque-tag`, `weak = %s"W/"` (case-sensitive),
//!   `opaque-tag = DQUOTE *etagc DQUOTE`, `etagc = %x21 / %x23-7E / obs-text`.
//! - 8.8.3.2: strong comparison (both strong, opaque parts equal byte for byte) and weak
//!   comparison (opaque parts equal, weakness ignored).
//! - 13.1.1 / 13.1.2: `If-Match` / `If-None-Match = "*" / #entity-tag`, with the list rule of
//!   5.6.1 (`[ element ] *( OWS "," OWS [ element ] )`: empty elements are accepted and
//!   ignored, and a field with no element at all is the empty list: no tag matches), and 5.3 (several field lines of one field are one list, joined by commas);
//!   5.5 (leading and trailing whitespace is not part of the field value).
//! - 13.1.3 / 13.1.4: `If-Modified-Since` / `If-Unmodified-Since` are ignored when the value
//!   is not one valid HTTP-date (a list of dates included), when the resource has no
//!   modification date, and when the stronger tag field is present; If-Modified-Since only
//!   for GET and HEAD.
//! - 13.2.2: the order of evaluation (steps 1 to 4 and 6; Range/If-Range, step 5, is out of
//!   scope: the catalog serves no ranges).
//!
//! Where the RFC leaves the outcome open, this project's policy (HTTP-RULES.md) is modelled,
//! each marked POLICY:
//! - a tag field that does not match the grammar is answered 400 before anything is
//!   evaluated, naming `If-Match` when both fields are malformed;
//! - `*` repeated (`*, *`, or `*` on two field lines) is `*`: not in the grammar, but
//!   unambiguous; `*` together with an entity tag is malformed.
//!
//! Date fields come to the model already read (`Some(seconds)` for one valid HTTP-date,
//! `None` for absent or ignored): the tests make the field text and know what it means.

#![allow(dead_code)]

pub mod strategies;

/// An entity tag: weakness and the bytes between the quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub weak: bool,
    pub opaque: Vec<u8>,
}

/// A well-formed `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagField {
    Star,
    List(Vec<Tag>),
}

/// 8.8.3.2.
pub fn strong_match(a: &Tag, b: &Tag) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// 8.8.3.2.
pub fn weak_match(a: &Tag, b: &Tag) -> bool {
    a.opaque == b.opaque
}

fn etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

fn ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One element of the list, `"*"` or an entity-tag, starting at `at`; returns it and the
/// position after it.
enum Element {
    Star,
    Tag(Tag),
}

fn element(v: &[u8], at: usize) -> Option<(Element, usize)> {
    if at >= v.len() {
        return None;
    }
    if v.get(at) == Some(&b'*') {
        return Some((Element::Star, at + 1));
    }
    let (weak, at) = if v[at..].starts_with(b"W/") {
        (true, at + 2)
    } else {
        (false, at)
    };
    if v.get(at) != Some(&b'"') {
        return None;
    }
    let mut end = at + 1;
    while end < v.len() && etagc(v[end]) {
        end += 1;
    }
    if v.get(end) != Some(&b'"') {
        return None;
    }
    let opaque = v[at + 1..end].to_vec();
    Some((Element::Tag(Tag { weak, opaque }), end + 1))
}

/// One entity tag and nothing else (8.8.3), as an `ETag` field value would be.
pub fn parse_entity_tag(text: &str) -> Option<Tag> {
    match element(text.as_bytes(), 0)? {
        (Element::Tag(t), end) if end == text.len() => Some(t),
        _ => None,
    }
}

/// Reads the field lines of one tag field; `None` when malformed (POLICY: 400).
pub fn parse_tag_field(lines: &[&str]) -> Option<TagField> {
    // 5.3: one list, the lines joined by a comma and a space (so no tag spans two lines:
    // a space is never inside a tag).
    let joined = lines.join(", ");
    let v = joined.as_bytes();
    // 5.5: no leading or trailing whitespace.
    let mut start = 0;
    let mut end = v.len();
    while start < end && ows(v[start]) {
        start += 1;
    }
    while end > start && ows(v[end - 1]) {
        end -= 1;
    }
    let v = &v[start..end];
    // 5.6.1, recipient form: [ element ] *( OWS "," OWS [ element ] ).
    let mut stars = 0;
    let mut tags = Vec::new();
    let mut at = 0;
    loop {
        // Here we are at the start of an optional element.
        if at < v.len() && v[at] != b',' && !ows(v[at]) {
            let (e, next) = element(v, at)?;
            match e {
                Element::Star => stars += 1,
                Element::Tag(t) => tags.push(t),
            }
            at = next;
        }
        // Then OWS, and either the end or a comma and OWS.
        while at < v.len() && ows(v[at]) {
            at += 1;
        }
        if at == v.len() {
            break;
        }
        if v[at] != b',' {
            return None;
        }
        at += 1;
        while at < v.len() && ows(v[at]) {
            at += 1;
        }
    }
    match (stars, tags.is_empty()) {
        (0, true) => Some(TagField::List(tags)), // The empty list: nothing matches.
        (0, false) => Some(TagField::List(tags)),
        (_, true) => Some(TagField::Star), // POLICY: `*` repeated is `*`.
        (_, false) => None,                // `*` is not a list member.
    }
}

/// The selected representation: its entity tag and modification time.
#[derive(Debug, Clone)]
pub struct Resource {
    pub etag: Tag,
    /// Whole seconds since the epoch: what an HTTP-date can say (5.6.7).
    pub modified_secs: u64,
}

/// One request's precondition fields, as received.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub get_or_head: bool,
    /// Field lines; none means the field is absent.
    pub if_match: Vec<&'a str>,
    pub if_none_match: Vec<&'a str>,
    /// One valid HTTP-date, in seconds; `None` when absent or to be ignored.
    pub if_modified_since: Option<u64>,
    pub if_unmodified_since: Option<u64>,
}

/// What the server answers, before performing the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// POLICY: a malformed tag field, named.
    BadRequest(&'static str),
    /// 412, naming the field whose condition was false.
    Failed(&'static str),
    NotModified,
    Perform,
}

fn read(lines: &[&str], name: &'static str) -> Result<Option<TagField>, Outcome> {
    if lines.is_empty() {
        return Ok(None);
    }
    parse_tag_field(lines)
        .map(Some)
        .ok_or(Outcome::BadRequest(name))
}

/// RFC 9110 13.2.2, for an origin server.
pub fn evaluate(req: &Request, resource: Option<&Resource>) -> Outcome {
    let if_match = match read(&req.if_match, "If-Match") {
        Ok(v) => v,
        Err(o) => return o,
    };
    let if_none_match = match read(&req.if_none_match, "If-None-Match") {
        Ok(v) => v,
        Err(o) => return o,
    };
    // Step 1: If-Match (13.1.1).
    if let Some(field) = &if_match {
        let holds = match (field, resource) {
            (_, None) => false,
            (TagField::Star, Some(_)) => true,
            (TagField::List(tags), Some(r)) => tags.iter().any(|t| strong_match(t, &r.etag)),
        };
        if !holds {
            return Outcome::Failed("If-Match");
        }
    }
    // Step 2: If-Unmodified-Since (13.1.4), only without If-Match, only with a
    // modification date: false when the representation was modified after the date.
    if if_match.is_none()
        && let (Some(date), Some(r)) = (req.if_unmodified_since, resource)
        && r.modified_secs > date
    {
        return Outcome::Failed("If-Unmodified-Since");
    }
    // Step 3: If-None-Match (13.1.2): false when `*` and a representation exists, or a
    // listed tag matches weakly.
    if let Some(field) = &if_none_match {
        let is_false = match (field, resource) {
            (_, None) => false,
            (TagField::Star, Some(_)) => true,
            (TagField::List(tags), Some(r)) => tags.iter().any(|t| weak_match(t, &r.etag)),
        };
        if is_false {
            return if req.get_or_head {
                Outcome::NotModified
            } else {
                Outcome::Failed("If-None-Match")
            };
        }
    }
    // Step 4: If-Modified-Since (13.1.3), GET/HEAD only, only without If-None-Match:
    // false (304) when not modified since the date.
    if req.get_or_head
        && if_none_match.is_none()
        && let (Some(date), Some(r)) = (req.if_modified_since, resource)
        && r.modified_secs <= date
    {
        return Outcome::NotModified;
    }
    // Step 6.
    Outcome::Perform
}

#[test]
fn the_model_reads_the_rfc_examples() {
    // 8.8.3.2's table.
    let t = |w: bool, o: &str| Tag {
        weak: w,
        opaque: o.as_bytes().to_vec(),
    };
    assert!(!strong_match(&t(true, "1"), &t(true, "1")));
    assert!(weak_match(&t(true, "1"), &t(true, "1")));
    assert!(!strong_match(&t(true, "1"), &t(true, "2")));
    assert!(!weak_match(&t(true, "1"), &t(true, "2")));
    assert!(!strong_match(&t(true, "1"), &t(false, "1")));
    assert!(weak_match(&t(true, "1"), &t(false, "1")));
    assert!(strong_match(&t(false, "1"), &t(false, "1")));
    // 8.8.3's and 13.1.1's examples.
    for ok in [
        "\"xyzzy\"",
        "W/\"xyzzy\"",
        "\"\"",
        "\"xyzzy\", \"r2d2xxxx\", \"c3piozzzz\"",
        "*",
    ] {
        assert!(parse_tag_field(&[ok]).is_some(), "{ok}");
    }
    for bad in ["xyzzy", "w/\"x\"", "\"a b\"", "*, \"a\"", "\"a\" \"b\""] {
        assert!(parse_tag_field(&[bad]).is_none(), "{bad}");
    }
    // No element at all is the empty list (5.6.1): in it, no tag matches anything.
    for empty in ["", " , "] {
        assert_eq!(
            parse_tag_field(&[empty]),
            Some(TagField::List(vec![])),
            "{empty:?}"
        );
    }
    assert_eq!(
        parse_tag_field(&["\"a\",,", " ", "W/\"b\""]),
        Some(TagField::List(vec![t(false, "a"), t(true, "b")]))
    );
}
