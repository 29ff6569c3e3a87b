//! [`ClientConfig`]: how a client behaves on the network, and the fixed
//! intervals of its background task.

use std::collections::HashSet;
use std::time::Duration;

use hush_protocol::UserId;

use super::Backoff;
use super::typing::TYPING_TIMEOUT;
use crate::error::ClientError;

/// How long [`Client::close`] waits for queued delivery receipts.
pub(super) const RECEIPT_GRACE: Duration = Duration::from_secs(2);

/// How often a connected client checks whether its signed prekey is due
/// for rotation.
pub(super) const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Envelopes processed between two receipt flushes while the inbox is busy.
pub(super) const RECEIPT_FLUSH_EVERY: usize = 100;

/// How a client behaves on the network.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Relay WebSocket URL; `None` uses the profile's.
    pub relay_url: Option<String>,
    /// Connection attempts before [`Client::connect`] gives up with
    /// [`ClientError::Unreachable`]. Once connected, the client retries
    /// forever.
    pub connect_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// How long one request waits for its reply (and `send_text` for a
    /// connection).
    pub request_timeout: Duration,
    /// Process envelopes pushed by the relay. Off for a client that only
    /// sends (`hush send`): envelopes then stay queued, unacknowledged, for
    /// the next client that receives.
    pub receive: bool,
    /// Send a delivery receipt for every text message stored.
    pub delivery_receipts: bool,
    /// Largest frame accepted from the relay.
    pub max_frame_bytes: usize,
    /// Events buffered for the application before processing waits for it.
    pub event_capacity: usize,
    /// A PEM file of extra CA certificates trusted for `wss://` relays,
    /// besides the system's roots (for a relay with a private or
    /// self-signed certificate).
    pub ca_file: Option<std::path::PathBuf>,
    /// A peer's "typing" ends (with an [`Event::Typing`] `Stopped`) this
    /// long after its last `Started` when no `Stopped` came.
    pub typing_timeout: Duration,
    /// Users whose presence is subscribed to on every connection from the
    /// first (at most
    /// [`MAX_PRESENCE_SUBSCRIPTIONS`](crate::limits::MAX_PRESENCE_SUBSCRIPTIONS)
    /// distinct ids). Their snapshot and every later change arrive only as
    /// [`Event::Presence`], in the order the relay sent them: unlike a
    /// [`Client::subscribe_presence`] made after connecting, whose returned
    /// snapshot can race with a renewal's events, nothing is seen twice or
    /// out of order.
    pub presence: Vec<UserId>,
    /// Return from [`Client::connect`] at once, before any connection:
    /// the client keeps trying (forever, with backoff) and reports each
    /// failure as [`ConnectionState::Disconnected`] (or
    /// [`ConnectionState::Stopped`] for one that retrying cannot fix) and
    /// success as [`ConnectionState::Connected`]. For an interactive
    /// client that works offline until the relay answers.
    pub start_offline: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            relay_url: None,
            connect_attempts: 5,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            receive: true,
            delivery_receipts: true,
            max_frame_bytes: hush_protocol::Limits::default().max_frame_bytes,
            event_capacity: 1024,
            ca_file: None,
            typing_timeout: TYPING_TIMEOUT,
            presence: Vec::new(),
            start_offline: false,
        }
    }
}

/// Refuses a request the relay would refuse: more than `max` distinct ids.
pub(super) fn check_presence_request(
    users: &[UserId],
    what: &'static str,
    max: usize,
) -> Result<(), ClientError> {
    let distinct: HashSet<&UserId> = users.iter().collect();
    if distinct.len() > max {
        return Err(ClientError::LimitExceeded { what, max });
    }
    Ok(())
}
