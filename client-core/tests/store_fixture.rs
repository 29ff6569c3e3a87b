//! "A profile written by one version is read by the next": a profile written
//! by format version 1 is committed under `tests/fixtures/profile-v1/` and
//! must keep opening, with the same contents, in every later version.
//!
//! Regenerate only when deliberately starting a new fixture (never to make a
//! failing test pass):
//! `HUSH_WRITE_STORE_FIXTURE=1 cargo test -p hush-client-core --test store_fixture -- --ignored write_fixture_v1`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};

use hush_client_core::store::{
    Batch, Contact, DeliveryStatus, Direction, HistoryEntry, IdentityKeys, KdfParams, MessageFlags,
    MessageId, PROFILE_FILE, ProfileSettings, ProfileStore,
};
use zeroize::Zeroizing;

const FIXTURE_PASSPHRASE: &[u8] = b"fixture passphrase v1";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profile-v1")
}

fn settings() -> ProfileSettings {
    ProfileSettings {
        user_id: "alice".into(),
        relay_url: "ws://127.0.0.1:7070/ws".into(),
        created_at_ms: 1_764_000_000_000,
        send_read_receipts: false,
        // Added after v1 was written: decode to their defaults.
        presence_allow: Vec::new(),
        relay_id: None,
    }
}

fn bob_contact() -> Contact {
    let mut c = Contact::pinned(
        "bob",
        IdentityKeys {
            sig_pub: [1; 32],
            dh_pub: [2; 32],
        },
        1_764_000_001_000,
    );
    c.verified = true;
    c.record_key_change(
        IdentityKeys {
            sig_pub: [3; 32],
            dh_pub: [4; 32],
        },
        1_764_000_009_000,
    );
    c.last_activity_ms = 1_764_000_005_000;
    c
}

fn history() -> Vec<HistoryEntry> {
    let mut first = HistoryEntry::incoming(
        MessageId([0x11; 16]),
        "hello alice",
        1_764_000_002_000,
        1_764_000_002_500,
    );
    first.flags = MessageFlags {
        identity_unverified: true,
        from_changed_key: false,
        // Added after v1 was written: decodes to its default.
        request: false,
    };
    let mut second = HistoryEntry::outgoing(MessageId([0x22; 16]), "hi bob ✓", 1_764_000_003_000);
    second.status = Some(DeliveryStatus::Read);
    let third = HistoryEntry::outgoing(MessageId([0x33; 16]), "still there?", 1_764_000_004_000);
    vec![first, second, third]
}

#[test]
#[ignore = "writes the committed fixture; run by hand with HUSH_WRITE_STORE_FIXTURE=1"]
fn write_fixture_v1() {
    if std::env::var_os("HUSH_WRITE_STORE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let mut s = ProfileStore::create_in(
        &dir,
        FIXTURE_PASSPHRASE,
        KdfParams::insecure_for_tests(),
        &settings(),
    )
    .unwrap();
    let mut b = Batch::new();
    b.put_identity(Zeroizing::new(b"identity pickle v1".to_vec()))
        .put_prekeys(Zeroizing::new(b"prekeys pickle v1".to_vec()))
        .put_session("bob", Zeroizing::new(b"bob sessions pickle v1".to_vec()))
        .put_contact(bob_contact());
    for e in history() {
        let status = e.status;
        let id = e.message_id;
        let mut sent = e;
        if sent.direction == Direction::Outgoing {
            sent.status = Some(DeliveryStatus::Sent);
        }
        b.append_message("bob", sent);
        if let Some(st) = status {
            b.update_status("bob", id, st);
        }
    }
    for id in 1..=5 {
        b.mark_processed(id);
    }
    s.commit(b).unwrap();
}

#[test]
fn fixture_written_by_format_v1_opens() {
    // Open a copy: opening takes the file lock and may write.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture_dir().join(PROFILE_FILE),
        tmp.path().join(PROFILE_FILE),
    )
    .unwrap();
    let s = ProfileStore::open_in(tmp.path(), FIXTURE_PASSPHRASE).unwrap();
    assert_eq!(s.kdf_params().unwrap(), KdfParams::insecure_for_tests());
    assert_eq!(s.settings().unwrap(), settings());
    assert_eq!(
        s.identity().unwrap().unwrap().as_slice(),
        b"identity pickle v1"
    );
    assert_eq!(
        s.prekeys().unwrap().unwrap().as_slice(),
        b"prekeys pickle v1"
    );
    assert_eq!(
        s.session("bob").unwrap().unwrap().as_slice(),
        b"bob sessions pickle v1"
    );
    assert_eq!(s.contacts().unwrap(), [bob_contact()]);
    assert_eq!(s.history("bob", None).unwrap(), history());
    for id in 1..=5 {
        assert!(s.is_processed(id).unwrap());
    }
    assert!(!s.is_processed(6).unwrap());
    assert!(matches!(
        ProfileStore::open_in(tmp.path(), b"fixture passphrase v2"),
        Err(hush_client_core::store::StoreError::ProfileInUse)
    ));
    drop(s);
    assert!(matches!(
        ProfileStore::open_in(tmp.path(), b"fixture passphrase v2"),
        Err(hush_client_core::store::StoreError::WrongPassphrase)
    ));
}
