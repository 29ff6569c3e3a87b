//! The receiving side of the engine: one envelope decrypted, checked
//! against the pinned identity and committed with its history entry, the
//! session and the envelope id, before it is acknowledged.

use hush_protocol::UserId;
use hush_protocol::frame::Envelope;
use tracing::{debug, warn};

use super::{Engine, MAX_PENDING_RECEIPTS, PrekeyStoreTxn, Processed};
use crate::error::ClientError;
use crate::events::{Event, IncomingMessage};
use crate::limits::MAX_MESSAGE_REQUESTS;
use crate::message::Message;
use crate::payload::{Payload, PayloadBody, ReceiptKind};
use crate::profile::{identity_of, keys_of};
use crate::ratchet::DecryptError;
use crate::store::{Batch, Contact, DeliveryStatus, HistoryEntry, MessageFlags};

impl Engine {
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
                .message(from.as_str(), payload.id)?
                .is_some();
        match &payload.body {
            PayloadBody::Text { .. } if seen_before => {
                debug!(from = %from, "text with an id already stored; not shown again");
            }
            PayloadBody::Text { text } if unconfirmed => {
                let mut entry =
                    HistoryEntry::incoming(payload.id, text.clone(), payload.sent_at_ms, now_ms);
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
                let mut entry =
                    HistoryEntry::incoming(payload.id, text.clone(), payload.sent_at_ms, now_ms);
                entry.flags = flags;
                batch.append_message(from.as_str(), entry);
                if let Some(c) = &mut contact {
                    c.last_activity_ms = now_ms;
                    // Confirmed to the sender once the relay accepted our
                    // receipt; not for a key we have not trusted.
                    if !flags.from_changed_key && self.record_receipts {
                        c.pending_receipts.push(payload.id);
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
                    batch.update_status(from.as_str(), *id, status);
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
    pub(super) fn evict_oldest_request(
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

    pub(super) fn mark_only(
        &mut self,
        out: Processed,
        id: Option<u64>,
    ) -> Result<Processed, ClientError> {
        if let Some(id) = id {
            let mut batch = Batch::new();
            batch.mark_processed(id);
            self.profile.store.commit(batch)?;
        }
        Ok(out)
    }

    /// An envelope that cannot be read is acknowledged (so the relay does not
    /// push it forever) and reported, never shown as a message.
    pub(super) fn reject(
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
}
