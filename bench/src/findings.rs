//! Everything one run measured, and how it is printed: a header, one table per section with
//! targets and PASS/MISS marks, notes on anything odd, and a closing summary paragraph.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backed::BackedRun;
use crate::procfs::Memory;
use crate::report::{Table, Target, bytes, dur, int, mib, rate};
use crate::stats::Latencies;
use crate::workload::LoadResult;
use crate::workload::suite::Workload;
use crate::workload::watch::WatchResult;

pub(crate) const TARGET_CREATES: Target = Target::AtLeast(5000.0);
pub(crate) const TARGET_P99: Target = Target::Below(Duration::from_millis(10));
const TARGET_READY: Target = Target::Below(Duration::from_millis(300));
const TARGET_IDLE_RSS: Target = Target::BytesBelow(30 * 1024 * 1024);

/// The counts of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub fresh_starts: usize,
    pub restarts: usize,
    pub restarts_with_data: usize,
    /// Wait after ready before sampling idle memory.
    pub idle_wait: Duration,
    pub clients: usize,
    pub warmup: usize,
    /// ConfigMaps created (half of them land in the namespace the LIST phase reads).
    pub creates: usize,
    pub gets: usize,
    pub list_reps: usize,
    pub watchers: usize,
    pub watch_events: usize,
    pub watch_rate: f64,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            quick: false,
            fresh_starts: 5,
            restarts: 5,
            restarts_with_data: 3,
            idle_wait: Duration::from_secs(3),
            clients: 16,
            warmup: 800,
            creates: 20_000,
            gets: 40_000,
            list_reps: 10,
            watchers: 100,
            watch_events: 2_000,
            watch_rate: 200.0,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            quick: true,
            fresh_starts: 3,
            restarts: 3,
            restarts_with_data: 2,
            idle_wait: Duration::from_secs(2),
            clients: 16,
            warmup: 160,
            creates: 2_000,
            gets: 4_000,
            list_reps: 3,
            watchers: 100,
            watch_events: 300,
            watch_rate: 150.0,
        }
    }
}

#[derive(Default)]
pub struct StartupFindings {
    pub fresh: Vec<Duration>,
    pub restart: Vec<Duration>,
    pub restart_with_data: Vec<Duration>,
    /// SIGTERM to exit.
    pub stop: Vec<Duration>,
    pub error: Option<String>,
}

pub struct EtcdRun {
    pub version: String,
    pub ready_after: Duration,
    pub idle: Option<Memory>,
    pub after: Option<Memory>,
    pub load: LoadResult,
    /// Keys found under the put prefix afterwards.
    pub stored: Option<i64>,
    pub data_bytes: u64,
}

/// The outcome of an optional phase of the bench.
pub enum Phase<T> {
    NotRun,
    Skipped(String),
    Failed(String),
    Ran(Box<T>),
}

pub type EtcdFindings = Phase<EtcdRun>;

pub struct Findings {
    pub plan: Plan,
    pub server_bin: PathBuf,
    pub work_dir: PathBuf,
    pub startup: StartupFindings,
    pub idle_memory: Option<Memory>,
    pub after_memory: Option<Memory>,
    pub restarted_memory: Option<Memory>,
    pub threads_idle: Option<u64>,
    pub threads_after: Option<u64>,
    pub server_data_bytes: Option<u64>,
    /// The workload on keelson with its embedded store (sections 2-5).
    pub work: Workload,
    /// The same workload on keelson keeping its state in etcd (section 6).
    pub backed: Phase<BackedRun>,
    pub etcd: EtcdFindings,
    /// (count, first few) WARN/ERROR lines of the workload server's log.
    pub log_problems: (usize, Vec<String>),
    /// 4 KiB append + fdatasync latency of the data directories' disk.
    pub disk: Option<Latencies>,
    /// 1-minute load average when the bench started.
    pub loadavg_start: Option<String>,
    pub errors: Vec<String>,
    pub total: Duration,
}

impl Findings {
    pub fn new(plan: Plan, server_bin: &Path, work_dir: &Path) -> Findings {
        Findings {
            plan,
            server_bin: server_bin.to_path_buf(),
            work_dir: work_dir.to_path_buf(),
            startup: StartupFindings::default(),
            idle_memory: None,
            after_memory: None,
            restarted_memory: None,
            threads_idle: None,
            threads_after: None,
            server_data_bytes: None,
            work: Workload::default(),
            backed: Phase::NotRun,
            etcd: EtcdFindings::NotRun,
            log_problems: (0, Vec::new()),
            disk: None,
            loadavg_start: None,
            errors: Vec::new(),
            total: Duration::ZERO,
        }
    }

    /// Objects in the server at the end of the workload.
    pub fn stored_objects(&self) -> u64 {
        self.work.stored_objects(&self.plan)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.header());
        out.push_str(&self.startup_tables());
        if let Some(c) = &self.work.creates {
            out.push_str(&load_table(
                &format!("2. Creates: {} clients, {} ConfigMaps (~300 B of data, ~{} B JSON each), HTTPS/1.1 keep-alive", c.clients, int(self.plan.creates as u64), body_size()),
                "create",
                c,
                Some(TARGET_CREATES),
            ));
        }
        if let Some(g) = &self.work.gets {
            out.push_str(&load_table(
                &format!(
                    "3. GETs by name: {} clients, {} random reads of existing ConfigMaps",
                    g.clients,
                    int(self.plan.gets as u64)
                ),
                "get",
                g,
                None,
            ));
        }
        if !self.work.lists.is_empty() {
            out.push_str(&self.list_table());
        }
        if let Some(w) = &self.work.watch {
            out.push_str(&watch_table(w));
        }
        out.push_str(&self.layers_tables());
        out.push_str(&self.problems());
        let _ = writeln!(out, "\n== Summary ==\n{}", wrap(&self.summary(), 100));
        let _ = writeln!(out, "\n(bench run took {})", dur(self.total));
        out
    }

    fn header(&self) -> String {
        let mut s = String::new();
        let mode = if self.plan.quick {
            "QUICK run (--quick: small counts, figures are indicative only)"
        } else {
            "full run"
        };
        let _ = writeln!(s, "keelson control-plane benchmark — {mode}");
        let _ = writeln!(
            s,
            "server binary : {}{}",
            self.server_bin.display(),
            built_ago(&self.server_bin)
        );
        let _ = writeln!(s, "machine       : {}", machine_line());
        let _ = writeln!(
            s,
            "data dirs     : {} ({})",
            self.work_dir.display(),
            filesystem_of(&self.work_dir)
        );
        let _ = writeln!(
            s,
            "load average  : {} at the start (other work on the machine skews every figure)",
            self.loadavg_start.as_deref().unwrap_or("?")
        );
        if let Some(d) = &self.disk {
            let _ = writeln!(
                s,
                "disk          : 4 KiB append + fdatasync there: p50 {}, p99 {}, max {} ({} samples) — the floor under every durable write",
                dur(d.median()),
                dur(d.percentile(99.0)),
                dur(d.max()),
                d.len()
            );
        }
        let _ = writeln!(
            s,
            "load generator: this process, {} client connections (HTTP/1.1 over TLS with the admin client certificate, keep-alive), 2 runtime threads — it shares the cores with the server, so read CPU per request as the cost figure",
            self.plan.clients
        );
        s
    }

    fn startup_tables(&self) -> String {
        let st = &self.startup;
        let mut t = Table::new(
            "1. Start-up: spawn → first `ok` from GET /readyz",
            &["", "median", "min", "max", "runs", "target", ""],
        );
        let mut row = |label: &str, samples: &[Duration], target: Option<Target>| {
            let l = Latencies::from_durations(samples);
            if l.is_empty() {
                t.row([
                    label.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "0".into(),
                ]);
                return;
            }
            let (tgt, verdict) = target.map_or((String::new(), ""), |tg| {
                (tg.describe(), tg.verdict_dur(l.median()))
            });
            t.row([
                label.to_string(),
                dur(l.median()),
                dur(l.min()),
                dur(l.max()),
                l.len().to_string(),
                tgt,
                verdict.to_string(),
            ]);
        };
        row(
            "fresh data dir (certificates generated)",
            &st.fresh,
            Some(TARGET_READY),
        );
        row(
            "restart, existing data dir (empty cluster)",
            &st.restart,
            Some(TARGET_READY),
        );
        row(
            &format!(
                "restart with the workload's {} objects",
                int(self.stored_objects())
            ),
            &st.restart_with_data,
            Some(TARGET_READY),
        );
        row("graceful stop (SIGTERM → exit)", &st.stop, None);
        if let Some(e) = &st.error {
            t.note(format!("ERROR: {e}"));
        }
        let mut out = t.render();

        let mut m = Table::new(
            "1b. Memory of the server process (VmRSS from /proc/PID/status)",
            &["", "value", "target", ""],
        );
        let idle_wait = format!("{} s", self.plan.idle_wait.as_secs());
        match self.idle_memory {
            Some(mem) => m.row([
                format!("idle RSS, {idle_wait} after ready (fresh, empty)"),
                mib(mem.rss),
                TARGET_IDLE_RSS.describe(),
                TARGET_IDLE_RSS.verdict_bytes(mem.rss).to_string(),
            ]),
            None => m.row(["idle RSS".to_string(), "unavailable".to_string()]),
        }
        if let Some(mem) = self.after_memory {
            m.row([
                format!(
                    "RSS after the workload ({} objects stored)",
                    int(self.stored_objects())
                ),
                mib(mem.rss),
            ]);
            m.row([
                "peak RSS during the workload (VmHWM)".to_string(),
                mib(mem.peak),
            ]);
        }
        if let Some(mem) = self.restarted_memory {
            m.row([
                format!("idle RSS after restart with that data ({idle_wait} after ready)"),
                mib(mem.rss),
            ]);
        }
        if let Some(b) = self.server_data_bytes {
            m.row([
                "data dir size after the workload (db/)".to_string(),
                bytes(b),
            ]);
        }
        if let (Some(a), Some(b)) = (self.threads_idle, self.threads_after) {
            m.row([
                format!(
                    "threads ({} s after ready → after the workload)",
                    self.plan.idle_wait.as_secs()
                ),
                format!("{a} → {b}"),
            ]);
        }
        out.push_str(&m.render());
        out
    }

    fn list_table(&self) -> String {
        let objects = self.plan.creates.div_ceil(2);
        let reps = self.plan.list_reps;
        let mut t = Table::new(
            format!(
                "4. LIST of a namespace holding {} ConfigMaps (1 client; first run, then {reps} timed repetitions)",
                int(objects as u64)
            ),
            &[
                "list",
                "items",
                "pages",
                "response",
                "first",
                "median",
                "p99",
                "max",
                "server CPU/list",
            ],
        );
        for r in &self.work.lists {
            if r.latencies.is_empty() {
                t.row([r.shape.label(), "FAILED".to_string()]);
            } else {
                t.row([
                    r.shape.label(),
                    int(r.items as u64),
                    r.pages.to_string(),
                    bytes(r.bytes),
                    dur(r.first),
                    dur(r.latencies.median()),
                    dur(r.latencies.percentile(99.0)),
                    dur(r.latencies.max()),
                    r.server_cpu_per_list.map_or("-".to_string(), dur),
                ]);
            }
            if r.bad_runs > 0 {
                t.note(format!(
                    "{}: {} of {reps} repetitions failed or did not return {} items",
                    r.shape.label(),
                    r.bad_runs,
                    int(objects as u64)
                ));
            }
            if let Some(e) = &r.error {
                t.note(format!("{}: ERROR {e}", r.shape.label()));
            }
        }
        t.note(format!(
            "paged = sum of the page round-trips; the client decodes each page for `continue` between pages, off the clock. p99 of {reps} runs is close to the max."
        ));
        t.render()
    }

    fn problems(&self) -> String {
        let mut s = String::from("\n== Problems seen ==\n");
        let mut any = false;
        for e in self.errors.iter().chain(&self.work.errors) {
            let _ = writeln!(s, "  bench: {e}");
            any = true;
        }
        let (n, lines) = &self.log_problems;
        if *n > 0 {
            any = true;
            let _ = writeln!(
                s,
                "  server log: {n} WARN/ERROR/panic lines (not counting /readyz 500s while starting); the first {}:",
                lines.len()
            );
            for l in lines {
                let _ = writeln!(s, "    {l}");
            }
        }
        if let Some(text) = self.backed_problems() {
            any = true;
            s.push_str(&text);
        }
        if !any {
            s.push_str(
                "  none (no bench errors, no WARN/ERROR lines in the workload servers' or the backing etcd's logs)\n",
            );
        }
        s
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let fresh = Latencies::from_durations(&self.startup.fresh);
        let restart = Latencies::from_durations(&self.startup.restart);
        let with_data = Latencies::from_durations(&self.startup.restart_with_data);
        if !fresh.is_empty() {
            let mut s = format!(
                "keelson became ready in {} from a fresh data dir ({} against < 300 ms)",
                dur(fresh.median()),
                TARGET_READY.verdict_dur(fresh.median())
            );
            if !restart.is_empty() {
                let _ = write!(s, ", {} on a restart", dur(restart.median()));
            }
            if !with_data.is_empty() {
                let _ = write!(
                    s,
                    " and {} on a restart holding {} objects",
                    dur(with_data.median()),
                    int(self.stored_objects())
                );
            }
            parts.push(s);
        }
        if let Some(m) = self.idle_memory {
            let mut s = format!(
                "it idles at {} RSS ({} against < 30 MiB)",
                mib(m.rss),
                TARGET_IDLE_RSS.verdict_bytes(m.rss)
            );
            if let Some(a) = self.after_memory {
                let _ = write!(s, " and holds {} after the workload", mib(a.rss));
            }
            parts.push(s);
        }
        let mut text = parts
            .iter()
            .map(|p| capitalize(p) + ".")
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(c) = &self.work.creates {
            let p99 = c.latencies.percentile(99.0);
            let _ = write!(
                text,
                " {} clients created {} ConfigMaps/s ({}) with p50 {} and p99 {} ({})",
                c.clients,
                int(c.per_sec().round() as u64),
                TARGET_CREATES.verdict_rate(c.per_sec()),
                dur(c.latencies.median()),
                dur(p99),
                TARGET_P99.verdict_dur(p99)
            );
            if let Some(cpu) = c.server_cpu_per_req() {
                let _ = write!(
                    text,
                    ", spending {} of server CPU per create (≈ {} creates per core-second)",
                    dur(cpu),
                    per_core(cpu)
                );
            }
            if c.errors > 0 {
                let _ = write!(text, ", with {} failed creates", int(c.errors));
            }
            text.push('.');
            if let Some(other) = other_cores(c)
                && other > 0.25
            {
                let _ = write!(
                    text,
                    " Other processes kept {other:.2} cores busy during that run, so its rate and latency are understated; CPU per request is the steadier figure."
                );
            }
        }
        if let Some(g) = &self.work.gets {
            let _ = write!(
                text,
                " Reads by name ran at {}/s (p99 {}",
                int(g.per_sec().round() as u64),
                dur(g.latencies.percentile(99.0))
            );
            if let Some(cpu) = g.server_cpu_per_req() {
                let _ = write!(text, ", {} server CPU each", dur(cpu));
            }
            text.push_str(").");
        }
        if !self.work.lists.is_empty() {
            let items = int(self.plan.creates.div_ceil(2) as u64);
            let parts: Vec<String> = self
                .work
                .lists
                .iter()
                .filter(|r| !r.latencies.is_empty())
                .map(|r| format!("{} {}", r.shape.label(), dur(r.latencies.median())))
                .collect();
            if !parts.is_empty() {
                let size = self.work.lists.first().map_or(0, |r| r.bytes);
                let _ = write!(
                    text,
                    " Listing {items} ConfigMaps ({}) took (median) {}.",
                    bytes(size),
                    parts.join(", ")
                );
            }
        }
        if let Some(w) = &self.work.watch {
            let exact = if w.exact_watchers == w.watchers {
                "every watcher got every event exactly once".to_string()
            } else {
                format!(
                    "only {} of {} watchers got every event exactly once",
                    w.exact_watchers, w.watchers
                )
            };
            let _ = write!(
                text,
                " {} watchers saw {} events written at {}/s with delivery latency p50 {}, p99 {}, max {}; {exact}.",
                w.watchers,
                int(w.events as u64),
                w.write_rate.round(),
                dur(w.latencies.median()),
                dur(w.latencies.percentile(99.0)),
                dur(w.latencies.max())
            );
            if let Some(Ok(p)) = &w.quiet_probe
                && p.status != http::StatusCode::OK
            {
                let _ = write!(
                    text,
                    " However, a watch from the resourceVersion of a list taken when the newest write was to another resource was answered HTTP {} after {} instead of starting (the informer pattern on a quiet resource).",
                    p.status.as_u16(),
                    dur(p.after)
                );
            }
        }
        text.push_str(&self.backed_summary());
        match &self.etcd {
            EtcdFindings::Ran(r) => {
                let e = &r.load;
                let _ = write!(
                    text,
                    " For comparison, etcd on the same machine did {} puts/s (p99 {}",
                    int(e.per_sec().round() as u64),
                    dur(e.latencies.percentile(99.0))
                );
                if let Some(cpu) = e.server_cpu_per_req() {
                    let _ = write!(text, ", {} of CPU per put", dur(cpu));
                }
                let on_etcd = match &self.backed {
                    Phase::Ran(b) => b.work.creates.as_ref(),
                    _ => None,
                };
                match (&self.work.creates, on_etcd) {
                    (Some(c), Some(b)) => {
                        let _ = write!(
                            text,
                            "), so keelson's creates ran at {:.2}× etcd's raw put rate on the embedded store and {:.2}× on etcd",
                            c.per_sec() / e.per_sec().max(1e-9),
                            b.per_sec() / e.per_sec().max(1e-9)
                        );
                    }
                    (Some(c), None) => {
                        let _ = write!(
                            text,
                            "), so keelson's creates ran at {:.2}× etcd's raw put rate",
                            c.per_sec() / e.per_sec().max(1e-9)
                        );
                    }
                    _ => text.push(')'),
                }
                text.push('.');
            }
            EtcdFindings::Skipped(why) | EtcdFindings::Failed(why) => {
                let _ = write!(text, " The etcd comparison did not run: {why}.");
            }
            EtcdFindings::NotRun => {}
        }
        if self.plan.quick {
            text.push_str(" (Quick run: counts are small, so treat these figures as a smoke test, not a measurement.)");
        }
        text.trim().to_string()
    }
}

fn load_table(title: &str, verb: &str, r: &LoadResult, rate_target: Option<Target>) -> String {
    let mut t = Table::new(title, &["", "value", "target", ""]);
    t.row([format!("{verb}s answered OK"), int(r.ok)]);
    t.row(["errors".to_string(), int(r.errors)]);
    t.row(["wall time".to_string(), dur(r.wall)]);
    match rate_target {
        Some(tg) => t.row([
            format!("{verb}s/s"),
            rate(r.per_sec()),
            tg.describe(),
            tg.verdict_rate(r.per_sec()).to_string(),
        ]),
        None => t.row([format!("{verb}s/s"), rate(r.per_sec())]),
    }
    if r.quarters.len() > 1 {
        t.row([
            format!("{verb}s/s in each quarter of the run"),
            quarters(&r.quarters),
        ]);
    }
    let l = &r.latencies;
    t.row(["latency mean".to_string(), dur(l.mean())]);
    t.row(["latency p50".to_string(), dur(l.median())]);
    t.row(["latency p90".to_string(), dur(l.percentile(90.0))]);
    let p99 = l.percentile(99.0);
    t.row([
        "latency p99".to_string(),
        dur(p99),
        TARGET_P99.describe(),
        TARGET_P99.verdict_dur(p99).to_string(),
    ]);
    t.row(["latency p99.9".to_string(), dur(l.percentile(99.9))]);
    t.row(["latency max".to_string(), dur(l.max())]);
    if let Some(cpu) = r.server_cpu_per_req() {
        t.row([
            format!("server CPU per {verb}"),
            dur(cpu),
            format!("≈ {}/s per core", int(per_core_n(cpu))),
        ]);
    }
    if let Some(cpu) = r.client_cpu_per_req() {
        t.row([format!("load-generator CPU per {verb}"), dur(cpu)]);
    }
    if let Some(note) = cores_note(r) {
        t.note(note);
    }
    if !l.is_empty() {
        // Little's law for a closed loop: the rate can only rise if latency falls.
        t.note(format!(
            "closed loop: {} clients / mean latency {} = {} at most",
            r.clients,
            dur(l.mean()),
            rate(r.clients as f64 / l.mean().as_secs_f64().max(1e-9))
        ));
    }
    if let Some(e) = &r.first_error {
        t.note(format!("first error: {e}"));
    }
    t.render()
}

fn watch_table(w: &WatchResult) -> String {
    let mut t = Table::new(
        format!(
            "5. Watch fan-out: {} watchers on one namespace's ConfigMaps, one writer creating at a steady rate",
            w.watchers
        ),
        &["", "value", ""],
    );
    t.row([
        "watchers established before the first write".to_string(),
        format!("{} of {}", w.established, w.watchers),
    ]);
    t.row([
        "events written".to_string(),
        format!("{} at {:.0}/s", int(w.writes.len() as u64), w.write_rate),
        if w.write_errors > 0 {
            format!("{} write errors", w.write_errors)
        } else {
            String::new()
        },
    ]);
    t.row([
        "writer create latency p50 / p99".to_string(),
        format!(
            "{} / {}",
            dur(w.writes.median()),
            dur(w.writes.percentile(99.0))
        ),
    ]);
    let expected = (w.watchers * w.events) as u64;
    t.row([
        "deliveries (watcher × event)".to_string(),
        format!("{} of {}", int(w.latencies.len() as u64), int(expected)),
    ]);
    let some = |d: Duration| {
        if w.latencies.is_empty() {
            "-".to_string()
        } else {
            dur(d)
        }
    };
    t.row([
        "delivery latency p50".to_string(),
        some(w.latencies.median()),
    ]);
    t.row([
        "delivery latency p99".to_string(),
        some(w.latencies.percentile(99.0)),
    ]);
    t.row(["delivery latency max".to_string(), some(w.latencies.max())]);
    t.row(["last write → last delivery".to_string(), some(w.drain)]);
    let exact =
        w.exact_watchers == w.watchers && w.missing == 0 && w.duplicates == 0 && w.unexpected == 0;
    t.row([
        "every watcher got every event exactly once".to_string(),
        format!("{} of {} watchers", w.exact_watchers, w.watchers),
        if exact {
            "PASS".to_string()
        } else {
            "FAIL".to_string()
        },
    ]);
    t.row([
        "missing / duplicate / unexpected events".to_string(),
        format!(
            "{} / {} / {}",
            int(w.missing),
            int(w.duplicates),
            int(w.unexpected)
        ),
    ]);
    if let Some(cpu) = w.server_cpu {
        let delivered = w.latencies.len().max(1) as u32;
        t.row([
            "server CPU per delivered event".to_string(),
            dur(cpu / delivered),
            format!(
                "({} per write incl. fan-out)",
                dur(cpu / (w.writes.len().max(1) as u32))
            ),
        ]);
    }
    let probe_label = "list → watch from its RV, newest write to another resource".to_string();
    match &w.quiet_probe {
        Some(Ok(p)) if p.status == http::StatusCode::OK => t.row([
            probe_label,
            format!("HTTP 200 after {}", dur(p.after)),
            "PASS".to_string(),
        ]),
        Some(Ok(p)) => {
            t.row([
                probe_label,
                format!("HTTP {} after {}", p.status.as_u16(), dur(p.after)),
                "FAIL".to_string(),
            ]);
            t.note(format!("that watch was answered: {}", p.message));
        }
        Some(Err(e)) => t.row([probe_label, format!("probe failed: {e}")]),
        None => {}
    }
    if w.broken_streams > 0 {
        t.note(format!(
            "{} watch streams broke before the end of the run",
            w.broken_streams
        ));
    }
    if let Some(e) = &w.first_error {
        t.note(format!("first error: {e}"));
    }
    t.note(format!(
        "latency = create request sent → event line received by the watcher (the {} watchers share the bench's 2 threads).",
        w.watchers
    ));
    t.note(
        "a primer ConfigMap is written before the list the watches start from; the last row checks the case without it.",
    );
    t.render()
}

/// " (built N min ago)" from the file's modification time.
fn built_ago(bin: &Path) -> String {
    std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or_else(String::new, |age| {
            format!(" (built {} min ago)", age.as_secs() / 60)
        })
}

/// "cores busy during the run: server 1.29, load generator 0.24, other processes 0.05 (of 2)".
/// Cores used by processes other than the server and the load generator during a run.
pub(crate) fn other_cores(r: &LoadResult) -> Option<f64> {
    let wall = r.wall.as_secs_f64().max(1e-9);
    let store = r.store_cpu.unwrap_or_default().as_secs_f64();
    let busy = r.machine_cpu?.as_secs_f64()
        - r.server_cpu?.as_secs_f64()
        - store
        - r.client_cpu?.as_secs_f64();
    // Tick rounding can make the remainder slightly negative.
    Some((busy / wall).max(0.0))
}

pub(crate) fn cores_note(r: &LoadResult) -> Option<String> {
    let (s, c) = (r.server_cpu?, r.client_cpu?);
    let wall = r.wall.as_secs_f64().max(1e-9);
    let cores = |d: Duration| d.as_secs_f64() / wall;
    let mut note = format!("cores busy during the run: server {:.2}", cores(s));
    if let Some(st) = r.store_cpu {
        note.push_str(&format!(", etcd {:.2}", cores(st)));
    }
    note.push_str(&format!(", load generator {:.2}", cores(c)));
    if let Some(other) = other_cores(r) {
        note.push_str(&format!(", other processes {other:.2}"));
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    note.push_str(&format!(" (of {cpus})"));
    Some(note)
}

/// Rates of consecutive slices of a run: "5,100 → 4,200 → 3,900 → 3,800 /s".
pub(crate) fn quarters(rates: &[f64]) -> String {
    let parts: Vec<String> = rates.iter().map(|r| int(r.round() as u64)).collect();
    format!("{} /s", parts.join(" → "))
}

/// Requests one core could serve at `cpu` each.
fn per_core_n(cpu: Duration) -> u64 {
    if cpu.is_zero() {
        0
    } else {
        (1.0 / cpu.as_secs_f64()).round() as u64
    }
}

pub(crate) fn per_core(cpu: Duration) -> String {
    int(per_core_n(cpu))
}

/// The text with its first letter in upper case.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// Serialized size of one benchmark ConfigMap.
pub(crate) fn body_size() -> usize {
    crate::workload::configmap_json(&crate::workload::object_name("cm", 0)).len()
}

/// Word-wraps a paragraph at `width` columns.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if line_len > 0 && line_len + 1 + w > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += w;
    }
    out
}

fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_string(), |k| k.trim().to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("MemTotal:")).map(|l| {
                l.trim_start_matches("MemTotal:")
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .to_string()
            })
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or_else(
            || "?".to_string(),
            |kb| format!("{:.0} GiB", kb as f64 / (1024.0 * 1024.0)),
        );
    format!("{cpus} CPUs ({model}), {mem} RAM, Linux {kernel}")
}

/// The filesystem type holding `path`, from the longest matching mount point in /proc/mounts.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "filesystem unknown".to_string();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, mnt, fs) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mnt)
                .then(|| (mnt.len(), format!("{fs} at {mnt}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "filesystem unknown".to_string(), |(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_paragraphs_at_word_boundaries() {
        assert_eq!(wrap("aa bb cc dd", 5), "aa bb\ncc dd");
        assert_eq!(wrap("  one   two ", 80), "one two");
        assert_eq!(wrap("", 10), "");
    }

    #[test]
    fn capitalizes_sentences() {
        assert_eq!(capitalize("keelson idles"), "Keelson idles");
        assert_eq!(capitalize(""), "");
    }

    #[test]
    fn per_core_capacity_is_the_inverse_of_cpu_per_request() {
        assert_eq!(per_core_n(Duration::from_micros(200)), 5000);
        assert_eq!(per_core_n(Duration::ZERO), 0);
    }

    #[test]
    fn other_processes_exclude_the_server_its_store_and_the_load_generator() {
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        // 2 s of wall time: machine 3.0 core-s, server 1.0, etcd 0.6, load generator 0.4.
        let r = crate::workload::fake_result(
            100,
            Duration::from_secs(2),
            &[1],
            [secs(1.0), secs(0.6), secs(0.4), secs(3.0)],
        );
        let other = other_cores(&r).expect("all meters read");
        assert!((other - 0.5).abs() < 1e-9, "{other}");
        let note = cores_note(&r).expect("note");
        assert!(
            note.starts_with("cores busy during the run: server 0.50, etcd 0.30, load generator 0.20, other processes 0.50"),
            "{note}"
        );
        // No store process: nothing subtracted for it, no etcd in the note.
        let r = crate::workload::fake_result(
            100,
            Duration::from_secs(2),
            &[1],
            [secs(1.0), None, secs(0.4), secs(3.0)],
        );
        assert!((other_cores(&r).expect("meters") - 0.8).abs() < 1e-9);
        assert!(!cores_note(&r).expect("note").contains("etcd"));
    }

    #[test]
    fn full_plan_lists_ten_thousand_objects() {
        let p = Plan::full();
        assert_eq!(p.creates.div_ceil(2), 10_000);
        assert_eq!((p.clients, p.watchers), (16, 100));
        let q = Plan::quick();
        assert!(q.quick && q.creates < p.creates);
    }
}
