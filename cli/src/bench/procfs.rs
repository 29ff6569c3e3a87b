//! The relay's own CPU time and resident memory, read from `/proc` (Linux
//! only), the way the reference harness reads them: `utime + stime` of
//! `/proc/PID/stat` (all threads, in clock ticks of 1/100 s) and `VmRSS` of
//! `/proc/PID/status`.

use super::BenchError;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every
/// Linux architecture Hush targets).
const CLK_TCK: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProcSample {
    /// User plus system CPU time, microseconds.
    pub cpu_us: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads CPU time and RSS of `pid`.
pub(crate) fn sample(pid: u32) -> Result<ProcSample, BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| BenchError::io("read /proc/PID/stat (Linux only)", e))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| BenchError::io("read /proc/PID/status", e))?;
    Ok(ProcSample {
        cpu_us: parse_stat_cpu_ticks(&stat)
            .ok_or_else(|| BenchError::Relay(format!("unexpected /proc/{pid}/stat layout")))?
            * (1_000_000 / CLK_TCK),
        rss_kib: parse_vm_rss_kib(&status)
            .ok_or_else(|| BenchError::Relay(format!("no VmRSS in /proc/{pid}/status")))?,
    })
}

/// Sums several processes (a cluster): CPU adds up, RSS adds up.
pub(crate) fn sample_all(pids: &[u32]) -> Result<Option<ProcSample>, BenchError> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = ProcSample::default();
    for &pid in pids {
        let s = sample(pid)?;
        total.cpu_us += s.cpu_us;
        total.rss_kib += s.rss_kib;
    }
    Ok(Some(total))
}

/// Busy CPU time of the whole machine (all but idle and iowait) from
/// `/proc/stat`, microseconds; used to tell how much of the machine other
/// processes took during the window.
pub(crate) fn machine_busy_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some(busy * (1_000_000 / CLK_TCK))
}

/// `utime + stime` (fields 14 and 15) in ticks. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after the last
/// `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "1234 (hush relay) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 30 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(280));
        let status = "Name:\thush-relay\nVmPeak:\t  10000 kB\nVmRSS:\t   5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(5120));
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let s = sample(std::process::id()).unwrap();
            assert!(s.rss_kib > 0);
        }
    }
}
