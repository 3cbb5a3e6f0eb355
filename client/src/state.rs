//! The client's state, and the pure `update` that turns an [`Action`] into a new state
//! plus the [`Command`]s (HTTP requests) the app must carry out. Keys go to the open
//! screen, replies to the screen (or the edit) they belong to, and the [`Effect`]s the
//! screens return are applied here, in one place. Nothing here does I/O, so every rule of
//! the editor and the conflict panel is unit-testable.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use catalog_shared::event::ChangeEvent;
use catalog_shared::product::{Field, Product, ProductFields};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use crate::action::Action;
use crate::keymap::{self, Hint};
use crate::model::{Model, Notice};
pub use crate::net::Command;
use crate::net::{Connection, Reply, SavePurpose, WriteOutcome};
use crate::screens::catalog::Catalog;
use crate::screens::conflict::ConflictPanel;
use crate::screens::editor::Editor;
use crate::screens::{Component, History, ctrl};
pub use crate::screens::{Effect, Modal, Route, Screen};

/// The whole client state: the shared data, the open screen, and the frame's own parts
/// (a question, the help, the log pane, the notice line).
pub struct State {
    pub model: Model,
    /// The catalog, always underneath.
    pub catalog: Catalog,
    pub route: Route,
    pub modal: Option<Modal>,
    pub help: bool,
    pub show_log: bool,
    pub notice: Option<Notice>,
    pub quit: bool,
    /// What this client last announced (product, field), and when.
    pub announced: Option<(i64, Option<String>, SystemTime)>,
    /// Draft files the user discarded, for the app to remove.
    pub discarded_drafts: Vec<PathBuf>,
    /// The terminal's columns and rows (0 until known).
    pub size: (u16, u16),
}

impl State {
    pub fn new(user: &str, server: &str, now: SystemTime) -> State {
        State {
            model: Model::new(user, server, now),
            catalog: Catalog::default(),
            route: Route::Catalog,
            modal: None,
            help: false,
            show_log: false,
            notice: None,
            quit: false,
            announced: None,
            discarded_drafts: Vec::new(),
            size: (0, 0),
        }
    }

    /// Whether the protocol log covers the whole screen: it does when the screen's own
    /// essentials leave it fewer than [`LOG_LINES`] exchanges beside them.
    pub fn log_full_pane(&self) -> bool {
        let (width, height) = self.size;
        self.show_log && height > 0 && log_full_pane(height, self.route.min_height(width))
    }

    /// Which screen is shown.
    pub fn screen(&self) -> Screen {
        self.route.screen()
    }

    /// The open edit's editor, if an edit is open.
    pub fn editor(&self) -> Option<&Editor> {
        self.route.edit().map(|e| &e.editor)
    }

    /// The open edit's conflict panel, if it is shown.
    pub fn conflict(&self) -> Option<&ConflictPanel> {
        self.route.edit().and_then(|e| e.conflict.as_ref())
    }

    /// The history, if it is the open screen.
    pub fn history(&self) -> Option<&History> {
        match &self.route {
            Route::History(h) => Some(h),
            _ => None,
        }
    }

    pub fn has_unsaved_edits(&self) -> bool {
        self.editor().is_some_and(Editor::is_dirty)
    }

    /// The keys active now: the help's, a question's, or the open screen's.
    pub fn keys(&self) -> Vec<Hint> {
        if self.help {
            return keymap::HELP.to_vec();
        }
        self.screen_keys()
    }

    /// The keys of the screen (and any question on it), help aside.
    pub fn screen_keys(&self) -> Vec<Hint> {
        if self.modal.is_some() {
            return keymap::CONFIRM.to_vec();
        }
        match &self.route {
            Route::Catalog => self.catalog.keys(&self.model),
            Route::Drafts(d) => d.keys(&self.model),
            Route::Edit(e) => e.keys(&self.model),
            Route::History(h) => h.keys(&self.model),
        }
    }

    /// The open edit as the draft keeper sees it.
    pub fn edit_for_drafts(&self) -> crate::draft::Edit<'_> {
        let session = self.route.edit();
        let editor = session.map(|s| &s.editor);
        crate::draft::Edit {
            user: &self.model.user,
            token: editor.map(|e| e.token),
            draft: editor
                .filter(|e| e.is_dirty())
                .map(|e| crate::draft::Draft {
                    server: self.model.server.clone(),
                    user: self.model.user.clone(),
                    product_id: e.id,
                    based_on_version: e.base.as_ref().map(|b| b.version),
                    based_on_etag: e.base.as_ref().map(|b| b.etag.clone()),
                    pending_key: e.pending.as_ref().map(|p| p.key.clone()),
                    pending: e.pending.as_ref().map(|p| crate::draft::PendingRequest {
                        fields: p.fields.clone(),
                        if_match: p.if_match.clone(),
                    }),
                    fields: Field::ALL
                        .iter()
                        .map(|f| (f.label().to_string(), e.text(*f)))
                        .collect(),
                    saved_at_ms: 0,
                }),
            reopened: session.and_then(|s| s.draft_path.as_deref()),
        }
    }

    /// Whether a save of product `id` from this client is waiting for its answer.
    fn saving(&self, id: i64) -> bool {
        self.route.edit().is_some_and(|e| e.saving(id))
    }

    /// A key for the open screen.
    fn key_to_screen(&mut self, key: KeyEvent) -> Vec<Command> {
        let effects = open_screen(&mut self.route, &mut self.catalog).on_key(&mut self.model, key);
        self.apply(effects)
    }

    /// A change of a product for the open screen.
    fn change_to_screen(&mut self, change: &ChangeEvent) -> Vec<Command> {
        let effects =
            open_screen(&mut self.route, &mut self.catalog).on_change(&self.model, change);
        self.apply(effects)
    }

    /// Carries out what the screens asked for, and returns the requests for the network.
    fn apply(&mut self, effects: Vec<Effect>) -> Vec<Command> {
        let mut commands = vec![];
        for effect in effects {
            match effect {
                Effect::Net(command) => commands.push(command),
                Effect::Go(route) => {
                    // An edit reopened from a draft file ends saved or discarded: its
                    // file goes (quitting keeps the route, and so the file).
                    if let Route::Edit(session) = &mut self.route
                        && let Some(path) = session.draft_path.take()
                    {
                        self.discarded_drafts.push(path);
                    }
                    self.route = route;
                }
                Effect::Ask(modal) => self.modal = Some(modal),
                Effect::Say(notice) => self.notice = Some(notice),
                Effect::Help => self.help = true,
                Effect::ToggleLog => self.show_log = !self.show_log,
                Effect::RemoveDraft(path) => self.discarded_drafts.push(path),
                Effect::Quit => self.quit = true,
            }
        }
        commands
    }

    fn say(&mut self, notice: Notice) {
        self.notice = Some(notice);
    }
}

/// The rows the status bar takes.
pub const STATUS_ROWS: u16 = 2;
/// The log pane's rows beside a screen: its borders, its header, 7 exchanges.
pub const LOG_ROWS: u16 = 10;
/// Fewer exchanges than this beside the screen, and the log takes the whole screen.
pub const LOG_LINES: u16 = 6;

/// Whether the log takes the whole screen at `height` rows, beside a screen that needs
/// `screen_min` rows for what it must show.
pub fn log_full_pane(height: u16, screen_min: u16) -> bool {
    height.saturating_sub(STATUS_ROWS + screen_min) < LOG_LINES + 3
}

/// The open screen, as a component.
fn open_screen<'a>(route: &'a mut Route, catalog: &'a mut Catalog) -> &'a mut dyn Component {
    match route {
        Route::Catalog => catalog,
        Route::Drafts(d) => d,
        Route::Edit(e) => e.as_mut(),
        Route::History(h) => h,
    }
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
        .editor()
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
                && state.model.now.duration_since(*at).unwrap_or_default() < RENEW =>
        {
            vec![]
        }
        (_, Some((product_id, field))) => {
            state.announced = Some((product_id, field.clone(), state.model.now));
            vec![Command::Announce { product_id, field }]
        }
    }
}

fn route(state: &mut State, action: Action) -> Vec<Command> {
    match action {
        Action::Key(key) if key.kind == KeyEventKind::Release => vec![],
        Action::Key(key) => on_key(state, key),
        Action::Tick(now) => {
            state.model.tick(now);
            vec![]
        }
        Action::Resize(width, height) => {
            state.size = (width, height);
            vec![]
        }
        Action::Mouse(m) => {
            // Only the catalog takes the mouse; elsewhere the keys do everything.
            if matches!(state.route, Route::Catalog) && state.modal.is_none() && !state.help {
                state.catalog.on_mouse(&mut state.model, m);
            }
            vec![]
        }
        Action::DraftsFound(drafts) => {
            if !drafts.is_empty() {
                state.say(Notice::info(format!(
                    "{} unsaved draft{} from an earlier session: press D to review {}.",
                    drafts.len(),
                    if drafts.len() == 1 { "" } else { "s" },
                    if drafts.len() == 1 { "it" } else { "them" },
                )));
            }
            state.model.drafts = drafts;
            vec![]
        }
        Action::DraftFailed(message) => {
            state.say(Notice::error(format!(
                "Your unsaved edit could not be written to a draft file ({message}); it is still open here."
            )));
            vec![]
        }
        Action::Net(reply) => on_reply(state, reply),
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
    // The log over the whole screen: Esc or l (Ctrl-L) returns to the screen under it.
    if state.log_full_pane() {
        if matches!(key.code, KeyCode::Esc | KeyCode::Char('l')) {
            state.show_log = false;
        }
        return vec![];
    }
    state.key_to_screen(key)
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
    let effects = match modal {
        Modal::Quit => vec![Effect::Quit],
        Modal::LeaveEditor => vec![Effect::Go(Route::Catalog)],
        Modal::Delete { id, etag, .. } => vec![Effect::Net(Command::Delete {
            id,
            if_match: etag,
            key: crate::net::new_key(),
        })],
        Modal::Reload => match &mut state.route {
            Route::Edit(session) => session.reload_theirs(),
            _ => vec![],
        },
        Modal::Discard => vec![
            Effect::Go(Route::Catalog),
            Effect::info("Your edit of the deleted product was discarded."),
        ],
    };
    state.apply(effects)
}

/// A change to the table (an event, a re-read, a reload) reaches the open screen; while
/// my save of that product is in flight, an event waits for the answer, which alone says
/// whether the change is mine.
fn on_change(state: &mut State, event: ChangeEvent) -> Vec<Command> {
    if state.saving(event.id) {
        state.model.deferred.push(event);
        return vec![];
    }
    state.model.judge(&event);
    state.change_to_screen(&event)
}

/// What the network reported.
fn on_reply(state: &mut State, reply: Reply) -> Vec<Command> {
    let model = &mut state.model;
    match reply {
        Reply::Loaded { load, list, etag } => on_loaded(state, load, list, etag),
        Reply::LoadUnchanged { load } => {
            if load == model.load_requested {
                model.load_failures = 0;
            }
            vec![]
        }
        Reply::Presence(p) => {
            if p.client != model.client_id {
                if p.product_id.is_some() {
                    model.presence.insert(p.client.clone(), p);
                } else {
                    model.presence.remove(&p.client);
                }
            }
            vec![]
        }
        Reply::Revalidated { product, .. } => match product.and_then(|p| model.on_reread(*p)) {
            Some(change) => state.change_to_screen(&change),
            None => vec![],
        },
        Reply::LoadFailed { load, message } => {
            if load != model.load_requested {
                return vec![];
            }
            model.load_failures += 1;
            // 0.5 s, 1 s, 2 s, 4 s, then every 8 s.
            let delay_ms = 250u64 << model.load_failures.min(5);
            let notice = Notice::error(format!(
                "Could not load the catalog: {message}. Retrying in {:.1} s (attempt {}).",
                delay_ms as f64 / 1000.0,
                model.load_failures + 1
            ));
            let load = model.request_load(delay_ms);
            state.say(notice);
            vec![load]
        }
        Reply::Event(event) => {
            if !model.apply_event(&event) {
                return vec![];
            }
            on_change(state, *event)
        }
        Reply::Reset => vec![model.request_load(0)],
        Reply::Seq(seq) => {
            model.last_seq = Some(seq);
            vec![]
        }
        Reply::Connection(c) => on_connection(state, c),
        Reply::Saved {
            edit,
            purpose,
            id,
            sent,
            outcome,
        } => on_saved(state, edit, purpose, id, *sent, outcome),
        Reply::Deleted { id, outcome } => {
            if let Some(notice) = model.on_deleted(id, outcome) {
                state.say(notice);
            }
            vec![]
        }
        Reply::Version(p) => on_version(state, &p),
        Reply::VersionFailed {
            id,
            version,
            message,
        } => {
            state.say(Notice::error(format!(
                "Could not fetch version {version} of product {id}: {message}"
            )));
            vec![]
        }
        Reply::Versions { id, versions } => match &mut state.route {
            Route::History(h) => {
                let effects = h.on_versions(id, versions);
                state.apply(effects)
            }
            _ => vec![],
        },
        Reply::Exchange(e) => {
            model.push_log(e);
            vec![]
        }
    }
}

/// A list arrived: applied if it answers the latest load; the open edit then learns of
/// changes to its record made while we were cut off.
fn on_loaded(
    state: &mut State,
    load: u64,
    list: Vec<Product>,
    etag: Option<String>,
) -> Vec<Command> {
    // An older load answering late would overwrite newer events: drop it.
    if load != state.model.load_requested {
        return vec![];
    }
    state.model.load_failures = 0;
    state.model.list_etag = etag;
    state.model.on_loaded(list);
    let open: Vec<i64> = state
        .route
        .edit()
        .map(|e| e.follows().collect())
        .unwrap_or_default();
    let mut commands = vec![];
    for id in open {
        if let Some(p) = state.model.products.get(&id).cloned() {
            let change = state.model.change_of(p);
            commands.extend(state.change_to_screen(&change));
        }
    }
    commands
}

/// A past version arrived: the draft being opened, the panel's base, or the history's
/// diff, whichever screen asked for it (if it is still open).
fn on_version(state: &mut State, p: &Product) -> Vec<Command> {
    let effects = match &mut state.route {
        Route::Drafts(d) => d.on_version(&mut state.model, p),
        Route::Edit(e) => {
            e.on_version(p);
            vec![]
        }
        Route::History(h) => {
            h.on_version(p);
            vec![]
        }
        Route::Catalog => vec![],
    };
    state.apply(effects)
}

fn on_connection(state: &mut State, c: Connection) -> Vec<Command> {
    let mut commands = vec![];
    // Every stream begins with the presence of now: forget what may be stale.
    if c == Connection::Live {
        state.model.presence.clear();
    }
    if c == Connection::Live
        && let Connection::Reconnecting { since, .. } = &state.model.connection
    {
        // The open record may have changed while the feed was down: ask, cheaply.
        if let Some(editor) = state.editor()
            && let (Some(id), Some(base)) = (editor.id, &editor.base)
        {
            let etag = state
                .model
                .products
                .get(&id)
                .map_or_else(|| base.etag.clone(), |p| p.etag.clone());
            commands.push(Command::Revalidate { id, etag });
        }
        let gap = state.model.now.duration_since(*since).unwrap_or_default();
        state.say(Notice::info(format!(
            "Reconnected after {:.0} s without the live feed; the changes made meanwhile were replayed from the server's change log.",
            gap.as_secs_f64().max(1.0)
        )));
    }
    state.model.connection = c;
    commands
}

/// The answer to a save goes to the edit its token names, or, when that edit is gone,
/// only to the catalog.
fn on_saved(
    state: &mut State,
    edit: u64,
    purpose: SavePurpose,
    id: Option<i64>,
    sent: ProductFields,
    outcome: WriteOutcome,
) -> Vec<Command> {
    let effects = match &mut state.route {
        Route::Edit(session) if session.token() == edit => {
            session.on_saved(&mut state.model, purpose, id, sent, outcome)
        }
        _ => {
            if let Some(notice) = state.model.on_saved_elsewhere(id, outcome) {
                state.say(notice);
            }
            return vec![];
        }
    };
    let mut commands = state.apply(effects);
    // Events that waited for this answer can now be judged.
    for event in std::mem::take(&mut state.model.deferred) {
        commands.extend(on_change(state, event));
    }
    commands
}
