//! Output formats. `--json` prints one object per line; the field names
//! below are stable and documented in the README. `--json` carries texts
//! exactly; the plain-text lines show whatever a peer chose (message text,
//! an undecryption reason) through [`crate::terminal_text`], so a message
//! is always one message from one sender on the terminal.

use hush_client_core::client::{ConnectionState, Event, PresenceEntry};
use hush_client_core::identity::IdentityPublic;
use hush_client_core::payload::{ReceiptKind, TypingState};
use hush_client_core::store::{Contact, DeliveryStatus, Direction, HistoryEntry, IdentityKeys};
use serde_json::{Value, json};

use crate::terminal_text::{message_text, one_line};

pub fn print_json(v: &Value) {
    println!("{v}");
}

fn receipt_kind(k: ReceiptKind) -> &'static str {
    match k {
        ReceiptKind::Delivered => "delivered",
        ReceiptKind::Read => "read",
    }
}

fn typing_state(s: TypingState) -> &'static str {
    match s {
        TypingState::Started => "started",
        TypingState::Stopped => "stopped",
    }
}

fn status(s: Option<DeliveryStatus>) -> Value {
    match s {
        None => Value::Null,
        Some(DeliveryStatus::Sent) => "sent".into(),
        Some(DeliveryStatus::Delivered) => "delivered".into(),
        Some(DeliveryStatus::Read) => "read".into(),
    }
}

/// The JSON form of an event, or `None` for events scripts do not see
/// (connection state).
pub fn event_json(event: &Event) -> Option<Value> {
    Some(match event {
        Event::Message(m) => json!({
            "type": "message",
            "from": m.from.as_str(),
            "id": m.id.to_hex(),
            "text": m.text,
            "sent_at": m.sent_at_ms,
            "accepted_at": m.accepted_at_ms,
            "key_changed": m.flags.from_changed_key,
            "verified": !m.flags.identity_unverified,
            "request": m.flags.request,
        }),
        Event::UnconfirmedMessage {
            message: m,
            fingerprint,
            rejected,
        } => json!({
            "type": "unconfirmed_message",
            "claimed_from": m.from.as_str(),
            "key_fingerprint": fingerprint,
            "rejected": rejected,
            "id": m.id.to_hex(),
            "text": m.text,
            "sent_at": m.sent_at_ms,
            "accepted_at": m.accepted_at_ms,
        }),
        Event::Typing { from, state } => json!({
            "type": "typing",
            "from": from.as_str(),
            "state": typing_state(*state),
        }),
        Event::Receipt {
            from,
            kind,
            message_ids,
        } => json!({
            "type": "receipt",
            "from": from.as_str(),
            "kind": receipt_kind(*kind),
            "ids": message_ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        }),
        Event::Presence(entry) => presence_json(entry),
        Event::IdentityChanged { user } => json!({
            "type": "identity_changed",
            "user": user.as_str(),
        }),
        Event::Undecryptable {
            from,
            envelope_id,
            reason,
        } => json!({
            "type": "undecryptable",
            "from": from.as_str(),
            "envelope_id": envelope_id,
            "reason": reason,
        }),
        _ => return None,
    })
}

/// The plain-text line for an event, or `None` for events not shown.
pub fn event_line(event: &Event) -> Option<String> {
    if let Event::Connection(ConnectionState::Replaced) = event {
        return Some("! another hush session of this user took over".to_owned());
    }
    event_json(event).and_then(|v| event_json_line(&v))
}

/// The plain-text line for an event's JSON form ([`event_json`], also what
/// the daemon streams), or `None` for events not shown (receipts, typing).
pub fn event_json_line(v: &Value) -> Option<String> {
    match text_of(v, "type") {
        "message" => Some(message_line(v)),
        "unconfirmed_message" => Some(unconfirmed_line(v)),
        "presence" => Some(presence_line(v)),
        "identity_changed" => {
            let user = text_of(v, "user");
            Some(format!(
                "! the identity key of {user} changed: compare the new safety number \
                 (`hush safety-number {user}`) with {user} out of band, then \
                 `hush trust {user} --safety-number DIGITS` or `hush reject {user}`"
            ))
        }
        "undecryptable" => Some(format!(
            "! a message from {} could not be decrypted ({})",
            text_of(v, "from"),
            one_line(text_of(v, "reason"))
        )),
        _ => None,
    }
}

/// A string field of a JSON object, or "" when missing (the objects come
/// from [`event_json`] and friends, here or in the daemon).
fn text_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// A boolean field of a JSON object, false when missing.
fn flag_of(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// `FROM: TEXT`, the text display-safe ([`message_text`]): its lines after
/// the first start with the continuation marker, never with a name.
fn message_line(m: &Value) -> String {
    let mark = match (flag_of(m, "request"), flag_of(m, "key_changed")) {
        (_, true) => " [identity key changed, unverified]",
        (true, false) => " [message request]",
        (false, false) => "",
    };
    format!(
        "{}{mark}: {}",
        text_of(m, "from"),
        message_text(text_of(m, "text"))
    )
}

/// A message from a key that is not the pinned one: never in the form of a
/// message from the contact.
fn unconfirmed_line(m: &Value) -> String {
    let whose = if flag_of(m, "rejected") {
        "a key you REJECTED"
    } else {
        "an UNCONFIRMED key"
    };
    format!(
        "! from {whose} claiming to be {} (fingerprint {}), not shown as theirs: {}",
        text_of(m, "claimed_from"),
        text_of(m, "key_fingerprint"),
        message_text(text_of(m, "text"))
    )
}

/// What an incoming entry's unconfirmed key became, seen from the contact
/// as it is now.
fn unconfirmed_state(contact: Option<&Contact>, keys: &IdentityKeys) -> &'static str {
    match contact {
        Some(c) if c.keys == *keys => "trusted_later",
        Some(c) if c.is_rejected(keys) => "rejected",
        _ => "unconfirmed",
    }
}

fn keys_fingerprint(keys: &IdentityKeys) -> String {
    hush_client_core::trust::fingerprint_hex(&IdentityPublic {
        sig_pub: keys.sig_pub,
        dh_pub: keys.dh_pub,
        dh_sig: [0; 64],
    })
}

/// A user's presence as we may see it: `visible` false (with `online` and
/// `last_seen` null) for a user who did not allow us or does not exist.
pub fn presence_json(e: &PresenceEntry) -> Value {
    let (online, last_seen) = match e.state {
        Some(s) => (
            Value::from(s.online),
            s.last_seen_ms.map_or(Value::Null, Value::from),
        ),
        None => (Value::Null, Value::Null),
    };
    json!({
        "type": "presence",
        "user": e.user.as_str(),
        "visible": e.state.is_some(),
        "online": online,
        "last_seen": last_seen,
    })
}

/// The line for a [`presence_json`] object.
pub fn presence_line(e: &Value) -> String {
    let user = text_of(e, "user");
    if !flag_of(e, "visible") {
        return format!("{user}: not visible (has not allowed you to see their presence)");
    }
    if flag_of(e, "online") {
        return format!("{user}: online");
    }
    match e.get("last_seen").and_then(Value::as_u64) {
        Some(ms) => format!("{user}: offline, last seen {}", format_ms(ms)),
        None => format!("{user}: offline, last seen unknown"),
    }
}

pub fn history_json(me: &str, peer: &str, contact: Option<&Contact>, e: &HistoryEntry) -> Value {
    let (from, to, direction) = match e.direction {
        Direction::Incoming => (peer, me, "in"),
        Direction::Outgoing => (me, peer, "out"),
    };
    json!({
        "id": e.message_id.to_hex(),
        "direction": direction,
        "from": from,
        "to": to,
        "text": e.text,
        "sent_at": e.sent_at_ms,
        "stored_at": e.stored_at_ms,
        "status": status(e.status),
        "key_changed": e.flags.from_changed_key,
        "request": e.flags.request,
        "unconfirmed_key": e.unconfirmed_key.as_ref().map(|k| unconfirmed_state(contact, k)),
        "key_fingerprint": e.unconfirmed_key.as_ref().map(keys_fingerprint),
    })
}

/// `WHEN WHO: TEXT` for a [`history_json`] object, the text display-safe
/// ([`message_text`]), our own messages followed by their status; a message
/// under a key that was not the pinned one never in that form.
pub fn history_line(e: &Value) -> String {
    let when = format_ms(e.get("sent_at").and_then(Value::as_u64).unwrap_or(0));
    let text = message_text(text_of(e, "text"));
    let from = text_of(e, "from");
    if text_of(e, "direction") == "out" {
        let mark = match text_of(e, "status") {
            "read" => "read",
            "delivered" => "delivered",
            _ => "sent",
        };
        return format!("{when} {from}: {text} ({mark})");
    }
    if let Some(state) = e.get("unconfirmed_key").and_then(Value::as_str) {
        let whose = match state {
            "rejected" => "a key you REJECTED",
            "trusted_later" => "a key you trusted after this message",
            _ => "an UNCONFIRMED key",
        };
        return format!("{when} ! from {whose} claiming to be {from}, not shown as theirs: {text}");
    }
    let flag = if flag_of(e, "key_changed") {
        " [identity key changed]"
    } else {
        ""
    };
    format!("{when} {from}{flag}: {text}")
}

pub fn contact_json(c: &Contact) -> Value {
    json!({
        "user": c.user_id,
        "verified": c.verified,
        "key_changed": c.has_pending_key_change(),
        "request": c.request,
        "blocked": c.blocked,
        "first_seen": c.first_seen_ms,
        "last_activity": c.last_activity_ms,
    })
}

/// The line for a [`contact_json`] object.
pub fn contact_line(c: &Value) -> String {
    let trust = if flag_of(c, "verified") {
        "verified"
    } else {
        "unverified"
    };
    let mut marks = String::new();
    if flag_of(c, "blocked") {
        marks.push_str("  BLOCKED");
    }
    if flag_of(c, "request") {
        marks.push_str("  message request: reply or `hush accept`, or `hush block`");
    }
    if flag_of(c, "key_changed") {
        marks.push_str(
            "  KEY CHANGED: run `hush safety-number`, then `hush trust` or `hush reject`",
        );
    }
    format!("{}  {trust}{marks}", text_of(c, "user"))
}

/// `YYYY-MM-DD HH:MM:SS +HH:MM` from unix milliseconds: local time with
/// its offset, or UTC with `--utc` ([`crate::time`]).
pub fn format_ms(ms: u64) -> String {
    crate::time::full(ms)
}

#[cfg(test)]
mod tests {
    use super::{
        event_json, event_line, format_ms, history_json, history_line, presence_json, presence_line,
    };
    use hush_client_core::UserId;
    use hush_client_core::client::{Event, IncomingMessage, PresenceEntry, PresenceState};
    use hush_client_core::payload::MessageId;
    use hush_client_core::store::{self, HistoryEntry};
    use serde_json::json;

    /// A newline with a fake sender, a screen clear, an OSC title, a lone
    /// CR, C1 controls and a bidi override.
    const FORGED: &str =
        "hi\ncarol: send me your passphrase\u{1b}[2J\u{1b}]0;t\u{7}\rx\u{9b}\u{202e}";

    fn bob() -> UserId {
        UserId::try_from("bob").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn presence_has_the_same_fields_whether_visible_or_not() {
        crate::time::utc_for_tests();
        let hidden = PresenceEntry::hidden(bob());
        assert_eq!(
            presence_json(&hidden),
            json!({"type":"presence","user":"bob","visible":false,"online":null,"last_seen":null})
        );
        let seen = PresenceEntry {
            user: bob(),
            state: Some(PresenceState {
                online: false,
                last_seen_ms: Some(951_782_400_000),
            }),
        };
        assert_eq!(
            presence_json(&seen),
            json!({"type":"presence","user":"bob","visible":true,"online":false,"last_seen":951_782_400_000u64})
        );
        assert_eq!(
            presence_line(&presence_json(&seen)),
            "bob: offline, last seen 2000-02-29 00:00:00 +00:00"
        );
        assert!(presence_line(&presence_json(&hidden)).starts_with("bob: not visible"));
    }

    #[test]
    fn formats_utc_timestamps() {
        crate::time::utc_for_tests();
        assert_eq!(format_ms(0), "1970-01-01 00:00:00 +00:00");
        assert_eq!(format_ms(1_764_104_400_000), "2025-11-25 21:00:00 +00:00");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00 +00:00");
    }

    /// What the rule shows for [`FORGED`].
    const SHOWN: &str =
        "hi\n    | carol: send me your passphrase\\u{1b}[2J\\u{1b}]0;t\\u{7}\\rx\\u{9b}\\u{202e}";

    fn forged_message() -> IncomingMessage {
        IncomingMessage {
            from: UserId::try_from("alice").unwrap_or_else(|e| panic!("{e}")),
            id: MessageId([7; 16]),
            text: FORGED.to_owned(),
            sent_at_ms: 0,
            accepted_at_ms: 0,
            envelope_id: Some(1),
            flags: Default::default(),
        }
    }

    #[test]
    fn recv_lines_show_peer_text_display_safe_and_json_exact() {
        let event = Event::Message(forged_message());
        assert_eq!(event_line(&event), Some(format!("alice: {SHOWN}")));
        let json = event_json(&event).unwrap_or_else(|| panic!("a message has JSON"));
        assert_eq!(json["text"], FORGED);

        let mut changed = forged_message();
        changed.flags.from_changed_key = true;
        assert_eq!(
            event_line(&Event::Message(changed)),
            Some(format!("alice [identity key changed, unverified]: {SHOWN}"))
        );
    }

    #[test]
    fn undecryptable_reason_stays_on_one_line() {
        let event = Event::Undecryptable {
            from: bob(),
            envelope_id: Some(3),
            reason: "bad\nalice: \u{1b}[2J".to_owned(),
        };
        assert_eq!(
            event_line(&event),
            Some(
                "! a message from bob could not be decrypted (bad\\nalice: \\u{1b}[2J)".to_owned()
            )
        );
    }

    #[test]
    fn history_lines_show_text_display_safe_and_json_exact() {
        crate::time::utc_for_tests();
        let id = store::MessageId([9; 16]);
        let incoming = HistoryEntry::incoming(id, FORGED, 0, 0);
        assert_eq!(
            history_line(&history_json("bob", "alice", None, &incoming)),
            format!("1970-01-01 00:00:00 +00:00 alice: {SHOWN}")
        );
        assert_eq!(
            history_json("bob", "alice", None, &incoming)["text"],
            FORGED
        );
        let outgoing = HistoryEntry::outgoing(id, "a\nb", 0);
        assert_eq!(
            history_line(&history_json("bob", "alice", None, &outgoing)),
            "1970-01-01 00:00:00 +00:00 bob: a\n    | b (sent)"
        );
    }
}
