//! The catalog table: every product with its live ETag, rows another user just changed
//! highlighted with their name. Only the rows on screen are built.

use std::collections::HashMap;

use catalog_shared::product::Product;
use catalog_shared::product::format_price;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::action::Connection;
use crate::screens::history::History;
use crate::screens::{ago, clip};
use crate::state::State;
use crate::state::{Command, Modal, Screen};
use crate::widgets::keys::{Hint, h};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let title = if state.filtering || !state.filter.is_empty() {
        format!(
            " Catalog: {} of {} products, filter /{}{} ",
            state.visible.len(),
            state.products.len(),
            state.filter,
            if state.filtering { "▏" } else { "" }
        )
    } else if !state.loaded {
        " Catalog: loading… ".to_string()
    } else {
        format!(" Catalog: {} products ", state.products.len())
    };
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !state.loaded {
        let text = match &state.connection {
            Connection::Reconnecting {
                attempt, reason, ..
            } => format!(
                "No catalog yet: {reason}.\nRetrying (attempt {attempt}); this screen fills in as soon as the server answers.\nStart one with: catalog-server --addr {}",
                state.server.trim_start_matches("http://")
            ),
            _ => format!("Connecting to {}…", state.server),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }

    if state.visible.is_empty() {
        let text = if state.products.is_empty() {
            "No products yet: a adds one.".to_string()
        } else {
            format!(
                "No matches: no product's sku, name or status contains \"{}\". Esc clears the filter.",
                state.filter
            )
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }

    // Keep the selection on screen; draw only the rows that fit.
    let height = inner.height.saturating_sub(1) as usize;
    let selected = state.selected_index().unwrap_or(0);
    let mut offset = state.table_offset.get();
    if selected < offset {
        offset = selected;
    } else if height > 0 && selected >= offset + height {
        offset = selected + 1 - height;
    }
    offset = offset.min(state.visible.len().saturating_sub(height.max(1)));
    state.table_offset.set(offset);
    state.table_area.set(inner);

    let columns = fit(inner.width);
    let rows = state
        .visible
        .iter()
        .skip(offset)
        .take(height)
        .filter_map(|id| state.products.get(id))
        .map(|p| {
            let recent = state.recent.get(&p.id);
            let editing = state.editing(p.id);
            let mut style = Style::new();
            if recent.is_some() {
                style = style.fg(Color::Black).bg(Color::Yellow);
            }
            if Some(p.id) == state.selected_id {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            let cells = columns.iter().map(|(c, width)| {
                let text = match c.column {
                    // ✎: an unsaved draft of this product is on disk (D lists them).
                    // ● someone is editing it now (presence).
                    SortColumn::Id => format!(
                        "{}{}{}",
                        p.id,
                        if crate::state::has_draft(state, p.id) {
                            "✎"
                        } else {
                            ""
                        },
                        if editing.is_empty() { "" } else { "●" }
                    ),
                    SortColumn::Sku => p.sku.clone(),
                    SortColumn::Name => p.name.clone(),
                    SortColumn::Price => format_price(p.price_cents),
                    SortColumn::Status => p.status.as_str().to_string(),
                    SortColumn::Etag => p.etag.clone(),
                    SortColumn::UpdatedBy => match (editing.first(), recent) {
                        (Some(here), _) => format!("● {}", here.user),
                        (None, Some((who, _))) => format!("★ {who}"),
                        (None, None) => p.updated_by.clone(),
                    },
                    SortColumn::Updated => ago(&p.updated_at, state.now),
                };
                Cell::from(clip(&text, *width as usize))
            });
            Row::new(cells.collect::<Vec<_>>()).style(style)
        });
    let header = Row::new(columns.iter().map(|(c, _)| {
        let mark = if state.sort.column != c.column {
            ""
        } else if state.sort.descending {
            "▼"
        } else {
            "▲"
        };
        format!("{}{mark}", c.header)
    }))
    .style(Style::new().bold().underlined());
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|(_, w)| Constraint::Length(*w))
        .collect();
    frame.render_widget(Table::new(rows, widths).header(header), inner);
}

/// A column of the table: what it shows, and how narrow and wide it may be.
struct Column {
    column: SortColumn,
    header: &'static str,
    min: u16,
    want: u16,
}

/// The columns in the order they give way when the terminal is narrow: the row's identity
/// and its ETag last (the demo is about them), then sku, price, status, name, who, when.
const BY_PRIORITY: [Column; 8] = [
    Column {
        column: SortColumn::Id,
        header: "id",
        min: 3,
        want: 4,
    },
    Column {
        column: SortColumn::Etag,
        header: "ETag",
        min: 18,
        want: 18,
    },
    Column {
        column: SortColumn::Sku,
        header: "sku",
        min: 13,
        want: 15,
    },
    Column {
        column: SortColumn::Price,
        header: "price",
        min: 9,
        want: 10,
    },
    Column {
        column: SortColumn::Status,
        header: "status",
        min: 12,
        want: 12,
    },
    Column {
        column: SortColumn::Name,
        header: "name",
        min: 8,
        want: 40,
    },
    Column {
        column: SortColumn::UpdatedBy,
        header: "by",
        min: 6,
        want: 12,
    },
    Column {
        column: SortColumn::Updated,
        header: "ago",
        min: 3,
        want: 4,
    },
];

/// Which columns fit in `width`, each with its width, in display order. Columns are
/// taken in priority order while their narrowest form fits; the room left widens them in
/// the same order, and the name takes the rest.
fn fit(width: u16) -> Vec<(&'static Column, u16)> {
    let gap = 1u16;
    let mut chosen: Vec<(&Column, u16)> = Vec::new();
    let mut used = 0u16;
    for c in &BY_PRIORITY {
        let need = c.min + if chosen.is_empty() { 0 } else { gap };
        if used + need > width {
            break;
        }
        used += need;
        chosen.push((c, c.min));
    }
    let mut spare = width.saturating_sub(used);
    // Widen towards what each wants, in priority order, the name last (it takes the rest).
    for (c, w) in chosen.iter_mut() {
        if c.column == SortColumn::Name {
            continue;
        }
        let more = (c.want - *w).min(spare);
        *w += more;
        spare -= more;
    }
    if let Some((_, w)) = chosen
        .iter_mut()
        .find(|(c, _)| c.column == SortColumn::Name)
    {
        *w += spare;
    }
    // Display order: as the table has always read.
    let order = [
        SortColumn::Id,
        SortColumn::Sku,
        SortColumn::Name,
        SortColumn::Price,
        SortColumn::Status,
        SortColumn::Etag,
        SortColumn::UpdatedBy,
        SortColumn::Updated,
    ];
    chosen.sort_by_key(|(c, _)| order.iter().position(|o| *o == c.column));
    chosen
}

// ---- The catalog's state and keys ----

/// The keys of the Catalog screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
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

/// The keys of the Filter screen, for the status bar and the help.
pub const KEYS_FILTER: &[Hint] = &[
    h("type", "filter by sku, name or status", true),
    h("Enter", "keep filter", true),
    h("Esc", "clear filter", true),
];

/// A column the catalog can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    #[default]
    Id,
    Sku,
    Name,
    Price,
    Status,
    Etag,
    UpdatedBy,
    Updated,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Id,
        SortColumn::Sku,
        SortColumn::Name,
        SortColumn::Price,
        SortColumn::Status,
        SortColumn::Etag,
        SortColumn::UpdatedBy,
        SortColumn::Updated,
    ];

    fn next(self) -> SortColumn {
        let i = SortColumn::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ALL[(i + 1) % SortColumn::ALL.len()]
    }
}

/// The catalog's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

impl Sort {
    /// The default order, which keeps live updates a binary search away.
    pub fn is_by_id(&self) -> bool {
        self.column == SortColumn::Id && !self.descending
    }

    /// How two products compare in this order (ties by id, so the order is total).
    pub fn order(&self, a: &Product, b: &Product) -> std::cmp::Ordering {
        let by = match self.column {
            SortColumn::Id => a.id.cmp(&b.id),
            SortColumn::Sku => a.sku.cmp(&b.sku),
            SortColumn::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            SortColumn::Price => a.price_cents.cmp(&b.price_cents),
            SortColumn::Status => a.status.as_str().cmp(b.status.as_str()),
            SortColumn::Etag => a.etag.cmp(&b.etag),
            SortColumn::UpdatedBy => a.updated_by.cmp(&b.updated_by),
            SortColumn::Updated => a.updated_at.cmp(&b.updated_at),
        }
        .then(a.id.cmp(&b.id));
        if self.descending { by.reverse() } else { by }
    }
}

pub(crate) fn on_catalog_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    if state.filtering {
        match key.code {
            KeyCode::Enter => state.filtering = false,
            KeyCode::Esc => {
                state.filtering = false;
                state.filter.clear();
                state.refresh_visible();
            }
            KeyCode::Backspace => {
                state.filter.pop();
                state.refresh_visible();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                state.filter.push(c);
                state.refresh_visible();
            }
            _ => {}
        }
        return vec![];
    }
    let page = 10;
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => state.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => state.move_selection(1),
        KeyCode::PageUp => state.move_selection(-page),
        KeyCode::PageDown => state.move_selection(page),
        KeyCode::Home | KeyCode::Char('g') => state.move_selection(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => state.move_selection(isize::MAX / 2),
        KeyCode::Enter | KeyCode::Char('e') => {
            if let Some(p) = state.selected_product().cloned() {
                state.open_editor(Some(&p));
                // Make sure the copy is current: a 304 costs nothing and keeps it.
                return vec![Command::Revalidate {
                    id: p.id,
                    etag: p.etag.clone(),
                }];
            } else {
                state.error("No product is selected.");
            }
        }
        KeyCode::Esc if !state.filter.is_empty() => {
            state.filter.clear();
            state.refresh_visible();
        }
        KeyCode::Char('a') | KeyCode::Char('+') => {
            state.open_editor(None);
        }
        KeyCode::Char('n') | KeyCode::Char('N') => {
            if state.filter.is_empty() {
                state.info("Nothing to find yet: / and type, then n and N go to the next and previous match.");
            } else if state.visible.is_empty() {
                state.error(format!("No product matches /{}.", state.filter));
            } else {
                // Every row shown matches the filter: n and N walk them, wrapping around.
                let len = state.visible.len();
                let i = state.selected_index().unwrap_or(0);
                let j = if key.code == KeyCode::Char('n') {
                    (i + 1) % len
                } else {
                    (i + len - 1) % len
                };
                state.selected_id = Some(state.visible[j]);
            }
        }
        KeyCode::Char('s') => {
            state.sort = Sort {
                column: state.sort.column.next(),
                descending: false,
            };
            state.refresh_visible();
        }
        KeyCode::Char('S') => {
            state.sort.descending = !state.sort.descending;
            state.refresh_visible();
        }
        KeyCode::Char('d') => {
            if let Some(p) = state.selected_product() {
                state.modal = Some(Modal::Delete {
                    id: p.id,
                    sku: p.sku.clone(),
                    etag: p.etag.clone(),
                    version: p.version,
                });
            }
        }
        KeyCode::Char('D') => {
            if state.drafts.is_empty() {
                state.info("No unsaved drafts.");
            } else {
                state.drafts_selected = 0;
                state.screen = Screen::Drafts;
            }
        }
        KeyCode::Char('h') => {
            if let Some(id) = state.selected_id {
                state.history = Some(History {
                    id,
                    versions: None,
                    error: None,
                    selected: 0,
                    snapshots: HashMap::new(),
                    compare_with: None,
                });
                state.screen = Screen::History;
                return vec![Command::FetchVersions { id }];
            }
        }
        KeyCode::Char('l') => state.show_log = !state.show_log,
        KeyCode::Char('/') => state.filtering = true,
        KeyCode::Char('?') => state.help = true,
        KeyCode::Char('q') => {
            if state.has_unsaved_edits() {
                state.modal = Some(Modal::Quit);
            } else {
                state.quit = true;
            }
        }
        KeyCode::Esc if !state.filter.is_empty() => {
            state.filter.clear();
            state.refresh_visible();
        }
        _ => {}
    }
    vec![]
}

/// In the catalog, a click selects the row under it and the wheel moves the selection;
/// elsewhere the mouse does nothing (the keys do everything).
pub(crate) fn on_mouse(state: &mut State, m: crossterm::event::MouseEvent) {
    use crossterm::event::{MouseButton, MouseEventKind};
    if state.screen != Screen::Catalog || state.modal.is_some() || state.help {
        return;
    }
    match m.kind {
        MouseEventKind::ScrollDown => state.move_selection(3),
        MouseEventKind::ScrollUp => state.move_selection(-3),
        MouseEventKind::Down(MouseButton::Left) => {
            let area = state.table_area.get();
            // The first row of the area is the header.
            if m.column >= area.x
                && m.column < area.x + area.width
                && m.row > area.y
                && m.row < area.y + area.height
            {
                let i = state.table_offset.get() + (m.row - area.y - 1) as usize;
                if let Some(id) = state.visible.get(i) {
                    state.selected_id = Some(*id);
                }
            }
        }
        _ => {}
    }
}
