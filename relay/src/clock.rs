//! The relay's wall clock, injected: `accepted_at` of envelopes, last seen,
//! the retention cutoff and the delivery latency metric all read it.
//! Production uses [`Clock::system`]; tests use [`Clock::manual`] and move
//! it by hand.
//!
//! A `Clock` is a plain value (no trait object): reading the system clock
//! costs one branch more than calling `SystemTime::now` directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the system or from a test.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock {
    /// `None`: the system clock; `Some`: a manual clock's current time.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's wall clock.
    pub(crate) fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that reads `start_ms` until [`Clock::set`] or
    /// [`Clock::advance`] moves it (clones share the time).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn manual(start_ms: u64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicU64::new(start_ms))),
        }
    }

    /// Now, in milliseconds since the Unix epoch (0 before it, saturating
    /// far after it).
    pub(crate) fn now_ms(&self) -> u64 {
        match &self.manual {
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            Some(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Sets a manual clock to `ms` (the system clock ignores it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn set(&self, ms: u64) {
        if let Some(t) = &self.manual {
            t.store(ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward by `ms` (the system clock ignores it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn advance(&self, ms: u64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual(1_000);
        let d = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        d.advance(5);
        assert_eq!(c.now_ms(), 1_005);
        c.set(7);
        assert_eq!(d.now_ms(), 7);
    }

    #[test]
    fn the_system_clock_is_after_2020_and_ignores_set() {
        let c = Clock::system();
        c.set(0);
        assert!(c.now_ms() > 1_577_836_800_000);
    }
}
