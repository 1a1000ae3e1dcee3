//! Resource figures of a process read from /proc: resident memory and CPU time.
//!
//! CPU time comes from two sources. utime+stime of the whole thread group (fields 14 and 15 of
//! /proc/PID/stat) counts every thread, including ones that have exited, but only in clock
//! ticks (usually 10 ms). The per-thread run time in /proc/PID/task/TID/schedstat is in
//! nanoseconds but forgets threads that exit. [`CpuMeter`] uses the nanosecond sum when no
//! thread exited during the window (and the tick count agrees with it), else the ticks: a
//! short LIST costs a few milliseconds, below a tick, and must still be measurable.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} has no usable {field} field")]
    Field { path: String, field: &'static str },
}

/// Memory figures from /proc/PID/status, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (VmRSS).
    pub rss: u64,
    /// Peak resident set size so far (VmHWM).
    pub peak: u64,
}

pub fn memory(pid: u32) -> Result<Memory, ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|source| ProcError::Read {
        path: path.clone(),
        source,
    })?;
    parse_status(&text).ok_or(ProcError::Field {
        path,
        field: "VmRSS/VmHWM",
    })
}

fn parse_status(text: &str) -> Option<Memory> {
    let kb = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let v = line[key.len()..].trim().trim_end_matches("kB").trim();
        v.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some(Memory {
        rss: kb("VmRSS:")?,
        peak: kb("VmHWM:")?,
    })
}

/// User plus system CPU time consumed so far by process `pid` (all its threads), in ticks.
fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|source| ProcError::Read {
        path: path.clone(),
        source,
    })?;
    let ticks = parse_stat_ticks(&text).ok_or(ProcError::Field {
        path,
        field: "utime/stime",
    })?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_sec() as f64,
    ))
}

/// One reading of a process's CPU time from both sources.
#[derive(Debug, Clone, Default)]
struct CpuSample {
    ticks: Duration,
    /// Nanoseconds run by each live thread, by thread id.
    tasks: std::collections::HashMap<u32, u64>,
}

fn cpu_sample(pid: u32) -> Result<CpuSample, ProcError> {
    let ticks = cpu_time(pid)?;
    let mut tasks = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in dir.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ns) = std::fs::read_to_string(entry.path().join("schedstat"))
                .ok()
                .and_then(|t| {
                    t.split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                })
            {
                tasks.insert(tid, ns);
            }
        }
    }
    Ok(CpuSample { ticks, tasks })
}

impl CpuSample {
    /// CPU time between `earlier` and this sample.
    fn since(&self, earlier: &CpuSample) -> Duration {
        let ticks = self.ticks.saturating_sub(earlier.ticks);
        let all_alive =
            !earlier.tasks.is_empty() && earlier.tasks.keys().all(|t| self.tasks.contains_key(t));
        if !all_alive {
            return ticks;
        }
        let ns: u64 = self
            .tasks
            .iter()
            .map(|(t, now)| now.saturating_sub(earlier.tasks.get(t).copied().unwrap_or(0)))
            .sum();
        let precise = Duration::from_nanos(ns);
        // A thread that started and exited inside the window is only in the ticks: when they
        // exceed the precise sum by more than their rounding (two ticks), trust them.
        let slack = Duration::from_secs_f64(2.0 / clock_ticks_per_sec() as f64);
        if ticks > precise + slack {
            ticks
        } else {
            precise
        }
    }
}

/// Measures the CPU time a process uses from now on.
pub struct CpuMeter {
    pid: u32,
    start: CpuSample,
}

impl CpuMeter {
    pub fn start(pid: u32) -> Option<CpuMeter> {
        Some(CpuMeter {
            pid,
            start: cpu_sample(pid).ok()?,
        })
    }

    /// The load generator itself.
    pub fn start_own() -> Option<CpuMeter> {
        CpuMeter::start(std::process::id())
    }

    /// CPU time used since `start`.
    pub fn read(&self) -> Option<Duration> {
        Some(cpu_sample(self.pid).ok()?.since(&self.start))
    }
}

/// utime + stime in ticks. The command name (field 2) may contain spaces and parentheses, so
/// the fields are counted from the last ')'.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK`, asked once; 100 (the value on every mainstream Linux build) if that fails.
fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// Busy CPU time of the whole machine (every process), from the first line of /proc/stat:
/// everything but idle and iowait. Set against the server's and the load generator's own
/// figures it shows how much else was running during a measurement.
pub struct MachineMeter {
    start: Duration,
}

impl MachineMeter {
    pub fn start() -> Option<MachineMeter> {
        Some(MachineMeter {
            start: machine_busy()?,
        })
    }

    pub fn read(&self) -> Option<Duration> {
        Some(machine_busy()?.saturating_sub(self.start))
    }
}

fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = parse_machine_busy(text.lines().next()?)?;
    Some(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_sec() as f64,
    ))
}

/// Busy ticks of the aggregate `cpu` line: user nice system idle iowait irq softirq steal
/// (guest time is already inside user).
fn parse_machine_busy(line: &str) -> Option<u64> {
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.take(8).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = v.as_slice() else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

/// The 1-minute load average.
pub fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// Number of threads of `pid` (from /proc/PID/status), for the report's notes.
pub fn threads(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

/// Bytes of the regular files under `dir`, recursively (a data directory's size on disk).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Stops a child process gracefully: SIGTERM (via kill(1); the workspace forbids unsafe code, so
/// no libc), then SIGKILL if it has not exited within `grace`. Returns how long the exit took,
/// or `None` when it had to be killed.
pub async fn terminate(child: &mut std::process::Child, grace: Duration) -> Option<Duration> {
    let t0 = std::time::Instant::now();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    while t0.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rss_and_peak_from_status() {
        let text = "Name:\tkeelson\nVmPeak:\t  200000 kB\nVmHWM:\t   25000 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss: 20480 * 1024,
                peak: 25000 * 1024
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn parses_cpu_ticks_despite_odd_command_names() {
        // Field 2 holds spaces and a ')' of its own; utime=1234, stime=56.
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194304 100 0 0 0 1234 56 0 0 20 0 3 0 12345 1000000 500";
        assert_eq!(parse_stat_ticks(text), Some(1290));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn dir_size_sums_files_recursively() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), [0u8; 100]).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b"), [0u8; 23]).expect("write");
        assert_eq!(dir_size(dir.path()), 123);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }

    fn sample(ticks_ms: u64, tasks: &[(u32, u64)]) -> CpuSample {
        CpuSample {
            ticks: Duration::from_millis(ticks_ms),
            tasks: tasks.iter().copied().collect(),
        }
    }

    #[test]
    fn cpu_delta_prefers_nanoseconds_while_threads_live() {
        let a = sample(100, &[(1, 1_000_000), (2, 5_000_000)]);
        // Thread 3 started in the window: all of its time counts.
        let b = sample(110, &[(1, 4_000_000), (2, 6_500_000), (3, 2_000_000)]);
        assert_eq!(b.since(&a), Duration::from_micros(6_500));
    }

    #[test]
    fn cpu_delta_falls_back_to_ticks_when_a_thread_exits_or_disagrees() {
        let a = sample(100, &[(1, 1_000_000), (2, 5_000_000)]);
        let exited = sample(180, &[(1, 2_000_000)]);
        assert_eq!(exited.since(&a), Duration::from_millis(80));
        // Ticks far above the thread sum: a short-lived thread ran in between.
        let short_lived = sample(300, &[(1, 2_000_000), (2, 5_000_000)]);
        assert_eq!(short_lived.since(&a), Duration::from_millis(200));
    }

    #[test]
    fn parses_machine_busy_ticks() {
        let line = "cpu  100 5 50 1000 30 2 3 4 0 0";
        assert_eq!(parse_machine_busy(line), Some(100 + 5 + 50 + 2 + 3 + 4));
        assert_eq!(parse_machine_busy("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_machine_busy("cpu 1 2"), None);
        assert!(MachineMeter::start().and_then(|m| m.read()).is_some());
    }

    #[test]
    fn reads_this_process() {
        let mem = memory(std::process::id()).expect("own status");
        assert!(mem.rss > 0 && mem.peak >= mem.rss, "{mem:?}");
        assert!(cpu_time(std::process::id()).is_ok());
        // Other test threads may exit meanwhile (then the meter falls back to whole ticks,
        // possibly zero), so only readability is checked here; `since` is tested above.
        let meter = CpuMeter::start_own().expect("meter");
        assert!(meter.read().is_some());
        assert!(threads(std::process::id()).is_some_and(|t| t >= 1));
    }
}
