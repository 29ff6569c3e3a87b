//! Encoding of the frames the relay sends most: envelopes are serialised
//! straight from the stored bytes (no copy of the body into a frame value),
//! once per delivery. The shape is exactly `hush_protocol::frame::Envelope`.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::store::StoredEnvelope;

/// Bytes of the frame around the base64 body (type, id, from, time).
const OVERHEAD: usize = 128;

/// Writes the frame by hand: every field is a number, a user id (whose
/// syntax `[a-z0-9._-]` needs no JSON escaping) or standard base64 (no
/// escaping either), so there is nothing for a serialiser to check. Going
/// through serde cost one escape scan per body byte (~5% of relay CPU).
///
/// `from` is the sender's mailbox address (see
/// [`hush_protocol::UserId::device_address`]): `alice/2` goes out as
/// `"from":"alice","from_device":2`, a plain id without `from_device`.
fn envelope(id: Option<u64>, from: &str, accepted_at: u64, body: &[u8], ephemeral: bool) -> String {
    let (from, device) = match from.split_once('/') {
        Some((user, device)) => (user, device.parse::<u32>().ok()),
        None => (from, None),
    };
    let mut out = String::with_capacity(OVERHEAD + from.len() + body.len().div_ceil(3) * 4);
    out.push_str(r#"{"type":"envelope","#);
    if let Some(id) = id {
        let _ = write!(out, r#""id":{id},"#);
    }
    out.push_str(r#""from":""#);
    // A user id never needs escaping; anything else (impossible for a
    // validated `UserId`) goes through the JSON serialiser.
    if from
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        out.push_str(from);
        out.push('"');
    } else {
        out.pop();
        out.push_str(&serde_json::to_string(from).unwrap_or_default());
    }
    if let Some(device) = device {
        let _ = write!(out, r#","from_device":{device}"#);
    }
    let _ = write!(out, r#","accepted_at":{accepted_at},"body":""#);
    STANDARD.encode_string(body, &mut out);
    out.push('"');
    if ephemeral {
        out.push_str(r#","ephemeral":true"#);
    }
    out.push('}');
    out
}

/// `{"type":"envelope","id":..,"from":..,"accepted_at":..,"body":..}`
pub(crate) fn stored_envelope(e: &StoredEnvelope) -> String {
    envelope(
        Some(e.id),
        e.from.as_str(),
        e.accepted_at,
        e.body.as_bytes(),
        false,
    )
}

/// `{"type":"envelope","from":..,"accepted_at":..,"body":..,"ephemeral":true}`
pub(crate) fn ephemeral_envelope(from: &str, accepted_at: u64, body: &[u8]) -> String {
    envelope(None, from, accepted_at, body, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_protocol::frame::Envelope;
    use hush_protocol::{Body, ServerFrame, UserId};

    #[test]
    fn matches_the_protocol_frame() {
        let from = UserId::try_from("alice").unwrap();
        let e = StoredEnvelope {
            id: 7,
            from: from.clone(),
            accepted_at: 123,
            body: Body(vec![1, 2, 3, 250]),
        };
        let want = ServerFrame::Envelope(Envelope {
            id: Some(7),
            from: from.clone(),
            from_device: None,
            accepted_at: 123,
            body: Body(vec![1, 2, 3, 250]),
            ephemeral: false,
        });
        assert_eq!(stored_envelope(&e), want.encode());
        let eph = ServerFrame::Envelope(Envelope {
            id: None,
            from: from.clone(),
            from_device: None,
            accepted_at: 5,
            body: Body(vec![9]),
            ephemeral: true,
        });
        assert_eq!(ephemeral_envelope("alice", 5, &[9]), eph.encode());
        let dev = ServerFrame::Envelope(Envelope {
            id: Some(8),
            from,
            from_device: Some(2),
            accepted_at: 5,
            body: Body(vec![9]),
            ephemeral: false,
        });
        let stored = StoredEnvelope {
            id: 8,
            from: UserId::try_from("alice").unwrap().device_address(2),
            accepted_at: 5,
            body: Body(vec![9]),
        };
        assert_eq!(stored_envelope(&stored), dev.encode());
    }
}
