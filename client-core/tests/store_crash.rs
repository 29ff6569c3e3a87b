//! Crash safety of the disk profile: whatever happens mid-write, the profile
//! opens with the last committed state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hush_client_core::store::{
    Batch, DiskBackend, HistoryEntry, KdfParams, MessageId, PROFILE_FILE, ProfileSettings,
    ProfileStore, StoreError,
};
use zeroize::Zeroizing;

const PASS: &[u8] = b"crash test passphrase";
const CHILD_DIR_ENV: &str = "HUSH_STORE_CRASH_CHILD_DIR";
const PASS_B: &[u8] = b"the other passphrase";

fn create(dir: &Path) -> ProfileStore {
    ProfileStore::create_in(
        dir,
        PASS,
        KdfParams::insecure_for_tests(),
        &ProfileSettings::new("alice", "ws://relay", 1),
    )
    .unwrap()
}

/// One "message received" commit numbered `n`.
fn receive(store: &mut ProfileStore, n: u64) {
    let mut b = Batch::new();
    b.put_session("bob", Zeroizing::new(n.to_be_bytes().to_vec()))
        .append_message(
            "bob",
            HistoryEntry::incoming(
                MessageId::random(&mut rand::rng()),
                format!("message {n} {}", "x".repeat(2000)),
                n,
                n,
            ),
        )
        .mark_processed(n);
    store.commit(b).unwrap();
}

/// Checks that session, history and dedup agree: each commit wrote all three
/// or none. Returns the number of committed messages.
fn assert_consistent(store: &ProfileStore) -> u64 {
    let history = store.history("bob", None).unwrap();
    let n = history.len() as u64;
    for (i, e) in history.iter().enumerate() {
        assert!(
            e.text.starts_with(&format!("message {} ", i + 1)),
            "entry {i}"
        );
    }
    match store.session("bob").unwrap() {
        Some(s) => assert_eq!(s.as_slice(), n.to_be_bytes(), "session matches history"),
        None => assert_eq!(n, 0),
    }
    for id in 1..=n {
        assert!(store.is_processed(id).unwrap(), "envelope {id}");
    }
    assert!(!store.is_processed(n + 1).unwrap());
    n
}

#[test]
fn dropped_uncommitted_transaction_leaves_last_committed_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut s = create(&dir);
    for n in 1..=3 {
        receive(&mut s, n);
    }
    drop(s);
    {
        // A writer that dies before committing: its writes must vanish.
        let db = redb::Database::open(dir.join(PROFILE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("sessions");
            let mut t = txn.open_table(def).unwrap();
            t.insert(&b"garbage"[..], &b"garbage"[..]).unwrap();
            let hist: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("history");
            let mut h = txn.open_table(hist).unwrap();
            h.insert(&[0u8; 40][..], &b"garbage"[..]).unwrap();
        }
        drop(txn);
    }
    let s = ProfileStore::open_in(&dir, PASS).unwrap();
    assert_eq!(assert_consistent(&s), 3);
}

#[test]
fn truncated_database_file_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut s = create(&dir);
    receive(&mut s, 1);
    drop(s);
    let path = dir.join(PROFILE_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [0, 100, len / 2] {
        let copy = tmp.path().join(format!("copy{keep}"));
        std::fs::create_dir(&copy).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(copy.join(PROFILE_FILE), &bytes[..keep as usize]).unwrap();
        let r = ProfileStore::open_in(&copy, PASS);
        assert!(
            !matches!(r, Ok(_) | Err(StoreError::WrongPassphrase)),
            "truncated to {keep}: {r:?}"
        );
    }
}

/// Child half of `killed_writer_leaves_an_openable_profile`: commits forever,
/// reporting each commit on stdout, until the parent kills it. Only does
/// anything when started by that test (the env var names the profile).
#[test]
#[ignore = "started as a child process by killed_writer_leaves_an_openable_profile"]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let mut s = ProfileStore::open_in(Path::new(&dir), PASS).unwrap();
    let start = s.history("bob", None).unwrap().len() as u64 + 1;
    for n in start.. {
        receive(&mut s, n);
        println!("committed {n}");
    }
}

#[test]
fn killed_writer_leaves_an_openable_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    drop(create(&dir));
    let mut last_reported = 0;
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let committed = |line: std::io::Result<String>| {
            line.ok()?
                .strip_prefix("committed ")
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut seen = 0;
        // Kill at a different point each round, mid-way through a stream of
        // commits.
        let target = last_reported + 5 + round * 7;
        for n in lines.by_ref().filter_map(committed) {
            seen = n;
            if seen >= target {
                child.kill().unwrap(); // SIGKILL on Unix: no destructors run
                break;
            }
        }
        child.wait().unwrap();
        assert!(seen >= target, "child reported only {seen} commits");
        // The child goes on committing until the signal lands: what it
        // printed after `seen` is still in the pipe.
        let printed = lines.filter_map(committed).last().unwrap_or(seen);
        let s = ProfileStore::open_in(&dir, PASS).unwrap();
        let n = assert_consistent(&s);
        // Every commit the child reported is durable; at most one more
        // (committed but not yet reported) may be present.
        assert!(
            n >= printed && n <= printed + 1,
            "round {round}: {n} committed, {printed} reported"
        );
        last_reported = n;
        drop(s);
    }
}

#[test]
fn interrupted_create_is_missing_and_can_be_created_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    // What a crash between opening the file and the first commit leaves.
    drop(DiskBackend::create(&dir).unwrap());
    assert!(dir.join(PROFILE_FILE).exists());
    let err = ProfileStore::open_in(&dir, PASS).unwrap_err();
    assert!(matches!(err, StoreError::ProfileMissing { .. }), "{err:?}");
    let mut s = create(&dir);
    receive(&mut s, 1);
    drop(s);
    assert_eq!(
        assert_consistent(&ProfileStore::open_in(&dir, PASS).unwrap()),
        1
    );
}

/// Child half of `killed_during_passphrase_changes_opens_with_one_of_them`:
/// flips the passphrase back and forth forever (each flip a full re-key).
#[test]
#[ignore = "started as a child process by killed_during_passphrase_changes_opens_with_one_of_them"]
fn crash_child_passphrase_flipper() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut s = ProfileStore::open_in(dir, PASS)
        .or_else(|_| ProfileStore::open_in(dir, PASS_B))
        .unwrap();
    let mut current_is_a = s
        .change_passphrase(PASS, PASS, KdfParams::insecure_for_tests())
        .is_ok();
    for n in 0u64.. {
        let (old, new) = if current_is_a {
            (PASS, PASS_B)
        } else {
            (PASS_B, PASS)
        };
        s.change_passphrase(old, new, KdfParams::insecure_for_tests())
            .unwrap();
        current_is_a = !current_is_a;
        println!("changed {n}");
    }
}

#[test]
fn killed_during_passphrase_changes_opens_with_one_of_them() {
    // Each change re-seals every record under a fresh data key and then
    // compacts the file: with this many records a kill lands inside the
    // re-keying commit or the compaction as often as between changes.
    const MESSAGES: u64 = 60;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let mut s = create(&dir);
    for n in 1..=MESSAGES {
        receive(&mut s, n);
    }
    drop(s);
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_passphrase_flipper",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let target = 10 + round * 13;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            if let Some(n) = line.unwrap().strip_prefix("changed ") {
                seen = n.parse::<u64>().unwrap();
                if seen >= target {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(seen >= target, "child reported only {seen} changes");
        let s = ProfileStore::open_in(&dir, PASS)
            .or_else(|_| ProfileStore::open_in(&dir, PASS_B))
            .unwrap();
        // Every record opens under the one passphrase that opened the
        // header: never a mix of old and new keys.
        assert_eq!(assert_consistent(&s), MESSAGES, "round {round}");
        assert_eq!(s.processed_count().unwrap(), MESSAGES, "round {round}");
    }
}
