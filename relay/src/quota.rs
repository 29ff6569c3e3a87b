//! Quotas that outlive a connection: bundle fetches per user (a requester
//! cannot drain another user's one-time prekeys by reconnecting), new
//! registrations per IP address (nor by registering throw-away ids), and
//! frames and bytes per IP address (many connections from one address share
//! one rate).
//!
//! Each is a table of [`TokenBucket`]s. A bucket that has refilled completely
//! says nothing a fresh one would not, so the table forgets it; the table is
//! pruned of those whenever it reaches [`PRUNE_AT`] entries, which bounds its
//! memory by the number of keys active within one refill period.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use hush_protocol::{Limits, UserId};
use tokio::time::Instant;

use crate::rate::TokenBucket;

/// Table size at which full buckets are pruned.
const PRUNE_AT: usize = 4096;

/// Token buckets keyed by `K`.
#[derive(Debug)]
struct Buckets<K> {
    /// Refill, tokens per second.
    rate: f64,
    burst: u32,
    map: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_hour: u32, burst: u32) -> Self {
        Self::per_second(f64::from(per_hour) / 3600.0, burst)
    }

    fn per_second(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Disabled when the burst is 0.
    fn enabled(&self) -> bool {
        self.burst > 0
    }

    fn with<R>(&self, key: &K, f: impl FnOnce(&mut TokenBucket, Instant) -> R) -> R {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PRUNE_AT && !map.contains_key(key) {
            map.retain(|_, b| !b.is_full(now));
        }
        let bucket = map
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::with_rate(self.rate, self.burst, now));
        f(bucket, now)
    }

    fn try_take(&self, key: &K) -> bool {
        !self.enabled() || self.with(key, |b, now| b.try_take(now))
    }

    /// Charges `n` tokens to `key` (see [`TokenBucket::charge`]): how long
    /// its connections must stop reading.
    fn charge(&self, key: &K, n: usize) -> std::time::Duration {
        if !self.enabled() || self.rate <= 0.0 {
            return std::time::Duration::ZERO;
        }
        self.with(key, |b, now| b.charge(n, now))
    }

    fn has_token(&self, key: &K) -> bool {
        !self.enabled() || self.with(key, |b, now| b.has_token(now))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The relay's long-lived quotas.
#[derive(Debug)]
pub(crate) struct Quotas {
    fetches: Buckets<UserId>,
    registrations: Buckets<IpAddr>,
    frames: Buckets<IpAddr>,
    bytes: Buckets<IpAddr>,
}

impl Quotas {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            fetches: Buckets::new(limits.bundle_fetches_per_hour, limits.bundle_fetch_burst),
            registrations: Buckets::new(limits.registrations_per_hour, limits.registration_burst),
            frames: Buckets::per_second(f64::from(limits.ip_rate_per_sec), limits.ip_rate_burst),
            bytes: Buckets::per_second(
                f64::from(limits.ip_byte_rate_per_sec),
                limits.ip_byte_rate_burst,
            ),
        }
    }

    /// Charges `n` bytes read from `ip` to its shared byte rate; returns
    /// how long that address's connections should stop reading.
    pub(crate) fn charge_bytes(&self, ip: &IpAddr, n: usize) -> std::time::Duration {
        self.bytes.charge(ip, n)
    }

    /// Takes one frame from `ip`'s shared rate.
    pub(crate) fn take_frame(&self, ip: &IpAddr) -> bool {
        self.frames.try_take(ip)
    }

    /// Takes one bundle fetch from `requester`'s quota.
    pub(crate) fn take_fetch(&self, requester: &UserId) -> bool {
        self.fetches.try_take(requester)
    }

    /// Whether `ip` may register a new user now. Checked before the store
    /// is asked (which registers an unknown id at once); the token is taken
    /// by [`Quotas::registered`] once the store says the id was new, so a
    /// returning user never spends one. Concurrent registrations from one
    /// address can overshoot by at most its open connections.
    pub(crate) fn may_register(&self, ip: &IpAddr) -> bool {
        self.registrations.has_token(ip)
    }

    /// Records a registration from `ip`.
    pub(crate) fn registered(&self, ip: &IpAddr) {
        let _ = self.registrations.try_take(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_quota_never_refuses() {
        let b: Buckets<u32> = Buckets::new(0, 0);
        for _ in 0..10_000 {
            assert!(b.try_take(&1));
        }
        assert_eq!(b.len(), 0, "a disabled quota keeps no state");
    }

    #[test]
    fn burst_is_per_key() {
        let b: Buckets<u32> = Buckets::new(1, 3);
        assert!((0..3).all(|_| b.try_take(&1)));
        assert!(!b.try_take(&1));
        assert!(b.try_take(&2), "another key has its own bucket");
    }

    #[test]
    fn table_forgets_full_buckets_at_the_prune_size() {
        let b: Buckets<usize> = Buckets::new(3600, 2);
        // Keys that only peeked stay full and are prunable.
        for k in 0..PRUNE_AT {
            assert!(b.has_token(&k));
        }
        assert_eq!(b.len(), PRUNE_AT);
        // An exhausted key is not full and survives pruning.
        let hot = PRUNE_AT + 1;
        assert!(b.try_take(&hot) && b.try_take(&hot));
        assert!(!b.try_take(&hot));
        assert!(b.has_token(&(PRUNE_AT + 2)));
        assert!(b.len() <= 3, "full buckets were pruned: {}", b.len());
        assert!(!b.try_take(&hot), "the exhausted bucket was kept");
    }
}
