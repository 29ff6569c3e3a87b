//! Presence, a service over the session table: what an asker may see of a
//! subject, the subscriptions of each connection, last seen, and the
//! fan-out of changes.
//!
//! ## What a subscriber is told
//!
//! Each subscribed connection remembers, per subject, the entry it was last
//! given (in the `presence` reply or a `presence_update`). Whenever
//! something about a subject may have changed (it came online, went
//! offline, replaced its allow list; locally or, through
//! the [`crate::bus`], on another relay), the subject is queued; one worker
//! per relay re-reads the subject's state (allow list and last seen from the
//! store, online from the sessions or the cluster's presence table) for all
//! its local subscribers at once and pushes an update to each whose entry
//! differs from the one it was given. Changes are hints, the state is read
//! afresh: hints that arrive out of order, twice, or for nothing (a
//! connection replaced by a newer one) produce no wrong or redundant update.
//!
//! ## Subscribe without gaps or stale snapshots
//!
//! `presence_subscribe` ([`Presence::replace`]) registers the new set *settling* before reading the
//! snapshot; the worker skips settling connections and marks them dirty. The
//! reply goes out, then the connection settles, and if it was dirty it is
//! re-read in full: an update never precedes the reply, and a change during
//! the snapshot is never lost.
//!
//! ## Online, then last seen: never a torn entry
//!
//! Going offline writes last seen first and only then stops counting the
//! user as online (on one relay a departing user stays in `leaving` until
//! its last seen is stored; in a cluster the presence table entry is
//! released after it). Every reader reads online *before* last seen, so an
//! entry that says offline always carries the last seen of that departure,
//! never the one before it. A read between the two steps can see "online"
//! with the new last seen; a subscriber is not told that (an online user's
//! last seen is not news, see `is_news`), so what it is told of a user who
//! comes and goes is exactly: online, offline (last seen then), online, ...
//!
//! ## No oracle
//!
//! Visibility comes from [`Store::presence_view`] /
//! [`Store::presence_watchers`], which treat an unknown subject exactly like
//! one that does not allow the asker; the entry is then
//! [`PresenceEntry::hidden`], the same value (so the same bytes) in both
//! cases. Online state is read for every subject, visible or not, so both
//! cost the relay the same reads.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hush_protocol::frame::{PresenceEntry, PresenceState};
use hush_protocol::{ServerFrame, UserId};
use tokio_util::task::TaskTracker;

use crate::bus::Bus;
use crate::clock::Clock;
use crate::sessions::{Session, Sessions, lock};
use crate::store::{Store, StoreError};

#[cfg(test)]
mod tests;

/// The ids of `users` without repetition, in the order of first mention.
pub(crate) fn distinct(users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = HashSet::with_capacity(users.len());
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

/// The presence service of one relay (cheap to clone).
pub(crate) struct Presence<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Presence<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S> {
    store: Arc<S>,
    sessions: Arc<Sessions>,
    bus: Arc<dyn Bus>,
    clock: Clock,
    /// Background work (announcements, last seen, the fan-out worker), so a
    /// relay shutting down finishes it before it exits.
    tasks: TaskTracker,
    // std mutexes: held only for map updates, never across `.await`.
    subs: Mutex<Subs>,
    work: Mutex<Work>,
    /// Users whose last connection here closed and whose last seen is not
    /// stored yet (count of such departures): still online to readers.
    leaving: Mutex<HashMap<UserId, usize>>,
}

#[derive(Debug, Default)]
struct Subs {
    /// Connection id -> its subscriptions.
    conns: HashMap<u64, ConnSubs>,
    /// Subject -> connections subscribed to it.
    watchers: HashMap<UserId, HashSet<u64>>,
}

#[derive(Debug)]
struct ConnSubs {
    session: Arc<Session>,
    /// Subject -> what this connection was last given (`None`: hidden).
    given: HashMap<UserId, Option<PresenceState>>,
    /// Between registration and the reply: changes only mark `dirty`.
    settling: bool,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Work {
    subjects: HashSet<UserId>,
    conns: HashSet<u64>,
    running: bool,
}

enum Job {
    Subject(UserId),
    Conn(u64),
}

/// Whether a subscriber given `old` must be told `new`: any change of
/// visibility or online state, or of last seen while offline. The last seen
/// of a user who is online is not news: it changes only as the user leaves,
/// a moment before the online state does (see the module docs), and the
/// entry that says offline carries it.
fn is_news(old: Option<PresenceState>, new: Option<PresenceState>) -> bool {
    match (old, new) {
        (Some(a), Some(b)) if a.online && b.online => false,
        _ => old != new,
    }
}

impl Subs {
    fn remove_conn(&mut self, conn_id: u64) {
        if let Some(old) = self.conns.remove(&conn_id) {
            for subject in old.given.keys() {
                if let Some(w) = self.watchers.get_mut(subject) {
                    w.remove(&conn_id);
                    if w.is_empty() {
                        self.watchers.remove(subject);
                    }
                }
            }
        }
    }

    /// Records `state` as `conn_id`'s view of `subject`, pushing an update
    /// if it differs from what the connection was given.
    fn give(&mut self, conn_id: u64, subject: &UserId, state: Option<PresenceState>) {
        let Some(c) = self.conns.get_mut(&conn_id) else {
            return;
        };
        if c.settling {
            c.dirty = true;
            return;
        }
        let Some(last) = c.given.get_mut(subject) else {
            return;
        };
        if is_news(*last, state) {
            *last = state;
            let entry = PresenceEntry {
                user: subject.clone(),
                state,
            };
            c.session
                .push_now(ServerFrame::PresenceUpdate(entry).encode());
        }
    }
}

impl<S: Store> Presence<S> {
    /// Presence over `sessions`, with allow lists and last seen in `store`
    /// and the other relays behind `bus`.
    pub(crate) fn new(
        store: Arc<S>,
        sessions: Arc<Sessions>,
        bus: Arc<dyn Bus>,
        clock: Clock,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sessions,
                bus,
                clock,
                tasks,
                subs: Mutex::default(),
                work: Mutex::default(),
                leaving: Mutex::default(),
            }),
        }
    }

    /// Which of `users` are online: the cluster's presence table, or this
    /// relay's sessions for a single relay.
    async fn online_states(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        match self.inner.bus.online(users).await {
            Some(r) => r,
            None => Ok(users
                .iter()
                .map(|u| {
                    // Sessions first: a user removed from them is already
                    // in `leaving` (see `leaving`).
                    self.inner.sessions.get(u).is_some()
                        || lock(&self.inner.leaving).contains_key(u)
                })
                .collect()),
        }
    }

    /// Called under the sessions lock as `user`'s live connection is
    /// removed: it stays online to readers until [`Presence::offline`] has
    /// stored its last seen.
    pub(crate) fn leaving(&self, user: &UserId) {
        *lock(&self.inner.leaving).entry(user.clone()).or_insert(0) += 1;
    }

    fn left(&self, user: &UserId) {
        let mut m = lock(&self.inner.leaving);
        if let Some(n) = m.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                m.remove(user);
            }
        }
    }

    /// Replaces `user`'s allow list (who may see its presence) with
    /// `users`. The caller announces the change once its reply is queued.
    pub(crate) async fn set_allow(
        &self,
        user: &UserId,
        users: Vec<UserId>,
    ) -> Result<(), StoreError> {
        self.inner.store.set_presence_allow(user, users).await
    }

    /// The entries `asker` may see of `subjects` (same order).
    pub(crate) async fn entries(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> Result<Vec<PresenceEntry>, StoreError> {
        // Online before last seen (see the module docs).
        let online = self.online_states(subjects).await?;
        let views = self.inner.store.presence_view(asker, subjects).await?;
        Ok(subjects
            .iter()
            .zip(views)
            .zip(online)
            .map(|((s, v), online)| PresenceEntry {
                user: s.clone(),
                state: v.map(|last_seen_ms| PresenceState {
                    online,
                    last_seen_ms,
                }),
            })
            .collect())
    }

    /// Replaces the subscriptions of `session`'s connection with `subjects`
    /// (distinct), settling until [`Presence::settle`].
    pub(crate) fn replace(&self, session: &Arc<Session>, subjects: &[UserId]) {
        let id = session.conn_id;
        let mut subs = lock(&self.inner.subs);
        subs.remove_conn(id);
        if subjects.is_empty() {
            return;
        }
        for s in subjects {
            subs.watchers.entry(s.clone()).or_default().insert(id);
        }
        subs.conns.insert(
            id,
            ConnSubs {
                session: Arc::clone(session),
                given: subjects.iter().map(|s| (s.clone(), None)).collect(),
                settling: true,
                dirty: false,
            },
        );
    }

    /// Records the snapshot the connection is about to be given.
    pub(crate) fn snapshot(&self, conn_id: u64, entries: &[PresenceEntry]) {
        let mut subs = lock(&self.inner.subs);
        if let Some(c) = subs.conns.get_mut(&conn_id) {
            for e in entries {
                if let Some(g) = c.given.get_mut(&e.user) {
                    *g = e.state;
                }
            }
        }
    }

    /// The snapshot reply is queued: updates may flow. A change seen while
    /// settling re-reads the connection's subjects.
    pub(crate) fn settle(&self, conn_id: u64) {
        let rerun = {
            let mut subs = lock(&self.inner.subs);
            match subs.conns.get_mut(&conn_id) {
                Some(c) => {
                    c.settling = false;
                    std::mem::take(&mut c.dirty)
                }
                None => false,
            }
        };
        if rerun {
            lock(&self.inner.work).conns.insert(conn_id);
            self.kick();
        }
    }

    /// The connection closed (or its subscribe failed): drops its
    /// subscriptions.
    pub(crate) fn forget(&self, conn_id: u64) {
        lock(&self.inner.subs).remove_conn(conn_id);
    }

    /// `user`'s presence or allow list may have changed: re-read it for the
    /// local subscribers.
    pub(crate) fn changed_here(&self, user: &UserId) {
        {
            let subs = lock(&self.inner.subs);
            if !subs.watchers.contains_key(user) {
                return;
            }
        }
        lock(&self.inner.work).subjects.insert(user.clone());
        self.kick();
    }

    /// Re-reads subscribed subjects: all, or those some connection was
    /// last told are online.
    pub(crate) fn recheck_here(&self, all: bool) {
        let subjects: Vec<UserId> = {
            let subs = lock(&self.inner.subs);
            if all {
                subs.watchers.keys().cloned().collect()
            } else {
                let mut v: HashSet<UserId> = HashSet::new();
                for c in subs.conns.values() {
                    for (s, g) in &c.given {
                        if g.is_some_and(|g| g.online) {
                            v.insert(s.clone());
                        }
                    }
                }
                v.into_iter().collect()
            }
        };
        if subjects.is_empty() {
            return;
        }
        lock(&self.inner.work).subjects.extend(subjects);
        self.kick();
    }

    /// Tells local subscribers and the other relays that `user`'s presence
    /// or allow list changed.
    pub(crate) async fn announce(&self, user: &UserId) {
        self.changed_here(user);
        self.inner.bus.announce_presence(user).await;
    }

    /// `user` got a live connection here (tracked, in the background).
    pub(crate) fn online(&self, user: &UserId) {
        let this = self.clone();
        let user = user.clone();
        self.inner.tasks.spawn(async move {
            this.announce(&user).await;
        });
    }

    /// `user`'s live connection (with `epoch`) closed and was not replaced:
    /// records last seen, frees the cluster's presence entry, then tells
    /// everyone (tracked, so a relay shutting down does all this before it
    /// exits).
    pub(crate) fn offline(&self, user: &UserId, epoch: u64) {
        let this = self.clone();
        let user = user.clone();
        self.inner.tasks.spawn(async move {
            let inner = &this.inner;
            if let Err(e) = inner.store.set_last_seen(&user, inner.clock.now_ms()).await {
                tracing::warn!(error = %e, %user, "could not record last seen");
            }
            inner.bus.release(&user, epoch).await;
            this.left(&user);
            this.announce(&user).await;
        });
    }

    /// Starts the worker unless it runs or has nothing to do.
    fn kick(&self) {
        {
            let mut w = lock(&self.inner.work);
            if w.running || (w.subjects.is_empty() && w.conns.is_empty()) {
                return;
            }
            w.running = true;
        }
        let this = self.clone();
        self.inner.tasks.spawn(async move {
            this.work().await;
        });
    }

    async fn work(&self) {
        loop {
            let job = {
                let mut w = lock(&self.inner.work);
                if let Some(c) = w.conns.iter().next().copied() {
                    w.conns.remove(&c);
                    Job::Conn(c)
                } else if let Some(s) = w.subjects.iter().next().cloned() {
                    w.subjects.remove(&s);
                    Job::Subject(s)
                } else {
                    w.running = false;
                    return;
                }
            };
            match job {
                Job::Subject(s) => self.fanout(&s).await,
                Job::Conn(c) => self.reread(c).await,
            }
        }
    }

    /// Re-reads one subject for all its local subscribers.
    async fn fanout(&self, subject: &UserId) {
        let watchers: Vec<(u64, UserId)> = {
            let mut guard = lock(&self.inner.subs);
            let Subs { conns, watchers } = &mut *guard;
            let Some(ids) = watchers.get(subject) else {
                return;
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(c) = conns.get_mut(id) {
                    if c.settling {
                        c.dirty = true;
                    } else {
                        out.push((*id, c.session.account()));
                    }
                }
            }
            out
        };
        if watchers.is_empty() {
            return;
        }
        let askers: Vec<UserId> = watchers.iter().map(|(_, a)| a.clone()).collect();
        // Online before last seen (see the module docs).
        let online = match self.online_states(std::slice::from_ref(subject)).await {
            Ok(v) => v.first().copied().unwrap_or(false),
            Err(e) => {
                tracing::warn!(error = %e, "presence fan-out: online state unavailable");
                return;
            }
        };
        let watched = self.inner.store.presence_watchers(subject, &askers).await;
        let (allowed, last_seen_ms) = match watched {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "presence fan-out: store failed");
                return;
            }
        };
        let mut subs = lock(&self.inner.subs);
        for ((id, _), ok) in watchers.iter().zip(allowed) {
            let state = ok.then_some(PresenceState {
                online,
                last_seen_ms,
            });
            subs.give(*id, subject, state);
        }
    }

    /// Re-reads every subject of one connection.
    async fn reread(&self, conn_id: u64) {
        let (asker, subjects) = {
            let mut subs = lock(&self.inner.subs);
            match subs.conns.get_mut(&conn_id) {
                None => return,
                Some(c) if c.settling => {
                    c.dirty = true;
                    return;
                }
                Some(c) => (
                    c.session.account(),
                    c.given.keys().cloned().collect::<Vec<_>>(),
                ),
            }
        };
        let entries = match self.entries(&asker, &subjects).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "presence re-read: store failed");
                return;
            }
        };
        let mut subs = lock(&self.inner.subs);
        for e in entries {
            subs.give(conn_id, &e.user, e.state);
        }
    }
}
