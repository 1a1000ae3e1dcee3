//! Section 6 of the report: what each layer costs. The same writes go through keelson on its
//! embedded store, keelson on etcd, and straight into etcd as gRPC `Put`s; one table puts the
//! three side by side (rate, latency, CPU of every server-side process, the other processes'
//! share of the machine during each run), a second compares keelson's reads, lists and
//! start-up on etcd with the embedded store.
//!
//! A phase that did not run leaves its column as `-` and says why under the table.

use std::fmt::Write as _;
use std::time::Duration;

use crate::backed::BackedRun;
use crate::findings::{EtcdRun, Findings, Phase, body_size, cores_note, other_cores, quarters};
use crate::report::{Table, bytes, dur, int, mib, rate};
use crate::stats::Latencies;
use crate::workload::LoadResult;
use crate::workload::list::{ListResult, ListShape};

const NONE: &str = "-";

/// `a / b` as "1.23×", or "-" when either is missing or `b` is zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => NONE.to_string(),
    }
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn cell<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| NONE.to_string(), show)
}

/// The median of `samples`, None when there are none.
fn median(samples: &[Duration]) -> Option<Duration> {
    let l = Latencies::from_durations(samples);
    (!l.is_empty()).then(|| l.median())
}

fn p(l: &Latencies, pct: f64) -> Option<Duration> {
    (!l.is_empty()).then(|| l.percentile(pct))
}

/// "keelson 1.2 ms + etcd 0.4 ms": a list's CPU on each server-side process.
fn list_cpu(r: &ListResult) -> String {
    match (r.server_cpu_per_list, r.store_cpu_per_list) {
        (Some(k), Some(e)) => format!("{} + etcd {}", dur(k), dur(e)),
        (Some(k), None) => dur(k),
        _ => NONE.to_string(),
    }
}

/// Rows comparing three write runs: keelson embedded, keelson on etcd, etcd alone.
struct Writes<'a> {
    embedded: Option<&'a LoadResult>,
    on_etcd: Option<&'a LoadResult>,
    etcd: Option<&'a LoadResult>,
}

impl Writes<'_> {
    /// A row of durations with each keelson column's ratio to etcd alone.
    fn dur_row(&self, t: &mut Table, label: &str, f: impl Fn(&LoadResult) -> Option<Duration>) {
        let (a, b, c) = (
            self.embedded.and_then(&f),
            self.on_etcd.and_then(&f),
            self.etcd.and_then(&f),
        );
        t.row([
            label.to_string(),
            cell(a, dur),
            cell(b, dur),
            cell(c, dur),
            ratio(secs(a), secs(c)),
            ratio(secs(b), secs(c)),
        ]);
    }
}

impl Findings {
    /// Sections 6 and 6b.
    pub(crate) fn layers_tables(&self) -> String {
        let backed = match &self.backed {
            Phase::Ran(b) => Some(b.as_ref()),
            _ => None,
        };
        let etcd = match &self.etcd {
            Phase::Ran(e) => Some(e.as_ref()),
            _ => None,
        };
        let mut out = self.writes_table(backed, etcd);
        if let Some(b) = backed {
            out.push_str(&self.reads_table(b));
        }
        out
    }

    fn writes_table(&self, backed: Option<&BackedRun>, etcd: Option<&EtcdRun>) -> String {
        let w = Writes {
            embedded: self.work.creates.as_ref(),
            on_etcd: backed.and_then(|b| b.work.creates.as_ref()),
            etcd: etcd.map(|e| &e.load),
        };
        let version = backed
            .map(|b| b.version.as_str())
            .or(etcd.map(|e| e.version.as_str()))
            .unwrap_or("etcd");
        let mut t = Table::new(
            format!(
                "6. The cost of each layer: {} clients writing the same {} ConfigMaps (~{} B JSON) through keelson on its embedded store, keelson on etcd, and into etcd directly ({version})",
                self.plan.clients,
                int(self.plan.creates as u64),
                body_size()
            ),
            &[
                "",
                "keelson, embedded",
                "keelson on etcd",
                "etcd alone: Put",
                "embedded ÷ etcd",
                "on etcd ÷ etcd",
            ],
        );
        let count_row = |label: &str, f: &dyn Fn(&LoadResult) -> u64| {
            [
                label.to_string(),
                cell(w.embedded.map(f), int),
                cell(w.on_etcd.map(f), int),
                cell(w.etcd.map(f), int),
            ]
        };
        t.row(count_row("writes answered OK", &|r| r.ok));
        t.row(count_row("errors", &|r| r.errors));
        let per_sec = |r: Option<&LoadResult>| r.map(LoadResult::per_sec);
        t.row([
            "writes/s".to_string(),
            cell(per_sec(w.embedded), rate),
            cell(per_sec(w.on_etcd), rate),
            cell(per_sec(w.etcd), rate),
            ratio(per_sec(w.embedded), per_sec(w.etcd)),
            ratio(per_sec(w.on_etcd), per_sec(w.etcd)),
        ]);
        let q = |r: Option<&LoadResult>| cell(r, |r| quarters(&r.quarters));
        t.row([
            "writes/s by quarter of the run".to_string(),
            q(w.embedded),
            q(w.on_etcd),
            q(w.etcd),
        ]);
        w.dur_row(&mut t, "latency p50", |r| p(&r.latencies, 50.0));
        w.dur_row(&mut t, "latency p99", |r| p(&r.latencies, 99.0));
        w.dur_row(&mut t, "latency max", |r| p(&r.latencies, 100.0));
        // Whose CPU each figure is: keelson's process in the keelson columns, etcd's in the
        // etcd column; keelson on etcd also has its etcd's.
        t.row([
            "keelson CPU per write".to_string(),
            cell(w.embedded.and_then(LoadResult::server_cpu_per_req), dur),
            cell(w.on_etcd.and_then(LoadResult::server_cpu_per_req), dur),
            NONE.to_string(),
        ]);
        t.row([
            "etcd CPU per write".to_string(),
            NONE.to_string(),
            cell(w.on_etcd.and_then(LoadResult::store_cpu_per_req), dur),
            cell(w.etcd.and_then(LoadResult::server_cpu_per_req), dur),
        ]);
        w.dur_row(
            &mut t,
            "server-side CPU per write (all)",
            LoadResult::server_side_cpu_per_req,
        );
        w.dur_row(
            &mut t,
            "load-generator CPU per write",
            LoadResult::client_cpu_per_req,
        );
        let other = |r: Option<&LoadResult>| cell(r.and_then(other_cores), |c| format!("{c:.2}"));
        t.row([
            "other processes, cores busy".to_string(),
            other(w.embedded),
            other(w.on_etcd),
            other(w.etcd),
        ]);
        t.row([
            "start-to-ready, fresh".to_string(),
            cell(median(&self.startup.fresh), dur),
            cell(backed.map(|b| b.first_start), dur),
            cell(etcd.map(|e| e.ready_after), dur),
            ratio(
                secs(median(&self.startup.fresh)),
                secs(etcd.map(|e| e.ready_after)),
            ),
            ratio(
                secs(backed.map(|b| b.first_start)),
                secs(etcd.map(|e| e.ready_after)),
            ),
        ]);
        let rss = |m: Option<crate::procfs::Memory>| cell(m, |m| mib(m.rss));
        t.row([
            "RSS idle: keelson".to_string(),
            rss(self.idle_memory),
            rss(backed.and_then(|b| b.idle)),
            NONE.to_string(),
        ]);
        t.row([
            "RSS after the writes: keelson".to_string(),
            rss(self.after_memory),
            rss(backed.and_then(|b| b.after)),
            NONE.to_string(),
        ]);
        t.row([
            "RSS idle: etcd".to_string(),
            NONE.to_string(),
            NONE.to_string(),
            rss(etcd.and_then(|e| e.idle)),
        ]);
        t.row([
            "RSS after the writes: etcd".to_string(),
            NONE.to_string(),
            rss(backed.and_then(|b| b.etcd_after)),
            rss(etcd.and_then(|e| e.after)),
        ]);
        t.row([
            "data on disk after the writes".to_string(),
            cell(self.server_data_bytes, bytes),
            cell(backed.map(|b| b.etcd_data_bytes), bytes),
            cell(etcd.map(|e| e.data_bytes), bytes),
        ]);

        for (name, r) in [
            ("keelson, embedded", w.embedded),
            ("keelson on etcd", w.on_etcd),
            ("etcd alone", w.etcd),
        ] {
            if let Some(note) = r.and_then(cores_note) {
                t.note(format!("{name} run, {note}"));
            }
            if let Some(r) = r
                && let Some(e) = &r.first_error
            {
                t.note(format!(
                    "{name}: {} writes failed; first: {e}",
                    int(r.errors)
                ));
            }
        }
        match &self.backed {
            Phase::Ran(b) => match (b.stored, b.work.creates.as_ref()) {
                (Some(n), Some(c)) if n == c.ok as i64 => t.note(format!(
                    "keelson on etcd: etcd holds {} keys for the creates afterwards, as expected",
                    int(c.ok)
                )),
                (Some(n), Some(c)) => t.note(format!(
                    "CHECK: keelson on etcd: etcd holds {n} keys for the creates, expected {}",
                    c.ok
                )),
                _ => t.note("keelson on etcd: could not count the created keys in etcd"),
            },
            other => t.note(format!("keelson on etcd: {}", phase_why(other))),
        }
        match &self.etcd {
            Phase::Ran(r) => match r.stored {
                Some(n) if n == r.load.ok as i64 => t.note(format!(
                    "etcd alone holds {} keys under the prefix afterwards, as expected",
                    int(n as u64)
                )),
                Some(n) => t.note(format!(
                    "CHECK: etcd alone holds {n} keys under the prefix, expected {}",
                    r.load.ok
                )),
                None => t.note("could not count etcd's keys afterwards"),
            },
            other => t.note(format!("etcd alone: {}", phase_why(other))),
        }
        t.note("Each etcd is a fresh single-member etcd (its own empty data dir) on loopback; keelson reaches its etcd over");
        t.note("plaintext gRPC like the bench does, clients reach keelson over TLS with client certificates. keelson also pays");
        t.note("for TLS, HTTP/1.1, JSON decoding, validation and encoding of the reply; on etcd a create is one etcd transaction.");
        t.note("keelson columns are from the same sequence (warm-up, then the timed creates); the embedded column is section 2.");
        let etcd_up = backed.map_or(String::new(), |b| {
            format!(", itself ready in {}", dur(b.etcd_ready_after))
        });
        t.note(format!(
            "'fresh' start: keelson on a new data dir (certificates generated; on etcd the etcd was already up, empty{etcd_up}),"
        ));
        t.note("etcd on a new data dir. The embedded RSS/data figures include the warm-up and watch objects; etcd's data dir");
        t.note("is mostly its preallocated 64 MiB WAL segment. Every store fsyncs each acknowledged write.");
        t.render()
    }

    fn reads_table(&self, b: &BackedRun) -> String {
        let mut t = Table::new(
            format!(
                "6b. keelson on etcd against keelson on its embedded store: reads, lists of {} objects, start-up",
                int(self.plan.creates.div_ceil(2) as u64)
            ),
            &[
                "",
                "keelson, embedded",
                "keelson on etcd",
                "on etcd ÷ embedded",
            ],
        );
        let dur_row = |t: &mut Table, label: String, a: Option<Duration>, b: Option<Duration>| {
            t.row([label, cell(a, dur), cell(b, dur), ratio(secs(b), secs(a))]);
        };
        let (eg, bg) = (self.work.gets.as_ref(), b.work.gets.as_ref());
        let per_sec = |r: Option<&LoadResult>| r.map(LoadResult::per_sec);
        t.row([
            format!("GETs by name/s ({} clients)", self.plan.clients),
            cell(per_sec(eg), rate),
            cell(per_sec(bg), rate),
            ratio(per_sec(bg), per_sec(eg)),
        ]);
        for (label, pct) in [("GET latency p50", 50.0), ("GET latency p99", 99.0)] {
            dur_row(
                &mut t,
                label.to_string(),
                eg.and_then(|r| p(&r.latencies, pct)),
                bg.and_then(|r| p(&r.latencies, pct)),
            );
        }
        dur_row(
            &mut t,
            "keelson CPU per GET".to_string(),
            eg.and_then(LoadResult::server_cpu_per_req),
            bg.and_then(LoadResult::server_cpu_per_req),
        );
        t.row([
            "etcd CPU per GET".to_string(),
            NONE.to_string(),
            cell(bg.and_then(LoadResult::store_cpu_per_req), dur),
        ]);
        let other = |r: Option<&LoadResult>| cell(r.and_then(other_cores), |c| format!("{c:.2}"));
        t.row([
            "other processes during the GETs, cores busy".to_string(),
            other(eg),
            other(bg),
        ]);
        for shape in ListShape::ALL {
            let (el, bl) = (
                of_shape(&self.work.lists, shape),
                of_shape(&b.work.lists, shape),
            );
            let med = |r: Option<&ListResult>| r.and_then(|r| p(&r.latencies, 50.0));
            let max = |r: Option<&ListResult>| r.and_then(|r| p(&r.latencies, 100.0));
            dur_row(
                &mut t,
                format!("LIST {}: median", shape.label()),
                med(el),
                med(bl),
            );
            dur_row(&mut t, "    max".to_string(), max(el), max(bl));
            t.row([
                "    CPU per list".to_string(),
                cell(el, list_cpu),
                cell(bl, list_cpu),
            ]);
            if let Some(r) = bl {
                if r.bad_runs > 0 {
                    t.note(format!(
                        "keelson on etcd, LIST {}: {} repetitions failed or returned the wrong count",
                        shape.label(),
                        r.bad_runs
                    ));
                }
                if let Some(e) = &r.error {
                    t.note(format!(
                        "keelson on etcd, LIST {}: ERROR {e}",
                        shape.label()
                    ));
                }
            }
        }
        let st = &self.startup;
        dur_row(
            &mut t,
            "start-to-ready, fresh data dir".to_string(),
            median(&st.fresh),
            Some(b.first_start),
        );
        dur_row(
            &mut t,
            "start-to-ready, restart (empty cluster)".to_string(),
            median(&st.restart),
            median(&b.restarts),
        );
        dur_row(
            &mut t,
            "start-to-ready, restart holding the workload".to_string(),
            median(&st.restart_with_data),
            median(&b.restart_with_data),
        );
        if let Some(note) = bg.and_then(cores_note) {
            t.note(format!("keelson on etcd, GETs: {note}"));
        }
        if let Some(e) = bg.and_then(|g| g.first_error.as_ref()) {
            t.note(format!("keelson on etcd, GETs: first error: {e}"));
        }
        t.note(format!(
            "start-up: medians of {} / {} restarts; keelson on etcd's fresh start is one run (etcd already up, empty).",
            b.restarts.len(),
            b.restart_with_data.len()
        ));
        t.note(format!(
            "'holding the workload': {} objects on the embedded store (warm-up, creates, watch), {} in etcd (no watch phase).",
            int(self.stored_objects()),
            int(b.stored_objects(&self.plan))
        ));
        t.note("CPU per list: keelson's process, + its etcd's. LIST timings are the median and max of the same repetitions as section 4.");
        t.render()
    }
}

impl Findings {
    /// The summary's sentences on keelson on etcd (empty when it did not run: section 6 says
    /// why).
    pub(crate) fn backed_summary(&self) -> String {
        let Phase::Ran(b) = &self.backed else {
            return String::new();
        };
        let mut text = String::new();
        if let Some(c) = &b.work.creates {
            let _ = write!(
                text,
                " Keeping its state in etcd, keelson created {} ConfigMaps/s with p99 {}",
                int(c.per_sec().round() as u64),
                dur(c.latencies.percentile(99.0))
            );
            if let (Some(k), Some(e)) = (c.server_cpu_per_req(), c.store_cpu_per_req()) {
                let _ = write!(
                    text,
                    ", spending {} of keelson CPU and {} of etcd CPU per create",
                    dur(k),
                    dur(e)
                );
            }
            if let Some(emb) = &self.work.creates {
                let _ = write!(
                    text,
                    " ({:.2}× its rate on the embedded store)",
                    c.per_sec() / emb.per_sec().max(1e-9)
                );
            }
            if c.errors > 0 {
                let _ = write!(text, ", with {} failed creates", int(c.errors));
            }
            text.push('.');
        }
        if let Some(g) = &b.work.gets {
            let _ = write!(
                text,
                " Its reads by name ran at {}/s (p99 {})",
                int(g.per_sec().round() as u64),
                dur(g.latencies.percentile(99.0))
            );
            if let Some(full) = of_shape(&b.work.lists, ListShape::Full)
                && !full.latencies.is_empty()
            {
                let _ = write!(
                    text,
                    ", a full LIST of {} ConfigMaps took {}",
                    int(self.plan.creates.div_ceil(2) as u64),
                    dur(full.latencies.median())
                );
            }
            text.push('.');
        }
        let _ = write!(
            text,
            " It was ready {} after spawning on a fresh data dir against an empty etcd",
            dur(b.first_start)
        );
        if let Some(m) = median(&b.restart_with_data) {
            let _ = write!(
                text,
                " and {} on a restart with {} objects in etcd",
                dur(m),
                int(b.stored_objects(&self.plan))
            );
        }
        text.push('.');
        if !b.errors.is_empty() {
            let _ = write!(
                text,
                " The etcd-backed run hit {} errors (see Problems seen).",
                b.errors.len()
            );
        }
        text
    }

    /// The etcd-backed run's errors and log lines for the "Problems seen" section, if any.
    pub(crate) fn backed_problems(&self) -> Option<String> {
        let b = match &self.backed {
            Phase::Ran(b) => b,
            Phase::Failed(why) => return Some(format!("  keelson on etcd: FAILED: {why}\n")),
            Phase::NotRun | Phase::Skipped(_) => return None,
        };
        let mut s = String::new();
        for e in b.errors.iter().chain(&b.work.errors) {
            let _ = writeln!(s, "  keelson on etcd: {e}");
        }
        let (n, lines) = &b.log_problems;
        if *n > 0 {
            let _ = writeln!(
                s,
                "  keelson on etcd, server log: {n} WARN/ERROR/panic lines (not counting /readyz 500s while starting); the first {} distinct:",
                lines.len()
            );
            for l in lines {
                let _ = writeln!(s, "    {l}");
            }
        }
        let (n, lines) = &b.etcd_log_problems;
        if *n > 0 {
            let _ = writeln!(
                s,
                "  keelson on etcd, etcd's log (warn level and above), lines: {n}; the first {}:",
                lines.len()
            );
            for l in lines {
                let _ = writeln!(s, "    {l}");
            }
        }
        (!s.is_empty()).then_some(s)
    }
}

fn of_shape(lists: &[ListResult], shape: ListShape) -> Option<&ListResult> {
    lists.iter().find(|r| r.shape == shape)
}

fn phase_why<T>(p: &Phase<T>) -> String {
    match p {
        Phase::NotRun => "not run".to_string(),
        Phase::Skipped(why) => format!("SKIPPED: {why}"),
        Phase::Failed(why) => format!("FAILED: {why}"),
        Phase::Ran(_) => "ran".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::findings::Plan;
    use crate::workload::suite::Workload;

    #[test]
    fn ratios_need_both_figures_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "-");
        assert_eq!(ratio(None, Some(2.0)), "-");
        assert_eq!(ratio(Some(1.0), None), "-");
    }

    #[test]
    fn medians_of_no_samples_are_missing() {
        assert_eq!(median(&[]), None);
        assert_eq!(
            median(&[
                Duration::from_millis(30),
                Duration::from_millis(10),
                Duration::from_millis(20)
            ]),
            Some(Duration::from_millis(20))
        );
    }

    /// The cells of the row of `table` whose label is `label` (cells are separated by two
    /// or more spaces; labels contain single spaces only).
    fn row_cells(table: &str, label: &str) -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label:?} in:\n{table}"));
        line[label.len()..]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn findings_with_three_runs(backed: bool) -> Findings {
        use crate::workload::fake_result;
        let ms = |m: u64| Some(Duration::from_millis(m));
        let plan = Plan::quick();
        let mut f = Findings::new(plan, Path::new("/bin/keelson"), Path::new("/tmp"));
        // 1,000 writes each: embedded in 0.5 s, on etcd in 1 s, etcd alone in 0.25 s.
        f.work.creates = Some(fake_result(
            1000,
            Duration::from_millis(500),
            &[1, 2, 3],
            [ms(200), None, ms(100), ms(400)],
        ));
        if backed {
            let work = Workload {
                creates: Some(fake_result(
                    1000,
                    Duration::from_secs(1),
                    &[2, 4, 6],
                    [ms(300), ms(400), ms(100), ms(1000)],
                )),
                ..Workload::default()
            };
            f.backed = Phase::Ran(Box::new(BackedRun {
                version: "etcd Version: 3.4.23".to_string(),
                etcd_ready_after: Duration::from_millis(400),
                first_start: Duration::from_millis(70),
                restarts: vec![Duration::from_millis(60)],
                restart_with_data: vec![Duration::from_millis(90)],
                idle: None,
                after: None,
                etcd_after: None,
                etcd_data_bytes: 0,
                work,
                stored: Some(999),
                log_problems: (0, Vec::new()),
                etcd_log_problems: (0, Vec::new()),
                errors: Vec::new(),
            }));
        } else {
            f.backed = Phase::Failed("keelson did not start".to_string());
        }
        f.etcd = Phase::Ran(Box::new(EtcdRun {
            version: "etcd Version: 3.4.23".to_string(),
            ready_after: Duration::from_millis(500),
            idle: None,
            after: None,
            load: fake_result(
                1000,
                Duration::from_millis(250),
                &[1, 1, 2],
                [ms(250), None, ms(100), ms(400)],
            ),
            stored: Some(1000),
            data_bytes: 0,
        }));
        f
    }

    #[test]
    fn writes_table_puts_the_three_layers_side_by_side() {
        let f = findings_with_three_runs(true);
        let text = f.layers_tables();
        assert_eq!(
            row_cells(&text, "writes/s"),
            ["2,000/s", "1,000/s", "4,000/s", "0.50×", "0.25×"]
        );
        assert_eq!(
            row_cells(&text, "latency p99"),
            ["3.00 ms", "6.00 ms", "2.00 ms", "1.50×", "3.00×"]
        );
        assert_eq!(
            row_cells(&text, "keelson CPU per write"),
            ["200 µs", "300 µs", "-"]
        );
        assert_eq!(
            row_cells(&text, "etcd CPU per write"),
            ["-", "400 µs", "250 µs"]
        );
        assert_eq!(
            row_cells(&text, "server-side CPU per write (all)"),
            ["200 µs", "700 µs", "250 µs", "0.80×", "2.80×"]
        );
        // Machine minus server, store and load generator, over the wall time.
        assert_eq!(
            row_cells(&text, "other processes, cores busy"),
            ["0.20", "0.20", "0.20"]
        );
        assert!(
            text.contains("keelson on etcd run, cores busy during the run: server 0.30, etcd 0.40")
        );
        assert!(text.contains(
            "CHECK: keelson on etcd: etcd holds 999 keys for the creates, expected 1000"
        ));
        assert!(text.contains("== 6b. keelson on etcd against keelson on its embedded store"));
        assert_eq!(
            row_cells(&text, "start-to-ready, restart holding the workload"),
            ["-", "90.0 ms", "-"]
        );
    }

    #[test]
    fn a_failed_etcd_backed_run_leaves_its_column_empty_and_says_why() {
        let f = findings_with_three_runs(false);
        let text = f.layers_tables();
        assert_eq!(
            row_cells(&text, "writes/s"),
            ["2,000/s", "-", "4,000/s", "0.50×", "-"]
        );
        assert!(text.contains("keelson on etcd: FAILED: keelson did not start"));
        assert!(!text.contains("== 6b."));
        assert_eq!(
            f.backed_problems().as_deref(),
            Some("  keelson on etcd: FAILED: keelson did not start\n")
        );
        assert_eq!(f.backed_summary(), "");
    }

    #[test]
    fn phases_say_why_they_did_not_run() {
        let p: Phase<()> = Phase::Skipped("no etcd".to_string());
        assert_eq!(phase_why(&p), "SKIPPED: no etcd");
        let p: Phase<()> = Phase::Failed("boom".to_string());
        assert_eq!(phase_why(&p), "FAILED: boom");
    }
}
