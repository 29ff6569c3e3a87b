//! The typed records of a profile and their encodings inside sealed values.
//!
//! Non-secret records (settings, contacts, history entries) are JSON; a field
//! added later must carry `#[serde(default)]` so records written by an older
//! version still decode (see `docs/store.md`, "Versions and migration").
//! Secret blobs are stored as raw bytes, never through serde, so no
//! non-zeroized copy is made on the way.

use std::fmt;

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
    /// Ephemeral payloads (typing indicators) sent to this peer since the
    /// last stored one: each may have been dropped, leaving a gap the
    /// peer's ratchet must skip, so the client stops sending them at
    /// [`MAX_EPHEMERAL_GAP`](crate::limits::MAX_EPHEMERAL_GAP).
    #[serde(default)]
    pub ephemeral_since_stored: u32,
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
            ephemeral_since_stored: 0,
        }
    }

    /// Whether a changed key awaits the user's decision (sending must stop).
    pub fn has_pending_key_change(&self) -> bool {
        self.key_change.is_some()
    }

    /// Records that `new_keys` were presented. Returns `false` (no change) if
    /// they are the pinned keys.
    pub fn record_key_change(&mut self, new_keys: IdentityKeys, now_ms: u64) -> bool {
        if new_keys == self.keys {
            return false;
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
    /// unverified. Returns `false` if nothing was pending.
    pub fn accept_key_change(&mut self, now_ms: u64) -> bool {
        match self.key_change.take() {
            Some(change) => {
                self.keys = change.new_keys;
                self.first_seen_ms = now_ms;
                self.verified = false;
                true
            }
            None => false,
        }
    }
}

/// A 16-byte message id chosen by the sender, carried inside the ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random() -> MessageId {
        let mut b = [0u8; 16];
        rand::fill(&mut b);
        MessageId(b)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

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
    /// Received under an identity key different from the pinned one.
    #[serde(default)]
    pub from_changed_key: bool,
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

impl From<crate::payload::MessageId> for MessageId {
    fn from(id: crate::payload::MessageId) -> Self {
        MessageId(id.0)
    }
}

impl From<MessageId> for crate::payload::MessageId {
    fn from(id: MessageId) -> Self {
        crate::payload::MessageId(id.0)
    }
}

impl From<&crate::identity::IdentityPublic> for IdentityKeys {
    fn from(p: &crate::identity::IdentityPublic) -> Self {
        IdentityKeys {
            sig_pub: p.sig_pub,
            dh_pub: p.dh_pub,
        }
    }
}
