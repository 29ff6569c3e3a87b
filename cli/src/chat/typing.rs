//! Typing indicators, both ways, as timers over an injected `Instant`.
//!
//! Ours: `Started` when the user starts editing the line, repeated at most
//! every [`STARTED_EVERY`] while edits continue (which also refreshes the
//! peer's timeout); `Stopped` after [`IDLE_STOP`] without edits, or when the
//! line is sent or emptied. (The client enforces the same interval again,
//! whatever we ask: see `hush_client_core::client::TYPING_REFRESH`.)
//!
//! Theirs: "typing…" shows from their `Started` until their `Stopped` or a
//! message from them. A peer that vanished never sends `Stopped`: the client
//! emits one for it after `TYPING_TIMEOUT` without a refresh.

use std::time::{Duration, Instant};

use hush_client_core::client::TYPING_REFRESH;
use hush_client_core::payload::TypingState;

/// Least time between two `Started` we send: a little over the client's
/// own bound, so a refresh is never refused for being a hair early (their
/// clocks are read at different moments).
pub const STARTED_EVERY: Duration = TYPING_REFRESH.saturating_add(Duration::from_millis(100));
/// Edits pause this long: we send `Stopped` (before the peer's client would
/// time our indicator out).
pub const IDLE_STOP: Duration = Duration::from_secs(5);

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
    typing: bool,
}

impl PeerTyping {
    pub fn indicator(&mut self, state: TypingState) {
        self.typing = state == TypingState::Started;
    }

    /// A message from the peer ends their typing.
    pub fn message(&mut self) {
        self.typing = false;
    }

    pub fn is_typing(&self) -> bool {
        self.typing
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
        assert_eq!(t.edited(t0 + 3 * S, false), None);
        let t1 = t0 + STARTED_EVERY;
        assert_eq!(t.edited(t1, false), Some(TypingState::Started));
        assert_eq!(t.edited(t1 + S, false), None);
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
    fn we_stop_before_the_peer_would_time_us_out() {
        assert!(STARTED_EVERY < IDLE_STOP);
        assert!(IDLE_STOP < hush_client_core::client::TYPING_TIMEOUT);
    }

    #[test]
    fn peer_typing_ends_on_stopped_or_message() {
        let mut p = PeerTyping::default();
        p.indicator(TypingState::Started);
        assert!(p.is_typing());
        p.indicator(TypingState::Stopped);
        assert!(!p.is_typing());
        p.indicator(TypingState::Started);
        p.message();
        assert!(!p.is_typing());
    }
}
