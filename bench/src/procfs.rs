//! Resource figures of a process read from /proc: resident memory and CPU time.
//!
//! CPU time is utime+stime of the whole thread group (fields 14 and 15 of /proc/PID/stat), in
//! clock ticks (usually 10 ms each); a delta over thousands of requests is precise enough to
//! give CPU time per request.

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

/// User plus system CPU time consumed so far by process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
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

/// CPU time of this process (the load generator).
pub fn own_cpu_time() -> Result<Duration, ProcError> {
    cpu_time(std::process::id())
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

    #[test]
    fn reads_this_process() {
        let mem = memory(std::process::id()).expect("own status");
        assert!(mem.rss > 0 && mem.peak >= mem.rss, "{mem:?}");
        assert!(cpu_time(std::process::id()).is_ok());
        assert!(threads(std::process::id()).is_some_and(|t| t >= 1));
    }
}
