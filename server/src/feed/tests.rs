//! The feed's tests: live and resumed subscribers, pages, lag and resets, on a real SQLite file.
use catalog_shared::event::EventId;
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
