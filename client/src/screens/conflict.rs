//! The conflict panel: for each field the base (the version I started from), mine, theirs
//! (the server's current record), and the merged result; fields changed on both sides
//! are marked and wait for a pick.

use std::collections::BTreeMap;

use catalog_shared::merge::ThreeWayMerge;
use catalog_shared::merge::{FieldOutcome, Side};
use catalog_shared::product::Field;
use catalog_shared::product::{Product, ProductFields};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use crate::keymap::{Hint, h};
use crate::net::{Command, SavePurpose};
use crate::screens::editor::Editor;
use crate::screens::{EditSession, Effect, Modal, clip, clock, short_etag};
use crate::widgets::text;

/// Draws the panel: what happened, the fields (what matters first), what to do. When
/// rows run short the unchanged fields give way first ("+2 unchanged"); what happened and
/// what to do stay at every size.
pub(super) fn draw(frame: &mut Frame, area: Rect, panel: &ConflictPanel) {
    let theirs = &panel.theirs;
    let title = format!(" Conflict: product {} ({}) ", panel.id, theirs.sku);
    let block = Block::bordered()
        .title(title.bold())
        .border_style(Style::new().fg(Color::Magenta));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let narrow = inner.width < 64;
    let happened = happened(panel, narrow);
    let todo = todo(panel, narrow);
    let happened_rows = text::rows(&happened_plain(&happened), inner.width);
    let todo_rows = text::rows(&todo, inner.width);
    let order = panel.order();
    let changed = order
        .iter()
        .filter(|f| panel.outcome(**f) != FieldOutcome::Unchanged)
        .count();
    // The header and the changed fields first; then the base's provenance and the
    // unchanged fields, as room allows.
    let table_room = inner.height.saturating_sub(happened_rows + todo_rows + 1) as usize;
    let shown = if table_room >= order.len() {
        order.len()
    } else {
        changed.min(table_room)
    };
    let hidden = order.len() - shown;
    let table_rows = shown as u16 + 1;
    let hidden_row = u16::from(hidden > 0 && table_room > shown);
    let base_row = u16::from(
        panel.deleted.is_none()
            && inner.height > happened_rows + todo_rows + table_rows + hidden_row,
    );
    let [intro, base_area, table_area, hidden_area, _, foot] = Layout::vertical([
        Constraint::Length(happened_rows),
        Constraint::Length(base_row),
        Constraint::Length(table_rows),
        Constraint::Length(hidden_row),
        Constraint::Fill(1),
        Constraint::Length(todo_rows),
    ])
    .areas(inner);
    if hidden > 0 {
        frame.render_widget(
            Paragraph::new(format!("+{hidden} unchanged")).style(Style::new().fg(Color::DarkGray)),
            hidden_area,
        );
    }
    frame.render_widget(Paragraph::new(happened).wrap(Wrap { trim: true }), intro);
    frame.render_widget(
        Paragraph::new(match (panel.base_fetched, narrow) {
            (true, _) => "base: fetched from /versions",
            (false, true) => "base: fetching /versions…",
            (false, false) => "base: from your editor (fetching /versions…)",
        })
        .style(Style::new().fg(Color::DarkGray)),
        base_area,
    );
    draw_table(frame, table_area, panel, &order[..shown], narrow);
    frame.render_widget(Paragraph::new(todo).wrap(Wrap { trim: true }), foot);
}

/// The rows the panel needs for what it must show at `width`: what happened, the header,
/// the changed fields, what to do, and its borders.
pub(super) fn min_height(panel: &ConflictPanel, width: u16) -> u16 {
    let inner = width.saturating_sub(2);
    let narrow = inner < 64;
    let order = panel.order();
    let changed = order
        .iter()
        .filter(|f| panel.outcome(**f) != FieldOutcome::Unchanged)
        .count() as u16;
    text::rows(&happened_plain(&happened(panel, narrow)), inner)
        + text::rows(&todo(panel, narrow), inner)
        + 1
        + changed
        + 2
}

/// What happened: a 412 (who saved first) or a 410 (who deleted it).
fn happened(panel: &ConflictPanel, narrow: bool) -> Vec<Line<'static>> {
    let theirs = &panel.theirs;
    if let Some((by, at)) = &panel.deleted {
        return vec![
            Line::from(format!(
                "{by} deleted this product at {}, while you were editing version {}.",
                clock(at),
                panel.base_version
            ))
            .style(Style::new().fg(Color::Red).bold()),
            Line::from(if narrow {
                "Your edit is kept: c recreates it, x discards it."
            } else {
                "Your edit is kept below. c recreates it as a new product (POST), x discards it."
            }),
        ];
    }
    let note = panel.note.clone().unwrap_or_default();
    if narrow {
        return vec![Line::from(
            format!(
                "412: {} saved version {} first. Nothing of yours was lost. {note}",
                theirs.updated_by, theirs.version
            )
            .trim_end()
            .to_string(),
        )];
    }
    vec![
        Line::from(format!(
            "You edited version {} (ETag {}). {} saved version {} (ETag {}) at {} first.",
            panel.base_version,
            panel.base_etag,
            theirs.updated_by,
            theirs.version,
            theirs.etag,
            clock(&theirs.updated_at)
        )),
        Line::from(
            format!(
                "The server answered 412 Precondition Failed: nothing of yours was lost. {note}"
            )
            .trim_end()
            .to_string(),
        ),
    ]
}

/// The lines as one text per line, for counting the rows they wrap into.
fn happened_plain(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What to do next, with the If-Match a save sends.
fn todo(panel: &ConflictPanel, narrow: bool) -> String {
    let tag = if narrow {
        short_etag(&panel.theirs.etag)
    } else {
        panel.theirs.etag.clone()
    };
    let conflicts = panel.merge.conflicts();
    if panel.deleted.is_some() {
        String::new()
    } else if panel.picking {
        let left = conflicts
            .iter()
            .filter(|f| !panel.picks.contains_key(f))
            .count();
        if narrow {
            format!("{left} to pick: ← mine, → theirs, then Ctrl-S (If-Match {tag}).")
        } else {
            format!(
                "Merging: {left} field(s) still to pick. ← mine, → theirs, A all mine, T all theirs, Ctrl-S saves with If-Match: {tag}."
            )
        }
    } else if conflicts.is_empty() {
        if narrow {
            format!("No overlap: m merges and saves (If-Match {tag}).")
        } else {
            format!(
                "No field was changed on both sides: m merges and saves at once (If-Match: {tag})."
            )
        }
    } else if narrow {
        format!("m merges field by field, r takes theirs, o overwrites (If-Match {tag}).")
    } else {
        format!(
            "r takes theirs, o overwrites theirs with mine (If-Match: {tag}), m merges field by field."
        )
    }
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    panel: &ConflictPanel,
    fields: &[Field],
    narrow: bool,
) {
    let theirs = &panel.theirs;
    // Narrow: the base and the "changed" columns give way to mine, theirs and the result.
    let theirs_header = format!("theirs v{} ({})", theirs.version, theirs.updated_by);
    let widths = ConflictColumns::fit(area.width, narrow, theirs_header.chars().count());
    let col = widths.value as usize;
    let m = &panel.merge;
    let rows: Vec<Row> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
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
                    Some(Side::Theirs) => {
                        format!("{} (theirs)", clip(&m.theirs.display(*f), col))
                    }
                    None if narrow => "BOTH ✗".to_string(),
                    None => "← pick →".to_string(),
                },
                FieldOutcome::Mine | FieldOutcome::Same => clip(&m.mine.display(*f), col),
                _ => clip(&m.theirs.display(*f), col),
            };
            let mut style = Style::new();
            if panel.picking && panel.row == i {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let mine = Cell::from(clip(&m.mine.display(*f), col));
            let theirs = Cell::from(clip(&m.theirs.display(*f), widths.theirs as usize));
            let cells = if narrow {
                vec![
                    Cell::from(f.label()).style(Style::new().bold()),
                    mine,
                    theirs,
                    Cell::from(result).style(Style::new().bold()),
                ]
            } else {
                vec![
                    Cell::from(f.label()).style(Style::new().bold()),
                    Cell::from(clip(&m.base.display(*f), col)),
                    mine,
                    theirs,
                    Cell::from(mark).style(mark_style),
                    Cell::from(result).style(Style::new().bold()),
                ]
            };
            Row::new(cells).style(style)
        })
        .collect();
    let header = if narrow {
        Row::new(vec![
            "field".to_string(),
            "mine".to_string(),
            "theirs".to_string(),
            "result".to_string(),
        ])
    } else {
        Row::new(vec![
            "field".to_string(),
            format!("base v{}", panel.base_version),
            "mine".to_string(),
            theirs_header,
            "changed".to_string(),
            "result".to_string(),
        ])
    }
    .style(Style::new().bold().underlined());
    let widths: Vec<Constraint> = if narrow {
        vec![
            Constraint::Length(FIELD - 1),
            Constraint::Length(widths.value),
            Constraint::Length(widths.theirs),
            Constraint::Fill(1),
        ]
    } else {
        vec![
            Constraint::Length(FIELD),
            Constraint::Length(widths.value),
            Constraint::Length(widths.value),
            Constraint::Length(widths.theirs),
            Constraint::Length(CHANGED),
            Constraint::Fill(1),
        ]
    };
    frame.render_widget(Table::new(rows, widths).header(header), area);
}

/// The field column ("description" and a space) and the "changed" column ("BOTH ✗").
const FIELD: u16 = 12;
const CHANGED: u16 = 8;

/// The widths of the panel's value columns.
struct ConflictColumns {
    /// Base, mine and the result.
    value: u16,
    /// Theirs, whose header names the version and who made it: it gets the room for the
    /// whole header when the others can spare it.
    theirs: u16,
}

impl ConflictColumns {
    fn fit(width: u16, narrow: bool, theirs_header: usize) -> ConflictColumns {
        // Values share what the fixed columns and the one-column gaps leave.
        let (values, room) = if narrow {
            (3, width.saturating_sub(FIELD - 1 + 3))
        } else {
            (4, width.saturating_sub(FIELD + CHANGED + 5))
        };
        let even = (room / values).max(4);
        let header = (theirs_header as u16).min(room / 2);
        if narrow || header <= even {
            return ConflictColumns {
                value: even,
                theirs: even,
            };
        }
        ConflictColumns {
            value: ((room - header) / (values - 1)).max(4),
            theirs: header,
        }
    }
}

// ---- The conflict panel's state and keys ----

/// The keys of the Conflict screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
    h("r", "reload theirs", true),
    h("o", "overwrite with mine", true),
    h("m", "merge", true),
    h("↑↓/jk", "move", false),
    h("l", "log", false),
    h("?", "help", true),
    h("Esc", "back to my edit", true),
    h("q", "quit (asks; your edit goes to a draft file)", false),
];

/// The keys of the ConflictPicking screen, for the status bar and the help.
pub const KEYS_PICKING: &[Hint] = &[
    h("←/h", "pick mine", true),
    h("→/l", "pick theirs", true),
    h("A", "all mine", true),
    h("T", "all theirs", true),
    h("↑↓/jk", "move", true),
    h("Ctrl-S", "save merge", true),
    h("?", "help", false),
    h("Esc", "stop merging", true),
];

/// The keys of the ConflictDeleted screen, for the status bar and the help.
pub const KEYS_DELETED: &[Hint] = &[
    h("c", "recreate from mine", true),
    h("x", "discard my edit", true),
    h("?", "help", false),
    h("Esc", "back to my edit", true),
    h("q", "quit (asks; your edit goes to a draft file)", false),
];

/// The conflict panel after a 412 (or 410): base, mine and theirs, and the picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictPanel {
    pub id: i64,
    pub merge: ThreeWayMerge,
    pub base_version: i64,
    pub base_etag: String,
    /// The base came back from GET /products/{id}/versions/{n}.
    pub base_fetched: bool,
    /// The current record (the 412 body's `current`), kept live by events.
    pub theirs: Product,
    pub picks: BTreeMap<Field, Side>,
    /// The selected row while picking, in the panel's [`order`](ConflictPanel::order).
    pub row: usize,
    pub picking: bool,
    /// Set when the record was deleted: who and when.
    pub deleted: Option<(String, String)>,
    pub saving: bool,
    pub note: Option<String>,
}

impl ConflictPanel {
    /// The merged record, if every conflicting field has a pick.
    pub fn merged(&self) -> Result<ProductFields, Vec<Field>> {
        let missing: Vec<Field> = self
            .merge
            .conflicts()
            .into_iter()
            .filter(|f| !self.picks.contains_key(f))
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(self
            .merge
            .result(|f| self.picks.get(&f).copied().unwrap_or(Side::Theirs)))
    }

    pub fn outcome(&self, field: Field) -> FieldOutcome {
        self.merge.outcome(field)
    }

    /// The fields in the order the panel lists them, what matters first: changed on both
    /// sides (differently, then alike), then changed by me, then by them, then unchanged.
    pub fn order(&self) -> Vec<Field> {
        let rank = |f: &Field| match self.outcome(*f) {
            FieldOutcome::Conflict => 0,
            FieldOutcome::Same => 1,
            FieldOutcome::Mine => 2,
            FieldOutcome::Theirs => 3,
            FieldOutcome::Unchanged => 4,
        };
        let mut fields = Field::ALL.to_vec();
        fields.sort_by_key(rank);
        fields
    }
}

/// The keys the panel has now.
pub(super) fn keys(panel: &ConflictPanel) -> Vec<Hint> {
    if panel.deleted.is_some() {
        KEYS_DELETED.to_vec()
    } else if panel.picking {
        KEYS_PICKING.to_vec()
    } else {
        KEYS.to_vec()
    }
}

/// Opens the panel on a 412 (`theirs` is the record now) or a 410 (`deleted`: who and
/// when), with `mine` as sent.
pub(super) fn open(
    session: &mut EditSession,
    id: i64,
    mine: ProductFields,
    theirs: Product,
    deleted: Option<(String, String)>,
) -> Vec<Effect> {
    // The base is the version the edit started from; a repeated conflict keeps it.
    let (base, base_fetched) = match &session.conflict {
        Some(c) if c.id == id => (
            (c.merge.base.clone(), c.base_version, c.base_etag.clone()),
            c.base_fetched,
        ),
        _ => match session.editor.base.clone() {
            Some(b) => ((b.fields(), b.version, b.etag.clone()), false),
            None => ((theirs.fields(), theirs.version, theirs.etag.clone()), true),
        },
    };
    let (base_fields, base_version, base_etag) = base;
    let by = theirs.updated_by.clone();
    let panel = ConflictPanel {
        id,
        merge: ThreeWayMerge::new(base_fields, mine, theirs.fields()),
        base_version,
        base_etag,
        base_fetched,
        theirs,
        picks: BTreeMap::new(),
        row: 0,
        picking: false,
        deleted: deleted.clone(),
        saving: false,
        note: None,
    };
    let conflicts = panel.merge.conflicts().len();
    session.conflict = Some(panel);
    let mut effects = vec![match deleted {
        Some((by, at)) => Effect::error(format!(
            "Product {id} was deleted by {by} at {at}. Recreate it from your edit (c) or discard it (x)."
        )),
        None => Effect::error(format!(
            "Conflict: {by} saved product {id} first (412 Precondition Failed). {conflicts} field(s) changed on both sides. r reload, o overwrite, m merge."
        )),
    }];
    if !base_fetched {
        effects.push(Effect::Net(Command::FetchVersion {
            id,
            version: base_version,
        }));
    }
    effects
}

/// Takes theirs: the editor reloads the current record, and my edits are gone.
pub(super) fn reload_theirs(session: &mut EditSession) -> Vec<Effect> {
    let Some(panel) = session.conflict.take() else {
        return vec![];
    };
    session.editor.load(&panel.theirs);
    vec![Effect::info(format!(
        "Reloaded version {} by {} (ETag {}); your edits were discarded.",
        panel.theirs.version, panel.theirs.updated_by, panel.theirs.etag
    ))]
}

/// A key in the panel of `session`.
pub(super) fn on_key(session: &mut EditSession, key: KeyEvent) -> Vec<Effect> {
    let token = session.editor.token;
    let editor = &mut session.editor;
    let Some(panel) = &mut session.conflict else {
        return vec![];
    };
    if panel.saving {
        return vec![];
    }
    let rows = Field::ALL.len();
    // Deleted meanwhile: recreate or discard.
    if panel.deleted.is_some() {
        return match key.code {
            KeyCode::Char('c') => {
                panel.saving = true;
                let fields = panel.merge.mine.clone();
                let key = editor.key_for(&fields, None);
                vec![Effect::Net(Command::Save {
                    edit: token,
                    purpose: SavePurpose::Recreate,
                    id: None,
                    fields,
                    if_match: None,
                    key,
                })]
            }
            KeyCode::Char('x') => vec![Effect::Ask(Modal::Discard)],
            KeyCode::Char('q') => vec![Effect::Ask(Modal::Quit)],
            KeyCode::Esc => {
                session.conflict = None;
                vec![]
            }
            KeyCode::Char('?') => vec![Effect::Help],
            _ => vec![],
        };
    }
    match key.code {
        // A conflict always has an edit of mine at stake: ask first.
        KeyCode::Char('q') => return vec![Effect::Ask(Modal::Quit)],
        KeyCode::Up | KeyCode::Char('k') => panel.row = panel.row.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => panel.row = (panel.row + 1).min(rows - 1),
        KeyCode::Char('?') => return vec![Effect::Help],
        KeyCode::Esc if panel.picking => panel.picking = false,
        // Back to my edit, which is as I left it; the next save meets the server again.
        KeyCode::Esc => session.conflict = None,
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Right | KeyCode::Char('l')
            if panel.picking =>
        {
            let field = panel.order()[panel.row.min(rows - 1)];
            let side = if matches!(key.code, KeyCode::Left | KeyCode::Char('h')) {
                Side::Mine
            } else {
                Side::Theirs
            };
            if panel.outcome(field) == FieldOutcome::Conflict {
                panel.picks.insert(field, side);
            }
        }
        KeyCode::Char('A') if panel.picking => {
            for f in panel.merge.conflicts() {
                panel.picks.insert(f, Side::Mine);
            }
        }
        KeyCode::Char('T') if panel.picking => {
            for f in panel.merge.conflicts() {
                panel.picks.insert(f, Side::Theirs);
            }
        }
        KeyCode::Char('s') if key.modifiers.contains(KeyModifiers::CONTROL) && panel.picking => {
            return save_merge(panel, editor);
        }
        KeyCode::Char('l') => return vec![Effect::ToggleLog],
        KeyCode::Char('r') if panel.merge.mine != panel.merge.theirs => {
            return vec![Effect::Ask(Modal::Reload)];
        }
        KeyCode::Char('r') => return reload_theirs(session),
        KeyCode::Char('o') => {
            panel.saving = true;
            let fields = panel.merge.mine.clone();
            let if_match = panel.theirs.etag.clone();
            let key = editor.key_for(&fields, Some(&if_match));
            return vec![Effect::Net(Command::Save {
                edit: token,
                purpose: SavePurpose::Overwrite,
                id: Some(panel.id),
                fields,
                if_match: Some(if_match),
                key,
            })];
        }
        KeyCode::Char('m') => {
            let conflicts = panel.merge.conflicts();
            if conflicts.is_empty() {
                return save_merge(panel, editor);
            }
            panel.picking = true;
            // The fields changed on both sides come first.
            panel.row = 0;
            let names = conflicts
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ");
            return vec![Effect::info(format!(
                "Both sides changed {names}: pick mine (←) or theirs (→) for each, then Ctrl-S."
            ))];
        }
        _ => {}
    }
    vec![]
}

/// Saves the merged record with If-Match of theirs, once every overlap has a pick.
fn save_merge(panel: &mut ConflictPanel, editor: &mut Editor) -> Vec<Effect> {
    match panel.merged() {
        Ok(fields) => {
            panel.saving = true;
            let if_match = panel.theirs.etag.clone();
            let key = editor.key_for(&fields, Some(&if_match));
            vec![Effect::Net(Command::Save {
                edit: editor.token,
                purpose: SavePurpose::Merge,
                id: Some(panel.id),
                fields,
                if_match: Some(if_match),
                key,
            })]
        }
        Err(missing) => {
            let names = missing
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ");
            vec![Effect::error(format!(
                "Pick mine (←) or theirs (→) for {names} before saving."
            ))]
        }
    }
}
