//! The drafts screen: unsaved edits found on disk, with what they were based on.

use catalog_shared::product::Field;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::widgets::{Block, Row, Table};

use crate::screens::editor::text_area;
use crate::state::State;
use crate::state::{Command, Screen};
use crate::widgets::keys::{Hint, h};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let block = Block::bordered().title(
        format!(
            " Unsaved drafts: {} (Enter opens, x discards) ",
            state.drafts.len()
        )
        .bold(),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = state.drafts.iter().enumerate().map(|(i, d)| {
        let style = if i == state.drafts_selected {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        let what = match d.draft.product_id {
            Some(id) => format!("product {id}"),
            None => "new product".to_string(),
        };
        let base = d
            .draft
            .based_on_version
            .map_or_else(|| "-".to_string(), |v| format!("v{v}"));
        Row::new(vec![
            what,
            d.draft.text(Field::Sku).unwrap_or("").to_string(),
            d.draft.text(Field::Name).unwrap_or("").to_string(),
            base,
        ])
        .style(style)
    });
    let header = Row::new(vec!["draft of", "sku", "name", "based on"])
        .style(Style::new().bold().underlined());
    let widths = [
        Constraint::Length(12),
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Length(9),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), inner);
}

// ---- The drafts screen's keys ----

/// The keys of the Drafts screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
    h("↑↓/jk", "choose draft", true),
    h("Enter", "open in the editor", true),
    h("x", "discard draft", true),
    h("?", "help", false),
    h("Esc", "back", true),
];

/// Whether product `id` has a draft on disk (the catalog marks it).
pub fn has_draft(state: &State, id: i64) -> bool {
    state.drafts.iter().any(|d| d.draft.product_id == Some(id))
}

/// Opens a draft: a new product at once; an edit of a product once its base version
/// arrives (the draft names it), so a conflict can be merged against the right base.
pub(crate) fn open_draft(state: &mut State, file: crate::draft::DraftFile) -> Vec<Command> {
    match (file.draft.product_id, file.draft.based_on_version) {
        (Some(id), Some(version)) => {
            state.info(format!(
                "Opening your draft of product {id} (based on version {version})…"
            ));
            state.opening_draft = Some(file);
            vec![Command::FetchVersion { id, version }]
        }
        _ => {
            state.open_editor(None);
            fill_from_draft(state, &file);
            vec![]
        }
    }
}

pub(crate) fn fill_from_draft(state: &mut State, file: &crate::draft::DraftFile) {
    if let Some(editor) = &mut state.editor {
        for (i, f) in Field::ALL.iter().enumerate() {
            if let Some(text) = file.draft.text(*f) {
                editor.inputs[i] = text_area(text);
            }
        }
        // A save of this draft was sent before the restart and never answered: the same
        // save goes with the same key, so it cannot apply twice.
        if let Some(key) = &file.draft.pending_key
            && let Ok(fields) = editor.check()
        {
            editor.pending = Some(super::editor::PendingSave {
                key: key.clone(),
                fields,
                if_match: file.draft.based_on_etag.clone(),
            });
        }
    }
    state.draft_path = Some(file.path.clone());
    state.drafts.retain(|d| d.path != file.path);
    state.info(format!(
        "Draft opened: your typing is back. Ctrl-S saves it (with If-Match of version {}).",
        file.draft
            .based_on_version
            .map_or("-".to_string(), |v| v.to_string())
    ));
}

pub(crate) fn on_drafts_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let n = state.drafts.len();
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') => state.screen = Screen::Catalog,
        KeyCode::Up | KeyCode::Char('k') => {
            state.drafts_selected = state.drafts_selected.saturating_sub(1)
        }
        KeyCode::Down | KeyCode::Char('j') => {
            state.drafts_selected = (state.drafts_selected + 1).min(n.saturating_sub(1))
        }
        KeyCode::Enter => {
            if let Some(file) = state.drafts.get(state.drafts_selected).cloned() {
                return open_draft(state, file);
            }
        }
        KeyCode::Char('x') if state.drafts_selected < n => {
            let file = state.drafts.remove(state.drafts_selected);
            state.drafts_selected = state.drafts_selected.min(n.saturating_sub(2));
            state.info("Draft discarded.");
            if state.drafts.is_empty() {
                state.screen = Screen::Catalog;
            }
            return vec![Command::RemoveDraft(file.path)];
        }
        KeyCode::Char('?') => state.help = true,
        _ => {}
    }
    vec![]
}
