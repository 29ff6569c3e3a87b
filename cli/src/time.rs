//! Times as `hush` shows them: local time with its zone (the `TZ`
//! environment variable, else the system's), or UTC with `--utc`. JSON
//! output keeps Unix milliseconds and does not come here.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

static ZONE: OnceLock<TimeZone> = OnceLock::new();

/// Now, in Unix milliseconds, by the system clock.
pub fn now_ms() -> u64 {
    use hush_client_core::client::{Clock, SystemClock};
    SystemClock.now_ms()
}

/// Chooses the zone for this process: UTC, or the local one. Only the
/// first call counts (`main` makes it before anything is shown).
pub fn init(utc: bool) {
    let _ = ZONE.set(if utc { TimeZone::UTC } else { local() });
}

/// The local zone: `TZ` if set and understood, else the system's; UTC when
/// neither can be read.
fn local() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

fn zone() -> &'static TimeZone {
    ZONE.get_or_init(local)
}

fn zoned(ms: u64) -> Option<jiff::ZonedDateTime> {
    let ms = i64::try_from(ms).ok()?;
    Some(
        Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned_datetime(zone().clone()),
    )
}

/// `YYYY-MM-DD HH:MM:SS +HH:MM` of Unix milliseconds.
pub fn full(ms: u64) -> String {
    match zoned(ms) {
        Some(z) => z.strftime("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => format!("{ms} ms"),
    }
}

/// `YYYY-MM-DD` of Unix milliseconds.
pub fn day(ms: u64) -> String {
    match zoned(ms) {
        Some(z) => z.strftime("%Y-%m-%d").to_string(),
        None => format!("{ms} ms"),
    }
}

/// Whether `a` and `b` fall on the same day in the zone.
pub fn same_day(a: u64, b: u64) -> bool {
    match (zoned(a), zoned(b)) {
        (Some(a), Some(b)) => a.date() == b.date(),
        _ => false,
    }
}

/// For the chat: `HH:MM` on the day of `now_ms`, `Mon D HH:MM` on another
/// day of the same year, `YYYY-MM-DD HH:MM` otherwise.
pub fn short(ms: u64, now_ms: u64) -> String {
    let (Some(t), Some(now)) = (zoned(ms), zoned(now_ms)) else {
        return format!("{ms} ms");
    };
    let format = if t.date() == now.date() {
        "%H:%M"
    } else if t.year() == now.year() {
        "%b %-d %H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    t.strftime(format).to_string()
}

/// The zone for a header: `UTC`, or `UTC+05:30` (the offset at `now_ms`).
pub fn zone_label(now_ms: u64) -> String {
    match zoned(now_ms) {
        Some(z) if z.offset().seconds() == 0 => "UTC".to_owned(),
        Some(z) => format!("UTC{}", z.strftime("%:z")),
        None => "UTC".to_owned(),
    }
}

/// For unit tests: the zone is UTC in this process.
#[cfg(test)]
pub fn utc_for_tests() {
    init(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc() {
        utc_for_tests();
        assert_eq!(full(0), "1970-01-01 00:00:00 +00:00");
        assert_eq!(full(1_764_104_400_000), "2025-11-25 21:00:00 +00:00");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        let now = 1_764_104_400_000;
        assert_eq!(short(now - 60_000, now), "20:59");
        assert_eq!(short(now - 86_400_000, now), "Nov 24 21:00");
        assert_eq!(short(0, now), "1970-01-01 00:00");
        assert_eq!(zone_label(now), "UTC");
        assert!(same_day(now, now + 1));
        assert!(!same_day(now, now + 3 * 3_600_000));
    }
}
