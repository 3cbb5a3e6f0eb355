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

use crate::keymap::{Hint, h};
use crate::model::Model;
use crate::net::{Command, SavePurpose};
use crate::screens::{Effect, Modal, Route, clock, ctrl, short_etag};
use crate::widgets::text;

/// Draws the editor of `editor`, with the live ETag and who else is here from `model`.
pub(super) fn draw(frame: &mut Frame, area: Rect, editor: &Editor, model: &Model) {
    let title = match (&editor.id, &editor.base) {
        (Some(id), Some(b)) => format!(" Edit product {id}: {} ", b.sku),
        _ => " New product ".to_string(),
    };
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // What the edit is based on, and what the server has now.
    let live = editor
        .id
        .and_then(|id| model.products.get(&id))
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
    let banner = editor
        .stale
        .as_ref()
        .map(|stale| banner_text(stale, inner.width));
    let banner_height = banner_rows(editor, inner.width);
    // Who else is in this product now: before anyone types, not after a 412.
    let here = editor.id.and_then(|id| model.editing_line(id));
    // The banner and a line per field must show; what the edit is based on and who
    // else is here take the rows left.
    let mut spare = inner.height.saturating_sub(banner_height + FIELDS_MIN);
    let info_height = text::rows(&info_line.to_string(), inner.width).min(spare);
    spare -= info_height;
    let here_height = u16::from(here.is_some() && spare > 0);
    let [info, here_area, banner_area, fields] = Layout::vertical([
        Constraint::Length(info_height),
        Constraint::Length(here_height),
        Constraint::Length(banner_height),
        Constraint::Min(3),
    ])
    .areas(inner);

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

/// A line for each field, the least the editor shows.
const FIELDS_MIN: u16 = 5;

/// The rows the stale banner takes at `width` (none without one).
fn banner_rows(editor: &Editor, width: u16) -> u16 {
    editor.stale.as_ref().map_or(0, |stale| {
        text::rows(&banner_text(stale, width), width).clamp(1, 5)
    })
}

/// The rows the editor needs at `width`: its borders, the banner, a line per field.
pub(super) fn min_height(editor: &Editor, width: u16) -> u16 {
    2 + banner_rows(editor, width.saturating_sub(2)) + FIELDS_MIN
}

/// The stale banner; below 60 columns without the time, and the ETag cut to 8 digits, so
/// it leaves the fields their rows.
fn banner_text(stale: &Stale, width: u16) -> String {
    let narrow = width < 60;
    if stale.deleted {
        return if narrow {
            format!(
                "⚠ {} deleted this product: saving fails (410); c in the panel recreates it.",
                stale.by
            )
        } else {
            format!(
                "⚠ {} deleted this product at {}. Saving will fail (410); you can recreate it from your edit.",
                stale.by,
                clock(&stale.at)
            )
        };
    }
    let fields = stale
        .fields
        .iter()
        .map(|f| f.label())
        .collect::<Vec<_>>()
        .join(", ");
    let what = if fields.is_empty() {
        "it".to_string()
    } else {
        fields
    };
    if narrow {
        format!(
            "⚠ {} changed {what} (now v{}, ETag {}): your save will conflict.",
            stale.by,
            stale.version,
            short_etag(&stale.etag)
        )
    } else {
        format!(
            "⚠ {} changed {what} at {} (now version {}, ETag {}): your save will conflict.",
            stale.by,
            clock(&stale.at),
            stale.version,
            stale.etag
        )
    }
}

fn draw_fields(frame: &mut Frame, fields: Rect, editor: &Editor) {
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
    editor: &Editor,
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

/// The editor's keys; Ctrl-S says what it sends (see [`keys`]).
const KEYS: &[Hint] = &[
    // Saving first: a narrow key bar keeps it.
    h("Ctrl-S", "save (If-Match)", true),
    h("Tab/S-Tab", "next/prev field", true),
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

/// The editor's keys, from the one table: a new product's Ctrl-S creates it (a POST, no
/// If-Match); with `--no-if-match` it saves without If-Match, and F8 does too.
pub fn keys(creating: bool, unsafe_saves: bool) -> Vec<Hint> {
    let mut keys = KEYS.to_vec();
    let Some(save) = keys.iter().position(|k| k.keys == "Ctrl-S") else {
        return keys;
    };
    if creating {
        keys[save] = h("Ctrl-S", "create (POST, no If-Match)", true);
    } else if unsafe_saves {
        keys[save] = h("Ctrl-S", "save WITHOUT If-Match", true);
        keys.insert(
            save + 1,
            h("F8", "save WITHOUT If-Match (lost-update demo)", false),
        );
    }
    keys
}

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
#[derive(Debug)]
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

/// A save sent and not yet answered for sure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSave {
    pub key: String,
    pub fields: ProductFields,
    pub if_match: Option<String>,
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
    /// An editor on `product` (or a new product) for the edit `token`.
    pub fn open(token: u64, product: Option<&Product>) -> Editor {
        let empty = ProductFields {
            sku: String::new(),
            name: String::new(),
            description: String::new(),
            price_cents: 0,
            status: Status::InStock,
        };
        let fields = product.map(Product::fields).unwrap_or(empty);
        Editor {
            token,
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

    /// Replaces every field's text with `fields` (a restored version, a reopened draft).
    pub fn fill(&mut self, fields: &ProductFields) {
        for (i, f) in Field::ALL.iter().enumerate() {
            self.inputs[i] = text_area(&edit_text(fields, *f));
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
        let focus = self.focus;
        *self = Editor::open(self.token, Some(product));
        self.focus = focus;
    }
}

/// A key in the editor of `editor`.
pub(super) fn on_key(editor: &mut Editor, model: &Model, key: KeyEvent) -> Vec<Effect> {
    let n = Field::ALL.len();
    let ctrl_s = ctrl(&key, 's');
    // F8 (save without If-Match) exists for the lost-update demo only, where the client
    // runs with --no-if-match against a server that accepts it.
    let ctrl_u = key.code == KeyCode::F(8) && model.unsafe_saves;
    if ctrl_s || ctrl_u {
        return save(editor, model.unsafe_saves);
    }
    if ctrl(&key, 'l') {
        return vec![Effect::ToggleLog];
    }
    match key.code {
        KeyCode::Esc if editor.is_dirty() => return vec![Effect::Ask(Modal::LeaveEditor)],
        KeyCode::Esc => return vec![Effect::Go(Route::Catalog)],
        KeyCode::F(1) => return vec![Effect::Help],
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

/// Ctrl-S (or F8): the fields as typed, with If-Match of the base, unless this client
/// saves without it (`--no-if-match`, the lost-update demo).
fn save(editor: &mut Editor, unsafe_saves: bool) -> Vec<Effect> {
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
            return vec![Effect::error(format!("Not saved: {list}."))];
        }
    };
    editor.saving = true;
    let id = editor.id;
    let unconditional = unsafe_saves && id.is_some();
    let if_match = if unconditional {
        None
    } else {
        editor.base.as_ref().map(|b| b.etag.clone())
    };
    let key = editor.key_for(&fields, if_match.as_deref());
    let save = Command::Save {
        edit: editor.token,
        purpose: if unconditional {
            SavePurpose::Unconditional
        } else {
            SavePurpose::Edit
        },
        id,
        fields,
        if_match,
        key,
    };
    let mut effects = vec![Effect::Net(save)];
    if unconditional {
        effects.push(Effect::error(
            "Saving WITHOUT If-Match: if someone else saved first, their change is silently lost.",
        ));
    }
    effects
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn the_same_save_again_keeps_its_key_and_another_save_gets_a_new_one() {
        let mut e = Editor::open(1, None);
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
