//! The change feed: turns the change log into Server-Sent Events. The log is the truth;
//! one publisher task reads it in sequence order (woken by this process's commits, and
//! on a timer for other processes' commits) and hands each event, serialised once, to
//! every subscriber. A subscriber is told every change in order, or `reset`, never
//! silence over a gap. The feed knows the log, not HTTP.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use catalog_shared::event::{Op, READY, RESET, ResetEvent};
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use crate::storage::{Held, LogRow, Storage, StoreResult};

mod presence;

pub use crate::storage::{Cursor, CursorKind};

/// The published position and the horizon's hold, for `/metrics`.
fn publish_metrics(cursor: Cursor, held: Held) {
    let (tx, id) = match cursor {
        Cursor::Seq(n) => (0, n),
        Cursor::Tx { tx, id } => (tx, id),
    };
    crate::metrics::feed_published(tx, id, held.changes, held.oldest_ms);
}

/// How many log rows the publisher reads at a time.
const PAGE: usize = 256;
/// How many log rows a resuming stream reads at a time: what one stream holds at most of
/// its backlog (about 500 bytes an event, so about 16 KiB), whatever the backlog's size.
const BACKLOG_PAGE: usize = 32;
/// How soon the publisher reads the log again while committed changes wait for the
/// horizon (PostgreSQL): the transactions holding it back are usually other writes that
/// end within milliseconds.
const HELD_POLL: Duration = Duration::from_millis(5);
/// The least time between two reads of the log: under a stream of commits, one read
/// publishes all of those of the last interval instead of one read per commit.
const READ_EVERY: Duration = Duration::from_millis(5);

/// Tuning of the feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Change-log rows kept behind the latest published one, for `Last-Event-ID`.
    pub retain: i64,
    /// Events a subscriber may fall behind the live feed before it gets `reset`.
    pub buffer: usize,
    /// How often the log is read for changes committed by other processes when nothing
    /// is known to be waiting.
    pub poll: Duration,
    /// How often an idle stream gets a comment, so proxies and clients know it is alive.
    pub keep_alive: Duration,
    /// How long a presence announcement lasts without renewal.
    pub presence_ttl: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            retain: 10_000,
            buffer: 1024,
            poll: Duration::from_millis(250),
            keep_alive: Duration::from_secs(15),
            presence_ttl: Duration::from_secs(catalog_shared::presence::PRESENCE_TTL_SECS),
        }
    }
}

/// One encoded event, shared by every subscriber (cloning it clones a reference).
#[derive(Clone)]
struct Frame {
    cursor: Cursor,
    bytes: Bytes,
    /// A presence event: no id, not in the log, passed to every subscriber as it comes.
    presence: bool,
    /// A `reset` event, counted in the metrics each time it is sent to a subscriber.
    reset: bool,
}

/// Where one client is (its latest announcement) and until when.
#[derive(Debug, Clone)]
struct Here {
    user: String,
    product_id: i64,
    field: Option<String>,
    until: tokio::time::Instant,
    /// Announced through another instance: it renews it, and it expires here when that
    /// instance stops renewing it (it died).
    remote: bool,
}

pub struct Feed {
    store: Arc<dyn Storage>,
    /// The database's identity as event ids carry it.
    database: String,
    kind: CursorKind,
    frames: broadcast::Sender<Frame>,
    /// The latest position handed to subscribers. Stored before the frame is sent, so a
    /// subscriber that subscribes and then reads it misses nothing.
    published: Mutex<Cursor>,
    /// Changes published since the log was last pruned.
    since_prune: AtomicI64,
    /// Presence, by client id: advisory, in memory, never in the log.
    presence: watch::Sender<Arc<std::collections::HashMap<String, Here>>>,
    options: FeedOptions,
}

impl Feed {
    /// A feed that starts after the latest publishable change in the log.
    pub async fn new(store: Arc<dyn Storage>, options: FeedOptions) -> StoreResult<Arc<Feed>> {
        let head = store.log_head().await?;
        // Start within the retention, so a stale Last-Event-ID is refused from the start.
        store.prune_changes(head, options.retain).await?;
        let database = store.identity().chars().take(16).collect();
        let (frames, _) = broadcast::channel(options.buffer.max(1));
        publish_metrics(head, Held::default());
        Ok(Arc::new(Feed {
            kind: store.cursor_kind(),
            store,
            database,
            frames,
            published: Mutex::new(head),
            since_prune: AtomicI64::new(0),
            presence: watch::channel(Arc::new(std::collections::HashMap::new())).0,
            options,
        }))
    }

    /// The latest position handed to subscribers.
    fn published(&self) -> Cursor {
        match self.published.lock() {
            Ok(p) => *p,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Runs the publisher until `stop` turns true.
    pub fn spawn_publisher(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let feed = self.clone();
        let mut commits = self.store.commits();
        tokio::spawn(async move {
            let mut next_read = tokio::time::Instant::now();
            let mut last_read = next_read;
            let mut woken = true;
            loop {
                let notice = tokio::select! {
                    changed = commits.changed(), if woken => {
                        woken = changed.is_ok();
                        woken.then(|| commits.borrow_and_update().clone())
                    }
                    _ = tokio::time::sleep_until(next_read) => None,
                    _ = stop.wait_for(|s| *s) => return,
                };
                // This process's own commit, following on from what was published: its
                // rows are sent as the writer logged them (SQLite). Anything else (a
                // gap, other processes' commits, a timer, any PostgreSQL commit, whose
                // place in the order only the horizon tells) is read from the log.
                let sent =
                    notice.is_some_and(|n| !n.rows.is_empty() && feed.publish_committed(&n.rows));
                if !sent {
                    tokio::time::sleep_until(last_read + READ_EVERY).await;
                    last_read = tokio::time::Instant::now();
                }
                let held = if sent {
                    Held::default()
                } else {
                    match feed.catch_up().await {
                        Ok(held) => held,
                        Err(e) => {
                            tracing::warn!("reading the change log: {e}; retrying");
                            next_read = tokio::time::Instant::now() + feed.options.poll;
                            continue;
                        }
                    }
                };
                publish_metrics(feed.published(), held);
                let wait = if held.changes > 0 {
                    HELD_POLL
                } else {
                    feed.options.poll
                };
                next_read = tokio::time::Instant::now() + wait;
                feed.prune().await;
            }
        });
    }

    /// Publishes rows this process's writer just committed, if they follow on from what
    /// was published; returns false when there is a gap only the log can fill.
    fn publish_committed(&self, rows: &[LogRow]) -> bool {
        let published = self.published();
        let mut fresh = rows.iter().filter(|r| r.cursor > published).peekable();
        match fresh.peek() {
            None => true,
            Some(first) if first.cursor.follows(published) => {
                for row in fresh {
                    match self.encode(row) {
                        Ok(bytes) => self.publish(row.cursor, bytes),
                        Err(reason) => self.publish_reset(row.cursor, &reason),
                    }
                }
                true
            }
            Some(_) => false,
        }
    }

    /// Publishes every publishable change after the last published one, in order, and
    /// says what is still held back.
    async fn catch_up(&self) -> StoreResult<Held> {
        loop {
            let after = self.published();
            let page = self.store.changes_since(after, PAGE).await?;
            if !page.resumable {
                // Another process pruned past what this one had sent.
                self.publish_reset(
                    page.head.max(after),
                    "the change log was pruned past changes this server had not sent yet",
                );
                if page.head <= after {
                    return Ok(page.held);
                }
                continue;
            }
            let full = page.rows.len() == PAGE;
            for row in &page.rows {
                match self.encode(row) {
                    Ok(bytes) => self.publish(row.cursor, bytes),
                    Err(reason) => self.publish_reset(row.cursor, &reason),
                }
            }
            if !full {
                return Ok(page.held);
            }
        }
    }

    /// Drops log rows older than the retention behind what was published, in steps so
    /// that pruning costs one write per many changes.
    async fn prune(&self) {
        let step = (self.options.retain / 10).max(1);
        if self.since_prune.load(Ordering::Relaxed) < step {
            return;
        }
        match self
            .store
            .prune_changes(self.published(), self.options.retain)
            .await
        {
            Ok(()) => self.since_prune.store(0, Ordering::Relaxed),
            Err(e) => tracing::warn!("pruning the change log: {e}"),
        }
    }

    fn publish(&self, cursor: Cursor, bytes: Bytes) {
        self.send(cursor, bytes, false);
    }

    fn publish_reset(&self, cursor: Cursor, reason: &str) {
        tracing::warn!(%cursor, "feed reset: {reason}");
        self.send(cursor, self.reset(cursor, reason), true);
    }

    fn send(&self, cursor: Cursor, bytes: Bytes, reset: bool) {
        match self.published.lock() {
            Ok(mut p) => *p = cursor,
            Err(poisoned) => *poisoned.into_inner() = cursor,
        }
        self.since_prune.fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error.
        let _ = self.frames.send(Frame {
            cursor,
            bytes,
            presence: false,
            reset,
        });
    }

    /// `<database>:<cursor>`.
    fn id(&self, cursor: Cursor) -> String {
        format!("{}:{cursor}", self.database)
    }

    /// A logged change as an SSE frame: the stored JSON is sent as it is, once checked.
    fn encode(&self, row: &LogRow) -> Result<Bytes, String> {
        if let Some(op) = row.op {
            // Just written by this process's writer, from a serialised ChangeEvent.
            if row.event.contains(['\n', '\r']) {
                return Err(format!("change {} is damaged", row.cursor));
            }
            return Ok(frame(&self.id(row.cursor), op.as_str(), &row.event));
        }
        // What the frame needs, checked without building the whole event.
        #[derive(serde::Deserialize)]
        struct Head {
            seq: i64,
            op: Op,
        }
        let head: Head = serde_json::from_str(&row.event)
            .map_err(|e| format!("change {} in the log cannot be read ({e})", row.cursor))?;
        if head.seq != row.cursor.number() || row.event.contains(['\n', '\r']) {
            return Err(format!("change {} in the log is damaged", row.cursor));
        }
        Ok(frame(&self.id(row.cursor), head.op.as_str(), &row.event))
    }

    fn reset(&self, cursor: Cursor, reason: &str) -> Bytes {
        let data = serde_json::to_string(&ResetEvent {
            seq: cursor.number(),
            reason: reason.to_string(),
        })
        .unwrap_or_else(|_| "{}".into());
        frame(&self.id(cursor), RESET, &data)
    }

    fn ready(&self, cursor: Cursor) -> Bytes {
        frame(
            &self.id(cursor),
            READY,
            &format!("{{\"seq\":{}}}", cursor.number()),
        )
    }

    /// What a `Last-Event-ID` names: a position of this database's log in this backend's
    /// form, or why not.
    fn position(&self, last_event_id: &str) -> Result<Cursor, &'static str> {
        let (database, cursor) = last_event_id
            .trim()
            .rsplit_once(':')
            .ok_or("Last-Event-ID is not an event id of this server; reload the list")?;
        if database.is_empty() || !database.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("Last-Event-ID is not an event id of this server; reload the list");
        }
        if database != self.database {
            return Err("Last-Event-ID belongs to another database; reload the list");
        }
        self.kind
            .parse(cursor)
            .ok_or("Last-Event-ID is not an event id of this server; reload the list")
    }

    /// The event stream of one subscriber: from now (a `ready` event first), or resumed
    /// after `last_event_id` from the log, page by page as the client reads.
    pub fn subscribe(
        self: &Arc<Self>,
        last_event_id: Option<&str>,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        // Subscribe first, then read the position: a change published in between is in
        // both, and `sent` drops the repeat.
        let live = self.frames.subscribe();
        let now = self.published();
        let mut pending = VecDeque::new();
        let (sent, phase) = match last_event_id.map(|s| self.position(s)) {
            None => {
                pending.push_back(Pending::event(self.ready(now)));
                (now, Phase::Live)
            }
            Some(Ok(cursor)) if cursor > now => (cursor, Phase::Ahead),
            Some(Ok(cursor)) => (cursor, Phase::Backlog { upto: now }),
            Some(Err(reason)) => {
                pending.push_back(Pending::reset(self.reset(now, reason)));
                (now, Phase::Live)
            }
        };
        // Who is editing what now: every stream, fresh or resumed, begins with the
        // presence of now, never a replay of stale announcements.
        pending.extend(self.presence_now().into_iter().map(Pending::event));
        let start = tokio::time::Instant::now() + self.options.keep_alive;
        let mut keep_alive = tokio::time::interval_at(start, self.options.keep_alive);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let subscriber = Subscriber {
            feed: self.clone(),
            live,
            sent,
            pending,
            phase,
            keep_alive,
        };
        futures_util::stream::unfold(subscriber, |mut s| async move {
            let bytes = s.next().await?;
            Some((Ok(bytes), s))
        })
    }
}

/// `id: <database>:<cursor>`, `event:`, `data:` and the blank line that ends an event.
fn frame(id: &str, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

enum Phase {
    /// Sending logged changes after `sent` up to `upto`, then live.
    Backlog {
        upto: Cursor,
    },
    /// `Last-Event-ID` is past what this process has published: it may come from another
    /// process on the same database that is ahead, or name nothing. The log decides.
    Ahead,
    Live,
}

/// A frame one subscriber has yet to be sent.
struct Pending {
    bytes: Bytes,
    reset: bool,
}

impl Pending {
    fn event(bytes: Bytes) -> Self {
        Pending {
            bytes,
            reset: false,
        }
    }

    fn reset(bytes: Bytes) -> Self {
        Pending { bytes, reset: true }
    }
}

struct Subscriber {
    feed: Arc<Feed>,
    live: broadcast::Receiver<Frame>,
    /// The latest position sent to this subscriber.
    sent: Cursor,
    /// Frames ready to send (at most one page of the backlog).
    pending: VecDeque<Pending>,
    phase: Phase,
    keep_alive: tokio::time::Interval,
}

impl Subscriber {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(next) = self.pending.pop_front() {
                if next.reset {
                    crate::metrics::reset_sent();
                }
                return Some(next.bytes);
            }
            match self.phase {
                Phase::Backlog { upto } => self.read_backlog(upto).await,
                Phase::Ahead => {
                    self.phase = Phase::Live;
                    // Live frames up to `sent` are skipped, so this stream goes on from
                    // there once this process publishes that far, if the log has it.
                    let known = self.feed.store.changes_since(self.sent, 1).await;
                    if !known.is_ok_and(|page| page.resumable) {
                        self.reset_to_now(
                            "Last-Event-ID names no change the change log holds; reload the list",
                        );
                    }
                }
                Phase::Live => {
                    tokio::select! {
                        received = self.live.recv() => match received {
                            Ok(frame) if frame.presence => return Some(frame.bytes),
                            Ok(frame) if frame.cursor <= self.sent => {}
                            Ok(frame) => {
                                self.sent = frame.cursor;
                                if frame.reset {
                                    crate::metrics::reset_sent();
                                }
                                return Some(frame.bytes);
                            }
                            Err(RecvError::Lagged(missed)) => {
                                tracing::warn!(missed, "a slow event subscriber fell behind; sent reset");
                                self.reset_to_now("this subscriber fell behind the live feed; reload the list");
                            }
                            Err(RecvError::Closed) => return None,
                        },
                        _ = self.keep_alive.tick() => return Some(Bytes::from_static(b":\n\n")),
                    }
                }
            }
        }
    }

    fn reset_to_now(&mut self, reason: &str) {
        // Start over at the tail of the live feed (what the old receiver still holds is
        // older than the reset), then read the position, as in `subscribe`.
        self.live = self.live.resubscribe();
        let now = self.feed.published().max(self.sent);
        self.sent = now;
        self.pending
            .push_back(Pending::reset(self.feed.reset(now, reason)));
        self.phase = Phase::Live;
    }

    /// Reads the next page of the backlog into `pending`.
    async fn read_backlog(&mut self, upto: Cursor) {
        if self.sent >= upto {
            self.phase = Phase::Live;
            return;
        }
        let page = match self.feed.store.changes_since(self.sent, BACKLOG_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("reading the change log for a resumed stream: {e}");
                self.reset_to_now("the change log could not be read; reload the list");
                return;
            }
        };
        if !page.resumable || page.rows.is_empty() {
            self.sent = upto;
            self.pending.push_back(Pending::reset(self.feed.reset(
                upto,
                "the change log no longer holds the changes after Last-Event-ID; reload the list",
            )));
            self.phase = Phase::Live;
            return;
        }
        // One chunk per event: the connection buffers a bounded number of chunks, so a
        // client that stops reading holds a few events in the server, not pages of them.
        for row in page.rows.iter().take_while(|r| r.cursor <= upto) {
            let next = match self.feed.encode(row) {
                Ok(bytes) => Pending::event(bytes),
                Err(reason) => Pending::reset(self.feed.reset(row.cursor, &reason)),
            };
            self.sent = row.cursor;
            self.pending.push_back(next);
        }
        if self.pending.is_empty() {
            // Nothing at or below `upto` after `sent`: the backlog is done.
            self.phase = Phase::Live;
        }
    }
}

#[cfg(test)]
mod tests;
