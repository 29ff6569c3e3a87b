//! Sending: text and typing payloads, encrypted under the send lock
//! (ratchet order is queue order), starting a session from a fetched
//! bundle when needed, and retried as the same ciphertext across
//! reconnections.

use std::collections::HashSet;

use hush_protocol::frame::{FetchBundle, SendEnvelope};
use hush_protocol::{Body, ClientFrame, ServerFrame, UserId};
use tracing::debug;

use super::handle::Client;
use super::link::{Link, ReplyFuture};
use crate::engine::Engine;
use crate::error::ClientError;
use crate::payload::{MessageId, PayloadBody, TypingState};
use crate::wire::bundle_from_frame;

impl Client {
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

    /// Encrypts and queues a payload; waits for `accepted`. Retries the same
    /// ciphertext on a new connection if the old one dropped before the
    /// reply: the recipient's ratchet drops the second copy if both arrive.
    pub(super) async fn send_payload(
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
    pub(super) async fn enqueue_payload(
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
    pub(super) async fn ensure_session(
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
            let listed = crate::wire::identity_from_frame(&listed);
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

/// An encrypted payload and the `send` frame that carries it.
pub(super) struct Queued {
    pub(super) to: UserId,
    pub(super) ciphertext: Vec<u8>,
    pub(super) ephemeral: bool,
    pub(super) payload: crate::payload::Payload,
    /// The contact's message-key count after this payload's encryption.
    pub(super) key_index: u64,
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
