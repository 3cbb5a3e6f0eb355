//! Text that wraps into a few rows without cutting a sentence: a person reads whole
//! sentences or none, never one that ends on a row that is not shown.

use ratatui::widgets::{Paragraph, Wrap};

/// How many rows `text` takes wrapped at `width` (as a wrapping, trimming `Paragraph`
/// draws it).
pub fn rows(text: &str, width: u16) -> u16 {
    let count = Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .line_count(width.max(1));
    count.min(u16::MAX as usize) as u16
}

/// The sentences of `text`: each ends with `.`, `!` or `?` followed by a space (or the
/// end), so "$300.00" and "If-Match: \"a…\"" stay inside theirs.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if matches!(c, '.' | '!' | '?') && (end == text.len() || bytes[end] == b' ') {
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The first sentences of `text` that fit in `max_rows` rows of `width`, whole; `None`
/// when not even the first one fits.
pub fn whole_sentences(text: &str, width: u16, max_rows: u16) -> Option<String> {
    let mut shown: Option<String> = None;
    for sentence in sentences(text) {
        let candidate = match &shown {
            Some(s) => format!("{s} {sentence}"),
            None => sentence.to_string(),
        };
        if rows(&candidate, width) > max_rows {
            break;
        }
        shown = Some(candidate);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_a_stop_and_a_space() {
        assert_eq!(
            sentences("Saved v2 at $300.00. Press m to merge: \"a…\" wins! Done"),
            vec![
                "Saved v2 at $300.00.",
                "Press m to merge: \"a…\" wins!",
                "Done"
            ]
        );
    }

    #[test]
    fn only_whole_sentences_that_fit_are_kept() {
        let text = "One two three. Four five six seven eight nine ten. Eleven.";
        assert_eq!(rows(text, 20), 3);
        assert_eq!(
            whole_sentences(text, 20, 1).as_deref(),
            Some("One two three.")
        );
        assert_eq!(
            whole_sentences(text, 20, 3).as_deref(),
            Some(text),
            "all of it when it fits"
        );
        assert_eq!(
            whole_sentences("A sentence too long for one row.", 10, 1),
            None
        );
    }
}
