//! The frame around the open screen: the screen itself, the protocol log pane, the
//! guide, the notice line, the status bar, and the help and question pop-ups over them.
//! Drawing reads the state; the one thing it writes is the catalog table's view state
//! (ratatui's `TableState` and where the rows landed, which a click needs).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::keymap;
use crate::net::Connection;
use crate::screens::{Component, Route, help, log, popup};
use crate::state::State;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &mut State) {
    let log_height = if state.show_log { 10 } else { 0 };
    let guide = crate::guide::line(state);
    let width = frame.area().width.max(1) as usize;
    // Enough rows for the wrapped text (words wrap early, hence the slack), within bounds.
    let rows_for = |text: &str, max: u16| -> u16 {
        let chars = text.chars().count() + 2;
        ((chars + chars / 8) / width + 1).min(max as usize) as u16
    };
    let guide_height = guide.as_deref().map_or(0, |g| rows_for(g, 3));
    let notice_height = state.notice.as_ref().map_or(1, |n| rows_for(&n.text, 3));
    let [main, log_area, guide_area, notice, status] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(log_height),
        Constraint::Length(guide_height),
        Constraint::Length(notice_height),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    if let Some(text) = guide {
        frame.render_widget(
            Paragraph::new(format!("▶ {text}"))
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::White).bg(Color::Blue).bold()),
            guide_area,
        );
    }
    let model = &state.model;
    match &mut state.route {
        Route::Catalog => state.catalog.draw(frame, main, model),
        Route::Drafts(d) => d.draw(frame, main, model),
        Route::Edit(e) => e.draw(frame, main, model),
        Route::History(h) => h.draw(frame, main, model),
    }
    if state.show_log {
        log::draw(frame, log_area, &state.model);
    }
    draw_notice(frame, notice, state);
    draw_status(frame, status, state);
    if let Some(modal) = &state.modal {
        let area = popup(frame.area(), 64, 7);
        frame.render_widget(Clear, area);
        let text = vec![
            Line::from(modal.question()),
            Line::from(""),
            Line::from("Enter/y yes    Esc/n no".bold()),
        ];
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(
                Block::bordered()
                    .title(" Confirm ")
                    .border_style(Color::Yellow),
            ),
            area,
        );
    }
    if state.help {
        help::draw(frame, &state.screen_keys());
    }
}

fn draw_notice(frame: &mut Frame, area: Rect, state: &State) {
    if let Some(n) = &state.notice {
        let style = if n.error {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        frame.render_widget(
            Paragraph::new(Span::styled(n.text.clone(), style)).wrap(Wrap { trim: true }),
            area,
        );
    }
}

fn draw_status(frame: &mut Frame, area: Rect, state: &State) {
    let model = &state.model;
    let (dot, conn, color) = match &model.connection {
        Connection::Live => ("●", "live".to_string(), Color::Green),
        Connection::Connecting => ("○", "connecting".to_string(), Color::Yellow),
        Connection::Reconnecting { attempt, .. } if *attempt >= 3 => {
            ("○", format!("offline, retrying (#{attempt})"), Color::Red)
        }
        Connection::Reconnecting { attempt, .. } => {
            ("◌", format!("reconnecting (#{attempt})"), Color::Yellow)
        }
    };
    let seq = model
        .last_seq
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    // The server's address gives way first on a narrow terminal.
    let width = area.width as usize;
    let short = model.user.chars().count() + conn.chars().count() + seq.len() + 16;
    let server = if width >= short + model.server.chars().count() + 2 {
        format!(" {} ", model.server)
    } else {
        " ".to_string()
    };
    let info = Line::from(vec![
        Span::styled(format!(" {} ", model.user), Style::new().bold().reversed()),
        Span::raw(server),
        Span::styled(format!("{dot} {conn}"), Style::new().fg(color).bold()),
        Span::raw(format!("  seq {seq}")),
        if model.unsafe_saves {
            Span::styled(
                "  UNSAFE: saves send no If-Match",
                Style::new().fg(Color::White).bg(Color::Red).bold(),
            )
        } else {
            Span::raw("")
        },
    ]);
    let bar = keymap::bar_within(&state.keys(), width.saturating_sub(1));
    let hints = Line::from(Span::styled(
        format!(" {bar}"),
        Style::new().fg(Color::Cyan),
    ));
    frame.render_widget(Paragraph::new(vec![info, hints]), area);
}
