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
use crate::screens::{Component, Route, clip, help, log, popup};
use crate::state::{LOG_ROWS, STATUS_ROWS, State, log_full_pane};
use crate::widgets::text;

/// The rows of the frame, top to bottom below the open screen, and the texts that fit.
struct Rows {
    log: u16,
    /// The log covers the screen (too short for it beside the screen's essentials).
    log_full: bool,
    guide: Option<String>,
    guide_rows: u16,
    notice_rows: u16,
    notice: Option<String>,
}

/// Shares the rows out. The status bar first, then what the open screen must show; then
/// the log, the guide and the notice in that order, the last two with whole sentences
/// only; the screen takes what is left. A log too short beside the screen covers it all.
fn rows(state: &State, width: u16, height: u16) -> Rows {
    let screen_min = state.route.min_height(width);
    let mut left = height.saturating_sub(STATUS_ROWS);
    // The log over the whole pane: nothing else but the status bar.
    let log_full = state.show_log && log_full_pane(height, screen_min);
    left = if log_full {
        0
    } else {
        left.saturating_sub(screen_min)
    };
    let log = if state.show_log && !log_full {
        LOG_ROWS.min(left)
    } else {
        0
    };
    left -= log;
    // The guide's "▶ " is part of what wraps.
    let guide = crate::guide::text(state, width).and_then(|g| {
        let cap = if width < 60 { 5 } else { 3 };
        text::whole_sentences(&format!("▶ {g}"), width, cap.min(left))
    });
    let guide_rows = guide.as_deref().map_or(0, |g| text::rows(g, width));
    left -= guide_rows;
    // The notice keeps a row even when empty, if one is left; a notice whose first
    // sentence is too long for the rows left shows that sentence cut.
    let notice = state.notice.as_ref().and_then(|n| {
        text::whole_sentences(&n.text, width, left.min(3))
            .or_else(|| (left > 0).then(|| clip(&n.text, width as usize)))
    });
    let notice_rows = match &notice {
        Some(n) => text::rows(n, width).min(left),
        None => 1.min(left),
    };
    Rows {
        log,
        log_full,
        guide,
        guide_rows,
        notice_rows,
        notice,
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &mut State) {
    let area = frame.area();
    let rows = rows(state, area.width, area.height);
    let [main, log_area, guide_area, notice, status] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(rows.log),
        Constraint::Length(rows.guide_rows),
        Constraint::Length(rows.notice_rows),
        Constraint::Length(STATUS_ROWS),
    ])
    .areas(area);
    if let Some(text) = &rows.guide {
        frame.render_widget(
            Paragraph::new(text.as_str())
                .wrap(Wrap { trim: true })
                .style(Style::new().fg(Color::White).bg(Color::Blue).bold()),
            guide_area,
        );
    }
    if rows.log_full {
        log::draw(frame, main, &state.model, true);
    } else {
        let model = &state.model;
        match &mut state.route {
            Route::Catalog => state.catalog.draw(frame, main, model),
            Route::Drafts(d) => d.draw(frame, main, model),
            Route::Edit(e) => e.draw(frame, main, model),
            Route::History(h) => h.draw(frame, main, model),
        }
    }
    if rows.log > 0 {
        log::draw(frame, log_area, &state.model, false);
    }
    draw_notice(frame, notice, state, rows.notice.as_deref());
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

fn draw_notice(frame: &mut Frame, area: Rect, state: &State, text: Option<&str>) {
    if let (Some(n), Some(text)) = (&state.notice, text) {
        let style = if n.error {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text.to_string(), style)).wrap(Wrap { trim: true }),
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
