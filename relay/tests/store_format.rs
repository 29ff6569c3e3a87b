//! The stored formats, pinned byte for byte: one fixed history of requests
//! is applied to a redb store and to a Redis store, then every table (redb)
//! and every key (Redis) is read back raw and compared with golden bytes.
//! The golden bytes were computed by the stores as they were before their
//! codecs were merged into one (`store/codec.rs`); any change to what is on
//! disk or in Redis fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use std::fmt::Write as _;

use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};
use hush_relay::Store;
use hush_relay::store::{AppendOutcome, MailboxLimits, NewEnvelope, PublishedKeys};
use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};

fn user(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

/// `n` bytes counting up from `start` (wrapping), so every byte position
/// of a record is distinguishable.
fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

const ROOMY: MailboxLimits = MailboxLimits {
    max_envelopes: 100,
    max_bytes: 1 << 20,
};

/// The history: two users, alice's keys and prekeys, two envelopes for
/// alice (one acknowledged later), a third for bob, alice's allow list and
/// last-seen time, one bundle fetched from bob.
async fn apply_history(store: &impl Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    store
        .register_or_authenticate(&alice, &PublicKeyBytes(seq(0x10)))
        .await
        .unwrap();
    store
        .register_or_authenticate(&bob, &PublicKeyBytes(seq(0x40)))
        .await
        .unwrap();
    let keys = PublishedKeys {
        identity_dh: PublicKeyBytes(seq(0x60)),
        identity_dh_sig: SignatureBytes(seq(0x80)),
        signed_prekey: SignedPrekey {
            id: 0x0102_0304,
            key: PublicKeyBytes(seq(0xc0)),
            signature: SignatureBytes(seq(0xe0)),
        },
    };
    let opks = vec![
        OneTimePrekey {
            id: 7,
            key: PublicKeyBytes(seq(0x07)),
        },
        OneTimePrekey {
            id: 0x0a0b_0c0d,
            key: PublicKeyBytes(seq(0xf0)),
        },
    ];
    store
        .publish_keys(&alice, keys.clone(), opks.clone(), 100)
        .await
        .unwrap();
    store.publish_keys(&bob, keys, opks, 100).await.unwrap();
    // Bob's lowest one-time prekey is popped.
    store.fetch_bundle(&bob).await.unwrap().unwrap();
    for (to, from, at, body) in [
        (&alice, "bob", 0x0102_0304_0506_0708u64, &b"hello"[..]),
        (&alice, "bob", 1_700_000_000_000, &b"\x00\xff"[..]),
        (&alice, "carol-1", 1_700_000_000_001, &b""[..]),
        (&bob, "alice", 1_700_000_000_002, &b"hi bob"[..]),
    ] {
        let e = NewEnvelope {
            from: user(from),
            accepted_at: at,
            body: Body(body.to_vec()),
        };
        let r = store.append(to, e, ROOMY).await.unwrap();
        assert!(matches!(r, AppendOutcome::Appended(_)), "{r:?}");
    }
    assert_eq!(store.ack(&alice, vec![2]).await.unwrap(), 1);
    store
        .set_presence_allow(&alice, vec![user("bob"), user("carol-1")])
        .await
        .unwrap();
    store
        .set_last_seen(&alice, 1_700_000_000_123)
        .await
        .unwrap();
}

// ------------------------------------------------------------ redb

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const OPKS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("one_time_prekeys");
const MAILBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("mailbox");
const PRESENCE_ALLOW: TableDefinition<(&str, &str), ()> = TableDefinition::new("presence_allow");
const LAST_SEEN: TableDefinition<&str, u64> = TableDefinition::new("last_seen");

/// Every table of `hush.redb`, one line per row (values in hex).
fn dump_redb(path: &std::path::Path) -> String {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let mut out = String::new();
    let meta = txn.open_table(META).unwrap();
    for row in meta.iter().unwrap() {
        let (k, v) = row.unwrap();
        let v = v.value();
        assert!(
            v.len() == 32
                && v.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "relay id is 16 random bytes in lower-case hex: {v}"
        );
        writeln!(out, "meta {} = <32 hex digits>", k.value()).unwrap();
    }
    for (name, table) in [("users", USERS), ("keys", KEYS)] {
        for row in txn.open_table(table).unwrap().iter().unwrap() {
            let (k, v) = row.unwrap();
            writeln!(out, "{name} {} = {}", k.value(), hex(v.value())).unwrap();
        }
    }
    for row in txn.open_table(OPKS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (u, id) = k.value();
        writeln!(out, "one_time_prekeys ({u}, {id}) = {}", hex(v.value())).unwrap();
    }
    for row in txn.open_table(MAILBOX).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (u, id) = k.value();
        writeln!(out, "mailbox ({u}, {id}) = {}", hex(v.value())).unwrap();
    }
    for row in txn.open_table(PRESENCE_ALLOW).unwrap().iter().unwrap() {
        let (k, _) = row.unwrap();
        let (u, a) = k.value();
        writeln!(out, "presence_allow ({u}, {a})").unwrap();
    }
    for row in txn.open_table(LAST_SEEN).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        writeln!(out, "last_seen {} = {}", k.value(), v.value()).unwrap();
    }
    out
}

const REDB_GOLDEN: &str = "meta relay_id = <32 hex digits>
users alice = 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f000000000000000300000000000000020000000000000005
users bob = 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f000000000000000100000000000000010000000000000006
keys alice = 606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf01020304c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
keys bob = 606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf01020304c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
one_time_prekeys (alice, 7) = 0708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526
one_time_prekeys (alice, 168496141) = f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f
one_time_prekeys (bob, 168496141) = f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f
mailbox (alice, 1) = 010203040506070803626f6268656c6c6f
mailbox (alice, 3) = 0000018bcfe56801076361726f6c2d31
mailbox (bob, 1) = 0000018bcfe5680205616c696365686920626f62
presence_allow (alice, bob)
presence_allow (alice, carol-1)
last_seen alice = 1700000000123
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_tables_are_byte_for_byte_as_pinned() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = hush_relay::RedbStore::open(dir.path()).unwrap();
        apply_history(&store).await;
    }
    let got = dump_redb(&dir.path().join("hush.redb"));
    assert_eq!(got, REDB_GOLDEN, "\n{got}");
}

// ------------------------------------------------------------ Redis

/// Every `hush:*` key, one line per key, field or member (binary values in
/// hex, decimal ones as Redis holds them).
async fn dump_redis(url: &str) -> String {
    let mut conn = ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    let mut out = String::new();
    for key in keys {
        let kind: String = ::redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        match kind.as_str() {
            "string" => {
                let v: Vec<u8> = ::redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if key == "hush:relay_id" {
                    assert!(
                        v.len() == 32
                            && v.iter()
                                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                        "relay id is 16 random bytes in lower-case hex"
                    );
                    writeln!(out, "{key} string = <32 hex digits>").unwrap();
                } else {
                    writeln!(out, "{key} string = {}", hex(&v)).unwrap();
                }
            }
            "hash" => {
                let mut fields: Vec<(Vec<u8>, Vec<u8>)> = ::redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                fields.sort();
                for (f, v) in fields {
                    writeln!(
                        out,
                        "{key} hash {} = {}",
                        String::from_utf8_lossy(&f),
                        hex(&v)
                    )
                    .unwrap();
                }
            }
            "set" => {
                let mut members: Vec<Vec<u8>> = ::redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                members.sort();
                for m in members {
                    writeln!(out, "{key} set {}", hex(&m)).unwrap();
                }
            }
            "zset" => {
                let members: Vec<(Vec<u8>, String)> = ::redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                for (m, score) in members {
                    writeln!(out, "{key} zset {score} {}", hex(&m)).unwrap();
                }
            }
            other => panic!("unexpected key type {other} of {key}"),
        }
    }
    out
}

const REDIS_GOLDEN: &str = "hush:mbox:alice zset 1 0000000000000001010203040506070803626f6268656c6c6f
hush:mbox:alice zset 3 00000000000000030000018bcfe56801076361726f6c2d31
hush:mbox:bob zset 1 00000000000000010000018bcfe5680205616c696365686920626f62
hush:nonempty set 616c696365
hush:nonempty set 626f62
hush:opk:alice zset 7 000000070708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526
hush:opk:alice zset 168496141 0a0b0c0df0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f
hush:opk:bob zset 168496141 0a0b0c0df0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f
hush:pallow:alice set 626f62
hush:pallow:alice set 6361726f6c2d31
hush:relay_id string = <32 hex digits>
hush:u:alice hash b = 35
hush:u:alice hash ik = 101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f
hush:u:alice hash keys = 606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf01020304c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
hush:u:alice hash last = 33
hush:u:alice hash ls = 31373030303030303030313233
hush:u:bob hash b = 36
hush:u:bob hash ik = 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f
hush:u:bob hash keys = 606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf01020304c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
hush:u:bob hash last = 31
hush:users string = 32
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_are_byte_for_byte_as_pinned() {
    let server = common::redis::RedisServer::start();
    let store = hush_relay::RedisStore::connect(&server.url())
        .await
        .unwrap();
    apply_history(&store).await;
    let got = dump_redis(&server.url()).await;
    assert_eq!(got, REDIS_GOLDEN, "\n{got}");
}

/// The relay id is its 16 random bytes in lower-case hex; with the
/// randomness injected, every store makes the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_randomness_makes_the_relay_id() {
    let bytes: [u8; 16] = seq(0xa0);
    let expected = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    let memory = hush_relay::MemoryStore::with_random(|| bytes);
    assert_eq!(memory.relay_id().await.unwrap(), expected);

    let dir = tempfile::tempdir().unwrap();
    {
        let redb = hush_relay::RedbStore::open_with_random(dir.path(), || bytes).unwrap();
        assert_eq!(redb.relay_id().await.unwrap(), expected);
    }
    let db = redb::Database::open(dir.path().join("hush.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(meta.get("relay_id").unwrap().unwrap().value(), expected);
    drop((meta, txn, db));
    // Kept once made: a later open does not ask for randomness.
    let redb =
        hush_relay::RedbStore::open_with_random(dir.path(), || panic!("not needed")).unwrap();
    assert_eq!(redb.relay_id().await.unwrap(), expected);

    let server = common::redis::RedisServer::start();
    let mut next = 0xa0u8;
    let redis = hush_relay::RedisStore::connect_with_random(&server.url(), move || {
        let b = seq(next);
        next = 0xb0;
        b
    })
    .await
    .unwrap();
    assert_eq!(redis.relay_id().await.unwrap(), expected);
}
