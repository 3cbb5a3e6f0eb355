//! The application's shared state: what every handler may reach (the store, the feed,
//! the limits and switches the server was started with). Imported by the router and the
//! routes; it imports only the parts it holds, none of which import it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::auth::AuthMode;
use crate::feed::Feed;
use crate::head::HeadLimits;
use crate::idempotency::InFlight;
use crate::storage::{Durability, Storage};

pub struct AppState {
    pub store: Arc<dyn Storage>,
    pub feed: Arc<Feed>,
    pub allow_unconditional: bool,
    pub shutdown: watch::Receiver<bool>,
    pub auth: Arc<AuthMode>,
    pub head_limits: HeadLimits,
    /// How long a handler waits for a request body to arrive whole.
    pub body_timeout: Duration,
    /// One permit per open event stream (`--max-event-streams`, kept below the connection
    /// cap so that streams never take every connection).
    pub event_streams: Arc<Semaphore>,
    /// What the database writer actually runs with, as `/health` reports it.
    pub durability: Durability,
    /// Idempotency-Keys whose first request is being served now.
    pub in_flight: Arc<InFlight>,
}

/// The state as handlers and middleware extract it.
pub type Shared = Arc<AppState>;
