//! The screens, one module each (catalog, editor, conflict, history, drafts, log, help):
//! each owns its state type, its key table (the status bar and the help are built from
//! it) and its key handling, and draws itself. Here: the frame around them (log pane,
//! notice line, status bar, help and confirmation pop-ups) and what they share. Drawing
//! reads the state; only key handling changes it.

pub mod catalog;
pub mod conflict;
pub mod drafts;
pub mod editor;
pub mod help;
pub mod history;
pub mod log;

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::action::Connection;
use crate::keymap;
use crate::state::{Screen, State};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State) {
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
    match state.screen {
        Screen::Catalog => catalog::draw(frame, main, state),
        Screen::Editor => editor::draw(frame, main, state),
        Screen::Conflict => conflict::draw(frame, main, state),
        Screen::History => history::draw(frame, main, state),
        Screen::Drafts => drafts::draw(frame, main, state),
    }
    if state.show_log {
        log::draw(frame, log_area, state);
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
        help::draw(frame, state);
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
    let (dot, conn, color) = match &state.connection {
        Connection::Live => ("●", "live".to_string(), Color::Green),
        Connection::Connecting => ("○", "connecting".to_string(), Color::Yellow),
        Connection::Reconnecting { attempt, .. } if *attempt >= 3 => {
            ("○", format!("offline, retrying (#{attempt})"), Color::Red)
        }
        Connection::Reconnecting { attempt, .. } => {
            ("◌", format!("reconnecting (#{attempt})"), Color::Yellow)
        }
    };
    let seq = state
        .last_seq
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    // The server's address gives way first on a narrow terminal.
    let width = area.width as usize;
    let short = state.user.chars().count() + conn.chars().count() + seq.len() + 16;
    let server = if width >= short + state.server.chars().count() + 2 {
        format!(" {} ", state.server)
    } else {
        " ".to_string()
    };
    let info = Line::from(vec![
        Span::styled(format!(" {} ", state.user), Style::new().bold().reversed()),
        Span::raw(server),
        Span::styled(format!("{dot} {conn}"), Style::new().fg(color).bold()),
        Span::raw(format!("  seq {seq}")),
        if state.unsafe_saves {
            Span::styled(
                "  UNSAFE: saves send no If-Match",
                Style::new().fg(Color::White).bg(Color::Red).bold(),
            )
        } else {
            Span::raw("")
        },
    ]);
    let mut bar = keymap::bar_within(state.keys(), width.saturating_sub(1));
    if state.unsafe_saves {
        bar = bar.replace("Ctrl-S save (If-Match)", "Ctrl-S save WITHOUT If-Match");
    }
    let hints = Line::from(Span::styled(
        format!(" {bar}"),
        Style::new().fg(Color::Cyan),
    ));
    frame.render_widget(Paragraph::new(vec![info, hints]), area);
}

/// A centered rectangle.
pub fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// "12s", "3m", "5h", "2d" from an RFC 3339 time to now.
pub fn ago(rfc3339: &str, now: SystemTime) -> String {
    let Ok(t) = humantime::parse_rfc3339(rfc3339) else {
        return "?".into();
    };
    let s = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The time of day of an RFC 3339 timestamp (UTC), for banners.
pub fn clock(rfc3339: &str) -> String {
    rfc3339
        .split('T')
        .nth(1)
        .map(|t| t.chars().take(8).collect())
        .unwrap_or_else(|| rfc3339.to_string())
}

/// Cuts a string to `n` characters, marking the cut, on one line.
pub fn clip(s: &str, n: usize) -> String {
    let one_line = s.lines().next().unwrap_or("");
    let more = s.lines().nth(1).is_some();
    if one_line.chars().count() > n {
        let mut out: String = one_line.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    } else if more {
        format!("{one_line} ⏎…")
    } else {
        one_line.to_string()
    }
}
