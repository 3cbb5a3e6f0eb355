//! The history of one product: every version with its ETag, who and when, and the
//! selected version's changes against the one before.

use std::collections::HashMap;

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::Field;
use catalog_shared::product::Product;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use crate::keymap::{Hint, h};
use crate::model::Model;
use crate::net::{Command, SavePurpose, VersionInfo};
use crate::screens::{Component, EditSession, Effect, Route, clip};

fn draw(frame: &mut Frame, area: Rect, h: &History, model: &Model) {
    let sku = model
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
    /// The history of product `id`, its versions not yet fetched.
    pub fn new(id: i64) -> History {
        History {
            id,
            versions: None,
            error: None,
            selected: 0,
            snapshots: HashMap::new(),
            compare_with: None,
        }
    }

    /// The selected version and the one it is compared with.
    pub fn pair(&self) -> Option<(i64, i64)> {
        let v = self.versions.as_ref()?.get(self.selected)?.version;
        Some((v, self.compare_with.filter(|c| *c != v).unwrap_or(v - 1)))
    }

    /// The list of versions arrived (or failed).
    pub fn on_versions(
        &mut self,
        id: i64,
        versions: Result<Vec<VersionInfo>, String>,
    ) -> Vec<Effect> {
        if self.id != id {
            return vec![];
        }
        match versions {
            Ok(list) => {
                if self.versions.is_none() {
                    self.selected = list.len().saturating_sub(1);
                }
                self.versions = Some(list);
                self.fetches()
            }
            Err(e) => {
                self.error = Some(e);
                vec![]
            }
        }
    }

    /// A past version arrived: kept for the diffs.
    pub fn on_version(&mut self, p: &Product) {
        if self.id == p.id {
            self.snapshots.insert(p.version, p.clone());
        }
    }

    /// The snapshots needed to show the selected version's diff.
    fn fetches(&self) -> Vec<Effect> {
        let Some(v) = self.versions.as_ref().and_then(|l| l.get(self.selected)) else {
            return vec![];
        };
        let other = self.pair().map_or(v.version - 1, |(_, o)| o);
        [v.version, other]
            .into_iter()
            .filter(|n| *n >= 1 && !self.snapshots.contains_key(n))
            .map(|version| {
                Effect::Net(Command::FetchVersion {
                    id: self.id,
                    version,
                })
            })
            .collect()
    }

    /// `r`: the selected version's fields saved as a new version, with If-Match of the
    /// current one, through the editor: a restore that races another save gets the
    /// conflict panel like any save.
    fn restore(&self, model: &mut Model) -> Vec<Effect> {
        let Some((version, _)) = self.pair() else {
            return vec![];
        };
        let Some(old) = self.snapshots.get(&version) else {
            return vec![Effect::error(format!(
                "Version {version} is still loading; try again in a moment."
            ))];
        };
        let Some(current) = model.products.get(&self.id).cloned() else {
            return vec![Effect::error(format!(
                "Product {} was deleted: there is no current version to restore over. Its history stays readable.",
                self.id
            ))];
        };
        if current.version == version {
            return vec![Effect::info(format!(
                "Version {version} is the current version already."
            ))];
        }
        let fields = old.fields();
        let mut session = EditSession::restoring(model, &current, &fields);
        let key = session.editor.key_for(&fields, Some(&current.etag));
        let save = Command::Save {
            edit: session.token(),
            purpose: SavePurpose::Restore,
            id: Some(current.id),
            fields,
            if_match: Some(current.etag.clone()),
            key,
        };
        vec![
            Effect::Go(Route::Edit(Box::new(session))),
            Effect::Net(save),
            Effect::info(format!(
                "Restoring version {version} over version {} (If-Match {})…",
                current.version, current.etag
            )),
        ]
    }
}

impl Component for History {
    fn on_key(&mut self, model: &mut Model, key: KeyEvent) -> Vec<Effect> {
        let len = self.versions.as_ref().map_or(0, Vec::len);
        match key.code {
            KeyCode::Char('q') => vec![Effect::Quit],
            KeyCode::Esc => vec![Effect::Go(Route::Catalog)],
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                self.fetches()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(len.saturating_sub(1));
                self.fetches()
            }
            KeyCode::Char('l') => vec![Effect::ToggleLog],
            KeyCode::Char('?') => vec![Effect::Help],
            KeyCode::Char('c') => {
                let (selected, _) = self.pair().unwrap_or((0, 0));
                self.compare_with = Some(selected);
                vec![Effect::info(format!(
                    "Comparing with version {selected}: choose another version to see what changed between them."
                ))]
            }
            KeyCode::Char('r') => self.restore(model),
            _ => vec![],
        }
    }

    /// Another version of this product: the list is fetched again.
    fn on_change(&mut self, _model: &Model, event: &ChangeEvent) -> Vec<Effect> {
        if event.id == self.id {
            vec![Effect::Net(Command::FetchVersions { id: self.id })]
        } else {
            vec![]
        }
    }

    fn keys(&self, _model: &Model) -> Vec<Hint> {
        KEYS.to_vec()
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, model: &Model) {
        draw(frame, area, self, model);
    }
}
