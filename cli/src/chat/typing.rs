//! Typing indicators, both ways, as timers over an injected `Instant`.
//!
//! Ours: `Started` when the user starts editing the line, repeated at most
//! every [`STARTED_EVERY`] while edits continue (which also refreshes the
//! peer's timeout); `Stopped` after [`IDLE_STOP`] without edits, or when the
//! line is sent or emptied.
//!
//! Theirs: "typing…" shows from their `Started` until their `Stopped`, a
//! message from them, or [`PEER_TIMEOUT`] without a refresh (a peer that
//! vanished never sends `Stopped`).

use std::time::{Duration, Instant};

use hush_client_core::payload::TypingState;

/// Least time between two `Started` we send.
pub const STARTED_EVERY: Duration = Duration::from_secs(3);
/// Edits pause this long: we send `Stopped`.
pub const IDLE_STOP: Duration = Duration::from_secs(5);
/// The peer's "typing…" ends this long after their last `Started`.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(8);

/// Our side: decides which indicators to send.
#[derive(Debug, Default)]
pub struct OurTyping {
    /// When we last sent `Started`, while the peer believes we type.
    started_at: Option<Instant>,
    last_edit: Option<Instant>,
}

impl OurTyping {
    /// The line was edited; `empty` is whether it is now empty.
    pub fn edited(&mut self, now: Instant, empty: bool) -> Option<TypingState> {
        if empty {
            return self.stop();
        }
        self.last_edit = Some(now);
        match self.started_at {
            Some(t) if now.saturating_duration_since(t) < STARTED_EVERY => None,
            _ => {
                self.started_at = Some(now);
                Some(TypingState::Started)
            }
        }
    }

    /// Time passed: `Stopped` once edits paused long enough.
    pub fn tick(&mut self, now: Instant) -> Option<TypingState> {
        match (self.started_at, self.last_edit) {
            (Some(_), Some(e)) if now.saturating_duration_since(e) >= IDLE_STOP => self.stop(),
            _ => None,
        }
    }

    /// The line was sent or abandoned: `Stopped` if we said `Started`.
    pub fn stop(&mut self) -> Option<TypingState> {
        self.last_edit = None;
        self.started_at.take().map(|_| TypingState::Stopped)
    }
}

/// Their side: whether to show "typing…".
#[derive(Debug, Default)]
pub struct PeerTyping {
    until: Option<Instant>,
}

impl PeerTyping {
    pub fn indicator(&mut self, state: TypingState, now: Instant) {
        self.until = match state {
            TypingState::Started => Some(now + PEER_TIMEOUT),
            TypingState::Stopped => None,
        };
    }

    /// A message from the peer ends their typing.
    pub fn message(&mut self) {
        self.until = None;
    }

    pub fn tick(&mut self, now: Instant) {
        if self.until.is_some_and(|u| now >= u) {
            self.until = None;
        }
    }

    pub fn is_typing(&self) -> bool {
        self.until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn started_is_sent_once_per_interval_while_typing() {
        let t0 = Instant::now();
        let mut t = OurTyping::default();
        assert_eq!(t.edited(t0, false), Some(TypingState::Started));
        assert_eq!(t.edited(t0 + S, false), None);
        assert_eq!(t.edited(t0 + 2 * S, false), None);
        assert_eq!(t.tick(t0 + 2 * S), None);
        assert_eq!(t.edited(t0 + 3 * S, false), Some(TypingState::Started));
        assert_eq!(t.edited(t0 + 4 * S, false), None);
    }

    #[test]
    fn stopped_after_idle_or_when_line_sent_or_cleared() {
        let t0 = Instant::now();
        let mut t = OurTyping::default();
        t.edited(t0, false);
        t.edited(t0 + 2 * S, false);
        assert_eq!(
            t.tick(t0 + 6 * S),
            None,
            "5 s since the last edit not yet over"
        );
        assert_eq!(t.tick(t0 + 7 * S), Some(TypingState::Stopped));
        assert_eq!(t.tick(t0 + 20 * S), None, "Stopped only once");
        // Typing again starts afresh.
        assert_eq!(t.edited(t0 + 21 * S, false), Some(TypingState::Started));
        assert_eq!(t.edited(t0 + 22 * S, true), Some(TypingState::Stopped));
        assert_eq!(t.stop(), None);
        t.edited(t0 + 23 * S, false);
        assert_eq!(t.stop(), Some(TypingState::Stopped));
    }

    #[test]
    fn peer_typing_times_out_without_refresh() {
        let t0 = Instant::now();
        let mut p = PeerTyping::default();
        p.indicator(TypingState::Started, t0);
        p.tick(t0 + 7 * S);
        assert!(p.is_typing());
        p.indicator(TypingState::Started, t0 + 7 * S);
        p.tick(t0 + 14 * S);
        assert!(p.is_typing(), "refreshed at 7 s");
        p.tick(t0 + 15 * S);
        assert!(!p.is_typing());
    }

    #[test]
    fn peer_typing_ends_on_stopped_or_message() {
        let t0 = Instant::now();
        let mut p = PeerTyping::default();
        p.indicator(TypingState::Started, t0);
        p.indicator(TypingState::Stopped, t0);
        assert!(!p.is_typing());
        p.indicator(TypingState::Started, t0);
        p.message();
        assert!(!p.is_typing());
    }
}
