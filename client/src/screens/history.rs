//! The history of one product: every version with its ETag, who and when, and the
//! selected version's changes against the one before.

use std::collections::HashMap;

use catalog_shared::product::Field;
use catalog_shared::product::Product;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use crate::net::{SavePurpose, VersionInfo};
use crate::screens::clip;
use crate::screens::editor::{edit_text, text_area};
use crate::state::State;
use crate::state::{Command, Screen};
use crate::widgets::keys::{Hint, h};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let Some(h) = &state.history else {
        return;
    };
    let sku = state
        .products
        .get(&h.id)
        .map(|p| p.sku.clone())
        .unwrap_or_default();
    let block = Block::bordered().title(format!(" History: product {} {sku} ", h.id).bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Side by side when there is room; the changes below the list when there is not.
    let [list_area, diff_area] = if inner.width >= 70 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(inner)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner)
    };

    let Some(versions) = &h.versions else {
        let text = h.error.clone().unwrap_or_else(|| "loading…".into());
        frame.render_widget(Paragraph::new(text), list_area);
        return;
    };
    let rows = versions.iter().enumerate().map(|(i, v)| {
        let style = if i == h.selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        Row::new(vec![
            format!("v{}", v.version),
            v.etag.clone(),
            v.updated_by.clone(),
            v.updated_at
                .replace('T', " ")
                .trim_end_matches('Z')
                .chars()
                .take(19)
                .collect(),
        ])
        .style(style)
    });
    let header = Row::new(vec!["version", "ETag", "by", "when (UTC)"])
        .style(Style::new().bold().underlined());
    let widths = [
        Constraint::Length(7),
        Constraint::Length(18),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), list_area);

    let mut lines = Vec::new();
    if let (Some(v), Some((_, other))) = (versions.get(h.selected), h.pair()) {
        match (h.snapshots.get(&v.version), h.snapshots.get(&other)) {
            (Some(now), _) if other < 1 => {
                lines.push(Line::from(format!("v1: created by {}", now.updated_by)).bold());
                for f in Field::ALL {
                    lines.push(Line::from(format!(
                        "  {}: {}",
                        f.label(),
                        clip(&now.fields().display(f), 40)
                    )));
                }
            }
            (Some(now), Some(before)) => {
                lines.push(Line::from(format!("v{} against v{other}:", v.version)).bold());
                let changed = before.fields().changed(&now.fields());
                if changed.is_empty() {
                    lines.push(Line::from("  no field changed"));
                }
                for f in changed {
                    lines.push(Line::from(format!("  {}:", f.label())).bold());
                    lines.push(
                        Line::from(format!("    - {}", clip(&before.fields().display(f), 40)))
                            .style(Style::new().fg(Color::Red)),
                    );
                    lines.push(
                        Line::from(format!("    + {}", clip(&now.fields().display(f), 40)))
                            .style(Style::new().fg(Color::Green)),
                    );
                }
            }
            _ => lines.push(Line::from("loading versions…")),
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Changes ")),
        diff_area,
    );
}

// ---- The history's state and keys ----

/// The keys of the History screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
    h("↑↓/jk", "choose version", true),
    h("c", "compare others with this version", true),
    h("r", "restore this version (a new version)", true),
    h("l", "log", true),
    h("?", "help", false),
    h("Esc", "back", true),
];

/// The history screen of one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub id: i64,
    pub versions: Option<Vec<VersionInfo>>,
    pub error: Option<String>,
    pub selected: usize,
    pub snapshots: HashMap<i64, Product>,
    /// The version the selected one is compared with (`c` marks it); by default the one
    /// before.
    pub compare_with: Option<i64>,
}

impl History {
    /// The selected version and the one it is compared with.
    pub fn pair(&self) -> Option<(i64, i64)> {
        let v = self.versions.as_ref()?.get(self.selected)?.version;
        Some((v, self.compare_with.filter(|c| *c != v).unwrap_or(v - 1)))
    }
}

pub(crate) fn on_versions(
    state: &mut State,
    id: i64,
    versions: Result<Vec<VersionInfo>, String>,
) -> Vec<Command> {
    let Some(h) = &mut state.history else {
        return vec![];
    };
    if h.id != id {
        return vec![];
    }
    match versions {
        Ok(list) => {
            let first = h.versions.is_none();
            if first {
                h.selected = list.len().saturating_sub(1);
            }
            h.versions = Some(list);
            history_fetches(h)
        }
        Err(e) => {
            h.error = Some(e);
            vec![]
        }
    }
}

/// The snapshots needed to show the selected version's diff.
pub(crate) fn history_fetches(h: &History) -> Vec<Command> {
    let Some(list) = &h.versions else {
        return vec![];
    };
    let Some(v) = list.get(h.selected) else {
        return vec![];
    };
    let other = h.pair().map_or(v.version - 1, |(_, o)| o);
    [v.version, other]
        .into_iter()
        .filter(|n| *n >= 1 && !h.snapshots.contains_key(n))
        .map(|version| Command::FetchVersion { id: h.id, version })
        .collect()
}

pub(crate) fn on_history_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let Some(h) = &mut state.history else {
        state.screen = Screen::Catalog;
        return vec![];
    };
    let len = h.versions.as_ref().map_or(0, Vec::len);
    match key.code {
        KeyCode::Char('q') => {
            state.quit = true;
            vec![]
        }
        KeyCode::Esc => {
            state.history = None;
            state.screen = Screen::Catalog;
            vec![]
        }
        KeyCode::Up | KeyCode::Char('k') => {
            h.selected = h.selected.saturating_sub(1);
            history_fetches(h)
        }
        KeyCode::Down | KeyCode::Char('j') => {
            h.selected = (h.selected + 1).min(len.saturating_sub(1));
            history_fetches(h)
        }
        KeyCode::Char('l') => {
            state.show_log = !state.show_log;
            vec![]
        }
        KeyCode::Char('?') => {
            state.help = true;
            vec![]
        }
        KeyCode::Char('c') => {
            let (selected, _) = h.pair().unwrap_or((0, 0));
            h.compare_with = Some(selected);
            state.info(format!(
                "Comparing with version {selected}: choose another version to see what changed between them."
            ));
            vec![]
        }
        KeyCode::Char('r') => restore(state),
        _ => vec![],
    }
}

/// `r`: the selected version's fields saved as a new version, with If-Match of the
/// current one, through the editor: a restore that races another save gets the conflict
/// panel like any save.
fn restore(state: &mut State) -> Vec<Command> {
    let Some(h) = &state.history else {
        return vec![];
    };
    let Some((version, _)) = h.pair() else {
        return vec![];
    };
    let Some(old) = h.snapshots.get(&version).cloned() else {
        state.error(format!(
            "Version {version} is still loading; try again in a moment."
        ));
        return vec![];
    };
    let Some(current) = state.products.get(&h.id).cloned() else {
        state.error(format!(
            "Product {} was deleted: there is no current version to restore over. Its history stays readable.",
            h.id
        ));
        return vec![];
    };
    if current.version == version {
        state.info(format!("Version {version} is the current version already."));
        return vec![];
    }
    state.history = None;
    state.open_editor(Some(&current));
    let mut commands = vec![];
    if let Some(editor) = &mut state.editor {
        let fields = old.fields();
        for (i, f) in Field::ALL.iter().enumerate() {
            editor.inputs[i] = text_area(&edit_text(&fields, *f));
        }
        editor.saving = true;
        let key = editor.key_for(&fields, Some(&current.etag));
        commands.push(Command::Save {
            edit: editor.token,
            purpose: SavePurpose::Restore,
            id: Some(current.id),
            fields,
            if_match: Some(current.etag.clone()),
            key,
        });
    }
    state.info(format!(
        "Restoring version {version} over version {} (If-Match {})…",
        current.version, current.etag
    ));
    commands
}
