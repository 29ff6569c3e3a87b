//! Durations typed by the user: every one is checked (a number of seconds,
//! finite and not negative) and bounded, so no value can overflow the time
//! arithmetic behind it.

use std::time::Duration;

/// The longest duration any option stands for: 100 years. Larger values
/// are capped to it (they mean "practically forever" anyway).
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `secs` as a [`Duration`], capped to [`MAX`]; NaN and negative values
/// count as zero. For computed values (a period from a rate, ...).
pub fn saturating_secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(MAX, |d| d.min(MAX))
}

/// A clap value parser: a number of seconds (fractions allowed), at least
/// zero and finite; values above [`MAX`] are capped to it.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if n.is_nan() {
        return Err(format!("{s:?} is not a number of seconds"));
    }
    if n < 0.0 {
        return Err(format!(
            "{s} is negative: give a number of seconds, 0 or more"
        ));
    }
    if n.is_infinite() {
        return Err(format!("{s} is not a finite number of seconds"));
    }
    Ok(saturating_secs(n))
}

/// How long `hush recv` keeps receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This long after connecting (at most [`MAX`]).
    For(Duration),
    /// Until interrupted (Ctrl-C, SIGTERM) or the connection ends for good.
    Forever,
}

/// A clap value parser for `--wait`: `forever`, or a number of seconds as
/// [`parse_seconds`] takes it.
pub fn parse_wait(s: &str) -> Result<Wait, String> {
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(Wait::Forever);
    }
    parse_seconds(s)
        .map(Wait::For)
        .map_err(|e| format!("{e}; or `forever` to keep receiving until interrupted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_durations_are_checked_and_capped() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("1e19"), Ok(MAX));
        assert_eq!(parse_seconds("1e300"), Ok(MAX));
        for bad in [
            "-1", "-0.5", "NaN", "nan", "inf", "-inf", "infinity", "", "ten",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_wait("forever"), Ok(Wait::Forever));
        assert_eq!(parse_wait("2"), Ok(Wait::For(Duration::from_secs(2))));
        assert!(parse_wait("-1").is_err());
        assert_eq!(saturating_secs(f64::INFINITY), MAX);
        assert_eq!(saturating_secs(f64::NAN), Duration::ZERO);
        assert_eq!(saturating_secs(1e-300), Duration::ZERO);
    }
}
