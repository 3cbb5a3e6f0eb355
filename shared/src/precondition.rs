//! Evaluation of conditional requests (RFC 9110 section 13.2.2) as a pure function from
//! the request's precondition fields and the resource's current validators to a decision.
//!
//! The caller answers 404, 410, 405 and 415 before asking: preconditions only apply to a
//! request that would otherwise succeed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::etag::{EntityTag, EtagCondition, EtagError};

/// The four precondition fields of one request, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<EtagCondition>,
    pub if_none_match: Option<EtagCondition>,
    /// `None` when absent or not a valid HTTP-date (invalid dates are ignored).
    pub if_modified_since: Option<SystemTime>,
    /// `None` when absent or not a valid HTTP-date.
    pub if_unmodified_since: Option<SystemTime>,
}

/// A precondition field that could not be understood; answered with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct PreconditionError {
    /// The header name, e.g. `If-Match`.
    pub field: &'static str,
    pub error: EtagError,
}

/// The validators of the resource's current representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub etag: EntityTag,
    pub last_modified: SystemTime,
}

/// What the server must do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// All preconditions hold (or there were none): perform the method.
    Proceed,
    /// 304 Not Modified (GET or HEAD only).
    NotModified,
    /// 412 Precondition Failed, naming the field that failed.
    PreconditionFailed(&'static str),
}

/// Whether the method is GET or HEAD, which changes the outcome of `If-None-Match` and
/// whether `If-Modified-Since` is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    GetOrHead,
    Other,
}

fn parse_date(lines: &[&str]) -> Option<SystemTime> {
    // A date field sent more than once is not a valid date: ignore it, as an invalid date.
    match lines {
        [one] => httpdate::parse_http_date(one.trim()).ok(),
        _ => None,
    }
}

/// Truncates to whole seconds: HTTP dates have one-second resolution.
pub fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

impl Preconditions {
    /// Reads the fields through `lines(name)`, which returns every line of that header.
    ///
    /// ```
    /// use catalog_shared::precondition::Preconditions;
    /// let p = Preconditions::from_fields(|name| match name {
    ///     "If-Match" => vec!["\"v2\""],
    ///     "If-Modified-Since" => vec!["not a date"],
    ///     _ => vec![],
    /// }).unwrap();
    /// assert!(p.if_match.is_some());
    /// assert!(p.if_modified_since.is_none());
    /// ```
    pub fn from_fields<'a>(
        lines: impl Fn(&str) -> Vec<&'a str>,
    ) -> Result<Self, PreconditionError> {
        let tags = |field: &'static str| -> Result<Option<EtagCondition>, PreconditionError> {
            let values = lines(field);
            if values.is_empty() {
                return Ok(None);
            }
            EtagCondition::parse_lines(values)
                .map(Some)
                .map_err(|error| PreconditionError { field, error })
        };
        Ok(Preconditions {
            if_match: tags("If-Match")?,
            if_none_match: tags("If-None-Match")?,
            if_modified_since: parse_date(&lines("If-Modified-Since")),
            if_unmodified_since: parse_date(&lines("If-Unmodified-Since")),
        })
    }

    /// Evaluates in the order of RFC 9110 section 13.2.2. `current` is `None` when the
    /// resource has no current representation.
    ///
    /// ```
    /// use catalog_shared::etag::{EntityTag, EtagCondition};
    /// use catalog_shared::precondition::*;
    /// use std::time::SystemTime;
    /// let now = Validators { etag: EntityTag::strong("v2"), last_modified: SystemTime::now() };
    /// let stale = Preconditions {
    ///     if_match: Some(EtagCondition::Tags(vec![EntityTag::strong("v1")])),
    ///     ..Default::default()
    /// };
    /// assert_eq!(stale.evaluate(MethodKind::Other, Some(&now)), Decision::PreconditionFailed("If-Match"));
    /// ```
    pub fn evaluate(&self, method: MethodKind, current: Option<&Validators>) -> Decision {
        let last_modified = current.map(|c| truncate_to_seconds(c.last_modified));
        // Step 1 and 2.
        if let Some(condition) = &self.if_match {
            let holds = current.is_some_and(|c| condition.matches_strong(&c.etag));
            if !holds {
                return Decision::PreconditionFailed("If-Match");
            }
        } else if let (Some(date), Some(lm)) = (self.if_unmodified_since, last_modified)
            && lm > date
        {
            return Decision::PreconditionFailed("If-Unmodified-Since");
        }
        // Step 3 and 4.
        if let Some(condition) = &self.if_none_match {
            let any_match = current.is_some_and(|c| condition.matches_weak(&c.etag));
            if any_match {
                return match method {
                    MethodKind::GetOrHead => Decision::NotModified,
                    MethodKind::Other => Decision::PreconditionFailed("If-None-Match"),
                };
            }
        } else if method == MethodKind::GetOrHead
            && let (Some(date), Some(lm)) = (self.if_modified_since, last_modified)
            && lm <= date
        {
            return Decision::NotModified;
        }
        Decision::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn current() -> Validators {
        Validators {
            etag: EntityTag::strong("cur"),
            // Sub-second part must not matter.
            last_modified: at(1000) + Duration::from_millis(700),
        }
    }

    fn tags(list: &[&str]) -> Option<EtagCondition> {
        Some(EtagCondition::parse_lines(list.iter().copied()).unwrap())
    }

    use Decision::*;
    use MethodKind::*;

    #[test]
    fn no_preconditions_proceeds() {
        let p = Preconditions::default();
        assert_eq!(p.evaluate(Other, Some(&current())), Proceed);
        assert_eq!(p.evaluate(GetOrHead, None), Proceed);
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        let cur = current();
        let cases = [
            (&["\"cur\""][..], Proceed),
            (&["\"old\", \"cur\""][..], Proceed),
            (&["W/\"cur\""][..], PreconditionFailed("If-Match")),
            (&["\"old\""][..], PreconditionFailed("If-Match")),
            (&["\"CUR\""][..], PreconditionFailed("If-Match")),
            (&["*"][..], Proceed),
        ];
        for (list, want) in cases {
            let p = Preconditions {
                if_match: tags(list),
                ..Default::default()
            };
            assert_eq!(p.evaluate(Other, Some(&cur)), want, "{list:?}");
            assert_eq!(p.evaluate(GetOrHead, Some(&cur)), want, "GET {list:?}");
        }
    }

    #[test]
    fn if_match_star_fails_without_a_representation() {
        let p = Preconditions {
            if_match: tags(&["*"]),
            ..Default::default()
        };
        assert_eq!(p.evaluate(Other, None), PreconditionFailed("If-Match"));
    }

    #[test]
    fn if_unmodified_since_only_without_if_match() {
        let cur = current();
        let before = Preconditions {
            if_unmodified_since: Some(at(999)),
            ..Default::default()
        };
        assert_eq!(
            before.evaluate(Other, Some(&cur)),
            PreconditionFailed("If-Unmodified-Since")
        );
        let same_second = Preconditions {
            if_unmodified_since: Some(at(1000)),
            ..Default::default()
        };
        assert_eq!(same_second.evaluate(Other, Some(&cur)), Proceed);
        let with_match = Preconditions {
            if_match: tags(&["\"cur\""]),
            if_unmodified_since: Some(at(1)),
            ..Default::default()
        };
        assert_eq!(with_match.evaluate(Other, Some(&cur)), Proceed);
    }

    #[test]
    fn if_none_match_is_weak_and_depends_on_method() {
        let cur = current();
        for list in [
            &["W/\"cur\""][..],
            &["\"cur\""],
            &["\"x\", \"cur\""],
            &["*"],
        ] {
            let p = Preconditions {
                if_none_match: tags(list),
                ..Default::default()
            };
            assert_eq!(p.evaluate(GetOrHead, Some(&cur)), NotModified, "{list:?}");
            assert_eq!(
                p.evaluate(Other, Some(&cur)),
                PreconditionFailed("If-None-Match"),
                "{list:?}"
            );
        }
        let miss = Preconditions {
            if_none_match: tags(&["\"x\""]),
            ..Default::default()
        };
        assert_eq!(miss.evaluate(GetOrHead, Some(&cur)), Proceed);
        let star = Preconditions {
            if_none_match: tags(&["*"]),
            ..Default::default()
        };
        assert_eq!(star.evaluate(Other, None), Proceed);
    }

    #[test]
    fn if_modified_since_only_for_get_and_without_if_none_match() {
        let cur = current();
        let p = Preconditions {
            if_modified_since: Some(at(1000)),
            ..Default::default()
        };
        assert_eq!(p.evaluate(GetOrHead, Some(&cur)), NotModified);
        assert_eq!(p.evaluate(Other, Some(&cur)), Proceed);
        let older = Preconditions {
            if_modified_since: Some(at(999)),
            ..Default::default()
        };
        assert_eq!(older.evaluate(GetOrHead, Some(&cur)), Proceed);
        let with_inm = Preconditions {
            if_none_match: tags(&["\"other\""]),
            if_modified_since: Some(at(5000)),
            ..Default::default()
        };
        assert_eq!(with_inm.evaluate(GetOrHead, Some(&cur)), Proceed);
    }

    #[test]
    fn if_match_is_checked_before_if_none_match() {
        let p = Preconditions {
            if_match: tags(&["\"old\""]),
            if_none_match: tags(&["\"cur\""]),
            ..Default::default()
        };
        assert_eq!(
            p.evaluate(GetOrHead, Some(&current())),
            PreconditionFailed("If-Match")
        );
    }

    #[test]
    fn fields_are_parsed_strictly_and_dates_leniently() {
        let err = Preconditions::from_fields(|n| {
            if n == "If-None-Match" {
                vec!["\"a\", junk"]
            } else {
                vec![]
            }
        })
        .unwrap_err();
        assert_eq!(err.field, "If-None-Match");
        let p = Preconditions::from_fields(|n| match n {
            "If-Match" => vec!["\"a\"", "\"b\""],
            "If-Unmodified-Since" => vec!["Sun, 06 Nov 1994 08:49:37 GMT"],
            "If-Modified-Since" => vec!["yesterday"],
            _ => vec![],
        })
        .unwrap();
        assert_eq!(p.if_match, tags(&["\"a\", \"b\""]));
        assert_eq!(p.if_unmodified_since, Some(at(784111777)));
        assert_eq!(p.if_modified_since, None);
    }

    fn cond() -> impl Strategy<Value = Option<EtagCondition>> {
        prop_oneof![
            Just(None),
            Just(Some(EtagCondition::Any)),
            proptest::collection::vec(
                (
                    any::<bool>(),
                    prop_oneof![Just("cur"), Just("old"), Just("x")]
                ),
                1..4
            )
            .prop_map(|v| Some(EtagCondition::Tags(
                v.into_iter()
                    .map(|(w, o)| if w {
                        EntityTag::weak(o)
                    } else {
                        EntityTag::strong(o)
                    })
                    .collect()
            )))
        ]
    }

    fn date() -> impl Strategy<Value = Option<SystemTime>> {
        prop_oneof![Just(None), (990u64..1010).prop_map(|s| Some(at(s)))]
    }

    proptest! {
        /// The decision agrees with a direct reading of the RFC's steps.
        #[test]
        fn matches_the_rfc_reading(im in cond(), inm in cond(), ims in date(), ius in date(), get in any::<bool>(), exists in any::<bool>()) {
            let cur = current();
            let current = exists.then_some(&cur);
            let method = if get { GetOrHead } else { Other };
            let p = Preconditions { if_match: im.clone(), if_none_match: inm.clone(), if_modified_since: ims, if_unmodified_since: ius };
            let got = p.evaluate(method, current);
            // A write can never proceed when If-Match names only other or weak tags.
            if let (Some(EtagCondition::Tags(t)), Some(c)) = (&im, current)
                && !t.iter().any(|t| !t.weak && t.opaque() == c.etag.opaque())
            {
                prop_assert_eq!(got, PreconditionFailed("If-Match"));
            }
            // 304 only ever for GET/HEAD.
            if !get { prop_assert_ne!(got, NotModified); }
            // Without any field, always proceed.
            if im.is_none() && inm.is_none() && ims.is_none() && ius.is_none() {
                prop_assert_eq!(got, Proceed);
            }
            // Dates never matter when both tag fields are present.
            if im.is_some() && inm.is_some() {
                let no_dates = Preconditions { if_modified_since: None, if_unmodified_since: None, ..p.clone() };
                prop_assert_eq!(got, no_dates.evaluate(method, current));
            }
        }
    }
}
