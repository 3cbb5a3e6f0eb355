//! Presence in the feed: who is editing what, kept in memory (never in the log), fanned out
//! to every subscriber as `presence` events without ids, expired when not renewed. Every
//! announcement (renewals too) and withdrawal of this instance's clients is also told to
//! the other instances on the database (PostgreSQL), which hold it as theirs until it is
//! withdrawn or no longer renewed: an instance that dies takes its clients' presence with
//! it within the TTL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use catalog_shared::presence::{Announce, PRESENCE, PresenceEvent};
use tokio::sync::{broadcast, watch};

use super::{Feed, Frame, Here};

impl Feed {
    /// "`client` (`user`) is editing this product, this field", renewed by each call.
    pub fn announce(&self, client: &str, user: &str, announce: Announce) {
        self.tell_peers(&PresenceEvent {
            client: client.to_string(),
            user: user.to_string(),
            product_id: Some(announce.product_id),
            field: announce.field.clone(),
        });
        self.note(client, user, announce, false);
    }

    /// Records an announcement (this instance's, or another's when `remote`), and tells
    /// the subscribers when it changed anything.
    fn note(&self, client: &str, user: &str, announce: Announce, remote: bool) {
        let until = tokio::time::Instant::now() + self.options.presence_ttl;
        let mut news = None;
        self.presence.send_modify(|map| {
            let map = Arc::make_mut(map);
            let changed = map.get(client).is_none_or(|h| {
                h.product_id != announce.product_id || h.field != announce.field || h.user != user
            });
            map.insert(
                client.to_string(),
                Here {
                    user: user.to_string(),
                    product_id: announce.product_id,
                    field: announce.field.clone(),
                    until,
                    remote,
                },
            );
            if changed {
                news = Some(PresenceEvent {
                    client: client.to_string(),
                    user: user.to_string(),
                    product_id: Some(announce.product_id),
                    field: announce.field,
                });
            }
        });
        if let Some(event) = news {
            self.publish_presence(&event);
        }
    }

    /// `client` left (closed its editor, or its event stream ended).
    pub fn withdraw(&self, client: &str) {
        if self.forget(client).is_some_and(|h| !h.remote) {
            self.tell_peers(&PresenceEvent {
                client: client.to_string(),
                user: String::new(),
                product_id: None,
                field: None,
            });
        }
    }

    /// Forgets `client`'s announcement, telling the subscribers; returns what it was.
    fn forget(&self, client: &str) -> Option<Here> {
        let mut gone = None;
        self.presence.send_modify(|map| {
            if map.contains_key(client) {
                gone = Arc::make_mut(map).remove(client);
            }
        });
        if let Some(here) = &gone {
            self.publish_presence(&PresenceEvent {
                client: client.to_string(),
                user: here.user.clone(),
                product_id: None,
                field: None,
            });
        }
        gone
    }

    fn tell_peers(&self, event: &PresenceEvent) {
        if let Ok(message) = serde_json::to_string(event) {
            self.store.tell_peers(message);
        }
    }

    /// Another instance's announcement or withdrawal.
    fn heard(&self, message: &str) {
        let Ok(event) = serde_json::from_str::<PresenceEvent>(message) else {
            tracing::debug!("ignored a peer message that is not presence: {message:?}");
            return;
        };
        match event.product_id {
            Some(product_id) => self.note(
                &event.client,
                &event.user,
                Announce {
                    product_id,
                    field: event.field,
                },
                true,
            ),
            None => {
                self.forget(&event.client);
            }
        }
    }

    /// Forgets announcements that were not renewed in time.
    pub fn expire_presence(&self) {
        let now = tokio::time::Instant::now();
        let expired: Vec<String> = self
            .presence
            .borrow()
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for client in expired {
            self.withdraw(&client);
        }
    }

    /// How many clients are editing something now.
    pub fn presence_count(&self) -> usize {
        self.presence.borrow().len()
    }

    /// Expires stale presence every second, and takes in the other instances' presence,
    /// until `stop` turns true.
    pub fn spawn_presence_reaper(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        if let Some(mut peers) = self.store.peer_messages() {
            let feed = self.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        message = peers.recv() => match message {
                            Ok(message) => feed.heard(&message),
                            // Missed announcements come back with their renewal.
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            });
        }
        let feed = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => feed.expire_presence(),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }

    fn publish_presence(&self, event: &PresenceEvent) {
        let _ = self.frames.send(Frame {
            cursor: self.kind.start(),
            bytes: presence_frame(event),
            presence: true,
            reset: false,
        });
    }

    /// The presence of now, as the frames a new stream begins with.
    pub(super) fn presence_now(&self) -> Vec<Bytes> {
        self.presence
            .borrow()
            .iter()
            .map(|(client, h)| {
                presence_frame(&PresenceEvent {
                    client: client.clone(),
                    user: h.user.clone(),
                    product_id: Some(h.product_id),
                    field: h.field.clone(),
                })
            })
            .collect()
    }
}

/// A presence event: no `id:`, so it never moves a stream's `Last-Event-ID`.
fn presence_frame(event: &PresenceEvent) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: {PRESENCE}\ndata: {data}\n\n"))
}
