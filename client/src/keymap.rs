//! The keys of every screen, in one table: the status bar shows the short ones and the
//! `?` help shows them all, so neither can drift from the other.

/// Which set of keys is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Catalog,
    Filter,
    Editor,
    /// The editor with `--no-if-match` (the lost-update demo): F8 works there.
    EditorUnsafe,
    /// The editor of a product not yet created: Ctrl-S POSTs, with no If-Match.
    NewProduct,
    Conflict,
    ConflictPicking,
    ConflictDeleted,
    History,
    Drafts,
    Confirm,
    Help,
}

pub use crate::widgets::keys::{Hint, h};

pub fn hints(keys: Keys) -> &'static [Hint] {
    match keys {
        Keys::Catalog => crate::screens::catalog::KEYS,
        Keys::Filter => crate::screens::catalog::KEYS_FILTER,
        Keys::NewProduct => crate::screens::editor::KEYS_NEW_PRODUCT,
        Keys::EditorUnsafe => crate::screens::editor::KEYS_UNSAFE,
        Keys::Editor => crate::screens::editor::KEYS,
        Keys::Conflict => crate::screens::conflict::KEYS,
        Keys::ConflictPicking => crate::screens::conflict::KEYS_PICKING,
        Keys::ConflictDeleted => crate::screens::conflict::KEYS_DELETED,
        Keys::History => crate::screens::history::KEYS,
        Keys::Drafts => crate::screens::drafts::KEYS,
        Keys::Confirm => {
            const L: &[Hint] = &[h("Enter/y", "yes", true), h("Esc/n", "no", true)];
            L
        }
        Keys::Help => {
            const L: &[Hint] = &[h("Esc/?", "close help", true)];
            L
        }
    }
}

/// The status bar's hint line.
pub fn bar(keys: Keys) -> String {
    hints(keys)
        .iter()
        .filter(|h| h.bar)
        .map(|h| format!("{} {}", h.keys, h.does))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The status bar's hint line in at most `width` columns: hints in table order while they
/// fit, always ending with the way to the full help, so a narrow terminal drops the less
/// important keys instead of cutting a word.
pub fn bar_within(keys: Keys, width: usize) -> String {
    let all: Vec<String> = hints(keys)
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
