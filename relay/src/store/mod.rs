//! Storage: the user directory (id -> identity key), published prekeys, and
//! per-user mailboxes of opaque envelopes, behind one [`Store`] trait.
//!
//! Backends: [`MemoryStore`] (tests, `--store memory`), [`RedbStore`]
//! (embedded, durable, group-committed) and [`RedisStore`] (shared by
//! several relays, `--redis URL`). Routing code only sees the trait.
//!
//! Contract every backend keeps:
//! - Envelope ids are per recipient, strictly increasing from 1, never reused
//!   for a user id until [`Store::reset_user`].
//! - [`Store::append`] returns only once the envelope is durable (for a
//!   durable backend) and visible to [`Store::mailbox_after`].
//! - Envelope `N` is visible to `mailbox_after` no later than any envelope
//!   with a higher id for the same recipient (ids become visible in order).
//!   The delivery code relies on this to never skip an envelope.
//! - [`Store::fetch_bundle`] removes the one-time prekey it returns
//!   atomically: a prekey is handed out at most once.
//! - Presence: a user's allow list and last-seen time are kept like its keys
//!   (durably in redb and Redis) and deleted by [`Store::reset_user`]. The
//!   presence reads never distinguish an unknown subject from one that does
//!   not allow the asker (both: not visible), so no caller can build an
//!   oracle on them. Nothing else about presence, typing or receipts is
//!   stored.
//!
//! Every time a store records (acceptance, last seen, the sweep's cutoff)
//! is given by its caller; a store never reads the clock. The only
//! randomness is the relay id (and Redis's node id), from the OS RNG unless
//! a `*_with_random` constructor injects it.
//!
//! | module | holds |
//! | --- | --- |
//! | `mod.rs` | the [`Store`] trait, its request and outcome types, [`StoreError`] |
//! | `codec` | the record codec both durable stores share (every layout, byte for byte) |
//! | `memory` | [`MemoryStore`] |
//! | `redb_store` | [`RedbStore`]: `schema`, `writer` (group commit), `directory`, `mailbox`, `presence` |
//! | `redis_store` | [`RedisStore`]: `schema`, `writer` (append pump), `directory`, `mailbox`, `presence`, `sessions` (cluster presence) |
//! | `lua/` | the Redis scripts |
//!
//! ## Devices
//!
//! An account's signed device list is one record per account
//! ([`Store::device_list`], [`Store::put_device_list`], which only ever
//! replaces a list by a newer version). Everything else a device owns (its
//! signing key, published keys, one-time prekeys, mailbox and id counter)
//! is kept exactly like a user's, under the device's *address*
//! ([`UserId::device_address`]): the account's own id for device 1, so an
//! account that predates devices is device 1 unchanged, and `user/N` for
//! device N, which no user id can collide with.

use std::future::Future;

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};

pub use crate::stats::StoreStats;
pub(crate) mod codec;
mod memory;
pub(crate) mod redb_store;
pub(crate) mod redis_store;

pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use redis_store::RedisStore;

/// A storage failure. The relay answers `store_unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory's database is open in another process (or another
    /// relay in this one).
    #[error("the database at {path} is in use by another process (is a relay running on it?)")]
    Locked {
        /// The database file.
        path: String,
    },
    /// There is no database where one was expected.
    #[error("no relay database at {path}")]
    Missing {
        /// The expected database file.
        path: String,
    },
    /// The backend failed.
    #[error("storage backend failed during {op}: {detail}")]
    Backend {
        /// What the store was doing.
        op: &'static str,
        /// The backend's explanation.
        detail: String,
    },
    /// A stored record did not have the expected layout.
    #[error("corrupt record in {table}")]
    Corrupt {
        /// Which table.
        table: &'static str,
    },
    /// The store was shut down.
    #[error("store is closed")]
    Closed,
    /// The shared store (Redis) could not be reached.
    #[error("cannot reach Redis at {target}: {detail}")]
    Unreachable {
        /// The Redis URL, without credentials.
        target: String,
        /// Why.
        detail: String,
    },
}

/// What a user has published (everything but the one-time prekeys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    /// X25519 identity key.
    pub identity_dh: PublicKeyBytes,
    /// Its signature by the identity key.
    pub identity_dh_sig: SignatureBytes,
    /// The current signed prekey.
    pub signed_prekey: SignedPrekey,
}

/// Result of [`Store::register_or_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The key matches (or was just registered).
    Ok {
        /// The id was unknown and is now registered to the key.
        registered: bool,
        /// One-time prekeys stored.
        one_time_prekeys: u32,
        /// A signed prekey bundle is published.
        has_keys: bool,
        /// Id of the newest envelope in the mailbox, 0 if it is empty.
        last_queued: u64,
    },
    /// The id is registered to another key.
    KeyMismatch,
}

/// Result of [`Store::publish_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Stored; the user now has this many one-time prekeys.
    Published {
        /// One-time prekeys stored after the upload.
        one_time_prekeys: u32,
    },
    /// The upload would leave more than `max` one-time prekeys stored;
    /// nothing was changed.
    TooManyPrekeys {
        /// How many would have been stored.
        would_store: usize,
        /// The cap.
        max: usize,
    },
    /// The user is not registered (e.g. reset meanwhile).
    UnknownUser,
}

/// A bundle popped by [`Store::fetch_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBundle {
    /// The registered identity key.
    pub identity_key: PublicKeyBytes,
    /// The published keys.
    pub keys: PublishedKeys,
    /// A one-time prekey, now deleted from the store.
    pub one_time_prekey: Option<OneTimePrekey>,
    /// One-time prekeys left after this fetch.
    pub remaining: u32,
}

/// An envelope to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvelope {
    /// Authenticated sender.
    pub from: UserId,
    /// Unix ms at acceptance.
    pub accepted_at: u64,
    /// Opaque body.
    pub body: Body,
}

/// An envelope in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Id in the recipient's mailbox.
    pub id: u64,
    /// Authenticated sender.
    pub from: UserId,
    /// Unix ms at acceptance.
    pub accepted_at: u64,
    /// Opaque body.
    pub body: Body,
}

/// Mailbox bounds applied by [`Store::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Most envelopes waiting.
    pub max_envelopes: u64,
    /// Most body bytes waiting.
    pub max_bytes: u64,
}

/// Result of [`Store::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Durably appended.
    Appended(StoredEnvelope),
    /// The recipient's mailbox is full; nothing stored.
    MailboxFull,
    /// No such recipient.
    UnknownUser,
}

/// Result of [`Store::put_device_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceListOutcome {
    /// Stored: it is the account's list now.
    Stored,
    /// Not stored: the stored list's version is at least the new one's.
    Stale(SignedDeviceList),
}

/// What one asker may see of one subject: `None` when not visible (not
/// allowed, or no such user), else `Some(last_seen_ms)`.
pub type Visibility = Option<Option<u64>>;

/// A relay's storage. Every method is async-capable; implementations must be
/// cheap to share (`&self`) across connection tasks.
pub trait Store: Send + Sync + 'static {
    /// The relay id persisted with this store (generated on first use).
    fn relay_id(&self) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Registers `user` to `key` if unknown; otherwise checks the key.
    fn register_or_authenticate(
        &self,
        user: &UserId,
        key: &PublicKeyBytes,
    ) -> impl Future<Output = Result<AuthOutcome, StoreError>> + Send;

    /// Replaces the published keys and adds one-time prekeys (an existing id
    /// is replaced), refusing the whole upload if more than `max_stored`
    /// one-time prekeys would be stored.
    fn publish_keys(
        &self,
        user: &UserId,
        keys: PublishedKeys,
        one_time_prekeys: Vec<OneTimePrekey>,
        max_stored: usize,
    ) -> impl Future<Output = Result<PublishOutcome, StoreError>> + Send;

    /// The user's bundle with at most one one-time prekey, removed atomically
    /// (lowest id first). `None` for an unknown user or one without keys.
    fn fetch_bundle(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<FetchedBundle>, StoreError>> + Send;

    /// The user's registered identity key and published keys, without
    /// touching one-time prekeys (the `lookup` request). `None` for an
    /// unknown user or one without keys.
    fn lookup_identity(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<(PublicKeyBytes, PublishedKeys)>, StoreError>> + Send;

    /// The identity key `user` is registered to (its account key), `None`
    /// for an unknown user.
    fn identity_key(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<PublicKeyBytes>, StoreError>> + Send;

    /// `user`'s signed device list, `None` if it never published one.
    fn device_list(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<SignedDeviceList>, StoreError>> + Send;

    /// Stores `list` as `user`'s device list if its version is above the
    /// stored one's (any version when none is stored), atomically with that
    /// comparison. The caller has checked the signature.
    fn put_device_list(
        &self,
        user: &UserId,
        list: SignedDeviceList,
    ) -> impl Future<Output = Result<DeviceListOutcome, StoreError>> + Send;

    /// Whether `user` is registered.
    fn user_exists(&self, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Appends to `to`'s mailbox, assigning the next id.
    ///
    /// The append is *submitted when this method is called*, not when the
    /// future is first polled, and the future borrows nothing (`'static`):
    /// a connection keeps several sends in flight, and two appends called in
    /// order are applied in that order.
    fn append(
        &self,
        to: &UserId,
        envelope: NewEnvelope,
        limits: MailboxLimits,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send + 'static;

    /// Up to `limit` envelopes of `user`'s mailbox with id > `after_id`, in
    /// id order.
    fn mailbox_after(
        &self,
        user: &UserId,
        after_id: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send;

    /// Deletes these ids from `user`'s own mailbox; ids not there are
    /// ignored. Returns how many were deleted.
    fn ack(
        &self,
        user: &UserId,
        ids: Vec<u64>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes the user, its keys, mailbox and id counter. Returns whether
    /// the user existed.
    fn reset_user(&self, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes envelopes accepted before `cutoff_ms` (Unix ms). Returns how
    /// many.
    fn sweep_expired(&self, cutoff_ms: u64)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts for monitoring.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send;

    /// Replaces `user`'s presence allow list with `allowed` (already free of
    /// duplicates). Does nothing for an unknown user.
    fn set_presence_allow(
        &self,
        user: &UserId,
        allowed: Vec<UserId>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `user`'s presence allow list, sorted (empty for an unknown user).
    fn presence_allow_list(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Vec<UserId>, StoreError>> + Send;

    /// Records `user`'s last disconnect (Unix ms). Does nothing for an
    /// unknown user.
    fn set_last_seen(
        &self,
        user: &UserId,
        at_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What `asker` may see of each of `subjects` (same order). A subject
    /// is visible to itself and to the ids on its allow list; an unknown
    /// subject is simply not visible, by the same code path.
    fn presence_view(
        &self,
        asker: &UserId,
        subjects: &[UserId],
    ) -> impl Future<Output = Result<Vec<Visibility>, StoreError>> + Send;

    /// Which of `askers` may see `subject` (same order), and the subject's
    /// last-seen time: the batch the presence fan-out needs for one change.
    fn presence_watchers(
        &self,
        subject: &UserId,
        askers: &[UserId],
    ) -> impl Future<Output = Result<(Vec<bool>, Option<u64>), StoreError>> + Send;
}

/// 16 bytes from the OS RNG: the default source of the random ids.
pub(crate) fn os_random_id() -> Result<[u8; 16], StoreError> {
    crate::random::os_bytes::<16>().map_err(|e| StoreError::Backend {
        op: "relay id",
        detail: e.to_string(),
    })
}

/// A relay (or node) id as text: its 16 bytes in lower-case hex.
pub(crate) fn relay_id_text(bytes: [u8; 16]) -> String {
    hex::encode(bytes)
}

/// A fresh random relay id: 16 bytes from the OS RNG, hex.
pub(crate) fn random_relay_id() -> Result<String, StoreError> {
    os_random_id().map(relay_id_text)
}
