//! One sender/receiver pair: both connections are driven by one task, so
//! the sender's window is freed the moment the receiver sees a message, and
//! latency is measured with one clock.
//!
//! Every message starts with a 20-byte header (little-endian)
//! `pair u32 || seq u64 || send_time_us u64` (microseconds since the run's
//! epoch), followed by random filler up to `--size` bytes. With
//! `--no-encrypt` that is the envelope body; otherwise it is the plaintext
//! and the body is its Double Ratchet ciphertext. The receiver checks the
//! sender (`from`), the pair index and that `seq` is exactly the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt as _;
use hush_client_core::client::connection::Received;
use hush_client_core::{IdentityKeyPair, UserId};

use super::BenchError;
use super::crypto::{Opened, ReceiverCrypto, SenderCrypto};
use super::wire::{self, Endpoint, Incoming, Ws};

/// Bytes of the per-message header.
pub(crate) const HEADER_LEN: usize = 20;
/// Most ids per `ack` frame (the relay's default `max_ack_ids` is 1000).
const ACK_CHUNK: usize = 1000;
/// Frames handled per wake-up of one socket before looking at the other.
const DRAIN_BATCH: usize = 256;

/// What a message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub pair: u32,
    pub seq: u64,
    pub sent_us: u64,
}

pub(crate) fn write_header(buf: &mut [u8; HEADER_LEN], h: Header) {
    let (pair, rest) = buf.split_at_mut(4);
    let (seq, sent_us) = rest.split_at_mut(8);
    pair.copy_from_slice(&h.pair.to_le_bytes());
    seq.copy_from_slice(&h.seq.to_le_bytes());
    sent_us.copy_from_slice(&h.sent_us.to_le_bytes());
}

pub(crate) fn parse_header(buf: &[u8]) -> Option<Header> {
    let (pair, rest) = buf.split_first_chunk::<4>()?;
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let (sent_us, _) = rest.split_first_chunk::<8>()?;
    let (pair, seq, sent_us) = (
        u32::from_le_bytes(*pair),
        u64::from_le_bytes(*seq),
        u64::from_le_bytes(*sent_us),
    );
    Some(Header { pair, seq, sent_us })
}

/// What every pair shares.
#[derive(Debug)]
pub(crate) struct Plan {
    pub messages: u64,
    pub warmup: u64,
    pub window: usize,
    /// Offered messages per second per pair (`--rate` / pairs).
    pub rate_per_pair: Option<f64>,
    /// Fill mailboxes while receivers are offline, then drain them.
    pub queued: bool,
    pub stall: Duration,
    /// Time zero of every timestamp in message headers.
    pub epoch: Instant,
    /// Delivered measured messages, for the progress line.
    pub progress: Arc<AtomicU64>,
}

impl Plan {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A pair's counters and samples.
#[derive(Debug, Default)]
pub(crate) struct PairResult {
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejected_codes: BTreeMap<String, u64>,
    pub delivered: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub wrong_sender: u64,
    pub latency_us: Vec<u32>,
    pub accept_us: Vec<u32>,
    pub first_send_us: Option<u64>,
    pub last_delivery_us: u64,
    pub drain_us: Option<u64>,
    pub stalled: bool,
}

/// A connected pair.
pub(crate) struct Pair {
    pub index: u32,
    pub sender: Ws,
    /// `None` while the receiver is offline (`--queued`).
    pub receiver: Option<Ws>,
    pub sender_id: UserId,
    pub receiver_id: UserId,
    pub receiver_identity: IdentityKeyPair,
    pub receiver_ep: Endpoint,
    pub crypto: Option<(SenderCrypto, ReceiverCrypto)>,
    /// Random filler (the plaintext or raw body), header overwritten per
    /// message.
    pub filler: Vec<u8>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("index", &self.index)
            .field("sender_id", &self.sender_id)
            .field("receiver_id", &self.receiver_id)
            .finish_non_exhaustive()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn us32(d: u64) -> u32 {
    u32::try_from(d).unwrap_or(u32::MAX)
}

/// State of one phase (warm-up or measured).
struct Phase {
    first: u64,
    end: u64,
    measured: bool,
    /// Next seq to send.
    next: u64,
    /// Next seq the receiver expects.
    expected: u64,
    /// Sent, neither delivered nor rejected (or, receivers offline: not yet
    /// answered).
    inflight: usize,
    /// Seqs the relay refused; they will never arrive.
    refused: BTreeSet<u64>,
    /// Send time of each seq of the phase, for the `accepted` latency.
    sent_at: Vec<u64>,
    answered: u64,
    acks: Vec<u64>,
    last_progress: Instant,
}

impl Phase {
    fn new(first: u64, count: u64, measured: bool) -> Self {
        Self {
            first,
            end: first + count,
            measured,
            next: first,
            expected: first,
            inflight: 0,
            refused: BTreeSet::new(),
            sent_at: vec![0; usize::try_from(count).unwrap_or(0)],
            answered: 0,
            acks: Vec::new(),
            last_progress: Instant::now(),
        }
    }

    fn count(&self) -> u64 {
        self.end - self.first
    }
}

impl Pair {
    /// Runs warm-up, waits at `barrier` twice (the caller samples the relay
    /// between them), then the measured phase.
    pub async fn run(
        mut self,
        plan: Arc<Plan>,
        barrier: Arc<tokio::sync::Barrier>,
    ) -> (Result<PairResult, BenchError>, Pair) {
        let mut res = PairResult::default();
        let r = async {
            let mut scratch = PairResult::default();
            if plan.warmup > 0 && !plan.queued {
                self.phase(&plan, Phase::new(0, plan.warmup, false), &mut scratch)
                    .await?;
            }
            barrier.wait().await;
            barrier.wait().await;
            let first = plan.warmup;
            if plan.queued {
                let sent = self
                    .phase(&plan, Phase::new(first, plan.messages, true), &mut res)
                    .await?;
                self.drain(&plan, sent, &mut res).await?;
            } else {
                self.phase(&plan, Phase::new(first, plan.messages, true), &mut res)
                    .await?;
            }
            Ok::<(), BenchError>(())
        }
        .await;
        (r.map(|()| res), self)
    }

    /// Writes one message.
    async fn send_one(
        &mut self,
        plan: &Plan,
        ph: &mut Phase,
        res: &mut PairResult,
        out: &mut String,
    ) -> Result<(), BenchError> {
        let seq = ph.next;
        let now = plan.now_us();
        let head = self.filler.first_chunk_mut::<HEADER_LEN>().ok_or_else(|| {
            BenchError::Usage(format!("--size must be at least {HEADER_LEN} bytes"))
        })?;
        write_header(
            head,
            Header {
                pair: self.index,
                seq,
                sent_us: now,
            },
        );
        match &mut self.crypto {
            Some((s, _)) => {
                let ct = s.seal(&self.filler)?;
                wire::format_send(out, seq, self.receiver_id.as_str(), &ct);
            }
            None => wire::format_send(out, seq, self.receiver_id.as_str(), &self.filler),
        }
        if let Some(slot) = ph
            .sent_at
            .get_mut(usize::try_from(seq - ph.first).unwrap_or(usize::MAX))
        {
            *slot = now;
        }
        self.sender
            .feed_text(std::mem::take(out))
            .await
            .map_err(|e| BenchError::Relay(format!("write: {e}")))?;
        ph.next += 1;
        ph.inflight += 1;
        if ph.measured {
            res.sent += 1;
            res.first_send_us.get_or_insert(now);
        }
        Ok(())
    }

    fn on_sender_frame(
        &mut self,
        plan: &Plan,
        ph: &mut Phase,
        res: &mut PairResult,
        text: &str,
    ) -> Result<(), BenchError> {
        let f = Incoming::parse(text)?;
        let Some(rid) = f.rid else { return Ok(()) };
        if rid < ph.first || rid >= ph.end {
            return Ok(());
        }
        match f.ty {
            "accepted" => {
                ph.answered += 1;
                if plan.queued {
                    ph.inflight = ph.inflight.saturating_sub(1);
                }
                if ph.measured {
                    res.accepted += 1;
                    let at = ph
                        .sent_at
                        .get(usize::try_from(rid - ph.first).unwrap_or(usize::MAX))
                        .copied()
                        .unwrap_or(0);
                    res.accept_us.push(us32(plan.now_us().saturating_sub(at)));
                }
            }
            "error" => {
                ph.answered += 1;
                ph.inflight = ph.inflight.saturating_sub(1);
                ph.refused.insert(rid);
                if ph.measured {
                    res.rejected += 1;
                    *res.rejected_codes
                        .entry(f.code.unwrap_or("?").to_owned())
                        .or_default() += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_receiver_frame(
        &mut self,
        plan: &Plan,
        ph: &mut Phase,
        res: &mut PairResult,
        text: &str,
        body: &mut Vec<u8>,
    ) -> Result<(), BenchError> {
        let f = Incoming::parse(text)?;
        if f.ty != "envelope" {
            return Ok(());
        }
        if let Some(id) = f.id {
            ph.acks.push(id);
        }
        let right_sender = f.from == Some(self.sender_id.as_str());
        wire::decode_body(f.body.unwrap_or(""), body)?;
        let header = match &mut self.crypto {
            Some((_, r)) => match r.open(&self.receiver_identity, unix_ms(), body) {
                Opened::Message(h) => h,
                Opened::Duplicate => {
                    if ph.measured {
                        res.duplicated += 1;
                    }
                    return Ok(());
                }
                Opened::Failed => None,
            },
            None => parse_header(body),
        };
        let Some(h) = header.filter(|h| right_sender && h.pair == self.index) else {
            res.wrong_sender += 1;
            return Ok(());
        };
        let now = plan.now_us();
        while ph.refused.contains(&ph.expected) {
            ph.expected += 1;
        }
        if h.seq < ph.expected {
            if ph.measured || h.seq >= plan.warmup {
                res.duplicated += 1;
            }
            return Ok(());
        }
        if h.seq > ph.expected {
            // A gap: the skipped ones are counted lost at the end.
            res.out_of_order += 1;
            if std::env::var_os("HUSH_BENCH_TRACE").is_some() {
                eprintln!(
                    "gap: pair {} expected seq {} got seq {} (envelope id {:?})",
                    self.index, ph.expected, h.seq, f.id
                );
            }
            let skipped = usize::try_from(h.seq - ph.expected).unwrap_or(usize::MAX);
            ph.inflight = ph.inflight.saturating_sub(skipped);
        }
        ph.expected = h.seq + 1;
        ph.inflight = ph.inflight.saturating_sub(1);
        ph.last_progress = Instant::now();
        if ph.measured {
            res.delivered += 1;
            res.last_delivery_us = now;
            res.latency_us.push(us32(now.saturating_sub(h.sent_us)));
            plan.progress.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn flush_acks(&mut self, ph: &mut Phase, out: &mut String) -> Result<(), BenchError> {
        if ph.acks.is_empty() {
            return Ok(());
        }
        let Some(rx) = self.receiver.as_mut() else {
            ph.acks.clear();
            return Ok(());
        };
        for chunk in ph.acks.chunks(ACK_CHUNK) {
            wire::format_ack(out, 0, chunk);
            rx.feed_text(std::mem::take(out))
                .await
                .map_err(|e| BenchError::Relay(format!("write: {e}")))?;
        }
        rx.flush()
            .await
            .map_err(|e| BenchError::Relay(format!("write: {e}")))?;
        ph.acks.clear();
        Ok(())
    }

    fn finished(&self, plan: &Plan, ph: &Phase) -> bool {
        if ph.next < ph.end || ph.answered < ph.count() {
            return false;
        }
        if plan.queued && self.receiver.is_none() {
            return true;
        }
        let mut e = ph.expected;
        while ph.refused.contains(&e) {
            e += 1;
        }
        e >= ph.end
    }

    /// Sends `ph`'s messages with the window (and rate), until every one is
    /// delivered or refused, or nothing happens for `plan.stall`.
    async fn phase(
        &mut self,
        plan: &Plan,
        mut ph: Phase,
        res: &mut PairResult,
    ) -> Result<Phase, BenchError> {
        let mut out = String::new();
        let mut body = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let start = tokio::time::Instant::now();
        let period = plan
            .rate_per_pair
            .filter(|r| *r > 0.0 && ph.measured)
            .map(|r| crate::duration::saturating_secs(1.0 / r));
        // A tiny --rate makes a long period: saturate rather than overflow.
        let due = |sent: u64| -> tokio::time::Instant {
            match period {
                Some(p) => {
                    let wait = crate::duration::saturating_secs(p.as_secs_f64() * sent as f64);
                    // Unreachable fallback: 100 years fit an Instant.
                    start.checked_add(wait).unwrap_or(start)
                }
                None => start,
            }
        };
        let pacer = tokio::time::sleep_until(start);
        tokio::pin!(pacer);
        loop {
            // Fill the window (up to the offered rate's schedule).
            let mut wrote = false;
            let now = tokio::time::Instant::now();
            while ph.next < ph.end && ph.inflight < plan.window && due(ph.next - ph.first) <= now {
                self.send_one(plan, &mut ph, res, &mut out).await?;
                wrote = true;
            }
            if wrote {
                self.sender
                    .flush()
                    .await
                    .map_err(|e| BenchError::Relay(format!("write: {e}")))?;
            }
            if self.finished(plan, &ph) {
                break;
            }
            let pacing = period.is_some() && ph.next < ph.end && ph.inflight < plan.window;
            if pacing {
                pacer.as_mut().reset(due(ph.next - ph.first));
            }
            let receiver = self.receiver.as_mut();
            let has_receiver = receiver.is_some();
            tokio::select! {
                m = self.sender.recv() => {
                    let mut m = m;
                    for i in 1..=DRAIN_BATCH {
                        match m {
                            Some(Ok(Received::Text(t))) => self.on_sender_frame(plan, &mut ph, res, t.as_str())?,
                            Some(Ok(Received::Closed(c))) => return Err(BenchError::Relay(format!("relay closed the sender's connection: {c:?}"))),
                            Some(Err(e)) => return Err(BenchError::Relay(format!("read: {e}"))),
                            None => return Err(BenchError::Relay("sender's connection closed".into())),
                        }
                        if i == DRAIN_BATCH {
                            break; // fetch no frame that would not be handled
                        }
                        match self.sender.recv().now_or_never() {
                            Some(next) => m = next,
                            None => break,
                        }
                    }
                    ph.last_progress = Instant::now();
                }
                m = async { match receiver { Some(r) => r.recv().await, None => std::future::pending().await } }, if has_receiver => {
                    let mut m = m;
                    for i in 1..=DRAIN_BATCH {
                        match m {
                            Some(Ok(Received::Text(t))) => self.on_receiver_frame(plan, &mut ph, res, t.as_str(), &mut body)?,
                            Some(Ok(Received::Closed(c))) => return Err(BenchError::Relay(format!("relay closed the receiver's connection: {c:?}"))),
                            Some(Err(e)) => return Err(BenchError::Relay(format!("read: {e}"))),
                            None => return Err(BenchError::Relay("receiver's connection closed".into())),
                        }
                        if i == DRAIN_BATCH {
                            break; // fetch no frame that would not be handled
                        }
                        let Some(rx) = self.receiver.as_mut() else { break };
                        match rx.recv().now_or_never() {
                            Some(next) => m = next,
                            None => break,
                        }
                    }
                    self.flush_acks(&mut ph, &mut out).await?;
                }
                () = &mut pacer, if pacing => {}
                _ = tick.tick() => {
                    if ph.last_progress.elapsed() > plan.stall {
                        res.stalled = true;
                        break;
                    }
                }
            }
        }
        Ok(ph)
    }

    /// `--queued`: reconnects the receiver and reads its backlog. Latency
    /// of these deliveries includes the time the message waited queued.
    async fn drain(
        &mut self,
        plan: &Plan,
        sent: Phase,
        res: &mut PairResult,
    ) -> Result<(), BenchError> {
        let t0 = Instant::now();
        let ws = wire::connect_auth(
            &self.receiver_ep,
            None,
            &self.receiver_id,
            &self.receiver_identity,
        )
        .await?;
        self.receiver = Some(ws);
        // Every send is done and answered; wait for the deliveries.
        let mut ph = Phase::new(sent.first, sent.count(), true);
        ph.next = ph.end;
        ph.answered = ph.count();
        ph.refused = sent.refused;
        self.phase(plan, ph, res).await?;
        res.drain_us = Some(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
        Ok(())
    }
}
