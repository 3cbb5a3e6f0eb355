//! One edit of one product (or of a new one): its editor, and its conflict panel once a
//! save met a 412 or a 410. Every save it sends carries its token, and every answer to one
//! comes back here or nowhere; the record it edits is followed live, so it warns before
//! the save instead of after.

use std::path::PathBuf;

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::merge::FieldOutcome;
use catalog_shared::product::{Field, Product, ProductFields};
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;

use crate::draft::DraftFile;
use crate::keymap::Hint;
use crate::model::Model;
use crate::net::{SavePurpose, WriteOutcome};
use crate::screens::conflict::{self, ConflictPanel};
use crate::screens::editor::{self, Editor, PendingSave, Stale, edit_text, text_area};
use crate::screens::{Component, Effect, Route};

/// An open edit.
#[derive(Debug)]
pub struct EditSession {
    pub editor: Editor,
    /// Shown instead of the editor while it is `Some`: what the 412 (or 410) handed back.
    pub conflict: Option<ConflictPanel>,
    /// The draft file this edit continues, when it was reopened from one.
    pub draft_path: Option<PathBuf>,
}

impl EditSession {
    /// A new edit of `product` (or of a new product), with its own token.
    pub fn open(model: &mut Model, product: Option<&Product>) -> EditSession {
        EditSession {
            editor: Editor::open(model.next_edit_token(), product),
            conflict: None,
            draft_path: None,
        }
    }

    /// An edit continuing a draft file: its typing back over `base` (or a new product).
    pub fn from_draft(model: &mut Model, base: Option<&Product>, file: &DraftFile) -> EditSession {
        let mut session = EditSession::open(model, base);
        for (i, f) in Field::ALL.iter().enumerate() {
            if let Some(text) = file.draft.text(*f) {
                session.editor.inputs[i] = text_area(text);
            }
        }
        // A save of this draft was sent before the restart and never answered: the same
        // save goes with the same key, so it cannot apply twice; typing on since makes
        // another request, which gets a key of its own. (A draft written before the request
        // was kept in it has only the key: the typed fields and the base stand in.)
        if let Some(key) = &file.draft.pending_key {
            let request = match &file.draft.pending {
                Some(p) => Some((p.fields.clone(), p.if_match.clone())),
                None => session
                    .editor
                    .check()
                    .ok()
                    .map(|f| (f, file.draft.based_on_etag.clone())),
            };
            if let Some((fields, if_match)) = request {
                session.editor.pending = Some(PendingSave {
                    key: key.clone(),
                    fields,
                    if_match,
                });
            }
        }
        session.draft_path = Some(file.path.clone());
        model.drafts.retain(|d| d.path != file.path);
        session
    }

    /// An edit restoring `old`'s fields over `current`, already being saved.
    pub fn restoring(model: &mut Model, current: &Product, old: &ProductFields) -> EditSession {
        let mut session = EditSession::open(model, Some(current));
        session.editor.fill(old);
        session.editor.saving = true;
        session
    }

    pub fn token(&self) -> u64 {
        self.editor.token
    }

    /// Whether a save of product `id` from this edit is waiting for its answer.
    pub fn saving(&self, id: i64) -> bool {
        (self.editor.saving && self.editor.id == Some(id))
            || self
                .conflict
                .as_ref()
                .is_some_and(|c| c.saving && c.id == id)
    }

    /// The products this edit follows: the editor's, and the panel's.
    pub fn follows(&self) -> impl Iterator<Item = i64> + '_ {
        self.editor
            .id
            .into_iter()
            .chain(self.conflict.as_ref().map(|c| c.id))
    }

    /// The rows this edit needs on screen at `width`.
    pub fn min_height(&self, width: u16) -> u16 {
        match &self.conflict {
            Some(panel) => conflict::min_height(panel, width),
            None => editor::min_height(&self.editor, width),
        }
    }

    /// `r` answered yes: theirs replaces my edit.
    pub fn reload_theirs(&mut self) -> Vec<Effect> {
        conflict::reload_theirs(self)
    }

    /// A past version arrived: the panel's base, if it is the one it waits for.
    pub fn on_version(&mut self, p: &Product) {
        if let Some(panel) = &mut self.conflict
            && panel.id == p.id
            && panel.base_version == p.version
        {
            panel.merge.base = p.fields();
            panel.base_etag = p.etag.clone();
            panel.base_fetched = true;
            panel
                .picks
                .retain(|f, _| panel.merge.outcome(*f) == FieldOutcome::Conflict);
        }
    }

    /// The answer to a save of this edit.
    pub fn on_saved(
        &mut self,
        model: &mut Model,
        purpose: SavePurpose,
        id: Option<i64>,
        sent: ProductFields,
        outcome: WriteOutcome,
    ) -> Vec<Effect> {
        self.editor.saving = false;
        // An answer is the server's word on the pending save: the next save is a new
        // action. Without one, the same save again keeps its key.
        if !matches!(outcome, WriteOutcome::Unknown(_)) {
            self.editor.pending = None;
        }
        if let Some(c) = &mut self.conflict {
            c.saving = false;
        }
        let (product, confirmed) = match outcome {
            WriteOutcome::Done(p) => (p, false),
            WriteOutcome::Confirmed(p) => (Some(*p), true),
            WriteOutcome::Conflict(current) => {
                let Some(id) = id else {
                    return vec![Effect::error(
                        "The server answered 412 to a create; nothing was saved.",
                    )];
                };
                return conflict::open(self, id, sent, *current, None);
            }
            WriteOutcome::Gone { by, at } => {
                let Some(id) = id else {
                    return vec![];
                };
                let theirs = self
                    .editor
                    .base
                    .clone()
                    .or_else(|| self.conflict.as_ref().map(|c| c.theirs.clone()));
                return match theirs {
                    Some(theirs) => conflict::open(self, id, sent, theirs, Some((by, at))),
                    None => vec![Effect::error(format!(
                        "Product {id} was deleted by {by} at {at}."
                    ))],
                };
            }
            WriteOutcome::Invalid(errors) => return self.refused(&errors),
            WriteOutcome::Failed(message) => {
                return vec![Effect::error(format!(
                    "Not saved: {message}. Your edits are kept; press Ctrl-S to try again."
                ))];
            }
            WriteOutcome::Unknown(message) => {
                return vec![Effect::error(format!(
                    "Not known whether it was saved: {message}. Your edits are kept. Ctrl-S again is safe: it goes with the same Idempotency-Key, so the server applies it at most once."
                ))];
            }
        };
        let Some(p) = product else {
            return vec![Effect::Go(Route::Catalog)];
        };
        self.saved(model, purpose, id, &sent, p, confirmed)
    }

    /// A save that arrived (200 or 201, or confirmed by reading back).
    fn saved(
        &mut self,
        model: &mut Model,
        purpose: SavePurpose,
        id: Option<i64>,
        sent: &ProductFields,
        p: Product,
        confirmed: bool,
    ) -> Vec<Effect> {
        let how = match purpose {
            SavePurpose::Edit if id.is_none() => "Created",
            SavePurpose::Edit => "Saved",
            SavePurpose::Overwrite => "Overwrote with your version:",
            SavePurpose::Merge => "Merged and saved",
            SavePurpose::Recreate => "Recreated as a new product:",
            SavePurpose::Restore => "Restored as a new version:",
            SavePurpose::Unconditional => "Saved without If-Match:",
        };
        let lost_reply = if confirmed {
            " The server's reply was lost; sent again with the same Idempotency-Key, the server answered that it was saved."
        } else {
            ""
        };
        let mut effects = vec![Effect::info(format!(
            "{how} {} (product {}, version {}, ETag {}).{lost_reply}",
            p.sku, p.id, p.version, p.etag
        ))];
        if purpose == SavePurpose::Unconditional
            && let Some(lost) = lost_update(&self.editor, model, &p)
        {
            model.lost_update = Some(lost.clone());
            effects.push(Effect::error(lost));
        }
        model.take_saved(&p);
        // Keys typed while the save was on its way are kept: the editor stays open, now
        // based on the version just saved.
        let typed_on = self.conflict.is_none()
            && matches!(purpose, SavePurpose::Edit | SavePurpose::Unconditional)
            && Field::ALL
                .iter()
                .any(|f| !self.editor.field_equals(sent, *f));
        if !typed_on {
            effects.push(Effect::Go(Route::Catalog));
            return effects;
        }
        let editor = &mut self.editor;
        editor.id = Some(p.id);
        editor.base = Some(p.clone());
        editor.stale = None;
        // What was saved now reads as the server wrote it; the rest stays typed.
        for (i, f) in Field::ALL.iter().enumerate() {
            if editor.field_equals(sent, *f) {
                editor.inputs[i] = text_area(&edit_text(&p.fields(), *f));
            }
        }
        vec![Effect::info(format!(
            "{how} {} (version {}, ETag {}). You typed more meanwhile: that is still open, unsaved.",
            p.sku, p.version, p.etag
        ))]
    }

    /// 422 (or a taken sku): the fields are marked, and the editor shows them.
    fn refused(&mut self, errors: &[catalog_shared::product::FieldError]) -> Vec<Effect> {
        let summary = errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        for e in errors {
            if let Some(f) = Field::ALL.iter().find(|f| f.json_name() == e.field) {
                self.editor.server_errors.insert(*f, e.message.clone());
            }
        }
        self.conflict = None;
        vec![Effect::error(format!(
            "The server refused the product: {summary}. Fix the marked fields and save again."
        ))]
    }
}

impl Component for EditSession {
    fn on_key(&mut self, model: &mut Model, key: KeyEvent) -> Vec<Effect> {
        if self.conflict.is_some() {
            conflict::on_key(self, key)
        } else {
            editor::on_key(&mut self.editor, model, key)
        }
    }

    /// The record changed on the server: the editor warns before the save, or refreshes
    /// quietly when nothing would be lost; the panel's theirs follows the server.
    fn on_change(&mut self, model: &Model, event: &ChangeEvent) -> Vec<Effect> {
        let id = event.id;
        if model.is_mine(&event.etag) {
            return vec![];
        }
        let mut effects = vec![];
        let editor = &mut self.editor;
        if editor.id == Some(id)
            && let Some(base) = &editor.base
            && (event.op == Op::Deleted || event.version > base.version)
        {
            let changed = if event.op == Op::Deleted {
                vec![]
            } else {
                base.fields().changed(&event.product.fields())
            };
            if editor.is_dirty() || event.op == Op::Deleted {
                editor.stale = Some(Stale {
                    by: event.updated_by.clone(),
                    at: event.updated_at.clone(),
                    fields: changed,
                    deleted: event.op == Op::Deleted,
                    version: event.version,
                    etag: event.etag.clone(),
                });
            } else if !editor.saving {
                editor.load(&event.product);
                let what = changed
                    .iter()
                    .map(|f| f.label())
                    .collect::<Vec<_>>()
                    .join(", ");
                effects.push(Effect::info(format!(
                    "{} changed {what} of this product; you had no edits, so it was refreshed (version {}).",
                    event.updated_by, event.version
                )));
            }
        }
        if let Some(panel) = &mut self.conflict
            && panel.id == id
        {
            match event.op {
                Op::Deleted => {
                    panel.deleted = Some((event.updated_by.clone(), event.updated_at.clone()));
                    panel.picking = false;
                }
                _ if event.version > panel.theirs.version => {
                    panel.theirs = event.product.clone();
                    panel.merge.theirs = event.product.fields();
                    panel
                        .picks
                        .retain(|f, _| panel.merge.outcome(*f) == FieldOutcome::Conflict);
                    panel.note = Some(format!(
                        "{} changed it again (version {}); theirs is updated.",
                        event.updated_by, event.version
                    ));
                }
                _ => {}
            }
        }
        effects
    }

    fn keys(&self, model: &Model) -> Vec<Hint> {
        match &self.conflict {
            Some(panel) => conflict::keys(panel),
            None => editor::keys(self.editor.id.is_none(), model.unsafe_saves),
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, model: &Model) {
        match &self.conflict {
            Some(panel) => conflict::draw(frame, area, panel),
            None => editor::draw(frame, area, &self.editor, model),
        }
    }
}

/// After a save without If-Match: names the change it silently overwrote, if any.
fn lost_update(editor: &Editor, model: &Model, saved: &Product) -> Option<String> {
    let base = editor.base.as_ref()?;
    if saved.version <= base.version + 1 {
        return None;
    }
    let skipped = saved.version - base.version - 1;
    // The stale banner knows who changed what since the base; the list is a fallback.
    let (who, changed) = match &editor.stale {
        Some(st) => (st.by.clone(), st.fields.clone()),
        None => match model
            .products
            .get(&saved.id)
            .filter(|p| p.version > base.version && p.version < saved.version)
        {
            Some(prev) => (
                prev.updated_by.clone(),
                base.fields().changed(&prev.fields()),
            ),
            None => ("someone".to_string(), vec![]),
        },
    };
    // Their change is lost where my save put back the value of the base.
    let what = changed
        .into_iter()
        .filter(|f| saved.fields().same(&base.fields(), *f))
        .map(|f| f.label())
        .collect::<Vec<_>>()
        .join(", ");
    let what = if what.is_empty() {
        String::new()
    } else {
        format!(" Their {what} is gone.")
    };
    Some(format!(
        "LOST UPDATE: your save without If-Match replaced {skipped} version(s) you never saw, last by {who}.{what} With If-Match the server would have answered 412."
    ))
}
