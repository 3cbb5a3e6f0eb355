//! The editor: one text area per field, the version and ETag the edit is based on, the
//! record's live ETag, and the banner that warns before a save that would conflict.

use std::collections::BTreeMap;

use catalog_shared::product::Field;
use catalog_shared::product::{
    Product, ProductFields, Status, check_description, check_name, check_sku, format_price,
    parse_price,
};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui_textarea::TextArea;

use crate::net::SavePurpose;
use crate::screens::clock;
use crate::state::State;
use crate::state::{Command, Modal, Screen, ctrl};
use crate::widgets::keys::{Hint, h};

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
    // Who else is in this product now: before anyone types, not after a 412.
    let here = editor.id.and_then(|id| state.editing_line(id));
    let [info, here_area, banner_area, fields] = Layout::vertical([
        Constraint::Length(if narrow { 2 } else { 1 }),
        Constraint::Length(if here.is_some() { 1 } else { 0 }),
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
    if let Some(here) = here {
        frame.render_widget(
            Paragraph::new(format!("● {here} (If-Match still decides who wins)"))
                .style(Style::new().fg(Color::Magenta).bold()),
            here_area,
        );
    }

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

// ---- The editor's state and keys ----

/// The keys of the NewProduct screen, for the status bar and the help.
pub const KEYS_NEW_PRODUCT: &[Hint] = &[
    h("Tab/S-Tab", "next/prev field", true),
    h("Ctrl-S", "create (POST, no If-Match)", true),
    h("↑↓", "cycle status (status field)", false),
    h("Home/End", "start/end of line", false),
    h("Ctrl-K", "delete to end of line", false),
    h("Ctrl-L", "log", true),
    h("F1", "help", true),
    h("Esc", "back", true),
    h(
        "Ctrl-C",
        "quit now (an unsaved edit goes to a draft file)",
        false,
    ),
];

/// The keys of the EditorUnsafe screen, for the status bar and the help.
pub const KEYS_UNSAFE: &[Hint] = &[
    h("Tab/S-Tab", "next/prev field", true),
    h("Ctrl-S", "save WITHOUT If-Match", true),
    h("F8", "save WITHOUT If-Match (lost-update demo)", false),
    h("↑↓", "cycle status (status field)", false),
    h("Home/End", "start/end of line", false),
    h("Ctrl-K", "delete to end of line", false),
    h("Ctrl-L", "log", true),
    h("F1", "help", true),
    h("Esc", "back", true),
    h(
        "Ctrl-C",
        "quit now (an unsaved edit goes to a draft file)",
        false,
    ),
];

/// The keys of the Editor screen, for the status bar and the help.
pub const KEYS: &[Hint] = &[
    h("Tab/S-Tab", "next/prev field", true),
    h("Ctrl-S", "save (If-Match)", true),
    h("↑↓", "cycle status (status field)", false),
    h("Home/End", "start/end of line", false),
    h("Ctrl-K", "delete to end of line", false),
    h("Ctrl-L", "log", true),
    h("F1", "help", true),
    h("Esc", "back", true),
    h(
        "Ctrl-C",
        "quit now (an unsaved edit goes to a draft file)",
        false,
    ),
];

/// The banner of an editor whose record changed on the server after the edit began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub by: String,
    pub at: String,
    pub fields: Vec<Field>,
    pub deleted: bool,
    pub version: i64,
    pub etag: String,
}

/// The editor: one text area per field, and the version the edit is based on.
pub struct Editor {
    /// This edit's identity: every save it sends carries it, and an answer for another
    /// edit never lands here.
    pub token: u64,
    /// `None` while creating a new product.
    pub id: Option<i64>,
    pub base: Option<Product>,
    pub inputs: Vec<TextArea<'static>>,
    pub focus: usize,
    pub stale: Option<Stale>,
    /// Field errors the server sent (422), cleared when the field is edited.
    pub server_errors: BTreeMap<Field, String>,
    pub saving: bool,
    /// The last save sent from this edit whose outcome is not known (no answer yet, or
    /// none to its re-sends): pressing Ctrl-S again on the same fields and the same
    /// If-Match is the same action, so it goes with the same Idempotency-Key.
    pub pending: Option<PendingSave>,
}

/// The Idempotency-Key for a save of the open edit (see [`Editor::key_for`]); a fresh one
/// when no editor is open.
pub(crate) fn action_key(
    editor: &mut Option<Editor>,
    fields: &ProductFields,
    if_match: Option<&str>,
) -> String {
    match editor {
        Some(e) => e.key_for(fields, if_match),
        None => crate::net::new_key(),
    }
}

/// A save sent and not yet answered for sure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSave {
    pub key: String,
    pub fields: ProductFields,
    pub if_match: Option<String>,
}

impl Editor {
    /// The Idempotency-Key for saving `fields` with `if_match`: the pending save's when
    /// this is that save again, else a fresh one (a new action), which becomes pending.
    pub fn key_for(&mut self, fields: &ProductFields, if_match: Option<&str>) -> String {
        match &self.pending {
            Some(p) if p.fields == *fields && p.if_match.as_deref() == if_match => p.key.clone(),
            _ => {
                let key = crate::net::new_key();
                self.pending = Some(PendingSave {
                    key: key.clone(),
                    fields: fields.clone(),
                    if_match: if_match.map(str::to_string),
                });
                key
            }
        }
    }
}

/// The text a field shows in the editor.
pub fn edit_text(fields: &ProductFields, field: Field) -> String {
    match field {
        Field::Price => {
            let s = format_price(fields.price_cents);
            s.trim_start_matches('$').to_string()
        }
        other => fields.display(other),
    }
}

pub(crate) fn text_area(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut t = TextArea::new(lines);
    t.move_cursor(ratatui_textarea::CursorMove::Bottom);
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

impl Editor {
    pub fn open(product: Option<&Product>) -> Editor {
        let empty = ProductFields {
            sku: String::new(),
            name: String::new(),
            description: String::new(),
            price_cents: 0,
            status: Status::InStock,
        };
        let fields = product.map(Product::fields).unwrap_or(empty);
        Editor {
            token: 0,
            id: product.map(|p| p.id),
            base: product.cloned(),
            inputs: Field::ALL
                .iter()
                .map(|f| text_area(&edit_text(&fields, *f)))
                .collect(),
            focus: 0,
            stale: None,
            server_errors: BTreeMap::new(),
            saving: false,
            pending: None,
        }
    }

    pub fn focused(&self) -> Field {
        Field::ALL[self.focus]
    }

    pub fn text(&self, field: Field) -> String {
        let i = Field::ALL.iter().position(|f| *f == field).unwrap_or(0);
        self.inputs[i].lines().join("\n")
    }

    /// The fields as typed, or the error of each field that is not valid, checked by the
    /// same rules the server applies.
    pub fn check(&self) -> Result<ProductFields, BTreeMap<Field, String>> {
        let mut errors = BTreeMap::new();
        let sku = self.text(Field::Sku);
        let name = self.text(Field::Name);
        let description = self.text(Field::Description);
        if let Err(e) = check_sku(&sku) {
            errors.insert(Field::Sku, e);
        }
        if let Err(e) = check_name(&name) {
            errors.insert(Field::Name, e);
        }
        if let Err(e) = check_description(&description) {
            errors.insert(Field::Description, e);
        }
        let price = parse_price(&self.text(Field::Price));
        if let Err(e) = &price {
            errors.insert(Field::Price, e.clone());
        }
        let status = self.text(Field::Status).parse::<Status>();
        if let Err(e) = &status {
            errors.insert(Field::Status, e.clone());
        }
        for (f, e) in &self.server_errors {
            errors.entry(*f).or_insert_with(|| e.clone());
        }
        match (price, status) {
            (Ok(price_cents), Ok(status)) if errors.is_empty() => Ok(ProductFields {
                sku,
                name,
                description,
                price_cents,
                status,
            }),
            _ => Err(errors),
        }
    }

    /// Whether `field` as typed means the same value as in `fields` (`300` is `300.00`).
    pub fn field_equals(&self, fields: &ProductFields, field: Field) -> bool {
        let text = self.text(field);
        match field {
            Field::Price => parse_price(&text) == Ok(fields.price_cents),
            Field::Status => text.parse::<Status>() == Ok(fields.status),
            _ => text == edit_text(fields, field),
        }
    }

    fn base_fields(&self) -> ProductFields {
        self.base
            .as_ref()
            .map(Product::fields)
            .unwrap_or(ProductFields {
                sku: String::new(),
                name: String::new(),
                description: String::new(),
                price_cents: 0,
                status: Status::InStock,
            })
    }

    /// Whether anything differs from the version the edit started from.
    pub fn is_dirty(&self) -> bool {
        !self.edited_fields().is_empty()
    }

    /// The fields whose value differs from the base.
    pub fn edited_fields(&self) -> Vec<Field> {
        let base = self.base_fields();
        Field::ALL
            .into_iter()
            .filter(|f| !self.field_equals(&base, *f))
            .collect()
    }

    /// Replaces everything with `product` (a clean refresh or a reload).
    pub fn load(&mut self, product: &Product) {
        let (focus, token) = (self.focus, self.token);
        *self = Editor::open(Some(product));
        self.focus = focus;
        self.token = token;
    }
}

pub(crate) fn on_editor_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let Some(editor) = &mut state.editor else {
        state.screen = Screen::Catalog;
        return vec![];
    };
    let n = Field::ALL.len();
    let ctrl_s = ctrl(&key, 's');
    // F8 (save without If-Match) exists for the lost-update demo only, where the client
    // runs with --no-if-match against a server that accepts it.
    let ctrl_u = key.code == KeyCode::F(8) && state.unsafe_saves;
    if ctrl_s || ctrl_u {
        if editor.saving {
            return vec![];
        }
        let fields = match editor.check() {
            Ok(f) => f,
            Err(errors) => {
                let list = errors
                    .iter()
                    .map(|(f, e)| format!("{} {e}", f.label()))
                    .collect::<Vec<_>>()
                    .join("; ");
                state.error(format!("Not saved: {list}."));
                return vec![];
            }
        };
        editor.saving = true;
        let id = editor.id;
        let unconditional = (ctrl_u || state.unsafe_saves) && id.is_some();
        let if_match = if unconditional {
            None
        } else {
            editor.base.as_ref().map(|b| b.etag.clone())
        };
        let edit = editor.token;
        let key = editor.key_for(&fields, if_match.as_deref());
        if unconditional {
            state.error("Saving WITHOUT If-Match: if someone else saved first, their change is silently lost.");
        }
        return vec![Command::Save {
            edit,
            purpose: if unconditional {
                SavePurpose::Unconditional
            } else {
                SavePurpose::Edit
            },
            id,
            fields,
            if_match,
            key,
        }];
    }
    if ctrl(&key, 'l') {
        state.show_log = !state.show_log;
        return vec![];
    }
    match key.code {
        KeyCode::Esc => {
            if editor.is_dirty() {
                state.modal = Some(Modal::LeaveEditor);
            } else {
                state.editor = None;
                state.screen = Screen::Catalog;
            }
        }
        KeyCode::F(1) => state.help = true,
        KeyCode::Tab => editor.focus = (editor.focus + 1) % n,
        KeyCode::BackTab => editor.focus = (editor.focus + n - 1) % n,
        KeyCode::Enter if editor.focused() != Field::Description => {
            editor.focus = (editor.focus + 1) % n;
        }
        KeyCode::Up | KeyCode::Down if editor.focused() == Field::Status => {
            let current = editor.text(Field::Status).parse::<Status>().ok();
            let i = current
                .and_then(|s| Status::ALL.iter().position(|x| *x == s))
                .unwrap_or(0);
            let next = if key.code == KeyCode::Down {
                (i + 1) % Status::ALL.len()
            } else {
                (i + Status::ALL.len() - 1) % Status::ALL.len()
            };
            let focus = editor.focus;
            editor.inputs[focus] = text_area(Status::ALL[next].as_str());
            editor.server_errors.remove(&Field::Status);
        }
        _ => {
            let focus = editor.focus;
            let field = editor.focused();
            if editor.inputs[focus].input(key) {
                editor.server_errors.remove(&field);
            }
        }
    }
    vec![]
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn the_same_save_again_keeps_its_key_and_another_save_gets_a_new_one() {
        let mut e = Editor::open(None);
        let a = ProductFields {
            sku: "A-1".into(),
            name: "A".into(),
            description: String::new(),
            price_cents: 100,
            status: Status::InStock,
        };
        let first = e.key_for(&a, Some("\"v1\""));
        assert_eq!(first.len(), 36);
        assert_eq!(
            e.key_for(&a, Some("\"v1\"")),
            first,
            "a retry of the action"
        );
        let other = ProductFields {
            price_cents: 101,
            ..a.clone()
        };
        let second = e.key_for(&other, Some("\"v1\""));
        assert_ne!(second, first, "other fields: a new action");
        assert_ne!(
            e.key_for(&other, Some("\"v2\"")),
            second,
            "another If-Match"
        );
        e.pending = None;
        assert_ne!(e.key_for(&other, Some("\"v2\"")), second, "answered: new");
    }
}
