//! Every bound a peer (or a careless caller) controls in the cryptographic
//! core, in one place. Decoders and the ratchet refer to these constants and
//! nothing else, so a reviewer can audit the resource limits here.

/// Most message keys skipped in one receiving chain by a single message
/// (a header whose message number is further ahead is rejected).
pub const MAX_SKIP: u32 = 1_000;

/// Most skipped message keys stored per session, over all chains; the oldest
/// is evicted when a new one would exceed it.
pub const MAX_SKIPPED_KEYS: usize = 2_000;

/// Most skipped message keys stored for one peer over all its sessions
/// (current and previous): beyond it, keys of the oldest previous sessions
/// are evicted first. With [`MAX_MESSAGE_REQUESTS`] this bounds what
/// strangers can make a client store.
pub const MAX_SKIPPED_KEYS_PER_PEER: usize = MAX_SKIPPED_KEYS;

/// Most contacts that only exist because a stranger wrote first (message
/// requests not yet accepted, answered or blocked). A new stranger beyond
/// it evicts the request with the oldest activity: its contact, sessions
/// and history are deleted.
pub const MAX_MESSAGE_REQUESTS: usize = 50;

/// Most peers whose decoded sessions a running client keeps in memory;
/// beyond it the least recently used entry is dropped (it is read back
/// from the store when needed).
pub const MAX_CACHED_PEERS: usize = 256;

/// Most identity keys remembered per contact as rejected by the user
/// (`reject`), so that messages under them stay marked and do not raise a
/// new key-change warning; the oldest is forgotten first.
pub const MAX_REJECTED_KEYS: usize = 8;

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

/// Most one-time prekey secrets held at once. Generating more evicts the
/// oldest unused secrets (lowest ids) first, so a prekey handed out before
/// the last `MAX_ONE_TIME_PREKEYS_HELD` generated can no longer be
/// redeemed: its prekey message is undecryptable.
pub const MAX_ONE_TIME_PREKEYS_HELD: usize = 1_000;

/// Most one-time prekeys a running client generates per
/// [`ONE_TIME_PREKEY_REFILL_WINDOW_MS`], whatever the relay reports (a
/// relay that keeps claiming the keys ran out cannot make it generate, or
/// evict held secrets, without bound). Beyond it, keys are published
/// without new one-time prekeys until the window has passed.
pub const MAX_ONE_TIME_PREKEYS_PER_WINDOW: usize = 400;

/// The window of [`MAX_ONE_TIME_PREKEYS_PER_WINDOW`]: one hour, in ms.
pub const ONE_TIME_PREKEY_REFILL_WINDOW_MS: u64 = 60 * 60 * 1000;

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

/// Most message keys used for one peer since the last message known to be
/// stored (the relay answered `accepted` for a non-ephemeral send) before an
/// ephemeral payload (a typing indicator) is refused: each may have been
/// dropped, leaving a gap the peer's ratchet must skip (see
/// `client/typing.rs`).
pub const MAX_EPHEMERAL_GAP: u32 = MAX_SKIP / 2;

/// Most message keys used for one peer since the last message known to be
/// stored before a stored message must go in a new session. Every key used
/// by a send not known to be stored (refused with `mailbox_full` or
/// `rate_limited`, lost with a connection, ephemeral) may be a gap the
/// peer's ratchet has to skip; a new session (a new X3DH run) starts from a
/// first message the peer always reads. Below [`MAX_SKIP`] with a margin.
pub const MAX_UNCONFIRMED_KEYS: u32 = MAX_SKIP - MAX_SKIP / 10;

/// Most user ids on the presence allow list (the relay's default
/// `max_presence_allow`).
pub const MAX_PRESENCE_ALLOW: usize = 1_000;

/// Most user ids in one presence query (the relay's default
/// `max_presence_query`).
pub const MAX_PRESENCE_QUERY: usize = 100;

/// Most presence subscriptions at once (the relay's default
/// `max_presence_subscriptions`).
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 256;

/// Most iterations a sender-key message may skip ahead of the next one
/// expected (bounds the work one group message can cause).
pub const MAX_SENDER_KEY_SKIP: u32 = 2_000;

/// Keys of skipped iterations kept per received sender key (oldest evicted).
pub const MAX_SKIPPED_SENDER_KEYS: usize = 2_000;

/// Sender keys kept per member device and group (the newest; a replaced key
/// stays readable for messages still in flight).
pub const MAX_SENDER_KEY_STATES: usize = 5;

/// Most members of a group.
pub const MAX_GROUP_MEMBERS: usize = 1_000;

/// Group states a member keeps to settle concurrent changes (a change to an
/// older state is refused as too old).
pub const MAX_GROUP_HISTORY: usize = 16;

/// Group changes held while their parent state is unknown (oldest dropped).
pub const MAX_PENDING_GROUP_CHANGES: usize = 32;

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
