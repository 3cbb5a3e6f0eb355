//! Entity tags (RFC 9110 section 8.8.3): strict parsing of single tags and of the
//! `If-Match` / `If-None-Match` field values, and the strong and weak comparison functions.
//!
//! Parsing is strict on purpose: a malformed tag must never pass silently, because a
//! precondition that is skipped removes the very protection the client asked for.

use std::fmt;

/// One entity tag: an opaque string, strong or weak.
///
/// ```
/// use catalog_shared::etag::EntityTag;
/// let tag: EntityTag = "W/\"v1\"".parse().unwrap();
/// assert!(tag.weak);
/// assert_eq!(tag.opaque(), "v1");
/// assert_eq!(tag.to_string(), "W/\"v1\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    /// `true` for `W/"..."`.
    pub weak: bool,
    opaque: String,
}

/// Why a field value is not a valid entity tag or entity-tag list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtagError {
    #[error("the value is empty; send a quoted entity tag such as \"abc\" or *")]
    Empty,
    #[error("an entity tag must be in double quotes, like \"abc\" (got `{0}`)")]
    NotQuoted(String),
    #[error("entity tag `{0}` has no closing double quote")]
    Unterminated(String),
    #[error(
        "entity tag `{0}` contains a character not allowed inside a tag (space, control or quote)"
    )]
    BadCharacter(String),
    #[error("the weak prefix is case-sensitive and must be W/ (got `{0}`)")]
    BadWeakPrefix(String),
    #[error("unexpected text `{0}` after an entity tag; separate tags with commas")]
    TrailingText(String),
    #[error("* cannot be combined with entity tags in one list")]
    StarInList,
}

/// True for the bytes allowed inside the quotes: `%x21 / %x23-7E / obs-text`.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

impl EntityTag {
    /// A strong tag. Panics if `opaque` has a character not allowed in a tag: use it only
    /// with server-minted values.
    pub fn strong(opaque: impl Into<String>) -> Self {
        let opaque = opaque.into();
        assert!(
            opaque.bytes().all(is_etagc),
            "invalid opaque tag {opaque:?}"
        );
        EntityTag {
            weak: false,
            opaque,
        }
    }

    /// A weak tag, with the same restriction as [`EntityTag::strong`].
    pub fn weak(opaque: impl Into<String>) -> Self {
        let mut tag = Self::strong(opaque);
        tag.weak = true;
        tag
    }

    /// The characters between the quotes.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// Strong comparison: both tags are strong and their opaque parts are byte-for-byte equal.
    ///
    /// ```
    /// use catalog_shared::etag::EntityTag;
    /// assert!(EntityTag::strong("a").strong_eq(&EntityTag::strong("a")));
    /// assert!(!EntityTag::weak("a").strong_eq(&EntityTag::strong("a")));
    /// ```
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the opaque parts are byte-for-byte equal, weakness aside.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// Parses one tag at the start of `s`, returning it and the rest of the input.
    fn parse_prefix(s: &str) -> Result<(EntityTag, &str), EtagError> {
        let (weak, body) = if let Some(rest) = s.strip_prefix("W/") {
            (true, rest)
        } else if s.starts_with("w/") {
            return Err(EtagError::BadWeakPrefix(s.to_string()));
        } else {
            (false, s)
        };
        let Some(inner) = body.strip_prefix('"') else {
            return Err(EtagError::NotQuoted(s.to_string()));
        };
        let bytes = inner.as_bytes();
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' {
                end = Some(i);
                break;
            }
            if !is_etagc(b) {
                return Err(EtagError::BadCharacter(s.to_string()));
            }
        }
        let Some(end) = end else {
            return Err(EtagError::Unterminated(s.to_string()));
        };
        let tag = EntityTag {
            weak,
            opaque: inner[..end].to_string(),
        };
        Ok((tag, &inner[end + 1..]))
    }
}

impl std::str::FromStr for EntityTag {
    type Err = EtagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(EtagError::Empty);
        }
        let (tag, rest) = EntityTag::parse_prefix(s)?;
        if !rest.is_empty() {
            return Err(EtagError::TrailingText(rest.to_string()));
        }
        Ok(tag)
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            write!(f, "W/\"{}\"", self.opaque)
        } else {
            write!(f, "\"{}\"", self.opaque)
        }
    }
}

/// The value of an `If-Match` or `If-None-Match` field: `*` or a list of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any current representation.
    Any,
    /// One or more entity tags.
    Tags(Vec<EntityTag>),
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl EtagCondition {
    /// Parses every line of one field (several lines of one field form one list).
    ///
    /// Empty list members (`"a", , "b"`) are allowed as RFC 9110 section 5.6.1 asks, and a
    /// field with no member at all (an empty value, or only commas) is the empty list the
    /// `#entity-tag` grammar admits: no tag in it matches anything, so `If-Match` with it
    /// fails (412) and `If-None-Match` with it holds. A malformed member, or `*` next to a
    /// tag, is an error.
    ///
    /// ```
    /// use catalog_shared::etag::{EtagCondition, EntityTag};
    /// let c = EtagCondition::parse_lines(["\"a\", W/\"b\""]).unwrap();
    /// assert_eq!(c, EtagCondition::Tags(vec![EntityTag::strong("a"), EntityTag::weak("b")]));
    /// assert!(EtagCondition::parse_lines(["*, \"a\""]).is_err());
    /// assert!(EtagCondition::parse_lines(["garbage"]).is_err());
    /// assert_eq!(EtagCondition::parse_lines([""]), Ok(EtagCondition::Tags(vec![])));
    /// ```
    pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Self, EtagError> {
        let mut tags = Vec::new();
        let mut star = false;
        for line in lines {
            let mut rest = line.trim_matches(is_ows);
            loop {
                rest = rest.trim_start_matches(|c| is_ows(c) || c == ',');
                if rest.is_empty() {
                    break;
                }
                if let Some(after) = rest.strip_prefix('*') {
                    star = true;
                    rest = after;
                } else {
                    let (tag, after) = EntityTag::parse_prefix(rest)?;
                    tags.push(tag);
                    rest = after;
                }
                let trimmed = rest.trim_start_matches(is_ows);
                if !trimmed.is_empty() && !trimmed.starts_with(',') {
                    return Err(EtagError::TrailingText(trimmed.to_string()));
                }
                rest = trimmed;
            }
        }
        match (star, tags.is_empty()) {
            (true, true) => Ok(EtagCondition::Any),
            (true, false) => Err(EtagError::StarInList),
            (false, _) => Ok(EtagCondition::Tags(tags)),
        }
    }

    /// `If-Match` semantics: `*` matches any existing representation, a list matches if any
    /// member is strongly equal to `current`.
    pub fn matches_strong(&self, current: &EntityTag) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags.iter().any(|t| t.strong_eq(current)),
        }
    }

    /// `If-None-Match` semantics: true if `*`, or any member is weakly equal to `current`.
    pub fn matches_weak(&self, current: &EntityTag) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags.iter().any(|t| t.weak_eq(current)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_strong_weak_and_empty() {
        assert_eq!("\"abc\"".parse(), Ok(EntityTag::strong("abc")));
        assert_eq!("W/\"abc\"".parse(), Ok(EntityTag::weak("abc")));
        assert_eq!("\"\"".parse(), Ok(EntityTag::strong("")));
        assert_eq!("\"a,b\"".parse(), Ok(EntityTag::strong("a,b")));
    }

    #[test]
    fn rejects_malformed_tags() {
        for bad in [
            "",
            "abc",
            "\"abc",
            "\"sp ace\"",
            "w/\"abc\"",
            "\"a\"b",
            "W/abc",
            "\"a\"\"",
            "'a'",
            "\"tab\there\"",
        ] {
            assert!(
                bad.parse::<EntityTag>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn lists_with_whitespace_and_empty_members() {
        let c = EtagCondition::parse_lines([" \"a\" ,\t,W/\"b\" ", "\"c\""]).unwrap();
        assert_eq!(
            c,
            EtagCondition::Tags(vec![
                EntityTag::strong("a"),
                EntityTag::weak("b"),
                EntityTag::strong("c")
            ])
        );
        assert_eq!(EtagCondition::parse_lines(["*"]), Ok(EtagCondition::Any));
        assert_eq!(EtagCondition::parse_lines([" * "]), Ok(EtagCondition::Any));
    }

    #[test]
    fn rejects_malformed_lists() {
        for bad in [
            vec!["*, \"a\""],
            vec!["\"a\", *"],
            vec!["*", "\"a\""],
            vec!["\"a\" \"b\""],
            vec!["\"a\", garbage"],
            vec!["\"sp ace\""],
            vec!["**"],
        ] {
            assert!(EtagCondition::parse_lines(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn comparison_table_from_rfc_9110() {
        // RFC 9110 section 8.8.3.2, the example table.
        let w1 = EntityTag::weak("1");
        let w2 = EntityTag::weak("2");
        let s1 = EntityTag::strong("1");
        assert!(!w1.strong_eq(&w1));
        assert!(w1.weak_eq(&w1));
        assert!(!w1.strong_eq(&w2));
        assert!(!w1.weak_eq(&w2));
        assert!(!w1.strong_eq(&s1));
        assert!(w1.weak_eq(&s1));
        assert!(s1.strong_eq(&s1));
        assert!(s1.weak_eq(&s1));
    }

    fn opaque() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![Just(0x21u8), 0x23u8..=0x7e], 0..20)
            .prop_map(|b| String::from_utf8(b).unwrap())
    }

    fn tag() -> impl Strategy<Value = EntityTag> {
        (any::<bool>(), opaque()).prop_map(|(weak, o)| EntityTag { weak, opaque: o })
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(t in tag()) {
            prop_assert_eq!(t.to_string().parse::<EntityTag>(), Ok(t));
        }

        #[test]
        fn any_list_round_trips(tags in proptest::collection::vec(tag(), 1..6), sep in "[ \t]{0,2},[ \t]{0,2}") {
            let line = tags.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(&sep);
            prop_assert_eq!(EtagCondition::parse_lines([line.as_str()]), Ok(EtagCondition::Tags(tags)));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<EntityTag>();
            let _ = EtagCondition::parse_lines([s.as_str()]);
        }

        #[test]
        fn strong_implies_weak_and_weak_never_strong(a in tag(), b in tag()) {
            if a.strong_eq(&b) { prop_assert!(a.weak_eq(&b)); }
            if a.weak || b.weak { prop_assert!(!a.strong_eq(&b)); }
            prop_assert_eq!(a.weak_eq(&b), b.weak_eq(&a));
            prop_assert_eq!(a.strong_eq(&b), b.strong_eq(&a));
        }

        #[test]
        fn a_space_inside_quotes_is_always_rejected(a in opaque(), b in opaque()) {
            let s = format!("\"{a} {b}\"");
            prop_assert!(s.parse::<EntityTag>().is_err());
            prop_assert!(EtagCondition::parse_lines([s.as_str()]).is_err());
        }
    }
}
