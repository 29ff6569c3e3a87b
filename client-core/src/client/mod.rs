//! The async client: a [`Profile`] taken online.
//!
//! [`Client::connect`] opens a WebSocket to the relay, authenticates,
//! registers and publishes keys on first use, and then keeps the connection
//! up in a background task, reconnecting with jittered exponential backoff.
//! That task processes pushed envelopes strictly in the relay's order:
//! decrypt, commit (session, history, envelope id) and only then acknowledge,
//! emitting [`Event`]s on the channel returned by `connect`.
//!
//! Presence: the allow list lives in the profile and is published on every
//! connection; presence subscriptions are renewed on every connection (the
//! snapshot is emitted as [`Event::Presence`], as are the relay's updates).
//! Typing indicators are rate-limited on the way out and time out on the
//! way in ([`typing`]).
//!
//! The cryptographic and storage work is synchronous ([`engine`]) and runs
//! on tokio's blocking pool; this module and [`connection`] are the only
//! async parts of the crate.

mod backoff;
mod connection;
mod engine;
mod profile;
mod random;
mod session_cache;
mod typing;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use hush_protocol::frame::{
    FetchBundle, PresenceAllow, PresenceQuery, PresenceSubscribe, SendEnvelope,
};
use hush_protocol::{Body, ClientFrame, ErrorCode, ServerFrame, UserId, UserIdError, close};
use rand_core::CryptoRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use backoff::Backoff;
pub use connection::ws_url;
pub use hush_protocol::frame::{PresenceEntry, PresenceState};
pub use profile::{Profile, SafetyNumbers};
pub use random::SystemRandom;
pub use typing::{TYPING_REFRESH, TYPING_TIMEOUT};

use connection::{Credentials, Inbound, Link, ReplyFuture};
use engine::{Engine, bundle_from_frame};
use typing::{TypingSender, TypingTimers};

use crate::payload::{MessageId, PayloadBody, ReceiptKind, TypingState};
use crate::store::{MessageFlags, StoreError};

/// How long [`Client::close`] waits for queued delivery receipts.
const RECEIPT_GRACE: Duration = Duration::from_secs(2);

/// How often a connected client checks whether its signed prekey is due
/// for rotation.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Wall-clock time for timestamps and prekey rotation; injected so tests
/// control it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// How a client behaves on the network.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Relay WebSocket URL; `None` uses the profile's.
    pub relay_url: Option<String>,
    /// Connection attempts before [`Client::connect`] gives up with
    /// [`ClientError::Unreachable`]. Once connected, the client retries
    /// forever.
    pub connect_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// How long one request waits for its reply (and `send_text` for a
    /// connection).
    pub request_timeout: Duration,
    /// Process envelopes pushed by the relay. Off for a client that only
    /// sends (`hush send`): envelopes then stay queued, unacknowledged, for
    /// the next client that receives.
    pub receive: bool,
    /// Send a delivery receipt for every text message stored.
    pub delivery_receipts: bool,
    /// Largest frame accepted from the relay.
    pub max_frame_bytes: usize,
    /// Events buffered for the application before processing waits for it.
    pub event_capacity: usize,
    /// A PEM file of extra CA certificates trusted for `wss://` relays,
    /// besides the system's roots (for a relay with a private or
    /// self-signed certificate).
    pub ca_file: Option<std::path::PathBuf>,
    /// A peer's "typing" ends (with an [`Event::Typing`] `Stopped`) this
    /// long after its last `Started` when no `Stopped` came.
    pub typing_timeout: Duration,
    /// Users whose presence is subscribed to on every connection from the
    /// first (at most
    /// [`MAX_PRESENCE_SUBSCRIPTIONS`](crate::limits::MAX_PRESENCE_SUBSCRIPTIONS)
    /// distinct ids). Their snapshot and every later change arrive only as
    /// [`Event::Presence`], in the order the relay sent them: unlike a
    /// [`Client::subscribe_presence`] made after connecting, whose returned
    /// snapshot can race with a renewal's events, nothing is seen twice or
    /// out of order.
    pub presence: Vec<UserId>,
    /// Return from [`Client::connect`] at once, before any connection:
    /// the client keeps trying (forever, with backoff) and reports each
    /// failure as [`ConnectionState::Disconnected`] (or
    /// [`ConnectionState::Stopped`] for one that retrying cannot fix) and
    /// success as [`ConnectionState::Connected`]. For an interactive
    /// client that works offline until the relay answers.
    pub start_offline: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            relay_url: None,
            connect_attempts: 5,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(10),
            receive: true,
            delivery_receipts: true,
            max_frame_bytes: hush_protocol::Limits::default().max_frame_bytes,
            event_capacity: 1024,
            ca_file: None,
            typing_timeout: TYPING_TIMEOUT,
            presence: Vec::new(),
            start_offline: false,
        }
    }
}

/// A text message received and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// Sender, as authenticated by the relay and by the session.
    pub from: UserId,
    /// Sender-chosen message id (receipts refer to it).
    pub id: MessageId,
    /// The text.
    pub text: String,
    /// Sender's clock (ms).
    pub sent_at_ms: u64,
    /// When the relay accepted it (ms, relay clock).
    pub accepted_at_ms: u64,
    /// The relay's envelope id.
    pub envelope_id: Option<u64>,
    /// Warnings: unverified sender, sender's key changed.
    pub flags: MessageFlags,
}

/// What a connection state change was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Authenticated to the relay.
    Connected,
    /// The connection ended; the client will retry after `retry_in`.
    Disconnected {
        /// Why, as far as known.
        reason: String,
        /// When the next attempt starts.
        retry_in: Duration,
    },
    /// Another connection of this user took over (close code 4000); the
    /// client stopped.
    Replaced,
    /// The client stopped for good.
    Stopped {
        /// Why.
        reason: String,
    },
}

/// Something the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A text message, already stored in the history.
    Message(IncomingMessage),
    /// A typing indicator: `Started` when a peer starts typing (a refresh
    /// is not repeated), then exactly one `Stopped`, sent by the peer or
    /// after [`ClientConfig::typing_timeout`] without a refresh, or when the
    /// connection is lost.
    Typing {
        /// Who is typing.
        from: UserId,
        /// Started or stopped.
        state: TypingState,
    },
    /// A delivery or read receipt for messages we sent.
    Receipt {
        /// Who sent the receipt.
        from: UserId,
        /// Delivered or read.
        kind: ReceiptKind,
        /// Which of our messages.
        message_ids: Vec<MessageId>,
    },
    /// A subscribed user's presence as we may see it: the snapshot after
    /// each (re)subscription, then every change the relay pushes.
    Presence(PresenceEntry),
    /// A text decrypted by a session whose identity is not the one pinned
    /// for `message.from`: a new key not yet trusted, or one the user
    /// rejected. It is stored (marked) but must never be shown as a message
    /// from that contact: anyone who controls the relay can produce one.
    UnconfirmedMessage {
        /// The message, as the unconfirmed key sent it.
        message: IncomingMessage,
        /// Fingerprint of the identity that sent it.
        fingerprint: String,
        /// Whether the user rejected that key (`reject`).
        rejected: bool,
    },
    /// A peer presented an identity key different from the pinned one.
    /// Sending to them stops until the user re-trusts.
    IdentityChanged {
        /// The peer.
        user: UserId,
    },
    /// An envelope that could not be decrypted or parsed (forged, corrupted,
    /// or from a session this device no longer has). It is acknowledged and
    /// never shown as a message.
    Undecryptable {
        /// The relay-stamped sender.
        from: UserId,
        /// The relay's envelope id.
        envelope_id: Option<u64>,
        /// What failed.
        reason: String,
    },
    /// Connection state.
    Connection(ConnectionState),
    /// Every envelope that was queued when the client connected has been
    /// processed.
    Drained,
}

/// What can go wrong in a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The local store failed (includes a wrong passphrase).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored secrets did not decode.
    #[error("profile data is corrupt: {0}")]
    Pickle(#[from] crate::pickle::PickleError),
    /// A profile without its identity or prekeys.
    #[error("profile is incomplete: no {what}")]
    ProfileIncomplete {
        /// What is missing.
        what: &'static str,
    },
    /// Not a valid user id.
    #[error(transparent)]
    InvalidUserId(#[from] UserIdError),
    /// The relay URL is not usable.
    #[error("invalid relay URL {url:?}: {reason}")]
    InvalidRelayUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection to the relay could be made.
    #[error("relay {url} unreachable: {reason}")]
    Unreachable {
        /// The relay's URL.
        url: String,
        /// The last failure.
        reason: String,
    },
    /// The relay refused our key for this user id.
    #[error("the relay refused authentication: {message}")]
    AuthRejected {
        /// The relay's explanation.
        message: String,
    },
    /// The recipient is not registered (or has no keys) on the relay.
    #[error("unknown user {user}")]
    UnknownUser {
        /// Who.
        user: String,
    },
    /// The peer's identity key changed and was not re-trusted.
    #[error("the identity key of {user} changed; compare safety numbers, then trust the new key")]
    IdentityChanged {
        /// The peer.
        user: UserId,
    },
    /// `trust` was asked while no key change is pending for this contact.
    #[error("no changed identity key is pending for {user}")]
    NoKeyChangePending {
        /// The peer.
        user: UserId,
    },
    /// The safety number given to `trust` is not the one of the pending
    /// key (a typo, the old number, or the pending key changed again).
    #[error(
        "that is not the safety number of the new key of {user}; compare again \
         (the number changes if the key changed again)"
    )]
    SafetyNumberMismatch {
        /// The peer.
        user: UserId,
    },
    /// The user blocked this peer.
    #[error("{user} is blocked; unblock them first")]
    Blocked {
        /// The peer.
        user: UserId,
    },
    /// The relay's challenge names another relay than the one this profile
    /// registered with: a relay passing another relay's challenge through
    /// (to get our signature for it), or a different relay at this address.
    #[error(
        "the relay says it is {presented:?} but this profile belongs to relay {pinned:?}; \
         refusing to authenticate"
    )]
    RelayIdMismatch {
        /// The relay id recorded in the profile.
        pinned: String,
        /// The relay id the challenge named.
        presented: String,
    },
    /// Messages to one's own user id are refused: with one device per
    /// user there is nobody to read them.
    #[error("you cannot send messages to yourself")]
    SelfRecipient,
    /// No contact of that name in the profile.
    #[error("no contact named {user}")]
    UnknownContact {
        /// Who.
        user: UserId,
    },
    /// Typing indicators to this peer are paused: the most that may go
    /// unanswered ([`MAX_EPHEMERAL_GAP`](crate::limits::MAX_EPHEMERAL_GAP))
    /// went since the last message or receipt to them. Sending one resumes
    /// them.
    #[error("typing indicators to {user} are paused until a message goes")]
    TypingPaused {
        /// The peer.
        user: UserId,
    },
    /// The recipient's mailbox is full.
    #[error("the recipient's mailbox is full")]
    MailboxFull,
    /// Too many requests.
    #[error("rate limited by the relay")]
    RateLimited,
    /// A request over one of its caps (presence allow list, query,
    /// subscriptions), refused before it was sent. (A relay configured
    /// with lower caps answers `limit_exceeded`: [`ClientError::Relay`].)
    #[error("too many {what} (at most {max})")]
    LimitExceeded {
        /// What.
        what: &'static str,
        /// The cap.
        max: usize,
    },
    /// Any other error the relay answered.
    #[error("relay error {code}: {message}")]
    Relay {
        /// The relay's error code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The relay broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection dropped before the reply came.
    #[error("disconnected from the relay")]
    Disconnected,
    /// No reply in time.
    #[error("the relay did not answer in time")]
    Timeout,
    /// Another connection of this user replaced this client.
    #[error("another connection of this user took over")]
    Replaced,
    /// The client has stopped.
    #[error("the client has stopped")]
    Stopped,
    /// Session setup failed (bad bundle signatures, non-contributory keys).
    #[error("session setup failed: {0}")]
    X3dh(#[from] crate::x3dh::X3dhError),
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(#[from] crate::ratchet::EncryptError),
    /// A payload could not be encoded (text too long).
    #[error("message cannot be encoded: {0}")]
    Payload(#[from] crate::payload::PayloadError),
    /// Prekey generation failed.
    #[error("prekeys: {0}")]
    Prekey(#[from] crate::prekey::PrekeyError),
    /// A key presented by the relay's directory failed verification.
    #[error("directory key invalid: {0}")]
    Key(#[from] crate::identity::KeyError),
    /// The TLS set-up for a `wss://` relay is unusable (an unreadable CA
    /// file, no trusted roots at all).
    #[error("TLS: {0}")]
    Tls(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ClientError {
    fn from_relay(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::MailboxFull => Self::MailboxFull,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::UnknownUser => Self::UnknownUser { user: message },
            ErrorCode::AuthFailed => Self::AuthRejected { message },
            code => Self::Relay { code, message },
        }
    }

    /// Whether trying again later may succeed.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Disconnected | Self::Timeout | Self::Protocol(_)
        )
    }
}

struct Shared {
    engine: Arc<Mutex<Engine>>,
    link: watch::Receiver<Option<Arc<Link>>>,
    /// Serialises encryption and queueing so that per-peer ratchet order is
    /// queue order (and so concurrent first sends to one peer start one
    /// session, not two).
    send_lock: tokio::sync::Mutex<HashSet<UserId>>,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    stop: watch::Sender<bool>,
    /// Delivery receipts (peer, message id) queued to the relay and not
    /// known to have failed; see [`Supervisor::flush_receipts`].
    receipts_in_flight: Mutex<HashSet<(UserId, MessageId)>>,
    /// Tasks waiting for the relay to accept queued receipts.
    receipt_tasks: Mutex<tokio::task::JoinSet<()>>,
    /// Which typing indicators may leave (rate limit per peer).
    typing: Mutex<TypingSender>,
    /// Presence subjects we subscribed to; renewed on every connection.
    presence_subscriptions: Mutex<Vec<UserId>>,
    /// Serialises allow-list changes with their publication, so the relay
    /// ends with the list the profile ends with.
    presence_lock: tokio::sync::Mutex<()>,
}

/// A connected client. Cheap to clone; every clone drives the same
/// connection.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Events from a [`Client`], in the order they happened.
pub type Events = mpsc::Receiver<Event>;

impl Client {
    /// Connects `profile` to its relay (or `config.relay_url`), trying
    /// `config.connect_attempts` times, and returns the client with its
    /// event stream. Keys are published on first use and refilled when low.
    pub async fn connect(
        profile: Profile,
        config: ClientConfig,
        rng: Box<dyn CryptoRng + Send>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Client, Events), ClientError> {
        let url = ws_url(config.relay_url.as_deref().unwrap_or(profile.relay_url()))?;
        check_presence_request(
            &config.presence,
            "presence subscriptions",
            crate::limits::MAX_PRESENCE_SUBSCRIPTIONS,
        )?;
        let presence_subscriptions = Mutex::new(config.presence.clone());
        let mut engine = Engine::new(profile, rng);
        engine.set_record_receipts(config.delivery_receipts);
        let engine = Arc::new(Mutex::new(engine));
        let (link_tx, link_rx) = watch::channel(None);
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            engine,
            link: link_rx,
            send_lock: tokio::sync::Mutex::new(HashSet::new()),
            config,
            clock,
            stop: stop_tx,
            receipts_in_flight: Mutex::new(HashSet::new()),
            receipt_tasks: Mutex::new(tokio::task::JoinSet::new()),
            typing: Mutex::new(TypingSender::default()),
            presence_subscriptions,
            presence_lock: tokio::sync::Mutex::new(()),
        });
        let start_offline = shared.config.start_offline;
        let (first_tx, first_rx) = oneshot::channel();
        let supervisor = Supervisor {
            shared: shared.clone(),
            url,
            link_tx,
            events: events_tx,
            stop: stop_rx,
        };
        if start_offline {
            let task = tokio::spawn(supervisor.run(None));
            drop(first_tx);
            return Ok((
                Client {
                    shared,
                    task: Arc::new(Mutex::new(Some(task))),
                },
                events_rx,
            ));
        }
        let task = tokio::spawn(supervisor.run(Some(first_tx)));
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    shared,
                    task: Arc::new(Mutex::new(Some(task))),
                },
                events_rx,
            )),
            Ok(Err(e)) => {
                let _ = task.await;
                Err(e)
            }
            Err(_) => Err(ClientError::Internal("client task ended before connecting")),
        }
    }

    /// Encrypts `text` for `to`, hands it to the relay and returns its
    /// message id once the relay accepted it (stored in `to`'s mailbox).
    /// The message is recorded in the history with status `sent`.
    pub async fn send_text(&self, to: &UserId, text: &str) -> Result<MessageId, ClientError> {
        let body = PayloadBody::Text {
            text: text.to_owned(),
        };
        let (payload, key_index) = self.send_payload(to, body, false).await?;
        let id = payload.id;
        let to = to.clone();
        self.with_engine(move |e| e.record_sent(&to, &payload, key_index))
            .await??;
        Ok(id)
    }

    /// Tells `to` that we started or stopped typing (ephemeral: dropped by
    /// the relay if `to` is offline). Needs an existing session. Returns
    /// whether the indicator went: a `Started` within [`TYPING_REFRESH`] of
    /// the previous one to `to`, a `Stopped` with no `Started` before it, or
    /// any indicator while they are paused (see
    /// [`ClientError::TypingPaused`]) is not sent, so callers may call this
    /// on every keystroke.
    pub async fn send_typing(&self, to: &UserId, state: TypingState) -> Result<bool, ClientError> {
        let now = tokio::time::Instant::now();
        let admitted = self
            .shared
            .typing
            .lock()
            .map(|mut t| t.admit(to, state, now))
            .unwrap_or(false);
        if !admitted {
            return Ok(false);
        }
        let sent = self.send_payload(to, Engine::typing(state), true).await;
        if sent.is_err()
            && let Ok(mut t) = self.shared.typing.lock()
        {
            t.failed(to, state);
        }
        match sent {
            Ok(_) => Ok(true),
            Err(ClientError::TypingPaused { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The users allowed to see our presence, as stored in the profile.
    pub async fn presence_allowed(&self) -> Result<Vec<UserId>, ClientError> {
        self.with_engine(|e| e.profile().presence_allowed()).await
    }

    /// Replaces the presence allow list: stored in the profile, then
    /// published to the relay (and again on every connection). Duplicates
    /// and our own id are dropped; more than
    /// [`MAX_PRESENCE_ALLOW`](crate::limits::MAX_PRESENCE_ALLOW) ids is
    /// [`ClientError::LimitExceeded`] and changes nothing.
    pub async fn set_presence_allowed(&self, users: Vec<UserId>) -> Result<(), ClientError> {
        self.change_presence_allowed(move |list| *list = users)
            .await
            .map(|_| ())
    }

    /// Adds `user` to the presence allow list and publishes it; returns
    /// whether the list changed.
    pub async fn allow_presence(&self, user: &UserId) -> Result<bool, ClientError> {
        let user = user.clone();
        self.change_presence_allowed(move |list| list.push(user))
            .await
    }

    /// Removes `user` from the presence allow list and publishes it;
    /// returns whether the list changed. From then on `user` sees us as
    /// they see a user who never allowed them.
    pub async fn deny_presence(&self, user: &UserId) -> Result<bool, ClientError> {
        let user = user.clone();
        self.change_presence_allowed(move |list| list.retain(|u| *u != user))
            .await
    }

    async fn change_presence_allowed(
        &self,
        change: impl FnOnce(&mut Vec<UserId>) + Send + 'static,
    ) -> Result<bool, ClientError> {
        let _serial = self.shared.presence_lock.lock().await;
        let link = self.link().await?;
        let (changed, list) = self
            .with_engine(move |e| -> Result<(bool, Vec<UserId>), ClientError> {
                let before = e.profile().presence_allowed();
                let mut list = before.clone();
                change(&mut list);
                let list = normalise_allow_list(list, e.user_id());
                if list.len() > crate::limits::MAX_PRESENCE_ALLOW {
                    return Err(ClientError::LimitExceeded {
                        what: "users on the presence allow list",
                        max: crate::limits::MAX_PRESENCE_ALLOW,
                    });
                }
                let changed = list != before;
                if changed {
                    e.profile_mut().set_presence_allowed(&list)?;
                }
                Ok((changed, list))
            })
            .await??;
        publish_allow_list(&link, list).await?;
        Ok(changed)
    }

    /// The presence of `users` (at most
    /// [`MAX_PRESENCE_QUERY`](crate::limits::MAX_PRESENCE_QUERY)), once: for
    /// each, hidden unless that user allowed us, in which case online and
    /// last seen. A user who does not exist is hidden too.
    pub async fn query_presence(
        &self,
        users: &[UserId],
    ) -> Result<Vec<PresenceEntry>, ClientError> {
        check_presence_request(
            users,
            "users in one presence query",
            crate::limits::MAX_PRESENCE_QUERY,
        )?;
        let users = users.to_vec();
        let link = self.link().await?;
        let reply = link
            .request(move |rid| ClientFrame::PresenceQuery(PresenceQuery { rid, users }))
            .await?;
        presence_reply(reply)
    }

    /// Subscribes to the presence of `users` (at most
    /// [`MAX_PRESENCE_SUBSCRIPTIONS`](crate::limits::MAX_PRESENCE_SUBSCRIPTIONS)
    /// distinct ids), replacing
    /// any earlier subscription, and returns the snapshot. Changes then
    /// arrive as [`Event::Presence`]; after a reconnect the subscription is
    /// renewed and its snapshot emitted as events. An empty list
    /// unsubscribes.
    pub async fn subscribe_presence(
        &self,
        users: Vec<UserId>,
    ) -> Result<Vec<PresenceEntry>, ClientError> {
        check_presence_request(
            &users,
            "presence subscriptions",
            crate::limits::MAX_PRESENCE_SUBSCRIPTIONS,
        )?;
        if let Ok(mut subs) = self.shared.presence_subscriptions.lock() {
            subs.clone_from(&users);
        }
        let link = self.link().await?;
        subscribe(&link, users).await
    }

    /// Tells `to` that we displayed their messages `ids`, unless read
    /// receipts are off in the profile settings, `to` is a message request
    /// not yet answered or accepted, or `to` is blocked.
    pub async fn send_read_receipt(
        &self,
        to: &UserId,
        ids: Vec<MessageId>,
    ) -> Result<(), ClientError> {
        let peer = to.clone();
        let enabled = self
            .with_engine(move |e| -> Result<bool, ClientError> {
                let contact = e.profile().contact(&peer)?;
                Ok(e.profile().settings().send_read_receipts
                    && contact.is_some_and(|c| !c.request && !c.blocked))
            })
            .await??;
        if enabled && !ids.is_empty() {
            let (_, key_index) = self
                .send_payload(to, Engine::receipt(ReceiptKind::Read, ids), false)
                .await?;
            let to = to.clone();
            self.with_engine(move |e| e.confirm_stored(&to, key_index))
                .await??;
        }
        Ok(())
    }

    /// Runs `f` on the profile (history, contacts, safety numbers...).
    /// Sessions the profile changed are read back from the store afterwards.
    pub async fn with_profile<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Profile) -> T + Send + 'static,
    ) -> Result<T, ClientError> {
        self.with_engine(move |e| {
            let out = f(e.profile_mut());
            e.invalidate_sessions();
            out
        })
        .await
    }

    /// Trusts the pending new identity key of `peer`, given the safety
    /// number the user compared ([`Profile::trust`]).
    pub async fn trust(&self, peer: &UserId, safety_number: &str) -> Result<(), ClientError> {
        let (peer, number, now) = (
            peer.clone(),
            safety_number.to_owned(),
            self.shared.clock.now_ms(),
        );
        self.with_profile(move |p| p.trust(&peer, &number, now))
            .await?
    }

    /// Rejects the pending new identity key of `peer` ([`Profile::reject`]).
    pub async fn reject(&self, peer: &UserId) -> Result<bool, ClientError> {
        let peer = peer.clone();
        self.with_profile(move |p| p.reject(&peer)).await?
    }

    /// Stops the client: closes the connection and ends the background task.
    pub async fn close(&self) {
        // Delivery receipts already queued get a moment to be accepted, so
        // a short-lived client (`hush recv`) confirms what it received
        // before it goes; any not accepted stay pending in the profile and
        // are sent on the next connection.
        let receipts = self
            .shared
            .receipt_tasks
            .lock()
            .map(|mut set| std::mem::take(&mut *set))
            .ok();
        if let Some(mut receipts) = receipts {
            let all = async { while receipts.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(RECEIPT_GRACE, all).await;
        }
        let _ = self.shared.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    async fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, ClientError> {
        with_engine(&self.shared.engine, f).await
    }

    /// Waits (up to the request timeout) for a live connection.
    async fn link(&self) -> Result<Arc<Link>, ClientError> {
        let mut rx = self.shared.link.clone();
        let wait = rx.wait_for(|l| l.is_some());
        match tokio::time::timeout(self.shared.config.request_timeout, wait).await {
            Ok(Ok(guard)) => guard.clone().ok_or(ClientError::Disconnected),
            Ok(Err(_)) => Err(ClientError::Stopped),
            Err(_) => Err(ClientError::Disconnected),
        }
    }

    /// Encrypts and queues a payload; waits for `accepted`. Retries the same
    /// ciphertext on a new connection if the old one dropped before the
    /// reply: the recipient's ratchet drops the second copy if both arrive.
    async fn send_payload(
        &self,
        to: &UserId,
        body: PayloadBody,
        ephemeral: bool,
    ) -> Result<(crate::payload::Payload, u64), ClientError> {
        let me = self.with_engine(|e| e.user_id().clone()).await?;
        if *to == me {
            return Err(ClientError::SelfRecipient);
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.request_timeout * 3;
        // A connection lost before the message was encrypted (during the
        // directory check or the bundle fetch) is retried from the start on
        // the next connection; once encrypted, the same ciphertext is
        // retried, never a new one.
        let (queued, mut reply) = loop {
            let link = self.link().await?;
            match self
                .enqueue_payload(&link, to, body.clone(), ephemeral)
                .await
            {
                Ok(encrypted) => break encrypted,
                Err(ClientError::Disconnected | ClientError::Timeout)
                    if tokio::time::Instant::now() < deadline =>
                {
                    debug!(to = %to, "connection lost before sending; retrying on the next one");
                }
                Err(e) => return Err(e),
            }
        };
        loop {
            let result = match reply {
                Ok(r) => r.wait().await,
                Err(e) => Err(e),
            };
            match result {
                Ok(ServerFrame::Accepted(_)) => return Ok((queued.payload, queued.key_index)),
                Ok(other) => {
                    return Err(ClientError::Protocol(format!(
                        "expected accepted, got {other:?}"
                    )));
                }
                Err(ClientError::Disconnected | ClientError::Timeout)
                    if tokio::time::Instant::now() < deadline =>
                {
                    debug!(to = %to, "send interrupted; retrying on the next connection");
                    let link = self.link().await?;
                    reply = link.enqueue(|rid| queued.frame(rid)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts `body` for `to` (starting a session if needed) and queues it
    /// on `link`, all under the send lock so that ratchet order is queue
    /// order. The outer error means nothing was encrypted; once encrypted,
    /// the message is returned with the outcome of queueing it, so a caller
    /// can retry the same ciphertext.
    async fn enqueue_payload(
        &self,
        link: &Link,
        to: &UserId,
        body: PayloadBody,
        ephemeral: bool,
    ) -> Result<(Queued, Result<ReplyFuture, ClientError>), ClientError> {
        let mut checked = self.shared.send_lock.lock().await;
        self.ensure_session(link, &mut checked, to, ephemeral)
            .await?;
        let now = self.shared.clock.now_ms();
        let to2 = to.clone();
        let outgoing = self
            .with_engine(move |e| e.encrypt(&to2, body, ephemeral, now))
            .await??;
        let queued = Queued {
            to: to.clone(),
            ciphertext: outgoing.ciphertext,
            ephemeral,
            payload: outgoing.payload,
            key_index: outgoing.key_index,
        };
        let reply = link.enqueue(|rid| queued.frame(rid)).await;
        Ok((queued, reply))
    }

    /// Makes sure a session with `to` exists and that the relay's directory
    /// still lists the identity we pinned; fetches a bundle if needed.
    async fn ensure_session(
        &self,
        link: &Link,
        checked: &mut HashSet<UserId>,
        to: &UserId,
        ephemeral: bool,
    ) -> Result<(), ClientError> {
        let to2 = to.clone();
        let ready = self
            .with_engine(move |e| e.ready_to_send(&to2, ephemeral))
            .await??;
        if ready {
            if ephemeral || checked.contains(to) {
                return Ok(());
            }
            // Once per connection, make sure the directory still lists the
            // identity we pinned: a peer who re-registered with a new key
            // must not silently receive messages under the old session.
            let reply = link
                .request(|rid| {
                    ClientFrame::Lookup(hush_protocol::frame::Lookup {
                        rid,
                        user_id: to.clone(),
                    })
                })
                .await
                .map_err(|e| match e {
                    ClientError::UnknownUser { .. } => ClientError::UnknownUser {
                        user: to.to_string(),
                    },
                    e => e,
                })?;
            let ServerFrame::Identity(listed) = reply else {
                return Err(ClientError::Protocol(format!(
                    "expected an identity, got {reply:?}"
                )));
            };
            let listed = crate::identity::IdentityPublic {
                sig_pub: listed.identity_key.0,
                dh_pub: listed.identity_dh.0,
                dh_sig: listed.identity_dh_sig.0,
            };
            let now = self.shared.clock.now_ms();
            let to2 = to.clone();
            self.with_engine(move |e| e.check_directory_identity(&to2, &listed, now))
                .await??;
            checked.insert(to.clone());
            return Ok(());
        }
        if ephemeral {
            // Typing indicators never start a session (that would consume
            // one of the peer's one-time prekeys for nothing).
            return Err(ClientError::UnknownContact { user: to.clone() });
        }
        let reply = link
            .request(|rid| {
                ClientFrame::FetchBundle(FetchBundle {
                    rid,
                    user_id: to.clone(),
                })
            })
            .await
            .map_err(|e| match e {
                ClientError::UnknownUser { .. } => ClientError::UnknownUser {
                    user: to.to_string(),
                },
                e => e,
            })?;
        let ServerFrame::Bundle(bundle) = reply else {
            return Err(ClientError::Protocol(format!(
                "expected a bundle, got {reply:?}"
            )));
        };
        if bundle.user_id != *to {
            return Err(ClientError::Protocol("bundle for another user".into()));
        }
        let bundle = bundle_from_frame(&bundle);
        let now = self.shared.clock.now_ms();
        let to2 = to.clone();
        self.with_engine(move |e| e.start_session(&to2, &bundle, now))
            .await??;
        checked.insert(to.clone());
        Ok(())
    }
}

async fn with_engine<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    f: impl FnOnce(&mut Engine) -> T + Send + 'static,
) -> Result<T, ClientError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = engine
            .lock()
            .map_err(|_| ClientError::Internal("client state lock poisoned"))?;
        Ok(f(&mut guard))
    })
    .await
    .map_err(|_| ClientError::Internal("client state task panicked"))?
}

/// Envelopes processed between two receipt flushes while the inbox is busy.
const RECEIPT_FLUSH_EVERY: usize = 100;

/// The background task: connects, reconnects, processes the inbox.
struct Supervisor {
    shared: Arc<Shared>,
    url: String,
    link_tx: watch::Sender<Option<Arc<Link>>>,
    events: mpsc::Sender<Event>,
    stop: watch::Receiver<bool>,
}

impl Supervisor {
    async fn run(mut self, first: Option<oneshot::Sender<Result<(), ClientError>>>) {
        let mut first = first;
        let mut attempt: u32 = 0;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_rng(&mut rand::rng());
        loop {
            if *self.stop.borrow() {
                break;
            }
            match self.connect_once().await {
                Ok((link, inbox, queued)) => {
                    attempt = 0;
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Ok(()));
                    }
                    let _ = self.link_tx.send(Some(link.clone()));
                    self.emit(Event::Connection(ConnectionState::Connected))
                        .await;
                    let end = self.serve(&link, inbox, queued).await;
                    let _ = self.link_tx.send(None);
                    match end {
                        End::Stopped => {
                            link.close().await;
                            break;
                        }
                        End::Replaced => {
                            self.emit(Event::Connection(ConnectionState::Replaced))
                                .await;
                            break;
                        }
                        End::Lost(reason) => {
                            let retry_in = self.shared.config.backoff.delay(0, &mut rng);
                            info!(%reason, "connection to the relay lost");
                            self.emit(Event::Connection(ConnectionState::Disconnected {
                                reason,
                                retry_in,
                            }))
                            .await;
                            if self.pause(retry_in).await {
                                break;
                            }
                        }
                    }
                }
                Err(e) if !e.is_transient() => {
                    warn!(error = %e, "cannot connect to the relay; giving up");
                    match first.take() {
                        Some(tx) => {
                            let _ = tx.send(Err(e));
                        }
                        None => {
                            self.emit(Event::Connection(ConnectionState::Stopped {
                                reason: e.to_string(),
                            }))
                            .await
                        }
                    }
                    break;
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    if first.is_some() && attempt >= self.shared.config.connect_attempts.max(1) {
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Err(e));
                        }
                        break;
                    }
                    let retry_in = self.shared.config.backoff.delay(attempt, &mut rng);
                    debug!(error = %e, attempt, ?retry_in, "connection attempt failed");
                    if first.is_none() {
                        self.emit(Event::Connection(ConnectionState::Disconnected {
                            reason: e.to_string(),
                            retry_in,
                        }))
                        .await;
                    }
                    if self.pause(retry_in).await {
                        break;
                    }
                }
            }
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(Err(ClientError::Stopped));
        }
    }

    /// On a new connection: publishes the allow list (its reply is only
    /// logged) and renews the presence subscription, whose reply the serve
    /// loop turns into [`Event::Presence`] snapshot events. Nothing here
    /// waits for a reply: the relay may be pushing a backlog that the inbox
    /// must take first. Failures are logged, not fatal: a relay without
    /// presence still carries messages.
    async fn renew_presence(&self, link: &Link) -> Option<Renewal> {
        {
            // Under the lock: a concurrent change publishes after us.
            let _serial = self.shared.presence_lock.lock().await;
            let published =
                match with_engine(&self.shared.engine, |e| e.profile().presence_allowed()).await {
                    Ok(users) => {
                        link.enqueue(move |rid| {
                            ClientFrame::PresenceAllow(PresenceAllow { rid, users })
                        })
                        .await
                    }
                    Err(e) => Err(e),
                };
            match published {
                Ok(reply) => {
                    tokio::spawn(async move {
                        if let Err(e) = reply.wait().await {
                            warn!(error = %e, "cannot publish the presence allow list");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "cannot publish the presence allow list"),
            }
        }
        let users = self
            .shared
            .presence_subscriptions
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if users.is_empty() {
            return None;
        }
        match link
            .enqueue(move |rid| ClientFrame::PresenceSubscribe(PresenceSubscribe { rid, users }))
            .await
        {
            Ok(reply) => Some(Box::pin(reply.wait())),
            Err(e) => {
                warn!(error = %e, "cannot renew presence subscriptions");
                None
            }
        }
    }

    /// The reply to a renewed subscription: its snapshot, as events.
    async fn on_renewal(&self, reply: Result<ServerFrame, ClientError>) {
        match reply.and_then(presence_reply) {
            Ok(snapshot) => {
                for entry in snapshot {
                    self.emit(Event::Presence(entry)).await;
                }
            }
            Err(e) => warn!(error = %e, "cannot renew presence subscriptions"),
        }
    }

    /// Sleeps unless stopped first; returns whether the client was stopped.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            _ = self.stop.wait_for(|s| *s) => true,
        }
    }

    async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    /// Connects, authenticates and brings our published keys up to date.
    /// Returns the link, the inbox and the id of the newest queued envelope.
    async fn connect_once(&self) -> Result<(Arc<Link>, mpsc::Receiver<Inbound>, u64), ClientError> {
        let (user_id, identity_key, pinned_relay) = {
            let e = self
                .shared
                .engine
                .lock()
                .map_err(|_| ClientError::Internal("client state lock poisoned"))?;
            (
                e.user_id().clone(),
                e.identity_key(),
                e.profile().settings().relay_id.clone(),
            )
        };
        let engine = self.shared.engine.clone();
        let sign = move |m: &[u8]| -> [u8; 64] {
            match engine.lock() {
                Ok(e) => e.sign(m),
                // A poisoned lock means a bug elsewhere; an all-zero
                // signature simply fails authentication.
                Err(_) => [0; 64],
            }
        };
        let creds = Credentials {
            user_id: &user_id,
            identity_key,
            sign: &sign,
            relay_id: pinned_relay.as_deref(),
        };
        let (link, inbox, handshake) = connection::open(
            &self.url,
            creds,
            self.shared.config.request_timeout,
            self.shared.config.max_frame_bytes,
            self.shared.config.ca_file.as_deref(),
        )
        .await?;
        let auth_ok = handshake.auth_ok;
        if pinned_relay.is_none() {
            // First connection of this profile (or one made before relay
            // ids were recorded): pin the relay it registered with.
            let relay_id = handshake.relay_id;
            with_engine(&self.shared.engine, move |e| {
                e.profile_mut()
                    .update_settings(|s| s.relay_id = Some(relay_id))
            })
            .await??;
        }
        if auth_ok.registered {
            // A mailbox created just now (first use, or the relay forgot us
            // after a reset or a memory relay's restart): its envelope ids
            // start over and must not match ids processed before.
            with_engine(&self.shared.engine, |e| e.forget_processed()).await??;
        }
        self.publish_keys(&link, auth_ok.has_keys, auth_ok.one_time_prekeys)
            .await?;
        // Peers' identities are checked against the directory once per
        // connection.
        self.shared.send_lock.lock().await.clear();
        Ok((link, inbox, auth_ok.last_queued))
    }

    async fn publish_keys(
        &self,
        link: &Link,
        has_keys: bool,
        published: u32,
    ) -> Result<(), ClientError> {
        let now = self.shared.clock.now_ms();
        // The rid is assigned when the frame is queued; build with 0 here.
        let frame = with_engine(&self.shared.engine, move |e| {
            e.keys_to_publish(0, has_keys, published, now)
        })
        .await??;
        if let Some(frame) = frame {
            let count = frame.one_time_prekeys.len();
            link.request(move |rid| {
                ClientFrame::PublishKeys(hush_protocol::frame::PublishKeys { rid, ..frame })
            })
            .await?;
            info!(one_time_prekeys = count, "published keys");
        }
        Ok(())
    }

    /// Processes the inbox until the connection ends or the client stops.
    async fn serve(
        &mut self,
        link: &Arc<Link>,
        mut inbox: mpsc::Receiver<Inbound>,
        last_queued: u64,
    ) -> End {
        // The relay pushes stored envelopes in id order, so the backlog
        // present at authentication is drained once the envelope with id
        // `last_queued` is processed (and acknowledged), or at once if there
        // was none or it was processed on an earlier connection.
        let backlog_done = !self.shared.config.receive || last_queued == 0 || {
            let seen =
                with_engine(&self.shared.engine, move |e| e.was_processed(last_queued)).await;
            matches!(seen, Ok(Ok(true)))
        };
        if backlog_done {
            self.emit(Event::Drained).await;
        }
        // Receipts queued on an earlier connection either were accepted
        // (and are no longer pending) or died with it: on a new connection
        // nothing is in flight. (A receipt whose acceptance is still being
        // recorded may go twice; a second receipt changes nothing.)
        if let Ok(mut in_flight) = self.shared.receipts_in_flight.lock() {
            in_flight.clear();
        }
        self.flush_receipts(link).await;
        let mut live = Live {
            typing: TypingTimers::default(),
            renewal: self.renew_presence(link).await,
        };
        let end = self
            .serve_inbox(link, &mut inbox, last_queued, backlog_done, &mut live)
            .await;
        if !matches!(end, End::Stopped) {
            // Their `Stopped` cannot reach us any more.
            for from in live.typing.clear() {
                self.emit(Event::Typing {
                    from,
                    state: TypingState::Stopped,
                })
                .await;
            }
        }
        end
    }

    async fn serve_inbox(
        &mut self,
        link: &Arc<Link>,
        inbox: &mut mpsc::Receiver<Inbound>,
        last_queued: u64,
        mut backlog_done: bool,
        live: &mut Live,
    ) -> End {
        let mut acks: Vec<u64> = Vec::new();
        let mut since_receipts = 0usize;
        let mut drained_pending = false;
        let mut key_check = tokio::time::interval_at(
            tokio::time::Instant::now() + KEY_CHECK_INTERVAL,
            KEY_CHECK_INTERVAL,
        );
        loop {
            let typing_deadline = live.typing.next_deadline();
            let woke = tokio::select! {
                item = inbox.recv() => Wake::Inbox(item),
                _ = self.stop.wait_for(|s| *s) => Wake::Stop,
                _ = key_check.tick() => Wake::KeyCheck,
                () = sleep_until_some(typing_deadline) => Wake::TypingExpired,
                reply = renewal_reply(&mut live.renewal) => Wake::Renewal(reply),
            };
            let next = match woke {
                Wake::Inbox(item) => Some(item),
                Wake::Stop => return End::Stopped,
                Wake::KeyCheck => None,
                Wake::TypingExpired => {
                    for from in live.typing.expire(tokio::time::Instant::now()) {
                        self.emit(Event::Typing {
                            from,
                            state: TypingState::Stopped,
                        })
                        .await;
                    }
                    continue;
                }
                Wake::Renewal(reply) => {
                    live.renewal = None;
                    self.on_renewal(reply).await;
                    continue;
                }
            };
            let Some(next) = next else {
                // A long-lived connection still rotates its signed prekey
                // when due (one-time prekeys are refilled on `prekeys_low`).
                let target = engine::ONE_TIME_PREKEY_TARGET;
                if let Err(e) = self.publish_keys(link, true, target).await {
                    warn!(error = %e, "signed prekey rotation failed");
                }
                continue;
            };
            let Some(item) = next else {
                return End::Lost("connection task ended".into());
            };
            match item {
                Inbound::Envelope(_) if !self.shared.config.receive => {}
                Inbound::Envelope(env) => {
                    if !backlog_done && env.id.is_some_and(|id| id >= last_queued) {
                        backlog_done = true;
                        drained_pending = true;
                    }
                    since_receipts += 1;
                    if let Err(e) = self.on_envelope(env, &mut acks, &mut live.typing).await {
                        warn!(error = %e, "failed to process an envelope; reconnecting");
                        return End::Lost(e.to_string());
                    }
                }
                Inbound::Presence(entry) => {
                    // The relay sends a subscription's reply before any
                    // update for it, and the reader hands the reply over
                    // before it queues what follows: so if the renewal's
                    // snapshot is not ready now, it is older than this.
                    if let Some(reply) = live.renewal.as_mut().and_then(|r| r.now_or_never()) {
                        live.renewal = None;
                        self.on_renewal(reply).await;
                    }
                    self.emit(Event::Presence(entry)).await;
                }
                Inbound::PrekeysLow(n) => {
                    if let Err(e) = self.publish_keys(link, true, n).await {
                        warn!(error = %e, "failed to refill one-time prekeys");
                    }
                }
                Inbound::Closed { code, reason } => {
                    return match code {
                        Some(close::REPLACED) => End::Replaced,
                        Some(c) => End::Lost(format!("closed by the relay ({c}: {reason})")),
                        None => End::Lost(reason),
                    };
                }
            }
            // Acknowledge in batches: whatever was processed while more
            // envelopes were already waiting goes in one `ack`, at most
            // `max_ack_ids` ids each (a long backlog is acknowledged as it
            // goes, not in one frame the relay would refuse).
            if !acks.is_empty() && (inbox.is_empty() || acks.len() >= crate::limits::MAX_ACK_IDS) {
                let ids = std::mem::take(&mut acks);
                for chunk in ids.chunks(crate::limits::MAX_ACK_IDS) {
                    let sent = link
                        .send_only(|rid| {
                            ClientFrame::Ack(hush_protocol::frame::Ack {
                                rid,
                                ids: chunk.to_vec(),
                            })
                        })
                        .await;
                    if sent.is_err() {
                        return End::Lost("connection lost while acknowledging".into());
                    }
                }
            }
            // Receipts go out once the inbox is empty, and every
            // `RECEIPT_FLUSH_EVERY` envelopes during a long backlog, so the
            // ids owed (kept in the contact record, rewritten with every
            // message) stay few.
            if inbox.is_empty() || since_receipts >= RECEIPT_FLUSH_EVERY {
                since_receipts = 0;
                self.flush_receipts(link).await;
            }
            if drained_pending && acks.is_empty() {
                drained_pending = false;
                self.emit(Event::Drained).await;
            }
        }
    }

    /// Sends the delivery receipts owed (recorded with each stored message),
    /// one receipt per peer for all its pending ids, and clears them once the
    /// relay accepted it. A receipt still in flight is not sent twice; one
    /// lost with a connection is sent again on the next.
    async fn flush_receipts(&self, link: &Arc<Link>) {
        if !self.shared.config.delivery_receipts {
            return;
        }
        let pending = match with_engine(&self.shared.engine, |e| e.pending_receipts()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) | Err(e) => {
                warn!(error = %e, "cannot read pending receipts");
                return;
            }
        };
        // Flushes run one at a time (only this task calls them), so once a
        // read of the pending set no longer shows an id, no later read will:
        // ids are dropped from the in-flight set then, and an id read while
        // its clearing commit was still under way stays claimed meanwhile.
        let batches: Vec<(UserId, Vec<MessageId>)> = {
            let Ok(mut in_flight) = self.shared.receipts_in_flight.lock() else {
                return;
            };
            in_flight
                .retain(|(peer, id)| pending.iter().any(|(p, ids)| p == peer && ids.contains(id)));
            pending
                .into_iter()
                .filter_map(|(peer, ids)| {
                    let fresh: Vec<MessageId> = ids
                        .into_iter()
                        .filter(|id| in_flight.insert((peer.clone(), *id)))
                        .collect();
                    (!fresh.is_empty()).then_some((peer, fresh))
                })
                .collect()
        };
        for (peer, ids) in batches {
            let client = Client {
                shared: self.shared.clone(),
                task: Arc::new(Mutex::new(None)),
            };
            let body = Engine::receipt(ReceiptKind::Delivered, ids.clone());
            // Queued now, so it leaves before anything queued later (a close
            // included); the reply is awaited apart so the inbox never
            // waits for it.
            let queued = client
                .enqueue_payload(link, &peer, body, false)
                .await
                .and_then(|(q, reply)| reply.map(|r| (q, r)));
            let shared = self.shared.clone();
            let waiter = async move {
                let accepted = match queued {
                    Ok((q, reply)) => reply.wait().await.map(|_| q.key_index),
                    Err(e) => Err(e),
                };
                match accepted {
                    Ok(key_index) => {
                        let (p, sent) = (peer.clone(), ids.clone());
                        let cleared = with_engine(&shared.engine, move |e| {
                            e.clear_receipts(&p, &sent, key_index)
                        })
                        .await;
                        if let Ok(Err(e)) | Err(e) = cleared {
                            warn!(error = %e, "cannot clear sent receipts");
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, peer = %peer, "delivery receipt not sent; kept for later");
                        // Unclaim, so the next flush sends them again.
                        if let Ok(mut in_flight) = shared.receipts_in_flight.lock() {
                            for id in &ids {
                                in_flight.remove(&(peer.clone(), *id));
                            }
                        }
                    }
                }
            };
            if let Ok(mut tasks) = self.shared.receipt_tasks.lock() {
                // Reap finished waiters so the set stays small.
                while tasks.try_join_next().is_some() {}
                tasks.spawn(waiter);
            }
        }
    }

    async fn on_envelope(
        &self,
        envelope: hush_protocol::frame::Envelope,
        acks: &mut Vec<u64>,
        typing: &mut TypingTimers,
    ) -> Result<(), ClientError> {
        let now = self.shared.clock.now_ms();
        let processed =
            with_engine(&self.shared.engine, move |e| e.process(&envelope, now)).await??;
        if let Some(id) = processed.ack {
            acks.push(id);
        }
        for event in processed.events {
            // A refresh of a typing peer, or a `Stopped` of one no longer
            // typing, is not news.
            let news = match &event {
                Event::Typing {
                    from,
                    state: TypingState::Started,
                } => typing.started(
                    from,
                    tokio::time::Instant::now(),
                    self.shared.config.typing_timeout,
                ),
                Event::Typing {
                    from,
                    state: TypingState::Stopped,
                } => typing.stopped(from),
                _ => true,
            };
            if news {
                self.emit(event).await;
            }
        }
        Ok(())
    }
}

/// The reply to a presence subscription renewed on connection.
type Renewal = Pin<Box<dyn Future<Output = Result<ServerFrame, ClientError>> + Send>>;

/// What woke the serve loop.
enum Wake {
    Inbox(Option<Inbound>),
    Stop,
    KeyCheck,
    TypingExpired,
    Renewal(Result<ServerFrame, ClientError>),
}

/// Per-connection state of the serve loop.
struct Live {
    /// Peers typing to us, and until when.
    typing: TypingTimers,
    /// The renewed subscription's reply, until it comes.
    renewal: Option<Renewal>,
}

/// Waits for the renewal's reply, or forever without one.
async fn renewal_reply(renewal: &mut Option<Renewal>) -> Result<ServerFrame, ClientError> {
    match renewal {
        Some(r) => r.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The allow list as published: in order, without duplicates or `me`.
fn normalise_allow_list(list: Vec<UserId>, me: &UserId) -> Vec<UserId> {
    let mut seen = HashSet::new();
    list.into_iter()
        .filter(|u| u != me && seen.insert(u.clone()))
        .collect()
}

/// Refuses a request the relay would refuse: more than `max` distinct ids.
fn check_presence_request(
    users: &[UserId],
    what: &'static str,
    max: usize,
) -> Result<(), ClientError> {
    let distinct: HashSet<&UserId> = users.iter().collect();
    if distinct.len() > max {
        return Err(ClientError::LimitExceeded { what, max });
    }
    Ok(())
}

async fn publish_allow_list(link: &Link, users: Vec<UserId>) -> Result<(), ClientError> {
    match link
        .request(move |rid| ClientFrame::PresenceAllow(PresenceAllow { rid, users }))
        .await?
    {
        ServerFrame::PresenceAllowed(_) => Ok(()),
        other => Err(ClientError::Protocol(format!(
            "expected presence_allowed, got {other:?}"
        ))),
    }
}

async fn subscribe(link: &Link, users: Vec<UserId>) -> Result<Vec<PresenceEntry>, ClientError> {
    let reply = link
        .request(move |rid| ClientFrame::PresenceSubscribe(PresenceSubscribe { rid, users }))
        .await?;
    presence_reply(reply)
}

fn presence_reply(reply: ServerFrame) -> Result<Vec<PresenceEntry>, ClientError> {
    match reply {
        ServerFrame::Presence(p) => Ok(p.users),
        other => Err(ClientError::Protocol(format!(
            "expected presence, got {other:?}"
        ))),
    }
}

/// An encrypted payload and the `send` frame that carries it.
struct Queued {
    to: UserId,
    ciphertext: Vec<u8>,
    ephemeral: bool,
    payload: crate::payload::Payload,
    /// The contact's message-key count after this payload's encryption.
    key_index: u64,
}

impl Queued {
    fn frame(&self, rid: u64) -> ClientFrame {
        ClientFrame::Send(SendEnvelope {
            rid,
            to: self.to.clone(),
            body: Body(self.ciphertext.clone()),
            ephemeral: self.ephemeral,
        })
    }
}

enum End {
    Stopped,
    Replaced,
    Lost(String),
}
