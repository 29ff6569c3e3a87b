//! Every bound a peer (or a careless caller) controls in the cryptographic
//! core, in one place. Decoders and the ratchet refer to these constants and
//! nothing else, so a reviewer can audit the resource limits here.

/// Most message keys skipped in one receiving chain by a single message
/// (a header whose message number is further ahead is rejected).
pub const MAX_SKIP: u32 = 1_000;

/// Most skipped message keys stored per session, over all chains; the oldest
/// is evicted when a new one would exceed it.
pub const MAX_SKIPPED_KEYS: usize = 2_000;

/// Most receiving chains kept per session (the current one included); older
/// chains are forgotten, their already-skipped keys stay until evicted.
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// Most previous sessions kept per peer beside the current one.
pub const MAX_PREVIOUS_SESSIONS: usize = 4;

/// Most base keys of dropped inbound sessions remembered per peer, so a
/// replay of their prekey messages is refused.
pub const MAX_FORGOTTEN_SESSIONS: usize = 64;

/// Most one-time prekeys generated (and uploaded) in one batch.
pub const MAX_ONE_TIME_PREKEYS_PER_BATCH: usize = 100;

/// Most one-time prekey secrets held at once; generation beyond it is refused.
pub const MAX_ONE_TIME_PREKEYS_HELD: usize = 1_000;

/// Default signed-prekey rotation period: one week, in milliseconds.
pub const SIGNED_PREKEY_ROTATION_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Default grace period during which the previous signed prekey still
/// answers prekey messages after a rotation: 30 days, in milliseconds.
pub const SIGNED_PREKEY_GRACE_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Most envelope ids the client puts in one `ack` frame: the relay
/// protocol's default `max_ack_ids` (a longer backlog is acknowledged in
/// several frames as it is processed).
pub const MAX_ACK_IDS: usize = 1_000;

/// Plaintexts are padded to a multiple of this many bytes.
pub const PADDING_BLOCK: usize = 64;

/// Largest padded plaintext (the padding itself included) in one message.
pub const MAX_PADDED_LEN: usize = 64 * 1024;

/// Largest plaintext one message can carry (one byte of padding is always added).
pub const MAX_PLAINTEXT_LEN: usize = MAX_PADDED_LEN - 1;

/// Largest encoded message (prekey wrapper included) a decoder accepts.
pub const MAX_MESSAGE_LEN: usize = MAX_PADDED_LEN + 1024;

/// Largest UTF-8 text (in bytes) a text payload may carry.
pub const MAX_TEXT_LEN: usize = 32 * 1024;

/// Most message ids in one receipt payload.
pub const MAX_RECEIPT_IDS: usize = 256;

/// Largest pickle a decoder accepts (bounds allocation on unpickle).
pub const MAX_PICKLE_LEN: usize = 4 * 1024 * 1024;

/// Most forgotten receiving chains whose public key and position are still
/// remembered, so a late duplicate on them is reported as a duplicate.
pub const MAX_RETIRED_CHAINS: usize = 32;

/// Most ephemeral payloads (typing indicators) sent to one peer since the
/// last stored one. Each may be dropped by the relay, leaving a gap the
/// peer's ratchet must skip; half of [`MAX_SKIP`] keeps every gap well
/// inside what the peer accepts (see `client/typing.rs`).
pub const MAX_EPHEMERAL_GAP: u32 = MAX_SKIP / 2;

/// Most user ids on the presence allow list (the relay's default
/// `max_presence_allow`).
pub const MAX_PRESENCE_ALLOW: usize = 1_000;

/// Most user ids in one presence query (the relay's default
/// `max_presence_query`).
pub const MAX_PRESENCE_QUERY: usize = 100;

/// Most presence subscriptions at once (the relay's default
/// `max_presence_subscriptions`).
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_caps_match_the_relays_defaults() {
        let relay = hush_protocol::Limits::default();
        assert_eq!(MAX_PRESENCE_ALLOW, relay.max_presence_allow);
        assert_eq!(MAX_PRESENCE_QUERY, relay.max_presence_query);
        assert_eq!(MAX_PRESENCE_SUBSCRIPTIONS, relay.max_presence_subscriptions);
    }

    #[test]
    fn ack_cap_is_the_relay_protocols_default() {
        assert_eq!(MAX_ACK_IDS, hush_protocol::Limits::default().max_ack_ids);
    }
}
