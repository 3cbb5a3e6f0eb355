//! The status bar's key hints. Each screen says which keys it has now (its `keys()`), and
//! the status bar shows the short ones and the `?` help all of them, so neither can drift
//! from the keys. Nothing here knows a screen.

pub use crate::widgets::keys::{Hint, h};

/// The keys of a yes-or-no question.
pub const CONFIRM: &[Hint] = &[h("Enter/y", "yes", true), h("Esc/n", "no", true)];

/// The keys of the help itself.
pub const HELP: &[Hint] = &[h("Esc/?", "close help", true)];

/// The status bar's hint line in at most `width` columns: hints in table order while they
/// fit, always ending with the way to the full help, so a narrow terminal drops the less
/// important keys instead of cutting a word.
pub fn bar_within(hints: &[Hint], width: usize) -> String {
    let all: Vec<String> = hints
        .iter()
        .filter(|h| h.bar)
        .map(|h| format!("{} {}", h.keys, h.does))
        .collect();
    let help = all
        .iter()
        .find(|h| h.contains(" help") || h.ends_with("close help"))
        .cloned();
    let fit = |hints: &[String]| {
        let mut out: Vec<String> = Vec::new();
        // Items are joined by two spaces: each one after the first costs its width + 2.
        let mut used = help.as_ref().map_or(0, |h| h.chars().count());
        for h in hints {
            if Some(h) == help.as_ref() {
                continue;
            }
            let w = h.chars().count() + 2;
            if used + w > width {
                break;
            }
            used += w;
            out.push(h.clone());
        }
        out.extend(help.clone());
        out
    };
    let full = fit(&all);
    if full.len() == all.len() {
        return full.join("  ");
    }
    // Too narrow for all of them: each key with the first word of what it does.
    let short: Vec<String> = all
        .iter()
        .map(|h| {
            let mut words = h.split(' ');
            match (words.next(), words.next()) {
                (Some(k), Some(w)) if Some(h) != help.as_ref() => format!("{k} {w}"),
                _ => h.clone(),
            }
        })
        .collect();
    fit(&short).join("  ")
}
