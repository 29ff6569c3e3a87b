//! The sending side of the engine: whether a session is ready, the
//! directory check, starting a session from a bundle, encrypting, and
//! recording what the relay accepted.

use hush_protocol::UserId;
use tracing::debug;

use super::{Engine, Outgoing, confirm};
use crate::error::ClientError;
use crate::identity::IdentityPublic;
use crate::limits::{MAX_EPHEMERAL_GAP, MAX_UNCONFIRMED_KEYS};
use crate::payload::{MessageId, Payload, PayloadBody, ReceiptKind, TypingState};
use crate::prekey::PrekeyBundle;
use crate::profile::keys_of;
use crate::store::{Batch, Contact, HistoryEntry};

impl Engine {
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
            HistoryEntry::outgoing(payload.id, text.clone(), payload.sent_at_ms),
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
}
