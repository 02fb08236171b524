//! Resource usage of the server (by PID) and of this process, from /proc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Server resource usage during one measurement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// Highest resident set size seen during the measurement (VmRSS sampled
    /// every 20 ms, and VmHWM when the high-water mark could be reset first).
    pub peak_rss_bytes: u64,
    /// VmHWM at the end: the process's lifetime peak.
    pub lifetime_peak_rss_bytes: u64,
    /// User + system CPU time the server spent during the measurement.
    pub cpu_seconds: f64,
    /// The system (kernel) part of `cpu_seconds`; the user part is the
    /// difference. Absent in reports written before it existed.
    #[serde(default)]
    pub cpu_system_seconds: f64,
}

/// `(utime + stime)` of a process in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_times(pid).map(|(user, system)| user + system)
}

/// `(utime, stime)` of a process in seconds, from `/proc/<pid>/stat`.
fn cpu_times(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    Some((utime as f64 / ticks, stime as f64 / ticks))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A `/proc/<pid>/status` field in bytes (the kernel reports kB).
fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// This process's CPU time in seconds.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds("self").unwrap_or(0.0)
}

/// Watches one process for the duration of one measurement.
struct ProcessMonitor {
    pid: String,
    cpu_start: (f64, f64),
    hwm_reset: bool,
    peak: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl ProcessMonitor {
    fn start(pid: u32) -> Option<Self> {
        let pid = pid.to_string();
        let cpu_start = cpu_times(&pid)?;
        // Writing 5 to clear_refs resets VmHWM (needs ptrace rights; optional).
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let peak = Arc::new(AtomicU64::new(status_kb(&pid, "VmRSS").unwrap_or(0)));
        let sampler = {
            let (pid, peak) = (pid.clone(), peak.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tick.tick().await;
                    match status_kb(&pid, "VmRSS") {
                        Some(rss) => {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                        None => break,
                    }
                }
            })
        };
        Some(Self {
            pid,
            cpu_start,
            hwm_reset,
            peak,
            sampler,
        })
    }

    fn stop(self) -> ServerUsage {
        self.sampler.abort();
        let hwm = status_kb(&self.pid, "VmHWM").unwrap_or(0);
        let rss = status_kb(&self.pid, "VmRSS").unwrap_or(0);
        let mut peak = self.peak.load(Ordering::Relaxed).max(rss);
        if self.hwm_reset {
            peak = peak.max(hwm);
        }
        let (user, system) = cpu_times(&self.pid).unwrap_or(self.cpu_start);
        let user = (user - self.cpu_start.0).max(0.0);
        let system = (system - self.cpu_start.1).max(0.0);
        ServerUsage {
            peak_rss_bytes: peak,
            lifetime_peak_rss_bytes: hwm,
            cpu_seconds: user + system,
            cpu_system_seconds: system,
        }
    }
}

/// Watches the server's processes (one, or several replicas) for the
/// duration of one measurement.
pub struct ServerMonitor {
    processes: Vec<ProcessMonitor>,
}

impl ServerMonitor {
    /// Starts sampling `pids`; `None` if none of them is readable.
    pub fn start(pids: &[u32]) -> Option<Self> {
        let processes: Vec<ProcessMonitor> = pids
            .iter()
            .filter_map(|p| ProcessMonitor::start(*p))
            .collect();
        (!processes.is_empty()).then_some(Self { processes })
    }

    /// Stops sampling and returns the usage since [`ServerMonitor::start`]:
    /// CPU summed over the processes, RSS figures of the largest one.
    pub fn stop(self) -> ServerUsage {
        self.processes.into_iter().map(ProcessMonitor::stop).fold(
            ServerUsage::default(),
            |acc, u| ServerUsage {
                peak_rss_bytes: acc.peak_rss_bytes.max(u.peak_rss_bytes),
                lifetime_peak_rss_bytes: acc.lifetime_peak_rss_bytes.max(u.lifetime_peak_rss_bytes),
                cpu_seconds: acc.cpu_seconds + u.cpu_seconds,
                cpu_system_seconds: acc.cpu_system_seconds + u.cpu_system_seconds,
            },
        )
    }
}

/// `sync`, then drop the page cache, dentries and inodes
/// (`/proc/sys/vm/drop_caches`); fails without the privilege to do so.
pub fn drop_page_cache() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .context("writing /proc/sys/vm/drop_caches (--drop-caches needs root on Linux)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn monitors_own_process() {
        assert!(own_cpu_seconds() >= 0.0);
        let m = ServerMonitor::start(&[std::process::id()]).expect("own /proc is readable");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let u = m.stop();
        assert!(u.peak_rss_bytes > 0);
        assert!(u.lifetime_peak_rss_bytes > 0);
    }

    #[tokio::test]
    async fn several_processes_sum_cpu_and_skip_unreadable_ones() {
        assert!(ServerMonitor::start(&[u32::MAX]).is_none());
        let me = std::process::id();
        let m = ServerMonitor::start(&[me, u32::MAX, me]).expect("own /proc is readable");
        let cpu0 = own_cpu_seconds();
        let mut x = 0u64;
        // Spin for at least 0.3 s of CPU so clock ticks (10 ms) are noise.
        while own_cpu_seconds() - cpu0 < 0.3 {
            for i in 0..1_000_000u64 {
                x = x.wrapping_add(i * i);
            }
        }
        std::hint::black_box(x);
        let spent = own_cpu_seconds() - cpu0;
        let both = m.stop();
        assert!(both.peak_rss_bytes > 0);
        // The same process listed twice is counted twice.
        assert!(
            both.cpu_seconds >= 2.0 * spent - 0.05,
            "summed {} s for 2 × {spent} s",
            both.cpu_seconds
        );
    }
}
