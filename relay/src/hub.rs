//! Shared relay state: the store, the limits, and the table of live
//! sessions (user id -> its one connection), plus live delivery.
//!
//! ## Delivery without gaps or reordering
//!
//! Each session keeps a delivery cursor: the highest envelope id pushed on
//! this connection. Envelopes reach a session two ways: *live* (the sender's
//! task pushes an envelope right after its commit, without reading it back;
//! in cluster mode a commit on another relay arrives the same way through
//! [`crate::cluster`]) and *sync* (a task reads the mailbox after the cursor
//! and pushes what it finds). Both go through the session's `Delivery` state, under one lock:
//!
//! - while a sync runs, live pushes only set `dirty`; the sync reads again
//!   until a read finds nothing new and `dirty` is clear, then ends;
//! - otherwise a live envelope whose id is exactly `cursor + 1` is pushed at
//!   once; one at or below the cursor was already pushed; one above
//!   `cursor + 1` means an earlier one is still in flight, so a sync starts.
//!
//! A new session starts in sync from cursor 0, and is entered in the table
//! before its first read, so an envelope committed while the backlog is being
//! read is either in that read or triggers another. This relies on the store
//! contract that ids become visible in order.
//!
//! Sync pushes wait for room in the connection's outbound queue (a large
//! backlog is paced by the reader); live pushes never wait: a full queue means
//! a slow consumer, closed with 4003, its envelopes staying in the mailbox.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use hush_protocol::{Limits, UserId, close};
use tokio::sync::{Notify, mpsc, watch};

use crate::cluster::{Cluster, LocalSessions};
use crate::presence::Presence;
use crate::quota::Quotas;
use crate::store::{MailboxLimits, Store, StoredEnvelope};
use crate::wire;

/// Envelopes read from the store per sync round.
const SYNC_BATCH: usize = 256;

/// What a connection's writer task sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A close frame; the writer stops after it.
    Close(u16, &'static str),
    /// A WebSocket ping (liveness check of a quiet peer).
    Ping,
}

/// Asks a connection to close with a code, from anywhere. The first code
/// wins.
pub(crate) type Kill = Arc<watch::Sender<Option<u16>>>;

pub(crate) fn kill(k: &Kill, code: u16) {
    k.send_if_modified(|c| {
        if c.is_none() {
            *c = Some(code);
            true
        } else {
            false
        }
    });
}

#[derive(Debug)]
struct Delivery {
    cursor: u64,
    syncing: bool,
    dirty: bool,
}

/// One authenticated connection, as the rest of the relay sees it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) conn_id: u64,
    pub(crate) user: UserId,
    /// Cluster-wide order of the user's connections (0 for a single relay):
    /// a connection with a higher epoch elsewhere replaces this one.
    pub(crate) epoch: u64,
    out: mpsc::Sender<Outbound>,
    kill: Kill,
    delivery: Mutex<Delivery>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections below never panic midway; recover from poisoning
    // rather than take the relay down.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    /// A session that starts by syncing its mailbox from the beginning.
    pub(crate) fn new(
        conn_id: u64,
        user: UserId,
        epoch: u64,
        out: mpsc::Sender<Outbound>,
        kill: Kill,
    ) -> Self {
        Self {
            conn_id,
            user,
            epoch,
            out,
            kill,
            delivery: Mutex::new(Delivery {
                cursor: 0,
                syncing: true,
                dirty: false,
            }),
        }
    }

    /// Pushes a frame without waiting; a full queue closes the connection as
    /// a slow consumer.
    pub(crate) fn push_now(&self, text: String) {
        match self.out.try_send(Outbound::Text(text.into())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(user = %self.user, conn = self.conn_id, "slow consumer, closing");
                kill(&self.kill, close::SLOW_CONSUMER);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Offers a just-committed envelope. Returns true if a sync must start.
    fn offer(&self, env: &StoredEnvelope) -> bool {
        let mut d = lock(&self.delivery);
        if d.syncing {
            d.dirty = true;
            return false;
        }
        if env.id <= d.cursor {
            return false;
        }
        if env.id == d.cursor + 1 {
            d.cursor = env.id;
            self.push_now(wire::stored_envelope(env));
            crate::metrics::envelope_pushed(env.accepted_at);
            return false;
        }
        d.syncing = true;
        d.dirty = false;
        true
    }

    /// Asks for a re-read of the mailbox after the cursor. Returns true if
    /// a sync must start.
    fn poke(&self) -> bool {
        let mut d = lock(&self.delivery);
        if d.syncing {
            d.dirty = true;
            return false;
        }
        d.syncing = true;
        d.dirty = false;
        true
    }
}

/// Counts running tasks so shutdown can wait for all of them (and so the
/// store, which they share, is closed when `serve` returns).
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    running: AtomicUsize,
    idle: Notify,
}

/// Held by a tracked task; dropping it marks the task done.
#[derive(Debug)]
pub(crate) struct TaskToken(Arc<Tracker>);

impl Tracker {
    pub(crate) fn token(self: &Arc<Self>) -> TaskToken {
        self.running.fetch_add(1, Ordering::SeqCst);
        TaskToken(Arc::clone(self))
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskToken {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub(crate) struct Shared<S> {
    pub(crate) store: S,
    pub(crate) limits: Limits,
    pub(crate) relay_id: String,
    /// The other relays sharing the store (none for a single relay).
    pub(crate) cluster: Cluster,
    // std mutexes: held only for map lookups/updates, never across `.await`.
    sessions: Mutex<HashMap<UserId, Arc<Session>>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Open connections in all (the sum of `per_ip`'s counts).
    connections: AtomicUsize,
    /// Bundle fetches per user, registrations per address.
    pub(crate) quotas: Quotas,
    next_conn: AtomicU64,
    pub(crate) tracker: Arc<Tracker>,
    /// Presence subscriptions and their fan-out ([`crate::presence`]).
    pub(crate) presence: Presence,
}

/// Cheap handle on the shared state.
pub(crate) struct Hub<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for Hub<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> std::ops::Deref for Hub<S> {
    type Target = Shared<S>;
    fn deref(&self) -> &Shared<S> {
        &self.shared
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
        let mut m = lock(&self.hub.per_ip);
        self.hub.connections.fetch_sub(1, Ordering::Relaxed);
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
        cluster: Cluster,
        tracker: Arc<Tracker>,
    ) -> Self {
        let quotas = Quotas::new(&limits);
        Self {
            shared: Arc::new(Shared {
                store,
                limits,
                quotas,
                relay_id,
                cluster,
                sessions: Mutex::new(HashMap::new()),
                per_ip: Mutex::new(HashMap::new()),
                connections: AtomicUsize::new(0),
                next_conn: AtomicU64::new(1),
                tracker,
                presence: Presence::default(),
            }),
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn mailbox_limits(&self) -> MailboxLimits {
        MailboxLimits {
            max_envelopes: self.limits.mailbox_max_envelopes,
            max_bytes: self.limits.mailbox_max_bytes,
        }
    }

    /// Takes a connection slot for `ip`, or says which cap is reached.
    pub(crate) fn ip_guard(&self, ip: IpAddr) -> Result<IpGuard<S>, Refused> {
        let mut m = lock(&self.per_ip);
        // Both counts change under the `per_ip` lock, so the total cap is
        // exact.
        if self.connections.load(Ordering::Relaxed) >= self.limits.max_connections {
            return Err(Refused::Total);
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.max_connections_per_ip {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        self.connections.fetch_add(1, Ordering::Relaxed);
        Ok(IpGuard {
            hub: self.clone(),
            ip,
        })
    }

    /// Makes `session` its user's live connection, closing the previous one
    /// with 4000, and starts pushing its mailbox.
    pub(crate) fn activate(&self, session: Arc<Session>) {
        let old = lock(&self.sessions).insert(session.user.clone(), Arc::clone(&session));
        match old {
            Some(old) => {
                tracing::info!(user = %old.user, old = old.conn_id, new = session.conn_id, "replaced by newer connection");
                kill(&old.kill, close::REPLACED);
            }
            // A replacement here changes nothing anyone sees.
            None => self.presence_online(&session.user),
        }
        self.spawn_sync(session);
    }

    /// Removes the session if it is still its user's live one.
    pub(crate) fn deactivate(&self, user: &UserId, conn_id: u64) {
        let removed = {
            let mut m = lock(&self.sessions);
            if m.get(user).is_some_and(|s| s.conn_id == conn_id) {
                // Before the removal is visible: readers never see this
                // user offline with the previous last seen.
                self.presence_leaving(user);
                m.remove(user)
            } else {
                None
            }
        };
        if let Some(s) = removed {
            // Tracked, so a relay shutting down records last seen and clears
            // its users' presence before it exits.
            self.presence_offline(user, s.epoch);
        }
    }

    /// Pushes a frame to `user`: here if connected here, else through the
    /// relay holding it (if any). Best effort, like every unsolicited frame.
    pub(crate) fn push_to(&self, user: &UserId, frame: String) {
        match self.online(user) {
            Some(s) => s.push_now(frame),
            None => self.cluster.forward(user, frame),
        }
    }

    pub(crate) fn online(&self, user: &UserId) -> Option<Arc<Session>> {
        lock(&self.sessions).get(user).cloned()
    }

    /// Pushes a just-committed envelope to its recipient if connected.
    pub(crate) fn deliver(&self, to: &UserId, env: &StoredEnvelope) {
        if let Some(s) = self.online(to)
            && s.offer(env)
        {
            self.spawn_sync(s);
        }
    }

    pub(crate) fn spawn_sync(&self, session: Arc<Session>) {
        let hub = self.clone();
        let token = self.tracker.token();
        tokio::spawn(async move {
            let _token = token;
            hub.sync(&session).await;
        });
    }

    /// Pushes the mailbox after the session's cursor until it is caught up
    /// (see the module docs).
    async fn sync(&self, session: &Session) {
        loop {
            let cursor = lock(&session.delivery).cursor;
            let batch = match self
                .store
                .mailbox_after(&session.user, cursor, SYNC_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, user = %session.user, "mailbox read failed; closing");
                    kill(&session.kill, close::INTERNAL_ERROR);
                    return;
                }
            };
            let full = batch.len() == SYNC_BATCH;
            for env in &batch {
                {
                    let mut d = lock(&session.delivery);
                    if env.id <= d.cursor {
                        continue;
                    }
                    d.cursor = env.id;
                }
                let frame = Outbound::Text(wire::stored_envelope(env).into());
                if session.out.send(frame).await.is_err() {
                    return; // connection gone
                }
                crate::metrics::envelope_pushed(env.accepted_at);
            }
            if !full {
                let mut d = lock(&session.delivery);
                if d.dirty {
                    d.dirty = false;
                    continue;
                }
                d.syncing = false;
                return;
            }
        }
    }
}

impl<S: Store> LocalSessions for Hub<S> {
    fn new_mail(&self, user: &UserId, env: StoredEnvelope) {
        self.deliver(user, &env);
    }

    fn replaced(&self, user: &UserId, epoch: u64) {
        let old = {
            let mut m = lock(&self.sessions);
            match m.get(user) {
                Some(s) if s.epoch < epoch => m.remove(user),
                _ => None,
            }
        };
        if let Some(old) = old {
            tracing::info!(user = %old.user, old = old.conn_id, "replaced by a newer connection on another relay");
            kill(&old.kill, close::REPLACED);
        }
    }

    fn push(&self, user: &UserId, frame: String) {
        if let Some(s) = self.online(user) {
            s.push_now(frame);
        }
    }

    fn resync_all(&self) {
        let all: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for s in all {
            if s.poke() {
                self.spawn_sync(s);
            }
        }
    }

    fn resync(&self, user: &UserId) {
        if let Some(s) = self.online(user)
            && s.poke()
        {
            self.spawn_sync(s);
        }
    }

    fn live(&self) -> Vec<(UserId, u64)> {
        lock(&self.sessions)
            .values()
            .map(|s| (s.user.clone(), s.epoch))
            .collect()
    }

    fn presence_changed(&self, user: &UserId) {
        self.presence_changed_here(user);
    }

    fn presence_recheck(&self, all: bool) {
        self.presence_recheck_here(all);
    }
}
