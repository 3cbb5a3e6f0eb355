//! Presence in the feed: who is editing what, kept in memory (never in the log), fanned out
//! to every subscriber as `presence` events without ids, expired when not renewed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use catalog_shared::presence::{Announce, PRESENCE, PresenceEvent};
use tokio::sync::watch;

use super::{Feed, Frame, Here};

impl Feed {
    /// "`client` (`user`) is editing this product, this field", renewed by each call.
    pub fn announce(&self, client: &str, user: &str, announce: Announce) {
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
        let mut gone = None;
        self.presence.send_modify(|map| {
            if map.contains_key(client) {
                gone = Arc::make_mut(map).remove(client);
            }
        });
        if let Some(here) = gone {
            self.publish_presence(&PresenceEvent {
                client: client.to_string(),
                user: here.user,
                product_id: None,
                field: None,
            });
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

    /// Expires stale presence every second until `stop` turns true.
    pub fn spawn_presence_reaper(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
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
            seq: 0,
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
