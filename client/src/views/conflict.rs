//! The conflict panel: for each field the base (the version I started from), mine, theirs
//! (the server's current record), and the merged result; fields changed on both sides
//! are marked and wait for a pick.

use catalog_shared::merge::{FieldOutcome, Side};
use catalog_shared::product::Field;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::state::State;
use crate::views::{clip, clock};

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let Some(panel) = &state.conflict else {
        return;
    };
    let theirs = &panel.theirs;
    let title = format!(" Conflict: product {} ({}) ", panel.id, theirs.sku);
    let block = Block::bordered()
        .title(title.bold())
        .border_style(Style::new().fg(Color::Magenta));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [intro, table_area, foot] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(2),
    ])
    .areas(inner);

    if let Some((by, at)) = &panel.deleted {
        let text = vec![
            Line::from(format!(
                "{by} deleted this product at {}, while you were editing version {}.",
                clock(at),
                panel.base_version
            ))
            .style(Style::new().fg(Color::Red).bold()),
            Line::from(
                "Your edit is kept below. c recreates it as a new product (POST), x discards it.",
            ),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), intro);
    } else {
        let text = vec![
            Line::from(format!(
                "You edited version {} (ETag {}). {} saved version {} (ETag {}) at {} first.",
                panel.base_version,
                panel.base_etag,
                theirs.updated_by,
                theirs.version,
                theirs.etag,
                clock(&theirs.updated_at)
            )),
            Line::from(format!(
                "The server answered 412 Precondition Failed: nothing of yours was lost. {}",
                panel.note.clone().unwrap_or_default()
            )),
            Line::from(if panel.base_fetched {
                "base: fetched from /versions".to_string()
            } else {
                "base: from your editor (fetching /versions…)".to_string()
            })
            .style(Style::new().fg(Color::DarkGray)),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), intro);
    }

    // Narrow: the base and the "changed" columns give way to mine, theirs and the result.
    let narrow = table_area.width < 64;
    let col = if narrow {
        (table_area.width.saturating_sub(14) / 3).max(4) as usize
    } else {
        (table_area.width.saturating_sub(24) / 4).max(6) as usize
    };
    let rows = Field::ALL.iter().enumerate().map(|(i, f)| {
        let m = &panel.merge;
        let outcome = panel.outcome(*f);
        let (mark, mark_style) = match outcome {
            FieldOutcome::Unchanged => ("", Style::new()),
            FieldOutcome::Mine => ("mine", Style::new().fg(Color::Green)),
            FieldOutcome::Theirs => ("theirs", Style::new().fg(Color::Blue)),
            FieldOutcome::Same => ("same", Style::new().fg(Color::Green)),
            FieldOutcome::Conflict => ("BOTH ✗", Style::new().fg(Color::Red).bold()),
        };
        let result = match outcome {
            FieldOutcome::Conflict => match panel.picks.get(f) {
                Some(Side::Mine) => format!("{} (mine)", clip(&m.mine.display(*f), col)),
                Some(Side::Theirs) => format!("{} (theirs)", clip(&m.theirs.display(*f), col)),
                None => "← pick →".to_string(),
            },
            FieldOutcome::Mine | FieldOutcome::Same => clip(&m.mine.display(*f), col),
            _ => clip(&m.theirs.display(*f), col),
        };
        let mut style = Style::new();
        if panel.picking && panel.row == i {
            style = style.add_modifier(Modifier::REVERSED);
        }
        let cells = if narrow {
            vec![
                Cell::from(f.label()).style(Style::new().bold()),
                Cell::from(clip(&m.mine.display(*f), col)),
                Cell::from(clip(&m.theirs.display(*f), col)),
                Cell::from(
                    if outcome == FieldOutcome::Conflict && !panel.picks.contains_key(f) {
                        "BOTH ✗".to_string()
                    } else {
                        result
                    },
                )
                .style(Style::new().bold()),
            ]
        } else {
            vec![
                Cell::from(f.label()).style(Style::new().bold()),
                Cell::from(clip(&m.base.display(*f), col)),
                Cell::from(clip(&m.mine.display(*f), col)),
                Cell::from(clip(&m.theirs.display(*f), col)),
                Cell::from(mark).style(mark_style),
                Cell::from(result).style(Style::new().bold()),
            ]
        };
        Row::new(cells).style(style)
    });
    let header = if narrow {
        Row::new(vec![
            "field".to_string(),
            "mine".to_string(),
            format!("theirs v{}", theirs.version),
            "result".to_string(),
        ])
    } else {
        Row::new(vec![
            "field".to_string(),
            format!("base v{}", panel.base_version),
            "mine".to_string(),
            format!("theirs v{} ({})", theirs.version, theirs.updated_by),
            "changed".to_string(),
            "result".to_string(),
        ])
    }
    .style(Style::new().bold().underlined());
    let widths: Vec<Constraint> = if narrow {
        vec![
            Constraint::Length(11),
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ]
    } else {
        vec![
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Fill(1),
        ]
    };
    frame.render_widget(Table::new(rows, widths).header(header), table_area);

    let conflicts = panel.merge.conflicts();
    let foot_text = if panel.deleted.is_some() {
        String::new()
    } else if panel.picking {
        let left = conflicts
            .iter()
            .filter(|f| !panel.picks.contains_key(f))
            .count();
        format!(
            "Merging: {left} field(s) still to pick. ← mine, → theirs, A all mine, T all theirs, Ctrl-S saves with If-Match: {}.",
            theirs.etag
        )
    } else if conflicts.is_empty() {
        format!(
            "No field was changed on both sides: m merges and saves at once (If-Match: {}).",
            theirs.etag
        )
    } else {
        format!(
            "r takes theirs, o overwrites theirs with mine (If-Match: {}), m merges field by field.",
            theirs.etag
        )
    };
    frame.render_widget(Paragraph::new(foot_text).wrap(Wrap { trim: true }), foot);
}
