//! Every bound a peer controls, in one place. The relay enforces each one and
//! answers a named error code when it is exceeded; clients read the same
//! defaults so they never build a frame the relay will refuse.
//!
//! | field | default | enforced as |
//! | --- | --- | --- |
//! | `max_frame_bytes` | 131072 | WebSocket close 1009 |
//! | `max_envelope_bytes` | 65536 | `envelope_too_large` |
//! | `max_send_frame_bytes` | 3145728 | WebSocket close 1009 (a `send_copies` frame) |
//! | `max_prekeys_per_upload` | 100 | `too_many_prekeys` |
//! | `max_prekeys_stored` | 500 | `too_many_prekeys` |
//! | `prekey_low_threshold` | 20 | `prekeys_low` frame |
//! | `mailbox_max_envelopes` | 10000 | `mailbox_full` |
//! | `mailbox_max_bytes` | 67108864 | `mailbox_full` |
//! | `retention` | 30 days | periodic sweep |
//! | `rate_per_sec` / `rate_burst` | 1000 / 2000 | `rate_limited` |
//! | `max_connections_per_ip` | 256 | HTTP 429 |
//! | `max_connections` | 10000 | HTTP 503 |
//! | `upgrade_timeout` | 5 s | connection closed before the upgrade |
//! | `ping_interval` | 30 s | WebSocket ping when the peer is quiet |
//! | `idle_timeout` | 75 s | dropped without a close frame (half-open) |
//! | `bundle_fetch_burst` / `bundle_fetches_per_hour` | 60 / 120 | `rate_limited` |
//! | `registration_burst` / `registrations_per_hour` | 100 / 100 | `rate_limited`, close 4001 |
//! | `ip_rate_per_sec` / `ip_rate_burst` | 5000 / 10000 | `rate_limited` |
//! | `byte_rate_per_sec` / `byte_rate_burst` | 1 MiB / 4 MiB | reading paused (no error) |
//! | `ip_byte_rate_per_sec` / `ip_byte_rate_burst` | 2 MiB / 8 MiB | reading paused (no error) |
//! | `max_in_flight_bytes` | 1 MiB | reading paused until commits complete |
//! | `auth_timeout` | 10 s | `auth_timeout`, close 4002 |
//! | `max_ack_ids` | 1000 | `too_many_ids` |
//! | `outbound_queue` | 1024 | close 4003 |
//! | `max_presence_allow` | 1000 | `limit_exceeded` |
//! | `max_presence_query` | 100 | `limit_exceeded` |
//! | `max_presence_subscriptions` | 256 | `limit_exceeded` |
//! | `presence_rate_per_sec` / `presence_rate_burst` | 5 / 20 | `rate_limited` |
//!
//! User id syntax is fixed by the protocol, not configurable: see
//! [`crate::user_id`].

use std::time::Duration;

/// Limits a relay enforces on its peers. `Limits::default()` is the protocol's
/// default set; a relay may be configured with other values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest text frame the relay reads, in bytes of UTF-8 JSON. Bounds the
    /// memory one frame can make the relay allocate; larger frames close the
    /// connection with 1009.
    pub max_frame_bytes: usize,
    /// Largest `send_copies` frame the relay reads, in bytes of UTF-8 JSON:
    /// one body per device of the recipient and of the sender (up to
    /// 2 × [`crate::devices::MAX_DEVICES`] copies), so it is larger than
    /// `max_frame_bytes`. Any other frame over `max_frame_bytes`, or a
    /// `send_copies` over this, closes the connection with 1009.
    pub max_send_frame_bytes: usize,
    /// Largest envelope body, in decoded bytes (not base64). Keeps mailboxes
    /// of many small messages rather than a few huge ones.
    pub max_envelope_bytes: usize,
    /// Most one-time prekeys one `publish_keys` may carry.
    pub max_prekeys_per_upload: usize,
    /// Most one-time prekeys stored per user; an upload that would exceed it
    /// is refused whole, so a client can never fill the directory.
    pub max_prekeys_stored: usize,
    /// When a fetch leaves fewer one-time prekeys than this, the owner is told
    /// (`prekeys_low`) so it can refill before the stock runs out.
    pub prekey_low_threshold: u32,
    /// Most envelopes waiting in one user's mailbox; beyond it the sender gets
    /// `mailbox_full`.
    pub mailbox_max_envelopes: u64,
    /// Most body bytes waiting in one user's mailbox; beyond it the sender
    /// gets `mailbox_full`.
    pub mailbox_max_bytes: u64,
    /// How long an unacknowledged envelope is kept before the sweep deletes it.
    pub retention: Duration,
    /// Sustained frames per second one connection may send (token bucket
    /// refill rate).
    pub rate_per_sec: u32,
    /// Frames one connection may send in a burst (token bucket size).
    pub rate_burst: u32,
    /// Most simultaneous connections from one IP address, counted from the
    /// TCP accept (not from the upgrade), so connections that never finish
    /// their HTTP request count too.
    pub max_connections_per_ip: usize,
    /// Most simultaneous connections in all, counted from the TCP accept;
    /// beyond it upgrades are refused with HTTP 503 (bounds the relay's
    /// memory and file descriptors whatever the number of addresses).
    pub max_connections: usize,
    /// Time from the TCP accept to the WebSocket upgrade (or, for plain
    /// HTTP such as `/healthz`, to the request being read): PROXY protocol
    /// header, TLS handshake and HTTP request included. A connection that
    /// has not got that far by then is closed, so silent or trickling
    /// connections cannot hold file descriptors.
    pub upgrade_timeout: Duration,
    /// A connection that has sent nothing for this long gets a WebSocket
    /// ping (which any live peer answers with a pong).
    pub ping_interval: Duration,
    /// A connection that has sent nothing at all (no frame, no pong) for this
    /// long is half-open or dead: the relay drops it without waiting for a
    /// close handshake, and its user is offline again. Must exceed
    /// `ping_interval`.
    pub idle_timeout: Duration,
    /// `fetch_bundle` requests one user may make in a burst, over all its
    /// connections (each fetch can consume one of the target's one-time
    /// prekeys: this bounds prekey draining). 0 disables the cap.
    pub bundle_fetch_burst: u32,
    /// Sustained `fetch_bundle` requests per user per hour (refill rate of
    /// the same bucket).
    pub bundle_fetches_per_hour: u32,
    /// New user registrations one IP address may make in a burst. 0 disables
    /// the cap.
    pub registration_burst: u32,
    /// Sustained new registrations per IP address per hour.
    pub registrations_per_hour: u32,
    /// Sustained frames per second from one IP address over all its
    /// connections (a second token bucket, beside the per-connection one,
    /// so many connections from one address do not multiply the rate).
    /// 0 disables it.
    pub ip_rate_per_sec: u32,
    /// Frames one IP address may send in a burst over all its connections.
    pub ip_rate_burst: u32,
    /// Sustained bytes per second one connection may send (text frames as
    /// read, after authentication): a token bucket of bytes. Beyond it the
    /// relay stops reading from the connection until the budget is back
    /// (TCP backpressure, no error). 0 disables it.
    pub byte_rate_per_sec: u32,
    /// Bytes one connection may send in a burst.
    pub byte_rate_burst: u32,
    /// Sustained bytes per second from one IP address over all its
    /// connections, enforced like `byte_rate_per_sec`. 0 disables it.
    pub ip_byte_rate_per_sec: u32,
    /// Bytes one IP address may send in a burst over all its connections.
    pub ip_byte_rate_burst: u32,
    /// Most envelope body bytes of one connection's sends awaiting their
    /// commit; beyond it the relay reads nothing more from the connection
    /// until some complete. Bounds what one connection queues in front of
    /// everyone else's commits.
    pub max_in_flight_bytes: usize,
    /// Time from the connection opening to a successful `auth`; a connection
    /// that has not authenticated by then is closed (4002).
    pub auth_timeout: Duration,
    /// Most ids one `ack` may carry.
    pub max_ack_ids: usize,
    /// Frames queued for one connection's socket; a reader that falls this
    /// far behind is a slow consumer and is closed (4003), its envelopes stay
    /// in its mailbox.
    pub outbound_queue: usize,
    /// Most distinct user ids on one user's presence allow list
    /// (`presence_allow`).
    pub max_presence_allow: usize,
    /// Most distinct user ids in one `presence_query`.
    pub max_presence_query: usize,
    /// Most distinct subjects one user's connection may subscribe to
    /// (`presence_subscribe`).
    pub max_presence_subscriptions: usize,
    /// Sustained presence frames (`presence_allow`, `presence_query`,
    /// `presence_subscribe`) and ephemeral sends per second per connection:
    /// their own token bucket, on top of `rate_per_sec`.
    pub presence_rate_per_sec: u32,
    /// Burst of that bucket.
    pub presence_rate_burst: u32,
}

/// Retention default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 131_072,
            max_envelope_bytes: 65_536,
            max_send_frame_bytes: 3 << 20,
            max_prekeys_per_upload: 100,
            max_prekeys_stored: 500,
            prekey_low_threshold: 20,
            mailbox_max_envelopes: 10_000,
            mailbox_max_bytes: 67_108_864,
            retention: DEFAULT_RETENTION,
            rate_per_sec: 1000,
            rate_burst: 2000,
            max_connections_per_ip: 256,
            max_connections: 10_000,
            upgrade_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            bundle_fetch_burst: 60,
            bundle_fetches_per_hour: 120,
            registration_burst: 100,
            registrations_per_hour: 100,
            ip_rate_per_sec: 5000,
            ip_rate_burst: 10_000,
            byte_rate_per_sec: 1 << 20,
            byte_rate_burst: 4 << 20,
            ip_byte_rate_per_sec: 2 << 20,
            ip_byte_rate_burst: 8 << 20,
            max_in_flight_bytes: 1 << 20,
            auth_timeout: Duration::from_secs(10),
            max_ack_ids: 1000,
            outbound_queue: 1024,
            max_presence_allow: 1000,
            max_presence_query: 100,
            max_presence_subscriptions: 256,
            presence_rate_per_sec: 5,
            presence_rate_burst: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let l = Limits::default();
        assert_eq!(l.max_frame_bytes, 131_072);
        assert_eq!(l.max_envelope_bytes, 65_536);
        assert_eq!(l.max_send_frame_bytes, 3_145_728);
        assert_eq!(l.max_prekeys_per_upload, 100);
        assert_eq!(l.max_prekeys_stored, 500);
        assert_eq!(l.prekey_low_threshold, 20);
        assert_eq!(l.mailbox_max_envelopes, 10_000);
        assert_eq!(l.mailbox_max_bytes, 64 * 1024 * 1024);
        assert_eq!(l.retention, Duration::from_secs(2_592_000));
        assert_eq!((l.rate_per_sec, l.rate_burst), (1000, 2000));
        assert_eq!(l.max_connections_per_ip, 256);
        assert_eq!(l.max_connections, 10_000);
        assert_eq!(l.upgrade_timeout, Duration::from_secs(5));
        assert_eq!(l.ping_interval, Duration::from_secs(30));
        assert_eq!(l.idle_timeout, Duration::from_secs(75));
        assert_eq!((l.bundle_fetch_burst, l.bundle_fetches_per_hour), (60, 120));
        assert_eq!((l.registration_burst, l.registrations_per_hour), (100, 100));
        assert_eq!((l.ip_rate_per_sec, l.ip_rate_burst), (5000, 10_000));
        assert_eq!((l.byte_rate_per_sec, l.byte_rate_burst), (1 << 20, 4 << 20));
        assert_eq!(
            (l.ip_byte_rate_per_sec, l.ip_byte_rate_burst),
            (2 << 20, 8 << 20)
        );
        assert_eq!(l.max_in_flight_bytes, 1 << 20);
        assert_eq!(l.auth_timeout, Duration::from_secs(10));
        assert_eq!(l.max_ack_ids, 1000);
        assert_eq!(l.outbound_queue, 1024);
        assert_eq!(l.max_presence_allow, 1000);
        assert_eq!(l.max_presence_query, 100);
        assert_eq!(l.max_presence_subscriptions, 256);
        assert_eq!((l.presence_rate_per_sec, l.presence_rate_burst), (5, 20));
    }
}
