//! [`Batch`]: the typed writes a caller collects for one all-or-nothing
//! [`ProfileStore::commit`](super::ProfileStore::commit), and what a commit
//! reports ([`CommitOutcome`], [`StatusChange`]).

use super::records::{
    Contact, DeliveryStatus, HistoryEntry, MessageId, ProfileSettings, SecretBlob,
};

#[derive(Debug)]
pub(super) enum Op {
    Settings(ProfileSettings),
    Identity(SecretBlob),
    Prekeys(SecretBlob),
    Session {
        peer: String,
        blob: SecretBlob,
    },
    DeleteSession {
        peer: String,
    },
    Contact(Contact),
    DeleteContact {
        peer: String,
    },
    Append {
        peer: String,
        entry: HistoryEntry,
    },
    Status {
        peer: String,
        message_id: MessageId,
        status: DeliveryStatus,
    },
    Processed(u64),
    ForgetProcessed,
    ForgetPeer {
        peer: String,
    },
}

/// Writes to commit together with [`ProfileStore::commit`]: all of them or
/// none. Ops apply in the order they were added.
///
/// Receiving a message is one batch: the advanced session, the history
/// entry, the processed envelope id (and any contact update). Sending is one
/// batch: the advanced session and the outgoing entry.
#[derive(Debug, Default)]
pub struct Batch {
    pub(super) ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Whether no op was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Replaces the profile settings.
    pub fn set_settings(&mut self, settings: ProfileSettings) -> &mut Self {
        self.ops.push(Op::Settings(settings));
        self
    }

    /// Stores the identity secret blob (replacing any previous one).
    pub fn put_identity(&mut self, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Identity(blob));
        self
    }

    /// Stores the prekey-state secret blob (replacing any previous one).
    pub fn put_prekeys(&mut self, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Prekeys(blob));
        self
    }

    /// Stores the sessions blob for `peer`.
    pub fn put_session(&mut self, peer: &str, blob: SecretBlob) -> &mut Self {
        self.ops.push(Op::Session {
            peer: peer.to_owned(),
            blob,
        });
        self
    }

    /// Deletes the sessions blob for `peer`.
    pub fn delete_session(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::DeleteSession {
            peer: peer.to_owned(),
        });
        self
    }

    /// Inserts or replaces the contact `contact.user_id`.
    pub fn put_contact(&mut self, contact: Contact) -> &mut Self {
        self.ops.push(Op::Contact(contact));
        self
    }

    /// Deletes the contact `peer` (its history and session stay).
    pub fn delete_contact(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::DeleteContact {
            peer: peer.to_owned(),
        });
        self
    }

    /// Appends `entry` to the history with `peer`. The commit fails with
    /// [`StoreError::DuplicateMessage`] if that peer's history already holds
    /// the message id.
    pub fn append_message(&mut self, peer: &str, entry: HistoryEntry) -> &mut Self {
        self.ops.push(Op::Append {
            peer: peer.to_owned(),
            entry,
        });
        self
    }

    /// Moves the status of our message `message_id` to `peer` forward to
    /// `status` (never backward). The result is reported in
    /// [`CommitOutcome::status_changes`]; an unknown id is not an error.
    pub fn update_status(
        &mut self,
        peer: &str,
        message_id: MessageId,
        status: DeliveryStatus,
    ) -> &mut Self {
        self.ops.push(Op::Status {
            peer: peer.to_owned(),
            message_id,
            status,
        });
        self
    }

    /// Deletes everything kept about `peer`: contact, sessions and the
    /// whole history with them (an evicted message request).
    pub fn forget_peer(&mut self, peer: &str) -> &mut Self {
        self.ops.push(Op::ForgetPeer {
            peer: peer.to_owned(),
        });
        self
    }

    /// Records relay envelope `envelope_id` as processed.
    pub fn mark_processed(&mut self, envelope_id: u64) -> &mut Self {
        self.ops.push(Op::Processed(envelope_id));
        self
    }

    /// Forgets every processed envelope id. For a mailbox the relay created
    /// anew (it registered our user id again after a reset or a restart of
    /// a memory relay): its ids start from 1 again and must not be mistaken
    /// for envelopes processed before.
    pub fn forget_processed(&mut self) -> &mut Self {
        self.ops.push(Op::ForgetProcessed);
        self
    }
}

/// What a status update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// The status moved forward.
    Advanced {
        /// The message concerned.
        message_id: MessageId,
        /// Status before.
        from: DeliveryStatus,
        /// Status after.
        to: DeliveryStatus,
    },
    /// The message already had this status or a later one; nothing changed.
    Unchanged {
        /// The message concerned.
        message_id: MessageId,
        /// Its (kept) status.
        current: DeliveryStatus,
    },
    /// No outgoing message with this id exists in that peer's history (or it
    /// is an incoming one); nothing changed.
    UnknownMessage {
        /// The id the update named.
        message_id: MessageId,
    },
}

/// The result of a successful commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// One entry per `update_status` op, in batch order.
    pub status_changes: Vec<StatusChange>,
}
