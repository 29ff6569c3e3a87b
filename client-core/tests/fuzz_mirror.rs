//! Proptest mirrors of the fuzz targets in `fuzz/` (which run only on
//! demand, under nightly flags): the same checkers from
//! `hush_client_core::fuzzing`, fed arbitrary bytes, mutations of the
//! committed seed corpus, and generated interaction scripts, on every CI run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::PathBuf;

use hush_client_core::fuzzing::interaction::{Op, run, script_from_bytes};
use hush_client_core::fuzzing::{
    check_group_change, check_link, check_message, check_payload, check_sender_key,
    check_store_header, valid_store_header,
};
use proptest::prelude::*;

/// The committed seeds of one fuzz target.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    inputs("corpus", target)
}

/// The committed inputs of one fuzz target under `fuzz/<set>/`: `corpus`
/// (hand-made seeds) or `corpus-found` (what the fuzzer's runs found,
/// minimised with `cargo fuzz cmin`).
fn inputs(set: &str, target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(set)
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut bytes: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = bytes.len();
        match *m {
            Mutation::Flip(i, x) if n > 0 => bytes[i % n] ^= x,
            Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Remove(i) if n > 0 => {
                bytes.remove(i % n);
            }
            _ => {}
        }
    }
    bytes
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), any::<u8>()).prop_map(|(from_alice, len)| Op::Send { from_alice, len }),
        4 => (any::<bool>(), any::<u16>()).prop_map(|(to_bob, i)| Op::Deliver { to_bob, i }),
        1 => (any::<bool>(), any::<u16>()).prop_map(|(to_bob, i)| Op::Drop { to_bob, i }),
        1 => (any::<bool>(), any::<u16>()).prop_map(|(to_bob, i)| Op::Duplicate { to_bob, i }),
        1 => (any::<bool>(), any::<u16>(), any::<u16>())
            .prop_map(|(to_bob, i, j)| Op::Reorder { to_bob, i, j }),
        2 => (any::<bool>(), any::<bool>(), any::<u16>(), any::<u32>())
            .prop_map(|(to_bob, delivered, i, bit)| Op::Flip { to_bob, delivered, i, bit }),
        1 => any::<bool>().prop_map(|alice| Op::Persist { alice }),
    ]
}

/// Every input the fuzzer's runs kept (each reached new coverage) is a
/// regression case on every CI run.
#[test]
fn fuzzer_found_inputs_satisfy_the_checkers() {
    for input in inputs("corpus-found", "client_message") {
        check_message(&input);
        check_payload(&input);
    }
    for input in inputs("corpus-found", "store_header") {
        check_store_header(&input);
    }
    for input in inputs("corpus-found", "ratchet_interaction") {
        let (s, opk, ops) = script_from_bytes(&input);
        run(s, opk, &ops);
    }
}

#[test]
fn committed_seeds_satisfy_the_checkers() {
    for seed in corpus("client_message") {
        check_message(&seed);
        check_payload(&seed);
    }
    for seed in corpus("store_header") {
        check_store_header(&seed);
    }
    for seed in corpus("ratchet_interaction") {
        let (s, opk, ops) = script_from_bytes(&seed);
        run(s, opk, &ops);
    }
}

#[test]
fn committed_message_seeds_are_accepted() {
    // The seeds are meant to reach past the decoders' first checks.
    let seeds = corpus("client_message");
    let messages = seeds
        .iter()
        .filter(|s| hush_client_core::Message::decode(s).is_ok())
        .count();
    let payloads = seeds
        .iter()
        .filter(|s| hush_client_core::Payload::decode(s).is_ok())
        .count();
    assert!(
        messages >= 3 && payloads >= 3,
        "{messages} messages, {payloads} payloads"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn message_and_payload_decoders_survive_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_message(&bytes);
        check_payload(&bytes);
        check_sender_key(&bytes);
        check_group_change(&bytes);
    }

    #[test]
    fn message_and_payload_decoders_survive_mutated_seeds(which in any::<prop::sample::Index>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let seeds = corpus("client_message");
        let bytes = mutate(which.get(&seeds).clone(), &ms);
        check_message(&bytes);
        check_payload(&bytes);
        check_sender_key(&bytes);
        check_group_change(&bytes);
    }

    #[test]
    fn link_decoders_survive_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_link(&bytes);
    }

    #[test]
    fn link_decoders_survive_mutated_seeds(which in any::<prop::sample::Index>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let seeds = corpus("link");
        check_link(&mutate(which.get(&seeds).clone(), &ms));
    }

    #[test]
    fn store_header_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_store_header(&bytes);
    }
}

proptest! {
    // Each case with a valid checksum runs one cheap Argon2.
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn store_header_survives_mutated_valid_header(ms in proptest::collection::vec(mutation(), 1..4)) {
        check_store_header(&mutate(valid_store_header(), &ms));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn interaction_script_keeps_every_invariant(seed in any::<u64>(), with_opk in any::<bool>(), ops in proptest::collection::vec(op(), 0..160)) {
        run(seed, with_opk, &ops);
    }

    #[test]
    fn interaction_script_from_bytes_keeps_every_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (seed, with_opk, ops) = script_from_bytes(&bytes);
        run(seed, with_opk, &ops);
    }
}
