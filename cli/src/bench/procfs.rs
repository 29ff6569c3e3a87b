//! The relay's own CPU time and resident memory, read from `/proc` with the
//! `procfs` crate (Linux only), the way the reference harness reads them:
//! `utime + stime` of `/proc/PID/stat` (all threads, in clock ticks, 100 a
//! second) and `VmRSS` of `/proc/PID/status`; and the machine's busy time
//! from `/proc/stat`.

use super::BenchError;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProcSample {
    /// User plus system CPU time, microseconds.
    pub cpu_us: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads CPU time and RSS of `pid`.
#[cfg(target_os = "linux")]
pub(crate) fn sample(pid: u32) -> Result<ProcSample, BenchError> {
    let pid_i32 = i32::try_from(pid)
        .map_err(|_| BenchError::Relay(format!("process id {pid} out of range")))?;
    let process = ::procfs::process::Process::new(pid_i32)
        .map_err(|e| proc_error("read /proc/PID (Linux only)", e))?;
    let stat = process
        .stat()
        .map_err(|e| proc_error("read /proc/PID/stat (Linux only)", e))?;
    let status = process
        .status()
        .map_err(|e| proc_error("read /proc/PID/status", e))?;
    Ok(ProcSample {
        cpu_us: cpu_us(&stat),
        rss_kib: status
            .vmrss
            .ok_or_else(|| BenchError::Relay(format!("no VmRSS in /proc/{pid}/status")))?,
    })
}

/// Reads CPU time and RSS of `pid`: without `/proc`, an error.
#[cfg(not(target_os = "linux"))]
pub(crate) fn sample(_pid: u32) -> Result<ProcSample, BenchError> {
    Err(BenchError::io(
        "read /proc/PID/stat (Linux only)",
        std::io::ErrorKind::Unsupported.into(),
    ))
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
#[cfg(target_os = "linux")]
pub(crate) fn machine_busy_us() -> Option<u64> {
    use ::procfs::CurrentSI as _;
    let t = ::procfs::KernelStats::current().ok()?.total;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // the first eight but idle and iowait (guest time is in user already).
    let busy = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Some(busy * micros_per_tick())
}

/// Busy CPU time of the whole machine: unknown without `/proc`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn machine_busy_us() -> Option<u64> {
    None
}

/// Microseconds in one clock tick of `/proc` (`USER_HZ`, 100 a second on
/// every Linux architecture Hush targets).
#[cfg(target_os = "linux")]
fn micros_per_tick() -> u64 {
    1_000_000 / ::procfs::ticks_per_second().max(1)
}

/// `utime + stime` of a `/proc/PID/stat`, microseconds.
#[cfg(target_os = "linux")]
fn cpu_us(stat: &::procfs::process::Stat) -> u64 {
    (stat.utime + stat.stime) * micros_per_tick()
}

/// A failed `/proc` read: an I/O error where it was one (the process is
/// gone, not allowed), otherwise a layout the crate could not parse.
#[cfg(target_os = "linux")]
fn proc_error(what: &'static str, e: ::procfs::ProcError) -> BenchError {
    use ::procfs::ProcError;
    use std::io::{Error, ErrorKind};
    match e {
        ProcError::Io(source, _) => BenchError::io(what, source),
        ProcError::NotFound(_) => BenchError::io(what, Error::from(ErrorKind::NotFound)),
        ProcError::PermissionDenied(_) => {
            BenchError::io(what, Error::from(ErrorKind::PermissionDenied))
        }
        other => BenchError::Relay(format!("{what}: unexpected layout ({other})")),
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use ::procfs::FromRead as _;
    use ::procfs::process::{Stat, Status};

    #[test]
    fn parses_stat_and_status() {
        // Whole files of the kernel's layout (the crate wants every field of
        // the stat line up to `cnswap`, and the status from Name to CapEff):
        // utime 250, stime 30 ticks; VmRSS 5120 kB.
        let stat = "1234 (hush relay) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 30 0 0 20 0 3 0 100 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let stat = Stat::from_read(stat.as_bytes()).unwrap();
        assert_eq!(stat.utime + stat.stime, 280);
        assert_eq!(cpu_us(&stat), 280 * micros_per_tick());
        let status = "Name:\thush-relay\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1234\nNgid:\t0\nPid:\t1234\nPPid:\t1\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nGroups:\t\nVmPeak:\t  10000 kB\nVmRSS:\t   5120 kB\nThreads:\t3\nSigQ:\t0/127431\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\nSigCgt:\t0000000100000440\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
        let status = Status::from_read(status.as_bytes()).unwrap();
        assert_eq!(status.vmrss, Some(5120));
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
