//! In-memory store: everything in one map behind a mutex. Loses everything
//! on exit; for tests and throwaway relays. The relay id is random per
//! process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::OneTimePrekey;
use hush_protocol::{PublicKeyBytes, UserId};

use super::{
    AppendOutcome, AuthOutcome, DeviceListOutcome, FetchedBundle, MailboxLimits, NewEnvelope,
    PublishOutcome, PublishedKeys, Store, StoreError, StoreStats, StoredEnvelope, Visibility,
};

#[derive(Debug)]
struct User {
    identity_key: PublicKeyBytes,
    keys: Option<PublishedKeys>,
    one_time_prekeys: BTreeMap<u32, PublicKeyBytes>,
    last_id: u64,
    mailbox: BTreeMap<u64, StoredEnvelope>,
    mailbox_bytes: u64,
    presence_allow: BTreeSet<UserId>,
    last_seen_ms: Option<u64>,
}

/// The in-memory backend.
#[derive(Debug)]
pub struct MemoryStore {
    relay_id: String,
    // A std mutex: every critical section is short and never awaits.
    users: Mutex<HashMap<UserId, User>>,
    device_lists: Mutex<HashMap<UserId, SignedDeviceList>>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl MemoryStore {
    /// An empty store with a random relay id.
    pub fn new() -> Result<Self, StoreError> {
        Ok(Self::with_relay_id(super::random_relay_id()?))
    }

    /// An empty store whose relay id is made of the 16 bytes `random`
    /// gives (tests), instead of the OS RNG.
    pub fn with_random(mut random: impl FnMut() -> [u8; 16]) -> Self {
        Self::with_relay_id(super::relay_id_text(random()))
    }

    fn with_relay_id(relay_id: String) -> Self {
        Self {
            relay_id,
            users: Mutex::new(HashMap::new()),
            device_lists: Mutex::new(HashMap::new()),
        }
    }

    fn append_now(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> AppendOutcome {
        let mut users = self.lock();
        let Some(u) = users.get_mut(to) else {
            return AppendOutcome::UnknownUser;
        };
        let len = envelope.body.len() as u64;
        if u.mailbox.len() as u64 >= limits.max_envelopes
            || u.mailbox_bytes + len > limits.max_bytes
        {
            return AppendOutcome::MailboxFull;
        }
        u.last_id += 1;
        let stored = StoredEnvelope {
            id: u.last_id,
            from: envelope.from,
            accepted_at: envelope.accepted_at,
            body: envelope.body,
        };
        u.mailbox.insert(stored.id, stored.clone());
        u.mailbox_bytes += len;
        AppendOutcome::Appended(stored)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, User>> {
        // A panic while holding the lock cannot leave a half-applied change
        // that matters more than losing the relay: recover the data.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn lock_map<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store for MemoryStore {
    async fn relay_id(&self) -> Result<String, StoreError> {
        Ok(self.relay_id.clone())
    }

    async fn identity_key(&self, user: &UserId) -> Result<Option<PublicKeyBytes>, StoreError> {
        Ok(self.lock().get(user).map(|u| u.identity_key))
    }

    async fn device_list(&self, user: &UserId) -> Result<Option<SignedDeviceList>, StoreError> {
        Ok(lock_map(&self.device_lists).get(user).cloned())
    }

    async fn put_device_list(
        &self,
        user: &UserId,
        list: SignedDeviceList,
    ) -> Result<DeviceListOutcome, StoreError> {
        let mut lists = lock_map(&self.device_lists);
        match lists.get(user) {
            Some(current) if current.version >= list.version => {
                Ok(DeviceListOutcome::Stale(current.clone()))
            }
            _ => {
                lists.insert(user.clone(), list);
                Ok(DeviceListOutcome::Stored)
            }
        }
    }

    async fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> Result<AuthOutcome, StoreError> {
        let mut users = self.lock();
        match users.get(user) {
            Some(u) if u.identity_key == *key => Ok(AuthOutcome::Ok {
                registered: false,
                one_time_prekeys: count(u.one_time_prekeys.len()),
                has_keys: u.keys.is_some(),
                last_queued: u.mailbox.last_key_value().map_or(0, |(id, _)| *id),
            }),
            Some(_) => Ok(AuthOutcome::KeyMismatch),
            None => {
                users.insert(
                    user.clone(),
                    User {
                        identity_key: *key,
                        keys: None,
                        one_time_prekeys: BTreeMap::new(),
                        last_id: 0,
                        mailbox: BTreeMap::new(),
                        mailbox_bytes: 0,
                        presence_allow: BTreeSet::new(),
                        last_seen_ms: None,
                    },
                );
                Ok(AuthOutcome::Ok {
                    registered: true,
                    one_time_prekeys: 0,
                    has_keys: false,
                    last_queued: 0,
                })
            }
        }
    }

    async fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> Result<PublishOutcome, StoreError> {
        let mut users = self.lock();
        let Some(u) = users.get_mut(user) else {
            return Ok(PublishOutcome::UnknownUser);
        };
        let new = one_time_prekeys
            .iter()
            .filter(|o| !u.one_time_prekeys.contains_key(&o.id))
            .map(|o| o.id)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let would_store = u.one_time_prekeys.len() + new;
        if would_store > max_stored {
            return Ok(PublishOutcome::TooManyPrekeys {
                would_store,
                max: max_stored,
            });
        }
        u.keys = Some(keys);
        for o in one_time_prekeys {
            u.one_time_prekeys.insert(o.id, o.key);
        }
        Ok(PublishOutcome::Published {
            one_time_prekeys: count(u.one_time_prekeys.len()),
        })
    }

    async fn fetch_bundle(&self, user: &UserId) -> Result<Option<FetchedBundle>, StoreError> {
        let mut users = self.lock();
        let Some(u) = users.get_mut(user) else {
            return Ok(None);
        };
        let Some(keys) = u.keys.clone() else {
            return Ok(None);
        };
        let one_time_prekey = u
            .one_time_prekeys
            .pop_first()
            .map(|(id, key)| OneTimePrekey { id, key });
        Ok(Some(FetchedBundle {
            identity_key: u.identity_key,
            keys,
            one_time_prekey,
            remaining: count(u.one_time_prekeys.len()),
        }))
    }

    async fn lookup_identity(
        &self,
        user: &UserId,
    ) -> Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError> {
        let users = self.lock();
        Ok(users
            .get(user)
            .and_then(|u| u.keys.clone().map(|k| (u.identity_key, k))))
    }

    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.lock().contains_key(user))
    }

    fn append(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static {
        // Applied now, at call time (see the trait).
        std::future::ready(Ok(self.append_now(to, envelope, limits)))
    }

    async fn mailbox_after(
        &self,
        user: &UserId,
        after_id: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let users = self.lock();
        Ok(users
            .get(user)
            .map(|u| {
                u.mailbox
                    .range(after_id.saturating_add(1)..)
                    .take(limit)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn ack(&self, user: &UserId, ids: Vec<u64>) -> Result<u64, StoreError> {
        let mut users = self.lock();
        let Some(u) = users.get_mut(user) else {
            return Ok(0);
        };
        let mut removed = 0;
        for id in ids {
            if let Some(e) = u.mailbox.remove(&id) {
                u.mailbox_bytes -= e.body.len() as u64;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn reset_user(&self, user: &UserId) -> Result<bool, StoreError> {
        lock_map(&self.device_lists).remove(user);
        Ok(self.lock().remove(user).is_some())
    }

    async fn sweep_expired(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut users = self.lock();
        let mut removed = 0;
        for u in users.values_mut() {
            let expired: Vec<u64> = u
                .mailbox
                .values()
                .take_while(|e| e.accepted_at < cutoff_ms)
                .map(|e| e.id)
                .collect();
            for id in expired {
                if let Some(e) = u.mailbox.remove(&id) {
                    u.mailbox_bytes -= e.body.len() as u64;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let users = self.lock();
        let mut census = crate::stats::MailboxCensus::default();
        users
            .values()
            .for_each(|u| census.add(u.mailbox.len() as u64, u.mailbox_bytes));
        Ok(StoreStats {
            users: users.len() as u64,
            envelopes: users.values().map(|u| u.mailbox.len() as u64).sum(),
            envelope_bytes: users.values().map(|u| u.mailbox_bytes).sum(),
            census,
        })
    }

    async fn set_presence_allow(
        &self,
        user: &UserId,
        allowed: Vec<UserId>,
    ) -> Result<(), StoreError> {
        if let Some(u) = self.lock().get_mut(user) {
            u.presence_allow = allowed.into_iter().collect();
        }
        Ok(())
    }

    async fn presence_allow_list(&self, user: &UserId) -> Result<Vec<UserId>, StoreError> {
        Ok(self
            .lock()
            .get(user)
            .map(|u| u.presence_allow.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn set_last_seen(&self, user: &UserId, at_ms: u64) -> Result<(), StoreError> {
        if let Some(u) = self.lock().get_mut(user) {
            u.last_seen_ms = Some(at_ms);
        }
        Ok(())
    }

    async fn presence_view(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> Result<Vec<Visibility>, StoreError> {
        let users = self.lock();
        Ok(subjects
            .iter()
            .map(|s| {
                users
                    .get(s)
                    .filter(|u| s == asker || u.presence_allow.contains(asker))
                    .map(|u| u.last_seen_ms)
            })
            .collect())
    }

    async fn presence_watchers(
        &self,
        subject: &UserId,
        askers: &[UserId],
    ) -> Result<(Vec<bool>, Option<u64>), StoreError> {
        let users = self.lock();
        let u = users.get(subject);
        let allowed = askers
            .iter()
            .map(|a| u.is_some_and(|u| a == subject || u.presence_allow.contains(a)))
            .collect();
        Ok((allowed, u.and_then(|u| u.last_seen_ms)))
    }
}
