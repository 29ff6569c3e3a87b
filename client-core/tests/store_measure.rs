//! Figures quoted in docs/store.md. Ignored by default (timing, not
//! behaviour); run with
//! `cargo test --release -p hush-client-core --test store_measure -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::time::Instant;

use hush_client_core::store::{
    Batch, HistoryEntry, KdfParams, MessageId, ProfileSettings, ProfileStore,
};
use zeroize::Zeroizing;

#[test]
#[ignore = "measurement; prints timings"]
fn measure_store_costs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let t = Instant::now();
    let s = ProfileStore::create_in(
        &dir,
        b"pw",
        KdfParams::default(),
        &ProfileSettings::new("a", "ws://r", 0),
    )
    .unwrap();
    println!(
        "create with default Argon2id (64 MiB, t=3, p=1): {:?}",
        t.elapsed()
    );
    drop(s);
    let t = Instant::now();
    let mut s = ProfileStore::open_in(&dir, b"pw").unwrap();
    println!("open with default Argon2id: {:?}", t.elapsed());

    let session = Zeroizing::new(vec![7u8; 4096]);
    let n = 200u64;
    let t = Instant::now();
    for i in 0..n {
        let mut b = Batch::new();
        b.put_session("bob", session.clone())
            .append_message(
                "bob",
                HistoryEntry::incoming(
                    MessageId::random(&mut rand::rng()),
                    "a typical short message",
                    i,
                    i,
                ),
            )
            .mark_processed(i);
        s.commit(b).unwrap();
    }
    let per = t.elapsed() / u32::try_from(n).unwrap();
    println!("receive commit (4 KiB session + entry + envelope id, fsynced): {per:?} each");
    let t = Instant::now();
    let h = s.history("bob", Some(50)).unwrap();
    println!(
        "history newest 50 of {n}: {:?} ({} entries)",
        t.elapsed(),
        h.len()
    );
    println!(
        "profile.redb size after {n} messages: {} bytes",
        std::fs::metadata(dir.join("profile.redb")).unwrap().len()
    );
}
