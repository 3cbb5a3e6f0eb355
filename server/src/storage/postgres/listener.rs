//! The connection between instances: one connection of its own (outside the pool, never
//! inside a transaction of ours) that LISTENs for the other instances' commits and
//! presence, and sends this instance's. A commit is told with one NOTIFY at most every
//! [`SIGNAL_EVERY`], however many commits there were: NOTIFY inside a write would take a
//! cluster-wide lock at its commit and serialise every write (STORAGE.md). A notification
//! only wakes the feed, which reads the log; the feed also polls, so a notification lost
//! (while this connection is down, say) delays changes and loses none. After every
//! (re)connection it wakes the feed too: the log is the truth.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{NOTIFY_CHANNEL, Notifier, PRESENCE_CHANNEL};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// The least time between two NOTIFYs of commits: other instances hear of a commit
/// within it (plus their read of the log), and a burst of commits costs one.
const SIGNAL_EVERY: Duration = Duration::from_millis(25);

/// Listens and signals until the store is dropped, reconnecting with backoff.
pub fn spawn(
    mut config: tokio_postgres::Config,
    notifier: Arc<Notifier>,
    mut presence: mpsc::Receiver<String>,
) {
    // Told apart from the pool's sessions in pg_stat_activity.
    let name = config.get_application_name().unwrap_or("catalog-server");
    let name = format!("{name} listener");
    config.application_name(&name);
    tokio::spawn(async move {
        let mut backoff = FIRST_RETRY;
        while !notifier.is_closed() {
            match listen(&config, &notifier, &mut presence).await {
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
                    "the LISTEN connection to PostgreSQL failed: {e}; reconnecting (the change log is polled meanwhile)"
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(LAST_RETRY);
        }
    });
}

/// A notification, as the connection's driver forwards it.
struct Heard {
    channel: String,
    payload: String,
    from: i32,
}

/// Connects, LISTENs, and relays until the connection ends (`Ok`), or fails to get that
/// far (`Err`).
async fn listen(
    config: &tokio_postgres::Config,
    notifier: &Notifier,
    presence: &mut mpsc::Receiver<String>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection yields notifications only when polled as a stream; a task drives it
    // and forwards them, and its channel closing tells that the connection ended.
    let (tx, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let heard = Heard {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                        from: n.process_id(),
                    };
                    if tx.send(heard).is_err() {
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
    let setup = async {
        client
            .batch_execute(&format!(
                "LISTEN {NOTIFY_CHANNEL}; LISTEN {PRESENCE_CHANNEL}"
            ))
            .await?;
        let me: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await?
            .try_get(0)?;
        let signal = client
            .prepare(&format!("SELECT pg_notify('{NOTIFY_CHANNEL}', '')"))
            .await?;
        let tell = client
            .prepare(&format!("SELECT pg_notify('{PRESENCE_CHANNEL}', $1)"))
            .await?;
        Ok::<_, tokio_postgres::Error>((me, signal, tell))
    };
    let (me, signal, tell) = match setup.await {
        Ok(prepared) => prepared,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    // At info: from here on, what other instances tell (presence among it, which is
    // not in the log) reaches this one; told before, it was missed until renewed.
    tracing::info!("listening for other instances' changes and presence");
    // What was committed while nobody listened is in the log.
    notifier.wake();
    // When the next NOTIFY of commits may go out.
    let mut next_signal = Instant::now();
    let result = loop {
        let due = notifier.unsignalled.load(Ordering::Acquire);
        tokio::select! {
            heard = notifications.recv() => {
                let Some(heard) = heard else { break Ok(()) };
                // A burst of commit notifications is one read of the log.
                let mut wake = false;
                let mut next = Some(heard);
                while let Some(heard) = next {
                    // Our own notifications come back to us too.
                    if heard.from != me {
                        if heard.channel == PRESENCE_CHANNEL {
                            let _ = notifier.peers.send(Arc::from(heard.payload));
                        } else {
                            wake = true;
                        }
                    }
                    next = notifications.try_recv().ok();
                }
                if wake {
                    notifier.wake();
                }
            }
            _ = notifier.signal.notified(), if !due => {}
            _ = tokio::time::sleep_until(next_signal), if due => {
                notifier.unsignalled.store(false, Ordering::Release);
                next_signal = Instant::now() + SIGNAL_EVERY;
                if let Err(e) = client.execute(&signal, &[]).await {
                    // Told after the reconnection's wake-up, or by the others' polling.
                    break Err(e);
                }
            }
            message = presence.recv() => {
                let Some(message) = message else { break Ok(()) };
                if let Err(e) = client.execute(&tell, &[&message]).await {
                    break Err(e);
                }
            }
        }
        if notifier.is_closed() {
            break Ok(());
        }
    };
    drop(client);
    driver.abort();
    result
}
