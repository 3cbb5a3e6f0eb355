//! The editor: one text area per field, the version and ETag the edit is based on, the
//! record's live ETag, and the banner that warns before a save that would conflict.

use catalog_shared::product::Field;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::state::State;
use crate::views::clock;

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let Some(editor) = &state.editor else {
        return;
    };
    let title = match (&editor.id, &editor.base) {
        (Some(id), Some(b)) => format!(" Edit product {id}: {} ", b.sku),
        _ => " New product ".to_string(),
    };
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let narrow = inner.width < 72;
    let banner = editor.stale.as_ref().map(banner_text);
    // As many rows as the banner's words need (they wrap early, hence the slack).
    let banner_height = banner.as_ref().map_or(0, |text| {
        let chars = text.chars().count();
        let width = inner.width.max(1) as usize;
        ((chars + chars / 6) / width + 1).clamp(2, 5) as u16
    });
    let [info, banner_area, fields] = Layout::vertical([
        Constraint::Length(if narrow { 2 } else { 1 }),
        Constraint::Length(banner_height),
        Constraint::Min(3),
    ])
    .areas(inner);

    // What the edit is based on, and what the server has now.
    let live = editor
        .id
        .and_then(|id| state.products.get(&id))
        .map(|p| p.etag.clone());
    let info_line = match &editor.base {
        Some(base) => {
            let live_etag = live.unwrap_or_else(|| "(deleted)".into());
            let changed = live_etag != base.etag;
            Line::from(vec![
                Span::raw(format!("based on version {}, ETag ", base.version)),
                Span::styled(base.etag.clone(), Style::new().bold()),
                Span::raw("   live ETag "),
                Span::styled(
                    live_etag,
                    if changed {
                        Style::new().fg(Color::Red).bold()
                    } else {
                        Style::new().fg(Color::Green).bold()
                    },
                ),
                Span::raw(if editor.is_dirty() { "   (edited)" } else { "" }),
            ])
        }
        None => Line::from("a new product: Ctrl-S creates it (POST /products)"),
    };
    frame.render_widget(Paragraph::new(info_line).wrap(Wrap { trim: true }), info);

    if let Some(text) = banner {
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::Black).bg(Color::Yellow).bold()),
            banner_area,
        );
    }
    draw_fields(frame, fields, editor);
}

fn banner_text(stale: &crate::state::Stale) -> String {
    if stale.deleted {
        format!(
            "⚠ {} deleted this product at {}. Saving will fail (410); you can recreate it from your edit.",
            stale.by,
            clock(&stale.at)
        )
    } else {
        let fields = stale
            .fields
            .iter()
            .map(|f| f.label())
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "⚠ {} changed {} at {} (now version {}, ETag {}): your save will conflict.",
            stale.by,
            if fields.is_empty() {
                "it".into()
            } else {
                fields
            },
            clock(&stale.at),
            stale.version,
            stale.etag
        )
    }
}

fn draw_fields(frame: &mut Frame, fields: Rect, editor: &crate::state::Editor) {
    let errors = editor.check().err().unwrap_or_default();
    // Five boxed fields need 15 rows; on a short terminal each field is one line with
    // its label in front instead.
    if fields.height < 15 {
        draw_compact(frame, fields, editor, &errors);
        return;
    }
    let constraints = Field::ALL.map(|f| {
        if f == Field::Description {
            Constraint::Min(3)
        } else {
            Constraint::Length(3)
        }
    });
    let areas = Layout::vertical(constraints).split(fields);
    for (i, field) in Field::ALL.iter().enumerate() {
        let focused = editor.focus == i;
        let mut label = match field {
            Field::Price => " price ($) ".to_string(),
            Field::Status => {
                " status (↑↓ cycles: in_stock, out_of_stock, discontinued) ".to_string()
            }
            other => format!(" {} ", other.label()),
        };
        let mut border = if focused {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::DarkGray)
        };
        if let Some(e) = errors.get(field) {
            label.push_str(&format!("✗ {e} "));
            border = border.fg(Color::Red);
        }
        let mut input = editor.inputs[i].clone();
        input.set_block(Block::bordered().title(label).border_style(border));
        input.set_cursor_line_style(Style::default());
        if !focused {
            input.set_cursor_style(Style::default());
        }
        frame.render_widget(&input, areas[i]);
    }
}

/// One line per field: `label ` then the text, the focused field highlighted, a field the
/// server or the rules refuse marked ✗ (its message in the label).
fn draw_compact(
    frame: &mut Frame,
    area: Rect,
    editor: &crate::state::Editor,
    errors: &std::collections::BTreeMap<Field, String>,
) {
    let mut constraints = vec![Constraint::Length(1); Field::ALL.len()];
    constraints[Field::ALL.len() - 1] = Constraint::Min(1);
    let rows = Layout::vertical(constraints).split(area);
    for (i, field) in Field::ALL.iter().enumerate() {
        let focused = editor.focus == i;
        let label = match errors.get(field) {
            Some(_) => format!("{}✗ ", field.label()),
            None => format!("{} ", field.label()),
        };
        let style = match (focused, errors.contains_key(field)) {
            (_, true) => Style::new().fg(Color::Red).bold(),
            (true, false) => Style::new().fg(Color::Cyan).bold(),
            (false, false) => Style::new().fg(Color::DarkGray),
        };
        let [label_area, text_area] =
            Layout::horizontal([Constraint::Length(13), Constraint::Min(1)]).areas(rows[i]);
        frame.render_widget(Paragraph::new(Span::styled(label, style)), label_area);
        let mut input = editor.inputs[i].clone();
        input.set_block(Block::new());
        input.set_cursor_line_style(Style::default());
        if !focused {
            input.set_cursor_style(Style::default());
        }
        frame.render_widget(&input, text_area);
    }
}
