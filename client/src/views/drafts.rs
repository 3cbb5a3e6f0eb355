//! The drafts screen: unsaved edits found on disk, with what they were based on.

use catalog_shared::product::Field;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::widgets::{Block, Row, Table};

use crate::state::State;

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
