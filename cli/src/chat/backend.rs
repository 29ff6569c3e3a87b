//! What `hush chat` needs from the profile and the relay, behind one
//! trait: [`Direct`] (a client of its own, the profile opened here) or
//! [`Daemon`] (a running `hush daemon` of the profile, through its socket:
//! requests on one connection, the `receive` stream on another, whose
//! event objects are read back into client [`Event`]s).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hush_client_core::UserId;
use hush_client_core::client::{
    Client, ClientError, Event, IncomingMessage, PresenceEntry, PresenceState,
};
use hush_client_core::payload::{MessageId, ReceiptKind, TypingState};
use hush_client_core::store::MessageFlags;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::daemon::client::DaemonClient;
use crate::exit::{CliError, Failure};
use crate::ops;

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a message was not sent, short enough for the status line.
#[derive(Debug)]
pub struct SendError {
    /// The peer's identity key changed (sending stops until trusted).
    pub key_changed: bool,
    pub why: String,
}

/// The stored conversation with a peer (the newest [`super::HISTORY`]) and
/// the contact, if known.
pub type Opened = ops::OpenedChat;

pub trait ChatBackend: Send + Sync {
    fn open(&self, peer: UserId) -> Fut<'_, Result<Opened, String>>;
    fn send_text(&self, peer: UserId, text: String) -> Fut<'_, Result<MessageId, SendError>>;
    /// Best effort.
    fn send_typing(&self, peer: UserId, state: TypingState) -> Fut<'_, ()>;
    /// Accepts a message request from `peer` if it is one, then sends a
    /// read receipt for `ids`.
    fn read(&self, peer: UserId, ids: Vec<MessageId>) -> Fut<'_, Result<(), String>>;
    fn subscribe_presence(&self, peer: UserId) -> Fut<'_, Vec<PresenceEntry>>;
    fn close(&self) -> Fut<'_, ()>;
}

fn key_changed_line(peer: &str) -> String {
    format!("{peer}'s key changed; quit, check `hush safety-number {peer}`, then trust or reject")
}

/// One line on why a message was not sent.
fn send_failure(e: &ClientError, peer: &str) -> SendError {
    let why = match e {
        ClientError::IdentityChanged { .. } => key_changed_line(peer),
        ClientError::UnknownUser { .. } | ClientError::UnknownContact { .. } => {
            format!("{peer} is not registered on the relay")
        }
        ClientError::RateLimited => "rate limited by the relay; try again shortly".to_owned(),
        ClientError::MailboxFull => format!("{peer}'s mailbox on the relay is full"),
        e => e.to_string(),
    };
    SendError {
        key_changed: matches!(e, ClientError::IdentityChanged { .. }),
        why,
    }
}

/// The profile opened here, with a client of its own.
pub struct Direct(pub Client);

impl ChatBackend for Direct {
    fn open(&self, peer: UserId) -> Fut<'_, Result<Opened, String>> {
        Box::pin(async move {
            let loaded = self
                .0
                .with_profile(move |p| ops::open_chat(p, &peer, super::HISTORY))
                .await;
            match loaded {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.message),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn send_text(&self, peer: UserId, text: String) -> Fut<'_, Result<MessageId, SendError>> {
        Box::pin(async move {
            self.0
                .send_text(&peer, &text)
                .await
                .map_err(|e| send_failure(&e, peer.as_str()))
        })
    }

    fn send_typing(&self, peer: UserId, state: TypingState) -> Fut<'_, ()> {
        Box::pin(async move {
            let _ = self.0.send_typing(&peer, state).await;
        })
    }

    fn read(&self, peer: UserId, ids: Vec<MessageId>) -> Fut<'_, Result<(), String>> {
        Box::pin(async move { ops::read(&self.0, &peer, ids).await.map_err(|e| e.message) })
    }

    fn subscribe_presence(&self, peer: UserId) -> Fut<'_, Vec<PresenceEntry>> {
        Box::pin(async move {
            self.0
                .subscribe_presence(vec![peer])
                .await
                .unwrap_or_default()
        })
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(self.0.close())
    }
}

/// A running daemon: requests go one at a time on one connection.
pub struct Daemon(pub Mutex<DaemonClient>);

impl Daemon {
    async fn call(&self, method: &str, params: Value) -> Result<Value, CliError> {
        self.0.lock().await.call(method, params).await
    }
}

impl ChatBackend for Daemon {
    fn open(&self, peer: UserId) -> Fut<'_, Result<Opened, String>> {
        Box::pin(async move {
            let params = json!({ "peer": peer.as_str(), "limit": super::HISTORY });
            let r = self
                .call("chat_open", params)
                .await
                .map_err(|e| e.message)?;
            serde_json::from_value(r)
                .map_err(|_| "the hush daemon sent an unreadable conversation".to_owned())
        })
    }

    fn send_text(&self, peer: UserId, text: String) -> Fut<'_, Result<MessageId, SendError>> {
        Box::pin(async move {
            let params = json!({ "to": peer.as_str(), "text": text });
            match self.call("send", params).await {
                Ok(r) => r
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(MessageId::from_hex)
                    .ok_or_else(|| SendError {
                        key_changed: false,
                        why: "the hush daemon sent no message id".to_owned(),
                    }),
                Err(e) if e.failure == Failure::IdentityChanged => Err(SendError {
                    key_changed: true,
                    why: key_changed_line(peer.as_str()),
                }),
                Err(e) => Err(SendError {
                    key_changed: false,
                    why: e.message,
                }),
            }
        })
    }

    fn send_typing(&self, peer: UserId, state: TypingState) -> Fut<'_, ()> {
        Box::pin(async move {
            let state = match state {
                TypingState::Started => "started",
                TypingState::Stopped => "stopped",
            };
            let _ = self
                .call("typing", json!({ "peer": peer.as_str(), "state": state }))
                .await;
        })
    }

    fn read(&self, peer: UserId, ids: Vec<MessageId>) -> Fut<'_, Result<(), String>> {
        Box::pin(async move {
            let ids: Vec<String> = ids.iter().map(MessageId::to_hex).collect();
            self.call("read", json!({ "peer": peer.as_str(), "ids": ids }))
                .await
                .map(|_| ())
                .map_err(|e| e.message)
        })
    }

    fn subscribe_presence(&self, peer: UserId) -> Fut<'_, Vec<PresenceEntry>> {
        // Asked once: live changes reach this connection only for the
        // peer the chat opened with.
        Box::pin(async move {
            let r = self
                .call("presence", json!({ "users": [peer.as_str()] }))
                .await;
            r.ok()
                .and_then(|r| r.get("presence").and_then(Value::as_array).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(presence_entry)
                .collect()
        })
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async {})
    }
}

/// Streams a daemon's events (a second connection, subscribed with
/// `receive`) into `tx` as client events, until either side ends.
pub async fn daemon_events(mut d: DaemonClient, tx: mpsc::Sender<Event>) {
    while let Ok(Some((method, params))) = d.notification().await {
        if method != "event" {
            continue;
        }
        if let Some(e) = event(&params)
            && tx.send(e).await.is_err()
        {
            return;
        }
    }
}

fn user(v: &Value, field: &str) -> Option<UserId> {
    UserId::try_from(v.get(field)?.as_str()?).ok()
}

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn flag(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_bool).unwrap_or(false)
}

fn number(v: &Value, field: &str) -> u64 {
    v.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn presence_entry(v: &Value) -> Option<PresenceEntry> {
    let state = flag(v, "visible").then(|| PresenceState {
        online: flag(v, "online"),
        last_seen_ms: v.get("last_seen").and_then(Value::as_u64),
    });
    Some(PresenceEntry {
        user: user(v, "user")?,
        state,
    })
}

fn incoming(v: &Value, from: &str) -> Option<IncomingMessage> {
    Some(IncomingMessage {
        from: user(v, from)?,
        id: MessageId::from_hex(v.get("id")?.as_str()?)?,
        text: text(v, "text"),
        sent_at_ms: number(v, "sent_at"),
        accepted_at_ms: number(v, "accepted_at"),
        envelope_id: None,
        flags: MessageFlags {
            identity_unverified: !flag(v, "verified"),
            from_changed_key: flag(v, "key_changed"),
            request: flag(v, "request"),
        },
    })
}

/// A `recv --json` event object read back ([`crate::output::event_json`]).
fn event(v: &Value) -> Option<Event> {
    Some(match v.get("type")?.as_str()? {
        "message" => Event::Message(incoming(v, "from")?),
        "unconfirmed_message" => Event::UnconfirmedMessage {
            message: incoming(v, "claimed_from")?,
            fingerprint: text(v, "key_fingerprint"),
            rejected: flag(v, "rejected"),
        },
        "receipt" => Event::Receipt {
            from: user(v, "from")?,
            kind: match v.get("kind")?.as_str()? {
                "read" => ReceiptKind::Read,
                _ => ReceiptKind::Delivered,
            },
            message_ids: v
                .get("ids")?
                .as_array()?
                .iter()
                .filter_map(|i| MessageId::from_hex(i.as_str()?))
                .collect(),
        },
        "typing" => Event::Typing {
            from: user(v, "from")?,
            state: match v.get("state")?.as_str()? {
                "started" => TypingState::Started,
                _ => TypingState::Stopped,
            },
        },
        "presence" => Event::Presence(presence_entry(v)?),
        "identity_changed" => Event::IdentityChanged {
            user: user(v, "user")?,
        },
        "undecryptable" => Event::Undecryptable {
            from: user(v, "from")?,
            envelope_id: v.get("envelope_id").and_then(Value::as_u64),
            reason: text(v, "reason"),
        },
        _ => return None,
    })
}

/// Shared by the chat's tasks.
pub type Shared = Arc<dyn ChatBackend>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::event_json;

    #[test]
    fn event_objects_read_back_into_the_same_events() {
        let bob = UserId::try_from("bob").unwrap_or_else(|e| panic!("{e}"));
        let events = [
            Event::Message(IncomingMessage {
                from: bob.clone(),
                id: MessageId([3; 16]),
                text: "hi\nthere".into(),
                sent_at_ms: 5,
                accepted_at_ms: 6,
                envelope_id: None,
                flags: MessageFlags {
                    identity_unverified: true,
                    from_changed_key: false,
                    request: true,
                },
            }),
            Event::Receipt {
                from: bob.clone(),
                kind: ReceiptKind::Read,
                message_ids: vec![MessageId([1; 16])],
            },
            Event::Typing {
                from: bob.clone(),
                state: TypingState::Started,
            },
            Event::Presence(PresenceEntry::hidden(bob.clone())),
            Event::IdentityChanged { user: bob },
        ];
        for e in events {
            let v = event_json(&e).unwrap_or_else(|| panic!("{e:?} has JSON"));
            assert_eq!(event(&v), Some(e));
        }
    }
}
