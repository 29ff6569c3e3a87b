//! Frame decode/encode on the relay's hot path: every `send` is decoded
//! (JSON + base64 of the body), every delivery is an `envelope` encoded
//! (base64 of the body + JSON), every `ack` is decoded.
//!
//! `cargo bench -p hush-relay --bench protocol`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hush_protocol::frame::{Accepted, Envelope};
use hush_protocol::{Body, ClientFrame, ServerFrame, UserId};

fn send_text(size: usize) -> String {
    let body = Body((0..size).map(|i| (i * 31 % 251) as u8).collect());
    ClientFrame::Send(hush_protocol::frame::SendEnvelope {
        rid: 123_456,
        to: UserId::try_from("bob-the-receiver").unwrap(),
        body,
        ephemeral: false,
    })
    .encode()
}

fn bench_protocol(c: &mut Criterion) {
    let mut g = c.benchmark_group("protocol");
    for size in [256usize, 4096] {
        let text = send_text(size);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("decode_send_{size}B"), |b| {
            b.iter(|| ClientFrame::decode(black_box(&text)).unwrap());
        });
        let env = ServerFrame::Envelope(Envelope {
            id: Some(987_654),
            from: UserId::try_from("alice-the-sender").unwrap(),
            from_device: None,
            accepted_at: 1_764_100_000_000,
            body: Body(vec![7u8; size]),
            ephemeral: false,
        });
        g.bench_function(format!("encode_envelope_{size}B"), |b| {
            b.iter(|| black_box(&env).encode());
        });
    }
    let ack = ClientFrame::Ack(hush_protocol::frame::Ack {
        rid: 9,
        ids: (1_000..1_032).collect(),
    })
    .encode();
    g.bench_function("decode_ack_32_ids", |b| {
        b.iter(|| ClientFrame::decode(black_box(&ack)).unwrap());
    });
    let accepted = ServerFrame::Accepted(Accepted {
        rid: 123_456,
        id: Some(42),
    });
    g.bench_function("encode_accepted", |b| {
        b.iter(|| black_box(&accepted).encode());
    });
    g.finish();
}

criterion_group!(benches, bench_protocol);
criterion_main!(benches);
