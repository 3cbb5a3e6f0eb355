//! The data every screen shares and no screen owns: the products and the visible rows,
//! their order and filter, the live feed's state, which ETags are mine, who else is
//! where, the protocol log. What the network reports about the catalog as a whole (a
//! list, an event, a delete) is applied here; what concerns one edit goes to its screen.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use catalog_shared::event::{ChangeEvent, Op};
use catalog_shared::presence::PresenceEvent;
use catalog_shared::product::Product;

use crate::draft::DraftFile;
use crate::net::{Command, Connection, Exchange, WriteOutcome};

/// How long a row another user changed stays highlighted.
pub const HIGHLIGHT: Duration = Duration::from_secs(6);
const LOG_KEEP: usize = 200;

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

    pub fn next(self) -> SortColumn {
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

/// A short message in the status area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

impl Notice {
    pub fn info(text: impl Into<String>) -> Notice {
        Notice {
            text: text.into(),
            error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> Notice {
        Notice {
            text: text.into(),
            error: true,
        }
    }
}

/// The shared data.
pub struct Model {
    pub user: String,
    pub server: String,
    /// This running client's id (its own presence events are not news).
    pub client_id: String,
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
    /// The visible product ids, in the table's order (recomputed when products, the
    /// filter or the sort change).
    pub visible: Vec<i64>,
    /// The table's order: a column and a direction.
    pub sort: Sort,
    pub selected_id: Option<i64>,
    pub log: VecDeque<Exchange>,
    pub now: SystemTime,
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
    pub drafts: Vec<DraftFile>,
    /// Where the other clients are: their latest presence, by client id.
    pub presence: HashMap<String, PresenceEvent>,
}

impl Model {
    pub fn new(user: &str, server: &str, now: SystemTime) -> Model {
        Model {
            user: user.to_string(),
            server: server.to_string(),
            client_id: String::new(),
            connection: Connection::Connecting,
            last_seq: None,
            loaded: false,
            products: BTreeMap::new(),
            tombstones: HashSet::new(),
            touched_since_load: HashSet::new(),
            recent: HashMap::new(),
            filter: String::new(),
            visible: Vec::new(),
            sort: Sort::default(),
            selected_id: None,
            log: VecDeque::new(),
            now,
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
            presence: HashMap::new(),
        }
    }

    /// A new edit's identity: every save it sends carries it.
    pub fn next_edit_token(&mut self) -> u64 {
        self.last_edit += 1;
        self.last_edit
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

    /// Whether product `id` has a draft on disk (the catalog marks it).
    pub fn has_draft(&self, id: i64) -> bool {
        self.drafts.iter().any(|d| d.draft.product_id == Some(id))
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

    pub fn remember_mine(&mut self, etag: &str) {
        self.my_etags.push_back(etag.to_string());
        while self.my_etags.len() > 64 {
            self.my_etags.pop_front();
        }
    }

    pub fn is_mine(&self, etag: &str) -> bool {
        self.my_etags.iter().any(|e| e == etag)
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
            .filter(|p| Model::shown(&needle, p))
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
            .is_some_and(|p| Model::shown(&needle, p));
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

    pub fn move_selection(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let i = self.selected_index().unwrap_or(0) as isize;
        let j = (i + delta).clamp(0, self.visible.len() as isize - 1) as usize;
        self.selected_id = Some(self.visible[j]);
    }

    pub fn push_log(&mut self, e: Exchange) {
        self.log.push_back(e);
        while self.log.len() > LOG_KEEP {
            self.log.pop_front();
        }
    }

    /// The clock moved on: highlights fade.
    pub fn tick(&mut self, now: SystemTime) {
        self.now = now;
        self.recent
            .retain(|_, (_, at)| now.duration_since(*at).unwrap_or_default() < HIGHLIGHT);
    }

    /// A saved product I made: its ETag is mine, and the table shows it unless it already
    /// holds a newer version, or the product was deleted since (a replayed save answers
    /// with the version it made, however long ago).
    pub fn take_saved(&mut self, p: &Product) {
        self.remember_mine(&p.etag);
        if !self.tombstones.contains(&p.id)
            && self
                .products
                .get(&p.id)
                .is_none_or(|old| old.version < p.version)
        {
            self.products.insert(p.id, p.clone());
        }
        self.recent.remove(&p.id);
        self.selected_id = Some(p.id);
        self.refresh_visible();
    }

    /// A whole list, freshly loaded. Products changed by events since the load was asked
    /// for keep the newer of the two; deleted ones stay deleted.
    pub fn on_loaded(&mut self, list: Vec<Product>) {
        let mut fresh: BTreeMap<i64, Product> = list.into_iter().map(|p| (p.id, p)).collect();
        for id in self.touched_since_load.drain() {
            if self.tombstones.contains(&id) {
                fresh.remove(&id);
            } else if let Some(mine) = self.products.get(&id)
                && fresh.get(&id).is_none_or(|f| f.version < mine.version)
            {
                fresh.insert(id, mine.clone());
            }
        }
        self.products = fresh;
        self.loaded = true;
        self.refresh_visible();
    }

    /// A product read again (a 200 to a revalidation): the change it makes, if it is newer
    /// than the copy held.
    pub fn on_reread(&mut self, p: Product) -> Option<ChangeEvent> {
        if self
            .products
            .get(&p.id)
            .is_some_and(|old| old.version >= p.version)
        {
            return None;
        }
        let id = p.id;
        self.products.insert(id, p.clone());
        self.refresh_one(id);
        Some(self.change_of(p))
    }

    /// The product as it now stands, as a change event (for a screen that follows it).
    pub fn change_of(&self, p: Product) -> ChangeEvent {
        ChangeEvent::from_product(self.last_seq.unwrap_or(0), Op::Updated, p)
    }

    /// An event of the live feed applied to the table. `false` when it brings nothing new
    /// (an older version than the one held).
    pub fn apply_event(&mut self, event: &ChangeEvent) -> bool {
        self.last_seq = Some(event.seq);
        self.touched_since_load.insert(event.id);
        let id = event.id;
        match event.op {
            Op::Deleted => {
                self.products.remove(&id);
                self.tombstones.insert(id);
            }
            Op::Created | Op::Updated => {
                if self
                    .products
                    .get(&id)
                    .is_some_and(|p| p.version >= event.version)
                {
                    return false;
                }
                self.products.insert(id, event.product.clone());
            }
        }
        self.refresh_one(id);
        true
    }

    /// Marks the row of an event someone else made (mine are not news).
    pub fn judge(&mut self, event: &ChangeEvent) {
        if self.is_mine(&event.etag) {
            self.recent.remove(&event.id);
        } else {
            self.recent
                .insert(event.id, (event.updated_by.clone(), self.now));
        }
    }

    /// The answer to a delete: what the table shows, and what to tell.
    pub fn on_deleted(&mut self, id: i64, outcome: WriteOutcome) -> Option<Notice> {
        Some(match outcome {
            WriteOutcome::Done(_) => {
                self.products.remove(&id);
                self.tombstones.insert(id);
                self.refresh_visible();
                Notice::info(format!("Deleted product {id}."))
            }
            WriteOutcome::Conflict(current) => {
                let notice = Notice::error(format!(
                    "Not deleted: {} changed product {id} since you looked (now version {}, ETag {}). Review it and press d again.",
                    current.updated_by, current.version, current.etag
                ));
                self.products.insert(id, *current);
                self.refresh_visible();
                notice
            }
            WriteOutcome::Gone { by, at } => {
                self.products.remove(&id);
                self.refresh_visible();
                Notice::info(format!("Product {id} was already deleted by {by} at {at}."))
            }
            WriteOutcome::Invalid(_) => {
                Notice::error(format!("Product {id} could not be deleted."))
            }
            WriteOutcome::Failed(message) => {
                Notice::error(format!("Not deleted: {message}. Press d to try again."))
            }
            WriteOutcome::Unknown(message) => Notice::error(format!(
                "Not known whether product {id} was deleted: {message}. Press d to try again when the server answers."
            )),
            WriteOutcome::Confirmed(_) => return None,
        })
    }

    /// The answer to a save whose edit is no longer on screen (the user left the editor,
    /// or opened another): it updates the catalog and says what became of it, and never
    /// touches the editor, banner or panel of another edit.
    pub fn on_saved_elsewhere(&mut self, id: Option<i64>, outcome: WriteOutcome) -> Option<Notice> {
        let what = id.map_or_else(|| "new product".to_string(), |id| format!("product {id}"));
        let saved = match outcome {
            WriteOutcome::Done(Some(p)) => p,
            WriteOutcome::Confirmed(p) => *p,
            WriteOutcome::Done(None) => return None,
            WriteOutcome::Conflict(current) => {
                let notice = Notice::error(format!(
                    "Your earlier save of {what} was not applied: {} had changed it first (412). The edit it came from is closed; nothing else was touched.",
                    current.updated_by
                ));
                if current.version > self.products.get(&current.id).map_or(0, |p| p.version) {
                    let id = current.id;
                    self.products.insert(id, *current);
                    self.refresh_one(id);
                }
                return Some(notice);
            }
            WriteOutcome::Gone { by, .. } => {
                return Some(Notice::error(format!(
                    "Your earlier save of {what} was not applied: {by} had deleted it."
                )));
            }
            WriteOutcome::Invalid(_) | WriteOutcome::Failed(_) => {
                return Some(Notice::error(format!(
                    "Your earlier save of {what} was not applied. The edit it came from is closed."
                )));
            }
            WriteOutcome::Unknown(message) => {
                return Some(Notice::error(format!(
                    "Not known whether your earlier save of {what} was applied: {message}."
                )));
            }
        };
        self.remember_mine(&saved.etag);
        let notice = Notice::info(format!(
            "Your earlier save of {} arrived: product {}, version {} (ETag {}).",
            saved.sku, saved.id, saved.version, saved.etag
        ));
        if self
            .products
            .get(&saved.id)
            .is_none_or(|old| old.version < saved.version)
        {
            let id = saved.id;
            self.products.insert(id, saved);
            self.recent.remove(&id);
            self.refresh_one(id);
        }
        Some(notice)
    }
}
