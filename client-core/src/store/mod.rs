//! The sealed local store: one profile per directory, everything a client
//! must remember, encrypted at rest.
//!
//! Layers, bottom up:
//!
//! - [`Backend`]: named tables of bytes with an atomic `apply(batch)`;
//!   [`DiskBackend`] (one redb file, `profile.redb`) and [`MemoryBackend`]
//!   (tests).
//! - `header`: the passphrase unlocks a random data key
//!   (Argon2id -> XChaCha20-Poly1305 key wrap), see [`KdfParams`].
//! - `sealed`: every value is sealed with a key derived from the data key;
//!   keys that would name a peer are HMACs.
//! - [`ProfileStore`]: the typed API every caller uses. All writes go through
//!   [`ProfileStore::commit`] with a [`Batch`], applied all-or-nothing.
//!
//! The on-disk format and its rules are described in `docs/store.md`.

mod backend;
mod batch;
mod disk;
mod error;
mod header;
mod memory;
mod profile;
mod records;
mod rekey;
mod sealed;
mod stage;

pub use backend::{Backend, Pairs, RawBatch, RawOp, ScanOrder, Table};
pub use batch::{Batch, CommitOutcome, StatusChange};
pub use disk::{DiskBackend, PROFILE_FILE};
pub use error::StoreError;
pub use header::{FORMAT_VERSION, KdfParams};
pub use memory::MemoryBackend;
pub use profile::{PROCESSED_ENVELOPES_KEPT, ProfileStore, StoreRng};
pub use records::{
    Contact, DeliveryStatus, Direction, HistoryEntry, IdentityKeys, KeyChange, MessageFlags,
    MessageId, ProfileSettings, SecretBlob,
};
