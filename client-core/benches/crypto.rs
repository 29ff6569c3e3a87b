//! Cost of the cryptographic core beside the bare primitives it is made of.
//! `cargo bench -p hush-client-core --bench crypto` (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use hush_client_core::{IdentityKeyPair, PeerSessions, PrekeyBundle, PrekeyStore, Session};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

const NOW: u64 = 1_700_000_000_000;
const MSG: [u8; 256] = [0x42; 256];

fn bare(c: &mut Criterion) {
    let mut g = c.benchmark_group("bare");
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = [0u8; 256];
    g.bench_function("chacha20poly1305_256B", |b| {
        b.iter(|| {
            cipher
                .encrypt_inout_detached(
                    &[1u8; 12].into(),
                    black_box(&[0u8; 170]),
                    (&mut buf[..]).into(),
                )
                .unwrap()
        })
    });
    let ck = [9u8; 32];
    g.bench_function("hmac_chain_step", |b| {
        b.iter(|| {
            let mut m1 = <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(&ck)).unwrap();
            m1.update(&[1]);
            let mut m2 = <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(&ck)).unwrap();
            m2.update(&[2]);
            (m1.finalize(), m2.finalize())
        })
    });
    let a = StaticSecret::from([3u8; 32]);
    let b_pub = PublicKey::from(&StaticSecret::from([4u8; 32]));
    g.bench_function("x25519_dh", |b| {
        b.iter(|| a.diffie_hellman(black_box(&b_pub)))
    });
    g.bench_function("x25519_keygen", |b| {
        b.iter(|| PublicKey::from(&StaticSecret::from(black_box([5u8; 32]))))
    });
    let sk = SigningKey::from_bytes(&[6u8; 32]);
    let vk: VerifyingKey = sk.verifying_key();
    let sig: Signature = sk.sign(b"HUSH-SPK-V1\0 some prekey bytes");
    g.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| {
            vk.verify_strict(black_box(b"HUSH-SPK-V1\0 some prekey bytes"), &sig)
                .unwrap()
        })
    });
    g.finish();
}

struct Parties {
    rng: StdRng,
    alice: IdentityKeyPair,
    bob: IdentityKeyPair,
    alice_prekeys: PrekeyStore,
    bob_prekeys: PrekeyStore,
    a: PeerSessions,
    b: PeerSessions,
}

fn parties() -> Parties {
    let mut rng = StdRng::seed_from_u64(1);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let alice_prekeys = PrekeyStore::new(&mut rng, &alice, NOW);
    let mut bob_prekeys = PrekeyStore::new(&mut rng, &bob, NOW);
    let opk = bob_prekeys.generate_one_time(&mut rng, 1).unwrap()[0];
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: bob_prekeys.signed_prekey(),
        one_time_prekey: Some(opk),
    };
    let mut a = PeerSessions::new("alice", "bob");
    let mut b = PeerSessions::new("bob", "alice");
    a.initiate(&mut rng, &alice, &bundle).unwrap();
    let m = a.encrypt(&mut rng, b"hi").unwrap();
    b.decrypt(&bob, &mut bob_prekeys, NOW, &m).unwrap();
    let r = b.encrypt(&mut rng, b"hi").unwrap();
    let mut alice_prekeys = alice_prekeys;
    a.decrypt(&alice, &mut alice_prekeys, NOW, &r).unwrap();
    Parties {
        rng,
        alice,
        bob,
        alice_prekeys,
        bob_prekeys,
        a,
        b,
    }
}

fn session(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");

    // Setup: initiate (verify bundle, X3DH, first DH step), encrypt the first
    // message, respond (verify, X3DH, DH step, decrypt). OPK included.
    let mut rng = StdRng::seed_from_u64(2);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let mut bob_prekeys = PrekeyStore::new(&mut rng, &bob, NOW);
    let opk = bob_prekeys.generate_one_time(&mut rng, 1).unwrap()[0];
    let pickled = bob_prekeys.pickle();
    let bundle = PrekeyBundle {
        identity: bob.public(),
        signed_prekey: bob_prekeys.signed_prekey(),
        one_time_prekey: Some(opk),
    };
    g.bench_function("setup_initiate_respond", |b| {
        b.iter_batched(
            || PrekeyStore::unpickle(&pickled).unwrap(),
            |mut prekeys| {
                let mut s = Session::initiate(&mut rng, &alice, &bundle).unwrap();
                let m = s.encrypt(&mut rng, &MSG).unwrap();
                let mut b_sessions = PeerSessions::new("bob", "alice");
                b_sessions.decrypt(&bob, &mut prekeys, NOW, &m).unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    // Burst: one direction, symmetric ratchet step only.
    let mut p = parties();
    g.bench_function("burst_encrypt_256B", |b| {
        b.iter(|| p.a.encrypt(&mut p.rng, black_box(&MSG)).unwrap())
    });
    let mut p = parties();
    g.bench_function("burst_decrypt_256B", |b| {
        b.iter_batched(
            || p.a.encrypt(&mut p.rng, &MSG).unwrap(),
            |m| p.b.decrypt(&p.bob, &mut p.bob_prekeys, NOW, &m).unwrap(),
            BatchSize::SmallInput,
        )
    });

    // Ping-pong: every message carries a new ratchet key.
    let mut p = parties();
    g.bench_function("pingpong_encrypt_256B", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = p.b.encrypt(&mut p.rng, &MSG).unwrap();
                p.a.decrypt(&p.alice, &mut p.alice_prekeys, NOW, &m)
                    .unwrap();
                let t = Instant::now();
                let m = p.a.encrypt(&mut p.rng, black_box(&MSG)).unwrap();
                total += t.elapsed();
                p.b.decrypt(&p.bob, &mut p.bob_prekeys, NOW, &m).unwrap();
            }
            total
        })
    });
    let mut p = parties();
    g.bench_function("pingpong_decrypt_256B", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = p.b.encrypt(&mut p.rng, &MSG).unwrap();
                p.a.decrypt(&p.alice, &mut p.alice_prekeys, NOW, &m)
                    .unwrap();
                let m = p.a.encrypt(&mut p.rng, &MSG).unwrap();
                let t = Instant::now();
                let pt =
                    p.b.decrypt(&p.bob, &mut p.bob_prekeys, NOW, black_box(&m))
                        .unwrap();
                total += t.elapsed();
                drop(pt);
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bare, session
}
criterion_main!(benches);
