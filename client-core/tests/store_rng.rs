//! The store's injected randomness: two stores created with the same seeded
//! generator write the same bytes (header salt and nonce, data key, value
//! nonces), and different seeds different ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use hush_client_core::store::{
    Backend, KdfParams, MemoryBackend, ProfileSettings, ProfileStore, Table,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn created_with_seed(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let backend = MemoryBackend::new();
    let settings = ProfileSettings::new("alice", "ws://127.0.0.1:7070", 1);
    ProfileStore::create_with_rng(
        Box::new(backend.clone()),
        b"pw",
        KdfParams::insecure_for_tests(),
        &settings,
        Box::new(StdRng::seed_from_u64(seed)),
    )
    .unwrap();
    let header = backend.get(Table::Meta, b"header").unwrap().unwrap();
    let sealed = backend.get(Table::Meta, b"settings").unwrap().unwrap();
    (header, sealed)
}

#[test]
fn a_seeded_store_writes_reproducible_bytes() {
    assert_eq!(created_with_seed(7), created_with_seed(7));
    let (h1, s1) = created_with_seed(7);
    let (h2, s2) = created_with_seed(8);
    assert_ne!(h1, h2);
    assert_ne!(s1, s2);
}

#[test]
fn a_store_opened_with_an_injected_generator_reads_and_writes() {
    let backend = MemoryBackend::new();
    let settings = ProfileSettings::new("alice", "ws://127.0.0.1:7070", 1);
    ProfileStore::create(
        Box::new(backend.clone()),
        b"pw",
        KdfParams::insecure_for_tests(),
        &settings,
    )
    .unwrap();
    let store =
        ProfileStore::open_with_rng(Box::new(backend), b"pw", Box::new(StdRng::seed_from_u64(1)))
            .unwrap();
    assert_eq!(store.settings().unwrap().user_id, "alice");
}
