//! Behaviour of the sealed profile store, run against both backends where it
//! applies (the disk backend through a real profile directory).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};

use hush_client_core::store::{
    Backend, Batch, Contact, DeliveryStatus, DiskBackend, HistoryEntry, IdentityKeys, KdfParams,
    MemoryBackend, MessageFlags, MessageId, PROCESSED_ENVELOPES_KEPT, PROFILE_FILE,
    ProfileSettings, ProfileStore, RawBatch, RawOp, ScanOrder, StatusChange, StoreError, Table,
};
use zeroize::Zeroizing;

const PASS: &[u8] = b"correct horse battery staple";

fn params() -> KdfParams {
    KdfParams::insecure_for_tests()
}

fn settings() -> ProfileSettings {
    ProfileSettings::new("alice", "ws://127.0.0.1:9000/ws", 1_700_000_000_000)
}

fn blob(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(bytes.to_vec())
}

fn keys(n: u8) -> IdentityKeys {
    IdentityKeys {
        sig_pub: [n; 32],
        dh_pub: [n.wrapping_add(100); 32],
    }
}

/// A profile location that can be opened, closed and reopened: a directory
/// for the disk backend, shared tables for the memory backend.
enum Place {
    Disk(tempfile::TempDir),
    Memory(MemoryBackend),
}

impl Place {
    fn disk() -> Place {
        Place::Disk(tempfile::tempdir().unwrap())
    }
    fn memory() -> Place {
        Place::Memory(MemoryBackend::new())
    }
    fn both() -> [Place; 2] {
        [Place::memory(), Place::disk()]
    }
    fn name(&self) -> &'static str {
        match self {
            Place::Disk(_) => "disk",
            Place::Memory(_) => "memory",
        }
    }
    fn dir(&self) -> PathBuf {
        match self {
            Place::Disk(d) => d.path().join("profile"),
            Place::Memory(_) => PathBuf::from("<memory>"),
        }
    }
    fn create_with(&self, pass: &[u8]) -> Result<ProfileStore, StoreError> {
        match self {
            Place::Disk(_) => ProfileStore::create_in(&self.dir(), pass, params(), &settings()),
            Place::Memory(m) => {
                ProfileStore::create(Box::new(m.clone()), pass, params(), &settings())
            }
        }
    }
    fn create(&self) -> ProfileStore {
        self.create_with(PASS).unwrap()
    }
    fn open_with(&self, pass: &[u8]) -> Result<ProfileStore, StoreError> {
        match self {
            Place::Disk(_) => ProfileStore::open_in(&self.dir(), pass),
            Place::Memory(m) => ProfileStore::open(Box::new(m.clone()), pass),
        }
    }
    fn open(&self) -> ProfileStore {
        self.open_with(PASS).unwrap()
    }
    /// Raw access to the backend, with the store closed.
    fn raw(&self) -> Box<dyn Backend> {
        match self {
            Place::Disk(_) => Box::new(DiskBackend::open(&self.dir()).unwrap()),
            Place::Memory(m) => Box::new(m.clone()),
        }
    }
}

fn receive_batch(peer: &str, session: &[u8], entry: HistoryEntry, envelope: u64) -> Batch {
    let mut b = Batch::new();
    b.put_session(peer, blob(session))
        .append_message(peer, entry)
        .mark_processed(envelope);
    b
}

#[test]
fn created_profile_reopens_with_everything_written() {
    for place in Place::both() {
        let id1 = MessageId::random(&mut rand::rng());
        let id2 = MessageId::random(&mut rand::rng());
        {
            let mut s = place.create();
            let mut b = Batch::new();
            b.put_identity(blob(b"identity-secret"))
                .put_prekeys(blob(b"prekey-secret"))
                .put_contact(Contact::pinned("bob", keys(1), 5))
                .put_session("bob", blob(b"bob-session"));
            s.commit(b).unwrap();
            let mut incoming = HistoryEntry::incoming(id1, "hi alice", 10, 11);
            incoming.flags = MessageFlags {
                request: false,
                identity_unverified: true,
                from_changed_key: false,
            };
            s.commit(receive_batch("bob", b"bob-session-2", incoming, 42))
                .unwrap();
            let mut b = Batch::new();
            b.put_session("bob", blob(b"bob-session-3"))
                .append_message("bob", HistoryEntry::outgoing(id2, "hi bob", 12));
            s.commit(b).unwrap();
        } // dropped: the "process" exits
        let s = place.open();
        let p = place.name();
        assert_eq!(s.settings().unwrap(), settings(), "{p}");
        assert!(s.settings().unwrap().send_read_receipts, "{p}");
        assert_eq!(
            s.identity().unwrap().unwrap().as_slice(),
            b"identity-secret",
            "{p}"
        );
        assert_eq!(
            s.prekeys().unwrap().unwrap().as_slice(),
            b"prekey-secret",
            "{p}"
        );
        assert_eq!(
            s.session("bob").unwrap().unwrap().as_slice(),
            b"bob-session-3",
            "{p}"
        );
        assert!(s.session("carol").unwrap().is_none(), "{p}");
        assert_eq!(
            s.contact("bob").unwrap().unwrap(),
            Contact::pinned("bob", keys(1), 5),
            "{p}"
        );
        let h = s.history("bob", None).unwrap();
        assert_eq!(h.len(), 2, "{p}");
        assert_eq!(h[0].message_id, id1);
        assert_eq!(h[0].text, "hi alice");
        assert!(h[0].flags.identity_unverified);
        assert_eq!(h[0].status, None);
        assert_eq!(h[1].message_id, id2);
        assert_eq!(h[1].status, Some(DeliveryStatus::Sent));
        assert!(s.is_processed(42).unwrap(), "{p}");
        assert!(!s.is_processed(43).unwrap(), "{p}");
    }
}

#[test]
fn wrong_passphrase_is_refused() {
    for place in Place::both() {
        drop(place.create());
        let err = place
            .open_with(b"correct horse battery stapler")
            .unwrap_err();
        assert!(
            matches!(err, StoreError::WrongPassphrase),
            "{}: {err:?}",
            place.name()
        );
        let err = place.open_with(b"").unwrap_err();
        assert!(
            matches!(err, StoreError::WrongPassphrase),
            "{}: {err:?}",
            place.name()
        );
        // The right one still works afterwards.
        place.open();
    }
}

#[test]
fn creating_over_an_existing_profile_is_refused() {
    for place in Place::both() {
        drop(place.create());
        let err = place.create_with(b"other").unwrap_err();
        assert!(
            matches!(err, StoreError::ProfileExists { .. }),
            "{}: {err:?}",
            place.name()
        );
        place.open();
    }
}

#[test]
fn opening_a_missing_profile_is_profile_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = ProfileStore::open_in(&dir.path().join("nope"), PASS).unwrap_err();
    assert!(matches!(err, StoreError::ProfileMissing { .. }), "{err:?}");
    let err = ProfileStore::open(Box::new(MemoryBackend::new()), PASS).unwrap_err();
    assert!(matches!(err, StoreError::ProfileMissing { .. }), "{err:?}");
}

#[test]
fn failing_batch_writes_nothing() {
    for place in Place::both() {
        let mut s = place.create();
        let id = MessageId::random(&mut rand::rng());
        s.commit(receive_batch(
            "bob",
            b"session-1",
            HistoryEntry::incoming(id, "first", 1, 1),
            1,
        ))
        .unwrap();
        // Same message id again: the batch must fail as a whole, so neither
        // the session, the contact nor the envelope id may be written.
        let mut b = receive_batch(
            "bob",
            b"session-2",
            HistoryEntry::incoming(MessageId::random(&mut rand::rng()), "x", 2, 2),
            2,
        );
        b.put_contact(Contact::pinned("bob", keys(1), 2));
        b.append_message("bob", HistoryEntry::incoming(id, "dup", 2, 2));
        let err = s.commit(b).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateMessage { .. }),
            "{err:?}"
        );
        drop(s);
        let s = place.open();
        let p = place.name();
        assert_eq!(
            s.session("bob").unwrap().unwrap().as_slice(),
            b"session-1",
            "{p}"
        );
        assert!(s.contact("bob").unwrap().is_none(), "{p}");
        assert!(!s.is_processed(2).unwrap(), "{p}");
        let h = s.history("bob", None).unwrap();
        assert_eq!(h.len(), 1, "{p}");
        assert_eq!(h[0].text, "first");
    }
}

#[test]
fn same_message_id_from_two_peers_is_not_a_duplicate() {
    for place in Place::both() {
        let mut s = place.create();
        let id = MessageId::random(&mut rand::rng());
        s.commit(receive_batch(
            "bob",
            b"b",
            HistoryEntry::incoming(id, "from bob", 1, 1),
            1,
        ))
        .unwrap();
        s.commit(receive_batch(
            "carol",
            b"c",
            HistoryEntry::incoming(id, "from carol", 1, 1),
            2,
        ))
        .unwrap();
        assert_eq!(s.history("bob", None).unwrap()[0].text, "from bob");
        assert_eq!(s.history("carol", None).unwrap()[0].text, "from carol");
    }
}

#[test]
fn history_is_in_stored_order_and_limit_keeps_the_newest() {
    for place in Place::both() {
        let mut s = place.create();
        // Interleave two peers; sender clocks deliberately out of order.
        for i in 0..25u64 {
            let mut b = Batch::new();
            b.append_message(
                "bob",
                HistoryEntry::incoming(
                    MessageId::random(&mut rand::rng()),
                    format!("bob {i}"),
                    1000 - i,
                    i,
                ),
            );
            b.append_message(
                "carol",
                HistoryEntry::outgoing(
                    MessageId::random(&mut rand::rng()),
                    format!("carol {i}"),
                    i,
                ),
            );
            s.commit(b).unwrap();
        }
        drop(s);
        let s = place.open();
        let all: Vec<String> = s
            .history("bob", None)
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        let want: Vec<String> = (0..25).map(|i| format!("bob {i}")).collect();
        assert_eq!(all, want, "{}", place.name());
        let last: Vec<String> = s
            .history("bob", Some(3))
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(last, ["bob 22", "bob 23", "bob 24"]);
        assert_eq!(s.history("bob", Some(100)).unwrap().len(), 25);
        assert!(s.history("bob", Some(0)).unwrap().is_empty());
        assert!(s.history("dave", None).unwrap().is_empty());
        assert_eq!(s.history("carol", Some(1)).unwrap()[0].text, "carol 24");
    }
}

#[test]
fn status_only_moves_forward() {
    for place in Place::both() {
        let mut s = place.create();
        let id = MessageId::random(&mut rand::rng());
        let mut b = Batch::new();
        b.append_message("bob", HistoryEntry::outgoing(id, "hello", 1));
        s.commit(b).unwrap();

        let mut b = Batch::new();
        b.update_status("bob", id, DeliveryStatus::Read);
        let out = s.commit(b).unwrap();
        assert_eq!(
            out.status_changes,
            [StatusChange::Advanced {
                message_id: id,
                from: DeliveryStatus::Sent,
                to: DeliveryStatus::Read
            }]
        );
        // A late delivery receipt after the read receipt keeps `read`.
        let mut b = Batch::new();
        b.update_status("bob", id, DeliveryStatus::Delivered);
        b.update_status("bob", id, DeliveryStatus::Sent);
        let out = s.commit(b).unwrap();
        assert_eq!(
            out.status_changes,
            [
                StatusChange::Unchanged {
                    message_id: id,
                    current: DeliveryStatus::Read
                },
                StatusChange::Unchanged {
                    message_id: id,
                    current: DeliveryStatus::Read
                },
            ]
        );
        drop(s);
        let s = place.open();
        assert_eq!(
            s.message("bob", id).unwrap().unwrap().status,
            Some(DeliveryStatus::Read),
            "{}",
            place.name()
        );
    }
}

#[test]
fn status_steps_sent_delivered_read_within_one_batch() {
    for place in Place::both() {
        let mut s = place.create();
        let id = MessageId::random(&mut rand::rng());
        let mut b = Batch::new();
        b.append_message("bob", HistoryEntry::outgoing(id, "hello", 1));
        b.update_status("bob", id, DeliveryStatus::Delivered);
        b.update_status("bob", id, DeliveryStatus::Read);
        let out = s.commit(b).unwrap();
        assert_eq!(out.status_changes.len(), 2);
        assert!(matches!(
            out.status_changes[1],
            StatusChange::Advanced {
                from: DeliveryStatus::Delivered,
                ..
            }
        ));
        assert_eq!(
            s.history("bob", None).unwrap()[0].status,
            Some(DeliveryStatus::Read),
            "{}",
            place.name()
        );
    }
}

#[test]
fn receipts_for_unknown_incoming_or_other_peers_messages_change_nothing() {
    for place in Place::both() {
        let mut s = place.create();
        let out_id = MessageId::random(&mut rand::rng());
        let in_id = MessageId::random(&mut rand::rng());
        let mut b = Batch::new();
        b.append_message("bob", HistoryEntry::outgoing(out_id, "to bob", 1));
        b.append_message("bob", HistoryEntry::incoming(in_id, "from bob", 1, 2));
        s.commit(b).unwrap();
        let mut b = Batch::new();
        b.update_status("carol", out_id, DeliveryStatus::Read); // carol cannot mark bob's message
        b.update_status("bob", in_id, DeliveryStatus::Read); // incoming has no status
        b.update_status(
            "bob",
            MessageId::random(&mut rand::rng()),
            DeliveryStatus::Read,
        );
        b.put_session("bob", blob(b"still committed"));
        let out = s.commit(b).unwrap();
        assert!(
            out.status_changes
                .iter()
                .all(|c| matches!(c, StatusChange::UnknownMessage { .. }))
        );
        let h = s.history("bob", None).unwrap();
        assert_eq!(h[0].status, Some(DeliveryStatus::Sent));
        assert_eq!(h[1].status, None);
        assert_eq!(
            s.session("bob").unwrap().unwrap().as_slice(),
            b"still committed",
            "{}",
            place.name()
        );
    }
}

#[test]
fn processed_envelopes_are_recognised_after_reopen() {
    for place in Place::both() {
        let mut s = place.create();
        let mut b = Batch::new();
        b.mark_processed(7)
            .mark_processed(u64::MAX)
            .mark_processed(0)
            .mark_processed(7);
        s.commit(b).unwrap();
        drop(s);
        let s = place.open();
        for id in [0, 7, u64::MAX] {
            assert!(s.is_processed(id).unwrap(), "{} {id}", place.name());
        }
        assert!(!s.is_processed(8).unwrap());
        assert_eq!(s.processed_count().unwrap(), 3);
    }
}

#[test]
fn forgetting_processed_envelopes_clears_them_and_new_ids_are_recorded_again() {
    for place in Place::both() {
        let mut s = place.create();
        let mut b = Batch::new();
        b.mark_processed(1).mark_processed(2);
        s.commit(b).unwrap();
        let mut b = Batch::new();
        b.forget_processed();
        s.commit(b).unwrap();
        assert!(!s.is_processed(1).unwrap(), "{}", place.name());
        assert_eq!(s.processed_count().unwrap(), 0);
        let mut b = Batch::new();
        b.mark_processed(1);
        s.commit(b).unwrap();
        drop(s);
        let s = place.open();
        assert!(s.is_processed(1).unwrap(), "{}", place.name());
        assert!(!s.is_processed(2).unwrap());
    }
}

#[test]
fn processed_envelope_set_stays_bounded() {
    // Memory only for the bulk part: the bound is enforced by the typed layer
    // the disk backend shares; the disk variant below checks a small window.
    let place = Place::memory();
    let mut s = place.create();
    let total = PROCESSED_ENVELOPES_KEPT + 2_500;
    let mut b = Batch::new();
    for id in 1..=total {
        b.mark_processed(id);
        if id % 1_000 == 0 {
            s.commit(std::mem::take(&mut b)).unwrap();
        }
    }
    s.commit(b).unwrap();
    assert_eq!(s.processed_count().unwrap(), PROCESSED_ENVELOPES_KEPT);
    // The oldest are forgotten, the newest remembered.
    assert!(!s.is_processed(1).unwrap());
    assert!(!s.is_processed(2_500).unwrap());
    assert!(s.is_processed(2_501).unwrap());
    assert!(s.is_processed(total).unwrap());
    // Two rows per remembered id, nothing else in the table.
    let rows = place
        .raw()
        .scan_prefix(Table::Processed, &[], ScanOrder::Ascending, None)
        .unwrap();
    assert_eq!(rows.len() as u64, 2 * PROCESSED_ENVELOPES_KEPT);
}

#[test]
fn processed_envelopes_on_disk_survive_reopen_in_one_big_batch() {
    let place = Place::disk();
    let mut s = place.create();
    let mut b = Batch::new();
    for id in 1_000..3_000u64 {
        b.mark_processed(id);
    }
    s.commit(b).unwrap();
    drop(s);
    let s = place.open();
    assert_eq!(s.processed_count().unwrap(), 2_000);
    assert!(s.is_processed(1_000).unwrap() && s.is_processed(2_999).unwrap());
    assert!(!s.is_processed(999).unwrap() && !s.is_processed(3_000).unwrap());
}

#[test]
fn contacts_pin_keys_and_hold_key_changes_until_retrusted() {
    for place in Place::both() {
        let mut s = place.create();
        let mut c = Contact::pinned("bob", keys(1), 100);
        assert!(!c.record_key_change(keys(1), 150), "same key is no change");
        let mut b = Batch::new();
        b.put_contact(c.clone())
            .put_contact(Contact::pinned("carol", keys(3), 1));
        s.commit(b).unwrap();
        assert!(c.record_key_change(keys(2), 200));
        let mut b = Batch::new();
        b.put_contact(c.clone());
        s.commit(b).unwrap();
        drop(s);
        let mut s = place.open();
        let mut bob = s.contact("bob").unwrap().unwrap();
        assert!(bob.has_pending_key_change(), "{}", place.name());
        assert_eq!(bob.keys, keys(1), "pinned key unchanged until re-trust");
        assert_eq!(bob.key_change.unwrap().seen_at_ms, 200);
        assert!(bob.accept_key_change(300));
        assert_eq!(bob.keys, keys(2));
        assert!(!bob.verified);
        let mut b = Batch::new();
        b.put_contact(bob);
        s.commit(b).unwrap();
        let all = s.contacts().unwrap();
        assert_eq!(
            all.iter().map(|c| c.user_id.as_str()).collect::<Vec<_>>(),
            ["bob", "carol"]
        );
        assert!(!all[0].has_pending_key_change());
        let mut b = Batch::new();
        b.delete_contact("carol").delete_session("bob");
        s.commit(b).unwrap();
        assert_eq!(s.contacts().unwrap().len(), 1);
    }
}

#[test]
fn settings_can_be_changed() {
    for place in Place::both() {
        let mut s = place.create();
        let mut st = s.settings().unwrap();
        st.send_read_receipts = false;
        st.relay_url = "wss://relay.example/ws".into();
        let mut b = Batch::new();
        b.set_settings(st.clone());
        s.commit(b).unwrap();
        drop(s);
        assert_eq!(place.open().settings().unwrap(), st, "{}", place.name());
    }
}

/// Flips one bit in a stored value via the raw backend.
fn flip_value(place: &Place, table: Table) {
    let mut raw = place.raw();
    let rows = raw
        .scan_prefix(table, &[], ScanOrder::Ascending, None)
        .unwrap();
    let (key, mut value) = rows.into_iter().next().expect("a row to tamper with");
    let last = value.len() - 20;
    value[last] ^= 0x04;
    raw.apply(RawBatch {
        ops: vec![RawOp::Put { table, key, value }],
    })
    .unwrap();
}

#[test]
fn flipped_byte_in_a_sealed_value_is_corrupt_not_garbage() {
    for place in Place::both() {
        let mut s = place.create();
        s.commit(receive_batch(
            "bob",
            b"session",
            HistoryEntry::incoming(MessageId::random(&mut rand::rng()), "m", 1, 1),
            1,
        ))
        .unwrap();
        let mut b = Batch::new();
        b.put_contact(Contact::pinned("bob", keys(1), 1))
            .put_identity(blob(b"id"));
        s.commit(b).unwrap();
        drop(s);
        for table in [
            Table::Sessions,
            Table::History,
            Table::Contacts,
            Table::Secrets,
        ] {
            flip_value(&place, table);
        }
        let s = place.open();
        let p = place.name();
        assert!(
            matches!(s.session("bob"), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.history("bob", None), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.contact("bob"), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.contacts(), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.identity(), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
    }
}

#[test]
fn flipped_byte_in_the_header_is_corrupt() {
    for place in Place::both() {
        drop(place.create());
        let mut raw = place.raw();
        let mut header = raw.get(Table::Meta, b"header").unwrap().unwrap();
        header[70] ^= 0x01;
        raw.apply(RawBatch {
            ops: vec![RawOp::Put {
                table: Table::Meta,
                key: b"header".to_vec(),
                value: header,
            }],
        })
        .unwrap();
        drop(raw);
        let err = place.open_with(PASS).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{}: {err:?}",
            place.name()
        );
    }
}

#[test]
fn flipped_byte_in_settings_fails_open() {
    for place in Place::both() {
        drop(place.create());
        let mut raw = place.raw();
        let mut v = raw.get(Table::Meta, b"settings").unwrap().unwrap();
        v[30] ^= 0x80;
        raw.apply(RawBatch {
            ops: vec![RawOp::Put {
                table: Table::Meta,
                key: b"settings".to_vec(),
                value: v,
            }],
        })
        .unwrap();
        drop(raw);
        let err = place.open_with(PASS).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{}: {err:?}",
            place.name()
        );
    }
}

#[test]
fn swapping_sealed_values_between_keys_is_detected() {
    for place in Place::both() {
        let mut s = place.create();
        let mut b = Batch::new();
        b.put_session("bob", blob(b"bob's session"))
            .put_session("carol", blob(b"carol's session"));
        b.put_identity(blob(b"identity"))
            .put_prekeys(blob(b"prekeys"));
        s.commit(b).unwrap();
        drop(s);
        let mut raw = place.raw();
        let rows = raw
            .scan_prefix(Table::Sessions, &[], ScanOrder::Ascending, None)
            .unwrap();
        assert_eq!(rows.len(), 2);
        let (k0, v0) = rows[0].clone();
        let (k1, v1) = rows[1].clone();
        let id = raw.get(Table::Secrets, b"identity").unwrap().unwrap();
        let pk = raw.get(Table::Secrets, b"prekeys").unwrap().unwrap();
        raw.apply(RawBatch {
            ops: vec![
                RawOp::Put {
                    table: Table::Sessions,
                    key: k0,
                    value: v1,
                },
                RawOp::Put {
                    table: Table::Sessions,
                    key: k1,
                    value: v0,
                },
                RawOp::Put {
                    table: Table::Secrets,
                    key: b"identity".to_vec(),
                    value: pk,
                },
                RawOp::Put {
                    table: Table::Secrets,
                    key: b"prekeys".to_vec(),
                    value: id,
                },
            ],
        })
        .unwrap();
        drop(raw);
        let s = place.open();
        let p = place.name();
        assert!(
            matches!(s.session("bob"), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.session("carol"), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.identity(), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
        assert!(
            matches!(s.prekeys(), Err(StoreError::Corrupt { .. })),
            "{p}"
        );
    }
}

#[test]
fn moving_a_value_to_another_table_is_detected() {
    for place in Place::both() {
        let mut s = place.create();
        let mut b = Batch::new();
        b.put_contact(Contact::pinned("bob", keys(1), 1))
            .put_session("bob", blob(b"s"));
        s.commit(b).unwrap();
        drop(s);
        let mut raw = place.raw();
        let (key, contact) = raw
            .scan_prefix(Table::Contacts, &[], ScanOrder::Ascending, None)
            .unwrap()
            .remove(0);
        raw.apply(RawBatch {
            ops: vec![RawOp::Put {
                table: Table::Sessions,
                key,
                value: contact,
            }],
        })
        .unwrap();
        drop(raw);
        let s = place.open();
        assert!(
            matches!(s.session("bob"), Err(StoreError::Corrupt { .. })),
            "{}",
            place.name()
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn all_file_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn peer_ids_and_texts_never_appear_in_plaintext_on_disk() {
    let place = Place::disk();
    let marker_peer = format!("peer-{:032x}", rand_u128());
    let marker_text = format!("text-{:032x}", rand_u128());
    let marker_secret = format!("secret-{:032x}", rand_u128());
    {
        let mut s = place.create();
        let mut c = Contact::pinned(marker_peer.clone(), keys(9), 1);
        c.record_key_change(keys(10), 2);
        let mut b = Batch::new();
        b.put_contact(c)
            .put_session(&marker_peer, blob(marker_secret.as_bytes()))
            .put_identity(blob(marker_secret.as_bytes()))
            .append_message(
                &marker_peer,
                HistoryEntry::outgoing(MessageId::random(&mut rand::rng()), marker_text.clone(), 1),
            )
            .mark_processed(77);
        s.commit(b).unwrap();
        // Found again through the store...
        assert_eq!(s.history(&marker_peer, None).unwrap()[0].text, marker_text);
    }
    // ...but not in any file of the profile directory.
    let bytes = all_file_bytes(&place.dir());
    assert!(!bytes.is_empty());
    for marker in [&marker_peer, &marker_text, &marker_secret] {
        assert!(
            !contains(&bytes, marker.as_bytes()),
            "{marker} found in plaintext"
        );
    }
    assert!(
        !contains(&bytes, b"alice"),
        "own user id found in plaintext"
    );
    assert!(
        !contains(&bytes, &[9u8; 32]),
        "pinned key found in plaintext"
    );
}

fn rand_u128() -> u128 {
    u128::from_be_bytes(MessageId::random(&mut rand::rng()).0)
}

#[test]
fn change_passphrase_replaces_the_old_one() {
    for place in Place::both() {
        let mut s = place.create();
        let mut b = Batch::new();
        b.put_identity(blob(b"identity"));
        s.commit(b).unwrap();
        let err = s
            .change_passphrase(b"not the passphrase", b"new pass", params())
            .unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{err:?}");
        let stronger = KdfParams {
            m_cost_kib: 16,
            t_cost: 2,
            p_cost: 1,
        };
        s.change_passphrase(PASS, b"new pass", stronger).unwrap();
        assert_eq!(s.kdf_params().unwrap(), stronger);
        // The open store keeps working.
        let mut b = Batch::new();
        b.put_prekeys(blob(b"prekeys"));
        s.commit(b).unwrap();
        drop(s);
        let p = place.name();
        assert!(
            matches!(place.open_with(PASS), Err(StoreError::WrongPassphrase)),
            "{p}"
        );
        let s = place.open_with(b"new pass").unwrap();
        assert_eq!(
            s.identity().unwrap().unwrap().as_slice(),
            b"identity",
            "{p}"
        );
        assert_eq!(s.prekeys().unwrap().unwrap().as_slice(), b"prekeys", "{p}");
    }
}

const NEW_PASS: &[u8] = b"a brand new passphrase";

/// What `populate` wrote, to check it again later.
struct Populated {
    outgoing: Vec<MessageId>,
    incoming: Vec<MessageId>,
}

const POPULATED_TEXT: usize = 600;

fn populated_text(i: usize) -> String {
    format!("message {i} {}", "y".repeat(POPULATED_TEXT))
}

/// Writes one of everything: settings naming a presence peer, identity,
/// prekeys, two contacts (one with a pending key change), two sessions,
/// history with bob (both directions, receipts), with carol, and with dave
/// (no contact, no session: only the settings name him), and `n`
/// processed envelope ids.
fn populate(s: &mut ProfileStore, n: usize) -> Populated {
    let mut st = settings();
    st.presence_allow = vec!["dave".into()];
    st.send_read_receipts = false;
    let mut carol = Contact::pinned("carol", keys(2), 3);
    carol.record_key_change(keys(3), 4);
    let mut b = Batch::new();
    b.set_settings(st)
        .put_identity(blob(b"identity-secret"))
        .put_prekeys(blob(b"prekey-secret"))
        .put_contact(Contact::pinned("bob", keys(1), 2))
        .put_contact(carol)
        .put_session("carol", blob(b"carol-session"));
    s.commit(b).unwrap();
    let mut p = Populated {
        outgoing: Vec::new(),
        incoming: Vec::new(),
    };
    for i in 0..n {
        let id = MessageId::random(&mut rand::rng());
        let envelope = u64::try_from(i).unwrap() + 1;
        if i % 2 == 0 {
            let mut b = receive_batch(
                "bob",
                &envelope.to_be_bytes(),
                HistoryEntry::incoming(id, populated_text(i), 10, 11),
                envelope,
            );
            b.append_message("dave", HistoryEntry::incoming(id, "to dave", 1, 1));
            s.commit(b).unwrap();
            p.incoming.push(id);
        } else {
            let mut b = Batch::new();
            b.put_session("bob", blob(&envelope.to_be_bytes()))
                .append_message("bob", HistoryEntry::outgoing(id, populated_text(i), 12))
                .mark_processed(envelope);
            s.commit(b).unwrap();
            let mut b = Batch::new();
            b.update_status("bob", id, DeliveryStatus::Delivered);
            s.commit(b).unwrap();
            p.outgoing.push(id);
        }
    }
    let mut b = Batch::new();
    b.append_message(
        "carol",
        HistoryEntry::outgoing(MessageId::random(&mut rand::rng()), "hi carol", 5),
    );
    s.commit(b).unwrap();
    p
}

/// Checks everything `populate(_, n)` wrote reads back.
fn assert_populated(s: &ProfileStore, p: &Populated, n: usize) {
    let st = s.settings().unwrap();
    assert_eq!(st.user_id, "alice");
    assert_eq!(st.presence_allow, ["dave"]);
    assert!(!st.send_read_receipts);
    assert_eq!(
        s.identity().unwrap().unwrap().as_slice(),
        b"identity-secret"
    );
    assert_eq!(s.prekeys().unwrap().unwrap().as_slice(), b"prekey-secret");
    let contacts = s.contacts().unwrap();
    assert_eq!(
        contacts
            .iter()
            .map(|c| c.user_id.as_str())
            .collect::<Vec<_>>(),
        ["bob", "carol"]
    );
    assert_eq!(contacts[0].keys, keys(1));
    assert_eq!(contacts[1].key_change.unwrap().new_keys, keys(3));
    assert_eq!(s.contact("carol").unwrap().unwrap(), contacts[1]);
    assert_eq!(
        s.session("carol").unwrap().unwrap().as_slice(),
        b"carol-session"
    );
    if n > 0 {
        assert_eq!(
            s.session("bob").unwrap().unwrap().as_slice(),
            u64::try_from(n).unwrap().to_be_bytes()
        );
    }
    let history = s.history("bob", None).unwrap();
    assert_eq!(history.len(), n);
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.text, populated_text(i), "entry {i}");
    }
    for id in &p.outgoing {
        let e = s.message("bob", *id).unwrap().unwrap();
        assert_eq!(e.status, Some(DeliveryStatus::Delivered));
    }
    for id in &p.incoming {
        assert_eq!(s.message("bob", *id).unwrap().unwrap().message_id, *id);
        assert_eq!(s.message("dave", *id).unwrap().unwrap().text, "to dave");
    }
    assert_eq!(s.history("dave", None).unwrap().len(), p.incoming.len());
    assert_eq!(s.history("carol", None).unwrap()[0].text, "hi carol");
    assert_eq!(s.processed_count().unwrap(), u64::try_from(n).unwrap());
    for envelope in 1..=u64::try_from(n).unwrap() {
        assert!(s.is_processed(envelope).unwrap(), "envelope {envelope}");
    }
    assert!(!s.is_processed(u64::try_from(n).unwrap() + 1).unwrap());
}

/// Every row of every table: (table, key, value).
fn all_rows(backend: &dyn Backend) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for t in Table::ALL {
        for (k, v) in backend
            .scan_prefix(t, &[], ScanOrder::Ascending, None)
            .unwrap()
        {
            out.push((t, k, v));
        }
    }
    out
}

fn header_of(backend: &dyn Backend) -> Vec<u8> {
    backend.get(Table::Meta, b"header").unwrap().unwrap()
}

#[test]
fn passphrase_change_reseals_every_record_under_a_new_key() {
    const N: usize = 20;
    for place in Place::both() {
        let p = place.name();
        let written = populate(&mut place.create(), N);
        let before = all_rows(&*place.raw());
        let mut s = place.open();
        s.change_passphrase(PASS, NEW_PASS, params()).unwrap();
        // The open store uses the new key at once, for reads...
        assert_populated(&s, &written, N);
        drop(s);
        let after = all_rows(&*place.raw());
        assert_eq!(before.len(), after.len(), "{p}: same number of rows");
        for t in Table::ALL {
            let count =
                |rows: &[(Table, Vec<u8>, Vec<u8>)]| rows.iter().filter(|r| r.0 == t).count();
            assert_eq!(count(&before), count(&after), "{p}: rows of {t:?}");
        }
        for (t, k, v) in &before {
            assert!(
                !after.iter().any(|(_, _, nv)| nv == v),
                "{p}: a value of {t:?} was left as it was"
            );
            // Table keys that are HMACs under the old index keys are gone.
            if !matches!(t, Table::Meta | Table::Secrets) {
                assert!(
                    !after.iter().any(|(nt, nk, _)| nt == t && nk == k),
                    "{p}: an old key of {t:?} is still there"
                );
            }
        }
        let err = place.open_with(PASS).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{p}: {err:?}");
        let mut s = place.open_with(NEW_PASS).unwrap();
        assert_populated(&s, &written, N);
        // ...and for writes: appends, receipts (through the rebuilt message
        // index), duplicates, envelope ids.
        let id = MessageId::random(&mut rand::rng());
        let mut b = Batch::new();
        b.append_message("bob", HistoryEntry::outgoing(id, "after the change", 20))
            .mark_processed(1000);
        s.commit(b).unwrap();
        let mut b = Batch::new();
        b.update_status("bob", id, DeliveryStatus::Read)
            .update_status("bob", written.outgoing[0], DeliveryStatus::Read);
        let outcome = s.commit(b).unwrap();
        assert!(
            outcome
                .status_changes
                .iter()
                .all(|c| matches!(c, StatusChange::Advanced { .. })),
            "{p}: {outcome:?}"
        );
        let mut b = Batch::new();
        b.append_message(
            "bob",
            HistoryEntry::incoming(written.incoming[0], "dup", 1, 1),
        );
        let err = s.commit(b).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateMessage { .. }),
            "{p}: {err:?}"
        );
        assert!(s.is_processed(1000).unwrap());
        // And a second change works from the first one's state.
        s.change_passphrase(NEW_PASS, PASS, params()).unwrap();
        drop(s);
        let s = place.open();
        assert_eq!(s.history("bob", None).unwrap().len(), N + 1, "{p}");
        assert_eq!(
            s.message("bob", id).unwrap().unwrap().status,
            Some(DeliveryStatus::Read),
            "{p}"
        );
    }
}

#[test]
fn old_header_with_old_passphrase_opens_nothing_after_a_change() {
    for place in Place::both() {
        let p = place.name();
        let written = populate(&mut place.create(), 6);
        let old_header = header_of(&*place.raw());
        let mut s = place.open();
        s.change_passphrase(PASS, NEW_PASS, params()).unwrap();
        drop(s);
        let new_header = header_of(&*place.raw());
        assert_ne!(old_header, new_header);
        // Splice the old header back: the old passphrase unwraps the old
        // data key, which opens no record any more.
        let put_header = |h: &[u8]| {
            place
                .raw()
                .apply(RawBatch {
                    ops: vec![RawOp::Put {
                        table: Table::Meta,
                        key: b"header".to_vec(),
                        value: h.to_vec(),
                    }],
                })
                .unwrap();
        };
        put_header(&old_header);
        let err = place.open_with(PASS).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { ref what } if what.contains("failed authentication")),
            "{p}: {err:?}"
        );
        let err = place.open_with(NEW_PASS).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{p}: {err:?}");
        put_header(&new_header);
        assert_populated(&place.open_with(NEW_PASS).unwrap(), &written, 6);
    }
}

#[test]
fn history_of_an_unknown_peer_blocks_the_change_and_changes_nothing() {
    for place in Place::both() {
        let p = place.name();
        let mut s = place.create();
        let mut b = Batch::new();
        b.put_contact(Contact::pinned("erin", keys(4), 1))
            .append_message(
                "erin",
                HistoryEntry::outgoing(MessageId::random(&mut rand::rng()), "hi", 1),
            );
        s.commit(b).unwrap();
        let mut b = Batch::new();
        b.delete_contact("erin");
        s.commit(b).unwrap();
        let before = match &place {
            Place::Memory(m) => Some(all_rows(m)),
            Place::Disk(_) => None, // locked by `s`; checked by reopening below
        };
        let err = s.change_passphrase(PASS, NEW_PASS, params()).unwrap_err();
        assert!(
            matches!(err, StoreError::HistoryWithoutPeer { entries: 1 }),
            "{p}: {err:?}"
        );
        if let (Place::Memory(m), Some(before)) = (&place, before) {
            assert_eq!(all_rows(m), before, "{p}: nothing written");
        }
        // The store still works under the old key.
        assert_eq!(s.history("erin", None).unwrap().len(), 1, "{p}");
        drop(s);
        let err = place.open_with(NEW_PASS).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{p}: {err:?}");
        let mut s = place.open();
        // Naming the peer again (a contact) makes the change possible.
        let mut b = Batch::new();
        b.put_contact(Contact::pinned("erin", keys(4), 2));
        s.commit(b).unwrap();
        s.change_passphrase(PASS, NEW_PASS, params()).unwrap();
        drop(s);
        let s = place.open_with(NEW_PASS).unwrap();
        assert_eq!(s.history("erin", None).unwrap()[0].text, "hi", "{p}");
    }
}

/// A backend whose commits or compaction fail on demand.
#[derive(Debug)]
struct Faulty {
    inner: Box<dyn Backend>,
    fail_apply: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fail_compact: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Backend for Faulty {
    fn location(&self) -> PathBuf {
        self.inner.location()
    }
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        order: ScanOrder,
        limit: Option<usize>,
    ) -> Result<hush_client_core::store::Pairs, StoreError> {
        self.inner.scan_prefix(table, prefix, order, limit)
    }
    fn apply(&mut self, batch: RawBatch) -> Result<(), StoreError> {
        if self.fail_apply.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other(
                "injected commit failure",
            )));
        }
        self.inner.apply(batch)
    }
    fn compact(&mut self) -> Result<(), StoreError> {
        if self.fail_compact.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other(
                "injected compaction failure",
            )));
        }
        self.inner.compact()
    }
}

#[test]
fn failed_passphrase_change_commit_leaves_the_old_profile_and_key() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for place in Place::both() {
        let p = place.name();
        let written = populate(&mut place.create(), 4);
        let before = all_rows(&*place.raw());
        let fail_apply = Arc::new(AtomicBool::new(true));
        let faulty = Faulty {
            inner: place.raw(),
            fail_apply: fail_apply.clone(),
            fail_compact: Arc::new(AtomicBool::new(false)),
        };
        let mut s = ProfileStore::open(Box::new(faulty), PASS).unwrap();
        let err = s.change_passphrase(PASS, NEW_PASS, params()).unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{p}: {err:?}");
        // The store kept the old key: reads and writes still work.
        assert_populated(&s, &written, 4);
        fail_apply.store(false, Ordering::SeqCst);
        let mut b = Batch::new();
        b.put_prekeys(blob(b"prekey-secret"));
        s.commit(b).unwrap();
        drop(s);
        let after = all_rows(&*place.raw());
        assert_eq!(before.len(), after.len(), "{p}");
        assert_eq!(header_of(&*place.raw()), {
            let (_, _, h) = before
                .iter()
                .find(|(t, k, _)| *t == Table::Meta && k == b"header")
                .unwrap();
            h.clone()
        });
        let err = place.open_with(NEW_PASS).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{p}: {err:?}");
        assert_populated(&place.open(), &written, 4);
    }
}

#[test]
fn failed_compaction_after_a_change_reports_it_but_the_change_holds() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for place in Place::both() {
        let p = place.name();
        let written = populate(&mut place.create(), 4);
        let fail_compact = Arc::new(AtomicBool::new(true));
        let faulty = Faulty {
            inner: place.raw(),
            fail_apply: Arc::new(AtomicBool::new(false)),
            fail_compact: fail_compact.clone(),
        };
        let mut s = ProfileStore::open(Box::new(faulty), PASS).unwrap();
        let err = s.change_passphrase(PASS, NEW_PASS, params()).unwrap_err();
        assert!(
            matches!(err, StoreError::NotCompacted { .. }),
            "{p}: {err:?}"
        );
        assert_populated(&s, &written, 4);
        fail_compact.store(false, Ordering::SeqCst);
        s.compact().unwrap();
        drop(s);
        let err = place.open_with(PASS).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{p}: {err:?}");
        assert_populated(&place.open_with(NEW_PASS).unwrap(), &written, 4);
    }
}

/// Every value written, with its table.
type Written = std::sync::Arc<std::sync::Mutex<Vec<(Table, Vec<u8>)>>>;

/// A backend that keeps a copy of every value ever written through it.
#[derive(Debug)]
struct Recording {
    inner: Box<dyn Backend>,
    written: Written,
}

impl Backend for Recording {
    fn location(&self) -> PathBuf {
        self.inner.location()
    }
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn scan_prefix(
        &self,
        table: Table,
        prefix: &[u8],
        order: ScanOrder,
        limit: Option<usize>,
    ) -> Result<hush_client_core::store::Pairs, StoreError> {
        self.inner.scan_prefix(table, prefix, order, limit)
    }
    fn apply(&mut self, batch: RawBatch) -> Result<(), StoreError> {
        let mut w = self.written.lock().unwrap();
        for op in &batch.ops {
            if let RawOp::Put { table, value, .. } = op {
                w.push((*table, value.clone()));
            }
        }
        drop(w);
        self.inner.apply(batch)
    }
    fn compact(&mut self) -> Result<(), StoreError> {
        self.inner.compact()
    }
}

/// The pieces of an old value looked for in the file: for a header, its
/// salt, nonce and wrapped data key (the rest is public and may repeat);
/// for a sealed value, every 16-byte chunk.
fn secret_pieces(table: Table, value: &[u8]) -> Vec<&[u8]> {
    if table == Table::Meta && value.starts_with(b"HUSHPROF") && value.len() == 143 {
        vec![
            &value[23..39],
            &value[39..63],
            &value[63..79],
            &value[79..95],
            &value[95..111],
        ]
    } else {
        value.chunks_exact(16).collect()
    }
}

/// Every value ever written under the old key — the rows current at the
/// change and every earlier version of them (overwritten sessions,
/// history entries before a receipt, headers, deleted envelope ids) — is
/// looked for in the raw file after the change: no 16-byte piece of any of
/// them may be left.
#[test]
fn raw_file_holds_no_old_ciphertext_after_a_passphrase_change() {
    const N: usize = 300;
    let place = Place::disk();
    let written = Written::default();
    let backend = Recording {
        inner: Box::new(DiskBackend::create(&place.dir()).unwrap()),
        written: written.clone(),
    };
    let mut s = ProfileStore::create(Box::new(backend), PASS, params(), &settings()).unwrap();
    let populated = populate(&mut s, N);
    // Deleted rows too: forget the envelope ids, then record some again.
    let mut b = Batch::new();
    b.forget_processed();
    s.commit(b).unwrap();
    let mut b = Batch::new();
    for envelope in 1..=u64::try_from(N).unwrap() {
        b.mark_processed(envelope);
    }
    s.commit(b).unwrap();
    drop(s);
    let old_values = std::mem::take(&mut *written.lock().unwrap());
    let file = place.dir().join(PROFILE_FILE);
    let size_before = std::fs::metadata(&file).unwrap().len();
    let mut s = place.open();
    s.change_passphrase(PASS, NEW_PASS, params()).unwrap();
    drop(s);
    let bytes = std::fs::read(&file).unwrap();
    let windows: std::collections::HashSet<&[u8]> = bytes.windows(16).collect();
    let mut pieces = 0usize;
    let mut found = Vec::new();
    for (t, v) in &old_values {
        for piece in secret_pieces(*t, v) {
            pieces += 1;
            if windows.contains(piece) {
                found.push(*t);
            }
        }
    }
    eprintln!(
        "{} old values, {pieces} pieces; file {size_before} bytes before the change, {} after; \
         {} pieces found",
        old_values.len(),
        bytes.len(),
        found.len()
    );
    assert!(
        pieces > N * POPULATED_TEXT / 16,
        "the scan covered the history"
    );
    assert!(
        found.is_empty(),
        "old ciphertext left in the file: {found:?}"
    );
    assert_populated(&place.open_with(NEW_PASS).unwrap(), &populated, N);
}

#[test]
fn second_open_of_the_same_profile_is_in_use() {
    let place = Place::disk();
    let s = place.create();
    let err = place.open_with(PASS).unwrap_err();
    assert!(matches!(err, StoreError::ProfileInUse), "{err:?}");
    let err = ProfileStore::create_in(&place.dir(), b"x", params(), &settings()).unwrap_err();
    assert!(matches!(err, StoreError::ProfileInUse), "{err:?}");
    drop(s);
    place.open();
}

#[test]
fn debug_output_holds_no_secrets() {
    let place = Place::memory();
    let mut s = place.create();
    let mut b = Batch::new();
    b.put_identity(blob(b"SECRET-IDENTITY-BYTES"))
        .put_session("bob", blob(b"SECRET-SESSION-BYTES"));
    let batch_dbg = format!("{b:?}");
    s.commit(b).unwrap();
    let store_dbg = format!("{s:?}");
    let blob_dbg = format!("{:?}", s.identity().unwrap().unwrap());
    for d in [&batch_dbg, &store_dbg, &blob_dbg] {
        assert!(!d.contains("SECRET"), "{d}");
        // Byte lists of the secret ("83, 69, 67") would show as numbers.
        assert!(!d.contains("83, 69, 67"), "{d}");
    }
    assert!(store_dbg.contains("redacted"));
}

#[test]
fn profile_directory_holds_only_the_database_file() {
    let place = Place::disk();
    drop(place.create());
    let names: Vec<String> = std::fs::read_dir(place.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [PROFILE_FILE]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(place.dir()).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "profile dir must not be group/world accessible: {mode:o}"
        );
    }
}

#[test]
fn identity_pickle_round_trips_through_a_reopened_profile() {
    use hush_client_core::IdentityKeyPair;
    for place in Place::both() {
        let identity = IdentityKeyPair::generate(&mut rand::rng());
        let public = identity.public();
        {
            let mut s = place.create();
            let mut b = Batch::new();
            b.put_identity(identity.pickle());
            b.put_contact(Contact::pinned(
                "self-check",
                IdentityKeys::from(&public),
                1,
            ));
            s.commit(b).unwrap();
        }
        let s = place.open();
        let back = IdentityKeyPair::unpickle(&s.identity().unwrap().unwrap()).unwrap();
        assert_eq!(back.public(), public, "{}", place.name());
        assert_eq!(
            s.contact("self-check").unwrap().unwrap().keys,
            IdentityKeys::from(&public)
        );
    }
}

#[test]
fn store_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<ProfileStore>();
    assert_send::<Batch>();
    let place = Place::disk();
    let s = place.create();
    let s = std::thread::spawn(move || {
        s.settings().unwrap();
        s
    })
    .join()
    .unwrap();
    assert_eq!(s.settings().unwrap(), settings());
}
