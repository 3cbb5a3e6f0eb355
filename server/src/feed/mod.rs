//! The change feed: turns the change log into Server-Sent Events. The log is the truth;
//! one publisher task reads it in sequence order (woken by this process's commits, and
//! on a timer for other processes' commits) and hands each event, serialised once, to
//! every subscriber. A subscriber is told every change in order, or `reset`, never
//! silence over a gap. The feed knows the log, not HTTP.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use catalog_shared::event::{EventId, Op, READY, RESET, ResetEvent};
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use crate::storage::{LogRow, Storage, StoreResult};

mod presence;

/// How many log rows the publisher reads at a time.
const PAGE: usize = 256;
/// How many log rows a resuming stream reads at a time: what one stream holds at most of
/// its backlog (about 500 bytes an event, so about 16 KiB), whatever the backlog's size.
const BACKLOG_PAGE: usize = 32;

/// Tuning of the feed.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Change-log rows kept behind the latest published one, for `Last-Event-ID`.
    pub retain: i64,
    /// Events a subscriber may fall behind the live feed before it gets `reset`.
    pub buffer: usize,
    /// How often the log is read for changes committed by other processes.
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
    seq: i64,
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
}

pub struct Feed {
    store: Arc<dyn Storage>,
    /// The database's identity as event ids carry it.
    database: String,
    frames: broadcast::Sender<Frame>,
    /// The highest sequence number handed to subscribers. Stored before the frame is
    /// sent, so a subscriber that subscribes and then reads it misses nothing.
    published: AtomicI64,
    /// Presence, by client id: advisory, in memory, never in the log.
    presence: watch::Sender<Arc<std::collections::HashMap<String, Here>>>,
    options: FeedOptions,
}

impl Feed {
    /// A feed that starts after the latest change in the log.
    pub async fn new(store: Arc<dyn Storage>, options: FeedOptions) -> StoreResult<Arc<Feed>> {
        let (latest, _) = store.latest_change().await?;
        // Start within the retention, so a stale Last-Event-ID is refused from the start.
        if latest - options.retain > 0 {
            store.prune_changes(latest - options.retain).await?;
        }
        let database = store.identity().chars().take(16).collect();
        let (frames, _) = broadcast::channel(options.buffer.max(1));
        Ok(Arc::new(Feed {
            store,
            database,
            frames,
            published: AtomicI64::new(latest),
            presence: watch::channel(Arc::new(std::collections::HashMap::new())).0,
            options,
        }))
    }

    /// Runs the publisher until `stop` turns true.
    pub fn spawn_publisher(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let feed = self.clone();
        let mut commits = self.store.commits();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(feed.options.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned = 0i64;
            let mut woken = true;
            loop {
                let notice = tokio::select! {
                    changed = commits.changed(), if woken => {
                        woken = changed.is_ok();
                        woken.then(|| commits.borrow_and_update().clone())
                    }
                    _ = tick.tick() => None,
                    _ = stop.wait_for(|s| *s) => return,
                };
                // This process's own commit, following on from what was published: its
                // rows are sent as the writer logged them. Anything else (a gap, other
                // processes' commits, a timer tick) is read from the log.
                // A notice without rows (another instance's commit, say) is only a wake-up.
                let sent =
                    notice.is_some_and(|n| !n.rows.is_empty() && feed.publish_committed(&n.rows));
                if !sent && let Err(e) = feed.catch_up().await {
                    tracing::warn!("reading the change log: {e}; retrying");
                    continue;
                }
                pruned = feed.prune(pruned).await;
            }
        });
    }

    /// Publishes rows this process's writer just committed, if they follow on from what
    /// was published; returns false when there is a gap only the log can fill.
    fn publish_committed(&self, rows: &[LogRow]) -> bool {
        let published = self.published.load(Ordering::SeqCst);
        let mut fresh = rows.iter().filter(|r| r.seq > published).peekable();
        match fresh.peek() {
            None => true,
            Some(first) if first.seq == published + 1 => {
                for row in fresh {
                    match self.encode(row) {
                        Ok(bytes) => self.publish(row.seq, bytes),
                        Err(reason) => self.publish_reset(row.seq, &reason),
                    }
                }
                true
            }
            Some(_) => false,
        }
    }

    /// Publishes every committed change after the last published one, in order.
    async fn catch_up(&self) -> StoreResult<()> {
        loop {
            let after = self.published.load(Ordering::SeqCst);
            let page = self.store.changes_since(after, PAGE).await?;
            let Some(first) = page.rows.first() else {
                if page.latest > after {
                    self.publish_reset(
                        page.latest,
                        "the change log was pruned past changes this server had not sent yet",
                    );
                }
                return Ok(());
            };
            if first.seq != after + 1 {
                self.publish_reset(
                    first.seq - 1,
                    "the change log was pruned past changes this server had not sent yet",
                );
            }
            let full = page.rows.len() == PAGE;
            for row in &page.rows {
                match self.encode(row) {
                    Ok(bytes) => self.publish(row.seq, bytes),
                    Err(reason) => self.publish_reset(row.seq, &reason),
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Drops log rows older than the retention behind what was published, in steps so
    /// that pruning costs one write per many changes.
    async fn prune(&self, pruned: i64) -> i64 {
        let upto = self.published.load(Ordering::SeqCst) - self.options.retain;
        let step = (self.options.retain / 10).max(1);
        if upto < pruned + step {
            return pruned;
        }
        match self.store.prune_changes(upto).await {
            Ok(()) => upto,
            Err(e) => {
                tracing::warn!("pruning the change log: {e}");
                pruned
            }
        }
    }

    fn publish(&self, seq: i64, bytes: Bytes) {
        self.send(seq, bytes, false);
    }

    fn publish_reset(&self, seq: i64, reason: &str) {
        tracing::warn!(seq, "feed reset: {reason}");
        self.send(seq, self.reset(seq, reason), true);
    }

    fn send(&self, seq: i64, bytes: Bytes, reset: bool) {
        self.published.store(seq, Ordering::SeqCst);
        // No subscriber is not an error.
        let _ = self.frames.send(Frame {
            seq,
            bytes,
            presence: false,
            reset,
        });
    }

    fn id(&self, seq: i64) -> EventId {
        EventId {
            database: self.database.clone(),
            seq,
        }
    }

    /// A logged change as an SSE frame: the stored JSON is sent as it is, once checked.
    fn encode(&self, row: &LogRow) -> Result<Bytes, String> {
        if let Some(op) = row.op {
            // Just written by this process's writer, from a serialised ChangeEvent.
            if row.event.contains(['\n', '\r']) {
                return Err(format!("change {} is damaged", row.seq));
            }
            return Ok(frame(&self.id(row.seq), op.as_str(), &row.event));
        }
        // What the frame needs, checked without building the whole event.
        #[derive(serde::Deserialize)]
        struct Head {
            seq: i64,
            op: Op,
        }
        let head: Head = serde_json::from_str(&row.event)
            .map_err(|e| format!("change {} in the log cannot be read ({e})", row.seq))?;
        if head.seq != row.seq || row.event.contains(['\n', '\r']) {
            return Err(format!("change {} in the log is damaged", row.seq));
        }
        Ok(frame(&self.id(row.seq), head.op.as_str(), &row.event))
    }

    fn reset(&self, seq: i64, reason: &str) -> Bytes {
        let data = serde_json::to_string(&ResetEvent {
            seq,
            reason: reason.to_string(),
        })
        .unwrap_or_else(|_| "{}".into());
        frame(&self.id(seq), RESET, &data)
    }

    fn ready(&self, seq: i64) -> Bytes {
        frame(&self.id(seq), READY, &format!("{{\"seq\":{seq}}}"))
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
        let now = self.published.load(Ordering::SeqCst);
        let mut pending = VecDeque::new();
        let (sent, phase) = match last_event_id.map(|s| s.parse::<EventId>()) {
            None => {
                pending.push_back(Pending::event(self.ready(now)));
                (now, Phase::Live)
            }
            Some(Ok(id)) if id.database == self.database => {
                if id.seq > now {
                    (id.seq, Phase::Ahead)
                } else {
                    (id.seq, Phase::Backlog { upto: now })
                }
            }
            Some(Ok(_)) => {
                pending.push_back(Pending::reset(self.reset(
                    now,
                    "Last-Event-ID belongs to another database; reload the list",
                )));
                (now, Phase::Live)
            }
            Some(Err(_)) => {
                pending.push_back(Pending::reset(self.reset(
                    now,
                    "Last-Event-ID is not an event id of this server; reload the list",
                )));
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

/// `id: <database>:<seq>`, `event:`, `data:` and the blank line that ends an event.
fn frame(id: &EventId, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

enum Phase {
    /// Sending logged changes after `sent` up to `upto`, then live.
    Backlog {
        upto: i64,
    },
    /// `Last-Event-ID` is past what this process has published: it may come from another
    /// process on the same database that is ahead, or be invalid. The log decides.
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
    /// The highest sequence number sent to this subscriber.
    sent: i64,
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
                    let latest = self.feed.store.latest_change().await.map(|l| l.0);
                    if latest.map_or(true, |latest| self.sent > latest) {
                        self.reset_to_now(
                            "Last-Event-ID is ahead of the change log; reload the list",
                        );
                    }
                }
                Phase::Live => {
                    tokio::select! {
                        received = self.live.recv() => match received {
                            Ok(frame) if frame.presence => return Some(frame.bytes),
                            Ok(frame) if frame.seq <= self.sent => {}
                            Ok(frame) => {
                                self.sent = frame.seq;
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
        let now = self.feed.published.load(Ordering::SeqCst).max(self.sent);
        self.sent = now;
        self.pending
            .push_back(Pending::reset(self.feed.reset(now, reason)));
        self.phase = Phase::Live;
    }

    /// Reads the next page of the backlog into `pending`.
    async fn read_backlog(&mut self, upto: i64) {
        if self.sent >= upto {
            self.phase = Phase::Live;
            return;
        }
        let want = BACKLOG_PAGE.min((upto - self.sent) as usize);
        let page = match self.feed.store.changes_since(self.sent, want).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("reading the change log for a resumed stream: {e}");
                self.reset_to_now("the change log could not be read; reload the list");
                return;
            }
        };
        if page.rows.first().map(|r| r.seq) != Some(self.sent + 1) {
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
        for row in page.rows.iter().take_while(|r| r.seq <= upto) {
            let next = match self.feed.encode(row) {
                Ok(bytes) => Pending::event(bytes),
                Err(reason) => Pending::reset(self.feed.reset(row.seq, &reason)),
            };
            self.sent = row.seq;
            self.pending.push_back(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use catalog_shared::product::{ProductFields, Status};
    use futures_util::StreamExt;

    use super::*;
    use crate::storage::sqlite::writer::{AfterCommit, WriteOp};
    use crate::storage::sqlite::{Options, SqliteStore};

    fn fields(i: usize) -> ProductFields {
        ProductFields {
            sku: format!("S-{i}"),
            name: "n".into(),
            description: String::new(),
            price_cents: 1,
            status: Status::InStock,
        }
    }

    async fn store(dir: &tempfile::TempDir, after_commit: Option<AfterCommit>) -> Arc<SqliteStore> {
        Arc::new(
            SqliteStore::open_with(&dir.path().join("c.db"), Options::default(), after_commit)
                .unwrap()
                .0,
        )
    }

    /// Reads a stream event by event (a chunk may hold several).
    struct Events<S> {
        stream: S,
        buf: String,
    }

    fn events<S>(stream: S) -> Events<S> {
        Events {
            stream,
            buf: String::new(),
        }
    }

    /// The next event of a stream, as text (keep-alive comments skipped).
    async fn next<S: Stream<Item = Result<Bytes, Infallible>> + Unpin>(
        events: &mut Events<S>,
    ) -> String {
        loop {
            if let Some(end) = events.buf.find("\n\n") {
                let event: String = events.buf.drain(..end + 2).collect();
                if event.starts_with(':') {
                    continue;
                }
                return event;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), events.stream.next())
                .await
                .expect("a frame within 10 s")
                .expect("the stream is open")
                .unwrap_or_else(|e| match e {});
            events.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    fn seq_of(frame: &str) -> i64 {
        let id = frame
            .strip_prefix("id: ")
            .and_then(|rest| rest.split('\n').next())
            .expect("the frame has an id");
        id.parse::<EventId>().expect("a well-formed event id").seq
    }

    fn kind_of(frame: &str) -> &str {
        frame
            .split('\n')
            .find_map(|l| l.strip_prefix("event: "))
            .expect("the frame names its event")
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_reset_and_then_follows_live_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, None).await;
        let options = FeedOptions {
            buffer: 8,
            ..FeedOptions::default()
        };
        let feed = Feed::new(store.clone(), options).await.unwrap();
        let mut stream = events(Box::pin(feed.subscribe(None)));
        // Nobody reads the stream while more changes are published than its buffer holds.
        for i in 0..50 {
            store.create(fields(i), "w".into(), None).await.unwrap();
        }
        feed.catch_up().await.unwrap();
        let ready = next(&mut stream).await;
        assert_eq!((kind_of(&ready), seq_of(&ready)), ("ready", 0));
        let reset = next(&mut stream).await;
        assert_eq!(kind_of(&reset), "reset", "{reset}");
        assert_eq!(seq_of(&reset), 50, "the reset names the latest change");
        // After the reset it follows live changes again, without repeats.
        store.create(fields(100), "w".into(), None).await.unwrap();
        feed.catch_up().await.unwrap();
        let live = next(&mut stream).await;
        assert_eq!((kind_of(&live), seq_of(&live)), ("created", 51));
    }

    #[tokio::test]
    async fn an_undecodable_log_row_is_a_reset_never_a_silent_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, None).await;
        let feed = Feed::new(store.clone(), FeedOptions::default())
            .await
            .unwrap();
        let mut live = events(Box::pin(feed.subscribe(None)));
        assert_eq!(kind_of(&next(&mut live).await), "ready");
        for i in 0..3 {
            store.create(fields(i), "w".into(), None).await.unwrap();
        }
        store
            .exec(WriteOp::Exec(
                "UPDATE changes SET event = '{not json' WHERE seq = 2".into(),
            ))
            .await
            .unwrap();
        feed.catch_up().await.unwrap();
        let got: Vec<(String, i64)> = [
            next(&mut live).await,
            next(&mut live).await,
            next(&mut live).await,
        ]
        .iter()
        .map(|f| (kind_of(f).to_string(), seq_of(f)))
        .collect();
        let want = [("created", 1), ("reset", 2), ("created", 3)];
        assert_eq!(
            got,
            want.map(|(k, s)| (k.to_string(), s)).to_vec(),
            "live subscribers"
        );
        // A stream resumed from the log hears the same.
        let id = EventId {
            database: feed.database.clone(),
            seq: 0,
        }
        .to_string();
        let mut resumed = events(Box::pin(feed.subscribe(Some(&id))));
        let got: Vec<(String, i64)> = [
            next(&mut resumed).await,
            next(&mut resumed).await,
            next(&mut resumed).await,
        ]
        .iter()
        .map(|f| (kind_of(f).to_string(), seq_of(f)))
        .collect();
        assert_eq!(
            got,
            want.map(|(k, s)| (k.to_string(), s)).to_vec(),
            "resumed subscribers"
        );
    }

    #[tokio::test]
    async fn a_change_whose_commit_notice_was_lost_still_reaches_subscribers() {
        let dir = tempfile::tempdir().unwrap();
        let failing: AfterCommit = Box::new(|_| Err("injected fault after the commit".into()));
        let store = store(&dir, Some(failing)).await;
        let options = FeedOptions {
            poll: Duration::from_millis(20),
            ..FeedOptions::default()
        };
        let feed = Feed::new(store.clone(), options).await.unwrap();
        let (_stop, stop) = watch::channel(false);
        feed.spawn_publisher(stop);
        let mut stream = events(Box::pin(feed.subscribe(None)));
        assert_eq!(kind_of(&next(&mut stream).await), "ready");
        let p = store.create(fields(1), "w".into(), None).await.unwrap();
        assert_eq!(p.version, 1, "the write is answered as committed");
        let event = next(&mut stream).await;
        assert_eq!((kind_of(&event), seq_of(&event)), ("created", 1));
    }

    #[tokio::test]
    async fn a_resumed_stream_reads_its_backlog_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, None).await;
        for i in 0..(3 * BACKLOG_PAGE + 5) {
            store.create(fields(i), "w".into(), None).await.unwrap();
        }
        let feed = Feed::new(store.clone(), FeedOptions::default())
            .await
            .unwrap();
        let id = EventId {
            database: feed.database.clone(),
            seq: 2,
        };
        let mut stream = events(Box::pin(feed.subscribe(Some(&id.to_string()))));
        let first = next(&mut stream).await;
        assert_eq!(seq_of(&first), 3);
        // Holding one page at most, never the whole backlog.
        let mut want = 4;
        while want <= (3 * BACKLOG_PAGE + 5) as i64 {
            let f = next(&mut stream).await;
            assert_eq!(seq_of(&f), want);
            want += 1;
        }
        // Another database's event id is not resumed against this one.
        let foreign = EventId {
            database: "0123456789abcdef".into(),
            seq: 2,
        };
        let mut other = events(Box::pin(feed.subscribe(Some(&foreign.to_string()))));
        assert_eq!(kind_of(&next(&mut other).await), "reset");
    }
}
