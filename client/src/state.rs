//! The client's state as plain data, and the pure `update` that turns an [`Action`] into
//! a new state plus the [`Command`]s (HTTP requests) the app must carry out. Nothing here
//! does I/O, so every rule of the editor and the conflict panel is unit-testable.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::merge::FieldOutcome;
use catalog_shared::product::{Field, Product, ProductFields};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action::Action;
use crate::keymap::Keys;
pub use crate::net::Command;
use crate::net::{Connection, Exchange, Reply, SavePurpose, WriteOutcome};
pub use crate::screens::catalog::{Sort, SortColumn};
use crate::screens::catalog::{on_catalog_key, on_mouse};
pub use crate::screens::conflict::ConflictPanel;
use crate::screens::conflict::{on_conflict_key, open_conflict, reload_theirs};
pub use crate::screens::drafts::has_draft;
use crate::screens::drafts::{fill_from_draft, on_drafts_key};
pub use crate::screens::editor::{Editor, Stale, edit_text};
use crate::screens::editor::{on_editor_key, text_area};
pub use crate::screens::history::History;
use crate::screens::history::{on_history_key, on_versions};
use catalog_shared::presence::PresenceEvent;

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
    /// This running client's id (its own presence events are not news).
    pub client_id: String,
    /// Where the other clients are: their latest presence, by client id.
    pub presence: HashMap<String, PresenceEvent>,
    /// What this client last announced (product, field), and when.
    pub announced: Option<(i64, Option<String>, SystemTime)>,
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
            client_id: String::new(),
            presence: HashMap::new(),
            announced: None,
        }
    }

    /// The other clients editing product `id`, by user name (sorted, each once).
    pub fn editing(&self, id: i64) -> Vec<&PresenceEvent> {
        let mut here: Vec<&PresenceEvent> = self
            .presence
            .values()
            .filter(|p| p.product_id == Some(id))
            .collect();
        here.sort_by(|a, b| a.user.cmp(&b.user).then(a.client.cmp(&b.client)));
        here
    }

    /// "bob is editing price", "bob and carol are editing this product", or `None`.
    pub fn editing_line(&self, id: i64) -> Option<String> {
        let here = self.editing(id);
        let first = here.first()?;
        Some(match (here.len(), &first.field) {
            (1, Some(field)) => format!("{} is editing {field}", first.user),
            (1, None) => format!("{} is editing this product", first.user),
            _ => format!(
                "{} are editing this product",
                here.iter()
                    .map(|p| p.user.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        })
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
                    pending_key: e.pending.as_ref().map(|p| p.key.clone()),
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
    pub(crate) fn saving(&self, id: i64) -> bool {
        self.editor
            .as_ref()
            .is_some_and(|e| e.saving && e.id == Some(id))
            || self
                .conflict
                .as_ref()
                .is_some_and(|c| c.saving && c.id == id)
    }

    pub(crate) fn remember_mine(&mut self, etag: &str) {
        self.my_etags.push_back(etag.to_string());
        while self.my_etags.len() > 64 {
            self.my_etags.pop_front();
        }
    }

    pub(crate) fn is_mine(&self, etag: &str) -> bool {
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
    pub(crate) fn place(&self, id: i64) -> Result<usize, usize> {
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

    pub(crate) fn info(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    pub(crate) fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    /// Whether the filter (already lower-cased as `needle`) shows `p`.
    pub(crate) fn shown(needle: &str, p: &Product) -> bool {
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

    pub(crate) fn keep_selection(&mut self) {
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

    pub(crate) fn move_selection(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let i = self.selected_index().unwrap_or(0) as isize;
        let j = (i + delta).clamp(0, self.visible.len() as isize - 1) as usize;
        self.selected_id = Some(self.visible[j]);
    }

    pub(crate) fn push_log(&mut self, e: Exchange) {
        self.log.push_back(e);
        while self.log.len() > LOG_KEEP {
            self.log.pop_front();
        }
    }
}

pub(crate) fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

/// The single entry point: applies one action, returns what must be done outside.
pub fn update(state: &mut State, action: Action) -> Vec<Command> {
    let mut commands = route(state, action);
    commands.extend(presence_commands(state));
    commands
}

/// How often an announcement is renewed (the server forgets it after
/// [`catalog_shared::presence::PRESENCE_TTL_SECS`]).
const RENEW: Duration = Duration::from_secs(10);

/// What to tell the server about where this client is: announce an editor opened on a
/// product (and the field under the cursor), renew it while it lasts, withdraw it when
/// the editor closes.
fn presence_commands(state: &mut State) -> Vec<Command> {
    let here = state
        .editor
        .as_ref()
        .filter(|_| matches!(state.screen, Screen::Editor | Screen::Conflict))
        .and_then(|e| Some((e.id?, Some(e.focused().json_name().to_string()))));
    match (&state.announced, here) {
        (None, None) => vec![],
        (Some(_), None) => {
            state.announced = None;
            vec![Command::Withdraw]
        }
        (Some((id, field, at)), Some((now_id, now_field)))
            if *id == now_id
                && *field == now_field
                && state.now.duration_since(*at).unwrap_or_default() < RENEW =>
        {
            vec![]
        }
        (_, Some((product_id, field))) => {
            state.announced = Some((product_id, field.clone(), state.now));
            vec![Command::Announce { product_id, field }]
        }
    }
}

fn route(state: &mut State, action: Action) -> Vec<Command> {
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
        Reply::Presence(p) => {
            if p.client != state.client_id {
                if p.product_id.is_some() {
                    state.presence.insert(p.client.clone(), p);
                } else {
                    state.presence.remove(&p.client);
                }
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
            // Every stream begins with the presence of now: forget what may be stale.
            if c == Connection::Live {
                state.presence.clear();
            }
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
pub(crate) fn watch_open_record(state: &mut State, event: &ChangeEvent) {
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
        // An answer is the server's word on the pending save: the next save is a new
        // action. Without one, the same save again keeps its key.
        if !matches!(outcome, WriteOutcome::Unknown(_)) {
            e.pending = None;
        }
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
                SavePurpose::Restore => "Restored as a new version:",
                SavePurpose::Unconditional => "Saved without If-Match:",
            };
            if let Some(p) = product {
                let lost_reply = if confirmed {
                    " The server's reply was lost; sent again with the same Idempotency-Key, the server answered that it was saved."
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
                "Not known whether it was saved: {message}. Your edits are kept. Ctrl-S again is safe: it goes with the same Idempotency-Key, so the server applies it at most once."
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
        Modal::Delete { id, etag, .. } => vec![Command::Delete {
            id,
            if_match: etag,
            key: crate::net::new_key(),
        }],
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
