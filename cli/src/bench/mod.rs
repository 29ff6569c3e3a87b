//! `hush bench`: a load generator for a Hush relay, and the figures the
//! project's `docs/benchmarks.md` is made of.
//!
//! It registers P sender/receiver pairs with throw-away identities (user
//! ids `b<tag>s<i>` / `b<tag>r<i>`, a random tag per run), sends M messages
//! per pair with at most W in flight per sender (or at a fixed offered
//! rate), and checks that every message arrives exactly once, in order,
//! from the right sender. Module map:
//!
//! - [`wire`]: the lean protocol client (connect, auth, `send`/`ack`
//!   formatted without building frame values);
//! - [`crypto`]: per-pair X3DH + Double Ratchet from `hush-client-core`
//!   (the default; `--no-encrypt` sends random bytes as ciphertext);
//! - [`pair`]: one task drives a pair's two sockets, with the window,
//!   pacing and the exactly-once/in-order checks;
//! - [`procfs`]: the relay's CPU time and RSS from `/proc` (`--relay-pid`);
//! - [`stats`]: percentiles and the summary.
//!
//! The load generator runs on its own current-thread runtime (one core),
//! so on a 2-core machine the relay keeps the other.
//!
//! Phases: idle connections (if any; relay RSS read before and 2 s after),
//! pair setup (connect time), warm-up (`--warmup` messages per pair),
//! then the measured window, bracketed by two readings of the relay's
//! `/proc` figures. Connection setup and teardown are outside the window.

mod crypto;
mod pair;
mod procfs;
mod stats;
mod wire;

use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hush_client_core::{IdentityKeyPair, UserId};
use rand::RngExt as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;

use crate::args::{BenchArgs, Global};
use crate::exit::{CliError, Failure};
use pair::{HEADER_LEN, Pair, PairResult, Plan};
use stats::{Latency, Summary};
use wire::Endpoint;

/// Why a bench run could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BenchError {
    /// Bad flags.
    #[error("{0}")]
    Usage(String),
    /// A local I/O step failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    /// No connection to the relay could be made.
    #[error("connect: {0}")]
    Unreachable(String),
    /// The relay refused or broke a connection.
    #[error("relay: {0}")]
    Relay(String),
    /// Key agreement or encryption failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl BenchError {
    pub(crate) fn io(what: &'static str, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }
}

impl From<BenchError> for CliError {
    fn from(e: BenchError) -> Self {
        let failure = match &e {
            BenchError::Usage(_) => Failure::Usage,
            BenchError::Io {
                what: "connect", ..
            }
            | BenchError::Unreachable(_) => Failure::Unreachable,
            _ => Failure::Other,
        };
        CliError::new(failure, e.to_string())
    }
}

/// Pairs (and idle connections) set up at once.
const SETUP_CONCURRENCY: usize = 64;
/// Idle connections per 127.0.0.x source address (the ephemeral port range
/// toward one relay address holds ~28,000).
const IDLE_PER_SOURCE: usize = 16_000;
/// Wait before reading the relay's RSS with the idle connections open.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// Default window in `--rate` mode: the rate, not the window, bounds it.
const RATE_MODE_WINDOW: usize = 1024;

#[derive(Debug, Clone)]
struct Options {
    endpoints: Vec<Endpoint>,
    pairs: usize,
    messages: u64,
    size: usize,
    window: usize,
    rate: Option<f64>,
    idle: usize,
    encrypt: bool,
    queued: bool,
    warmup: u64,
    relay_pids: Vec<u32>,
    store_pids: Vec<u32>,
    stall: Duration,
    progress: bool,
}

/// Runs `hush bench` and prints its summary.
pub(crate) async fn run(g: &Global, a: BenchArgs) -> Result<(), CliError> {
    let relays = g
        .relay
        .as_deref()
        .ok_or_else(|| CliError::usage("hush bench needs --relay URL[,URL...]"))?;
    let endpoints = relays
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Endpoint::parse(s.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(CliError::usage("--relay: no URL given"));
    }
    if a.size < HEADER_LEN {
        return Err(CliError::usage(format!(
            "--size must be at least {HEADER_LEN} bytes"
        )));
    }
    if a.pairs == 0 || a.messages == 0 {
        return Err(CliError::usage("--pairs and --messages must be at least 1"));
    }
    if a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(CliError::usage("--rate must be a positive number"));
    }
    let window = a
        .window
        .unwrap_or(if a.rate.is_some() {
            RATE_MODE_WINDOW
        } else {
            32
        })
        .max(1);
    let opts = Options {
        endpoints,
        pairs: a.pairs,
        messages: a.messages,
        size: a.size,
        window,
        rate: a.rate,
        idle: a.idle_connections,
        encrypt: !a.no_encrypt,
        queued: a.queued,
        warmup: if a.queued { 0 } else { a.warmup },
        relay_pids: a.relay_pid.clone(),
        store_pids: a.store_pid.clone(),
        stall: a.stall_timeout.max(Duration::from_millis(500)),
        progress: std::io::stderr().is_terminal(),
    };
    // The load generator gets its own single-threaded runtime.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hush-bench".into())
        .spawn(move || {
            let r = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(bench(opts)),
                Err(e) => Err(BenchError::io("start runtime", e)),
            };
            let _ = tx.send(r);
        })
        .map_err(|e| CliError::new(Failure::Other, format!("cannot start bench thread: {e}")))?;
    let summary = rx
        .await
        .map_err(|_| CliError::new(Failure::Other, "bench thread failed"))??;
    if a.json {
        let text = serde_json::to_string(&summary)
            .map_err(|e| CliError::new(Failure::Other, e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", summary.render());
    }
    if summary.lost > 0
        || summary.duplicated > 0
        || summary.out_of_order > 0
        || summary.wrong_sender > 0
    {
        return Err(CliError::new(
            Failure::Other,
            format!(
                "delivery check failed: {} lost, {} duplicated, {} out of order, {} from a wrong sender",
                summary.lost, summary.duplicated, summary.out_of_order, summary.wrong_sender
            ),
        ));
    }
    if summary.rejected > 0 {
        return Err(CliError::new(
            Failure::Other,
            format!(
                "the relay refused {} sends ({:?}); with several relays, they must share a cluster backend",
                summary.rejected, summary.rejected_codes
            ),
        ));
    }
    if summary.stalled {
        return Err(CliError::new(
            Failure::Other,
            "the run stalled before every message was answered",
        ));
    }
    Ok(())
}

fn user(tag: &str, kind: char, i: usize) -> Result<UserId, BenchError> {
    UserId::try_from(format!("b{tag}{kind}{i}").as_str())
        .map_err(|e| BenchError::Usage(format!("user id: {e}")))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Source address of idle connection `i` toward `ep`: spread over
/// 127.0.0.2, 127.0.0.3, ... when the relay is on loopback.
fn idle_source(ep: &Endpoint, i: usize) -> Option<IpAddr> {
    match ep.addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let k = u8::try_from(2 + i / IDLE_PER_SOURCE).unwrap_or(254);
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)))
        }
        _ => None,
    }
}

impl Options {
    /// The relay for connection `i`: connections go round the `--relay` list.
    fn endpoint(&self, i: usize) -> Result<&Endpoint, BenchError> {
        i.checked_rem(self.endpoints.len())
            .and_then(|at| self.endpoints.get(at))
            .ok_or_else(|| BenchError::Usage("--relay names no relay".to_owned()))
    }
}

async fn open_idle(opts: &Options, tag: &str) -> Result<Vec<wire::Ws>, BenchError> {
    let identity = Arc::new(IdentityKeyPair::generate(&mut bench_rng()));
    let sem = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut set = JoinSet::new();
    for i in 0..opts.idle {
        let ep = opts.endpoint(i)?.clone();
        let id = user(tag, 'i', i)?;
        let identity = Arc::clone(&identity);
        let sem = Arc::clone(&sem);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            wire::connect_auth(&ep, idle_source(&ep, i), &id, &identity).await
        });
    }
    let mut held = Vec::with_capacity(opts.idle);
    while let Some(r) = set.join_next().await {
        held.push(r.map_err(|e| BenchError::Relay(format!("setup task: {e}")))??);
    }
    Ok(held)
}

struct SetupOut {
    pair: Pair,
    connect_us: [u32; 2],
}

async fn setup_pair(opts: Arc<Options>, tag: String, i: usize) -> Result<SetupOut, BenchError> {
    let sender_ep = opts.endpoint(2 * i)?.clone();
    let receiver_ep = opts.endpoint(2 * i + 1)?.clone();
    let mut rng: StdRng = bench_rng();
    let sender_id = user(&tag, 's', i)?;
    let receiver_id = user(&tag, 'r', i)?;
    let sender_identity = IdentityKeyPair::generate(&mut rng);
    let receiver_identity = IdentityKeyPair::generate(&mut rng);
    let t = Instant::now();
    let mut receiver =
        wire::connect_auth(&receiver_ep, None, &receiver_id, &receiver_identity).await?;
    let c0 = t.elapsed();
    let rc = if opts.encrypt {
        Some(
            crypto::ReceiverCrypto::publish(
                &mut receiver,
                &mut rng,
                &receiver_id,
                &sender_id,
                &receiver_identity,
                unix_ms(),
            )
            .await?,
        )
    } else {
        None
    };
    let t = Instant::now();
    let mut sender = wire::connect_auth(&sender_ep, None, &sender_id, &sender_identity).await?;
    let c1 = t.elapsed();
    let crypto = match rc {
        Some(rc) => {
            let sc = crypto::SenderCrypto::initiate(
                &mut sender,
                bench_rng(),
                &sender_id,
                &receiver_id,
                &sender_identity,
            )
            .await?;
            Some((sc, rc))
        }
        None => None,
    };
    let receiver = if opts.queued {
        receiver.close().await;
        None
    } else {
        Some(receiver)
    };
    let mut filler = vec![0u8; opts.size];
    rng.fill(filler.as_mut_slice());
    let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    Ok(SetupOut {
        pair: Pair {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            sender,
            receiver,
            sender_id,
            receiver_id,
            receiver_identity,
            receiver_ep,
            crypto,
            filler,
        },
        connect_us: [us(c0), us(c1)],
    })
}

fn own_cpu_us() -> Option<u64> {
    procfs::sample(std::process::id()).ok().map(|s| s.cpu_us)
}

async fn bench(opts: Options) -> Result<Summary, BenchError> {
    let tag: String = {
        let mut rng = bench_rng();
        (0..6)
            .filter_map(|_| b"0123456789abcdefghijklmnopqrstuvwxyz".choose(&mut rng))
            .map(|&b| char::from(b))
            .collect()
    };
    let pids = opts.relay_pids.clone();
    let mut summary = Summary {
        relays: opts.endpoints.iter().map(|e| e.url.clone()).collect(),
        pairs: opts.pairs,
        messages_per_pair: opts.messages,
        size: opts.size,
        window: opts.window,
        rate: opts.rate,
        encrypt: opts.encrypt,
        queued: opts.queued,
        idle_connections: opts.idle,
        ..Summary::default()
    };

    // Idle connections first, held for the whole run.
    let mut idle = Vec::new();
    if opts.idle > 0 {
        let before = procfs::sample_all(&pids)?;
        let t = Instant::now();
        idle = open_idle(&opts, &tag).await?;
        summary.idle_connect_ms = t.elapsed().as_secs_f64() * 1000.0;
        if let Some(before) = before {
            tokio::time::sleep(IDLE_SETTLE).await;
            if let Some(after) = procfs::sample_all(&pids)? {
                summary.server_rss_before_idle_kib = Some(before.rss_kib);
                summary.server_kib_per_idle_conn =
                    Some(after.rss_kib.saturating_sub(before.rss_kib) as f64 / opts.idle as f64);
            }
        }
    }

    // Pairs: receiver then sender, so the receiver exists when sends start.
    let opts = Arc::new(opts);
    let t = Instant::now();
    let sem = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut set = JoinSet::new();
    for i in 0..opts.pairs {
        let (opts, tag, sem) = (Arc::clone(&opts), tag.clone(), Arc::clone(&sem));
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            setup_pair(opts, tag, i).await
        });
    }
    let mut pairs = Vec::with_capacity(opts.pairs);
    let mut connect_us = Vec::with_capacity(opts.pairs * 2);
    while let Some(r) = set.join_next().await {
        let out = r.map_err(|e| BenchError::Relay(format!("setup task: {e}")))??;
        connect_us.extend_from_slice(&out.connect_us);
        pairs.push(out.pair);
    }
    summary.connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    let c = Latency::from_samples(connect_us);
    summary.connect_p50_ms = c.p50_ms;
    summary.connect_p99_ms = c.p99_ms;

    // Warm-up, then the measured window between two barriers.
    let progress = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(Plan {
        messages: opts.messages,
        warmup: opts.warmup,
        window: opts.window,
        rate_per_pair: opts.rate.map(|r| r / opts.pairs as f64),
        queued: opts.queued,
        stall: opts.stall,
        epoch: Instant::now(),
        progress: Arc::clone(&progress),
    });
    let barrier = Arc::new(Barrier::new(opts.pairs + 1));
    let mut tasks = JoinSet::new();
    for p in pairs {
        tasks.spawn(p.run(Arc::clone(&plan), Arc::clone(&barrier)));
    }
    barrier.wait().await;
    let server_before = procfs::sample_all(&pids)?;
    let store_before = procfs::sample_all(&opts.store_pids)?;
    let own_before = own_cpu_us();
    let machine_before = procfs::machine_busy_us();
    let window_start = Instant::now();
    barrier.wait().await;

    let total = opts.messages * opts.pairs as u64;
    let bar = opts.progress.then(|| {
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let n = progress.load(Ordering::Relaxed);
                let width = 40usize;
                let filled = usize::try_from(n * width as u64 / total.max(1))
                    .unwrap_or(width)
                    .min(width);
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r[{}{}] {n}/{total} delivered",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                let _ = err.flush();
            }
        })
    });

    let mut results: Vec<PairResult> = Vec::with_capacity(opts.pairs);
    let mut done_pairs = Vec::with_capacity(opts.pairs);
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        let (r, p) = r.map_err(|e| BenchError::Relay(format!("pair task: {e}")))?;
        match r {
            Ok(res) => results.push(res),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        done_pairs.push(p);
    }
    let window_wall = window_start.elapsed();
    let server_after = procfs::sample_all(&pids)?;
    let store_after = procfs::sample_all(&opts.store_pids)?;
    let own_after = own_cpu_us();
    let machine_after = procfs::machine_busy_us();
    if let Some(bar) = bar {
        bar.abort();
        eprintln!();
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // Aggregate.
    let mut lat = Vec::new();
    let mut acc = Vec::new();
    let mut first_send = u64::MAX;
    let mut last_delivery = 0u64;
    let mut drain_max: Option<u64> = None;
    for r in results {
        summary.sent += r.sent;
        summary.accepted += r.accepted;
        summary.rejected += r.rejected;
        for (k, v) in r.rejected_codes {
            *summary.rejected_codes.entry(k).or_default() += v;
        }
        summary.delivered += r.delivered;
        summary.duplicated += r.duplicated;
        summary.out_of_order += r.out_of_order;
        summary.wrong_sender += r.wrong_sender;
        summary.stalled |= r.stalled;
        summary.lost += r.accepted.saturating_sub(r.delivered);
        lat.extend(r.latency_us);
        acc.extend(r.accept_us);
        if let Some(f) = r.first_send_us {
            first_send = first_send.min(f);
        }
        last_delivery = last_delivery.max(r.last_delivery_us);
        if let Some(d) = r.drain_us {
            drain_max = Some(drain_max.map_or(d, |m| m.max(d)));
        }
    }
    let span_us = last_delivery.saturating_sub(first_send);
    summary.duration_s = span_us as f64 / 1e6;
    if span_us > 0 {
        summary.throughput = summary.delivered as f64 / summary.duration_s;
    }
    let l = Latency::from_samples(lat);
    summary.p50_ms = l.p50_ms;
    summary.p90_ms = l.p90_ms;
    summary.p99_ms = l.p99_ms;
    summary.p999_ms = l.p999_ms;
    summary.max_ms = l.max_ms;
    summary.mean_ms = l.mean_ms;
    summary.accepted_latency = Latency::from_samples(acc);
    summary.drain_ms = drain_max.map(|d| d as f64 / 1000.0);
    if let (Some(b), Some(a)) = (server_before, server_after) {
        let cpu = a.cpu_us.saturating_sub(b.cpu_us);
        summary.server_cpu_us = Some(cpu);
        summary.server_rss_kib = Some(a.rss_kib);
        summary.server_util = Some(cpu as f64 / window_wall.as_secs_f64().max(1e-9) / 1e6);
        if summary.delivered > 0 {
            summary.server_us_per_msg = Some(cpu as f64 / summary.delivered as f64);
        }
    }
    let store_cpu = match (store_before, store_after) {
        (Some(b), Some(a)) => Some(a.cpu_us.saturating_sub(b.cpu_us)),
        _ => None,
    };
    if let Some(cpu) = store_cpu
        && summary.delivered > 0
    {
        summary.store_cpu_us = Some(cpu);
        summary.store_us_per_msg = Some(cpu as f64 / summary.delivered as f64);
    }
    if let (Some(b), Some(a)) = (own_before, own_after)
        && summary.delivered > 0
    {
        summary.loadgen_us_per_msg = Some(a.saturating_sub(b) as f64 / summary.delivered as f64);
    }

    if let (Some(mb), Some(ma), Some(ob), Some(oa), Some(s)) = (
        machine_before,
        machine_after,
        own_before,
        own_after,
        summary.server_cpu_us,
    ) {
        let others = ma
            .saturating_sub(mb)
            .saturating_sub(oa.saturating_sub(ob))
            .saturating_sub(s)
            .saturating_sub(store_cpu.unwrap_or(0));
        summary.other_util = Some(others as f64 / window_wall.as_secs_f64().max(1e-9) / 1e6);
    }

    // Close politely (outside the measured window).
    for mut p in done_pairs {
        p.sender.close().await;
        if let Some(r) = p.receiver.as_mut() {
            r.close().await;
        }
    }
    drop(idle);
    Ok(summary)
}

/// The load generator's randomness: throw-away identities, so a fast
/// generator seeded once from the OS (not the reseeding one profiles use).
fn bench_rng() -> StdRng {
    <StdRng as rand::SeedableRng>::from_rng(&mut rand::rng())
}
