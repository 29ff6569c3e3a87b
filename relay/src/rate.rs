//! Token buckets: `rate` tokens per second refill a bucket of `burst`; each
//! request takes one. Used per connection (frames, `rate_per_sec` /
//! `rate_burst`) and, through [`crate::quota`], per user (bundle fetches)
//! and per address (registrations).

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// A bucket refilled at `rate` tokens a second.
    pub(crate) fn with_rate(rate: f64, burst: u32, now: Instant) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Whether a token is available, without taking it.
    pub(crate) fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Whether the bucket has refilled completely (it then carries no
    /// information and can be forgotten).
    pub(crate) fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    /// Takes `n` tokens whether or not they are there, leaving a debt, and
    /// returns how long until the balance is back to zero (zero if there
    /// was enough). For byte budgets: the frame is already read; the caller
    /// stops reading for that long. A zero rate means unlimited.
    pub(crate) fn charge(&mut self, n: usize, now: Instant) -> std::time::Duration {
        if self.rate <= 0.0 {
            return std::time::Duration::ZERO;
        }
        self.refill(now);
        // n is at most a frame's size: exact in an f64.
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Takes a token if one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_charge_beyond_the_balance_is_a_debt_paid_back_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 500, t0);
        assert_eq!(b.charge(400, t0), Duration::ZERO);
        // 100 left; 300 more is a debt of 200: 0.2 s at 1000/s.
        assert_eq!(b.charge(300, t0), Duration::from_millis(200));
        assert_eq!(b.charge(0, t0 + Duration::from_millis(200)), Duration::ZERO);
        // A zero rate is no limit at all.
        let mut off = TokenBucket::new(0, 1, t0);
        assert_eq!(off.charge(1 << 30, t0), Duration::ZERO);
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        // Never more than the burst, however long idle.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn hourly_bucket_refills_one_token_per_interval() {
        let t0 = Instant::now();
        let mut b = TokenBucket::with_rate(60.0 / 3600.0, 2, t0);
        assert!(b.is_full(t0));
        assert!(b.try_take(t0) && b.try_take(t0));
        assert!(!b.has_token(t0));
        assert!(!b.has_token(t0 + Duration::from_secs(59)));
        assert!(b.has_token(t0 + Duration::from_secs(61)));
        assert!(!b.is_full(t0 + Duration::from_secs(61)));
        assert!(b.is_full(t0 + Duration::from_secs(121)));
    }
}
