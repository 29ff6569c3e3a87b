//! The relay's shared state, and the services connections go through: the
//! session table ([`crate::sessions`]), mail ([`crate::delivery`]),
//! presence ([`crate::presence`]), the key directory
//! ([`crate::directory`]) and the link to other relays ([`crate::bus`]);
//! plus the connection caps, the quotas, the clock, the randomness and the
//! task tracker every background task of the relay is spawned on.
//!
//! The hub wires the services together: a session that becomes live starts
//! its mailbox sync and its presence; one that closes records last seen;
//! and it answers the bus ([`BusEvents`]) on behalf of all of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hush_protocol::{Limits, ServerFrame, UserId, close};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, BusEvents};
use crate::clock::Clock;
use crate::delivery::Delivery;
use crate::directory::Directory;
use crate::presence::Presence;
use crate::quota::Quotas;
use crate::random::Random;
use crate::sessions::{Session, Sessions, lock};
use crate::store::{MailboxLimits, Store, StoreError, StoreStats, StoredEnvelope};

/// What the hub takes from outside besides the store: time, randomness and
/// the tracker of its tasks (injected, so tests can fix the first two).
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    pub(crate) clock: Clock,
    pub(crate) random: Random,
    /// Every task the relay spawns, so shutdown can wait for all of them
    /// (and the store, which they share, is closed when `serve` returns).
    pub(crate) tasks: TaskTracker,
}

impl Env {
    /// The system clock and the OS RNG.
    pub(crate) fn system() -> Self {
        Self {
            clock: Clock::system(),
            random: Random::os(),
            tasks: TaskTracker::new(),
        }
    }
}

struct Shared<S> {
    store: Arc<S>,
    limits: Limits,
    relay_id: String,
    /// The other relays (none for a single relay).
    bus: Arc<dyn Bus>,
    sessions: Arc<Sessions>,
    delivery: Delivery<S>,
    presence: Presence<S>,
    directory: Directory<S>,
    // std mutex: held only for map lookups/updates, never across `.await`.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Open connections in all (the sum of `per_ip`'s counts).
    connections: AtomicUsize,
    /// Bundle fetches per user, registrations per address.
    quotas: Quotas,
    next_conn: AtomicU64,
    env: Env,
}

/// Cheap handle on the shared state.
pub(crate) struct Hub<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Hub<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Why a connection was refused before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections_per_ip` reached (HTTP 429).
    PerAddress,
    /// `max_connections` reached (HTTP 503).
    Total,
}

/// One connection's slot in the per-address count; released on drop.
pub(crate) struct IpGuard<S> {
    hub: Hub<S>,
    ip: IpAddr,
}

impl<S> IpGuard<S> {
    /// The address this slot counts against.
    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl<S> Drop for IpGuard<S> {
    fn drop(&mut self) {
        let shared = &self.hub.shared;
        let mut m = lock(&shared.per_ip);
        shared.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl<S: Store> Hub<S> {
    pub(crate) fn new(
        store: S,
        limits: Limits,
        relay_id: String,
        bus: Arc<dyn Bus>,
        env: Env,
    ) -> Self {
        let store = Arc::new(store);
        let sessions = Arc::new(Sessions::default());
        let mailbox = MailboxLimits {
            max_envelopes: limits.mailbox_max_envelopes,
            max_bytes: limits.mailbox_max_bytes,
        };
        let delivery = Delivery::new(
            Arc::clone(&store),
            Arc::clone(&sessions),
            Arc::clone(&bus),
            env.clock.clone(),
            mailbox,
            env.tasks.clone(),
        );
        let presence = Presence::new(
            Arc::clone(&store),
            Arc::clone(&sessions),
            Arc::clone(&bus),
            env.clock.clone(),
            env.tasks.clone(),
        );
        let directory = Directory::new(Arc::clone(&store));
        let quotas = Quotas::new(&limits);
        Self {
            shared: Arc::new(Shared {
                store,
                limits,
                relay_id,
                bus,
                sessions,
                delivery,
                presence,
                directory,
                per_ip: Mutex::new(HashMap::new()),
                connections: AtomicUsize::new(0),
                quotas,
                next_conn: AtomicU64::new(1),
                env,
            }),
        }
    }

    /// The protocol limits this relay enforces.
    pub(crate) fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The relay id clients sign in `auth`.
    pub(crate) fn relay_id(&self) -> &str {
        &self.shared.relay_id
    }

    /// Bundle fetches per user, registrations and frames per address.
    pub(crate) fn quotas(&self) -> &Quotas {
        &self.shared.quotas
    }

    /// Mail: submit, ack, live delivery and pushes.
    pub(crate) fn delivery(&self) -> &Delivery<S> {
        &self.shared.delivery
    }

    /// Presence queries, subscriptions and their fan-out.
    pub(crate) fn presence(&self) -> &Presence<S> {
        &self.shared.presence
    }

    /// Registration, keys and bundles.
    pub(crate) fn directory(&self) -> &Directory<S> {
        &self.shared.directory
    }

    /// The tracker every relay task is spawned on.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.shared.env.tasks
    }

    /// A fresh auth challenge from the relay's randomness.
    pub(crate) fn challenge(&self) -> Result<[u8; 32], rand::rngs::SysError> {
        self.shared.env.random.bytes()
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.shared.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Users connected here.
    pub(crate) fn users_online(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Claims `user` for a new connection here (cluster-wide); returns its
    /// epoch (0 for a single relay).
    pub(crate) async fn claim(&self, user: &UserId) -> Result<u64, StoreError> {
        self.shared.bus.claim(user).await
    }

    /// Starts listening to the other relays until `stop` is cancelled
    /// (nothing for a single relay).
    pub(crate) fn spawn_bus(&self, stop: CancellationToken) {
        let events: Arc<dyn BusEvents> = Arc::new(self.clone());
        self.shared.bus.spawn(events, stop, self.tasks());
    }

    /// Whether the store answers a cheap read (`/readyz`).
    pub(crate) async fn store_answers(&self) -> bool {
        // Any cheap read will do: the answer does not matter, only that the
        // store gave one.
        match UserId::try_from("readyz-probe") {
            Ok(user) => self.shared.store.user_exists(&user).await.is_ok(),
            Err(_) => false,
        }
    }

    /// The store's counts (`/metrics`).
    pub(crate) async fn store_stats(&self) -> Result<StoreStats, StoreError> {
        self.shared.store.stats().await
    }

    /// Deletes the envelopes older than the retention period; returns how
    /// many.
    pub(crate) async fn sweep_expired(&self) -> Result<u64, StoreError> {
        let retention = u64::try_from(self.shared.limits.retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = self.shared.env.clock.now_ms().saturating_sub(retention);
        self.shared.store.sweep_expired(cutoff).await
    }

    /// Takes a connection slot for `ip`, or says which cap is reached.
    pub(crate) fn ip_guard(&self, ip: IpAddr) -> Result<IpGuard<S>, Refused> {
        let shared = &self.shared;
        let mut m = lock(&shared.per_ip);
        // Both counts change under the `per_ip` lock, so the total cap is
        // exact.
        if shared.connections.load(Ordering::Relaxed) >= shared.limits.max_connections {
            return Err(Refused::Total);
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= shared.limits.max_connections_per_ip {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        shared.connections.fetch_add(1, Ordering::Relaxed);
        Ok(IpGuard {
            hub: self.clone(),
            ip,
        })
    }

    /// Makes `session` its user's live connection, closing the previous one
    /// with 4000, and starts pushing its mailbox.
    pub(crate) fn activate(&self, session: Arc<Session>) {
        match self.shared.sessions.insert(Arc::clone(&session)) {
            Some(old) => {
                tracing::info!(user = %old.user, old = old.conn_id, new = session.conn_id, "replaced by newer connection");
                old.close(close::REPLACED);
            }
            // A replacement here changes nothing anyone sees.
            None => self.shared.presence.online(&session.user),
        }
        self.shared.delivery.spawn_sync(session);
    }

    /// Pushes a `device_list` frame to the device at `address`, here or
    /// through the relay holding it; a device the list removed is closed
    /// with 4005 by whichever relay holds it (see [`close_if_removed`]).
    pub(crate) fn push_device_list(&self, address: &UserId, frame: String) {
        match self.shared.sessions.get(address) {
            Some(s) => {
                s.push_now(frame.clone());
                close_if_removed(&s, &frame);
            }
            None => self.shared.bus.forward(address, frame),
        }
    }

    /// Removes the session if it is still its user's live one.
    pub(crate) fn deactivate(&self, user: &UserId, conn_id: u64) {
        let presence = &self.shared.presence;
        // Before the removal is visible: readers never see this user
        // offline with the previous last seen.
        let removed = self
            .shared
            .sessions
            .remove_if_current(user, conn_id, || presence.leaving(user));
        if let Some(s) = removed {
            // Tracked, so a relay shutting down records last seen and clears
            // its users' presence before it exits.
            presence.offline(user, s.epoch);
        }
    }
}

impl<S: Store> BusEvents for Hub<S> {
    fn new_mail(&self, user: &UserId, env: StoredEnvelope) {
        self.shared.delivery.deliver(user, &env);
    }

    fn replaced(&self, user: &UserId, epoch: u64) {
        if let Some(old) = self.shared.sessions.remove_older(user, epoch) {
            tracing::info!(user = %old.user, old = old.conn_id, "replaced by a newer connection on another relay");
            old.close(close::REPLACED);
        }
    }

    fn push(&self, user: &UserId, frame: String) {
        if let Some(s) = self.shared.sessions.get(user) {
            s.push_now(frame.clone());
            close_if_removed(&s, &frame);
        }
    }

    fn resync_all(&self) {
        self.shared.delivery.resync_all();
    }

    fn resync(&self, user: &UserId) {
        self.shared.delivery.resync(user);
    }

    fn live(&self) -> Vec<(UserId, u64)> {
        self.shared.sessions.live()
    }

    fn presence_changed(&self, user: &UserId) {
        self.shared.presence.changed_here(user);
    }

    fn presence_recheck(&self, all: bool) {
        self.shared.presence.recheck_here(all);
    }
}

/// Closes `session` with 4005 (after `frame`, already queued) when `frame` is a `device_list` push without the session's
/// device: the device was removed. Only `device_list` frames are parsed.
fn close_if_removed(session: &Session, frame: &str) {
    if !frame.starts_with(r#"{"type":"device_list","#) {
        return;
    }
    let Ok(ServerFrame::DeviceList(push)) = ServerFrame::decode(frame) else {
        return;
    };
    let (_, device) = session.user.device_address_parts();
    if !push.list.devices.iter().any(|d| d.id == device) {
        tracing::info!(user = %session.user, conn = session.conn_id, "device removed, closing");
        session.close_after_queued(close::DEVICE_REMOVED, "device removed");
    }
}

#[cfg(test)]
mod tests;
