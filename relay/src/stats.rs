//! What a store counts for monitoring: its totals ([`StoreStats`]) and the
//! distribution of non-empty mailboxes by depth and by body bytes
//! ([`MailboxCensus`]). A leaf module: the stores fill these in and
//! `crate::metrics` renders them, so neither imports the other for it.

/// Upper bounds of the mailbox depth histogram (envelopes).
pub const DEPTH_BOUNDS: [u64; 7] = [1, 10, 100, 1_000, 5_000, 10_000, 100_000];
/// Upper bounds of the mailbox size histogram (body bytes).
pub const BYTES_BOUNDS: [u64; 7] = [
    1 << 10,
    16 << 10,
    256 << 10,
    1 << 20,
    16 << 20,
    64 << 20,
    256 << 20,
];

/// Distribution of the non-empty mailboxes by depth and by body bytes,
/// counted while the store computes its totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCensus {
    /// Mailboxes with at most `DEPTH_BOUNDS[i]` envelopes (cumulative).
    pub depth: [u64; DEPTH_BOUNDS.len()],
    /// Mailboxes with at most `BYTES_BOUNDS[i]` body bytes (cumulative).
    pub bytes: [u64; BYTES_BOUNDS.len()],
    /// Non-empty mailboxes.
    pub mailboxes: u64,
    /// Sum of their envelopes.
    pub depth_sum: u64,
    /// Sum of their bytes.
    pub bytes_sum: u64,
}

impl MailboxCensus {
    /// Counts one mailbox; empty ones are not counted.
    pub fn add(&mut self, envelopes: u64, bytes: u64) {
        if envelopes == 0 {
            return;
        }
        self.mailboxes += 1;
        self.depth_sum += envelopes;
        self.bytes_sum += bytes;
        for (slot, bound) in self.depth.iter_mut().zip(DEPTH_BOUNDS) {
            *slot += u64::from(envelopes <= bound);
        }
        for (slot, bound) in self.bytes.iter_mut().zip(BYTES_BOUNDS) {
            *slot += u64::from(bytes <= bound);
        }
    }
}

/// Counts for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Registered users.
    pub users: u64,
    /// Envelopes waiting in all mailboxes.
    pub envelopes: u64,
    /// Body bytes waiting in all mailboxes.
    pub envelope_bytes: u64,
    /// Non-empty mailboxes by depth and by bytes (for `/metrics`).
    pub census: MailboxCensus,
}
