//! The drafts screen: unsaved edits found on disk, with what they were based on.

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::{Field, Product};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::widgets::{Block, Row, Table};

use crate::draft::DraftFile;
use crate::keymap::{Hint, h};
use crate::model::Model;
use crate::net::Command;
use crate::screens::{Component, EditSession, Effect, Route};

/// The keys of the Drafts screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
    h("↑↓/jk", "choose draft", true),
    h("Enter", "open in the editor", true),
    h("x", "discard draft", true),
    h("?", "help", false),
    h("Esc", "back", true),
];

/// The drafts screen's state: the selected row, and the draft being opened while its base
/// version is on its way.
#[derive(Debug, Default)]
pub struct Drafts {
    pub selected: usize,
    pub opening: Option<DraftFile>,
}

impl Drafts {
    /// Opens a draft: a new product at once; an edit of a product once its base version
    /// arrives (the draft names it), so a conflict can be merged against the right base.
    fn open(&mut self, model: &mut Model, file: DraftFile) -> Vec<Effect> {
        match (file.draft.product_id, file.draft.based_on_version) {
            (Some(id), Some(version)) => {
                self.opening = Some(file);
                vec![
                    Effect::info(format!(
                        "Opening your draft of product {id} (based on version {version})…"
                    )),
                    Effect::Net(Command::FetchVersion { id, version }),
                ]
            }
            _ => {
                let session = EditSession::from_draft(model, None, &file);
                vec![Effect::Go(Route::Edit(Box::new(session))), opened(&file)]
            }
        }
    }

    /// A past version arrived: the base of the draft being opened, if it is that one.
    pub fn on_version(&mut self, model: &mut Model, p: &Product) -> Vec<Effect> {
        let Some(file) = self.opening.take_if(|f| {
            f.draft.product_id == Some(p.id) && f.draft.based_on_version == Some(p.version)
        }) else {
            return vec![];
        };
        let mut session = EditSession::from_draft(model, Some(p), &file);
        let mut effects = vec![opened(&file)];
        // The product may have moved on since the draft was written: warn now.
        if let Some(current) = model.products.get(&p.id).cloned()
            && current.version > p.version
        {
            let change = model.change_of(current);
            effects.extend(session.on_change(model, &change));
        }
        effects.insert(0, Effect::Go(Route::Edit(Box::new(session))));
        effects
    }
}

fn opened(file: &DraftFile) -> Effect {
    Effect::info(format!(
        "Draft opened: your typing is back. Ctrl-S saves it (with If-Match of version {}).",
        file.draft
            .based_on_version
            .map_or("-".to_string(), |v| v.to_string())
    ))
}

impl Component for Drafts {
    fn on_key(&mut self, model: &mut Model, key: KeyEvent) -> Vec<Effect> {
        let n = model.drafts.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return vec![Effect::Go(Route::Catalog)],
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Enter => {
                if let Some(file) = model.drafts.get(self.selected).cloned() {
                    return self.open(model, file);
                }
            }
            KeyCode::Char('x') if self.selected < n => {
                let file = model.drafts.remove(self.selected);
                self.selected = self.selected.min(n.saturating_sub(2));
                let mut effects = vec![
                    Effect::info("Draft discarded."),
                    Effect::RemoveDraft(file.path),
                ];
                if model.drafts.is_empty() {
                    effects.push(Effect::Go(Route::Catalog));
                }
                return effects;
            }
            KeyCode::Char('?') => return vec![Effect::Help],
            _ => {}
        }
        vec![]
    }

    fn on_change(&mut self, _model: &Model, _event: &ChangeEvent) -> Vec<Effect> {
        vec![]
    }

    fn keys(&self, _model: &Model) -> Vec<Hint> {
        KEYS.to_vec()
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, model: &Model) {
        let block = Block::bordered().title(
            format!(
                " Unsaved drafts: {} (Enter opens, x discards) ",
                model.drafts.len()
            )
            .bold(),
        );
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let rows = model.drafts.iter().enumerate().map(|(i, d)| {
            let style = if i == self.selected {
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
}
