//! Cost of the cryptographic core beside the bare primitives it is made of.
//! `cargo bench -p hush-client-core --bench crypto` (about a minute).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{BatchSize, Criterion, criterion_group};
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
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    targets = bare, session
}

/// Median of `rounds` timings of `f`, each over `n` calls, in nanoseconds per call.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Ratios measured with bare and full operations interleaved round by
/// round, so machine load affects both sides of each ratio alike.
fn ratio_probe() {
    const ROUNDS: usize = 31;
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = [0u8; 256];
    let ck = [9u8; 32];
    let bare_sym = |buf: &mut [u8; 256]| {
        let tag = cipher
            .encrypt_inout_detached(&[1u8; 12].into(), &[0u8; 170], (&mut buf[..]).into())
            .unwrap();
        let mut m1 = <Hmac<Sha256> as KeyInit>::new_from_slice(&ck).unwrap();
        m1.update(&[1]);
        let mut m2 = <Hmac<Sha256> as KeyInit>::new_from_slice(&ck).unwrap();
        m2.update(&[2]);
        black_box((tag, m1.finalize(), m2.finalize()));
    };
    let sk_a = StaticSecret::from([3u8; 32]);
    let pub_b = PublicKey::from(&StaticSecret::from([4u8; 32]));
    let sk = SigningKey::from_bytes(&[6u8; 32]);
    let vk = sk.verifying_key();
    let sig = sk.sign(b"probe");
    let dh = || black_box(sk_a.diffie_hellman(black_box(&pub_b)));
    let keygen = || black_box(PublicKey::from(&StaticSecret::from(black_box([5u8; 32]))));
    let verify = || vk.verify_strict(black_box(b"probe"), &sig).unwrap();

    let mut p = parties();
    let mut q = parties();
    let (mut bare, mut enc, mut dec) = (vec![], vec![], vec![]);
    let (mut bare_enc_pp, mut enc_pp, mut bare_dec_pp, mut dec_pp) =
        (vec![], vec![], vec![], vec![]);
    let n = 500;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..n {
            bare_sym(&mut buf);
        }
        bare.push(t.elapsed().as_nanos() as f64 / n as f64);
        let t = Instant::now();
        for _ in 0..n {
            black_box(p.a.encrypt(&mut p.rng, &MSG).unwrap());
        }
        enc.push(t.elapsed().as_nanos() as f64 / n as f64);
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|_| q.a.encrypt(&mut q.rng, &MSG).unwrap())
            .collect();
        let t = Instant::now();
        for m in &msgs {
            black_box(q.b.decrypt(&q.bob, &mut q.bob_prekeys, NOW, m).unwrap());
        }
        dec.push(t.elapsed().as_nanos() as f64 / n as f64);

        // Ping-pong: one turn each way, each timed beside its bare DH cost.
        let m = q.b.encrypt(&mut q.rng, &MSG).unwrap();
        q.a.decrypt(&q.alice, &mut q.alice_prekeys, NOW, &m)
            .unwrap();
        let t = Instant::now();
        keygen();
        dh();
        bare_enc_pp.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        let m = q.a.encrypt(&mut q.rng, &MSG).unwrap();
        enc_pp.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        dh();
        bare_dec_pp.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        black_box(q.b.decrypt(&q.bob, &mut q.bob_prekeys, NOW, &m).unwrap());
        dec_pp.push(t.elapsed().as_nanos() as f64);
    }

    // Setup against its 3 verify_strict + 2 keygen + 10 DH.
    let mut rng = StdRng::seed_from_u64(3);
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
    let (mut bare_setup, mut setup) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..3 {
            verify();
        }
        for _ in 0..2 {
            keygen();
        }
        for _ in 0..10 {
            dh();
        }
        bare_setup.push(t.elapsed().as_nanos() as f64);
        let mut prekeys = PrekeyStore::unpickle(&pickled).unwrap();
        let t = Instant::now();
        let mut s = Session::initiate(&mut rng, &alice, &bundle).unwrap();
        let m = s.encrypt(&mut rng, &MSG).unwrap();
        let mut b = PeerSessions::new("bob", "alice");
        black_box(b.decrypt(&bob, &mut prekeys, NOW, &m).unwrap());
        setup.push(t.elapsed().as_nanos() as f64);
    }

    let row = |name: &str, ours: f64, base: f64, what: &str| {
        eprintln!(
            "{name:<24} {:>10.2} us   bare {:>10.2} us ({what})   ratio {:.2}",
            ours / 1000.0,
            base / 1000.0,
            ours / base
        );
    };
    eprintln!("\ninterleaved ratio probe (medians of {ROUNDS} rounds):");
    let b = median(bare);
    row(
        "burst encrypt 256 B",
        median(enc),
        b,
        "AEAD 256 B + chain step",
    );
    row(
        "burst decrypt 256 B",
        median(dec),
        b,
        "AEAD 256 B + chain step",
    );
    row(
        "ping-pong encrypt 256 B",
        median(enc_pp),
        median(bare_enc_pp),
        "keygen + DH",
    );
    row(
        "ping-pong decrypt 256 B",
        median(dec_pp),
        median(bare_dec_pp),
        "DH",
    );
    row(
        "session setup",
        median(setup),
        median(bare_setup),
        "3 verify + 2 keygen + 10 DH",
    );
}

fn main() {
    benches();
    ratio_probe();
    Criterion::default().configure_from_args().final_summary();
}
