//! keelson on etcd: the embedded run's workload sequence (same clients, objects, counts and
//! order; no watch fan-out) against `keelson server --datastore etcd://...`, so that the cost
//! of putting etcd under keelson can be read next to keelson on its embedded store and etcd
//! on its own.
//!
//! The etcd is started for this phase alone, fresh (empty data directory, revision 1), exactly
//! like the one the raw-put phase measures: neither run sees the other's keys, history or
//! database growth, and the start-up figures are those of a server bootstrapping an empty
//! cluster. Both processes' CPU is charged to the server side, each reported separately.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::etcd::{self, Etcd};
use crate::findings::{Phase, Plan};
use crate::keelson::{self, Server};
use crate::procfs::{self, Memory};
use crate::workload::Procs;
use crate::workload::suite::{self, CREATE_PREFIX, LIST_NS, LOAD_NS, Workload};

/// Where keelson keeps ConfigMaps in the store (`api::Resource::storage_prefix` of core/v1
/// configmaps); the bench counts the created keys under it to check that every acknowledged
/// create reached etcd.
const CONFIGMAP_KEYS: &str = "/registry/core/configmaps/";
/// WARN/ERROR lines kept from each log for the report.
const LOG_LINES_KEPT: usize = 8;
/// Log lines shown when keelson died during the workload.
const EXIT_LOG_LINES: usize = 15;

/// What the etcd-backed phase measured.
pub struct BackedRun {
    /// `etcd --version`'s first line.
    pub version: String,
    /// The backing etcd's spawn → first linearizable read.
    pub etcd_ready_after: Duration,
    /// keelson's first start: fresh data dir (certificates generated), empty etcd (it creates
    /// the default namespaces and the `kubernetes` Service).
    pub first_start: Duration,
    /// Restarts on the same data dir with the cluster still empty.
    pub restarts: Vec<Duration>,
    /// Restarts after the workload, with its objects in etcd.
    pub restart_with_data: Vec<Duration>,
    /// keelson's memory, idle after the restarts and after the workload.
    pub idle: Option<Memory>,
    pub after: Option<Memory>,
    /// etcd's memory after the workload.
    pub etcd_after: Option<Memory>,
    pub etcd_data_bytes: u64,
    pub work: Workload,
    /// Keys etcd holds for the timed creates afterwards (should equal the creates answered OK).
    pub stored: Option<i64>,
    /// (count, first few) WARN/ERROR lines of keelson's log, and of etcd's (which logs at warn
    /// level, so every line of it counts).
    pub log_problems: (usize, Vec<String>),
    pub etcd_log_problems: (usize, Vec<String>),
    /// Failures that cut the phase short, with what they interrupted.
    pub errors: Vec<String>,
}

impl BackedRun {
    /// Objects in etcd at the end of the workload (the warm-up's and the creates').
    pub fn stored_objects(&self, plan: &Plan) -> u64 {
        self.work.stored_objects(plan)
    }
}

/// Runs the phase: a fresh etcd, keelson on it (first start, restarts), the workload, the
/// restarts with data, and the counts and logs afterwards. `etcd_bin` is already resolved.
pub async fn run(
    server_bin: &Path,
    etcd_bin: &Path,
    work_dir: &Path,
    plan: &Plan,
    t0: Instant,
) -> Phase<BackedRun> {
    let version = etcd::version(etcd_bin).unwrap_or_else(|| "unknown version".to_string());
    let mut etcd = match Etcd::start(etcd_bin, work_dir).await {
        Ok(e) => e,
        Err(err) => return Phase::Failed(format!("{version}: starting etcd: {err}")),
    };
    let data_dir = match tempfile::Builder::new()
        .prefix("keelson-on-etcd-")
        .tempdir_in(work_dir)
    {
        Ok(d) => d,
        Err(e) => return Phase::Failed(format!("temp dir: {e}")),
    };
    let datastore = format!("etcd://{}", etcd.endpoint.addr);
    crate::progress(
        t0,
        &format!(
            "keelson on etcd: starting with --datastore {datastore} in {}",
            data_dir.path().display()
        ),
    );
    let mut server = match Server::start_on(server_bin, data_dir.path(), Some(&datastore)).await {
        Ok(s) => s,
        Err(e) => {
            let problems = log_lines(&etcd.log(), LOG_LINES_KEPT);
            return Phase::Failed(format!(
                "keelson --datastore {datastore} did not start: {e}\netcd log ({} lines): {}",
                problems.0,
                problems.1.join("\n")
            ));
        }
    };
    let mut run = BackedRun {
        version,
        etcd_ready_after: etcd.ready_after,
        first_start: server.ready_after,
        restarts: Vec::new(),
        restart_with_data: Vec::new(),
        idle: None,
        after: None,
        etcd_after: None,
        etcd_data_bytes: 0,
        work: Workload::default(),
        stored: None,
        log_problems: (0, Vec::new()),
        etcd_log_problems: (0, Vec::new()),
        errors: Vec::new(),
    };

    crate::progress(
        t0,
        &format!(
            "keelson on etcd: {} restarts (empty cluster)",
            plan.restarts
        ),
    );
    restart_n(
        &mut server,
        plan.restarts,
        &mut run.restarts,
        &mut run.errors,
        "restart",
    )
    .await;
    if server.pid().is_some() {
        tokio::time::sleep(plan.idle_wait).await;
        run.idle = server.memory();
        let procs = Procs {
            server: server.pid(),
            store: etcd.pid(),
        };
        if let Err(e) = suite::run(&mut run.work, &server, procs, plan, false, t0).await {
            run.errors.push(format!("workload aborted: {e:#}"));
        }
        run.after = server.memory();
        if let Some(how) = server.exited(EXIT_LOG_LINES) {
            run.errors.push(format!("during the workload: {how}"));
        }
    }
    run.etcd_after = etcd.pid().and_then(|p| procfs::memory(p).ok());
    run.stored = count_created(&etcd).await;

    crate::progress(
        t0,
        &format!(
            "keelson on etcd: restarting with the stored data, {} times",
            plan.restarts_with_data
        ),
    );
    // Even after a crash: a restart on the stored data is what an operator would do next.
    restart_n(
        &mut server,
        plan.restarts_with_data,
        &mut run.restart_with_data,
        &mut run.errors,
        "restart with data",
    )
    .await;
    server.stop().await;
    run.log_problems = collapse_repeats(
        keelson::log_problems(&server.log_path(), usize::MAX).1,
        LOG_LINES_KEPT,
    );
    run.etcd_data_bytes = procfs::dir_size(&etcd.data_dir());
    run.etcd_log_problems = log_lines(&etcd.log(), LOG_LINES_KEPT);
    etcd.stop().await;
    Phase::Ran(Box::new(run))
}

/// Restarts `server` `n` times, recording each start-to-ready time; stops at the first failure.
async fn restart_n(
    server: &mut Server,
    n: usize,
    times: &mut Vec<Duration>,
    errors: &mut Vec<String>,
    what: &str,
) {
    for _ in 0..n {
        match server.restart().await {
            Ok(()) => times.push(server.ready_after),
            Err(e) => {
                errors.push(format!("{what}: {e}"));
                return;
            }
        }
    }
}

/// Keys etcd holds for the timed creates (both namespaces), read straight from etcd.
async fn count_created(etcd: &Etcd) -> Option<i64> {
    let mut conn = etcd.endpoint.connect().await.ok()?;
    let mut total = 0;
    for ns in [LIST_NS, LOAD_NS] {
        let prefix = format!("{CONFIGMAP_KEYS}{ns}/{CREATE_PREFIX}-");
        total += conn
            .count_prefix(&etcd.endpoint, prefix.as_bytes())
            .await
            .ok()?;
    }
    Some(total)
}

/// Log lines with repeats folded: lines that differ only in their first field (tracing's
/// timestamp) are shown once, with "(×N)" when there were several — keelson warns once per
/// start about an old etcd, and a run starts it several times. Returns the total line count
/// and the first `keep` distinct lines.
fn collapse_repeats(lines: Vec<String>, keep: usize) -> (usize, Vec<String>) {
    let total = lines.len();
    let mut distinct: Vec<(String, String, usize)> = Vec::new();
    for line in lines {
        let body = line
            .split_once(char::is_whitespace)
            .map_or(line.as_str(), |(_, rest)| rest)
            .trim_start()
            .to_string();
        match distinct.iter_mut().find(|(_, b, _)| *b == body) {
            Some((_, _, n)) => *n += 1,
            None => distinct.push((line, body, 1)),
        }
    }
    let kept = distinct
        .into_iter()
        .take(keep)
        .map(|(line, _, n)| {
            if n > 1 {
                format!("{line} (×{n})")
            } else {
                line
            }
        })
        .collect();
    (total, kept)
}

/// The non-empty lines of a log (etcd logs at warn level: each line is a warning or worse),
/// and the first `keep` of them shortened for the report.
fn log_lines(text: &str, keep: usize) -> (usize, Vec<String>) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let kept = lines
        .iter()
        .take(keep)
        .map(|l| l.chars().take(240).collect())
        .collect();
    (lines.len(), kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_log_lines_are_folded_whatever_their_timestamp() {
        let lines = vec![
            "2026-01-01T00:00:00Z  WARN store::etcd: old etcd".to_string(),
            "2026-01-01T00:00:05Z  WARN apiserver: slow".to_string(),
            "2026-01-01T00:00:09Z  WARN store::etcd: old etcd".to_string(),
        ];
        let (n, kept) = collapse_repeats(lines, 8);
        assert_eq!(n, 3);
        assert_eq!(
            kept,
            vec![
                "2026-01-01T00:00:00Z  WARN store::etcd: old etcd (×2)".to_string(),
                "2026-01-01T00:00:05Z  WARN apiserver: slow".to_string(),
            ]
        );
        let (_, kept) = collapse_repeats(vec!["a x".into(), "b y".into()], 1);
        assert_eq!(kept, vec!["a x".to_string()]);
    }

    #[test]
    fn log_lines_counts_non_empty_lines_and_keeps_the_first_shortened() {
        let long = "x".repeat(300);
        let text = format!("{{\"level\":\"warn\",\"msg\":\"slow\"}}\n\n{long}\nthird\n");
        let (n, kept) = log_lines(&text, 2);
        assert_eq!(n, 3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0], "{\"level\":\"warn\",\"msg\":\"slow\"}");
        assert_eq!(kept[1].chars().count(), 240);
        assert_eq!(log_lines("", 5), (0, Vec::new()));
    }
}
