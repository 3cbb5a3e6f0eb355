//! The protocol log pane: each HTTP exchange with the If-Match sent, the status, and the
//! ETag received, so an audience sees the headers doing the work.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Row, Table};

use crate::model::Model;

pub fn draw(frame: &mut Frame, area: Rect, model: &Model) {
    let block = Block::bordered().title(" Protocol log (l hides) ".bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height.saturating_sub(1) as usize;
    // Narrow: the request, its status and the If-Match sent (what the log is for).
    let narrow = inner.width < 70;
    let skip = model.log.len().saturating_sub(height);
    let rows = model.log.iter().skip(skip).map(|e| {
        let status = e
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unreachable".into());
        let color = match e.status {
            Some(200..=299) => Color::Green,
            Some(304) => Color::Cyan,
            Some(412) | Some(428) => Color::Magenta,
            _ => Color::Red,
        };
        let unsafe_write =
            e.if_match.is_none() && matches!(e.method.as_str(), "PUT" | "PATCH" | "DELETE");
        let color = if unsafe_write { Color::Red } else { color };
        // A revalidation sends If-None-Match; its 304 means the copy held was reused.
        let if_none_match = e
            .note
            .as_deref()
            .and_then(|n| n.strip_prefix("If-None-Match: "))
            .map(|rest| rest.split(';').next().unwrap_or(rest).to_string());
        let if_match = match (&e.if_match, e.method.as_str(), if_none_match) {
            (Some(tag), _, _) => tag.clone(),
            (None, "PUT" | "PATCH" | "DELETE", _) => "NONE (unsafe)".into(),
            (None, _, Some(tag)) => format!("INM {tag}"),
            (None, _, None) => "-".into(),
        };
        let status = if e.status == Some(304) {
            "304 reused".to_string()
        } else {
            status
        };
        let cells = if narrow {
            vec![format!("{} {}", e.method, e.path), status, if_match]
        } else {
            vec![
                e.method.clone(),
                e.path.clone(),
                if_match,
                status,
                e.etag.clone().unwrap_or_else(|| "-".into()),
                format!("{} ms", e.millis),
            ]
        };
        Row::new(cells).style(Style::new().fg(color))
    });
    let header = if narrow {
        Row::new(vec!["request", "status", "If-Match sent"])
    } else {
        Row::new(vec![
            "method",
            "path",
            "If-Match sent",
            "status",
            "ETag received",
            "time",
        ])
    }
    .style(Style::new().bold().underlined());
    let widths: Vec<Constraint> = if narrow {
        vec![
            Constraint::Fill(1),
            Constraint::Length(10),
            Constraint::Length(18),
        ]
    } else {
        vec![
            Constraint::Length(6),
            Constraint::Fill(1),
            Constraint::Length(22),
            Constraint::Length(11),
            Constraint::Length(18),
            Constraint::Length(8),
        ]
    };
    frame.render_widget(Table::new(rows, widths).header(header), inner);
}
