//! The protocol log: each HTTP exchange with the If-Match sent, the status, and the ETag
//! received, so an audience sees the headers doing the work. Beside a screen it is a pane
//! under it; in a terminal too short for that, it covers the screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Row, Table};

use crate::model::Model;
use crate::net::Exchange;
use crate::screens::{clip, short_etag};

/// Draws the log into `area`; `full` when it covers the screen (Esc or l returns).
pub fn draw(frame: &mut Frame, area: Rect, model: &Model, full: bool) {
    let title = if full {
        " Protocol log (Esc or l returns) "
    } else {
        " Protocol log (l hides) "
    };
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < 70 {
        draw_narrow(frame, inner, model);
    } else {
        draw_wide(frame, inner, model);
    }
}

/// What the exchange's columns say: the status, the precondition sent, the ETag received,
/// and the colour of the row.
struct Said {
    status: String,
    sent: String,
    etag: String,
    color: Color,
}

fn said(e: &Exchange, tag: impl Fn(&str) -> String) -> Said {
    let color = match e.status {
        Some(200..=299) => Color::Green,
        Some(304) => Color::Cyan,
        Some(412) | Some(428) => Color::Magenta,
        _ => Color::Red,
    };
    let write = matches!(e.method.as_str(), "PUT" | "PATCH" | "DELETE");
    let unsafe_write = e.if_match.is_none() && write;
    // A revalidation sends If-None-Match; its 304 means the copy held was reused.
    let if_none_match = e
        .note
        .as_deref()
        .and_then(|n| n.strip_prefix("If-None-Match: "))
        .map(|rest| rest.split(';').next().unwrap_or(rest).to_string());
    let sent = match (&e.if_match, if_none_match) {
        (Some(t), _) => tag(t),
        (None, _) if write => "NONE (unsafe)".into(),
        (None, Some(t)) => format!("INM {}", tag(&t)),
        (None, None) => "-".into(),
    };
    let status = match e.status {
        Some(304) => "304 reused".to_string(),
        Some(s) => s.to_string(),
        None => "unreachable".into(),
    };
    Said {
        status,
        sent,
        etag: e.etag.as_deref().map_or_else(|| "-".into(), &tag),
        color: if unsafe_write { Color::Red } else { color },
    }
}

/// The newest exchanges that fit `rows` rows of `per` rows each.
fn newest(model: &Model, rows: u16, per: u16) -> impl Iterator<Item = &Exchange> {
    let fit = (rows / per.max(1)) as usize;
    model.log.iter().skip(model.log.len().saturating_sub(fit))
}

/// Two lines an exchange: the request and its status, then what was sent and received,
/// the ETags cut to 8 digits.
fn draw_narrow(frame: &mut Frame, area: Rect, model: &Model) {
    let width = area.width as usize;
    let rows = newest(model, area.height, 2).map(|e| {
        let s = said(e, short_etag);
        let request = format!("{} {}", e.method, e.path);
        let status = format!(" {}", s.status);
        let first = format!(
            "{}{status}",
            clip(&request, width.saturating_sub(status.chars().count()))
        );
        let second = clip(&format!("  If-Match {}  ETag {}", s.sent, s.etag), width);
        Row::new(vec![Text::from(vec![
            Line::from(first),
            Line::from(second),
        ])])
        .height(2)
        .style(Style::new().fg(s.color))
    });
    frame.render_widget(Table::new(rows, [Constraint::Fill(1)]), area);
}

/// One line an exchange, in columns; below 100 columns the ETags are cut to 8 digits so
/// the path has room.
fn draw_wide(frame: &mut Frame, area: Rect, model: &Model) {
    let short = area.width < 98;
    let tag = |t: &str| if short { short_etag(t) } else { t.to_string() };
    let rows = newest(model, area.height.saturating_sub(1), 1).map(|e| {
        let s = said(e, tag);
        Row::new(vec![
            e.method.clone(),
            e.path.clone(),
            s.sent,
            s.status,
            s.etag,
            format!("{} ms", e.millis),
        ])
        .style(Style::new().fg(s.color))
    });
    let header = Row::new(vec![
        "method",
        "path",
        "If-Match sent",
        "status",
        "ETag received",
        "time",
    ])
    .style(Style::new().bold().underlined());
    let (sent, etag) = if short { (15, 13) } else { (22, 18) };
    let widths = [
        Constraint::Length(6),
        Constraint::Fill(1),
        Constraint::Length(sent),
        Constraint::Length(11),
        Constraint::Length(etag),
        Constraint::Length(8),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), area);
}
