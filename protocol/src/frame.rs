//! The frames of protocol v1: [`ClientFrame`] (client to relay) and
//! [`ServerFrame`] (relay to client). Each is one JSON object in one
//! WebSocket text frame, tagged by `"type"` (snake_case); binary fields are
//! standard padded base64 (see [`crate::bytes`]).
//!
//! Relays decode client frames with [`ClientFrame::decode`], whose
//! [`FrameError`](crate::FrameError) says precisely what was wrong and which
//! `rid` it answers. Clients decode relay frames with [`ServerFrame::decode`].

use serde::{Deserialize, Serialize};

use crate::bytes::{Body, ChallengeBytes, PublicKeyBytes, SignatureBytes};
use crate::error_code::ErrorCode;
use crate::user_id::UserId;

mod devices;
pub use devices::{
    AccountDevices, AuthDevice, CopiesAccepted, CopyId, DeviceCopy, DeviceListPublished,
    DeviceListPush, Devices, FetchDeviceBundle, FetchDevices, PublishDeviceList, SendCopies,
};

/// Protocol version announced in the `challenge` frame.
pub const PROTOCOL_VERSION: u32 = 1;
/// HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1/ws";
/// HTTP path of the health check (`200 ok`).
pub const HEALTH_PATH: &str = "/healthz";

/// A signed prekey: X25519 public key with its id, signed by `IKsig`
/// over [`crate::signing::signed_prekey_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPrekey {
    /// Chosen by the owner; names the key in X3DH initial messages.
    pub id: u32,
    /// X25519 public key.
    pub key: PublicKeyBytes,
    /// Ed25519 signature by the owner's identity key.
    pub signature: SignatureBytes,
}

/// A one-time prekey: X25519 public key with its id, handed out at most once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePrekey {
    /// Chosen by the owner; unique among the owner's stored one-time prekeys.
    pub id: u32,
    /// X25519 public key.
    pub key: PublicKeyBytes,
}

// ---------------------------------------------------------------- client

/// `auth`: answers the relay's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The id to authenticate as (or to register on first use).
    pub user_id: UserId,
    /// The Ed25519 identity public key `IKsig`.
    pub identity_key: PublicKeyBytes,
    /// Ed25519 signature over [`crate::signing::auth_message`].
    pub signature: SignatureBytes,
}

/// `publish_keys`: replaces the identity DH key and signed prekey, and adds
/// one-time prekeys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishKeys {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The X25519 identity key `IKdh`.
    pub identity_dh: PublicKeyBytes,
    /// `IKsig`'s signature over [`crate::signing::identity_dh_message`].
    pub identity_dh_sig: SignatureBytes,
    /// The current signed prekey.
    pub signed_prekey: SignedPrekey,
    /// One-time prekeys to add (an existing id is replaced). May be empty.
    #[serde(default)]
    pub one_time_prekeys: Vec<OneTimePrekey>,
}

/// `fetch_bundle`: asks for a user's prekey bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchBundle {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// Whose bundle.
    pub user_id: UserId,
}

/// `lookup`: asks for a user's identity keys as the directory lists them,
/// without taking a one-time prekey. Clients use it to notice that a peer
/// they already have a session with registered a new identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// Whose identity.
    pub user_id: UserId,
}

/// `send`: an envelope for `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEnvelope {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The recipient.
    pub to: UserId,
    /// Opaque ciphertext.
    pub body: Body,
    /// Forward only to an online recipient, never store (typing indicators).
    #[serde(default)]
    pub ephemeral: bool,
}

/// `ack`: deletes delivered envelopes from the sender's own mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// Envelope ids; ids not in the caller's mailbox are ignored.
    pub ids: Vec<u64>,
}

/// `ping`: liveness check, answered by `pong`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Request id, echoed by the reply.
    pub rid: u64,
}

/// `presence_allow`: replaces the caller's presence allow list, the user ids
/// that may see its online state and last-seen time. Empty by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceAllow {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The whole new list (duplicates count once). At most
    /// `max_presence_allow` distinct ids.
    pub users: Vec<UserId>,
}

/// `presence_query`: asks for the presence of some users, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceQuery {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The subjects. At most `max_presence_query` distinct ids.
    pub users: Vec<UserId>,
}

/// `presence_subscribe`: replaces this connection's presence subscriptions;
/// the reply is a snapshot, `presence_update` frames follow changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceSubscribe {
    /// Request id, echoed by the reply.
    pub rid: u64,
    /// The whole new set of subjects (empty: unsubscribe from all). At most
    /// `max_presence_subscriptions` distinct ids.
    pub users: Vec<UserId>,
}

/// A frame from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientFrame {
    /// See [`Auth`].
    Auth(Auth),
    /// See [`PublishKeys`].
    PublishKeys(PublishKeys),
    /// See [`FetchBundle`].
    FetchBundle(FetchBundle),
    /// See [`Lookup`].
    Lookup(Lookup),
    /// See [`SendEnvelope`].
    Send(SendEnvelope),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Ping`].
    Ping(Ping),
    /// See [`PresenceAllow`].
    PresenceAllow(PresenceAllow),
    /// See [`PresenceQuery`].
    PresenceQuery(PresenceQuery),
    /// See [`PresenceSubscribe`].
    PresenceSubscribe(PresenceSubscribe),
    /// See [`AuthDevice`].
    AuthDevice(AuthDevice),
    /// See [`PublishDeviceList`].
    PublishDeviceList(PublishDeviceList),
    /// See [`FetchDevices`].
    FetchDevices(FetchDevices),
    /// See [`SendCopies`].
    SendCopies(SendCopies),
    /// See [`FetchDeviceBundle`].
    FetchDeviceBundle(FetchDeviceBundle),
}

impl ClientFrame {
    /// The wire `type` of this frame.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Auth(_) => "auth",
            Self::PublishKeys(_) => "publish_keys",
            Self::FetchBundle(_) => "fetch_bundle",
            Self::Lookup(_) => "lookup",
            Self::Send(_) => "send",
            Self::Ack(_) => "ack",
            Self::Ping(_) => "ping",
            Self::PresenceAllow(_) => "presence_allow",
            Self::PresenceQuery(_) => "presence_query",
            Self::PresenceSubscribe(_) => "presence_subscribe",
            Self::AuthDevice(_) => "auth_device",
            Self::PublishDeviceList(_) => "publish_device_list",
            Self::FetchDevices(_) => "fetch_devices",
            Self::SendCopies(_) => "send_copies",
            Self::FetchDeviceBundle(_) => "fetch_device_bundle",
        }
    }

    /// The request id.
    pub fn rid(&self) -> u64 {
        match self {
            Self::Auth(f) => f.rid,
            Self::PublishKeys(f) => f.rid,
            Self::FetchBundle(f) => f.rid,
            Self::Lookup(f) => f.rid,
            Self::Send(f) => f.rid,
            Self::Ack(f) => f.rid,
            Self::Ping(f) => f.rid,
            Self::PresenceAllow(f) => f.rid,
            Self::PresenceQuery(f) => f.rid,
            Self::PresenceSubscribe(f) => f.rid,
            Self::AuthDevice(f) => f.rid,
            Self::PublishDeviceList(f) => f.rid,
            Self::FetchDevices(f) => f.rid,
            Self::SendCopies(f) => f.rid,
            Self::FetchDeviceBundle(f) => f.rid,
        }
    }

    /// Parses one text frame, with a precise error (see
    /// [`FrameError`](crate::FrameError)).
    pub fn decode(text: &str) -> Result<Self, crate::FrameError> {
        crate::decode::decode_client(text)
    }

    /// The JSON text of this frame.
    pub fn encode(&self) -> String {
        to_json(self)
    }
}

// ---------------------------------------------------------------- server

/// `challenge`: the first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The relay's id, part of the signed auth message so a signature made
    /// for one relay is useless at another.
    pub relay_id: String,
    /// 32 fresh random bytes.
    pub challenge: ChallengeBytes,
}

/// `auth_ok`: authentication succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOk {
    /// The `auth` request's id.
    pub rid: u64,
    /// The authenticated user id.
    pub user_id: UserId,
    /// This auth registered the id just now (first use).
    pub registered: bool,
    /// One-time prekeys currently stored for this user.
    pub one_time_prekeys: u32,
    /// A signed prekey bundle is published.
    pub has_keys: bool,
    /// Id of the newest envelope in this user's mailbox at authentication,
    /// 0 when it was empty. Envelopes are pushed in id order, so a client
    /// has its whole backlog once it processed the envelope with this id
    /// (or had processed it on an earlier connection).
    #[serde(default)]
    pub last_queued: u64,
}

/// `keys_published`: `publish_keys` succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysPublished {
    /// The request's id.
    pub rid: u64,
    /// One-time prekeys now stored.
    pub one_time_prekeys: u32,
}

/// `bundle`: a user's prekey bundle, with at most one one-time prekey that
/// the relay has now deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The request's id.
    pub rid: u64,
    /// Whose bundle.
    pub user_id: UserId,
    /// The user's Ed25519 identity key `IKsig` (as registered).
    pub identity_key: PublicKeyBytes,
    /// The user's X25519 identity key `IKdh`.
    pub identity_dh: PublicKeyBytes,
    /// `IKsig`'s signature over [`crate::signing::identity_dh_message`].
    pub identity_dh_sig: SignatureBytes,
    /// The current signed prekey.
    pub signed_prekey: SignedPrekey,
    /// A one-time prekey, or `null` when none is left.
    pub one_time_prekey: Option<OneTimePrekey>,
}

/// `identity`: the reply to `lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The request's id.
    pub rid: u64,
    /// Whose identity.
    pub user_id: UserId,
    /// The user's Ed25519 identity key `IKsig` (as registered).
    pub identity_key: PublicKeyBytes,
    /// The user's X25519 identity key `IKdh`.
    pub identity_dh: PublicKeyBytes,
    /// `IKsig`'s signature over [`crate::signing::identity_dh_message`].
    pub identity_dh_sig: SignatureBytes,
}

/// `accepted`: a `send` was taken. For a stored envelope, only after it is
/// durably committed; `id` is its id in the recipient's mailbox. Ephemeral
/// sends have no id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The request's id.
    pub rid: u64,
    /// Envelope id; absent for ephemeral sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// `envelope`: an envelope pushed to its recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Mailbox id to `ack`; absent exactly when `ephemeral` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The authenticated sender, stamped by the relay.
    pub from: UserId,
    /// The sender's device, stamped by the relay; omitted for device 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_device: Option<u32>,
    /// When the relay accepted it, Unix milliseconds.
    pub accepted_at: u64,
    /// Opaque ciphertext.
    pub body: Body,
    /// An ephemeral envelope: never stored, nothing to ack. Omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ephemeral: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `acked`: an `ack` was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    /// The request's id.
    pub rid: u64,
}

/// `pong`: the answer to `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The request's id.
    pub rid: u64,
}

/// `prekeys_low`: unsolicited, the owner's one-time prekeys fell below the
/// threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrekeysLow {
    /// One-time prekeys left.
    pub one_time_prekeys: u32,
}

/// `presence_allowed`: the allow list was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceAllowed {
    /// The request's id.
    pub rid: u64,
    /// Distinct user ids now on the list.
    pub count: u32,
}

/// What an allowed user sees of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceState {
    /// The subject has a live connection (to any relay of the cluster).
    pub online: bool,
    /// Unix milliseconds of the subject's last disconnect, `None` if the
    /// relay never recorded one.
    pub last_seen_ms: Option<u64>,
}

/// One subject's presence as the asker may see it.
///
/// On the wire: `{"user":U,"visible":false}` when the asker may not see the
/// subject (not allowed, or no such user: the same bytes), else
/// `{"user":U,"visible":true,"online":B,"last_seen_ms":N|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PresenceEntryWire", into = "PresenceEntryWire")]
pub struct PresenceEntry {
    /// The subject.
    pub user: UserId,
    /// `None`: not visible to the asker.
    pub state: Option<PresenceState>,
}

impl PresenceEntry {
    /// The entry for a subject the asker may not see.
    pub fn hidden(user: UserId) -> Self {
        Self { user, state: None }
    }
}

#[derive(Serialize, Deserialize)]
struct PresenceEntryWire {
    user: UserId,
    visible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    online: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen_ms: Option<LastSeenWire>,
}

/// `null` is a present value here (visible, never seen), so it needs its own
/// type to be told apart from an absent field.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct LastSeenWire(Option<u64>);

impl From<PresenceEntry> for PresenceEntryWire {
    fn from(e: PresenceEntry) -> Self {
        match e.state {
            None => Self {
                user: e.user,
                visible: false,
                online: None,
                last_seen_ms: None,
            },
            Some(s) => Self {
                user: e.user,
                visible: true,
                online: Some(s.online),
                last_seen_ms: Some(LastSeenWire(s.last_seen_ms)),
            },
        }
    }
}

impl TryFrom<PresenceEntryWire> for PresenceEntry {
    type Error = &'static str;
    fn try_from(w: PresenceEntryWire) -> Result<Self, Self::Error> {
        if !w.visible {
            return Ok(Self::hidden(w.user));
        }
        let online = w.online.ok_or("a visible presence entry needs `online`")?;
        Ok(Self {
            user: w.user,
            state: Some(PresenceState {
                online,
                last_seen_ms: w.last_seen_ms.and_then(|l| l.0),
            }),
        })
    }
}

/// `presence`: the reply to `presence_query` and `presence_subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The request's id.
    pub rid: u64,
    /// One entry per distinct requested id, in the order of first mention.
    pub users: Vec<PresenceEntry>,
}

/// `error`: a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The failed request's id, or `null` when none could be parsed.
    pub rid: Option<u64>,
    /// What went wrong, machine-readable.
    pub code: ErrorCode,
    /// What went wrong, for humans.
    pub message: String,
    /// The current device lists of the accounts concerned
    /// (`stale_device_list`, `device_list_mismatch`); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<AccountDevices>,
}

/// A frame from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// See [`Challenge`].
    Challenge(Challenge),
    /// See [`AuthOk`].
    AuthOk(AuthOk),
    /// See [`KeysPublished`].
    KeysPublished(KeysPublished),
    /// See [`Bundle`].
    Bundle(Box<Bundle>),
    /// See [`Identity`].
    Identity(Identity),
    /// See [`Accepted`].
    Accepted(Accepted),
    /// See [`Envelope`].
    Envelope(Envelope),
    /// See [`Acked`].
    Acked(Acked),
    /// See [`Pong`].
    Pong(Pong),
    /// See [`PrekeysLow`].
    PrekeysLow(PrekeysLow),
    /// See [`ErrorFrame`].
    Error(ErrorFrame),
    /// See [`PresenceAllowed`].
    PresenceAllowed(PresenceAllowed),
    /// See [`Presence`].
    Presence(Presence),
    /// Unsolicited: a subscribed subject's presence as the subscriber may
    /// see it changed (see [`PresenceEntry`]). Flattened: `{"type":
    /// "presence_update","user":..,"visible":..,...}`.
    PresenceUpdate(PresenceEntry),
    /// See [`DeviceListPublished`].
    DeviceListPublished(DeviceListPublished),
    /// See [`Devices`].
    Devices(Devices),
    /// See [`DeviceListPush`].
    DeviceList(DeviceListPush),
    /// See [`CopiesAccepted`].
    CopiesAccepted(CopiesAccepted),
}

impl ServerFrame {
    /// Parses one text frame from a relay. Errors are reported as
    /// [`FrameError::Malformed`](crate::FrameError::Malformed) or
    /// [`FrameError::UnknownType`](crate::FrameError::UnknownType) /
    /// [`FrameError::BadField`](crate::FrameError::BadField).
    pub fn decode(text: &str) -> Result<Self, crate::FrameError> {
        crate::decode::decode_server(text)
    }

    /// The JSON text of this frame.
    pub fn encode(&self) -> String {
        to_json(self)
    }

    /// Shorthand for an `error` frame.
    pub fn error(rid: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorFrame {
            rid,
            code,
            message: message.into(),
            lists: Vec::new(),
        })
    }
}

#[allow(clippy::expect_used)]
fn to_json<T: Serialize>(v: &T) -> String {
    // Invariant: frames hold only strings, integers, booleans, options,
    // vectors and structs, none of which fails to serialise to JSON.
    serde_json::to_string(v).expect("frames always serialise to JSON")
}
