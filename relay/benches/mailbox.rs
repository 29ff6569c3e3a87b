//! Mailbox append + ack per backend, through the public `Store` trait.
//!
//! - `append_ack_1`: one envelope appended, then acknowledged (two
//!   commits; for redb two fsync'd transactions).
//! - `append_ack_64`: 64 concurrent appends (one group commit on redb, one
//!   script call on Redis), then one ack of the 64 ids: the shape of a
//!   loaded relay.
//!
//! Backends: memory, redb, and Redis when `redis-server` is on PATH (a
//! private one on a free port, AOF with `appendfsync always`, as the
//! tests run it).
//!
//! `cargo bench -p hush-relay --bench mailbox`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hush_protocol::{Body, PublicKeyBytes, UserId};
use hush_relay::store::{AppendOutcome, MailboxLimits, NewEnvelope};
use hush_relay::{MemoryStore, RedbStore, RedisStore, Store};

#[path = "../tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_server;

const LIMITS: MailboxLimits = MailboxLimits {
    max_envelopes: 1_000_000,
    max_bytes: 1 << 40,
};

fn envelope(from: &UserId) -> NewEnvelope {
    NewEnvelope {
        from: from.clone(),
        accepted_at: 1_764_100_000_000,
        body: Body(vec![0x5a; 256]),
    }
}

async fn append_ack<S: Store>(store: &S, to: &UserId, from: &UserId, n: usize) {
    let appends = (0..n).map(|_| store.append(to, envelope(from), LIMITS));
    let mut ids = Vec::with_capacity(n);
    for r in futures_util::future::join_all(appends).await {
        match r.unwrap() {
            AppendOutcome::Appended(e) => ids.push(e.id),
            other => panic!("append: {other:?}"),
        }
    }
    assert_eq!(store.ack(to, ids).await.unwrap(), n as u64);
}

/// `make` runs on the bench's runtime (a Redis store's tasks live there).
fn run<S: Store, F: Future<Output = S>>(c: &mut Criterion, name: &str, make: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(make());
    let to = UserId::try_from("bob").unwrap();
    let from = UserId::try_from("alice").unwrap();
    rt.block_on(async {
        store
            .register_or_authenticate(&to, &PublicKeyBytes([1; 32]))
            .await
            .unwrap();
    });
    let mut g = c.benchmark_group(format!("mailbox_{name}"));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(20);
    for n in [1usize, 64] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("append_ack_{n}"), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                rt.block_on(async {
                    for _ in 0..iters {
                        append_ack(&store, &to, &from, n).await;
                    }
                });
                t.elapsed()
            });
        });
    }
    g.finish();
}

fn bench_mailbox(c: &mut Criterion) {
    run(c, "memory", || async { MemoryStore::new().unwrap() });
    let dir = tempfile::tempdir().unwrap();
    run(c, "redb", || async { RedbStore::open(dir.path()).unwrap() });
    let have_redis = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_redis {
        let server = redis_server::RedisServer::start();
        let url = server.url();
        run(c, "redis", || async move {
            RedisStore::connect(&url).await.unwrap()
        });
    } else {
        eprintln!("redis-server is not on PATH: no mailbox_redis bench");
    }
}

criterion_group!(benches, bench_mailbox);
criterion_main!(benches);
