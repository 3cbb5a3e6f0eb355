//! The catalog table: every product with its live ETag, rows another user just changed
//! highlighted with their name. Only the rows on screen are built.

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::format_price;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::keymap::{Hint, h};
use crate::model::{Model, Sort, SortColumn};
use crate::net::{Command, Connection};
use crate::screens::{
    Component, Drafts, EditSession, Effect, History, Modal, Route, ago, clip, short_etag,
};

/// The catalog screen's own state: whether a filter is being typed, and where the table
/// was drawn and scrolled to (ratatui's `TableState`), which a click needs.
#[derive(Debug, Default)]
pub struct Catalog {
    pub filtering: bool,
    /// The scroll offset and the selected row, as last drawn.
    pub table: TableState,
    /// Where the table's rows were last drawn, header included.
    pub rows_area: Rect,
}

impl Component for Catalog {
    fn on_key(&mut self, model: &mut Model, key: KeyEvent) -> Vec<Effect> {
        if self.filtering {
            self.on_filter_key(model, key);
            return vec![];
        }
        on_key(model, key, &mut self.filtering)
    }

    fn on_change(&mut self, _model: &Model, _event: &ChangeEvent) -> Vec<Effect> {
        // The model already moved the row.
        vec![]
    }

    fn keys(&self, _model: &Model) -> Vec<Hint> {
        if self.filtering {
            KEYS_FILTER.to_vec()
        } else {
            KEYS.to_vec()
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, model: &Model) {
        self.draw_table(frame, area, model);
    }
}

impl Catalog {
    fn on_filter_key(&mut self, model: &mut Model, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.filtering = false,
            KeyCode::Esc => {
                self.filtering = false;
                model.filter.clear();
                model.refresh_visible();
            }
            KeyCode::Backspace => {
                model.filter.pop();
                model.refresh_visible();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                model.filter.push(c);
                model.refresh_visible();
            }
            _ => {}
        }
    }

    /// A click selects the row under it and the wheel moves the selection.
    pub fn on_mouse(&mut self, model: &mut Model, m: MouseEvent) {
        use crossterm::event::{MouseButton, MouseEventKind};
        match m.kind {
            MouseEventKind::ScrollDown => model.move_selection(3),
            MouseEventKind::ScrollUp => model.move_selection(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let area = self.rows_area;
                // The first row of the area is the header.
                if m.column >= area.x
                    && m.column < area.x + area.width
                    && m.row > area.y
                    && m.row < area.y + area.height
                {
                    let i = self.table.offset() + (m.row - area.y - 1) as usize;
                    if let Some(id) = model.visible.get(i) {
                        model.selected_id = Some(*id);
                    }
                }
            }
            _ => {}
        }
    }

    fn draw_table(&mut self, frame: &mut Frame, area: Rect, model: &Model) {
        let title = if self.filtering || !model.filter.is_empty() {
            format!(
                " Catalog: {} of {} products, filter /{}{} ",
                model.visible.len(),
                model.products.len(),
                model.filter,
                if self.filtering { "▏" } else { "" }
            )
        } else if !model.loaded {
            " Catalog: loading… ".to_string()
        } else {
            format!(" Catalog: {} products ", model.products.len())
        };
        let block = Block::bordered().title(title.bold());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if !model.loaded {
            let text = match &model.connection {
                Connection::Reconnecting {
                    attempt, reason, ..
                } => format!(
                    "No catalog yet: {reason}.\nRetrying (attempt {attempt}); this screen fills in as soon as the server answers.\nStart one with: catalog-server --addr {}",
                    model.server.trim_start_matches("http://")
                ),
                _ => format!("Connecting to {}…", model.server),
            };
            frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
            return;
        }

        if model.visible.is_empty() {
            let text = if model.products.is_empty() {
                "No products yet: a adds one.".to_string()
            } else {
                format!(
                    "No matches: no product's sku, name or status contains \"{}\". Esc clears the filter.",
                    model.filter
                )
            };
            frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
            return;
        }

        // Keep the selection on screen, moving the view no further than needed.
        let height = inner.height.saturating_sub(1) as usize;
        let selected = model.selected_index().unwrap_or(0);
        let mut offset = self.table.offset();
        if selected < offset {
            offset = selected;
        } else if height > 0 && selected >= offset + height {
            offset = selected + 1 - height;
        }
        offset = offset.min(model.visible.len().saturating_sub(height.max(1)));
        *self.table.offset_mut() = offset;
        self.table.select(Some(selected));
        self.rows_area = inner;

        let (columns, etag_short) = fit(inner.width);
        let rows = model
            .visible
            .iter()
            .skip(offset)
            .take(height)
            .filter_map(|id| model.products.get(id))
            .map(|p| {
                let recent = model.recent.get(&p.id);
                let editing = model.editing(p.id);
                let mut style = Style::new();
                if recent.is_some() {
                    style = style.fg(Color::Black).bg(Color::Yellow);
                }
                let cells = columns.iter().map(|(c, width)| {
                    let text = match c.column {
                        // ✎: an unsaved draft of this product is on disk (D lists them).
                        // ● someone is editing it now (presence).
                        SortColumn::Id => format!(
                            "{}{}{}",
                            p.id,
                            if model.has_draft(p.id) { "✎" } else { "" },
                            if editing.is_empty() { "" } else { "●" }
                        ),
                        SortColumn::Sku => p.sku.clone(),
                        SortColumn::Name => p.name.clone(),
                        SortColumn::Price => format_price(p.price_cents),
                        SortColumn::Status => p.status.as_str().to_string(),
                        SortColumn::Etag if etag_short => short_etag(&p.etag),
                        SortColumn::Etag => p.etag.clone(),
                        SortColumn::UpdatedBy => match (editing.first(), recent) {
                            (Some(here), _) => format!("● {}", here.user),
                            (None, Some((who, _))) => format!("★ {who}"),
                            (None, None) => p.updated_by.clone(),
                        },
                        SortColumn::Updated => ago(&p.updated_at, model.now),
                    };
                    Cell::from(clip(&text, *width as usize))
                });
                Row::new(cells.collect::<Vec<_>>()).style(style)
            });
        let header = Row::new(columns.iter().map(|(c, _)| {
            let mark = if model.sort.column != c.column {
                ""
            } else if model.sort.descending {
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
        // Only the rows on screen are built, so the table is drawn from that window, the
        // selection counted from its top.
        let mut window = TableState::new().with_selected(Some(selected - offset));
        frame.render_stateful_widget(
            Table::new(rows, widths).header(header).row_highlight_style(
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ),
            inner,
            &mut window,
        );
    }
}

/// A column of the table: what it shows, and how narrow and wide it may be.
struct Column {
    column: SortColumn,
    header: &'static str,
    min: u16,
    want: u16,
}

/// A whole ETag: 16 hex digits in quotes.
const ETAG: u16 = 18;

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
        min: ETAG,
        want: ETAG,
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
    // At least 16 characters of a name, or none: "Kettle …" tells nobody anything.
    Column {
        column: SortColumn::Name,
        header: "name",
        min: 16,
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

/// An ETag cut to 8 hex digits and `…`, with its opening quote.
const SHORT_ETAG: u16 = 10;

/// Which columns fit in `width`, each with its width, in display order, and whether the
/// ETag is shortened. Below 100 columns of terminal the ETag gives up its last 8 digits
/// if that lets the name in (with at least 16 characters to read); where the name does
/// not fit anyway (40 columns) the row keeps its whole ETag.
fn fit(width: u16) -> (Vec<(&'static Column, u16)>, bool) {
    if width < 98 {
        let short = fit_with(width, SHORT_ETAG);
        if short.iter().any(|(c, _)| c.column == SortColumn::Name) {
            return (short, true);
        }
    }
    (fit_with(width, ETAG), false)
}

/// Columns are taken in priority order while their narrowest form fits (the ETag at
/// `etag` columns); the room left widens them in the same order, and the name takes the
/// rest.
fn fit_with(width: u16, etag: u16) -> Vec<(&'static Column, u16)> {
    let gap = 1u16;
    let mut chosen: Vec<(&Column, u16)> = Vec::new();
    let mut used = 0u16;
    for c in &BY_PRIORITY {
        let min = if c.column == SortColumn::Etag {
            etag
        } else {
            c.min
        };
        let need = min + if chosen.is_empty() { 0 } else { gap };
        if used + need > width {
            break;
        }
        used += need;
        chosen.push((c, min));
    }
    let mut spare = width.saturating_sub(used);
    // Widen towards what each wants, in priority order, the name last (it takes the rest).
    for (c, w) in chosen.iter_mut() {
        if c.column == SortColumn::Name {
            continue;
        }
        let more = c.want.saturating_sub(*w).min(spare);
        if c.column == SortColumn::Etag {
            continue;
        }
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

/// The catalog's keys (the filter's are the screen's own, above).
fn on_key(model: &mut Model, key: KeyEvent, filtering: &mut bool) -> Vec<Effect> {
    let page = 10;
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => model.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => model.move_selection(1),
        KeyCode::PageUp => model.move_selection(-page),
        KeyCode::PageDown => model.move_selection(page),
        KeyCode::Home | KeyCode::Char('g') => model.move_selection(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => model.move_selection(isize::MAX / 2),
        KeyCode::Enter | KeyCode::Char('e') => {
            let Some(p) = model.selected_product().cloned() else {
                return vec![Effect::error("No product is selected.")];
            };
            let session = EditSession::open(model, Some(&p));
            // Make sure the copy is current: a 304 costs nothing and keeps it.
            return vec![
                Effect::Go(Route::Edit(Box::new(session))),
                Effect::Net(Command::Revalidate {
                    id: p.id,
                    etag: p.etag.clone(),
                }),
            ];
        }
        KeyCode::Esc if !model.filter.is_empty() => {
            model.filter.clear();
            model.refresh_visible();
        }
        KeyCode::Char('a') | KeyCode::Char('+') => {
            return vec![Effect::Go(Route::Edit(Box::new(EditSession::open(
                model, None,
            ))))];
        }
        KeyCode::Char('n') | KeyCode::Char('N') => {
            if model.filter.is_empty() {
                return vec![Effect::info(
                    "Nothing to find yet: / and type, then n and N go to the next and previous match.",
                )];
            }
            if model.visible.is_empty() {
                return vec![Effect::error(format!(
                    "No product matches /{}.",
                    model.filter
                ))];
            }
            // Every row shown matches the filter: n and N walk them, wrapping around.
            let len = model.visible.len();
            let i = model.selected_index().unwrap_or(0);
            let j = if key.code == KeyCode::Char('n') {
                (i + 1) % len
            } else {
                (i + len - 1) % len
            };
            model.selected_id = Some(model.visible[j]);
        }
        KeyCode::Char('s') => {
            model.sort = Sort {
                column: model.sort.column.next(),
                descending: false,
            };
            model.refresh_visible();
        }
        KeyCode::Char('S') => {
            model.sort.descending = !model.sort.descending;
            model.refresh_visible();
        }
        KeyCode::Char('d') => {
            if let Some(p) = model.selected_product() {
                return vec![Effect::Ask(Modal::Delete {
                    id: p.id,
                    sku: p.sku.clone(),
                    etag: p.etag.clone(),
                    version: p.version,
                })];
            }
        }
        KeyCode::Char('D') => {
            if model.drafts.is_empty() {
                return vec![Effect::info("No unsaved drafts.")];
            }
            return vec![Effect::Go(Route::Drafts(Drafts::default()))];
        }
        KeyCode::Char('h') => {
            if let Some(id) = model.selected_id {
                return vec![
                    Effect::Go(Route::History(History::new(id))),
                    Effect::Net(Command::FetchVersions { id }),
                ];
            }
        }
        KeyCode::Char('l') => return vec![Effect::ToggleLog],
        KeyCode::Char('/') => *filtering = true,
        KeyCode::Char('?') => return vec![Effect::Help],
        // The catalog holds no edit: nothing to lose.
        KeyCode::Char('q') => return vec![Effect::Quit],
        _ => {}
    }
    vec![]
}
