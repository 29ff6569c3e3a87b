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

use std::collections::HashMap;

use hush_protocol::frame::{Envelope, OneTimePrekey, PublishKeys, SignedPrekey};
use hush_protocol::{PublicKeyBytes, SignatureBytes, UserId};
use rand_core::CryptoRng;
use tracing::{debug, warn};

use super::profile::keys_of;
use super::{ClientError, Event, IncomingMessage, Profile};
use crate::identity::IdentityPublic;
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
}

/// Client state behind the async [`Client`](super::Client).
pub(crate) struct Engine {
    profile: Profile,
    /// Decoded sessions by peer, so a burst does not unpickle per message.
    /// Always equal to what the store holds after the last commit.
    sessions: HashMap<UserId, PeerSessions>,
    rng: Box<dyn CryptoRng + Send>,
    /// Whether delivery receipts are owed for stored messages (off when
    /// the client sends none: nothing then accumulates in the contact).
    record_receipts: bool,
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
            sessions: HashMap::new(),
            rng,
            record_receipts: true,
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
            if c.pending_receipts.is_empty() || c.has_pending_key_change() {
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

    /// Forgets receipts the relay accepted.
    pub fn clear_receipts(&mut self, peer: &UserId, sent: &[MessageId]) -> Result<(), ClientError> {
        let Some(mut contact) = self.profile.store.contact(peer.as_str())? else {
            return Ok(());
        };
        let before = contact.pending_receipts.len();
        contact
            .pending_receipts
            .retain(|id| !sent.contains(&MessageId::from(*id)));
        if contact.pending_receipts.len() != before {
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
    /// one-time prekeys to bring `published_one_time` back to the target.
    /// New secrets are committed before their public halves are returned.
    pub fn keys_to_publish(
        &mut self,
        rid: u64,
        has_keys: bool,
        published_one_time: u32,
        now_ms: u64,
    ) -> Result<Option<PublishKeys>, ClientError> {
        let rotate = self.profile.prekeys.needs_rotation(now_ms);
        let missing = ONE_TIME_PREKEY_TARGET.saturating_sub(published_one_time);
        let refill = missing >= ONE_TIME_PREKEY_TARGET / 5 || !has_keys;
        if has_keys && !rotate && !refill {
            return Ok(None);
        }
        let mut prekeys = PrekeyStoreTxn::begin(&self.profile)?;
        if rotate {
            prekeys
                .0
                .rotate_signed_prekey(&mut self.rng, &self.profile.identity, now_ms)?;
        }
        prekeys.0.expire_previous(now_ms);
        let new_one_time = if refill {
            prekeys
                .0
                .generate_one_time(&mut self.rng, usize::try_from(missing).unwrap_or(0))?
        } else {
            Vec::new()
        };
        let mut batch = Batch::new();
        batch.put_prekeys(prekeys.0.pickle());
        self.profile.store.commit(batch)?;
        self.profile.prekeys = prekeys.0;
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

    /// Whether a message to `to` can be encrypted now. `Ok(false)` means a
    /// prekey bundle must be fetched first ([`Engine::start_session`]).
    /// Refuses while `to`'s identity key changed and was not re-trusted.
    pub fn ready_to_send(&mut self, to: &UserId) -> Result<bool, ClientError> {
        let contact = self.profile.store.contact(to.as_str())?;
        let Some(contact) = contact else {
            return Ok(false);
        };
        if contact.has_pending_key_change() {
            return Err(ClientError::IdentityChanged { user: to.clone() });
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
    /// pinned on first use, or must equal the pinned one.
    pub fn start_session(
        &mut self,
        to: &UserId,
        bundle: &PrekeyBundle,
        now_ms: u64,
    ) -> Result<(), ClientError> {
        let presented = keys_of(&bundle.identity);
        let contact = match self.profile.store.contact(to.as_str())? {
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

    /// Encrypts `body` for `to` and commits the advanced ratchet, with the
    /// count of ephemeral payloads sent since the last stored one: an
    /// ephemeral payload is refused with [`ClientError::TypingPaused`] once
    /// [`MAX_EPHEMERAL_GAP`](crate::limits::MAX_EPHEMERAL_GAP) went since
    /// (see `client/typing.rs`); a stored one resets the count.
    pub fn encrypt(
        &mut self,
        to: &UserId,
        body: PayloadBody,
        ephemeral: bool,
        now_ms: u64,
    ) -> Result<Outgoing, ClientError> {
        let mut contact = self.profile.store.contact(to.as_str())?;
        let contact_changed = match &mut contact {
            Some(c) if ephemeral => {
                if c.ephemeral_since_stored >= crate::limits::MAX_EPHEMERAL_GAP {
                    return Err(ClientError::TypingPaused { user: to.clone() });
                }
                c.ephemeral_since_stored += 1;
                true
            }
            Some(c) if c.ephemeral_since_stored != 0 => {
                c.ephemeral_since_stored = 0;
                true
            }
            _ => false,
        };
        let payload = Payload {
            id: MessageId::random(&mut self.rng),
            sent_at_ms: now_ms,
            body,
        };
        let plaintext = payload.encode()?;
        let mut sessions = self.load_sessions(to)?;
        let ciphertext = sessions.encrypt(&mut self.rng, &plaintext)?;
        let mut batch = Batch::new();
        batch.put_session(to.as_str(), sessions.pickle());
        if contact_changed && let Some(c) = contact {
            batch.put_contact(c);
        }
        self.profile.store.commit(batch)?;
        self.sessions.insert(to.clone(), sessions);
        Ok(Outgoing {
            ciphertext,
            payload,
        })
    }

    /// Records a text message the relay accepted.
    pub fn record_sent(&mut self, to: &UserId, payload: &Payload) -> Result<(), ClientError> {
        let PayloadBody::Text { text } = &payload.body else {
            return Ok(());
        };
        let mut batch = Batch::new();
        batch.append_message(
            to.as_str(),
            HistoryEntry::outgoing(payload.id.into(), text.clone(), payload.sent_at_ms),
        );
        if let Some(mut contact) = self.profile.store.contact(to.as_str())? {
            contact.last_activity_ms = payload.sent_at_ms;
            batch.put_contact(contact);
        }
        self.profile.store.commit(batch)?;
        Ok(())
    }

    /// Decrypts, records and turns one envelope into events.
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
        let body = envelope.body.0.as_slice();
        let message = match Message::decode(body) {
            Ok(m) => m,
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };

        // A prekey message names the sender's identity: check it against the
        // pinned one before anything is committed.
        let mut flags = MessageFlags::default();
        let mut contact = self.profile.store.contact(from.as_str())?;
        let mut contact_changed = false;
        let mut key_changed_now = false;
        if let Some(initiator) = message.initiator() {
            let presented = keys_of(&initiator);
            match &mut contact {
                None => {
                    contact = Some(Contact::pinned(from.as_str(), presented, now_ms));
                    contact_changed = true;
                }
                Some(c) => {
                    if c.record_key_change(presented, now_ms) {
                        flags.from_changed_key = true;
                        contact_changed = true;
                        // Reported only once the message authenticates:
                        // a forged or corrupted prekey message must not let
                        // anyone raise the alarm at will.
                        key_changed_now = true;
                    }
                }
            }
        }
        let is_prekey = message.initiator().is_some();
        if let Some(c) = &contact {
            flags.identity_unverified = !c.verified;
            flags.from_changed_key |= c.has_pending_key_change();
        }

        let mut sessions = self.load_sessions(&from)?;
        // Only a prekey message touches the prekey secrets; it works on a copy
        // that replaces ours after the commit.
        let mut prekeys_copy = if is_prekey {
            Some(PrekeyStoreTxn::begin(&self.profile)?)
        } else {
            None
        };
        let prekeys = match &mut prekeys_copy {
            Some(copy) => &mut copy.0,
            None => &mut self.profile.prekeys,
        };
        let plaintext = match sessions.decrypt(&self.profile.identity, prekeys, now_ms, body) {
            Ok(p) => p,
            Err(DecryptError::Duplicate { .. }) => {
                debug!(from = %from, "dropping a duplicate message");
                return self.mark_only(out, envelope.id);
            }
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };
        let payload = match Payload::decode(&plaintext) {
            Ok(p) => p,
            Err(e) => return self.reject(out, &from, envelope.id, e.to_string()),
        };
        if key_changed_now {
            out.events
                .push(Event::IdentityChanged { user: from.clone() });
        }

        let mut batch = Batch::new();
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
        if !self.sessions.contains_key(peer) {
            let loaded = self.load_sessions(peer)?;
            self.sessions.insert(peer.clone(), loaded);
        }
        self.sessions
            .get(peer)
            .ok_or(ClientError::Internal("session cache lost an entry"))
    }

    /// A working copy of the sessions with `peer`; the caller puts it back
    /// in the cache after its commit succeeds, so a failed operation leaves
    /// the cached state as the stored state.
    fn load_sessions(&mut self, peer: &UserId) -> Result<PeerSessions, ClientError> {
        if let Some(cached) = self.sessions.remove(peer) {
            // Keep a pickled copy in the cache slot: a failure between here
            // and the caller's re-insert must not lose the stored state.
            let copy = PeerSessions::unpickle(&cached.pickle())?;
            self.sessions.insert(peer.clone(), cached);
            return Ok(copy);
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
    use crate::limits::MAX_EPHEMERAL_GAP;

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

    #[test]
    fn typing_pauses_at_the_ephemeral_gap_and_the_peer_still_reads_what_follows() {
        let (mut alice, mut bob) = (engine("alice", 1), engine("bob", 2));
        let bundle = PrekeyBundle {
            identity: bob.profile.identity(),
            signed_prekey: bob.profile.prekeys.signed_prekey(),
            one_time_prekey: None,
        };
        let to_bob = uid("bob");
        alice.start_session(&to_bob, &bundle, NOW).unwrap();
        let first = alice
            .encrypt(&to_bob, PayloadBody::Text { text: "hi".into() }, false, NOW)
            .unwrap();
        let got = bob
            .process(&envelope(1, "alice", first.ciphertext), NOW)
            .unwrap();
        assert!(matches!(got.events.as_slice(), [Event::Message(_)]));

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
        assert_eq!(stored.ephemeral_since_stored, MAX_EPHEMERAL_GAP);

        // The next message makes bob skip every dropped key, within bounds.
        let next = alice
            .encrypt(
                &to_bob,
                PayloadBody::Text {
                    text: "after".into(),
                },
                false,
                NOW,
            )
            .unwrap();
        let got = bob
            .process(&envelope(2, "alice", next.ciphertext), NOW)
            .unwrap();
        assert!(
            matches!(got.events.as_slice(), [Event::Message(m)] if m.text == "after"),
            "{:?}",
            got.events
        );
        // And a stored payload resumed the indicators.
        assert_eq!(
            alice
                .profile
                .contact(&to_bob)
                .unwrap()
                .unwrap()
                .ephemeral_since_stored,
            0
        );
        alice
            .encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW)
            .unwrap();
    }
}
