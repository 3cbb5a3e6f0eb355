//! The catalog table: every product with its live ETag, rows another user just changed
//! highlighted with their name. Only the rows on screen are built.

use catalog_shared::product::format_price;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::action::Connection;

use crate::state::State;
use crate::views::ago;

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

    let rows = state
        .visible
        .iter()
        .skip(offset)
        .take(height)
        .filter_map(|id| state.products.get(id))
        .map(|p| {
            let recent = state.recent.get(&p.id);
            let by = match recent {
                Some((who, _)) => format!("★ {who}"),
                None => p.updated_by.clone(),
            };
            let mut style = Style::new();
            if recent.is_some() {
                style = style.fg(Color::Black).bg(Color::Yellow);
            }
            if Some(p.id) == state.selected_id {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            Row::new(vec![
                // ✎: an unsaved draft of this product is on disk (D lists them).
                Cell::from(if crate::state::has_draft(state, p.id) {
                    format!("{}✎", p.id)
                } else {
                    p.id.to_string()
                }),
                Cell::from(p.sku.clone()),
                Cell::from(p.name.clone()),
                Cell::from(format_price(p.price_cents)),
                Cell::from(p.status.as_str()),
                Cell::from(p.etag.clone()),
                Cell::from(by),
                Cell::from(ago(&p.updated_at, state.now)),
            ])
            .style(style)
        });
    let header = Row::new(vec![
        "id",
        "sku",
        "name",
        "price",
        "status",
        "ETag",
        "updated by",
        "ago",
    ])
    .style(Style::new().bold().underlined());
    let widths = [
        Constraint::Length(4),
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(18),
        Constraint::Length(12),
        Constraint::Length(4),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), inner);
}
