//! The `?` help: every key of the current screen, from the same table as the status bar.

use ratatui::Frame;
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::keymap::Hint;
use crate::screens::popup;

/// The help over the whole frame: `hints` are the keys of the screen (or question) under it.
pub fn draw(frame: &mut Frame, hints: &[Hint]) {
    let mut lines: Vec<Line> = hints
        .iter()
        .map(|h| {
            Line::from(vec![
                Span::styled(format!("{:>12}  ", h.keys), Color::Cyan),
                Span::raw(h.does),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("Esc or ? closes this help.".italic()));
    let widest = hints
        .iter()
        .map(|h| 14 + h.does.chars().count())
        .max()
        .unwrap_or(40)
        .max(40) as u16;
    let area = popup(frame.area(), widest + 2, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help: keys of this screen ".bold())),
        area,
    );
}
