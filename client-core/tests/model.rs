//! Stateful model test: random schedules of sends in both directions with
//! reordering, drops, duplicates and persistence round trips. Every
//! delivered message decrypts exactly once to what was sent, duplicates are
//! reported as duplicates, nothing panics, skipped keys stay bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::pair;
use hush_client_core::limits::MAX_SKIPPED_KEYS;
use hush_client_core::{DecryptError, PeerSessions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Alice (true) or Bob (false) sends a message of this length.
    Send(bool, u16),
    /// Deliver the in-flight message at this (wrapped) index to its recipient.
    Deliver(bool, u16),
    /// Drop an in-flight message.
    Drop(bool, u16),
    /// Deliver again a message that was already delivered.
    Duplicate(bool, u16),
    /// Pickle and unpickle the party's sessions.
    Persist(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0u16..200).prop_map(|(a, l)| Op::Send(a, l)),
        4 => (any::<bool>(), any::<u16>()).prop_map(|(a, i)| Op::Deliver(a, i)),
        1 => (any::<bool>(), any::<u16>()).prop_map(|(a, i)| Op::Drop(a, i)),
        1 => (any::<bool>(), any::<u16>()).prop_map(|(a, i)| Op::Duplicate(a, i)),
        1 => any::<bool>().prop_map(Op::Persist),
    ]
}

struct Sent {
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

fn persist(s: &mut PeerSessions) {
    let p = s.pickle();
    *s = PeerSessions::unpickle(&p).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn every_delivered_message_decrypts_exactly_once(seed in any::<u64>(), with_opk in any::<bool>(), ops in proptest::collection::vec(op(), 200..500)) {
        let mut p = pair(seed, with_opk);
        // in_flight[0]: Alice -> Bob, in_flight[1]: Bob -> Alice.
        let mut in_flight: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
        let mut delivered: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
        let mut counter = 0u32;
        for op in ops {
            match op {
                Op::Send(from_alice, len) => {
                    counter += 1;
                    let mut plaintext = counter.to_be_bytes().to_vec();
                    plaintext.resize(4 + len as usize, from_alice as u8);
                    let dir = usize::from(!from_alice);
                    let sender = if from_alice { &mut p.a } else { &mut p.b };
                    if !sender.has_session() {
                        continue; // Bob cannot speak before Alice's first message arrived.
                    }
                    let bytes = sender.encrypt(&mut p.rng, &plaintext).unwrap();
                    in_flight[dir].push(Sent { bytes, plaintext });
                }
                Op::Deliver(to_bob, i) | Op::Drop(to_bob, i) if !in_flight[usize::from(!to_bob)].is_empty() => {
                    let dir = usize::from(!to_bob);
                    let idx = i as usize % in_flight[dir].len();
                    let msg = in_flight[dir].remove(idx);
                    if matches!(op, Op::Drop(..)) {
                        continue;
                    }
                    let got = if to_bob { p.b_receives(&msg.bytes) } else { p.a_receives(&msg.bytes) };
                    prop_assert_eq!(got.as_deref().ok(), Some(&msg.plaintext[..]), "delivery failed: {:?}", got.as_ref().err());
                    delivered[dir].push(msg);
                }
                Op::Duplicate(to_bob, i) if !delivered[usize::from(!to_bob)].is_empty() => {
                    let dir = usize::from(!to_bob);
                    let idx = i as usize % delivered[dir].len();
                    let bytes = delivered[dir][idx].bytes.clone();
                    let got = if to_bob { p.b_receives(&bytes) } else { p.a_receives(&bytes) };
                    prop_assert!(matches!(got, Err(DecryptError::Duplicate { .. })), "duplicate gave {:?}", got);
                }
                Op::Persist(alice) => persist(if alice { &mut p.a } else { &mut p.b }),
                _ => {}
            }
            for s in [&p.a, &p.b] {
                if let Some(c) = s.current() {
                    prop_assert!(c.skipped_key_count() <= MAX_SKIPPED_KEYS);
                }
            }
        }
        // Everything still in flight decrypts at the end, in reverse order.
        for (dir, queue) in in_flight.iter_mut().enumerate() {
            while let Some(msg) = queue.pop() {
                let got = if dir == 0 { p.b_receives(&msg.bytes) } else { p.a_receives(&msg.bytes) };
                prop_assert_eq!(got.as_deref().ok(), Some(&msg.plaintext[..]), "late delivery failed: {:?}", got.as_ref().err());
            }
        }
    }
}
