//! Presence: what an asker may see of a subject, the subscriptions of each
//! connection, last seen, and the fan-out of changes.
//!
//! ## What a subscriber is told
//!
//! Each subscribed connection remembers, per subject, the entry it was last
//! given (in the `presence` reply or a `presence_update`). Whenever
//! something about a subject may have changed (it came online, went
//! offline, replaced its allow list; locally or, through
//! [`crate::cluster`], on another relay), the subject is queued; one worker
//! per relay re-reads the subject's state (allow list and last seen from the
//! store, online from the sessions or the cluster's presence table) for all
//! its local subscribers at once and pushes an update to each whose entry
//! differs from the one it was given. Changes are hints, the state is read
//! afresh: hints that arrive out of order, twice, or for nothing (a
//! connection replaced by a newer one) produce no wrong or redundant update.
//!
//! ## Subscribe without gaps or stale snapshots
//!
//! `presence_subscribe` registers the new set *settling* before reading the
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hush_protocol::frame::{PresenceEntry, PresenceState};
use hush_protocol::{ServerFrame, UserId};

use crate::hub::{Hub, Session};
use crate::store::{Store, StoreError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here never panic midway.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The ids of `users` without repetition, in the order of first mention.
pub(crate) fn distinct(users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = HashSet::with_capacity(users.len());
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

/// The relay's presence state (part of the hub).
#[derive(Debug, Default)]
pub(crate) struct Presence {
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

impl<S: Store> Hub<S> {
    /// Which of `users` are online: the cluster's presence table, or this
    /// relay's sessions for a single relay.
    async fn online_states(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        match self.cluster.online(users).await {
            Some(r) => r,
            None => Ok(users
                .iter()
                .map(|u| {
                    // Sessions first: a user removed from them is already
                    // in `leaving` (see `presence_leaving`).
                    self.online(u).is_some() || lock(&self.presence.leaving).contains_key(u)
                })
                .collect()),
        }
    }

    /// Called under the sessions lock as `user`'s live connection is
    /// removed: it stays online to readers until [`Hub::presence_offline`]
    /// has stored its last seen.
    pub(crate) fn presence_leaving(&self, user: &UserId) {
        *lock(&self.presence.leaving)
            .entry(user.clone())
            .or_insert(0) += 1;
    }

    fn presence_left(&self, user: &UserId) {
        let mut m = lock(&self.presence.leaving);
        if let Some(n) = m.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                m.remove(user);
            }
        }
    }

    /// The entries `asker` may see of `subjects` (same order).
    pub(crate) async fn presence_entries(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> Result<Vec<PresenceEntry>, StoreError> {
        // Online before last seen (see the module docs).
        let online = self.online_states(subjects).await?;
        let views = self.store.presence_view(asker, subjects).await?;
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
    /// (distinct), settling until [`Hub::presence_settle`].
    pub(crate) fn presence_replace(&self, session: &Arc<Session>, subjects: &[UserId]) {
        let id = session.conn_id;
        let mut subs = lock(&self.presence.subs);
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
    pub(crate) fn presence_snapshot(&self, conn_id: u64, entries: &[PresenceEntry]) {
        let mut subs = lock(&self.presence.subs);
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
    pub(crate) fn presence_settle(&self, conn_id: u64) {
        let rerun = {
            let mut subs = lock(&self.presence.subs);
            match subs.conns.get_mut(&conn_id) {
                Some(c) => {
                    c.settling = false;
                    std::mem::take(&mut c.dirty)
                }
                None => false,
            }
        };
        if rerun {
            lock(&self.presence.work).conns.insert(conn_id);
            self.presence_kick();
        }
    }

    /// The connection closed (or its subscribe failed): drops its
    /// subscriptions.
    pub(crate) fn presence_forget(&self, conn_id: u64) {
        lock(&self.presence.subs).remove_conn(conn_id);
    }

    /// `user`'s presence or allow list may have changed: re-read it for the
    /// local subscribers.
    pub(crate) fn presence_changed_here(&self, user: &UserId) {
        {
            let subs = lock(&self.presence.subs);
            if !subs.watchers.contains_key(user) {
                return;
            }
        }
        lock(&self.presence.work).subjects.insert(user.clone());
        self.presence_kick();
    }

    /// Re-reads subscribed subjects: all, or those some connection was
    /// last told are online.
    pub(crate) fn presence_recheck_here(&self, all: bool) {
        let subjects: Vec<UserId> = {
            let subs = lock(&self.presence.subs);
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
        lock(&self.presence.work).subjects.extend(subjects);
        self.presence_kick();
    }

    /// Tells local subscribers and the other relays that `user`'s presence
    /// or allow list changed.
    pub(crate) async fn announce_presence(&self, user: &UserId) {
        self.presence_changed_here(user);
        self.cluster.announce_presence(user).await;
    }

    /// `user` got a live connection here (tracked, in the background).
    pub(crate) fn presence_online(&self, user: &UserId) {
        let hub = self.clone();
        let user = user.clone();
        let token = self.tracker.token();
        tokio::spawn(async move {
            let _token = token;
            hub.announce_presence(&user).await;
        });
    }

    /// `user`'s live connection (with `epoch`) closed and was not replaced:
    /// records last seen, frees the cluster's presence entry, then tells
    /// everyone (tracked, so a relay shutting down does all this before it
    /// exits).
    pub(crate) fn presence_offline(&self, user: &UserId, epoch: u64) {
        let hub = self.clone();
        let user = user.clone();
        let token = self.tracker.token();
        tokio::spawn(async move {
            let _token = token;
            if let Err(e) = hub.store.set_last_seen(&user, now_ms()).await {
                tracing::warn!(error = %e, %user, "could not record last seen");
            }
            hub.cluster.release_now(&user, epoch).await;
            hub.presence_left(&user);
            hub.announce_presence(&user).await;
        });
    }

    /// Starts the worker unless it runs or has nothing to do.
    fn presence_kick(&self) {
        {
            let mut w = lock(&self.presence.work);
            if w.running || (w.subjects.is_empty() && w.conns.is_empty()) {
                return;
            }
            w.running = true;
        }
        let hub = self.clone();
        let token = self.tracker.token();
        tokio::spawn(async move {
            let _token = token;
            hub.presence_work().await;
        });
    }

    async fn presence_work(&self) {
        loop {
            let job = {
                let mut w = lock(&self.presence.work);
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
                Job::Subject(s) => self.presence_fanout(&s).await,
                Job::Conn(c) => self.presence_reread(c).await,
            }
        }
    }

    /// Re-reads one subject for all its local subscribers.
    async fn presence_fanout(&self, subject: &UserId) {
        let watchers: Vec<(u64, UserId)> = {
            let mut guard = lock(&self.presence.subs);
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
                        out.push((*id, c.session.user.clone()));
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
        let (allowed, last_seen_ms) = match self.store.presence_watchers(subject, &askers).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "presence fan-out: store failed");
                return;
            }
        };
        let mut subs = lock(&self.presence.subs);
        for ((id, _), ok) in watchers.iter().zip(allowed) {
            let state = ok.then_some(PresenceState {
                online,
                last_seen_ms,
            });
            subs.give(*id, subject, state);
        }
    }

    /// Re-reads every subject of one connection.
    async fn presence_reread(&self, conn_id: u64) {
        let (asker, subjects) = {
            let mut subs = lock(&self.presence.subs);
            match subs.conns.get_mut(&conn_id) {
                None => return,
                Some(c) if c.settling => {
                    c.dirty = true;
                    return;
                }
                Some(c) => (
                    c.session.user.clone(),
                    c.given.keys().cloned().collect::<Vec<_>>(),
                ),
            }
        };
        let entries = match self.presence_entries(&asker, &subjects).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "presence re-read: store failed");
                return;
            }
        };
        let mut subs = lock(&self.presence.subs);
        for e in entries {
            subs.give(conn_id, &e.user, e.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::hub::Outbound;

    fn u(s: &str) -> UserId {
        UserId::try_from(s).unwrap()
    }

    fn session(conn_id: u64, name: &str) -> (Arc<Session>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(16);
        let kill = Arc::new(watch::channel(None).0);
        (Arc::new(Session::new(conn_id, u(name), 0, tx, kill)), rx)
    }

    fn pushed(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Outbound::Text(t)) = rx.try_recv() {
            out.push(t.as_str().to_owned());
        }
        out
    }

    #[test]
    fn updates_only_on_change_and_never_while_settling() {
        let (s, mut rx) = session(7, "alice");
        let mut subs = Subs::default();
        subs.conns.insert(
            7,
            ConnSubs {
                session: s,
                given: [(u("bob"), None)].into_iter().collect(),
                settling: true,
                dirty: false,
            },
        );
        let on = Some(PresenceState {
            online: true,
            last_seen_ms: None,
        });
        subs.give(7, &u("bob"), on);
        assert!(pushed(&mut rx).is_empty(), "pushed while settling");
        assert!(subs.conns[&7].dirty);
        subs.conns.get_mut(&7).unwrap().settling = false;
        subs.give(7, &u("bob"), on);
        subs.give(7, &u("bob"), on);
        subs.give(7, &u("carol"), on);
        subs.give(8, &u("bob"), None);
        assert_eq!(
            pushed(&mut rx),
            vec![
                r#"{"type":"presence_update","user":"bob","visible":true,"online":true,"last_seen_ms":null}"#
            ]
        );
        subs.give(7, &u("bob"), None);
        assert_eq!(
            pushed(&mut rx),
            vec![r#"{"type":"presence_update","user":"bob","visible":false}"#]
        );
    }

    #[test]
    fn last_seen_is_news_only_while_offline() {
        let st = |online, t| {
            Some(PresenceState {
                online,
                last_seen_ms: Some(t),
            })
        };
        assert!(
            !is_news(st(true, 1), st(true, 2)),
            "online: last seen moved"
        );
        assert!(is_news(st(false, 1), st(false, 2)));
        assert!(is_news(st(true, 1), st(false, 2)));
        assert!(is_news(st(false, 2), st(true, 2)));
        assert!(is_news(st(true, 2), None));
        assert!(is_news(None, st(true, 2)));
        assert!(!is_news(st(false, 2), st(false, 2)));
        assert!(!is_news(None, None));
    }

    #[test]
    fn distinct_keeps_first_mention_order() {
        let got = distinct(vec![u("b"), u("a"), u("b"), u("c"), u("a")]);
        assert_eq!(got, vec![u("b"), u("a"), u("c")]);
    }
}
