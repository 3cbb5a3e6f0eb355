//! The client's state as plain data, and the pure `update` that turns an [`Action`] into
//! a new state plus the [`Command`]s (HTTP requests) the app must carry out. Nothing here
//! does I/O, so every rule of the editor and the conflict panel is unit-testable.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::merge::{FieldOutcome, Side, ThreeWayMerge};
use catalog_shared::product::{
    Field, Product, ProductFields, Status, check_description, check_name, check_sku, format_price,
    parse_price,
};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::TextArea;

use crate::action::Action;
use crate::keymap::Keys;
pub use crate::net::Command;
use crate::net::{Connection, Exchange, Reply, SavePurpose, VersionInfo, WriteOutcome};

/// How long a row another user changed stays highlighted.
pub const HIGHLIGHT: Duration = Duration::from_secs(6);
const LOG_KEEP: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Catalog,
    /// Unsaved drafts found on disk.
    Drafts,
    Editor,
    Conflict,
    History,
}

/// Which admin this window plays in the guided race.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Admin 1: lowers the BBQ's price to $300.00.
    Price,
    /// Admin 2: marks the BBQ out of stock.
    Stock,
}

/// A column the catalog can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    #[default]
    Id,
    Sku,
    Name,
    Price,
    Status,
    Etag,
    UpdatedBy,
    Updated,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Id,
        SortColumn::Sku,
        SortColumn::Name,
        SortColumn::Price,
        SortColumn::Status,
        SortColumn::Etag,
        SortColumn::UpdatedBy,
        SortColumn::Updated,
    ];

    fn next(self) -> SortColumn {
        let i = SortColumn::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ALL[(i + 1) % SortColumn::ALL.len()]
    }
}

/// The catalog's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

impl Sort {
    /// The default order, which keeps live updates a binary search away.
    pub fn is_by_id(&self) -> bool {
        self.column == SortColumn::Id && !self.descending
    }

    /// How two products compare in this order (ties by id, so the order is total).
    pub fn order(&self, a: &Product, b: &Product) -> std::cmp::Ordering {
        let by = match self.column {
            SortColumn::Id => a.id.cmp(&b.id),
            SortColumn::Sku => a.sku.cmp(&b.sku),
            SortColumn::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            SortColumn::Price => a.price_cents.cmp(&b.price_cents),
            SortColumn::Status => a.status.as_str().cmp(b.status.as_str()),
            SortColumn::Etag => a.etag.cmp(&b.etag),
            SortColumn::UpdatedBy => a.updated_by.cmp(&b.updated_by),
            SortColumn::Updated => a.updated_at.cmp(&b.updated_at),
        }
        .then(a.id.cmp(&b.id));
        if self.descending { by.reverse() } else { by }
    }
}

/// A question that needs a yes or no before anything happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// `q` or Esc with unsaved edits.
    Quit,
    LeaveEditor,
    Delete {
        id: i64,
        sku: String,
        etag: String,
        version: i64,
    },
    /// `r` in the conflict panel when it throws edits away.
    Reload,
    /// `x` on a deleted product.
    Discard,
}

impl Modal {
    pub fn question(&self) -> String {
        match self {
            Modal::Quit => {
                "You have unsaved edits. Quit? They are not sent; they are written to a draft file."
                    .into()
            }
            Modal::LeaveEditor => "You have unsaved edits. Leave the editor and lose them?".into(),
            Modal::Delete {
                id,
                sku,
                etag,
                version,
            } => format!(
                "Delete product {id} ({sku}), version {version}? It is sent with If-Match: {etag}, so it fails if someone changed it."
            ),
            Modal::Reload => "Reload theirs and throw away your edits?".into(),
            Modal::Discard => "Throw away your edit of the deleted product?".into(),
        }
    }
}

/// A short message in the status area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: SystemTime,
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

fn text_area(text: &str) -> TextArea<'static> {
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

/// The history screen of one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub id: i64,
    pub versions: Option<Vec<VersionInfo>>,
    pub error: Option<String>,
    pub selected: usize,
    pub snapshots: HashMap<i64, Product>,
}

/// The whole client state.
pub struct State {
    pub user: String,
    pub server: String,
    pub connection: Connection,
    pub last_seq: Option<i64>,
    pub loaded: bool,
    pub products: BTreeMap<i64, Product>,
    /// Ids deleted while a list load was in flight, so a stale list cannot revive them.
    pub tombstones: HashSet<i64>,
    /// Ids changed by events since the last list load was requested.
    pub touched_since_load: HashSet<i64>,
    /// Rows another user just changed: who, and when we saw it.
    pub recent: HashMap<i64, (String, SystemTime)>,
    pub filter: String,
    pub filtering: bool,
    /// The visible product ids, in the table's order (recomputed when products, the
    /// filter or the sort change).
    pub visible: Vec<i64>,
    /// The table's order: a column and a direction.
    pub sort: Sort,
    pub selected_id: Option<i64>,
    /// The first table row drawn; the view keeps the selection on screen.
    pub table_offset: Cell<usize>,
    /// Where the table's rows were last drawn (for mouse clicks).
    pub table_area: Cell<ratatui::layout::Rect>,
    pub screen: Screen,
    pub editor: Option<Editor>,
    pub conflict: Option<ConflictPanel>,
    pub history: Option<History>,
    pub modal: Option<Modal>,
    pub help: bool,
    pub show_log: bool,
    pub log: VecDeque<Exchange>,
    pub notice: Option<Notice>,
    pub now: SystemTime,
    pub quit: bool,
    /// `--no-if-match`: Ctrl-S saves without If-Match (the lost-update demo).
    pub unsafe_saves: bool,
    /// The last lost update this client caused, for the guide.
    pub lost_update: Option<String>,
    /// The guided walk through the classic race, for this window's role.
    pub guide: Option<Role>,
    /// The last edit token handed out.
    pub last_edit: u64,
    /// The number of the latest list load asked for; answers to older ones are dropped.
    pub load_requested: u64,
    /// Failed loads in a row (for the retry's backoff).
    pub load_failures: u32,
    /// The ETag of the list held, when it came in one page: the next load revalidates it.
    pub list_etag: Option<String>,
    /// Events about a product while my save of it is in flight: whether they are mine is
    /// known only when the answer arrives, so they wait for it.
    pub deferred: Vec<ChangeEvent>,
    /// ETags my own saves produced: events carrying them are mine, whoever the user is.
    pub my_etags: VecDeque<String>,
    /// Unsaved drafts found on disk, for the drafts screen.
    pub drafts: Vec<crate::draft::DraftFile>,
    /// The draft being opened, waiting for its base version.
    pub opening_draft: Option<crate::draft::DraftFile>,
    /// The draft file the open editor continues (opened from it), if any.
    pub draft_path: Option<std::path::PathBuf>,
    /// The selected row of the drafts screen.
    pub drafts_selected: usize,
}

impl State {
    pub fn new(user: &str, server: &str, now: SystemTime) -> State {
        State {
            user: user.to_string(),
            server: server.to_string(),
            connection: Connection::Connecting,
            last_seq: None,
            loaded: false,
            products: BTreeMap::new(),
            tombstones: HashSet::new(),
            touched_since_load: HashSet::new(),
            recent: HashMap::new(),
            filter: String::new(),
            filtering: false,
            visible: Vec::new(),
            sort: Sort::default(),
            selected_id: None,
            table_offset: Cell::new(0),
            table_area: Cell::new(ratatui::layout::Rect::default()),
            screen: Screen::Catalog,
            editor: None,
            conflict: None,
            history: None,
            modal: None,
            help: false,
            show_log: false,
            log: VecDeque::new(),
            notice: None,
            now,
            quit: false,
            unsafe_saves: false,
            lost_update: None,
            guide: None,
            last_edit: 0,
            load_requested: 0,
            load_failures: 0,
            list_etag: None,
            deferred: Vec::new(),
            my_etags: VecDeque::new(),
            drafts: Vec::new(),
            opening_draft: None,
            draft_path: None,
            drafts_selected: 0,
        }
    }

    /// The open edit as the draft keeper sees it.
    pub fn edit_for_drafts(&self) -> crate::draft::Edit<'_> {
        let editor = self.editor.as_ref();
        crate::draft::Edit {
            user: &self.user,
            token: editor.map(|e| e.token),
            draft: editor
                .filter(|e| e.is_dirty())
                .map(|e| crate::draft::Draft {
                    server: self.server.clone(),
                    user: self.user.clone(),
                    product_id: e.id,
                    based_on_version: e.base.as_ref().map(|b| b.version),
                    based_on_etag: e.base.as_ref().map(|b| b.etag.clone()),
                    fields: Field::ALL
                        .iter()
                        .map(|f| (f.label().to_string(), e.text(*f)))
                        .collect(),
                    saved_at_ms: 0,
                }),
            reopened: self.draft_path.as_deref(),
        }
    }

    /// Opens the editor on `product` (or a new product) as a new edit with its own token.
    pub fn open_editor(&mut self, product: Option<&Product>) {
        self.last_edit += 1;
        let mut editor = Editor::open(product);
        editor.token = self.last_edit;
        self.editor = Some(editor);
        self.draft_path = None;
        self.screen = Screen::Editor;
    }

    /// Asks for a fresh list (after `delay_ms`); older loads still in flight are dropped
    /// when they answer.
    pub fn request_load(&mut self, delay_ms: u64) -> Command {
        self.load_requested += 1;
        self.touched_since_load.clear();
        Command::LoadAll {
            load: self.load_requested,
            delay_ms,
            if_none_match: self.list_etag.clone().filter(|_| self.loaded),
        }
    }

    /// Whether a save of product `id` from this client is waiting for its answer.
    fn saving(&self, id: i64) -> bool {
        self.editor
            .as_ref()
            .is_some_and(|e| e.saving && e.id == Some(id))
            || self
                .conflict
                .as_ref()
                .is_some_and(|c| c.saving && c.id == id)
    }

    fn remember_mine(&mut self, etag: &str) {
        self.my_etags.push_back(etag.to_string());
        while self.my_etags.len() > 64 {
            self.my_etags.pop_front();
        }
    }

    fn is_mine(&self, etag: &str) -> bool {
        self.my_etags.iter().any(|e| e == etag)
    }

    /// The commands to run when the client starts. None: the list is loaded once the
    /// event stream is established (its `ready` event), so nothing falls in between.
    pub fn start(&self) -> Vec<Command> {
        vec![]
    }

    /// Which keys are active now.
    pub fn keys(&self) -> Keys {
        if self.help {
            return Keys::Help;
        }
        self.screen_keys()
    }

    /// The keys of the screen (and any question on it), help aside.
    pub fn screen_keys(&self) -> Keys {
        if self.modal.is_some() {
            return Keys::Confirm;
        }
        match self.screen {
            Screen::Catalog if self.filtering => Keys::Filter,
            Screen::Catalog => Keys::Catalog,
            Screen::Editor if self.editor.as_ref().is_some_and(|e| e.id.is_none()) => {
                Keys::NewProduct
            }
            Screen::Editor if self.unsafe_saves => Keys::EditorUnsafe,
            Screen::Editor => Keys::Editor,
            Screen::Conflict => match &self.conflict {
                Some(c) if c.deleted.is_some() => Keys::ConflictDeleted,
                Some(c) if c.picking => Keys::ConflictPicking,
                _ => Keys::Conflict,
            },
            Screen::History => Keys::History,
            Screen::Drafts => Keys::Drafts,
        }
    }

    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected_id?;
        if self.sort.is_by_id() {
            self.visible.binary_search(&id).ok()
        } else {
            self.visible.iter().position(|v| *v == id)
        }
    }

    /// Where product `id` stands, or would stand, in the table's order.
    fn place(&self, id: i64) -> Result<usize, usize> {
        if self.sort.is_by_id() {
            return self.visible.binary_search(&id);
        }
        if let Some(i) = self.visible.iter().position(|v| *v == id) {
            return Ok(i);
        }
        let Some(p) = self.products.get(&id) else {
            return Err(self.visible.len());
        };
        Err(self.visible.partition_point(|v| {
            self.products
                .get(v)
                .is_some_and(|q| self.sort.order(q, p) == std::cmp::Ordering::Less)
        }))
    }

    pub fn selected_product(&self) -> Option<&Product> {
        self.products.get(&self.selected_id?)
    }

    pub fn has_unsaved_edits(&self) -> bool {
        self.editor.as_ref().is_some_and(Editor::is_dirty)
    }

    fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    /// Whether the filter (already lower-cased as `needle`) shows `p`.
    fn shown(needle: &str, p: &Product) -> bool {
        needle.is_empty()
            || p.sku.to_lowercase().contains(needle)
            || p.name.to_lowercase().contains(needle)
            || p.status.as_str().contains(needle)
    }

    /// Recomputes the visible rows and keeps a valid selection.
    pub fn refresh_visible(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut shown: Vec<&Product> = self
            .products
            .values()
            .filter(|p| State::shown(&needle, p))
            .collect();
        if !self.sort.is_by_id() {
            shown.sort_by(|a, b| self.sort.order(a, b));
        }
        self.visible = shown.into_iter().map(|p| p.id).collect();
        self.keep_selection();
    }

    /// Updates the visible rows for one changed product: O(log n) lookups plus one
    /// insert or remove, so a burst of events stays cheap with 100,000 products.
    pub fn refresh_one(&mut self, id: i64) {
        let needle = self.filter.to_lowercase();
        let show = self
            .products
            .get(&id)
            .is_some_and(|p| State::shown(&needle, p));
        // Sorted by another column, the row may have moved: take it out first.
        if !self.sort.is_by_id()
            && let Some(i) = self.visible.iter().position(|v| *v == id)
        {
            self.visible.remove(i);
        }
        match (self.place(id), show) {
            (Ok(i), false) => {
                self.visible.remove(i);
            }
            (Err(i), true) => self.visible.insert(i, id),
            _ => {}
        }
        self.keep_selection();
    }

    fn keep_selection(&mut self) {
        if self.selected_index().is_none() {
            // Keep the position near where the vanished row was.
            let near = self
                .selected_id
                .filter(|_| self.sort.is_by_id())
                .map(|id| self.visible.partition_point(|v| *v < id))
                .unwrap_or(0);
            self.selected_id = self
                .visible
                .get(near.min(self.visible.len().saturating_sub(1)))
                .copied();
        }
    }

    fn move_selection(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let i = self.selected_index().unwrap_or(0) as isize;
        let j = (i + delta).clamp(0, self.visible.len() as isize - 1) as usize;
        self.selected_id = Some(self.visible[j]);
    }

    fn push_log(&mut self, e: Exchange) {
        self.log.push_back(e);
        while self.log.len() > LOG_KEEP {
            self.log.pop_front();
        }
    }
}

fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

/// The single entry point: applies one action, returns what must be done outside.
pub fn update(state: &mut State, action: Action) -> Vec<Command> {
    match action {
        Action::Key(key) => {
            if key.kind == KeyEventKind::Release {
                return vec![];
            }
            on_key(state, key)
        }
        Action::Tick(now) => {
            state.now = now;
            state
                .recent
                .retain(|_, (_, at)| now.duration_since(*at).unwrap_or_default() < HIGHLIGHT);
            vec![]
        }
        Action::Resize => vec![],
        Action::Mouse(m) => {
            on_mouse(state, m);
            vec![]
        }
        Action::DraftsFound(drafts) => {
            if !drafts.is_empty() {
                state.info(format!(
                    "{} unsaved draft{} from an earlier session: press D to review {}.",
                    drafts.len(),
                    if drafts.len() == 1 { "" } else { "s" },
                    if drafts.len() == 1 { "it" } else { "them" },
                ));
            }
            state.drafts = drafts;
            vec![]
        }
        Action::DraftFailed(message) => {
            state.error(format!(
                "Your unsaved edit could not be written to a draft file ({message}); it is still open here."
            ));
            vec![]
        }
        Action::Net(reply) => on_reply(state, reply),
    }
}

/// What the network reported.
fn on_reply(state: &mut State, reply: Reply) -> Vec<Command> {
    match reply {
        Reply::Loaded { load, list, etag } => {
            // An older load answering late would overwrite newer events: drop it.
            if load == state.load_requested {
                state.load_failures = 0;
                state.list_etag = etag;
                on_loaded(state, list);
            }
            vec![]
        }
        Reply::LoadUnchanged { load } => {
            if load == state.load_requested {
                state.load_failures = 0;
            }
            vec![]
        }
        Reply::Revalidated { product, .. } => {
            if let Some(p) = product {
                on_reread(state, *p);
            }
            vec![]
        }
        Reply::LoadFailed { load, message } => {
            if load != state.load_requested {
                return vec![];
            }
            state.load_failures += 1;
            // 0.5 s, 1 s, 2 s, 4 s, then every 8 s.
            let delay_ms = 250u64 << state.load_failures.min(5);
            state.error(format!(
                "Could not load the catalog: {message}. Retrying in {:.1} s (attempt {}).",
                delay_ms as f64 / 1000.0,
                state.load_failures + 1
            ));
            vec![state.request_load(delay_ms)]
        }
        Reply::Event(event) => on_event(state, *event),
        Reply::Reset => vec![state.request_load(0)],
        Reply::Seq(seq) => {
            state.last_seq = Some(seq);
            vec![]
        }
        Reply::Connection(c) => {
            let mut commands = vec![];
            if c == Connection::Live
                && let Connection::Reconnecting { since, .. } = &state.connection
            {
                // The open record may have changed while the feed was down: ask, cheaply.
                if let Some(editor) = &state.editor
                    && let (Some(id), Some(base)) = (editor.id, &editor.base)
                {
                    let etag = state
                        .products
                        .get(&id)
                        .map_or_else(|| base.etag.clone(), |p| p.etag.clone());
                    commands.push(Command::Revalidate { id, etag });
                }
                let gap = state.now.duration_since(*since).unwrap_or_default();
                state.info(format!(
                    "Reconnected after {:.0} s without the live feed; the changes made meanwhile were replayed from the server's change log.",
                    gap.as_secs_f64().max(1.0)
                ));
            }
            state.connection = c;
            commands
        }
        Reply::Saved {
            edit,
            purpose,
            id,
            sent,
            outcome,
        } => {
            let on_screen = state.editor.as_ref().is_some_and(|e| e.token == edit)
                || state.conflict.as_ref().is_some_and(|c| c.token == edit);
            if !on_screen {
                on_saved_elsewhere(state, id, outcome);
                return vec![];
            }
            let mut commands = on_saved(state, purpose, id, *sent, outcome);
            // Events that waited for this answer can now be judged.
            let waiting: Vec<ChangeEvent> = std::mem::take(&mut state.deferred);
            for event in waiting {
                if state.saving(event.id) {
                    state.deferred.push(event);
                    continue;
                }
                if !state.is_mine(&event.etag) {
                    state
                        .recent
                        .insert(event.id, (event.updated_by.clone(), state.now));
                }
                watch_open_record(state, &event);
                if let Some(h) = &state.history
                    && h.id == event.id
                {
                    commands.push(Command::FetchVersions { id: event.id });
                }
            }
            commands
        }
        Reply::Deleted { id, outcome } => {
            on_deleted(state, id, outcome);
            vec![]
        }
        Reply::Version(p) => {
            on_version(state, *p);
            vec![]
        }
        Reply::VersionFailed {
            id,
            version,
            message,
        } => {
            state.error(format!(
                "Could not fetch version {version} of product {id}: {message}"
            ));
            vec![]
        }
        Reply::Versions { id, versions } => on_versions(state, id, versions),
        Reply::Exchange(e) => {
            state.push_log(e);
            vec![]
        }
    }
}

/// In the catalog, a click selects the row under it and the wheel moves the selection;
/// elsewhere the mouse does nothing (the keys do everything).
fn on_mouse(state: &mut State, m: crossterm::event::MouseEvent) {
    use crossterm::event::{MouseButton, MouseEventKind};
    if state.screen != Screen::Catalog || state.modal.is_some() || state.help {
        return;
    }
    match m.kind {
        MouseEventKind::ScrollDown => state.move_selection(3),
        MouseEventKind::ScrollUp => state.move_selection(-3),
        MouseEventKind::Down(MouseButton::Left) => {
            let area = state.table_area.get();
            // The first row of the area is the header.
            if m.column >= area.x
                && m.column < area.x + area.width
                && m.row > area.y
                && m.row < area.y + area.height
            {
                let i = state.table_offset.get() + (m.row - area.y - 1) as usize;
                if let Some(id) = state.visible.get(i) {
                    state.selected_id = Some(*id);
                }
            }
        }
        _ => {}
    }
}

/// Whether product `id` has a draft on disk (the catalog marks it).
pub fn has_draft(state: &State, id: i64) -> bool {
    state.drafts.iter().any(|d| d.draft.product_id == Some(id))
}

/// Opens a draft: a new product at once; an edit of a product once its base version
/// arrives (the draft names it), so a conflict can be merged against the right base.
fn open_draft(state: &mut State, file: crate::draft::DraftFile) -> Vec<Command> {
    match (file.draft.product_id, file.draft.based_on_version) {
        (Some(id), Some(version)) => {
            state.info(format!(
                "Opening your draft of product {id} (based on version {version})…"
            ));
            state.opening_draft = Some(file);
            vec![Command::FetchVersion { id, version }]
        }
        _ => {
            state.open_editor(None);
            fill_from_draft(state, &file);
            vec![]
        }
    }
}

fn fill_from_draft(state: &mut State, file: &crate::draft::DraftFile) {
    if let Some(editor) = &mut state.editor {
        for (i, f) in Field::ALL.iter().enumerate() {
            if let Some(text) = file.draft.text(*f) {
                editor.inputs[i] = text_area(text);
            }
        }
    }
    state.draft_path = Some(file.path.clone());
    state.drafts.retain(|d| d.path != file.path);
    state.info(format!(
        "Draft opened: your typing is back. Ctrl-S saves it (with If-Match of version {}).",
        file.draft
            .based_on_version
            .map_or("-".to_string(), |v| v.to_string())
    ));
}

fn on_drafts_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let n = state.drafts.len();
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') => state.screen = Screen::Catalog,
        KeyCode::Up | KeyCode::Char('k') => {
            state.drafts_selected = state.drafts_selected.saturating_sub(1)
        }
        KeyCode::Down | KeyCode::Char('j') => {
            state.drafts_selected = (state.drafts_selected + 1).min(n.saturating_sub(1))
        }
        KeyCode::Enter => {
            if let Some(file) = state.drafts.get(state.drafts_selected).cloned() {
                return open_draft(state, file);
            }
        }
        KeyCode::Char('x') if state.drafts_selected < n => {
            let file = state.drafts.remove(state.drafts_selected);
            state.drafts_selected = state.drafts_selected.min(n.saturating_sub(2));
            state.info("Draft discarded.");
            if state.drafts.is_empty() {
                state.screen = Screen::Catalog;
            }
            return vec![Command::RemoveDraft(file.path)];
        }
        KeyCode::Char('?') => state.help = true,
        _ => {}
    }
    vec![]
}

/// A product read again (a 200 to a revalidation): news only if it is newer than the copy.
fn on_reread(state: &mut State, p: Product) {
    if state
        .products
        .get(&p.id)
        .is_some_and(|old| old.version >= p.version)
    {
        return;
    }
    let id = p.id;
    state.products.insert(id, p.clone());
    state.refresh_one(id);
    watch_open_record(
        state,
        &ChangeEvent {
            seq: state.last_seq.unwrap_or(0),
            op: Op::Updated,
            id,
            version: p.version,
            etag: p.etag.clone(),
            updated_by: p.updated_by.clone(),
            updated_at: p.updated_at.clone(),
            product: p,
        },
    );
}

fn on_loaded(state: &mut State, list: Vec<Product>) {
    let mut fresh: BTreeMap<i64, Product> = list.into_iter().map(|p| (p.id, p)).collect();
    for id in state.touched_since_load.drain() {
        if state.tombstones.contains(&id) {
            fresh.remove(&id);
        } else if let Some(mine) = state.products.get(&id)
            && fresh.get(&id).is_none_or(|f| f.version < mine.version)
        {
            fresh.insert(id, mine.clone());
        }
    }
    state.products = fresh;
    state.loaded = true;
    state.refresh_visible();
    // A reload can bring news of the open record too (changes made while we were cut off).
    let open = state
        .editor
        .as_ref()
        .and_then(|e| e.id)
        .into_iter()
        .chain(state.conflict.as_ref().map(|c| c.id));
    let changed: Vec<Product> = open
        .filter_map(|id| state.products.get(&id).cloned())
        .collect();
    for p in changed {
        watch_open_record(
            state,
            &ChangeEvent {
                seq: state.last_seq.unwrap_or(0),
                op: Op::Updated,
                id: p.id,
                version: p.version,
                etag: p.etag.clone(),
                updated_by: p.updated_by.clone(),
                updated_at: p.updated_at.clone(),
                product: p,
            },
        );
    }
}

fn on_event(state: &mut State, event: ChangeEvent) -> Vec<Command> {
    state.last_seq = Some(event.seq);
    state.touched_since_load.insert(event.id);
    let id = event.id;
    match event.op {
        Op::Deleted => {
            state.products.remove(&id);
            state.tombstones.insert(id);
        }
        Op::Created | Op::Updated => {
            let newer = state
                .products
                .get(&id)
                .is_none_or(|p| p.version < event.version);
            if !newer {
                return vec![];
            }
            state.products.insert(id, event.product.clone());
        }
    }
    state.refresh_one(id);
    // Whether this change is mine is known by its ETag (a save of this client made it),
    // not by the user name: two clients of one user are two people. While my save of
    // this product is in flight it cannot be known yet: the event waits for the answer.
    if state.saving(id) {
        state.deferred.push(event);
        return vec![];
    }
    if state.is_mine(&event.etag) {
        state.recent.remove(&id);
    } else {
        state
            .recent
            .insert(id, (event.updated_by.clone(), state.now));
    }
    watch_open_record(state, &event);
    if let Some(h) = &state.history
        && h.id == id
    {
        return vec![Command::FetchVersions { id }];
    }
    vec![]
}

/// The open editor and conflict panel follow a record that changed on the server: warn
/// before the save, or refresh quietly when nothing would be lost.
fn watch_open_record(state: &mut State, event: &ChangeEvent) {
    let id = event.id;
    if state.is_mine(&event.etag) {
        return;
    }
    // The open editor: warn before the save, or refresh quietly when nothing would be lost.
    if let Some(editor) = &mut state.editor
        && editor.id == Some(id)
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
            state.info(format!(
                "{} changed {what} of this product; you had no edits, so it was refreshed (version {}).",
                event.updated_by, event.version
            ));
        }
    }
    // The conflict panel: theirs follows the server.
    if let Some(panel) = &mut state.conflict
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
}

fn on_saved(
    state: &mut State,
    purpose: SavePurpose,
    id: Option<i64>,
    sent: ProductFields,
    outcome: WriteOutcome,
) -> Vec<Command> {
    if let Some(e) = &mut state.editor {
        e.saving = false;
    }
    if let Some(c) = &mut state.conflict {
        c.saving = false;
    }
    let confirmed = matches!(outcome, WriteOutcome::Confirmed(_));
    let outcome = match outcome {
        WriteOutcome::Confirmed(p) => WriteOutcome::Done(Some(*p)),
        other => other,
    };
    match outcome {
        WriteOutcome::Done(product) => {
            if let Some(p) = &product {
                state.remember_mine(&p.etag);
            }
            let how = match purpose {
                SavePurpose::Edit if id.is_none() => "Created",
                SavePurpose::Edit => "Saved",
                SavePurpose::Overwrite => "Overwrote with your version:",
                SavePurpose::Merge => "Merged and saved",
                SavePurpose::Recreate => "Recreated as a new product:",
                SavePurpose::Unconditional => "Saved without If-Match:",
            };
            if let Some(p) = product {
                let lost_reply = if confirmed {
                    " The server's reply was lost; reading the product back showed your change is there."
                } else {
                    ""
                };
                state.info(format!(
                    "{how} {} (product {}, version {}, ETag {}).{lost_reply}",
                    p.sku, p.id, p.version, p.etag
                ));
                if purpose == SavePurpose::Unconditional
                    && let Some(lost) = lost_update(state, &p)
                {
                    state.lost_update = Some(lost.clone());
                    state.error(lost);
                }
                let newer = state
                    .products
                    .get(&p.id)
                    .is_none_or(|old| old.version < p.version);
                if newer {
                    state.products.insert(p.id, p.clone());
                }
                state.recent.remove(&p.id);
                state.selected_id = Some(p.id);
                state.refresh_visible();
                // Keys typed while the save was on its way are kept: the editor stays open,
                // now based on the version just saved.
                let typed_on = state.screen == Screen::Editor
                    && matches!(purpose, SavePurpose::Edit | SavePurpose::Unconditional)
                    && state
                        .editor
                        .as_ref()
                        .is_some_and(|e| Field::ALL.iter().any(|f| !e.field_equals(&sent, *f)));
                if typed_on && let Some(editor) = &mut state.editor {
                    editor.id = Some(p.id);
                    editor.base = Some(p.clone());
                    editor.stale = None;
                    // What was saved now reads as the server wrote it; the rest stays typed.
                    for (i, f) in Field::ALL.iter().enumerate() {
                        if editor.field_equals(&sent, *f) {
                            editor.inputs[i] = text_area(&edit_text(&p.fields(), *f));
                        }
                    }
                    state.conflict = None;
                    state.info(format!(
                        "{how} {} (version {}, ETag {}). You typed more meanwhile: that is still open, unsaved.",
                        p.sku, p.version, p.etag
                    ));
                    return vec![];
                }
            }
            state.editor = None;
            state.conflict = None;
            state.screen = Screen::Catalog;
            vec![]
        }
        WriteOutcome::Conflict(current) => {
            let Some(id) = id else {
                state.error("The server answered 412 to a create; nothing was saved.");
                return vec![];
            };
            open_conflict(state, id, sent, *current, None)
        }
        WriteOutcome::Gone { by, at } => {
            let Some(id) = id else {
                return vec![];
            };
            let theirs = state
                .editor
                .as_ref()
                .and_then(|e| e.base.clone())
                .or_else(|| state.conflict.as_ref().map(|c| c.theirs.clone()));
            match theirs {
                Some(theirs) => open_conflict(state, id, sent, theirs, Some((by, at))),
                None => {
                    state.error(format!("Product {id} was deleted by {by} at {at}."));
                    vec![]
                }
            }
        }
        WriteOutcome::Invalid(errors) => {
            let summary = errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if let Some(editor) = &mut state.editor {
                for e in &errors {
                    if let Some(f) = Field::ALL.iter().find(|f| f.json_name() == e.field) {
                        editor.server_errors.insert(*f, e.message.clone());
                    }
                }
            }
            if state.screen == Screen::Conflict {
                state.screen = Screen::Editor;
            }
            state.error(format!(
                "The server refused the product: {summary}. Fix the marked fields and save again."
            ));
            vec![]
        }
        WriteOutcome::Failed(message) => {
            state.error(format!(
                "Not saved: {message}. Your edits are kept; press Ctrl-S to try again."
            ));
            vec![]
        }
        WriteOutcome::Unknown(message) => {
            state.error(format!(
                "Not known whether it was saved: {message}. Your edits are kept. Ctrl-S again is safe: if the first save arrived, the server answers it as saved."
            ));
            vec![]
        }
        WriteOutcome::Confirmed(_) => vec![],
    }
}

/// The answer to a save whose edit is no longer on screen (the user left the editor,
/// or opened another): it updates the catalog and says what became of it, and never
/// touches the editor, banner or panel of another edit.
fn on_saved_elsewhere(state: &mut State, id: Option<i64>, outcome: WriteOutcome) {
    let what = id.map_or_else(|| "new product".to_string(), |id| format!("product {id}"));
    let saved = match outcome {
        WriteOutcome::Done(Some(p)) => Some(p),
        WriteOutcome::Confirmed(p) => Some(*p),
        WriteOutcome::Done(None) => None,
        WriteOutcome::Conflict(current) => {
            state.error(format!(
                "Your earlier save of {what} was not applied: {} had changed it first (412). The edit it came from is closed; nothing else was touched.",
                current.updated_by
            ));
            if current.version > state.products.get(&current.id).map_or(0, |p| p.version) {
                let id = current.id;
                state.products.insert(id, *current);
                state.refresh_one(id);
            }
            return;
        }
        WriteOutcome::Gone { by, .. } => {
            state.error(format!(
                "Your earlier save of {what} was not applied: {by} had deleted it."
            ));
            return;
        }
        WriteOutcome::Invalid(_) | WriteOutcome::Failed(_) => {
            state.error(format!(
                "Your earlier save of {what} was not applied. The edit it came from is closed."
            ));
            return;
        }
        WriteOutcome::Unknown(message) => {
            state.error(format!(
                "Not known whether your earlier save of {what} was applied: {message}."
            ));
            return;
        }
    };
    if let Some(p) = saved {
        state.remember_mine(&p.etag);
        state.info(format!(
            "Your earlier save of {} arrived: product {}, version {} (ETag {}).",
            p.sku, p.id, p.version, p.etag
        ));
        if state
            .products
            .get(&p.id)
            .is_none_or(|old| old.version < p.version)
        {
            let id = p.id;
            state.products.insert(id, p);
            state.recent.remove(&id);
            state.refresh_one(id);
        }
    }
}

/// After a save without If-Match: names the change it silently overwrote, if any.
fn lost_update(state: &State, saved: &Product) -> Option<String> {
    let base = state.editor.as_ref()?.base.as_ref()?;
    if saved.version <= base.version + 1 {
        return None;
    }
    let skipped = saved.version - base.version - 1;
    // The stale banner knows who changed what since the base; the list is a fallback.
    let stale = state.editor.as_ref().and_then(|e| e.stale.as_ref());
    let (who, changed) = match stale {
        Some(st) => (st.by.clone(), st.fields.clone()),
        None => match state
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

fn open_conflict(
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

fn on_deleted(state: &mut State, id: i64, outcome: WriteOutcome) {
    match outcome {
        WriteOutcome::Done(_) => {
            state.products.remove(&id);
            state.tombstones.insert(id);
            state.refresh_visible();
            state.info(format!("Deleted product {id}."));
        }
        WriteOutcome::Conflict(current) => {
            state.error(format!(
                "Not deleted: {} changed product {id} since you looked (now version {}, ETag {}). Review it and press d again.",
                current.updated_by, current.version, current.etag
            ));
            state.products.insert(id, *current);
            state.refresh_visible();
        }
        WriteOutcome::Gone { by, at } => {
            state.products.remove(&id);
            state.refresh_visible();
            state.info(format!("Product {id} was already deleted by {by} at {at}."));
        }
        WriteOutcome::Invalid(_) => state.error(format!("Product {id} could not be deleted.")),
        WriteOutcome::Failed(message) => {
            state.error(format!("Not deleted: {message}. Press d to try again."))
        }
        WriteOutcome::Unknown(message) => state.error(format!(
            "Not known whether product {id} was deleted: {message}. Press d to try again when the server answers."
        )),
        WriteOutcome::Confirmed(_) => {}
    }
}

fn on_version(state: &mut State, p: Product) {
    if let Some(file) = state.opening_draft.take_if(|f| {
        f.draft.product_id == Some(p.id) && f.draft.based_on_version == Some(p.version)
    }) {
        state.open_editor(Some(&p));
        fill_from_draft(state, &file);
        // The product may have moved on since the draft was written: warn now.
        if let Some(current) = state.products.get(&p.id).cloned()
            && current.version > p.version
        {
            watch_open_record(
                state,
                &ChangeEvent {
                    seq: state.last_seq.unwrap_or(0),
                    op: Op::Updated,
                    id: current.id,
                    version: current.version,
                    etag: current.etag.clone(),
                    updated_by: current.updated_by.clone(),
                    updated_at: current.updated_at.clone(),
                    product: current,
                },
            );
        }
        return;
    }
    if let Some(panel) = &mut state.conflict
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
    if let Some(h) = &mut state.history
        && h.id == p.id
    {
        h.snapshots.insert(p.version, p);
    }
}

fn on_versions(
    state: &mut State,
    id: i64,
    versions: Result<Vec<VersionInfo>, String>,
) -> Vec<Command> {
    let Some(h) = &mut state.history else {
        return vec![];
    };
    if h.id != id {
        return vec![];
    }
    match versions {
        Ok(list) => {
            let first = h.versions.is_none();
            if first {
                h.selected = list.len().saturating_sub(1);
            }
            h.versions = Some(list);
            history_fetches(h)
        }
        Err(e) => {
            h.error = Some(e);
            vec![]
        }
    }
}

/// The snapshots needed to show the selected version's diff.
fn history_fetches(h: &History) -> Vec<Command> {
    let Some(list) = &h.versions else {
        return vec![];
    };
    let Some(v) = list.get(h.selected) else {
        return vec![];
    };
    [v.version, v.version - 1]
        .into_iter()
        .filter(|n| *n >= 1 && !h.snapshots.contains_key(n))
        .map(|version| Command::FetchVersion { id: h.id, version })
        .collect()
}

fn on_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    if ctrl(&key, 'c') {
        state.quit = true;
        return vec![];
    }
    if state.help {
        if matches!(
            key.code,
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::F(1) | KeyCode::Char('q')
        ) {
            state.help = false;
        }
        return vec![];
    }
    if let Some(modal) = state.modal.take() {
        return on_modal_key(state, modal, key);
    }
    match state.screen {
        Screen::Catalog => on_catalog_key(state, key),
        Screen::Editor => on_editor_key(state, key),
        Screen::Conflict => on_conflict_key(state, key),
        Screen::History => on_history_key(state, key),
        Screen::Drafts => on_drafts_key(state, key),
    }
}

fn on_modal_key(state: &mut State, modal: Modal, key: KeyEvent) -> Vec<Command> {
    let yes = matches!(
        key.code,
        KeyCode::Enter | KeyCode::Char('y') | KeyCode::Char('Y')
    );
    let no = matches!(
        key.code,
        KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N')
    );
    if !yes {
        if !no {
            // Any other key: keep asking.
            state.modal = Some(modal);
        }
        return vec![];
    }
    match modal {
        Modal::Quit => {
            state.quit = true;
            vec![]
        }
        Modal::LeaveEditor => {
            state.editor = None;
            state.conflict = None;
            state.screen = Screen::Catalog;
            vec![]
        }
        Modal::Delete { id, etag, .. } => vec![Command::Delete { id, if_match: etag }],
        Modal::Reload => {
            reload_theirs(state);
            vec![]
        }
        Modal::Discard => {
            state.editor = None;
            state.conflict = None;
            state.screen = Screen::Catalog;
            state.info("Your edit of the deleted product was discarded.");
            vec![]
        }
    }
}

fn reload_theirs(state: &mut State) {
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

fn on_catalog_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    if state.filtering {
        match key.code {
            KeyCode::Enter => state.filtering = false,
            KeyCode::Esc => {
                state.filtering = false;
                state.filter.clear();
                state.refresh_visible();
            }
            KeyCode::Backspace => {
                state.filter.pop();
                state.refresh_visible();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                state.filter.push(c);
                state.refresh_visible();
            }
            _ => {}
        }
        return vec![];
    }
    let page = 10;
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => state.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => state.move_selection(1),
        KeyCode::PageUp => state.move_selection(-page),
        KeyCode::PageDown => state.move_selection(page),
        KeyCode::Home | KeyCode::Char('g') => state.move_selection(isize::MIN / 2),
        KeyCode::End | KeyCode::Char('G') => state.move_selection(isize::MAX / 2),
        KeyCode::Enter | KeyCode::Char('e') => {
            if let Some(p) = state.selected_product().cloned() {
                state.open_editor(Some(&p));
                // Make sure the copy is current: a 304 costs nothing and keeps it.
                return vec![Command::Revalidate {
                    id: p.id,
                    etag: p.etag.clone(),
                }];
            } else {
                state.error("No product is selected.");
            }
        }
        KeyCode::Esc if !state.filter.is_empty() => {
            state.filter.clear();
            state.refresh_visible();
        }
        KeyCode::Char('a') | KeyCode::Char('+') => {
            state.open_editor(None);
        }
        KeyCode::Char('n') | KeyCode::Char('N') => {
            if state.filter.is_empty() {
                state.info("Nothing to find yet: / and type, then n and N go to the next and previous match.");
            } else if state.visible.is_empty() {
                state.error(format!("No product matches /{}.", state.filter));
            } else {
                // Every row shown matches the filter: n and N walk them, wrapping around.
                let len = state.visible.len();
                let i = state.selected_index().unwrap_or(0);
                let j = if key.code == KeyCode::Char('n') {
                    (i + 1) % len
                } else {
                    (i + len - 1) % len
                };
                state.selected_id = Some(state.visible[j]);
            }
        }
        KeyCode::Char('s') => {
            state.sort = Sort {
                column: state.sort.column.next(),
                descending: false,
            };
            state.refresh_visible();
        }
        KeyCode::Char('S') => {
            state.sort.descending = !state.sort.descending;
            state.refresh_visible();
        }
        KeyCode::Char('d') => {
            if let Some(p) = state.selected_product() {
                state.modal = Some(Modal::Delete {
                    id: p.id,
                    sku: p.sku.clone(),
                    etag: p.etag.clone(),
                    version: p.version,
                });
            }
        }
        KeyCode::Char('D') => {
            if state.drafts.is_empty() {
                state.info("No unsaved drafts.");
            } else {
                state.drafts_selected = 0;
                state.screen = Screen::Drafts;
            }
        }
        KeyCode::Char('h') => {
            if let Some(id) = state.selected_id {
                state.history = Some(History {
                    id,
                    versions: None,
                    error: None,
                    selected: 0,
                    snapshots: HashMap::new(),
                });
                state.screen = Screen::History;
                return vec![Command::FetchVersions { id }];
            }
        }
        KeyCode::Char('l') => state.show_log = !state.show_log,
        KeyCode::Char('/') => state.filtering = true,
        KeyCode::Char('?') => state.help = true,
        KeyCode::Char('q') => {
            if state.has_unsaved_edits() {
                state.modal = Some(Modal::Quit);
            } else {
                state.quit = true;
            }
        }
        KeyCode::Esc if !state.filter.is_empty() => {
            state.filter.clear();
            state.refresh_visible();
        }
        _ => {}
    }
    vec![]
}

fn on_editor_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
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
        let base_version = editor.base.as_ref().map(|b| b.version);
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
            base_version,
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

fn on_conflict_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
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
                return vec![Command::Save {
                    edit: panel.token,
                    purpose: SavePurpose::Recreate,
                    id: None,
                    fields: panel.merge.mine.clone(),
                    if_match: None,
                    base_version: None,
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
            return vec![Command::Save {
                edit: panel.token,
                purpose: SavePurpose::Overwrite,
                id: Some(panel.id),
                fields: panel.merge.mine.clone(),
                if_match: Some(panel.theirs.etag.clone()),
                base_version: Some(panel.theirs.version),
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

fn save_merge(state: &mut State) -> Vec<Command> {
    let Some(panel) = &mut state.conflict else {
        return vec![];
    };
    match panel.merged() {
        Ok(fields) => {
            panel.saving = true;
            vec![Command::Save {
                edit: panel.token,
                purpose: SavePurpose::Merge,
                id: Some(panel.id),
                fields,
                if_match: Some(panel.theirs.etag.clone()),
                base_version: Some(panel.theirs.version),
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

fn on_history_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let Some(h) = &mut state.history else {
        state.screen = Screen::Catalog;
        return vec![];
    };
    let len = h.versions.as_ref().map_or(0, Vec::len);
    match key.code {
        KeyCode::Char('q') => {
            state.quit = true;
            vec![]
        }
        KeyCode::Esc => {
            state.history = None;
            state.screen = Screen::Catalog;
            vec![]
        }
        KeyCode::Up | KeyCode::Char('k') => {
            h.selected = h.selected.saturating_sub(1);
            history_fetches(h)
        }
        KeyCode::Down | KeyCode::Char('j') => {
            h.selected = (h.selected + 1).min(len.saturating_sub(1));
            history_fetches(h)
        }
        KeyCode::Char('l') => {
            state.show_log = !state.show_log;
            vec![]
        }
        KeyCode::Char('?') => {
            state.help = true;
            vec![]
        }
        _ => vec![],
    }
}
