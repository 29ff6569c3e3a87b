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

use std::collections::VecDeque;

use hush_protocol::frame::{Envelope, OneTimePrekey, PublishKeys, SignedPrekey};
use hush_protocol::{PublicKeyBytes, SignatureBytes, UserId};
use rand_core::CryptoRng;
use tracing::{debug, warn};

use super::profile::{identity_of, keys_of};
use super::session_cache::SessionCache;
use super::{ClientError, Event, IncomingMessage, Profile};
use crate::identity::IdentityPublic;
use crate::limits::{
    MAX_EPHEMERAL_GAP, MAX_MESSAGE_REQUESTS, MAX_ONE_TIME_PREKEYS_PER_WINDOW, MAX_UNCONFIRMED_KEYS,
    ONE_TIME_PREKEY_REFILL_WINDOW_MS,
};
use crate::message::Message;
use crate::payload::{MessageId, Payload, PayloadBody, ReceiptKind, TypingState};
use crate::peer_sessions::PeerSessions;
use crate::prekey::{OneTimePrekeyPublic, PrekeyBundle, SignedPrekeyPublic};
use crate::ratchet::DecryptError;
use crate::store::{Batch, Contact, DeliveryStatus, HistoryEntry, MessageFlags};

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

/// Client state behind the async [`Client`](super::Client).
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
                .map(|id| MessageId::from(*id))
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
        contact
            .pending_receipts
            .retain(|id| !sent.contains(&MessageId::from(*id)));
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
        Ok(Some(PublishKeys {
            rid,
            identity_dh: PublicKeyBytes(identity.dh_pub),
            identity_dh_sig: SignatureBytes(identity.dh_sig),
            signed_prekey: SignedPrekey {
                id: spk.id,
                key: PublicKeyBytes(spk.public),
                signature: SignatureBytes(spk.signature),
            },
            one_time_prekeys: new_one_time
                .iter()
                .map(|k| OneTimePrekey {
                    id: k.id,
                    key: PublicKeyBytes(k.public),
                })
                .collect(),
        }))
    }

    /// One-time prekeys that may still be generated in the current window.
    fn refill_budget(&mut self, now_ms: u64) -> usize {
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

    /// Whether a message to `to` can be encrypted now. `Ok(false)` means a
    /// prekey bundle must be fetched first ([`Engine::start_session`]): there
    /// is no session under the pinned identity, or so many message keys went
    /// unconfirmed in it ([`MAX_UNCONFIRMED_KEYS`]) that a stored message
    /// must go in a new session for the peer to be sure to read it.
    /// Refuses while `to`'s identity key changed and was not re-trusted, and
    /// for a blocked user.
    pub fn ready_to_send(&mut self, to: &UserId, ephemeral: bool) -> Result<bool, ClientError> {
        let contact = self.profile.store.contact(to.as_str())?;
        let Some(contact) = contact else {
            return Ok(false);
        };
        if contact.blocked {
            return Err(ClientError::Blocked { user: to.clone() });
        }
        if contact.has_pending_key_change() {
            return Err(ClientError::IdentityChanged { user: to.clone() });
        }
        if !ephemeral && contact.unconfirmed_keys() >= u64::from(MAX_UNCONFIRMED_KEYS) {
            debug!(to = %to, unconfirmed = contact.unconfirmed_keys(), "starting a new session");
            return Ok(false);
        }
        let sessions = self.sessions_for(to)?;
        Ok(sessions
            .peer_identity()
            .is_some_and(|id| keys_of(id) == contact.keys))
    }

    /// Checks an identity the relay's directory currently lists for `to`
    /// against the pinned one. A difference is recorded as a pending key
    /// change and reported as [`ClientError::IdentityChanged`].
    pub fn check_directory_identity(
        &mut self,
        to: &UserId,
        listed: &IdentityPublic,
        now_ms: u64,
    ) -> Result<(), ClientError> {
        listed.verify()?;
        let Some(mut contact) = self.profile.store.contact(to.as_str())? else {
            return Ok(());
        };
        if contact.record_key_change(keys_of(listed), now_ms) {
            let mut batch = Batch::new();
            batch.put_contact(contact);
            self.profile.store.commit(batch)?;
            return Err(ClientError::IdentityChanged { user: to.clone() });
        }
        Ok(())
    }

    /// Starts a session with `to` from its bundle: the identity in it is
    /// pinned on first use, or must equal the pinned one. The unconfirmed
    /// key count starts over: the new session's first message is one the
    /// peer can always read.
    pub fn start_session(
        &mut self,
        to: &UserId,
        bundle: &PrekeyBundle,
        now_ms: u64,
    ) -> Result<(), ClientError> {
        let presented = keys_of(&bundle.identity);
        let mut contact = match self.profile.store.contact(to.as_str())? {
            None => Contact::pinned(to.as_str(), presented, now_ms),
            Some(mut c) => {
                if c.record_key_change(presented, now_ms) {
                    let mut batch = Batch::new();
                    batch.put_contact(c);
                    self.profile.store.commit(batch)?;
                    return Err(ClientError::IdentityChanged { user: to.clone() });
                }
                c
            }
        };
        contact.keys_confirmed = contact.keys_used;
        let mut sessions = self.load_sessions(to)?;
        sessions.initiate(&mut self.rng, &self.profile.identity, bundle)?;
        let mut batch = Batch::new();
        batch
            .put_contact(contact)
            .put_session(to.as_str(), sessions.pickle());
        self.profile.store.commit(batch)?;
        self.sessions.insert(to.clone(), sessions);
        Ok(())
    }

    /// Encrypts `body` for `to` and commits the advanced ratchet with the
    /// contact's count of message keys used. An ephemeral payload is refused
    /// with [`ClientError::TypingPaused`] once [`MAX_EPHEMERAL_GAP`] keys
    /// went unconfirmed (see `client/typing.rs`); only a stored payload the
    /// relay accepted confirms keys ([`Engine::confirm_stored`]).
    pub fn encrypt(
        &mut self,
        to: &UserId,
        body: PayloadBody,
        ephemeral: bool,
        now_ms: u64,
    ) -> Result<Outgoing, ClientError> {
        let mut contact = self
            .profile
            .store
            .contact(to.as_str())?
            .ok_or_else(|| ClientError::UnknownContact { user: to.clone() })?;
        if ephemeral && contact.unconfirmed_keys() >= u64::from(MAX_EPHEMERAL_GAP) {
            return Err(ClientError::TypingPaused { user: to.clone() });
        }
        contact.keys_used = contact.keys_used.saturating_add(1);
        let key_index = contact.keys_used;
        let payload = Payload {
            id: MessageId::random(&mut self.rng),
            sent_at_ms: now_ms,
            body,
        };
        let plaintext = payload.encode()?;
        let mut sessions = self.load_sessions(to)?;
        let ciphertext = sessions.encrypt(&mut self.rng, &plaintext)?;
        let mut batch = Batch::new();
        batch
            .put_session(to.as_str(), sessions.pickle())
            .put_contact(contact);
        self.profile.store.commit(batch)?;
        self.sessions.insert(to.clone(), sessions);
        Ok(Outgoing {
            ciphertext,
            payload,
            key_index,
        })
    }

    /// The relay accepted (stored) a payload that used message key
    /// `key_index`: keys up to it are no gap the peer must skip.
    pub fn confirm_stored(&mut self, to: &UserId, key_index: u64) -> Result<(), ClientError> {
        let Some(mut contact) = self.profile.store.contact(to.as_str())? else {
            return Ok(());
        };
        if confirm(&mut contact, key_index) {
            let mut batch = Batch::new();
            batch.put_contact(contact);
            self.profile.store.commit(batch)?;
        }
        Ok(())
    }

    /// Records a text message the relay accepted (it used message key
    /// `key_index`). Writing to a message request answers it: the request
    /// becomes a contact.
    pub fn record_sent(
        &mut self,
        to: &UserId,
        payload: &Payload,
        key_index: u64,
    ) -> Result<(), ClientError> {
        let PayloadBody::Text { text } = &payload.body else {
            return self.confirm_stored(to, key_index);
        };
        let mut batch = Batch::new();
        batch.append_message(
            to.as_str(),
            HistoryEntry::outgoing(payload.id.into(), text.clone(), payload.sent_at_ms),
        );
        if let Some(mut contact) = self.profile.store.contact(to.as_str())? {
            contact.last_activity_ms = payload.sent_at_ms;
            contact.request = false;
            confirm(&mut contact, key_index);
            batch.put_contact(contact);
        }
        self.profile.store.commit(batch)?;
        Ok(())
    }

    /// Decrypts, records and turns one envelope into events.
    ///
    /// Attribution: a message is shown as from the contact only when the
    /// session that decrypted it is under the pinned identity. Anything
    /// else (a new key not yet trusted, a rejected key) becomes
    /// [`Event::UnconfirmedMessage`] for a text, and is dropped for a receipt
    /// or a typing indicator. A first message from a stranger makes a
    /// message request; everything from a blocked user is dropped unread.
    pub fn process(&mut self, envelope: &Envelope, now_ms: u64) -> Result<Processed, ClientError> {
        let mut out = Processed {
            ack: envelope.id,
            ..Processed::default()
        };
        if let Some(id) = envelope.id
            && self.profile.store.is_processed(id)?
        {
            debug!(envelope = id, "dropping an envelope processed before");
            return Ok(out);
        }
        let from = envelope.from.clone();
        let mut contact = self.profile.store.contact(from.as_str())?;
        if contact.as_ref().is_some_and(|c| c.blocked) {
            debug!(from = %from, "dropping an envelope from a blocked user");
            return self.mark_only(out, envelope.id);
        }
        let body = envelope.body.0.as_slice();
        let message = match Message::decode(body) {
            Ok(m) => m,
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };

        // A prekey message names the sender's identity: check it against the
        // pinned one before anything is committed.
        let mut contact_changed = false;
        let mut key_changed_now = false;
        let mut new_request = false;
        if let Some(initiator) = message.initiator() {
            let presented = keys_of(&initiator);
            match &mut contact {
                None => {
                    contact = Some(Contact::request(from.as_str(), presented, now_ms));
                    contact_changed = true;
                    new_request = true;
                }
                Some(c) => {
                    let known = c.is_rejected(&presented)
                        || c.key_change.is_some_and(|k| k.new_keys == presented);
                    if c.record_key_change(presented, now_ms) && !known {
                        contact_changed = true;
                        // Reported once, and only once the message
                        // authenticates: a forged or corrupted prekey message
                        // must not let anyone raise the alarm at will.
                        key_changed_now = true;
                    }
                }
            }
        }
        let mut flags = MessageFlags::default();
        if let Some(c) = &contact {
            flags.identity_unverified = !c.verified;
            flags.from_changed_key = c.has_pending_key_change();
            flags.request = c.request;
        }
        let pinned = contact.as_ref().map(|c| identity_of(&c.keys));

        let mut sessions = self.load_sessions(&from)?;
        let current_before = sessions.current().map(|s| *s.base_key());
        // Only a prekey message touches the prekey secrets; it works on a copy
        // that replaces ours after the commit.
        let mut prekeys_copy = if message.initiator().is_some() {
            Some(PrekeyStoreTxn::begin(&self.profile)?)
        } else {
            None
        };
        let prekeys = match &mut prekeys_copy {
            Some(copy) => &mut copy.0,
            None => &mut self.profile.prekeys,
        };
        let decrypted = match sessions.decrypt_attributed(
            &self.profile.identity,
            prekeys,
            now_ms,
            body,
            pinned.as_ref(),
        ) {
            Ok(d) => d,
            Err(DecryptError::Duplicate { .. }) => {
                debug!(from = %from, "dropping a duplicate message");
                return self.mark_only(out, envelope.id);
            }
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };
        let payload = match Payload::decode(&decrypted.plaintext) {
            Ok(p) => p,
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };
        if key_changed_now {
            out.events
                .push(Event::IdentityChanged { user: from.clone() });
        }
        let sender_keys = keys_of(&decrypted.identity);
        // Never attributed to the contact unless under the pinned identity.
        let unconfirmed = contact.as_ref().is_none_or(|c| c.keys != sender_keys);
        if let Some(c) = &mut contact
            && sessions.current().map(|s| *s.base_key()) != current_before
        {
            // The peer started a new session and it became current: our
            // next messages go in it, with nothing unconfirmed yet.
            c.keys_confirmed = c.keys_used;
            contact_changed = true;
        }

        let mut batch = Batch::new();
        if new_request {
            self.evict_oldest_request(&from, &mut batch)?;
        }
        batch.put_session(from.as_str(), sessions.pickle());
        if let Some(copy) = &prekeys_copy {
            batch.put_prekeys(copy.0.pickle());
        }
        if let Some(id) = envelope.id {
            batch.mark_processed(id);
        }
        // A second text under an id already stored (a peer bug, or a payload
        // replayed inside a new message) advances the session but is not
        // stored or shown twice.
        let seen_before = matches!(payload.body, PayloadBody::Text { .. })
            && self
                .profile
                .store
                .message(from.as_str(), payload.id.into())?
                .is_some();
        match &payload.body {
            PayloadBody::Text { .. } if seen_before => {
                debug!(from = %from, "text with an id already stored; not shown again");
            }
            PayloadBody::Text { text } if unconfirmed => {
                let mut entry = HistoryEntry::incoming(
                    payload.id.into(),
                    text.clone(),
                    payload.sent_at_ms,
                    now_ms,
                );
                entry.flags = flags;
                entry.unconfirmed_key = Some(sender_keys);
                batch.append_message(from.as_str(), entry);
                let rejected = contact
                    .as_ref()
                    .is_some_and(|c| c.is_rejected(&sender_keys));
                out.events.push(Event::UnconfirmedMessage {
                    message: IncomingMessage {
                        from: from.clone(),
                        id: payload.id,
                        text: text.clone(),
                        sent_at_ms: payload.sent_at_ms,
                        accepted_at_ms: envelope.accepted_at,
                        envelope_id: envelope.id,
                        flags,
                    },
                    fingerprint: crate::trust::fingerprint_hex(&decrypted.identity),
                    rejected,
                });
            }
            PayloadBody::Receipt { .. } | PayloadBody::Typing { .. } if unconfirmed => {
                debug!(from = %from, "dropping a receipt or typing indicator under an unconfirmed key");
            }
            PayloadBody::Text { text } => {
                let mut entry = HistoryEntry::incoming(
                    payload.id.into(),
                    text.clone(),
                    payload.sent_at_ms,
                    now_ms,
                );
                entry.flags = flags;
                batch.append_message(from.as_str(), entry);
                if let Some(c) = &mut contact {
                    c.last_activity_ms = now_ms;
                    // Confirmed to the sender once the relay accepted our
                    // receipt; not for a key we have not trusted.
                    if !flags.from_changed_key && self.record_receipts {
                        c.pending_receipts.push(payload.id.into());
                        let excess = c
                            .pending_receipts
                            .len()
                            .saturating_sub(MAX_PENDING_RECEIPTS);
                        c.pending_receipts.drain(..excess);
                    }
                    contact_changed = true;
                }
                out.events.push(Event::Message(IncomingMessage {
                    from: from.clone(),
                    id: payload.id,
                    text: text.clone(),
                    sent_at_ms: payload.sent_at_ms,
                    accepted_at_ms: envelope.accepted_at,
                    envelope_id: envelope.id,
                    flags,
                }));
            }
            PayloadBody::Receipt { kind, message_ids } => {
                let status = match kind {
                    ReceiptKind::Delivered => DeliveryStatus::Delivered,
                    ReceiptKind::Read => DeliveryStatus::Read,
                };
                for id in message_ids {
                    batch.update_status(from.as_str(), (*id).into(), status);
                }
                out.events.push(Event::Receipt {
                    from: from.clone(),
                    kind: *kind,
                    message_ids: message_ids.clone(),
                });
            }
            PayloadBody::Typing { state } => out.events.push(Event::Typing {
                from: from.clone(),
                state: *state,
            }),
        }
        if contact_changed && let Some(c) = contact {
            batch.put_contact(c);
        }
        self.profile.store.commit(batch)?;
        self.sessions.insert(from, sessions);
        if let Some(copy) = prekeys_copy {
            self.profile.prekeys = copy.0;
        }
        Ok(out)
    }

    /// Makes room for a new message request from `newcomer`: with
    /// [`MAX_MESSAGE_REQUESTS`] already held, the one with the oldest
    /// activity is forgotten (contact, sessions, history) in `batch`.
    fn evict_oldest_request(
        &mut self,
        newcomer: &UserId,
        batch: &mut Batch,
    ) -> Result<(), ClientError> {
        let requests: Vec<Contact> = self
            .profile
            .store
            .contacts()?
            .into_iter()
            .filter(|c| c.request && c.user_id != newcomer.as_str())
            .collect();
        if requests.len() < MAX_MESSAGE_REQUESTS {
            return Ok(());
        }
        if let Some(oldest) = requests.iter().min_by_key(|c| c.last_activity_ms) {
            debug!(user = %oldest.user_id, "evicting the oldest message request");
            batch.forget_peer(&oldest.user_id);
            if let Ok(user) = UserId::try_from(oldest.user_id.as_str()) {
                self.sessions.remove(&user);
            }
        }
        Ok(())
    }

    /// A receipt payload body for `ids`.
    pub fn receipt(kind: ReceiptKind, ids: Vec<MessageId>) -> PayloadBody {
        PayloadBody::Receipt {
            kind,
            message_ids: ids,
        }
    }

    /// A typing payload body.
    pub fn typing(state: TypingState) -> PayloadBody {
        PayloadBody::Typing { state }
    }

    fn mark_only(&mut self, out: Processed, id: Option<u64>) -> Result<Processed, ClientError> {
        if let Some(id) = id {
            let mut batch = Batch::new();
            batch.mark_processed(id);
            self.profile.store.commit(batch)?;
        }
        Ok(out)
    }

    /// An envelope that cannot be read is acknowledged (so the relay does not
    /// push it forever) and reported, never shown as a message.
    fn reject(
        &mut self,
        mut out: Processed,
        from: &UserId,
        id: Option<u64>,
        reason: String,
    ) -> Result<Processed, ClientError> {
        warn!(from = %from, envelope = ?id, %reason, "undecryptable envelope");
        out.events.push(Event::Undecryptable {
            from: from.clone(),
            envelope_id: id,
            reason,
        });
        self.mark_only(out, id)
    }

    /// The sessions with `peer`: cached, else from the store, else empty.
    fn sessions_for(&mut self, peer: &UserId) -> Result<&PeerSessions, ClientError> {
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
    fn load_sessions(&mut self, peer: &UserId) -> Result<PeerSessions, ClientError> {
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
fn confirm(contact: &mut Contact, key_index: u64) -> bool {
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
struct PrekeyStoreTxn(crate::prekey::PrekeyStore);

impl PrekeyStoreTxn {
    fn begin(profile: &Profile) -> Result<Self, ClientError> {
        Ok(Self(crate::prekey::PrekeyStore::unpickle(
            &profile.prekeys.pickle(),
        )?))
    }
}

/// Converts a relay `bundle` frame into the crypto type.
pub(crate) fn bundle_from_frame(b: &hush_protocol::frame::Bundle) -> PrekeyBundle {
    PrekeyBundle {
        identity: IdentityPublic {
            sig_pub: b.identity_key.0,
            dh_pub: b.identity_dh.0,
            dh_sig: b.identity_dh_sig.0,
        },
        signed_prekey: SignedPrekeyPublic {
            id: b.signed_prekey.id,
            public: b.signed_prekey.key.0,
            signature: b.signed_prekey.signature.0,
        },
        one_time_prekey: b.one_time_prekey.as_ref().map(|k| OneTimePrekeyPublic {
            id: k.id,
            public: k.key.0,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use hush_protocol::Body;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::limits::MAX_SKIP;

    const NOW: u64 = 1_700_000_000_000;

    fn uid(s: &str) -> UserId {
        UserId::try_from(s).unwrap()
    }

    fn engine(name: &str, seed: u64) -> Engine {
        let mut rng = StdRng::seed_from_u64(seed);
        let profile =
            Profile::create_in_memory(&uid(name), "ws://127.0.0.1:1", &mut rng, NOW).unwrap();
        Engine::new(profile, Box::new(StdRng::seed_from_u64(seed + 100)))
    }

    fn envelope(id: u64, from: &str, ciphertext: Vec<u8>) -> Envelope {
        Envelope {
            id: Some(id),
            from: uid(from),
            accepted_at: NOW,
            body: Body(ciphertext),
            ephemeral: false,
        }
    }

    fn bundle_of(peer: &Engine) -> PrekeyBundle {
        PrekeyBundle {
            identity: peer.profile.identity(),
            signed_prekey: peer.profile.prekeys.signed_prekey(),
            one_time_prekey: None,
        }
    }

    /// `got` is exactly one message, with `text`.
    fn assert_one_text(got: &Processed, text: &str) {
        assert!(
            matches!(got.events.as_slice(), [Event::Message(m)] if m.text == text),
            "{:?}",
            got.events
        );
    }

    fn text(t: &str) -> PayloadBody {
        PayloadBody::Text { text: t.into() }
    }

    #[test]
    fn typing_pauses_at_the_ephemeral_gap_and_the_peer_still_reads_what_follows() {
        let (mut alice, mut bob) = (engine("alice", 1), engine("bob", 2));
        let to_bob = uid("bob");
        alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
        let first = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
        let got = bob
            .process(&envelope(1, "alice", first.ciphertext), NOW)
            .unwrap();
        assert!(matches!(got.events.as_slice(), [Event::Message(_)]));
        // The relay accepted (stored) it.
        alice.confirm_stored(&to_bob, first.key_index).unwrap();

        // Every indicator is dropped by the relay (bob is offline).
        for _ in 0..MAX_EPHEMERAL_GAP {
            alice
                .encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW)
                .unwrap();
        }
        let paused = alice.encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW);
        assert!(
            matches!(paused, Err(ClientError::TypingPaused { .. })),
            "{paused:?}"
        );
        // The count is in the profile, not only in memory.
        let stored = alice.profile.contact(&to_bob).unwrap().unwrap();
        assert_eq!(stored.unconfirmed_keys(), u64::from(MAX_EPHEMERAL_GAP));

        // The next message makes bob skip every dropped key, within bounds.
        let next = alice.encrypt(&to_bob, text("after"), false, NOW).unwrap();
        let got = bob
            .process(&envelope(2, "alice", next.ciphertext), NOW)
            .unwrap();
        assert_one_text(&got, "after");
        // Encrypting alone resumes nothing: only the relay's `accepted` does.
        let still = alice.encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW);
        assert!(matches!(still, Err(ClientError::TypingPaused { .. })));
        alice.confirm_stored(&to_bob, next.key_index).unwrap();
        assert_eq!(
            alice
                .profile
                .contact(&to_bob)
                .unwrap()
                .unwrap()
                .unconfirmed_keys(),
            0
        );
        alice
            .encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW)
            .unwrap();
    }

    /// Sends refused by the relay (mailbox full, rate limited) use up chain
    /// keys. However many fail, the next accepted message decrypts: before
    /// the gap could pass the receiver's skip limit, a new session starts.
    #[test]
    fn many_unconfirmed_sends_never_push_the_receiver_past_its_skip_limit() {
        let (mut alice, mut bob) = (engine("alice", 3), engine("bob", 4));
        let to_bob = uid("bob");
        assert!(!alice.ready_to_send(&to_bob, false).unwrap());
        alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
        let first = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
        bob.process(&envelope(1, "alice", first.ciphertext), NOW)
            .unwrap();
        alice.confirm_stored(&to_bob, first.key_index).unwrap();

        // 1,001 sends the relay refused: each encrypted, none stored.
        let mut new_sessions = 0;
        for _ in 0..=MAX_SKIP {
            if !alice.ready_to_send(&to_bob, false).unwrap() {
                alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
                new_sessions += 1;
            }
            alice.encrypt(&to_bob, text("refused"), false, NOW).unwrap();
        }
        assert_eq!(
            new_sessions, 1,
            "one new session per {MAX_UNCONFIRMED_KEYS} keys"
        );

        if !alice.ready_to_send(&to_bob, false).unwrap() {
            alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
        }
        let last = alice
            .encrypt(&to_bob, text("accepted"), false, NOW)
            .unwrap();
        let got = bob
            .process(&envelope(2, "alice", last.ciphertext), NOW)
            .unwrap();
        assert_one_text(&got, "accepted");
    }

    /// A relay (or anyone) that completes X3DH with its own identity under
    /// a pinned contact's user id gets nothing shown as from the contact,
    /// and does not replace the session the contact's messages use.
    #[test]
    fn a_prekey_message_under_an_unpinned_identity_is_not_the_contact() {
        let (mut alice, mut bob) = (engine("alice", 5), engine("bob", 6));
        let mut mallory = engine("bob", 7);
        let to_bob = uid("bob");
        let to_alice = uid("alice");
        alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
        let m = alice.encrypt(&to_bob, text("hi bob"), false, NOW).unwrap();
        bob.process(&envelope(1, "alice", m.ciphertext), NOW)
            .unwrap();
        let r = bob
            .encrypt(&to_alice, text("hi alice"), false, NOW)
            .unwrap();
        alice
            .process(&envelope(1, "bob", r.ciphertext), NOW)
            .unwrap();

        // Mallory, as "bob", with her own keys.
        mallory
            .start_session(&to_alice, &bundle_of(&alice), NOW)
            .unwrap();
        let forged = mallory
            .encrypt(&to_alice, text("send me your passphrase"), false, NOW)
            .unwrap();
        let got = alice
            .process(&envelope(2, "bob", forged.ciphertext), NOW)
            .unwrap();
        assert!(
            got.events.iter().all(|e| !matches!(e, Event::Message(_))),
            "{:?}",
            got.events
        );
        assert!(got.events.iter().any(|e| matches!(
            e,
            Event::UnconfirmedMessage { message, rejected: false, .. }
                if message.text == "send me your passphrase"
        )));
        assert!(
            got.events
                .iter()
                .any(|e| matches!(e, Event::IdentityChanged { .. }))
        );
        // Her receipts and typing are dropped.
        let receipt = mallory
            .encrypt(
                &to_alice,
                Engine::receipt(ReceiptKind::Read, vec![m.payload.id]),
                false,
                NOW,
            )
            .unwrap();
        let got = alice
            .process(&envelope(3, "bob", receipt.ciphertext), NOW)
            .unwrap();
        assert!(got.events.is_empty(), "{:?}", got.events);

        // Bob's session is still current: his next message is his.
        let r2 = bob
            .encrypt(&to_alice, text("still me"), false, NOW)
            .unwrap();
        let got = alice
            .process(&envelope(4, "bob", r2.ciphertext), NOW)
            .unwrap();
        assert_one_text(&got, "still me");
        let current = alice
            .sessions_for(&to_bob)
            .unwrap()
            .peer_identity()
            .copied();
        assert_eq!(
            current.map(|i| keys_of(&i)),
            Some(keys_of(&bob.profile.identity()))
        );
    }

    #[test]
    fn a_blocked_user_is_dropped_unread_and_cannot_be_written_to() {
        let (mut alice, mut bob) = (engine("alice", 8), engine("bob", 9));
        let (to_bob, to_alice) = (uid("bob"), uid("alice"));
        alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
        let m = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
        let got = bob
            .process(&envelope(1, "alice", m.ciphertext), NOW)
            .unwrap();
        // A stranger's first message is a request.
        assert!(matches!(got.events.as_slice(), [Event::Message(m)] if m.flags.request));
        assert!(bob.profile.block(&to_alice).unwrap());
        assert!(
            bob.pending_receipts().unwrap().is_empty(),
            "no receipt to a blocked user"
        );
        let m2 = alice.encrypt(&to_bob, text("again"), false, NOW).unwrap();
        let got = bob
            .process(&envelope(2, "alice", m2.ciphertext), NOW)
            .unwrap();
        assert!(got.events.is_empty());
        assert_eq!(got.ack, Some(2), "acknowledged so the relay drops it");
        assert_eq!(bob.profile.history(&to_alice, None).unwrap().len(), 1);
        assert!(matches!(
            bob.ready_to_send(&to_alice, false),
            Err(ClientError::Blocked { .. })
        ));
    }

    #[test]
    fn strangers_hold_at_most_the_request_cap() {
        let mut alice = engine("alice", 10);
        let to_alice = uid("alice");
        for i in 0..=MAX_MESSAGE_REQUESTS {
            let name = format!("stranger{i}");
            let mut s = engine(&name, 100 + i as u64);
            s.start_session(&to_alice, &bundle_of(&alice), NOW).unwrap();
            let m = s.encrypt(&to_alice, text("hello"), false, NOW).unwrap();
            alice
                .process(&envelope(i as u64 + 1, &name, m.ciphertext), NOW + i as u64)
                .unwrap();
        }
        let contacts = alice.profile.contacts().unwrap();
        assert_eq!(contacts.len(), MAX_MESSAGE_REQUESTS);
        assert!(contacts.iter().all(|c| c.request));
        assert!(
            contacts.iter().all(|c| c.user_id != "stranger0"),
            "the oldest went"
        );
        assert!(
            alice
                .profile
                .history(&uid("stranger0"), None)
                .unwrap()
                .is_empty()
        );
        assert!(alice.profile.store.session("stranger0").unwrap().is_none());
    }
}
