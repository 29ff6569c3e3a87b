//! Half-open detection of one connection: when to ping a quiet peer and
//! when to give up on it.

use std::time::Duration;

use tokio::time::Instant;

#[cfg(test)]
mod tests;

/// What the liveness timer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Heard from recently; nothing to do.
    Quiet,
    /// Quiet for `ping_interval`: send a ping.
    Ping,
    /// Nothing for `idle_timeout`: half-open or dead.
    Dead,
}

/// Half-open detection. Reading a frame only stores the time (no timer is
/// reset per frame); the timer fires at most once per `ping_interval` and
/// decides from the time of the last frame.
#[derive(Debug)]
pub(super) struct Liveness {
    ping_interval: Duration,
    idle_timeout: Duration,
    last_heard: Instant,
    pub(super) next_check: Instant,
}

impl Liveness {
    pub(super) fn new(ping_interval: Duration, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        let ping_interval = ping_interval.max(Duration::from_millis(10));
        Self {
            ping_interval,
            idle_timeout: idle_timeout.max(ping_interval),
            last_heard: now,
            next_check: now + ping_interval,
        }
    }

    pub(super) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Called when `next_check` is reached; sets the next one.
    pub(super) fn check(&mut self, now: Instant) -> Verdict {
        let quiet = now.saturating_duration_since(self.last_heard);
        let dead_at = self.last_heard + self.idle_timeout;
        if quiet >= self.idle_timeout {
            return Verdict::Dead;
        }
        if quiet >= self.ping_interval {
            self.next_check = (now + self.ping_interval).min(dead_at);
            Verdict::Ping
        } else {
            self.next_check = (self.last_heard + self.ping_interval).min(dead_at);
            Verdict::Quiet
        }
    }
}
