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

use crate::net::SavePurpose;
use crate::screens::{clip, clock};
use crate::state::State;
use crate::state::{Command, Modal, Screen};
use crate::widgets::keys::{Hint, h};

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
            "theirs".to_string(),
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
    /// The edit this conflict belongs to (the editor's token).
    pub token: u64,
    pub id: i64,
    pub merge: ThreeWayMerge,
    pub base_version: i64,
    pub base_etag: String,
    /// The base came back from GET /products/{id}/versions/{n}.
    pub base_fetched: bool,
    /// The current record (the 412 body's `current`), kept live by events.
    pub theirs: Product,
    pub picks: BTreeMap<Field, Side>,
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
}

pub(crate) fn open_conflict(
    state: &mut State,
    id: i64,
    mine: ProductFields,
    theirs: Product,
    deleted: Option<(String, String)>,
) -> Vec<Command> {
    // The base is the version the edit started from; a repeated conflict keeps it.
    let (base, base_fetched) = match &state.conflict {
        Some(c) if c.id == id => (
            (c.merge.base.clone(), c.base_version, c.base_etag.clone()),
            c.base_fetched,
        ),
        _ => match state.editor.as_ref().and_then(|e| e.base.clone()) {
            Some(b) => ((b.fields(), b.version, b.etag.clone()), false),
            None => ((theirs.fields(), theirs.version, theirs.etag.clone()), true),
        },
    };
    let (base_fields, base_version, base_etag) = base;
    let token = match &state.conflict {
        Some(c) if c.id == id => c.token,
        _ => state.editor.as_ref().map_or(0, |e| e.token),
    };
    let panel = ConflictPanel {
        token,
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
    state.conflict = Some(panel);
    state.screen = Screen::Conflict;
    match deleted {
        Some((by, at)) => state.error(format!(
            "Product {id} was deleted by {by} at {at}. Recreate it from your edit (c) or discard it (x)."
        )),
        None => {
            let by = state
                .conflict
                .as_ref()
                .map(|c| c.theirs.updated_by.clone())
                .unwrap_or_default();
            state.error(format!(
                "Conflict: {by} saved product {id} first (412 Precondition Failed). {conflicts} field(s) changed on both sides. r reload, o overwrite, m merge."
            ))
        }
    }
    if base_fetched {
        vec![]
    } else {
        vec![Command::FetchVersion {
            id,
            version: base_version,
        }]
    }
}

pub(crate) fn reload_theirs(state: &mut State) {
    let Some(panel) = state.conflict.take() else {
        return;
    };
    match &mut state.editor {
        Some(editor) => editor.load(&panel.theirs),
        None => state.open_editor(Some(&panel.theirs)),
    }
    state.screen = Screen::Editor;
    state.info(format!(
        "Reloaded version {} by {} (ETag {}); your edits were discarded.",
        panel.theirs.version, panel.theirs.updated_by, panel.theirs.etag
    ));
}

pub(crate) fn on_conflict_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let Some(panel) = &mut state.conflict else {
        state.screen = Screen::Catalog;
        return vec![];
    };
    if panel.saving {
        return vec![];
    }
    let rows = Field::ALL.len();
    // Deleted meanwhile: recreate or discard.
    if panel.deleted.is_some() {
        match key.code {
            KeyCode::Char('c') => {
                panel.saving = true;
                let fields = panel.merge.mine.clone();
                let key = super::editor::action_key(&mut state.editor, &fields, None);
                return vec![Command::Save {
                    edit: panel.token,
                    purpose: SavePurpose::Recreate,
                    id: None,
                    fields,
                    if_match: None,
                    key,
                }];
            }
            KeyCode::Char('x') => state.modal = Some(Modal::Discard),
            KeyCode::Char('q') => state.modal = Some(Modal::Quit),
            KeyCode::Esc => state.screen = Screen::Editor,
            KeyCode::Char('?') => state.help = true,
            _ => {}
        }
        return vec![];
    }
    match key.code {
        KeyCode::Char('q') => {
            // A conflict always has an edit of mine at stake: ask first.
            state.modal = Some(Modal::Quit);
        }
        KeyCode::Up | KeyCode::Char('k') => panel.row = panel.row.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => panel.row = (panel.row + 1).min(rows - 1),
        KeyCode::Char('?') => state.help = true,
        KeyCode::Esc if panel.picking => panel.picking = false,
        KeyCode::Esc => state.screen = Screen::Editor,
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Right | KeyCode::Char('l')
            if panel.picking =>
        {
            let field = Field::ALL[panel.row];
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
            return save_merge(state);
        }
        KeyCode::Char('l') => state.show_log = !state.show_log,
        KeyCode::Char('r') => {
            if panel.merge.mine != panel.merge.theirs {
                state.modal = Some(Modal::Reload);
            } else {
                reload_theirs(state);
            }
        }
        KeyCode::Char('o') => {
            panel.saving = true;
            let fields = panel.merge.mine.clone();
            let if_match = panel.theirs.etag.clone();
            let key = super::editor::action_key(&mut state.editor, &fields, Some(&if_match));
            return vec![Command::Save {
                edit: panel.token,
                purpose: SavePurpose::Overwrite,
                id: Some(panel.id),
                fields,
                if_match: Some(if_match),
                key,
            }];
        }
        KeyCode::Char('m') => {
            let conflicts = panel.merge.conflicts();
            if conflicts.is_empty() {
                return save_merge(state);
            }
            panel.picking = true;
            panel.row = Field::ALL
                .iter()
                .position(|f| *f == conflicts[0])
                .unwrap_or(0);
            let names = conflicts
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ");
            state.info(format!(
                "Both sides changed {names}: pick mine (←) or theirs (→) for each, then Ctrl-S."
            ));
        }
        _ => {}
    }
    vec![]
}

pub(crate) fn save_merge(state: &mut State) -> Vec<Command> {
    let Some(panel) = &mut state.conflict else {
        return vec![];
    };
    match panel.merged() {
        Ok(fields) => {
            panel.saving = true;
            let if_match = panel.theirs.etag.clone();
            let key = super::editor::action_key(&mut state.editor, &fields, Some(&if_match));
            vec![Command::Save {
                edit: panel.token,
                purpose: SavePurpose::Merge,
                id: Some(panel.id),
                fields,
                if_match: Some(if_match),
                key,
            }]
        }
        Err(missing) => {
            let names = missing
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ");
            state.error(format!(
                "Pick mine (←) or theirs (→) for {names} before saving."
            ));
            vec![]
        }
    }
}
