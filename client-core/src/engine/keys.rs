//! Our published keys: the `publish_keys` request that brings the relay
//! up to date (signed prekey rotation, one-time prekey refills within a
//! budget).

use tracing::warn;

use super::{Engine, ONE_TIME_PREKEY_TARGET, PrekeyStoreTxn};
use crate::error::ClientError;
use crate::limits::{MAX_ONE_TIME_PREKEYS_PER_WINDOW, ONE_TIME_PREKEY_REFILL_WINDOW_MS};
use crate::store::Batch;
use hush_protocol::frame::PublishKeys;

impl Engine {
    /// The `publish_keys` request that brings the relay up to date, if one
    /// is needed: a rotated signed prekey when it is due, and enough new
    /// one-time prekeys to bring `published_one_time` back to the target,
    /// within what the refill budget allows
    /// ([`MAX_ONE_TIME_PREKEYS_PER_WINDOW`] per
    /// [`ONE_TIME_PREKEY_REFILL_WINDOW_MS`]: what the relay reports is not
    /// trusted to drive generation without bound). New secrets are committed
    /// before their public halves are returned. Never fails because of how
    /// many secrets are held: the oldest are evicted.
    pub fn keys_to_publish(
        &mut self,
        rid: u64,
        has_keys: bool,
        published_one_time: u32,
        now_ms: u64,
    ) -> Result<Option<PublishKeys>, ClientError> {
        let rotate = self.profile.prekeys.needs_rotation(now_ms);
        let missing = ONE_TIME_PREKEY_TARGET.saturating_sub(published_one_time);
        let wanted = if missing >= ONE_TIME_PREKEY_TARGET / 5 || !has_keys {
            usize::try_from(missing).unwrap_or(0)
        } else {
            0
        };
        let refill = wanted.min(self.refill_budget(now_ms));
        if has_keys && !rotate && refill == 0 {
            if wanted > 0 {
                warn!(
                    wanted,
                    "one-time prekey refill budget used up; not generating"
                );
            }
            return Ok(None);
        }
        let mut prekeys = PrekeyStoreTxn::begin(&self.profile)?;
        if rotate {
            prekeys
                .0
                .rotate_signed_prekey(&mut self.rng, &self.profile.identity, now_ms)?;
        }
        prekeys.0.expire_previous(now_ms);
        let new_one_time = prekeys.0.generate_one_time(&mut self.rng, refill)?;
        let mut batch = Batch::new();
        batch.put_prekeys(prekeys.0.pickle());
        self.profile.store.commit(batch)?;
        self.profile.prekeys = prekeys.0;
        if refill > 0 {
            self.refills.push_back((now_ms, refill));
        }
        let identity = self.profile.identity.public();
        let spk = self.profile.prekeys.signed_prekey();
        Ok(Some(crate::wire::publish_keys_frame(
            rid,
            &identity,
            &spk,
            &new_one_time,
        )))
    }

    /// One-time prekeys that may still be generated in the current window.
    pub(super) fn refill_budget(&mut self, now_ms: u64) -> usize {
        while self
            .refills
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) >= ONE_TIME_PREKEY_REFILL_WINDOW_MS)
        {
            self.refills.pop_front();
        }
        let used: usize = self.refills.iter().map(|(_, n)| n).sum();
        MAX_ONE_TIME_PREKEYS_PER_WINDOW.saturating_sub(used)
    }
}
