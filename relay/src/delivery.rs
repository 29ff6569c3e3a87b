//! Mail: submitting envelopes to mailboxes, acknowledging them, and pushing
//! them to their recipients' sessions without gaps or reordering; also the
//! push of unsolicited frames to a user here or on another relay.
//!
//! ## Delivery without gaps or reordering
//!
//! Envelopes reach a session two ways: *live* (the sender's connection
//! hands the envelope over right after its commit, without reading it back,
//! see [`Delivery::deliver`]; in cluster mode a commit on another relay
//! arrives the same way through the [`crate::bus`]) and *sync* (a task
//! reads the mailbox after the session's cursor and pushes what it finds).
//! Both go through the session's cursor ([`crate::sessions`]), under one
//! lock.
//!
//! A new session starts in sync from cursor 0, and is entered in the table
//! before its first read, so an envelope committed while the backlog is
//! being read is either in that read or triggers another. This relies on
//! the store contract that ids become visible in order.
//!
//! Sync pushes wait for room in the connection's outbound queue (a large
//! backlog is paced by the reader); live pushes never wait: a full queue
//! means a slow consumer, closed with 4003, its envelopes staying in the
//! mailbox.

use std::future::Future;
use std::sync::Arc;

use hush_protocol::{UserId, close};
use tokio_util::task::TaskTracker;

use crate::bus::Bus;
use crate::clock::Clock;
use crate::sessions::{Session, Sessions};
use crate::store::{AppendOutcome, MailboxLimits, NewEnvelope, Store, StoreError, StoredEnvelope};
use crate::wire;

/// Envelopes read from the store per sync round.
const SYNC_BATCH: usize = 256;

/// The mail service of one relay (cheap to clone).
pub(crate) struct Delivery<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Delivery<S> {
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
    limits: MailboxLimits,
    /// Sync tasks, so a relay shutting down waits for them.
    tasks: TaskTracker,
}

impl<S: Store> Delivery<S> {
    /// Mail of `store`'s mailboxes (capped by `limits`) to the sessions of
    /// `sessions`, or through `bus` to other relays.
    pub(crate) fn new(
        store: Arc<S>,
        sessions: Arc<Sessions>,
        bus: Arc<dyn Bus>,
        clock: Clock,
        limits: MailboxLimits,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sessions,
                bus,
                clock,
                limits,
                tasks,
            }),
        }
    }

    /// Submits an envelope from `from` to `to`'s mailbox, accepted now. The
    /// append is submitted at once (see [`Store::append`]); the future
    /// yields its outcome (hand an appended envelope to
    /// [`Delivery::deliver`]).
    pub(crate) fn submit(
        &self,
        from: &UserId,
        to: &UserId,
        body: hush_protocol::Body,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
        let envelope = NewEnvelope {
            from: from.clone(),
            accepted_at: self.inner.clock.now_ms(),
            body,
        };
        crate::metrics::timed_commit(self.inner.store.append(to, envelope, self.inner.limits))
    }

    /// Deletes `ids` from `user`'s mailbox; returns how many were there.
    pub(crate) async fn ack(&self, user: &UserId, ids: Vec<u64>) -> Result<u64, StoreError> {
        self.inner
            .store
            .ack(user, ids)
            .await
            .inspect(|n| crate::metrics::envelopes_acked(*n))
    }

    /// Now, by the relay's clock (the `accepted_at` of ephemeral sends).
    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Pushes a frame to `user`: here if connected here, else through the
    /// relay holding it (if any). Best effort, like every unsolicited frame.
    pub(crate) fn push_to(&self, user: &UserId, frame: String) {
        match self.inner.sessions.get(user) {
            Some(s) => s.push_now(frame),
            None => self.inner.bus.forward(user, frame),
        }
    }

    /// Pushes a just-committed envelope to its recipient if connected.
    pub(crate) fn deliver(&self, to: &UserId, env: &StoredEnvelope) {
        if let Some(s) = self.inner.sessions.get(to) {
            let clock = &self.inner.clock;
            let start_sync = s.offer(env.id, |s| {
                s.push_now(wire::stored_envelope(env));
                crate::metrics::envelope_pushed(env.accepted_at, clock.now_ms());
            });
            if start_sync {
                self.spawn_sync(s);
            }
        }
    }

    /// Re-reads `user`'s mailbox if connected here.
    pub(crate) fn resync(&self, user: &UserId) {
        if let Some(s) = self.inner.sessions.get(user)
            && s.poke()
        {
            self.spawn_sync(s);
        }
    }

    /// Re-reads the mailbox of every session here.
    pub(crate) fn resync_all(&self) {
        for s in self.inner.sessions.all() {
            if s.poke() {
                self.spawn_sync(s);
            }
        }
    }

    /// Starts pushing `session`'s mailbox after its cursor (tracked).
    pub(crate) fn spawn_sync(&self, session: Arc<Session>) {
        let this = self.clone();
        self.inner.tasks.spawn(async move {
            this.sync(&session).await;
        });
    }

    /// Pushes the mailbox after the session's cursor until it is caught up
    /// (see the module docs).
    async fn sync(&self, session: &Session) {
        loop {
            let cursor = session.cursor();
            let batch = match self
                .inner
                .store
                .mailbox_after(&session.user, cursor, SYNC_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, user = %session.user, "mailbox read failed; closing");
                    session.close(close::INTERNAL_ERROR);
                    return;
                }
            };
            let full = batch.len() == SYNC_BATCH;
            for env in &batch {
                if !session.advance(env.id) {
                    continue;
                }
                if !session.push_paced(wire::stored_envelope(env)).await {
                    return; // connection gone
                }
                crate::metrics::envelope_pushed(env.accepted_at, self.inner.clock.now_ms());
            }
            if !full && !session.sync_done() {
                return;
            }
        }
    }
}
