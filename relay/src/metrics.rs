//! Prometheus metrics (`GET /metrics`, text format 0.0.4), every name
//! prefixed `hush_relay_`.
//!
//! Event counters and histograms go through the `metrics` facade into one
//! process-wide `metrics-exporter-prometheus` recorder, installed by the
//! first relay that starts in the process; the rest of the relay calls the
//! small functions below (one line at each place an event happens). What is
//! a state rather than an event is read when scraped: users online (the
//! session table), the store's totals and the distribution of mailbox
//! depths and sizes ([`MailboxCensus`], a snapshot at scrape time rendered as
//! a histogram), and the process's CPU time and memory from `/proc/self`.
//!
//! Labels are never user ids or anything a peer chooses: `code` is one of
//! the protocol's error codes, `op` one of the store's operation names.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hush_protocol::{ErrorCode, ServerFrame};
use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use crate::stats::{BYTES_BOUNDS, DEPTH_BOUNDS, MailboxCensus, StoreStats};

/// Seconds from `accepted` to the push of an envelope.
const DELIVERY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
    3600.0, 86400.0,
];
/// Seconds from submitting an append to its durable commit.
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls do nothing).
/// Returns `None` when another recorder was installed first (by an
/// application embedding the relay): `/metrics` then has only the values
/// read at scrape time.
pub(crate) fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("hush_relay_delivery_latency_seconds".into()),
                    DELIVERY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("hush_relay_store_commit_seconds".into()),
                        COMMIT_BUCKETS,
                    )
                });
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot configure the metrics recorder");
                    return None;
                }
            };
            describe();
            hot();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("hush_relay_connections", "Open WebSocket connections.");
    describe_gauge!(
        "hush_relay_users_online",
        "Authenticated users with a live connection on this relay."
    );
    describe_gauge!(
        "hush_relay_registered_users",
        "Registered users (read from the store at scrape time)."
    );
    describe_gauge!(
        "hush_relay_mailbox_envelopes",
        "Envelopes queued in all mailboxes (read from the store at scrape time)."
    );
    describe_gauge!(
        "hush_relay_mailbox_bytes",
        "Body bytes queued in all mailboxes (read from the store at scrape time)."
    );
    describe_gauge!(
        "hush_relay_store_up",
        "1 if the store answered this scrape's totals in time, else 0."
    );
    describe_counter!(
        "hush_relay_connections_opened_total",
        "WebSocket connections opened."
    );
    describe_counter!(
        "hush_relay_envelopes_accepted_total",
        "Stored envelopes accepted (committed, `accepted` with an id sent)."
    );
    describe_counter!(
        "hush_relay_envelopes_delivered_total",
        "Stored envelopes pushed to a connected recipient (redeliveries included)."
    );
    describe_counter!(
        "hush_relay_envelopes_acknowledged_total",
        "Envelopes deleted by their recipient's `ack`."
    );
    describe_histogram!(
        "hush_relay_delivery_latency_seconds",
        metrics::Unit::Seconds,
        "From acceptance to the push to the recipient (offline time included)."
    );
    describe_histogram!(
        "hush_relay_store_commit_seconds",
        metrics::Unit::Seconds,
        "From submitting an append to the store to its durable commit."
    );
    describe_counter!(
        "hush_relay_auth_failures_total",
        "Failed authentications by reason (auth_failed, auth_timeout)."
    );
    describe_counter!(
        "hush_relay_rate_limited_total",
        "Frames refused with rate_limited."
    );
    describe_counter!("hush_relay_errors_total", "Error frames sent, by code.");
    describe_counter!(
        "hush_relay_redis_errors_total",
        "Failed Redis operations (cluster mode), by operation."
    );
}

/// Counts one open connection while alive.
#[derive(Debug)]
pub(crate) struct ConnectionGauge(());

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        gauge!("hush_relay_connections").decrement(1.0);
    }
}

/// A WebSocket connection opened; the gauge goes down when the guard drops.
pub(crate) fn connection_opened() -> ConnectionGauge {
    counter!("hush_relay_connections_opened_total").increment(1);
    gauge!("hush_relay_connections").increment(1.0);
    ConnectionGauge(())
}

/// Handles of the metrics recorded for every message, looked up once: the
/// `counter!` / `histogram!` macros find their metric in the registry by
/// name (a hash and a key allocation) on every call, which cost about 7% of
/// the relay's CPU under load.
struct Hot {
    accepted: Counter,
    delivered: Counter,
    delivery_latency: Histogram,
    acknowledged: Counter,
    commit: Histogram,
}

static HOT: OnceLock<Hot> = OnceLock::new();

/// The hot handles; first used after [`install`] (a relay installs the
/// recorder before it serves), so they are bound to the real recorder.
fn hot() -> &'static Hot {
    HOT.get_or_init(|| Hot {
        accepted: counter!("hush_relay_envelopes_accepted_total"),
        delivered: counter!("hush_relay_envelopes_delivered_total"),
        delivery_latency: histogram!("hush_relay_delivery_latency_seconds"),
        acknowledged: counter!("hush_relay_envelopes_acknowledged_total"),
        commit: histogram!("hush_relay_store_commit_seconds"),
    })
}

/// A frame is going out on a connection: counts acceptances and errors.
pub(crate) fn frame_sent(frame: &ServerFrame) {
    match frame {
        ServerFrame::Accepted(a) if a.id.is_some() => hot().accepted.increment(1),
        ServerFrame::Error(e) => error_sent(e.code),
        _ => {}
    }
}

fn error_sent(code: ErrorCode) {
    counter!("hush_relay_errors_total", "code" => code.as_str()).increment(1);
    match code {
        ErrorCode::AuthFailed | ErrorCode::AuthTimeout => {
            counter!("hush_relay_auth_failures_total", "reason" => code.as_str()).increment(1);
        }
        ErrorCode::RateLimited => counter!("hush_relay_rate_limited_total").increment(1),
        _ => {}
    }
}

/// A stored envelope accepted at `accepted_at_ms` was pushed to its
/// recipient at `now_ms` (both by the relay's [`crate::clock::Clock`]).
pub(crate) fn envelope_pushed(accepted_at_ms: u64, now_ms: u64) {
    let hot = hot();
    hot.delivered.increment(1);
    let ms = now_ms.saturating_sub(accepted_at_ms);
    hot.delivery_latency.record(ms as f64 / 1000.0);
}

/// A recipient's `ack` deleted `n` envelopes.
pub(crate) fn envelopes_acked(n: u64) {
    hot().acknowledged.increment(n);
}

/// Times a store append from now (its submission) to its completion.
pub(crate) fn timed_commit<F: Future>(commit: F) -> impl Future<Output = F::Output> {
    let started = Instant::now();
    async move {
        let out = commit.await;
        hot().commit.record(started.elapsed().as_secs_f64());
        out
    }
}

/// A Redis operation failed.
pub(crate) fn redis_error(op: &'static str) {
    counter!("hush_relay_redis_errors_total", "op" => op).increment(1);
}

/// What a scrape reads besides the recorder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    /// Users with a live session on this relay.
    pub users_online: usize,
    /// The store's totals, `None` when the store did not answer in time.
    pub store: Option<StoreStats>,
}

/// The whole `/metrics` page.
pub(crate) fn render(snapshot: &Snapshot) -> String {
    gauge!("hush_relay_users_online").set(snapshot.users_online as f64);
    gauge!("hush_relay_store_up").set(if snapshot.store.is_some() { 1.0 } else { 0.0 });
    if let Some(s) = &snapshot.store {
        gauge!("hush_relay_registered_users").set(s.users as f64);
        gauge!("hush_relay_mailbox_envelopes").set(s.envelopes as f64);
        gauge!("hush_relay_mailbox_bytes").set(s.envelope_bytes as f64);
    }
    let mut out = match install() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    };
    if let Some(s) = &snapshot.store {
        let c = &s.census;
        snapshot_histogram(
            &mut out,
            "hush_relay_mailbox_depth",
            "Non-empty mailboxes by envelopes queued (a snapshot at scrape time).",
            &DEPTH_BOUNDS,
            &c.depth,
            c.mailboxes,
            c.depth_sum,
        );
        snapshot_histogram(
            &mut out,
            "hush_relay_mailbox_size_bytes",
            "Non-empty mailboxes by body bytes queued (a snapshot at scrape time).",
            &BYTES_BOUNDS,
            &c.bytes,
            c.mailboxes,
            c.bytes_sum,
        );
    }
    process_metrics(&mut out);
    out
}

fn snapshot_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[u64],
    cumulative: &[u64],
    count: u64,
    sum: u64,
) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bound, n) in bounds.iter().zip(cumulative) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}\n");
}

/// CPU seconds (user + system, all threads) of a `/proc/PID/stat`: its
/// `utime` and `stime` in clock ticks (`USER_HZ`, 100 a second).
#[cfg(target_os = "linux")]
fn cpu_seconds(stat: &procfs::process::Stat) -> f64 {
    (stat.utime + stat.stime) as f64 / procfs::ticks_per_second().max(1) as f64
}

/// Resident memory in bytes of a `/proc/PID/status` (`VmRSS`, in kB).
#[cfg(target_os = "linux")]
fn rss_bytes(status: &procfs::process::Status) -> Option<u64> {
    Some(status.vmrss? * 1024)
}

/// The process's CPU time and resident memory from `/proc/self`.
#[cfg(target_os = "linux")]
fn process_cpu_and_rss() -> (Option<f64>, Option<u64>) {
    let Ok(me) = procfs::process::Process::myself() else {
        return (None, None);
    };
    (
        me.stat().ok().map(|s| cpu_seconds(&s)),
        me.status().ok().as_ref().and_then(rss_bytes),
    )
}

/// Without `/proc`: neither is known.
#[cfg(not(target_os = "linux"))]
fn process_cpu_and_rss() -> (Option<f64>, Option<u64>) {
    (None, None)
}

fn process_metrics(out: &mut String) {
    use std::fmt::Write as _;
    let (cpu, rss) = process_cpu_and_rss();
    if let Some(cpu) = cpu {
        let _ = writeln!(
            out,
            "# HELP hush_relay_process_cpu_seconds_total User and system CPU time of the relay process.\n\
             # TYPE hush_relay_process_cpu_seconds_total counter\n\
             hush_relay_process_cpu_seconds_total {cpu}\n"
        );
    }
    if let Some(rss) = rss {
        let _ = writeln!(
            out,
            "# HELP hush_relay_process_resident_memory_bytes Resident set size of the relay process.\n\
             # TYPE hush_relay_process_resident_memory_bytes gauge\n\
             hush_relay_process_resident_memory_bytes {rss}\n"
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let n = fds.count();
        let _ = writeln!(
            out,
            "# HELP hush_relay_process_open_fds Open file descriptors of the relay process.\n\
             # TYPE hush_relay_process_open_fds gauge\n\
             hush_relay_process_open_fds {n}\n"
        );
    }
}

/// How long a scrape waits for the store's totals.
pub(crate) const STATS_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn proc_parsers_read_the_kernel_layout() {
        use procfs::FromRead as _;
        use procfs::process::{Stat, Status};
        // Whole files of the kernel's layout (the crate wants every field of
        // the stat line up to `cnswap`, and the status from Name to CapEff):
        // utime 250, stime 50 ticks; VmRSS 2048 kB.
        let stat = "1234 (hush relay) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let stat = Stat::from_read(stat.as_bytes()).map(|s| cpu_seconds(&s));
        assert_eq!(stat.ok(), Some(3.0));
        let status = "Name:\thush-relay\nState:\tS (sleeping)\nTgid:\t1234\nPid:\t1234\nPPid:\t1\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\nVmRSS:\t   2048 kB\nThreads:\t9\nSigQ:\t0/127431\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000100000440\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
        let status = Status::from_read(status.as_bytes()).ok();
        assert_eq!(status.as_ref().and_then(rss_bytes), Some(2 * 1024 * 1024));
        assert!(Stat::from_read("garbage".as_bytes()).is_err());
    }

    #[test]
    fn census_is_cumulative_and_skips_empty_mailboxes() {
        let mut c = MailboxCensus::default();
        c.add(0, 0);
        c.add(1, 100);
        c.add(50, 20_000);
        assert_eq!(c.mailboxes, 2);
        assert_eq!(c.depth[0], 1); // <= 1
        assert_eq!(c.depth[2], 2); // <= 100
        assert_eq!(c.bytes[0], 1); // <= 1 KiB
        assert_eq!(c.bytes[2], 2); // <= 256 KiB
        assert_eq!((c.depth_sum, c.bytes_sum), (51, 20_100));
    }
}
