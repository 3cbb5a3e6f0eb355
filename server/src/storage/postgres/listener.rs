//! The wake-up of other instances' commits: one connection of its own (outside the pool)
//! LISTENs on the change channel, and every notification becomes a wake-up for the feed,
//! which then reads the log. Notifications sent while this connection is down are lost,
//! so after every (re)connection it sends a wake-up too: the log is the truth.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{NOTIFY_CHANNEL, Notifier};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Listens until the store is dropped, reconnecting with backoff.
pub fn spawn(config: tokio_postgres::Config, notifier: Arc<Notifier>) {
    tokio::spawn(async move {
        let mut backoff = FIRST_RETRY;
        while !notifier.is_closed() {
            match listen(&config, &notifier).await {
                Ok(()) => {
                    backoff = FIRST_RETRY;
                    if !notifier.is_closed() {
                        tracing::warn!(
                            "the LISTEN connection to PostgreSQL ended; reconnecting (the change log is polled meanwhile)"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    retry_in = ?backoff,
                    "cannot LISTEN for other instances' changes: {e} (the change log is polled meanwhile)"
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(LAST_RETRY);
        }
    });
}

/// Connects, LISTENs, and wakes the feed on every notification until the connection
/// ends (`Ok`), or fails to get that far (`Err`).
async fn listen(
    config: &tokio_postgres::Config,
    notifier: &Notifier,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection yields notifications only when polled as a stream; a task drives it
    // and forwards them, and its channel closing tells that the connection ended.
    let (tx, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("the LISTEN connection failed: {e}");
                    break;
                }
            }
        }
    });
    if let Err(e) = client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
    {
        driver.abort();
        return Err(e);
    }
    tracing::debug!("listening for other instances' changes");
    // What was committed while nobody listened is in the log.
    notifier.wake();
    while notifications.recv().await.is_some() {
        // A burst of notifications is one read of the log.
        while notifications.try_recv().is_ok() {}
        notifier.wake();
        if notifier.is_closed() {
            break;
        }
    }
    drop(client);
    driver.abort();
    Ok(())
}
