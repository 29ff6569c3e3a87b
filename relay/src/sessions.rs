//! The table of live sessions (user id -> its one connection here) and each
//! session's delivery cursor. Depends on nothing else in the relay: what is
//! pushed, and when a mailbox is read, is decided by [`crate::delivery`].
//!
//! ## The delivery cursor
//!
//! Each session keeps the highest envelope id pushed on its connection, and
//! whether a *sync* (a task reading the mailbox after the cursor) runs:
//!
//! - while a sync runs, a live envelope or a poke only sets `dirty`; the
//!   sync reads again until a read finds nothing new and `dirty` is clear
//!   ([`Session::sync_done`]);
//! - otherwise a live envelope whose id is exactly `cursor + 1` is pushed at
//!   once; one at or below the cursor was already pushed; one above
//!   `cursor + 1` means an earlier one is still in flight, so a sync starts
//!   ([`Session::offer`]).
//!
//! A new session starts in sync from cursor 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use hush_protocol::{UserId, close};
use tokio::sync::{mpsc, watch};

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

/// Asks the connection behind `k` to close with `code`, unless a code was
/// already asked for.
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections in the relay never panic midway; recover from
    // poisoning rather than take the relay down.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Cursor {
    /// Highest envelope id pushed on this connection.
    pushed: u64,
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
    cursor: Mutex<Cursor>,
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
            cursor: Mutex::new(Cursor {
                pushed: 0,
                syncing: true,
                dirty: false,
            }),
        }
    }

    /// The account this session's device belongs to (its address without
    /// the device, see `UserId::device_address`).
    pub(crate) fn account(&self) -> UserId {
        let (account, _) = self.user.device_address_parts();
        UserId::try_from(account).unwrap_or_else(|_| self.user.clone())
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

    /// Queues a frame, waiting for room (a sync is paced by the reader).
    /// False when the connection is gone.
    pub(crate) async fn push_paced(&self, text: String) -> bool {
        self.out.send(Outbound::Text(text.into())).await.is_ok()
    }

    /// Closes the connection with `code` (the first code asked wins).
    pub(crate) fn close(&self, code: u16) {
        kill(&self.kill, code);
    }

    /// Closes the connection with `code` after the frames already queued
    /// (a kill would preempt them); with a full queue, a kill.
    pub(crate) fn close_after_queued(&self, code: u16, reason: &'static str) {
        if self.out.try_send(Outbound::Close(code, reason)).is_err() {
            kill(&self.kill, code);
        }
    }

    /// Offers the live envelope `id`: `push` runs (under the cursor lock, so
    /// pushes stay in order) if it is the next one. Returns true if a sync
    /// must start.
    pub(crate) fn offer(&self, id: u64, push: impl FnOnce(&Self)) -> bool {
        let mut c = lock(&self.cursor);
        if c.syncing {
            c.dirty = true;
            return false;
        }
        if id <= c.pushed {
            return false;
        }
        if id == c.pushed + 1 {
            c.pushed = id;
            push(self);
            return false;
        }
        c.syncing = true;
        c.dirty = false;
        true
    }

    /// Asks for a re-read of the mailbox after the cursor. Returns true if
    /// a sync must start.
    pub(crate) fn poke(&self) -> bool {
        let mut c = lock(&self.cursor);
        if c.syncing {
            c.dirty = true;
            return false;
        }
        c.syncing = true;
        c.dirty = false;
        true
    }

    /// Where a sync reads from: the highest id pushed.
    pub(crate) fn cursor(&self) -> u64 {
        lock(&self.cursor).pushed
    }

    /// A sync is about to push `id`: false if it was pushed already,
    /// else the cursor moves to it.
    pub(crate) fn advance(&self, id: u64) -> bool {
        let mut c = lock(&self.cursor);
        if id <= c.pushed {
            return false;
        }
        c.pushed = id;
        true
    }

    /// A sync read found the end of the mailbox: true if it must read
    /// again (something arrived meanwhile), else the sync is over.
    pub(crate) fn sync_done(&self) -> bool {
        let mut c = lock(&self.cursor);
        if c.dirty {
            c.dirty = false;
            return true;
        }
        c.syncing = false;
        false
    }
}

/// The live sessions of this relay, one per user.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    // std mutex: held only for map lookups/updates, never across `.await`.
    map: Mutex<HashMap<UserId, Arc<Session>>>,
}

impl Sessions {
    /// Makes `session` its user's live one; returns the one it replaces.
    pub(crate) fn insert(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        lock(&self.map).insert(session.user.clone(), session)
    }

    /// Removes `user`'s session if it is still connection `conn_id`,
    /// calling `before` under the table's lock first (so no reader sees the
    /// removal before what `before` records).
    pub(crate) fn remove_if_current(
        &self,
        user: &UserId,
        conn_id: u64,
        before: impl FnOnce(),
    ) -> Option<Arc<Session>> {
        let mut m = lock(&self.map);
        if m.get(user).is_some_and(|s| s.conn_id == conn_id) {
            before();
            m.remove(user)
        } else {
            None
        }
    }

    /// Removes `user`'s session if its epoch is below `epoch` (a newer
    /// connection exists elsewhere).
    pub(crate) fn remove_older(&self, user: &UserId, epoch: u64) -> Option<Arc<Session>> {
        let mut m = lock(&self.map);
        match m.get(user) {
            Some(s) if s.epoch < epoch => m.remove(user),
            _ => None,
        }
    }

    /// `user`'s live session here.
    pub(crate) fn get(&self, user: &UserId) -> Option<Arc<Session>> {
        lock(&self.map).get(user).cloned()
    }

    /// Every live session.
    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.map).values().cloned().collect()
    }

    /// (user, epoch) of every live session.
    pub(crate) fn live(&self) -> Vec<(UserId, u64)> {
        lock(&self.map)
            .values()
            .map(|s| (s.user.clone(), s.epoch))
            .collect()
    }

    /// How many users are connected here.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(conn_id: u64) -> (Arc<Session>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(16);
        let kill = Arc::new(watch::channel(None).0);
        let user = UserId::try_from("alice").unwrap();
        (Arc::new(Session::new(conn_id, user, 0, tx, kill)), rx)
    }

    #[test]
    fn live_envelopes_wait_for_the_sync_then_go_in_order() {
        let (s, _rx) = session(1);
        let mut pushed = Vec::new();
        // Syncing from the start: a live envelope only marks dirty.
        assert!(!s.offer(1, |_| pushed.push(1)));
        assert!(s.advance(1));
        assert!(!s.advance(1), "already pushed");
        assert!(s.sync_done(), "dirty: read again");
        assert!(!s.sync_done(), "caught up");
        assert!(!s.offer(1, |_| pushed.push(1)), "at the cursor");
        assert!(!s.offer(2, |_| pushed.push(2)));
        assert!(s.offer(4, |_| pushed.push(4)), "a gap starts a sync");
        assert!(!s.poke(), "a sync runs already");
        assert_eq!(pushed, vec![2]);
        assert_eq!(s.cursor(), 2);
    }

    #[test]
    fn only_the_current_or_an_older_session_is_removed() {
        let t = Sessions::default();
        let (a, _ra) = session(1);
        let (b, _rb) = session(2);
        let user = a.user.clone();
        assert!(t.insert(a).is_none());
        assert_eq!(t.insert(b).map(|s| s.conn_id), Some(1));
        let mut called = false;
        assert!(t.remove_if_current(&user, 1, || called = true).is_none());
        assert!(!called);
        assert!(t.remove_older(&user, 0).is_none());
        assert_eq!(t.len(), 1);
        assert_eq!(t.live(), vec![(user.clone(), 0)]);
        assert!(t.remove_if_current(&user, 2, || called = true).is_some());
        assert!(called);
        assert!(t.get(&user).is_none());
    }
}
