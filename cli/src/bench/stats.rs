//! Latency percentiles and the summary a run prints.

use serde::Serialize;

/// Nearest-rank percentile of sorted microsecond samples, in milliseconds.
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    // Nearest rank, ceil(p/100 * n), computed as p * n / 100 so that e.g.
    // 99.9 % of 1,000 is exactly 999 (0.999 * 1000 rounds up to 1000).
    // The float-to-int cast saturates; the clamp keeps the rank in 1..=n.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = (p * sorted_us.len() as f64 / 100.0).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us.get(i).map_or(0.0, |&us| f64::from(us) / 1000.0)
}

/// Latency distribution of one kind (send to delivery, or send to
/// `accepted`).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn from_samples(mut us: Vec<u32>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let sum: u64 = us.iter().map(|&v| u64::from(v)).sum();
        Self {
            p50_ms: percentile_ms(&us, 50.0),
            p90_ms: percentile_ms(&us, 90.0),
            p99_ms: percentile_ms(&us, 99.0),
            p999_ms: percentile_ms(&us, 99.9),
            max_ms: percentile_ms(&us, 100.0),
            mean_ms: sum as f64 / us.len() as f64 / 1000.0,
        }
    }
}

/// What `hush bench` reports (`--json` prints exactly this object).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Summary {
    pub relays: Vec<String>,
    pub pairs: usize,
    pub messages_per_pair: u64,
    pub size: usize,
    pub window: usize,
    pub rate: Option<f64>,
    pub encrypt: bool,
    pub queued: bool,
    /// Measured messages written to the relay.
    pub sent: u64,
    /// Answered `accepted`.
    pub accepted: u64,
    /// Answered with an `error` (counted per code in `rejected_codes`).
    pub rejected: u64,
    pub rejected_codes: std::collections::BTreeMap<String, u64>,
    /// Distinct messages received, from the right sender.
    pub delivered: u64,
    /// Accepted but never received.
    pub lost: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Received after a later message of the same sender.
    pub out_of_order: u64,
    /// Received from another user than the pair's sender, or failing to
    /// decrypt.
    pub wrong_sender: u64,
    /// Delivered messages per second: delivered / (last delivery - first
    /// send).
    pub throughput: f64,
    pub duration_s: f64,
    /// Send to delivery.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Send to `accepted`.
    pub accepted_latency: Latency,
    /// Connecting and authenticating every pair's two connections.
    pub connect_ms: f64,
    /// Per connection (connect + challenge + auth).
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    /// Idle authenticated connections held during the run.
    pub idle_connections: usize,
    pub idle_connect_ms: f64,
    /// `--queued`: from the receivers' reconnect to their last envelope.
    pub drain_ms: Option<f64>,
    /// Relay CPU (utime+stime) in the measured window, microseconds.
    pub server_cpu_us: Option<u64>,
    /// Relay CPU per delivered message in the measured window.
    pub server_us_per_msg: Option<f64>,
    /// Relay CPU / wall time of the measured window, in cores.
    pub server_util: Option<f64>,
    /// Relay RSS at the end of the measured window.
    pub server_rss_kib: Option<u64>,
    /// Relay RSS before the idle connections were opened.
    pub server_rss_before_idle_kib: Option<u64>,
    /// (RSS with idle connections - RSS before) / idle connections.
    pub server_kib_per_idle_conn: Option<f64>,
    /// The shared store's CPU (`--store-pid`) in the measured window,
    /// microseconds, and per delivered message.
    pub store_cpu_us: Option<u64>,
    pub store_us_per_msg: Option<f64>,
    /// This process's CPU per delivered message in the measured window.
    pub loadgen_us_per_msg: Option<f64>,
    /// CPU used by every other process on the machine during the window,
    /// in cores (a contended run has more than ~0.1).
    pub other_util: Option<f64>,
    /// Some pair stopped making progress before finishing.
    pub stalled: bool,
}

impl Summary {
    /// Human-readable lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!(
            "relay {}: {} pairs x {} messages of {} B, {}{}{}",
            self.relays.join(", "),
            self.pairs,
            self.messages_per_pair,
            self.size,
            match self.rate {
                Some(r) => format!("offered {r:.0} msgs/s (window {})", self.window),
                None => format!("window {}", self.window),
            },
            if self.encrypt {
                ", end-to-end encrypted"
            } else {
                ", random bytes (--no-encrypt)"
            },
            if self.queued {
                ", receivers offline then draining"
            } else {
                ""
            },
        ));
        line(format!(
            "sent {}  accepted {}  rejected {}  delivered {}  lost {}  duplicated {}  out of order {}  wrong sender {}{}",
            self.sent,
            self.accepted,
            self.rejected,
            self.delivered,
            self.lost,
            self.duplicated,
            self.out_of_order,
            self.wrong_sender,
            if self.stalled { "  (STALLED)" } else { "" }
        ));
        if !self.rejected_codes.is_empty() {
            line(format!("rejections: {:?}", self.rejected_codes));
        }
        line(format!(
            "throughput {:.0} msgs/s over {:.2} s",
            self.throughput, self.duration_s
        ));
        line(format!(
            "send->delivery ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms
        ));
        let a = &self.accepted_latency;
        line(format!(
            "send->accepted ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            a.p50_ms, a.p90_ms, a.p99_ms, a.p999_ms, a.max_ms
        ));
        line(format!(
            "connect: {:.0} ms for {} connections (per connection p50 {:.2} ms, p99 {:.2} ms)",
            self.connect_ms,
            self.pairs * 2,
            self.connect_p50_ms,
            self.connect_p99_ms
        ));
        if let Some(d) = self.drain_ms {
            line(format!("queued backlog drained in {d:.0} ms"));
        }
        if self.idle_connections > 0 {
            line(format!(
                "idle: {} authenticated connections held ({:.0} ms to open)",
                self.idle_connections, self.idle_connect_ms
            ));
        }
        if let (Some(us), Some(per)) = (self.server_cpu_us, self.server_us_per_msg) {
            line(format!(
                "server: {:.2} us CPU per delivered message ({:.2} s CPU, {:.2} cores), RSS {} KiB",
                per,
                us as f64 / 1e6,
                self.server_util.unwrap_or(0.0),
                self.server_rss_kib.unwrap_or(0)
            ));
        }
        if let (Some(us), Some(per)) = (self.store_cpu_us, self.store_us_per_msg) {
            line(format!(
                "store: {per:.2} us CPU per delivered message ({:.2} s CPU)",
                us as f64 / 1e6
            ));
        }
        if let Some(k) = self.server_kib_per_idle_conn {
            line(format!(
                "server: {k:.2} KiB RSS per idle authenticated connection (RSS {} -> {} KiB)",
                self.server_rss_before_idle_kib.unwrap_or(0),
                self.server_rss_kib.unwrap_or(0)
            ));
        }
        if let Some(l) = self.loadgen_us_per_msg {
            line(format!(
                "load generator: {l:.2} us CPU per delivered message"
            ));
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 500.0);
        assert_eq!(percentile_ms(&v, 99.0), 990.0);
        assert_eq!(percentile_ms(&v, 99.9), 999.0);
        assert_eq!(percentile_ms(&v, 100.0), 1000.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }
}
