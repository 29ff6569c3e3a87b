//! Typing indicators, both ways, as pure rules over an injected
//! [`Instant`] (the client passes tokio's clock, tests pass their own).
//!
//! A typing indicator is a `Typing` payload encrypted with the next key of
//! the sending chain and sent in an **ephemeral** envelope: the relay
//! forwards it to an online peer and drops it for an offline one. A dropped
//! indicator leaves a gap in the peer's receiving chain, and the next
//! message that does arrive makes the peer derive and keep the key of every
//! dropped one. The ratchet refuses a gap of more than
//! [`MAX_SKIP`](crate::limits::MAX_SKIP) (1,000) keys in one chain, so the
//! sender bounds the indicators it sends ([`TypingSender`]):
//!
//! - `Started` at most once per [`TYPING_REFRESH`] (3 s) per peer, whatever
//!   the application asks; `Stopped` only after a `Started` that was sent.
//!   That is at most two indicators per 3 s per peer.
//! - At most [`MAX_EPHEMERAL_GAP`](crate::limits::MAX_EPHEMERAL_GAP) (500)
//!   ephemeral payloads to a peer since the last stored one (a message or
//!   a receipt, which the peer is sure to process); beyond that, indicators
//!   are not sent until something stored goes. The count is kept with the
//!   contact in the profile, so a restart does not reset it. 500 is 25
//!   minutes of uninterrupted typing at the refresh rate, and half of the
//!   ratchet's bound, so a gap never comes near it.
//!
//! The receiver ([`TypingTimers`]) shows a peer as typing from its
//! `Started` until its `Stopped`, or until [`TYPING_TIMEOUT`] (6 s, two
//! refreshes) passes without a refresh: a sender that vanished (crashed,
//! lost its connection) never sends `Stopped`, and its indicator clears by
//! itself. Every `Started` event is followed by exactly one `Stopped` event.

use std::collections::HashMap;
use std::time::Duration;

use hush_protocol::UserId;
use tokio::time::Instant;

use crate::payload::TypingState;

/// Least time between two `Started` indicators sent to one peer.
pub const TYPING_REFRESH: Duration = Duration::from_secs(3);

/// A peer's "typing" ends this long after its last `Started`, when no
/// `Stopped` came.
pub const TYPING_TIMEOUT: Duration = Duration::from_secs(6);

/// Most peers tracked at once on each side; beyond it, indicators of new
/// peers are ignored (receiving) or the stalest entries forgotten (sending).
pub const MAX_TYPING_PEERS: usize = 1024;

/// Our side: which indicators actually leave.
#[derive(Debug, Default)]
pub struct TypingSender {
    peers: HashMap<UserId, Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    /// When the last `Started` went.
    started_at: Instant,
    /// Whether the peer believes we type (a `Started` not yet stopped).
    active: bool,
}

impl TypingSender {
    /// Whether `state` to `peer` should be sent now; records it if so.
    pub fn admit(&mut self, peer: &UserId, state: TypingState, now: Instant) -> bool {
        match state {
            TypingState::Started => {
                if let Some(s) = self.peers.get(peer)
                    && now.saturating_duration_since(s.started_at) < TYPING_REFRESH
                {
                    return false;
                }
                if self.peers.len() >= MAX_TYPING_PEERS && !self.peers.contains_key(peer) {
                    // Entries older than the refresh interval and inactive
                    // decide nothing any more.
                    self.peers.retain(|_, s| {
                        s.active || now.saturating_duration_since(s.started_at) < TYPING_REFRESH
                    });
                    if self.peers.len() >= MAX_TYPING_PEERS {
                        return false;
                    }
                }
                self.peers.insert(
                    peer.clone(),
                    Sent {
                        started_at: now,
                        active: true,
                    },
                );
                true
            }
            TypingState::Stopped => match self.peers.get_mut(peer) {
                Some(s) if s.active => {
                    s.active = false;
                    true
                }
                _ => false,
            },
        }
    }

    /// An indicator that was admitted could not be sent. A `Started` that
    /// did not go is forgotten: no `Stopped` is owed, and the next
    /// `Started` may go at once.
    pub fn failed(&mut self, peer: &UserId, state: TypingState) {
        if state == TypingState::Started {
            self.peers.remove(peer);
        }
    }
}

/// Their side: who is typing, and until when.
#[derive(Debug, Default)]
pub struct TypingTimers {
    until: HashMap<UserId, Instant>,
}

impl TypingTimers {
    /// A `Started` from `peer`: returns whether it is news (the peer was not
    /// typing), i.e. whether to emit an event. A refresh only extends the
    /// deadline.
    pub fn started(&mut self, peer: &UserId, now: Instant, timeout: Duration) -> bool {
        if let Some(u) = self.until.get_mut(peer) {
            *u = now + timeout;
            return false;
        }
        if self.until.len() >= MAX_TYPING_PEERS {
            return false;
        }
        self.until.insert(peer.clone(), now + timeout);
        true
    }

    /// A `Stopped` from `peer`: returns whether the peer was typing.
    pub fn stopped(&mut self, peer: &UserId) -> bool {
        self.until.remove(peer).is_some()
    }

    /// The peers whose indicator expired at `now` (forgotten here).
    pub fn expire(&mut self, now: Instant) -> Vec<UserId> {
        let mut gone: Vec<UserId> = self
            .until
            .iter()
            .filter(|(_, u)| **u <= now)
            .map(|(p, _)| p.clone())
            .collect();
        gone.sort();
        for p in &gone {
            self.until.remove(p);
        }
        gone
    }

    /// The earliest deadline, if anyone is typing.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.until.values().min().copied()
    }

    /// Everyone typing, forgotten (the connection is gone, so their
    /// `Stopped` could not reach us).
    pub fn clear(&mut self) -> Vec<UserId> {
        let mut all: Vec<UserId> = self.until.drain().map(|(p, _)| p).collect();
        all.sort();
        all
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn uid(s: &str) -> UserId {
        UserId::try_from(s).unwrap()
    }

    #[test]
    fn started_leaves_at_most_once_per_refresh_and_stopped_only_after_it() {
        let t0 = Instant::now();
        let bob = uid("bob");
        let mut s = TypingSender::default();
        assert!(!s.admit(&bob, TypingState::Stopped, t0), "nothing to stop");
        assert!(s.admit(&bob, TypingState::Started, t0));
        assert!(!s.admit(&bob, TypingState::Started, t0 + 2 * S));
        assert!(s.admit(&bob, TypingState::Stopped, t0 + 2 * S));
        assert!(!s.admit(&bob, TypingState::Stopped, t0 + 2 * S), "once");
        // Stop-start cycles do not beat the refresh interval.
        assert!(!s.admit(&bob, TypingState::Started, t0 + 2 * S));
        assert!(s.admit(&bob, TypingState::Started, t0 + 3 * S));
        // Another peer has its own interval.
        assert!(s.admit(&uid("carol"), TypingState::Started, t0 + 3 * S));
    }

    #[test]
    fn a_started_that_failed_owes_no_stopped_and_may_go_again() {
        let t0 = Instant::now();
        let bob = uid("bob");
        let mut s = TypingSender::default();
        assert!(s.admit(&bob, TypingState::Started, t0));
        s.failed(&bob, TypingState::Started);
        assert!(!s.admit(&bob, TypingState::Stopped, t0 + S));
        assert!(s.admit(&bob, TypingState::Started, t0 + S));
    }

    #[test]
    fn sent_indicators_per_peer_are_bounded_over_any_window() {
        // An application asking for an indicator every 100 ms for a minute
        // gets at most two per refresh interval out.
        let t0 = Instant::now();
        let bob = uid("bob");
        let mut s = TypingSender::default();
        let mut sent = 0u32;
        for i in 0..600u32 {
            let state = if i % 2 == 0 {
                TypingState::Started
            } else {
                TypingState::Stopped
            };
            if s.admit(&bob, state, t0 + Duration::from_millis(100) * i) {
                sent += 1;
            }
        }
        assert!(sent <= 2 * 60 / 3 + 2, "{sent} indicators in 60 s");
    }

    #[test]
    fn typing_clears_by_itself_after_the_timeout_without_refresh() {
        let t0 = Instant::now();
        let bob = uid("bob");
        let mut t = TypingTimers::default();
        assert!(t.started(&bob, t0, TYPING_TIMEOUT));
        assert_eq!(t.next_deadline(), Some(t0 + TYPING_TIMEOUT));
        assert!(t.expire(t0 + TYPING_TIMEOUT - S).is_empty());
        // A refresh is not news but extends the deadline.
        assert!(!t.started(&bob, t0 + 5 * S, TYPING_TIMEOUT));
        assert!(t.expire(t0 + 10 * S).is_empty());
        assert_eq!(t.expire(t0 + 11 * S), vec![bob.clone()]);
        assert_eq!(t.next_deadline(), None);
        assert!(!t.stopped(&bob), "already cleared: no second Stopped");
    }

    #[test]
    fn stopped_and_disconnect_end_typing_once() {
        let t0 = Instant::now();
        let (bob, carol) = (uid("bob"), uid("carol"));
        let mut t = TypingTimers::default();
        t.started(&bob, t0, TYPING_TIMEOUT);
        t.started(&carol, t0, TYPING_TIMEOUT);
        assert!(t.stopped(&bob));
        assert!(!t.stopped(&bob));
        assert_eq!(t.clear(), vec![carol]);
        assert!(t.expire(t0 + 60 * S).is_empty());
    }
}
