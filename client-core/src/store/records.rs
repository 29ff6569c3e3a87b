//! The typed records of a profile and their encodings inside sealed values.
//!
//! Non-secret records (settings, contacts, history entries) are JSON; a field
//! added later must carry `#[serde(default)]` so records written by an older
//! version still decode (see `docs/store.md`, "Versions and migration").
//! Secret blobs are stored as raw bytes, never through serde, so no
//! non-zeroized copy is made on the way.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::StoreError;

/// An opaque secret produced by a crypto module's `pickle()` (identity,
/// prekey state, peer sessions). Zeroized on drop; its `Debug` prints no bytes.
pub type SecretBlob = Zeroizing<Vec<u8>>;

/// Profile-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSettings {
    /// The user id this profile authenticates as.
    pub user_id: String,
    /// Relay WebSocket URL to connect to.
    pub relay_url: String,
    /// When the profile was created (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// Whether read receipts are sent to peers.
    #[serde(default = "default_true")]
    pub send_read_receipts: bool,
    /// Users allowed to see our presence (online, last seen); published to
    /// the relay on every connection. Empty by default.
    #[serde(default)]
    pub presence_allow: Vec<String>,
    /// The relay id (from its challenge) recorded on the first connection:
    /// a challenge naming another relay is refused. `None` until then.
    #[serde(default)]
    pub relay_id: Option<String>,
}

fn default_true() -> bool {
    true
}

impl ProfileSettings {
    /// Settings for a new profile; read receipts on.
    pub fn new(
        user_id: impl Into<String>,
        relay_url: impl Into<String>,
        created_at_ms: u64,
    ) -> Self {
        ProfileSettings {
            user_id: user_id.into(),
            relay_url: relay_url.into(),
            created_at_ms,
            send_read_receipts: true,
            presence_allow: Vec::new(),
            relay_id: None,
        }
    }
}

/// A peer's identity public keys as pinned in the contact list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityKeys {
    /// Ed25519 identity signing key `IKsig`.
    pub sig_pub: [u8; 32],
    /// X25519 identity DH key `IKdh`.
    pub dh_pub: [u8; 32],
}

/// A changed identity key seen for a contact and not yet trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The new keys the peer presented.
    pub new_keys: IdentityKeys,
    /// When they were first seen (ms since the Unix epoch).
    pub seen_at_ms: u64,
}

/// A contact: a peer whose identity keys are pinned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The peer's user id.
    pub user_id: String,
    /// Keys pinned on first use (or on the last re-trust).
    pub keys: IdentityKeys,
    /// When the keys were first pinned (ms).
    pub first_seen_ms: u64,
    /// Whether the user compared safety numbers for the pinned keys.
    pub verified: bool,
    /// A different key seen since pinning; while present, sending to this
    /// peer must stop until the user re-trusts.
    #[serde(default)]
    pub key_change: Option<KeyChange>,
    /// Last message sent to or received from this peer (ms).
    #[serde(default)]
    pub last_activity_ms: u64,
    /// Ids of this peer's messages stored but not yet confirmed to them with
    /// a delivery receipt the relay accepted. Kept with the contact so that a
    /// receipt survives a crash or a lost connection: it is recorded in the
    /// same commit as the message and cleared once the relay accepted it.
    #[serde(default)]
    pub pending_receipts: Vec<MessageId>,
    /// Message keys used for this peer so far (every encryption, stored
    /// or ephemeral, delivered or not), counted from 1.
    #[serde(default)]
    pub keys_used: u64,
    /// The value of `keys_used` of the newest message known to be stored by
    /// the relay (a non-ephemeral send it answered `accepted`), or at which
    /// the current session started, whichever is later. `keys_used -
    /// keys_confirmed` keys may be a gap the peer's ratchet must skip: see
    /// [`MAX_UNCONFIRMED_KEYS`](crate::limits::MAX_UNCONFIRMED_KEYS).
    #[serde(default)]
    pub keys_confirmed: u64,
    /// A stranger wrote first and the user has not yet replied or accepted:
    /// a message request. No read receipt is sent to a request.
    #[serde(default)]
    pub request: bool,
    /// The user blocked this peer: everything from them is dropped unread
    /// and without a receipt, and nothing is sent to them.
    #[serde(default)]
    pub blocked: bool,
    /// Identity keys the user rejected for this peer (newest last, at most
    /// [`MAX_REJECTED_KEYS`](crate::limits::MAX_REJECTED_KEYS)): messages
    /// under them stay marked and raise no new key-change warning.
    #[serde(default)]
    pub rejected_keys: Vec<IdentityKeys>,
}

impl Contact {
    /// A contact pinned on first use, unverified, no pending change.
    pub fn pinned(user_id: impl Into<String>, keys: IdentityKeys, now_ms: u64) -> Contact {
        Contact {
            user_id: user_id.into(),
            keys,
            first_seen_ms: now_ms,
            verified: false,
            key_change: None,
            last_activity_ms: now_ms,
            pending_receipts: Vec::new(),
            keys_used: 0,
            keys_confirmed: 0,
            request: false,
            blocked: false,
            rejected_keys: Vec::new(),
        }
    }

    /// A contact created by a stranger's first message: a message request.
    pub fn request(user_id: impl Into<String>, keys: IdentityKeys, now_ms: u64) -> Contact {
        Contact {
            request: true,
            ..Contact::pinned(user_id, keys, now_ms)
        }
    }

    /// Message keys used since the last message known to be stored (or
    /// the start of the current session).
    pub fn unconfirmed_keys(&self) -> u64 {
        self.keys_used.saturating_sub(self.keys_confirmed)
    }

    /// Whether `keys` were rejected by the user for this peer.
    pub fn is_rejected(&self, keys: &IdentityKeys) -> bool {
        self.rejected_keys.contains(keys)
    }

    /// Whether a changed key awaits the user's decision (sending must stop).
    pub fn has_pending_key_change(&self) -> bool {
        self.key_change.is_some()
    }

    /// Records that `new_keys` were presented. Returns `false` (no change) if
    /// they are the pinned keys.
    /// Keys the user rejected are not recorded again (but still return
    /// `true`: they are not the pinned keys).
    pub fn record_key_change(&mut self, new_keys: IdentityKeys, now_ms: u64) -> bool {
        if new_keys == self.keys {
            return false;
        }
        if self.is_rejected(&new_keys) {
            return true;
        }
        if self.key_change.map(|c| c.new_keys) != Some(new_keys) {
            self.key_change = Some(KeyChange {
                new_keys,
                seen_at_ms: now_ms,
            });
        }
        true
    }

    /// The user re-trusts: the pending keys become the pinned keys,
    /// unverified. Returns `false` if nothing was pending. The caller checks
    /// first that the user confirmed these very keys (their safety number).
    pub fn accept_key_change(&mut self, now_ms: u64) -> bool {
        match self.key_change.take() {
            Some(change) => {
                self.rejected_keys.retain(|k| *k != change.new_keys);
                self.keys = change.new_keys;
                self.first_seen_ms = now_ms;
                self.verified = false;
                // A new identity means new sessions: nothing sent under the
                // old ones can leave a gap in them.
                self.keys_confirmed = self.keys_used;
                true
            }
            None => false,
        }
    }

    /// The user rejects the pending keys: the pinned keys stay, and the
    /// rejected ones are remembered (the oldest forgotten beyond
    /// [`MAX_REJECTED_KEYS`](crate::limits::MAX_REJECTED_KEYS)). Returns
    /// `false` if nothing was pending.
    pub fn reject_key_change(&mut self) -> bool {
        match self.key_change.take() {
            Some(change) => {
                if !self.is_rejected(&change.new_keys) {
                    self.rejected_keys.push(change.new_keys);
                }
                let excess = self
                    .rejected_keys
                    .len()
                    .saturating_sub(crate::limits::MAX_REJECTED_KEYS);
                self.rejected_keys.drain(..excess);
                true
            }
            None => false,
        }
    }
}

pub use crate::payload::MessageId;

/// Whether a history entry was received or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received from the peer.
    Incoming,
    /// Sent by this profile.
    Outgoing,
}

/// Delivery state of an outgoing message. Ordered: a status only ever moves
/// to a greater one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by the relay.
    Sent,
    /// The peer's client acknowledged receipt.
    Delivered,
    /// The peer read it.
    Read,
}

/// Warnings attached to a history entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFlags {
    /// The peer's identity was not verified (safety number) at the time.
    #[serde(default)]
    pub identity_unverified: bool,
    /// Received while a key change of the peer was pending (from the
    /// pinned key, or, with `unconfirmed_key`, from the new one).
    #[serde(default)]
    pub from_changed_key: bool,
    /// Received from a message request: a stranger who wrote first, whom
    /// the user had not answered or accepted yet.
    #[serde(default)]
    pub request: bool,
}

/// One message in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Sender-chosen id; receipts refer to it.
    pub message_id: MessageId,
    /// Received or sent.
    pub direction: Direction,
    /// Message text.
    pub text: String,
    /// Sender's clock when sent (ms); informative only, peers' clocks differ.
    pub sent_at_ms: u64,
    /// This device's clock when stored (ms).
    pub stored_at_ms: u64,
    /// Delivery state; `Some` for outgoing entries, `None` for incoming.
    #[serde(default)]
    pub status: Option<DeliveryStatus>,
    /// Warnings shown with the message.
    #[serde(default)]
    pub flags: MessageFlags,
    /// For an incoming message decrypted by a session whose identity was
    /// not the pinned one: that identity. Such a message is never shown as
    /// from the contact; compare with the contact's pinned and rejected keys
    /// to say whether the user later trusted or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed_key: Option<IdentityKeys>,
}

impl HistoryEntry {
    /// An incoming entry.
    pub fn incoming(
        message_id: MessageId,
        text: impl Into<String>,
        sent_at_ms: u64,
        stored_at_ms: u64,
    ) -> Self {
        HistoryEntry {
            message_id,
            direction: Direction::Incoming,
            text: text.into(),
            sent_at_ms,
            stored_at_ms,
            status: None,
            flags: MessageFlags::default(),
            unconfirmed_key: None,
        }
    }

    /// An outgoing entry with status [`DeliveryStatus::Sent`].
    pub fn outgoing(message_id: MessageId, text: impl Into<String>, sent_at_ms: u64) -> Self {
        HistoryEntry {
            message_id,
            direction: Direction::Outgoing,
            text: text.into(),
            sent_at_ms,
            stored_at_ms: sent_at_ms,
            status: Some(DeliveryStatus::Sent),
            flags: MessageFlags::default(),
            unconfirmed_key: None,
        }
    }
}

pub(crate) fn to_json<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|e| StoreError::Database(format!("encoding {what}: {e}")))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::corrupt(format!("{what} does not decode: {e}")))
}

/// Session record: `len(user_id) (u16 BE) || user_id || blob`.
pub(crate) fn encode_session(user_id: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let len = u16::try_from(user_id.len()).map_err(|_| StoreError::TooLarge {
        what: "user id",
        len: user_id.len(),
    })?;
    let mut out = Zeroizing::new(Vec::with_capacity(2 + user_id.len() + blob.len()));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(user_id.as_bytes());
    out.extend_from_slice(blob);
    Ok(out)
}

pub(crate) fn decode_session(bytes: &[u8]) -> Result<(String, SecretBlob), StoreError> {
    let bad = || StoreError::corrupt("session record layout");
    let len_bytes: [u8; 2] = bytes
        .get(..2)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    let len = usize::from(u16::from_be_bytes(len_bytes));
    let user = bytes.get(2..2 + len).ok_or_else(bad)?;
    let user = std::str::from_utf8(user).map_err(|_| bad())?.to_owned();
    let blob = Zeroizing::new(bytes.get(2 + len..).ok_or_else(bad)?.to_vec());
    Ok((user, blob))
}

pub(crate) fn decode_u64(what: &'static str, bytes: &[u8]) -> Result<u64, StoreError> {
    let a: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{what} length")))?;
    Ok(u64::from_be_bytes(a))
}

impl From<&crate::identity::IdentityPublic> for IdentityKeys {
    fn from(p: &crate::identity::IdentityPublic) -> Self {
        IdentityKeys {
            sig_pub: p.sig_pub,
            dh_pub: p.dh_pub,
        }
    }
}
