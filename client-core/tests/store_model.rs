//! Model test: random sequences of batches (appends, duplicate appends,
//! receipts in any order, session writes, envelope ids, reopen) applied to
//! the store and to a plain in-memory model must agree after every step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::{BTreeMap, BTreeSet};

use hush_client_core::store::{
    Batch, DeliveryStatus, Direction, HistoryEntry, KdfParams, MemoryBackend, MessageId,
    ProfileSettings, ProfileStore, StoreError,
};
use proptest::prelude::*;
use zeroize::Zeroizing;

const PEERS: [&str; 3] = ["bob", "carol", "dave"];

#[derive(Clone, Debug)]
enum Step {
    /// One batch: session write + append (+ envelope id). `dup_of` reuses an
    /// earlier message id (of any peer) to provoke duplicates.
    Message {
        peer: usize,
        outgoing: bool,
        dup_of: Option<usize>,
        envelope: Option<u64>,
    },
    Receipt {
        peer: usize,
        target: usize,
        status: u8,
    },
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3usize, any::<bool>(), proptest::option::weighted(0.2, 0..64usize), proptest::option::of(0..40u64))
            .prop_map(|(peer, outgoing, dup_of, envelope)| Step::Message { peer, outgoing, dup_of, envelope }),
        4 => (0..3usize, 0..64usize, 0..3u8).prop_map(|(peer, target, status)| Step::Receipt { peer, target, status }),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    history: BTreeMap<&'static str, Vec<HistoryEntry>>,
    sessions: BTreeMap<&'static str, u64>,
    processed: BTreeSet<u64>,
    /// Every id ever generated, with the peer it went to.
    ids: Vec<(usize, MessageId)>,
}

fn status(n: u8) -> DeliveryStatus {
    match n {
        0 => DeliveryStatus::Sent,
        1 => DeliveryStatus::Delivered,
        _ => DeliveryStatus::Read,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_a_simple_model(steps in proptest::collection::vec(step(), 1..60)) {
        let mem = MemoryBackend::new();
        let settings = ProfileSettings::new("alice", "ws://r", 0);
        let mut store = ProfileStore::create(Box::new(mem.clone()), b"pw", KdfParams::insecure_for_tests(), &settings).unwrap();
        let mut model = Model::default();
        let mut counter = 0u64;
        for s in steps {
            counter += 1;
            match s {
                Step::Message { peer, outgoing, dup_of, envelope } => {
                    let name = PEERS[peer];
                    let id = match dup_of.and_then(|i| model.ids.get(i).copied()) {
                        Some((_, id)) => id,
                        None => MessageId::random(&mut rand::rng()),
                    };
                    let entry = if outgoing {
                        HistoryEntry::outgoing(id, format!("m{counter}"), counter)
                    } else {
                        HistoryEntry::incoming(id, format!("m{counter}"), counter, counter)
                    };
                    let mut b = Batch::new();
                    b.put_session(name, Zeroizing::new(counter.to_be_bytes().to_vec()));
                    b.append_message(name, entry.clone());
                    if let Some(e) = envelope { b.mark_processed(e); }
                    let dup = model.history.get(name).is_some_and(|h| h.iter().any(|e| e.message_id == id));
                    match store.commit(b) {
                        Ok(_) => {
                            prop_assert!(!dup);
                            model.history.entry(name).or_default().push(entry);
                            model.sessions.insert(name, counter);
                            if let Some(e) = envelope { model.processed.insert(e); }
                            model.ids.push((peer, id));
                        }
                        Err(StoreError::DuplicateMessage { .. }) => prop_assert!(dup),
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Step::Receipt { peer, target, status: st } => {
                    let name = PEERS[peer];
                    let Some(&(_, id)) = model.ids.get(target) else { continue };
                    let mut b = Batch::new();
                    b.update_status(name, id, status(st));
                    store.commit(b).unwrap();
                    let target_entry = model.history.get_mut(name).and_then(|h| h.iter_mut().find(|e| e.message_id == id));
                    if let Some(e) = target_entry.filter(|e| e.direction == Direction::Outgoing) {
                        e.status = e.status.max(Some(status(st)));
                    }
                }
                Step::Reopen => {
                    drop(store);
                    store = ProfileStore::open(Box::new(mem.clone()), b"pw").unwrap();
                }
            }
            for name in PEERS {
                let want = model.history.get(name).cloned().unwrap_or_default();
                prop_assert_eq!(store.history(name, None).unwrap(), want.clone());
                let n = want.len().min(3);
                prop_assert_eq!(store.history(name, Some(3)).unwrap(), want[want.len() - n..].to_vec());
                let session = store.session(name).unwrap().map(|s| s.to_vec());
                prop_assert_eq!(session, model.sessions.get(name).map(|c| c.to_be_bytes().to_vec()));
            }
            for e in 0..40u64 {
                prop_assert_eq!(store.is_processed(e).unwrap(), model.processed.contains(&e));
            }
        }
    }
}
