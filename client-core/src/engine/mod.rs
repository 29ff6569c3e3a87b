//! The synchronous heart of a client: turns payloads into ciphertext and
//! envelopes into events, with every state change committed to the store
//! before anything leaves the process.
//!
//! Ordering rules that make "nothing lost, nothing shown twice" hold:
//! - Sending: the ratchet state that produced a ciphertext is committed
//!   before the ciphertext is handed to the relay, so a crash can never
//!   make the client reuse a message key.
//! - Receiving: the new session state, the consumed one-time prekey, the
//!   history entry, any contact change and the envelope id are committed in
//!   one batch, and only then is the envelope acknowledged to the relay. A
//!   crash before the commit leaves the envelope in the mailbox and the old
//!   state on disk, so it decrypts again; a crash after it is caught by the
//!   processed-envelope set and the ratchet's duplicate check.

mod inbound;
mod keys;
mod outbound;
mod session_cache;

use std::collections::VecDeque;

use hush_protocol::UserId;
use rand_core::CryptoRng;

use crate::error::ClientError;
use crate::events::Event;
use crate::payload::{MessageId, Payload};
use crate::peer_sessions::PeerSessions;
use crate::profile::Profile;
use crate::store::{Batch, Contact};
use session_cache::SessionCache;

/// Delivery receipts owed to one peer that are kept until sent; beyond it
/// the oldest are dropped (a receipt is a courtesy, not a guarantee).
pub(crate) const MAX_PENDING_RECEIPTS: usize = 1_000;

/// One-time prekeys the client keeps published on the relay.
pub(crate) const ONE_TIME_PREKEY_TARGET: u32 = 100;

/// What became of one envelope.
#[derive(Debug, Default)]
pub(crate) struct Processed {
    /// Envelope id to acknowledge (stored envelopes only).
    pub ack: Option<u64>,
    /// What the application is told.
    pub events: Vec<Event>,
}

/// A ciphertext ready for the relay, and what to record once it is accepted.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub ciphertext: Vec<u8>,
    pub payload: Payload,
    /// The contact's `keys_used` after this encryption: once the relay
    /// accepted a stored payload, [`Engine::confirm_stored`] with it.
    pub key_index: u64,
}

/// Client state behind the async `Client` (`client::Client`).
pub(crate) struct Engine {
    profile: Profile,
    /// Decoded sessions by peer, so a burst does not unpickle per message.
    /// Always equal to what the store holds after the last commit.
    sessions: SessionCache,
    rng: Box<dyn CryptoRng + Send>,
    /// Whether delivery receipts are owed for stored messages (off when
    /// the client sends none: nothing then accumulates in the contact).
    record_receipts: bool,
    /// One-time prekeys generated within the last refill window: (when,
    /// how many), oldest first. Bounds what a lying relay can make us
    /// generate ([`MAX_ONE_TIME_PREKEYS_PER_WINDOW`]).
    refills: VecDeque<(u64, usize)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.profile)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(profile: Profile, rng: Box<dyn CryptoRng + Send>) -> Self {
        Self {
            profile,
            sessions: SessionCache::default(),
            rng,
            record_receipts: true,
            refills: VecDeque::new(),
        }
    }

    /// Whether stored messages owe the sender a delivery receipt.
    pub fn set_record_receipts(&mut self, on: bool) {
        self.record_receipts = on;
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn profile_mut(&mut self) -> &mut Profile {
        &mut self.profile
    }

    pub fn user_id(&self) -> &UserId {
        &self.profile.user_id
    }

    /// Delivery receipts owed, by peer (at most
    /// [`MAX_RECEIPT_IDS`](crate::limits::MAX_RECEIPT_IDS) ids each, oldest first).
    pub fn pending_receipts(&self) -> Result<Vec<(UserId, Vec<MessageId>)>, ClientError> {
        let mut out = Vec::new();
        for c in self.profile.store.contacts()? {
            // No receipt to a blocked user or while a key is unconfirmed. (A
            // message request gets delivery receipts, like Signal's; read
            // receipts wait until the user answers or accepts it.)
            if c.pending_receipts.is_empty() || c.has_pending_key_change() || c.blocked {
                continue;
            }
            let Ok(peer) = UserId::try_from(c.user_id.as_str()) else {
                continue;
            };
            let ids = c
                .pending_receipts
                .iter()
                .take(crate::limits::MAX_RECEIPT_IDS)
                .copied()
                .collect();
            out.push((peer, ids));
        }
        Ok(out)
    }

    /// Forgets receipts the relay accepted (the receipt used message key
    /// `key_index`, now known to be stored).
    pub fn clear_receipts(
        &mut self,
        peer: &UserId,
        sent: &[MessageId],
        key_index: u64,
    ) -> Result<(), ClientError> {
        let Some(mut contact) = self.profile.store.contact(peer.as_str())? else {
            return Ok(());
        };
        let before = contact.pending_receipts.len();
        contact.pending_receipts.retain(|id| !sent.contains(id));
        let confirmed = confirm(&mut contact, key_index);
        if contact.pending_receipts.len() != before || confirmed {
            let mut batch = Batch::new();
            batch.put_contact(contact);
            self.profile.store.commit(batch)?;
        }
        Ok(())
    }

    /// The relay registered our user id anew: its mailbox (and its envelope
    /// ids) start over, so ids processed before mean nothing now.
    pub fn forget_processed(&mut self) -> Result<(), ClientError> {
        let mut batch = Batch::new();
        batch.forget_processed();
        self.profile.store.commit(batch)?;
        Ok(())
    }

    /// Whether relay envelope `id` was processed (on any connection).
    pub fn was_processed(&self, id: u64) -> Result<bool, ClientError> {
        Ok(self.profile.store.is_processed(id)?)
    }

    /// Ed25519 signature over `message` with our identity signing key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.profile.identity.sign(message)
    }

    pub fn identity_key(&self) -> [u8; 32] {
        self.profile.identity.public().sig_pub
    }

    /// The sessions with `peer`: cached, else from the store, else empty.
    pub(super) fn sessions_for(&mut self, peer: &UserId) -> Result<&PeerSessions, ClientError> {
        if !self.sessions.contains(peer) {
            let loaded = self.load_sessions(peer)?;
            self.sessions.insert(peer.clone(), loaded);
        }
        self.sessions
            .get(peer)
            .ok_or(ClientError::Internal("session cache lost an entry"))
    }

    /// Forgets the cached sessions (after the profile changed them behind
    /// the engine's back: trust, reject, block).
    pub fn invalidate_sessions(&mut self) {
        self.sessions.clear();
    }

    /// A working copy of the sessions with `peer`; the caller puts it back
    /// in the cache after its commit succeeds, so a failed operation leaves
    /// the cached state as the stored state.
    pub(super) fn load_sessions(&mut self, peer: &UserId) -> Result<PeerSessions, ClientError> {
        if let Some(cached) = self.sessions.get(peer) {
            // A copy: a failure between here and the caller's re-insert must
            // leave the cache equal to the stored state.
            return Ok(PeerSessions::unpickle(&cached.pickle())?);
        }
        match self.profile.store.session(peer.as_str())? {
            Some(blob) => Ok(PeerSessions::unpickle(&blob)?),
            None => Ok(PeerSessions::new(
                self.profile.user_id.as_str(),
                peer.as_str(),
            )),
        }
    }
}

/// Moves `contact`'s confirmed-key mark up to `key_index` (a stored payload
/// the relay accepted); returns whether it moved.
pub(super) fn confirm(contact: &mut Contact, key_index: u64) -> bool {
    if key_index > contact.keys_confirmed && key_index <= contact.keys_used {
        contact.keys_confirmed = key_index;
        true
    } else {
        false
    }
}

/// A working copy of the prekey secrets: decrypting a prekey message
/// consumes a one-time prekey, which must only become permanent with the
/// commit that stores the new session.
pub(super) struct PrekeyStoreTxn(crate::prekey::PrekeyStore);

impl PrekeyStoreTxn {
    pub(super) fn begin(profile: &Profile) -> Result<Self, ClientError> {
        Ok(Self(crate::prekey::PrekeyStore::unpickle(
            &profile.prekeys.pickle(),
        )?))
    }
}

#[cfg(test)]
mod tests;
