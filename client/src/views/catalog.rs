//! The catalog table: every product with its live ETag, rows another user just changed
//! highlighted with their name. Only the rows on screen are built.

use catalog_shared::product::format_price;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::action::Connection;

use crate::state::{SortColumn, State};
use crate::views::{ago, clip};

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
                    SortColumn::Id if crate::state::has_draft(state, p.id) => {
                        format!("{}✎", p.id)
                    }
                    SortColumn::Id => p.id.to_string(),
                    SortColumn::Sku => p.sku.clone(),
                    SortColumn::Name => p.name.clone(),
                    SortColumn::Price => format_price(p.price_cents),
                    SortColumn::Status => p.status.as_str().to_string(),
                    SortColumn::Etag => p.etag.clone(),
                    SortColumn::UpdatedBy => match recent {
                        Some((who, _)) => format!("★ {who}"),
                        None => p.updated_by.clone(),
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
