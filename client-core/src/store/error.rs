//! The one error type of the sealed profile store.

use std::path::PathBuf;

/// Everything that can go wrong when creating, opening, reading or writing a
/// profile.
///
/// Errors never carry key material or plaintext; `what` strings name the
/// record that failed (table and record kind), not its contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The passphrase does not unwrap the profile's data key. This is also what
    /// a deliberately forged header (one whose checksum was recomputed) looks
    /// like; accidental header damage is reported as [`StoreError::Corrupt`].
    #[error("wrong passphrase")]
    WrongPassphrase,

    /// `open` was asked for a profile directory that holds no profile.
    #[error("no profile at {path}")]
    ProfileMissing {
        /// The profile directory that was looked at.
        path: PathBuf,
    },

    /// `create` was asked to create a profile where one already exists.
    #[error("a profile already exists at {path}")]
    ProfileExists {
        /// The profile directory that already holds a profile.
        path: PathBuf,
    },

    /// Another process (or another handle in this process) has the profile
    /// open; two writers would corrupt it, so the second open is refused.
    #[error("the profile is in use by another process")]
    ProfileInUse,

    /// A stored record failed authentication or did not decode: the file was
    /// damaged or tampered with, or a value was moved to another key.
    #[error("profile data is corrupt: {what}")]
    Corrupt {
        /// Which record or structure failed (e.g. "sealed value in table sessions").
        what: String,
    },

    /// The profile was written by a newer version of Hush than this one.
    #[error("profile format version {found} is not supported (this build reads up to {supported})")]
    UnsupportedVersion {
        /// Format version recorded in the profile header.
        found: u16,
        /// Highest format version this build reads.
        supported: u16,
    },

    /// Argon2id parameters outside the accepted bounds (at create time or in a
    /// header).
    #[error("invalid key-derivation parameters: {reason}")]
    InvalidKdfParams {
        /// Which bound was violated.
        reason: String,
    },

    /// A message with this id is already in this peer's history; the whole
    /// batch was rejected and nothing was written.
    #[error("message id {message_id} is already in the history")]
    DuplicateMessage {
        /// Hex of the duplicated 16-byte message id.
        message_id: String,
    },

    /// A record is too large to be stored (user ids are limited to
    /// `u16::MAX` bytes).
    #[error("{what} is too large to store ({len} bytes)")]
    TooLarge {
        /// Which field was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },

    /// [`ProfileStore::change_passphrase`](super::ProfileStore::change_passphrase)
    /// found history entries whose peer is neither a contact nor has a
    /// session (both were deleted). The peer's user id is stored nowhere
    /// else (the history key is an HMAC of it), so those entries cannot be
    /// moved under the new key; nothing was changed. Storing a contact or a
    /// session for that peer again makes the change possible.
    #[error(
        "{entries} history entries belong to a peer that is neither a contact nor has a session; \
         the passphrase was not changed"
    )]
    HistoryWithoutPeer {
        /// How many history entries could not be attributed.
        entries: usize,
    },

    /// The passphrase change was committed (the new passphrase and data key
    /// are in force), but compacting the file afterwards failed: pages the
    /// change freed may still hold records sealed under the old data key
    /// until [`ProfileStore::compact`](super::ProfileStore::compact)
    /// succeeds.
    #[error(
        "the passphrase was changed, but the profile file could not be compacted ({reason}): \
         it may still hold data sealed under the old key"
    )]
    NotCompacted {
        /// Why compaction failed.
        reason: String,
    },

    /// Filesystem error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The embedded database reported an error that is not corruption or
    /// locking (e.g. a failed commit).
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }
}
