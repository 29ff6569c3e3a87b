//! Wall-clock time, injected: the [`Clock`] every component that stamps or
//! expires something reads, and the [`SystemClock`] it defaults to. Tests
//! pass their own to control time.

use std::fmt;

/// Wall-clock time for timestamps and prekey rotation; injected so tests
/// control it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}
