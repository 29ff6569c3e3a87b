//! Encoding of the frames the relay sends most: envelopes are serialised
//! straight from the stored bytes (no copy of the body into a frame value),
//! once per delivery. The shape is exactly `hush_protocol::frame::Envelope`.

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Serialize, Serializer};

use crate::store::StoredEnvelope;

struct B64<'a>(&'a [u8]);

impl Serialize for B64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    from: &'a str,
    accepted_at: u64,
    body: B64<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ephemeral: bool,
}

fn to_json(e: &EnvelopeOut<'_>) -> String {
    // Strings, integers and booleans only: serialisation cannot fail, but
    // degrade to an empty frame rather than panic if it ever did.
    serde_json::to_string(e).unwrap_or_default()
}

/// `{"type":"envelope","id":..,"from":..,"accepted_at":..,"body":..}`
pub(crate) fn stored_envelope(e: &StoredEnvelope) -> String {
    to_json(&EnvelopeOut {
        ty: "envelope",
        id: Some(e.id),
        from: e.from.as_str(),
        accepted_at: e.accepted_at,
        body: B64(e.body.as_bytes()),
        ephemeral: false,
    })
}

/// `{"type":"envelope","from":..,"accepted_at":..,"body":..,"ephemeral":true}`
pub(crate) fn ephemeral_envelope(from: &str, accepted_at: u64, body: &[u8]) -> String {
    to_json(&EnvelopeOut {
        ty: "envelope",
        id: None,
        from,
        accepted_at,
        body: B64(body),
        ephemeral: true,
    })
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
            accepted_at: 123,
            body: Body(vec![1, 2, 3, 250]),
            ephemeral: false,
        });
        assert_eq!(stored_envelope(&e), want.encode());
        let eph = ServerFrame::Envelope(Envelope {
            id: None,
            from,
            accepted_at: 5,
            body: Body(vec![9]),
            ephemeral: true,
        });
        assert_eq!(ephemeral_envelope("alice", 5, &[9]), eph.encode());
    }
}
