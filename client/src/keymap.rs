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

/// One key binding as a person reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub keys: &'static str,
    pub does: &'static str,
    /// Shown in the status bar (the rest only in help).
    pub bar: bool,
}

const fn h(keys: &'static str, does: &'static str, bar: bool) -> Hint {
    Hint { keys, does, bar }
}

pub fn hints(keys: Keys) -> &'static [Hint] {
    match keys {
        Keys::Catalog => {
            const L: &[Hint] = &[
                h("↑↓/jk", "move", false),
                h("PgUp/PgDn", "page", false),
                h("g/G", "first/last", false),
                h("Enter/e", "edit", true),
                h("a", "add a product", true),
                h("d", "delete", true),
                h("h", "history", true),
                h("D", "drafts", false),
                h("l", "log", true),
                h("/", "filter", true),
                h("n/N", "next/previous match", false),
                h("s", "sort by the next column", false),
                h("S", "reverse the sort", false),
                h("?", "help", true),
                h("q", "quit", true),
                h("Ctrl-C", "quit now", false),
            ];
            L
        }
        Keys::Filter => {
            const L: &[Hint] = &[
                h("type", "filter by sku, name or status", true),
                h("Enter", "keep filter", true),
                h("Esc", "clear filter", true),
            ];
            L
        }
        Keys::NewProduct => {
            const L: &[Hint] = &[
                h("Tab/S-Tab", "next/prev field", true),
                h("Ctrl-S", "create (POST, no If-Match)", true),
                h("↑↓", "cycle status (status field)", false),
                h("Home/End", "start/end of line", false),
                h("Ctrl-K", "delete to end of line", false),
                h("Ctrl-L", "log", true),
                h("F1", "help", true),
                h("Esc", "back", true),
                h(
                    "Ctrl-C",
                    "quit now (an unsaved edit goes to a draft file)",
                    false,
                ),
            ];
            L
        }
        Keys::EditorUnsafe => {
            const L: &[Hint] = &[
                h("Tab/S-Tab", "next/prev field", true),
                h("Ctrl-S", "save WITHOUT If-Match", true),
                h("F8", "save WITHOUT If-Match (lost-update demo)", false),
                h("↑↓", "cycle status (status field)", false),
                h("Home/End", "start/end of line", false),
                h("Ctrl-K", "delete to end of line", false),
                h("Ctrl-L", "log", true),
                h("F1", "help", true),
                h("Esc", "back", true),
                h(
                    "Ctrl-C",
                    "quit now (an unsaved edit goes to a draft file)",
                    false,
                ),
            ];
            L
        }
        Keys::Editor => {
            const L: &[Hint] = &[
                h("Tab/S-Tab", "next/prev field", true),
                h("Ctrl-S", "save (If-Match)", true),
                h("↑↓", "cycle status (status field)", false),
                h("Home/End", "start/end of line", false),
                h("Ctrl-K", "delete to end of line", false),
                h("Ctrl-L", "log", true),
                h("F1", "help", true),
                h("Esc", "back", true),
                h(
                    "Ctrl-C",
                    "quit now (an unsaved edit goes to a draft file)",
                    false,
                ),
            ];
            L
        }
        Keys::Conflict => {
            const L: &[Hint] = &[
                h("r", "reload theirs", true),
                h("o", "overwrite with mine", true),
                h("m", "merge", true),
                h("↑↓/jk", "move", false),
                h("l", "log", false),
                h("?", "help", true),
                h("Esc", "back to my edit", true),
                h("q", "quit (asks; your edit goes to a draft file)", false),
            ];
            L
        }
        Keys::ConflictPicking => {
            const L: &[Hint] = &[
                h("←/h", "pick mine", true),
                h("→/l", "pick theirs", true),
                h("A", "all mine", true),
                h("T", "all theirs", true),
                h("↑↓/jk", "move", true),
                h("Ctrl-S", "save merge", true),
                h("?", "help", false),
                h("Esc", "stop merging", true),
            ];
            L
        }
        Keys::ConflictDeleted => {
            const L: &[Hint] = &[
                h("c", "recreate from mine", true),
                h("x", "discard my edit", true),
                h("?", "help", false),
                h("Esc", "back to my edit", true),
                h("q", "quit (asks; your edit goes to a draft file)", false),
            ];
            L
        }
        Keys::History => {
            const L: &[Hint] = &[
                h("↑↓/jk", "choose version", true),
                h("l", "log", true),
                h("?", "help", false),
                h("Esc", "back", true),
            ];
            L
        }
        Keys::Drafts => {
            const L: &[Hint] = &[
                h("↑↓/jk", "choose draft", true),
                h("Enter", "open in the editor", true),
                h("x", "discard draft", true),
                h("?", "help", false),
                h("Esc", "back", true),
            ];
            L
        }
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
        let mut used = help.as_ref().map_or(0, |h| h.chars().count() + 2);
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
